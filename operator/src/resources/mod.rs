//! Pure builders of a StreamJob's child objects. Each takes the job's
//! [`Blueprint`] and returns a typed object ready for server-side apply.

pub mod configmap;
pub mod coordinator;
pub mod engine_token;
pub mod network_policy;
pub mod pdb;
pub mod pod;
pub mod pod_security;
pub mod service;
pub mod workers;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::crd::{Color, StreamJobSpec};

/// Ports of the engine, as in ARCHITECTURE.md. Services use `port == targetPort`.
pub const RPC_PORT: i32 = 6123;
pub const REST_PORT: i32 = 8081;
pub const DATA_PORT: i32 = 6124;
pub const PROBE_PORT: i32 = 8082;
/// Where the ConfigMap is mounted in engine pods.
pub const CONFIG_DIR: &str = "/etc/sluice";
/// The job's SQL in the ConfigMap: the file the engine runs, and the name its errors carry.
pub const SQL_FILE: &str = "job.sql";
/// The engine key that makes every deployment's fingerprint distinct (see `status.deployment`).
pub const DEPLOYMENT_KEY: &str = "kubernetes.operator.deployment";
/// The pod-template annotation that rolls the pods of a new deployment.
pub const DEPLOYMENT_ANNOTATION: &str = "sluice.dev/deployment";

/// Why a child object cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The user's `spec.podTemplate` does not fit a pod template once merged.
    #[error("spec.podTemplate does not merge into a pod template: {0}")]
    PodTemplate(#[source] serde_json::Error),
    #[error("the engine pod template does not serialize: {0}")]
    Serialize(#[source] serde_json::Error),
}

/// Everything the builders need to know about one deployment of a job (a `status.deployment`),
/// from which each child object is built.
#[derive(Debug, Clone)]
pub struct Blueprint<'a> {
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
    /// Which color's children these are (blue-green; `blue` otherwise).
    pub color: Color,
    /// The coordinator waits to be activated (`--standby`): every deployment of a
    /// job whose `upgradeStrategy` is `blue-green`.
    pub standby: bool,
    /// The chart's `openlineage.url`: the coordinator's `OPENLINEAGE_URL`.
    pub openlineage_url: Option<&'a str>,
}

