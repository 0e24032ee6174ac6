//! The ConfigMap with `job.sql` and `engine.yaml`, mounted at `/etc/sluice`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::{Blueprint, DEPLOYMENT_KEY, SQL_FILE};
use crate::crd::StreamJobSpec;

/// The engine keys of a deployment: the spec's ([`spec_config`]), where it restores
/// from, and its number.
pub fn engine_config(d: &Blueprint) -> BTreeMap<String, String> {
    let mut c = spec_config(d.spec);
    if let Some(r) = d.restore {
        c.insert("execution.state-recovery.path".into(), r.into());
    }
    c.insert(DEPLOYMENT_KEY.into(), d.deployment.to_string());
    c
}

/// The engine keys that the spec decides, whatever deployment runs it: what validation
/// checks. The spec's own fields win over the same keys in `spec.config`, so that what
/// `kubectl get sj` shows is what runs; where a deployment restores from is the
/// operator's to say, never `spec.config`'s.
pub fn spec_config(spec: &StreamJobSpec) -> BTreeMap<String, String> {
    let mut c = spec.config.clone();
    c.insert("parallelism.default".into(), spec.parallelism.to_string());
    c.insert("pipeline.max-parallelism".into(), spec.max_parallelism.to_string());
    // Checkpoints need somewhere to go: without `checkpointing.storage` the job runs
    // without them (the engine refuses an interval without a directory).
    if let Some(s) = &spec.checkpointing.storage {
        c.insert("execution.checkpointing.interval".into(), spec.checkpointing.interval.clone());
        c.insert("execution.checkpointing.dir".into(), s.clone());
    }
    if let Some(s) = &spec.savepoints.directory {
        c.insert("execution.checkpointing.savepoint-dir".into(), s.clone());
    }
    if let Some(e) = spec.s3.as_ref().and_then(|s| s.endpoint.as_ref()) {
        c.insert("s3.endpoint".into(), e.clone());
    }
    c.remove("execution.state-recovery.path");
    // The data policy is the spec's alone: `spec.config` cannot set or clear it.
    c.remove(sluice_api::policy::CONFIG_KEY);
    if !spec.data_policy.is_empty() {
        c.insert(sluice_api::policy::CONFIG_KEY.into(), spec.data_policy.engine_json());
    }
    if spec.allow_non_restored_state {
        c.insert("execution.state-recovery.ignore-unclaimed-state".into(), "true".into());
    }
    c
}

pub fn build(d: &Blueprint) -> ConfigMap {
    let yaml = engine_config(d).iter().map(|(k, v)| format!("{}: {}\n", quote(k), quote(v))).collect::<String>();
    ConfigMap {
        metadata: d.meta(d.config_map_name(), None),
        data: Some(BTreeMap::from([(SQL_FILE.to_string(), d.sql.to_string()), ("engine.yaml".to_string(), yaml)])),
        ..ConfigMap::default()
    }
}

/// A YAML double-quoted scalar: every key and value stays a string.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing;

    #[test]
    fn engine_yaml_holds_the_spec_and_the_restore() {
        let spec = testing::spec();
        let cm = build(&testing::blueprint(&spec));
        let data = cm.data.unwrap_or_default();
        assert_eq!(
            data.get("engine.yaml").map(String::as_str),
            Some(concat!(
                "\"execution.checkpointing.dir\": \"s3://sluice/checkpoints\"\n",
                "\"execution.checkpointing.interval\": \"5s\"\n",
                "\"execution.checkpointing.savepoint-dir\": \"s3://sluice/savepoints\"\n",
                "\"execution.state-recovery.path\": \"s3://sluice/savepoints/savepoint-up-3\"\n",
                "\"kubernetes.operator.deployment\": \"4\"\n",
                "\"parallelism.default\": \"3\"\n",
                "\"pipeline.max-parallelism\": \"128\"\n",
                "\"restart-strategy.type\": \"fixed-delay\"\n",
                "\"s3.endpoint\": \"http://s3.sluice-system:9000\"\n",
            ))
        );
        assert_eq!(data.get(SQL_FILE).map(String::as_str), spec.sql.as_deref());
        assert_eq!(cm.metadata.name.as_deref(), Some("clicks-config"));
    }

    #[test]
    fn without_checkpoint_storage_there_is_no_checkpoint_interval() {
        let mut spec = testing::spec();
        spec.checkpointing.storage = None;
        let yaml = build(&testing::blueprint(&spec)).data.unwrap_or_default().remove("engine.yaml").unwrap_or_default();
        assert!(!yaml.contains("execution.checkpointing.interval"), "{yaml}");
        assert!(!yaml.contains("execution.checkpointing.dir"), "{yaml}");
    }

    #[test]
    fn yaml_parses_back_to_strings() {
        let mut spec = testing::spec();
        spec.config.insert("weird: key".into(), "a \"quoted\" # value".into());
        let cm = build(&testing::blueprint(&spec));
        let yaml = cm.data.unwrap_or_default().remove("engine.yaml").unwrap_or_default();
        let back: BTreeMap<String, String> = serde_yaml::from_str(&yaml).unwrap_or_default();
        assert_eq!(back.get("weird: key").map(String::as_str), Some("a \"quoted\" # value"));
    }
}
