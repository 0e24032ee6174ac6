//! Pure builders of a StreamJob's child objects. Each takes the job's
//! [`Deployment`] and returns a typed object ready for server-side apply.

pub mod configmap;
pub mod coordinator;
pub mod pdb;
pub mod pod;
pub mod service;
pub mod workers;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::crd::StreamJobSpec;

/// Ports of the engine, as in ARCHITECTURE.md. Services use `port == targetPort`.
pub const RPC_PORT: i32 = 6123;
pub const REST_PORT: i32 = 8081;
pub const DATA_PORT: i32 = 6124;
pub const PROBE_PORT: i32 = 8082;
/// Where the ConfigMap is mounted in engine pods.
pub const CONFIG_DIR: &str = "/etc/sluice";
/// The engine key that makes every deployment's fingerprint distinct (see `status.deployment`).
pub const DEPLOYMENT_KEY: &str = "kubernetes.operator.deployment";
/// The pod-template annotation that rolls the pods of a new deployment.
pub const DEPLOYMENT_ANNOTATION: &str = "sluice.dev/deployment";

/// Everything a builder needs to know about one deployment of a job.
#[derive(Debug, Clone)]
pub struct Deployment<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
    pub owner: OwnerReference,
    /// The spec being deployed (the last valid one, which may lag `metadata.generation`).
    pub spec: &'a StreamJobSpec,
    /// The job's SQL, resolved from `sql` or `sqlConfigMapRef`.
    pub sql: &'a str,
    /// `status.deployment`: increases with every new deployment.
    pub deployment: i64,
    /// What the deployment restores: a snapshot location, `latest`, or none.
    pub restore: Option<&'a str>,
    /// The operator's version, for `app.kubernetes.io/version`.
    pub version: &'a str,
}

impl Deployment<'_> {
    pub fn config_map_name(&self) -> String {
        format!("{}-config", self.name)
    }
    pub fn coordinator_name(&self) -> String {
        format!("{}-coordinator", self.name)
    }
    pub fn workers_name(&self) -> String {
        format!("{}-workers", self.name)
    }

    /// Worker pods: enough slots for the parallelism.
    pub fn worker_replicas(&self) -> i32 {
        let slots = self.spec.slots_per_worker.max(1);
        (self.spec.parallelism.max(1) + slots - 1) / slots
    }

    /// The labels of every child; `role` adds `sluice.dev/role` and the component.
    pub fn labels(&self, role: Option<&str>) -> BTreeMap<String, String> {
        let mut l = selector(self.name, role);
        l.insert("app.kubernetes.io/managed-by".into(), "sluice-operator".into());
        l.insert("app.kubernetes.io/version".into(), self.version.into());
        l
    }

    /// Metadata of a child named `name`, owned by the StreamJob.
    pub fn meta(&self, name: String, role: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.into()),
            labels: Some(self.labels(role)),
            owner_references: Some(vec![self.owner.clone()]),
            ..ObjectMeta::default()
        }
    }
}

/// The labels that select a job's pods (of one role, or all of them).
pub fn selector(job: &str, role: Option<&str>) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "sluice-engine".to_string()),
        ("app.kubernetes.io/instance".to_string(), job.to_string()),
        ("sluice.dev/job".to_string(), job.to_string()),
    ]);
    if let Some(r) = role {
        l.insert("app.kubernetes.io/component".into(), r.into());
        l.insert("sluice.dev/role".into(), r.into());
    }
    l
}

/// Merges `overlay` into `base` as Flink merges pod templates: objects key by key,
/// lists of named items (containers, env, volumes, ports) by `name`, other lists
/// appended, and the overlay's scalars win.
pub fn merge_json(base: &mut serde_json::Value, overlay: &serde_json::Value) {
    use serde_json::Value;
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge_json(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) => {
            for item in o {
                let name = item.get("name").and_then(Value::as_str);
                let slot = name.and_then(|n| b.iter_mut().find(|x| x.get("name").and_then(Value::as_str) == Some(n)));
                match slot {
                    Some(existing) => merge_json(existing, item),
                    None => b.push(item.clone()),
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::crd::StreamJobSpec;

    pub fn spec() -> StreamJobSpec {
        serde_json::from_value(serde_json::json!({
            "image": "sluice/engine:0.1.0",
            "sql": "CREATE TABLE t (x BIGINT) WITH ('connector' = 'datagen');",
            "parallelism": 3,
            "slotsPerWorker": 2,
            "upgradeMode": "savepoint",
            "checkpointing": {"interval": "5s", "storage": "s3://sluice/checkpoints"},
            "savepoints": {"directory": "s3://sluice/savepoints"},
            "s3": {"endpoint": "http://s3.sluice-system:9000", "credentialsSecretRef": {"name": "s3-creds"}},
            "config": {"restart-strategy.type": "fixed-delay"}
        }))
        .unwrap_or_else(|e| unreachable!("test spec: {e}"))
    }

    pub fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "sluice.dev/v1alpha1".into(),
            kind: "StreamJob".into(),
            name: "clicks".into(),
            uid: "0000-uid".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    pub fn deployment(spec: &StreamJobSpec) -> Deployment<'_> {
        Deployment {
            name: "clicks",
            namespace: "analytics",
            uid: "0000-uid",
            owner: owner(),
            spec,
            sql: spec.sql.as_deref().unwrap_or_default(),
            deployment: 4,
            restore: Some("s3://sluice/savepoints/savepoint-up-3"),
            version: "0.1.0",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_by_name_and_scalars_win() {
        let mut base = json!({"spec": {"containers": [{"name": "engine", "image": "a", "env": [{"name": "X", "value": "1"}]}], "volumes": [{"name": "config"}]}});
        let overlay = json!({"metadata": {"labels": {"team": "ads"}}, "spec": {"containers": [{"name": "engine", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "3"}]}, {"name": "sidecar", "image": "b"}], "nodeSelector": {"disk": "ssd"}}});
        merge_json(&mut base, &overlay);
        assert_eq!(
            base,
            json!({"metadata": {"labels": {"team": "ads"}}, "spec": {"containers": [{"name": "engine", "image": "a", "env": [{"name": "X", "value": "3"}, {"name": "Y", "value": "2"}]}, {"name": "sidecar", "image": "b"}], "volumes": [{"name": "config"}], "nodeSelector": {"disk": "ssd"}}})
        );
    }

    #[test]
    fn workers_cover_the_parallelism() {
        let spec = testing::spec();
        assert_eq!(testing::deployment(&spec).worker_replicas(), 2);
        let mut one = spec.clone();
        one.slots_per_worker = 1;
        assert_eq!(testing::deployment(&one).worker_replicas(), 3);
    }
}
