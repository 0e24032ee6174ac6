//! The `sluice.dev/v1alpha1` custom resources: `StreamJob` and `StreamSavepoint`.
//!
//! The schema, its defaults and its CEL rules are generated from these types by
//! `crdgen` into `crds/`. Defaults live in the schema, so the API server fills
//! them in and the operator never writes `spec` (the GitOps rule).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

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
    scale(spec_replicas_path = ".spec.parallelism", status_replicas_path = ".status.currentParallelism"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Job", type_ = "string", json_path = ".status.jobState"),
    printcolumn(name = "Parallelism", type_ = "integer", json_path = ".status.currentParallelism"),
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

/// Durations as Flink writes them, exactly what the engine parses (`sluice_api::duration`).
const DURATION_PATTERN: &str = sluice_api::duration::PATTERN;

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

/// The lifecycle phase of a StreamJob.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema, Hash, PartialOrd, Ord,
)]
pub enum Phase {
    #[default]
    Created,
    Deploying,
    Running,
    Stable,
    Upgrading,
    Suspended,
    Finished,
    RollingBack,
    RolledBack,
    Failed,
    Deleting,
}

impl Phase {
    pub const ALL: [Phase; 11] = [
        Phase::Created,
        Phase::Deploying,
        Phase::Running,
        Phase::Stable,
        Phase::Upgrading,
        Phase::Suspended,
        Phase::Finished,
        Phase::RollingBack,
        Phase::RolledBack,
        Phase::Failed,
        Phase::Deleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Created => "Created",
            Phase::Deploying => "Deploying",
            Phase::Running => "Running",
            Phase::Stable => "Stable",
            Phase::Upgrading => "Upgrading",
            Phase::Suspended => "Suspended",
            Phase::Finished => "Finished",
            Phase::RollingBack => "RollingBack",
            Phase::RolledBack => "RolledBack",
            Phase::Failed => "Failed",
            Phase::Deleting => "Deleting",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the operator observed and decided. The status is the operator's write-ahead log.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamJobStatus {
    #[serde(default)]
    pub phase: Phase,
    /// The engine's job state (`RUNNING`, `FINISHED`, ...), as last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_parallelism: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_savepoint: Option<SavepointInfo>,
    /// Completed savepoints, oldest first, trimmed by `savepoints.maxCount` and `maxAge`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub savepoint_history: Vec<SavepointInfo>,
    /// The spec that is deployed, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled_spec: Option<String>,
    /// The last spec that reached Stable, as JSON: what a rollback redeploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_stable_spec: Option<String>,
    /// The metadata.generation of the deployed spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled_generation: Option<i64>,
    /// The write-ahead record of a stop-and-redeploy in flight (upgrade, suspend, restart, rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeRecord>,
    /// A savepoint in flight that stops nothing (periodic, nonce, StreamSavepoint-free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_savepoint: Option<PendingSavepoint>,
    /// The last `savepointNonce` acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_nonce: Option<i64>,
    /// A counter that makes every deployment distinct, so that a restarted coordinator pod
    /// recovers its own deployment's checkpoints but a new deployment starts as planned.
    #[serde(default)]
    pub deployment: i64,
    /// What the current deployment restored from (a savepoint, `latest`, or none):
    /// where a rollback of an upgrade restarts the last stable spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_from: Option<String>,
    /// The job has not run yet: set by its first deployment, cleared once the engine shows
    /// a deployment started (RUNNING, a restart or a completed checkpoint). While it is
    /// set nothing can have been committed, and the engine's `latest` would be empty
    /// state (it records where a run started only once its restore succeeded), so a
    /// redeploy restores `spec.initialSavepoint` and a change of it redeploys. Absent
    /// from a status written before this field: the job is taken to have run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub never_ran: bool,
    /// Savepoint triggers the operator has issued for this job. Each trigger id carries the
    /// next number, so ids follow from this write-ahead log and never from a clock: two
    /// reconciles planned from the same status ask for the same savepoint (the engine's
    /// trigger is idempotent per id), and a retried upgrade gets a new one.
    #[serde(default)]
    pub savepoint_triggers: i64,
    /// After an aborted upgrade, the next attempt waits until this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_retry_after: Option<String>,
    /// A generation that was rolled back; it is not rolled out again until the spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_generation: Option<i64>,
    /// When the job was last seen entering RUNNING (for `stabilizationPeriod`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_since: Option<String>,
    /// When the current deployment was created (for `readinessTimeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<String>,
    /// The newest error (engine, storage, validation), or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavepointInfo {
    pub location: String,
    /// RFC 3339.
    pub time: String,
    /// What took it: `upgrade`, `suspend`, `periodic`, `manual`, `deletion`, `rollback`.
    pub trigger: String,
}

/// Why a stop-and-redeploy is in flight.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UpgradeKind {
    Upgrade,
    Suspend,
    Restart,
    Rollback,
}

