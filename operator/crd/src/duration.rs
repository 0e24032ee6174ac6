//! Durations in the CRDs: the schema pattern and the parser are the engine's own
//! (`sluice_api::duration`), so that what the API server accepts the engine runs.

use std::time::Duration;

/// Durations as Flink writes them, exactly what the engine parses (`sluice_api::duration`).
pub(crate) const DURATION_PATTERN: &str = sluice_api::duration::PATTERN;

/// A duration as the engine reads it (Flink's syntax: `10 s`, `10s`, `5 min`, `500 ms`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    sluice_api::duration::parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StreamJob;

    #[test]
    fn every_duration_default_of_the_schema_is_one_the_engine_parses() {
        use kube::CustomResourceExt;
        fn walk(v: &serde_json::Value, path: &str, found: &mut Vec<(String, String)>) {
            match v {
                serde_json::Value::Object(m) => {
                    if m.get("pattern").and_then(|p| p.as_str()) == Some(DURATION_PATTERN)
                        && let Some(d) = m.get("default").and_then(|d| d.as_str())
                    {
                        found.push((path.to_string(), d.to_string()));
                    }
                    for (k, v) in m {
                        walk(v, &format!("{path}/{k}"), found);
                    }
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, path, found)),
                _ => {}
            }
        }
        let crd = serde_json::to_value(StreamJob::crd()).unwrap();
        let mut found = Vec::new();
        walk(&crd, "", &mut found);
        assert!(found.len() >= 3, "no duration defaults found: {found:?}");
        for (path, d) in found {
            assert!(parse_duration(&d).is_some(), "{path}: the default {d:?} is not a duration the engine reads");
        }
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), None, "the engine does not read compound durations");
    }
}
