//! The `StreamJob` resource's spec: the job, how it runs, upgrades and snapshots.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::StreamJobStatus;
use crate::autoscaler::AutoscalerSpec;
use crate::data_policy::DataPolicySpec;
use crate::duration::DURATION_PATTERN;

/// A streaming SQL job and how Sluice runs, upgrades and snapshots it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "StreamJob",
    namespaced,
    shortname = "sj",
    status = "StreamJobStatus",
    derive = "PartialEq",
    doc = "A streaming SQL job run by Sluice",
    scale(
        spec_replicas_path = ".spec.parallelism",
        status_replicas_path = ".status.currentParallelism",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Job", type_ = "string", json_path = ".status.jobState"),
    printcolumn(name = "Parallelism", type_ = "integer", json_path = ".status.currentParallelism"),
    printcolumn(name = "Target", type_ = "integer", json_path = ".status.autoscaler.targetParallelism"),
    printcolumn(name = "Color", type_ = "string", json_path = ".status.activeColor"),
    printcolumn(name = "Last Savepoint", type_ = "date", json_path = ".status.lastSavepoint.time"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new(
        "!has(oldSelf.status) || !has(oldSelf.status.reconciledSpec) || self.spec.maxParallelism == oldSelf.spec.maxParallelism"
    ).message("maxParallelism is immutable once the job has run: its state is partitioned into maxParallelism key groups"),
)]
#[x_kube(
    validation = Rule::new("self.parallelism <= self.maxParallelism").message("parallelism must not exceed maxParallelism"),
    validation = Rule::new("has(self.sql) != has(self.sqlConfigMapRef)").message("set exactly one of sql and sqlConfigMapRef"),
    validation = Rule::new("self.upgradeMode != 'savepoint' || has(self.savepoints.directory)").message("upgradeMode savepoint needs savepoints.directory"),
    validation = Rule::new("self.upgradeMode != 'last-state' || has(self.checkpointing.storage)").message("upgradeMode last-state needs checkpointing.storage"),
    validation = Rule::new("self.upgradeStrategy.type != 'blue-green' || (has(self.checkpointing.storage) && has(self.savepoints.directory))").message("upgradeStrategy blue-green needs checkpointing.storage and savepoints.directory: the standby checks the job's checkpoints, and the handoff is a savepoint"),
)]
#[serde(rename_all = "camelCase")]
pub struct StreamJobSpec {
    /// The engine image, e.g. `sluice/engine:0.1.0`. Unset: the image the job's current
    /// deployment runs, or for a new job the operator's `--default-engine-image` (the Helm
    /// value `engine.image`), so that a new operator default never restarts a running job.
    #[x_kube(validation = Rule::new("self != ''").message("image must not be empty"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The job: Flink SQL statements. Exclusive with `sqlConfigMapRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// A ConfigMap key holding the job's SQL. Exclusive with `sql`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_config_map_ref: Option<ConfigMapKeyRef>,
    /// Flink-style engine keys (like Flink's `flinkConfiguration`), written to `engine.yaml`.
    /// Never credentials: they would be copied into the ConfigMap and `status`.
    #[x_kube(validation = Rule::new(
        "!self.exists(k, k in ['s3.access-key', 's3.secret-key', 's3.access.key', 's3.secret.key', 'fs.s3a.access.key', 'fs.s3a.secret.key'])"
    ).message("config must not hold S3 credentials (s3.access-key, s3.secret-key): they would be copied into the job's ConfigMap and status.reconciledSpec; put them in a Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY and name it in s3.credentialsSecretRef"))]
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Parallelism of every vertex. The scale subresource maps onto it.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub parallelism: i32,
    /// The number of key groups; the upper bound of parallelism. Immutable once the job has run.
    #[serde(default = "default_max_parallelism")]
    #[schemars(range(min = 1, max = 32768))]
    pub max_parallelism: i32,
    /// Resources of the coordinator pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<PodResources>,
    /// Resources of each worker pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<PodResources>,
    /// Task slots per worker pod; the job gets ceil(parallelism / slotsPerWorker) workers.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub slots_per_worker: i32,
    /// A pod template merged into the engine pods (labels, annotations, serviceAccountName,
    /// nodeSelector, tolerations, extra env, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub pod_template: Option<serde_json::Value>,
    /// `running` or `suspended`.
    #[serde(default)]
    pub state: DesiredState,
    /// How a change of the job is rolled out: `stateless`, `savepoint` or `last-state`.
    #[serde(default)]
    pub upgrade_mode: UpgradeMode,
    #[serde(default)]
    pub upgrade: UpgradeSpec,
    /// How a change that needs a new deployment is rolled out: `in-place` (stop, then
    /// start the new deployment: `upgradeMode` says from what) or `blue-green` (a warm
    /// standby takes over from a savepoint, and the old one stays ready for a rollback
    /// until the new one has proved itself).
    #[serde(default)]
    pub upgrade_strategy: UpgradeStrategy,
    #[serde(default)]
    pub checkpointing: CheckpointingSpec,
    #[serde(default)]
    pub savepoints: SavepointsSpec,
    /// Start from this savepoint on the first deployment. Until the job has run
    /// (`status.neverRan`), it also applies to every redeploy, and changing it (or
    /// `allowNonRestoredState`) redeploys: a first restore that failed is fixed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_savepoint: Option<String>,
    /// Let a restore skip savepoint state that no operator of the new job claims.
    #[serde(default)]
    pub allow_non_restored_state: bool,
    /// Change it to restart the job (same upgrade mode as a spec change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_nonce: Option<i64>,
    /// Change it to take a savepoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_nonce: Option<i64>,
    /// S3 access for checkpoints, savepoints and filesystem connectors on `s3://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Spec>,
    /// Right-size each vertex from its busy time and its sources' lag. Its per-vertex
    /// parallelism is kept in `status.autoscaler` and takes precedence over `parallelism`
    /// while it is enabled. Do not let an HPA drive the same job: the operator refuses
    /// the combination.
    #[serde(default, skip_serializing_if = "is_default")]
    pub autoscaler: AutoscalerSpec,
    /// Column masking and row rules the engine enforces at the sources, before any
    /// operator, state or sink sees a raw value. A change is an upgrade like any other.
    #[serde(default, skip_serializing_if = "DataPolicySpec::is_empty")]
    pub data_policy: DataPolicySpec,
}