impl Blueprint<'_> {
    /// `<job>` for blue, `<job>-green` for green: the prefix of every child's name and
    /// the `app.kubernetes.io/instance` label.
    pub fn instance(&self) -> String {
        instance(self.name, self.color)
    }
    pub fn config_map_name(&self) -> String {
        format!("{}-config", self.instance())
    }
    pub fn coordinator_name(&self) -> String {
        format!("{}-coordinator", self.instance())
    }
    pub fn workers_name(&self) -> String {
        format!("{}-workers", self.instance())
    }

    /// The labels that select this color's pods (of one role, or all of them).
    pub fn selector(&self, role: Option<&str>) -> BTreeMap<String, String> {
        selector(self.name, self.color, role)
    }

    /// Worker pods: enough slots for the largest vertex.
    pub fn worker_replicas(&self) -> i32 {
        let slots = self.spec.slots_per_worker.max(1);
        (crate::context::largest_parallelism(self.spec, self.sql).max(1) + slots - 1) / slots
    }

    /// The labels of every child; `role` adds `sluice.dev/role` and the component.
    pub fn labels(&self, role: Option<&str>) -> BTreeMap<String, String> {
        let mut l = self.selector(role);
        l.insert("sluice.dev/color".into(), self.color.as_str().into());
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

/// The prefix of a color's child names: `<job>` for blue (the names of jobs from
/// before blue-green), `<job>-green` for green.
pub fn instance(job: &str, color: Color) -> String {
    match color {
        Color::Blue => job.to_string(),
        Color::Green => format!("{job}-green"),
    }
}

/// The labels that select a job's pods of one color (of one role, or all of them).
/// Blue's selectors are those of jobs from before blue-green (selectors are immutable);
/// they do not match green's pods, whose `app.kubernetes.io/instance` differs.
pub fn selector(job: &str, color: Color, role: Option<&str>) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "sluice-engine".to_string()),
        ("app.kubernetes.io/instance".to_string(), instance(job, color)),
        ("sluice.dev/job".to_string(), job.to_string()),
    ]);
    if color == Color::Green {
        l.insert("sluice.dev/color".into(), color.as_str().into());
    }
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

    pub fn blueprint(spec: &StreamJobSpec) -> Blueprint<'_> {
        Blueprint {
            name: "clicks",
            namespace: "analytics",
            uid: "0000-uid",
            owner: owner(),
            spec,
            sql: spec.sql.as_deref().unwrap_or_default(),
            deployment: 4,
            restore: Some("s3://sluice/savepoints/savepoint-up-3"),
            version: "0.1.0",
            color: crate::crd::Color::Blue,
            standby: false,
            openlineage_url: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
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

    /// Every child of a deployment, compared whole with `tests/golden/children.yaml`
    /// (`UPDATE_GOLDEN=1` rewrites it).
    #[test]
    fn children_match_the_golden_file() {
        let spec = testing::spec();
        let mut with_template = spec.clone();
        with_template.pod_template = Some(json!({
            "metadata": {"labels": {"team": "ads"}},
            "spec": {"serviceAccountName": "s3-writer", "containers": [{"name": "engine", "env": [{"name": "RUST_BACKTRACE", "value": "1"}]}]}
        }));
        with_template.worker = Some(crate::crd::PodResources {
            requests: [("cpu".to_string(), "500m".to_string())].into(),
            limits: [("memory".to_string(), "2Gi".to_string())].into(),
        });
        let d = testing::blueprint(&with_template);
        let docs: Vec<String> = vec![
            serde_yaml::to_string(&configmap::build(&d)),
            serde_yaml::to_string(&service::coordinator(&d)),
            serde_yaml::to_string(&service::workers(&d)),
            serde_yaml::to_string(&pdb::build(&d)),
            serde_yaml::to_string(&coordinator::build(&d).unwrap_or_else(|e| panic!("{e}"))),
            serde_yaml::to_string(&workers::build(&d).unwrap_or_else(|e| panic!("{e}"))),
        ]
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect();
        let text = format!(
            "# Generated by the children_match_the_golden_file test (UPDATE_GOLDEN=1).\n---\n{}",
            docs.join("---\n")
        );
        let path = manifest_dir().join("tests/golden/children.yaml");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap_or(&path)).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{e}"));
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(golden == text, "the children differ from {} (UPDATE_GOLDEN=1 rewrites it):\n{text}", path.display());
    }

    /// Cargo sets CARGO_MANIFEST_DIR when it runs a test; a cached build may come from a
    /// clone at another path.
    fn manifest_dir() -> std::path::PathBuf {
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()).into()
    }

    /// The manifests in config/examples parse, and the engine's validation accepts their
    /// jobs under the configuration their pods get.
    #[test]
    fn example_manifests_are_valid() {
        let dir = manifest_dir().join("../config/examples");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")).flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            let job: crate::crd::StreamJob =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let sql = job.spec.sql.as_deref().unwrap_or_default();
            let checked =
                crate::controllers::streamjob::validate::check_job(sql, configmap::spec_config(&job.spec), false);
            if let Err(e) = checked {
                panic!("{}: {e}", path.display());
            }
            n += 1;
        }
        assert!(n >= 2, "expected the example manifests in {}", dir.display());
    }

    /// A `podTemplate` that does not fit a pod template is a build error that says so.
    #[test]
    fn a_pod_template_that_does_not_merge_is_refused_with_the_reason() {
        let mut spec = testing::spec();
        spec.pod_template = Some(json!({"spec": {"containers": "not a list"}}));
        let d = testing::blueprint(&spec);
        for e in [coordinator::build(&d).err(), workers::build(&d).err()] {
            let e = e.unwrap_or_else(|| panic!("the template was accepted"));
            assert!(matches!(e, BuildError::PodTemplate(_)), "{e:?}");
            assert!(e.to_string().starts_with("spec.podTemplate does not merge into a pod template: "), "{e}");
        }
    }

    #[test]
    fn workers_cover_the_parallelism() {
        let spec = testing::spec();
        assert_eq!(testing::blueprint(&spec).worker_replicas(), 2);
        let mut one = spec.clone();
        one.slots_per_worker = 1;
        assert_eq!(testing::blueprint(&one).worker_replicas(), 3);
    }

    #[test]
    fn the_coordinator_alone_gets_the_charts_openlineage_url() {
        let spec = testing::spec();
        let mut d = testing::blueprint(&spec);
        d.openlineage_url = Some("http://marquez:5000");
        let env = |v: serde_json::Value| -> Vec<(String, String)> {
            v["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["value"].is_string())
                .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].as_str().unwrap().to_string()))
                .collect()
        };
        let coordinator = env(serde_json::to_value(coordinator::build(&d).unwrap()).unwrap());
        let s = |x: &str| x.to_string();
        for pair in [
            (s("OPENLINEAGE_URL"), s("http://marquez:5000")),
            (s("OPENLINEAGE_NAMESPACE"), s("analytics")),
            (s("SLUICE_OPENLINEAGE_JOB_NAME"), s("clicks")),
        ] {
            assert!(coordinator.contains(&pair), "{coordinator:?}");
        }
        let workers = env(serde_json::to_value(workers::build(&d).unwrap()).unwrap());
        assert!(workers.iter().all(|(k, _)| !k.contains("OPENLINEAGE")), "{workers:?}");
    }

    #[test]
    fn every_engine_pod_mounts_its_colors_token_and_uses_it() {
        let spec = testing::spec();
        let mut d = testing::blueprint(&spec);
        d.color = crate::crd::Color::Green;
        let pod = |v: serde_json::Value| v["spec"]["template"]["spec"].clone();
        for (role, p) in [
            ("coordinator", pod(serde_json::to_value(coordinator::build(&d).unwrap()).unwrap())),
            ("worker", pod(serde_json::to_value(workers::build(&d).unwrap()).unwrap())),
        ] {
            let volumes = p["volumes"].as_array().unwrap();
            assert!(
                volumes.iter().any(|v| v["secret"]["secretName"] == "clicks-green-engine-token"),
                "{role}: {volumes:?}"
            );
            let args: Vec<String> = p["containers"][0]["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
            let file = engine_token::file();
            assert!(args.windows(2).any(|w| w[0] == "--cluster-secret-file" && w[1] == file), "{role}: {args:?}");
            let rest = args.windows(2).any(|w| w[0] == "--rest-token-file" && w[1] == file);
            assert_eq!(rest, role == "coordinator", "{role}: {args:?}");
        }
    }
}