/// Where an upgrade in flight stands. The record is written before each step is taken.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UpgradeStep {
    /// The stop-with-savepoint was (or is about to be) requested with `triggerId`.
    Stopping,
    /// The savepoint failed or outlived `savepointTimeout`. The old engine pods are being
    /// removed; once they are all gone, storage is checked for the savepoint, which is
    /// restored if it completed after all, else the fallback (`note` says why).
    Fencing,
    /// The old job is stopped (`restoreFrom` says from where the new one starts); pods are removed next.
    Stopped,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeRecord {
    pub kind: UpgradeKind,
    /// The metadata.generation being rolled out.
    pub target_generation: i64,
    /// The spec being rolled out, as JSON.
    pub target_spec: String,
    pub step: UpgradeStep,
    /// The savepoint trigger id, chosen before the savepoint is requested (idempotent in the engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    /// What the new deployment restores: a savepoint location, `latest`, or none for an empty start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<String>,
    /// RFC 3339: when the upgrade began (for `savepointTimeout` and the duration metric).
    pub started: String,
    /// Why the upgrade fell back from a savepoint, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingSavepoint {
    pub trigger_id: String,
    pub trigger: String,
    pub started: String,
}

/// A one-off savepoint of a StreamJob.
// kube's printcolumn(...) lists repeat `type_ = "string"`, which this lint misreads.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "StreamSavepoint",
    namespaced,
    shortname = "ssp",
    status = "StreamSavepointStatus",
    derive = "PartialEq",
    doc = "A savepoint of a StreamJob",
    printcolumn(name = "Job", type_ = "string", json_path = ".spec.jobRef.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Location", type_ = "string", json_path = ".status.location"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct StreamSavepointSpec {
    /// The StreamJob in this namespace.
    #[x_kube(validation = Rule::new("self == oldSelf").message("jobRef is immutable"))]
    pub job_ref: LocalObjectRef,
    /// Defaults to the job's `savepoints.directory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// Delete the savepoint data when this object is deleted.
    #[serde(default)]
    pub dispose_on_delete: bool,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
pub enum SavepointPhase {
    #[default]
    Pending,
    InProgress,
    Completed,
    Failed,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamSavepointStatus {
    #[serde(default)]
    pub phase: SavepointPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub attempts: i32,
    /// The directory the savepoint was taken into: `disposeOnDelete` deletes only under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// The job's S3 settings (no secret values) when the savepoint completed, so that
    /// `disposeOnDelete` still works after the StreamJob is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Spec>,
}

/// A duration as the engine reads it (Flink's syntax: `10 s`, `10s`, `5 min`, `500 ms`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    sluice_api::duration::parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn defaults_fill_a_minimal_spec() {
        let spec: StreamJobSpec =
            serde_json::from_value(serde_json::json!({"image": "sluice/engine:0.1.0", "sql": "x"}))
                .expect("minimal spec");
        assert_eq!(spec.parallelism, 1);
        assert_eq!(spec.max_parallelism, 128);
        assert_eq!(spec.upgrade_mode, UpgradeMode::Stateless);
        assert_eq!(spec.state, DesiredState::Running);
        assert_eq!(spec.upgrade.readiness_timeout, "5m");
        assert_eq!(spec.checkpointing.interval, "10s");
        assert_eq!(spec.savepoints.max_count, 10);
    }
}