fn is_default(a: &AutoscalerSpec) -> bool {
    *a == AutoscalerSpec::default()
}

fn one() -> i32 {
    1
}

fn default_max_parallelism() -> i32 {
    128
}

fn preserve_unknown(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    pub name: String,
    #[serde(default = "default_sql_key")]
    pub key: String,
}

fn default_sql_key() -> String {
    "job.sql".into()
}

/// Requests and limits as Kubernetes quantities, e.g. `{cpu: 500m, memory: 1Gi}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodResources {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    #[default]
    Running,
    Suspended,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeMode {
    /// The default, as in Flink's operator: no state survives an upgrade.
    #[default]
    Stateless,
    Savepoint,
    LastState,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeSpec {
    /// How long an upgraded job may take to become Stable before it is rolled back.
    #[serde(default = "default_readiness_timeout")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub readiness_timeout: String,
    /// How long a job must be RUNNING, with checkpoints completing, to be Stable.
    #[serde(default = "default_stabilization")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub stabilization_period: String,
    /// How long to wait for a savepoint before falling back (see the README).
    #[serde(default = "default_savepoint_timeout")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub savepoint_timeout: String,
}

fn default_readiness_timeout() -> String {
    "5m".into()
}
fn default_stabilization() -> String {
    "30s".into()
}
fn default_savepoint_timeout() -> String {
    "5m".into()
}

impl Default for UpgradeSpec {
    fn default() -> Self {
        UpgradeSpec {
            readiness_timeout: default_readiness_timeout(),
            stabilization_period: default_stabilization(),
            savepoint_timeout: default_savepoint_timeout(),
        }
    }
}

/// `spec.upgradeStrategy`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    /// `in-place` (the default) or `blue-green`.
    #[serde(default, rename = "type")]
    pub type_: StrategyType,
    #[serde(default)]
    pub blue_green: BlueGreenSpec,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyType {
    #[default]
    InPlace,
    BlueGreen,
}

/// `spec.upgradeStrategy.blueGreen`: when the new color has proved itself.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenSpec {
    /// The new color must stay healthy this long after its activation; the old color
    /// is kept, idle, for an instant rollback until then.
    #[serde(default = "default_verification_window")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub verification_window: String,
    /// Restarts of the new color allowed inside the window; one more rolls back.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_restarts: i32,
    /// The new color must complete a checkpoint inside the window.
    #[serde(default = "yes")]
    pub require_checkpoint: bool,
}

fn default_verification_window() -> String {
    "2m".into()
}

fn yes() -> bool {
    true
}

impl Default for BlueGreenSpec {
    fn default() -> Self {
        BlueGreenSpec { verification_window: default_verification_window(), max_restarts: 0, require_checkpoint: true }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointingSpec {
    /// The checkpoint interval (`execution.checkpointing.interval`).
    #[serde(default = "default_checkpoint_interval")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub interval: String,
    /// Where checkpoints go: `s3://bucket/prefix` or `file:///path`. The job's uid is appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
}

fn default_checkpoint_interval() -> String {
    "10s".into()
}

impl Default for CheckpointingSpec {
    fn default() -> Self {
        CheckpointingSpec { interval: default_checkpoint_interval(), storage: None }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavepointsSpec {
    /// Where savepoints go: `s3://bucket/prefix` or `file:///path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// Take a periodic savepoint this often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub interval: Option<String>,
    /// Savepoints kept in the history; older ones are deleted from storage. At least one is always kept.
    #[serde(default = "default_max_count")]
    #[schemars(range(min = 1))]
    pub max_count: i32,
    /// Savepoints older than this are deleted from storage (the newest completed one is always kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub max_age: Option<String>,
    /// Take a savepoint before the StreamJob is deleted.
    #[serde(default)]
    pub on_deletion: bool,
}

fn default_max_count() -> i32 {
    10
}

impl Default for SavepointsSpec {
    fn default() -> Self {
        SavepointsSpec {
            directory: None,
            interval: None,
            max_count: default_max_count(),
            max_age: None,
            on_deletion: false,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Spec {
    /// An S3-compatible endpoint, e.g. `http://s3.sluice-system:9000`. Path-style addressing is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A Secret with `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, passed to the engine pods with envFrom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalObjectRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
pub struct LocalObjectRef {
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_a_minimal_spec() {
        let spec: StreamJobSpec =
            serde_json::from_value(serde_json::json!({"image": "sluice/engine:0.1.0", "sql": "x"}))
                .expect("minimal spec");
        assert_eq!(spec.parallelism, 1);
        assert_eq!(spec.max_parallelism, 128);
        assert_eq!(spec.upgrade_mode, UpgradeMode::Stateless);
        assert_eq!(spec.upgrade_strategy.type_, StrategyType::InPlace);
        assert_eq!(spec.upgrade_strategy.blue_green.verification_window, "2m");
        assert!(spec.upgrade_strategy.blue_green.require_checkpoint);
        assert_eq!(spec.state, DesiredState::Running);
        assert_eq!(spec.upgrade.readiness_timeout, "5m");
        assert_eq!(spec.checkpointing.interval, "10s");
        assert_eq!(spec.savepoints.max_count, 10);
    }
}
