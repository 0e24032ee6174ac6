//! The `StreamJob` resource's status: what the operator observed and decided, and
//! its write-ahead log (the deployed spec, the upgrade record, the savepoint in flight).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::deployed_spec::{DeployedSpec, lenient};

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
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub reconciled_spec: Option<DeployedSpec>,
    /// The last spec that reached Stable, as JSON: what a rollback redeploys.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub last_stable_spec: Option<DeployedSpec>,
    /// The metadata.generation of the deployed spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled_generation: Option<i64>,
    /// The write-ahead record of a stop-and-redeploy in flight (upgrade, suspend, restart, rollback).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "record")]
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
    /// The color whose engine pods run the job (`blue` when absent): the other color's
    /// pods exist only during a blue-green cutover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_color: Option<Color>,
    /// The write-ahead record of a blue-green cutover in flight.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "record")]
    pub cutover: Option<CutoverRecord>,
    /// What the last cutover did and cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cutover: Option<CutoverReport>,
    /// What the autoscaler measured, decided and holds in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<crate::AutoscalerStatus>,
    /// The data policy the running job enforces: its id, since when, and what it masks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_policy: Option<crate::DataPolicyStatus>,
    /// The label selector of the job's engine pods (`sluice.dev/job=<name>`), for the
    /// scale subresource: what an HPA reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// How to open the running engine's web UI (the active color's coordinator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui: Option<EngineUi>,
}

/// Where the engine's web UI is: the REST port of the active color's coordinator
/// Service, which serves the UI at `/`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EngineUi {
    /// A command that forwards the UI to this machine; then open `url`.
    pub port_forward: String,
    /// The UI once `portForward` runs.
    pub url: String,
    /// The UI through the Kubernetes API server's service proxy: a path under the
    /// API server (`kubectl proxy`, then `http://127.0.0.1:8001<proxyPath>`).
    pub proxy_path: String,
}

/// A color of a blue-green job: its children are `<job>-…` (blue) or `<job>-green-…`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    #[default]
    Blue,
    Green,
}

impl Color {
    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }
}

impl std::fmt::Display for Color {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a blue-green cutover stands. The record is written before each step is taken.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CutoverStep {
    /// The new color's pods are being created; its coordinator checks, in standby, that
    /// it can restore the running job's newest snapshot. The old color is untouched.
    Preparing,
    /// The new color is ready: the old color stops with savepoint `triggerId`.
    Stopping,
    /// The old color stopped at `handoff`; the new color is activated from it.
    Activating,
    /// The new color runs; it must stay healthy for `verificationWindow`. The old
    /// color waits, idle, on the handoff savepoint.
    Verifying,
    /// The new color failed its verification: it stops with savepoint
    /// `rollbackTriggerId` if it can (`rollbackFrom` is where the old color resumes).
    RollingBack,
    /// The old color is activated from `rollbackFrom`.
    Restoring,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CutoverRecord {
    /// The metadata.generation being rolled out.
    pub target_generation: i64,
    /// The spec being rolled out, as JSON.
    pub target_spec: DeployedSpec,
    /// The color that runs the job until the cutover succeeds.
    pub from: Color,
    /// The new deployment's number (`status.deployment` once it takes over).
    pub deployment: i64,
    pub step: CutoverStep,
    /// The old color's stop-with-savepoint trigger id, chosen before it is requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    /// The old color's stop savepoint: where the new color starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<String>,
    /// RFC 3339: when the new color was seen RUNNING after its activation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated: Option<String>,
    /// The new color's stop-with-savepoint trigger id of a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_trigger_id: Option<String>,
    /// Where the old color resumes on a rollback: the new color's savepoint, or
    /// `latest` (its newest checkpoint) if it could not take one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_from: Option<String>,
    /// RFC 3339: when the cutover began (and when the current step began, for its timeout).
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started: Option<String>,
    /// Why the cutover is rolling back, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The figures, as they become known (see `CutoverReport`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_bytes: Option<i64>,
}

/// The figures of the last cutover (`status.lastCutover`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CutoverReport {
    /// `succeeded`, `rolledBack` or `aborted`.
    pub outcome: String,
    pub from: Color,
    pub to: Color,
    /// The metadata.generation it rolled out.
    pub generation: i64,
    /// Milliseconds from the old color's last commit (its stop savepoint completed) to
    /// the new color's first (its first checkpoint after the activation completed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<i64>,
    /// The size of the handoff savepoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_bytes: Option<i64>,
    /// What the new color read at its activation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_bytes: Option<i64>,
    /// RFC 3339.
    pub finished: String,
    /// Why it was rolled back or aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
    pub target_spec: DeployedSpec,
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

/// Reads a write-ahead record with a `targetSpec` (`status.upgrade`, `status.cutover`).
/// A record whose target spec cannot be read (a status edited by hand) is absent:
/// without its target it cannot go on, and the operator dropped such a record before
/// the spec was typed. Any other unreadable field is an error, as it was.
fn record<'de, D, R>(deserializer: D) -> Result<Option<R>, D::Error>
where
    D: Deserializer<'de>,
    R: serde::de::DeserializeOwned,
{
    let Some(value) = Option::<serde_json::Value>::deserialize(deserializer)? else { return Ok(None) };
    let target = value.get("targetSpec").and_then(serde_json::Value::as_str);
    if target.is_some_and(|json| DeployedSpec::from_json(json).is_err()) {
        return Ok(None);
    }
    serde_json::from_value(value).map(Some).map_err(serde::de::Error::custom)
}
