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
//!
//! Where a key is unset, the OpenLineage clients' environment variables apply:
//! `OPENLINEAGE_URL`, `OPENLINEAGE_ENDPOINT`, `OPENLINEAGE_NAMESPACE` and
//! `OPENLINEAGE_DISABLED`, and Sluice's `SLUICE_OPENLINEAGE_JOB_NAME`. The operator
//! sets them on coordinator pods (the chart's `openlineage.url`, the StreamJob's
//! namespace and name). They are not configuration, so they are not part of a
//! deployment's fingerprint: a coordinator restarted with other values still
//! resumes its deployment's run.

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

/// Each key's environment variable.
const ENV: [(&str, &str); 5] = [
    (URL_KEY, "OPENLINEAGE_URL"),
    ("openlineage.transport.endpoint", "OPENLINEAGE_ENDPOINT"),
    (NAMESPACE_KEY, "OPENLINEAGE_NAMESPACE"),
    (DISABLED_KEY, "OPENLINEAGE_DISABLED"),
    (NAME_KEY, "SLUICE_OPENLINEAGE_JOB_NAME"),
];

impl OpenLineageSettings {
    /// From the configuration alone; `None` when no URL is set or events are disabled.
    pub fn from_config(config: &Config) -> Result<Option<OpenLineageSettings>, JobError> {
        Self::resolve(config, |_| None)
    }

    /// From the configuration, and `env` (the process's environment) for the keys it leaves unset.
    pub fn resolve(
        config: &Config,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<OpenLineageSettings>, JobError> {
        let mut config = config.clone();
        let mut from_env = Vec::new();
        for (key, var) in ENV {
            if config.get(key).is_none()
                && let Some(v) = env(var).filter(|v| !v.trim().is_empty())
            {
                config.values.insert(key.to_string(), v);
                from_env.push((key, var));
            }
        }
        Self::parse(&config).map_err(|e| match e {
            JobError::Config(m) => match from_env.iter().find(|(key, _)| m.contains(&format!("'{key}'"))) {
                Some((_, var)) => JobError::Config(format!("{m} (set by the environment variable {var})")),
                None => JobError::Config(m),
            },
            other => other,
        })
    }

    fn parse(config: &Config) -> Result<Option<OpenLineageSettings>, JobError> {
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
    fn the_environment_fills_what_the_configuration_leaves_unset() -> Result<(), JobError> {
        let env = |v: &str| match v {
            "OPENLINEAGE_URL" => Some("http://from-env:5000".to_string()),
            "OPENLINEAGE_NAMESPACE" => Some("analytics".to_string()),
            "SLUICE_OPENLINEAGE_JOB_NAME" => Some("clicks".to_string()),
            _ => None,
        };
        let s = OpenLineageSettings::resolve(&config(&[]), env)?.ok_or_else(|| JobError::Config("none".into()))?;
        assert_eq!((s.endpoint.as_str(), s.namespace.as_str()), ("http://from-env:5000/api/v1/lineage", "analytics"));
        assert_eq!(s.name.as_deref(), Some("clicks"));
        let own = config(&[(URL_KEY, "http://own"), (NAMESPACE_KEY, "mine")]);
        let s = OpenLineageSettings::resolve(&own, env)?.ok_or_else(|| JobError::Config("none".into()))?;
        assert_eq!((s.endpoint.as_str(), s.namespace.as_str()), ("http://own/api/v1/lineage", "mine"));
        let bad = |v: &str| (v == "OPENLINEAGE_URL").then(|| "marquez".to_string());
        let err = OpenLineageSettings::resolve(&config(&[]), bad).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("set by the environment variable OPENLINEAGE_URL"), "{err}");
        let off = config(&[(DISABLED_KEY, "true")]);
        assert_eq!(OpenLineageSettings::resolve(&off, env)?, None, "a job can opt out of the chart's endpoint");
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
