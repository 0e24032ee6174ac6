//! Where a job sends its OpenLineage run events: the `openlineage.*` keys, named
//! as Flink's OpenLineage listener and the OpenLineage clients name them.
//!
//! | key | default |
//! |---|---|
//! | `openlineage.transport.url` | unset: no events (the operator sets the chart's `openlineage.url`) |
//! | `openlineage.transport.type` | `http`, the only transport |
//! | `openlineage.transport.endpoint` | `api/v1/lineage` |
//! | `openlineage.transport.timeoutInMillis` | `5000` |
//! | `openlineage.transport.buffer-size` | `1000` events waiting; more are dropped |
//! | `openlineage.job.namespace` | `sluice` |
//! | `openlineage.job.name` | the job id |
//! | `openlineage.disabled` | `false`; `true` turns events off even with a URL |

use std::time::Duration;

use crate::{Config, JobError};

/// The settings of a job that emits OpenLineage events.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenLineageSettings {
    /// Where events are POSTed: the URL joined with the endpoint.
    pub endpoint: String,
    pub timeout: Duration,
    pub buffer: usize,
    pub namespace: String,
    /// `None`: the job id.
    pub name: Option<String>,
}

pub const URL_KEY: &str = "openlineage.transport.url";
pub const DISABLED_KEY: &str = "openlineage.disabled";
pub const NAMESPACE_KEY: &str = "openlineage.job.namespace";
pub const NAME_KEY: &str = "openlineage.job.name";

impl OpenLineageSettings {
    /// `None` when no URL is set or events are disabled.
    pub fn from_config(config: &Config) -> Result<Option<OpenLineageSettings>, JobError> {
        let bad = |key: &str, msg: String| JobError::Config(format!("'{key}': {msg}"));
        if config.bool(DISABLED_KEY)? {
            return Ok(None);
        }
        let Some(url) = config.get(URL_KEY).map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        match config.get("openlineage.transport.type").map(str::trim) {
            None | Some("http") => {}
            Some(other) => {
                return Err(bad(
                    "openlineage.transport.type",
                    format!("'{other}' is not supported; the transport is 'http'"),
                ));
            }
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad(URL_KEY, format!("'{url}' is not a URL such as http://marquez:5000")));
        };
        if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.starts_with('/') {
            return Err(bad(URL_KEY, format!("'{url}' is not an http:// or https:// URL with a host")));
        }
        let endpoint = config.get("openlineage.transport.endpoint").unwrap_or("api/v1/lineage").trim();
        let timeout = config.duration_ms("openlineage.transport.timeoutInMillis", 5000)?;
        if timeout == 0 {
            return Err(bad("openlineage.transport.timeoutInMillis", "must be positive".into()));
        }
        let buffer = config.usize("openlineage.transport.buffer-size", 1000)?;
        if buffer == 0 {
            return Err(bad("openlineage.transport.buffer-size", "must be at least 1".into()));
        }
        let namespace = config.get(NAMESPACE_KEY).map(str::trim).unwrap_or("sluice");
        if namespace.is_empty() {
            return Err(bad(NAMESPACE_KEY, "must not be empty".into()));
        }
        Ok(Some(OpenLineageSettings {
            endpoint: join(url, endpoint),
            timeout: Duration::from_millis(timeout),
            buffer,
            namespace: namespace.to_string(),
            name: config.get(NAME_KEY).map(str::trim).filter(|n| !n.is_empty()).map(str::to_string),
        }))
    }
}

/// The URL and the endpoint with exactly one `/` between them; an empty endpoint is the URL.
fn join(url: &str, endpoint: &str) -> String {
    let url = url.trim_end_matches('/');
    match endpoint.trim_start_matches('/') {
        "" => url.to_string(),
        e => format!("{url}/{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config { values: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn no_url_or_disabled_means_no_events() {
        assert_eq!(OpenLineageSettings::from_config(&config(&[])).ok(), Some(None));
        let off = config(&[(URL_KEY, "http://m:5000"), (DISABLED_KEY, "true")]);
        assert_eq!(OpenLineageSettings::from_config(&off).ok(), Some(None));
    }

    #[test]
    fn the_endpoint_joins_the_url_with_one_slash() -> Result<(), JobError> {
        let s = OpenLineageSettings::from_config(&config(&[(URL_KEY, "http://marquez:5000/")]))?;
        let s = s.ok_or_else(|| JobError::Config("no settings".into()))?;
        assert_eq!(s.endpoint, "http://marquez:5000/api/v1/lineage");
        assert_eq!((s.namespace.as_str(), s.name, s.buffer), ("sluice", None, 1000));
        assert_eq!(s.timeout, Duration::from_secs(5));
        let custom = config(&[(URL_KEY, "https://ol.example"), ("openlineage.transport.endpoint", "/events")]);
        assert_eq!(
            OpenLineageSettings::from_config(&custom)?.map(|s| s.endpoint),
            Some("https://ol.example/events".into())
        );
        Ok(())
    }

    #[test]
    fn bad_values_name_their_key() {
        for (pairs, key) in [
            (vec![(URL_KEY, "marquez:5000")], URL_KEY),
            (vec![(URL_KEY, "ftp://marquez")], URL_KEY),
            (vec![(URL_KEY, "http://")], URL_KEY),
            (vec![(URL_KEY, "http://m"), ("openlineage.transport.type", "kafka")], "openlineage.transport.type"),
            (vec![(URL_KEY, "http://m"), ("openlineage.transport.buffer-size", "0")], "buffer-size"),
            (vec![(URL_KEY, "http://m"), (NAMESPACE_KEY, " ")], NAMESPACE_KEY),
        ] {
            let err =
                OpenLineageSettings::from_config(&config(&pairs)).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(key), "{pairs:?}: {err}");
        }
    }
}
