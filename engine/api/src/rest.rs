//! The bodies of the engine's REST API, versioned under `/v1`. JSON fields are
//! camelCase, times RFC 3339 strings, durations milliseconds. The engine
//! serializes these types and the operator reads them; the engine's contract
//! test checks them against `engine/openapi.json`.

use serde::{Deserialize, Serialize};

/// The state of a job (`GET /v1/job`'s `state`), as Flink names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Created,
    Running,
    Failing,
    Restarting,
    Finished,
    Failed,
    Canceled,
    Suspended,
}

impl JobStatus {
    /// A job in this state does no more work.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Finished | JobStatus::Failed | JobStatus::Canceled | JobStatus::Suspended)
    }

    /// The name as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Created => "CREATED",
            JobStatus::Running => "RUNNING",
            JobStatus::Failing => "FAILING",
            JobStatus::Restarting => "RESTARTING",
            JobStatus::Finished => "FINISHED",
            JobStatus::Failed => "FAILED",
            JobStatus::Canceled => "CANCELED",
            JobStatus::Suspended => "SUSPENDED",
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A checkpoint or a savepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotKind {
    Checkpoint,
    Savepoint,
}

/// The progress of a checkpoint or savepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SnapshotStatus {
    InProgress,
    Completed,
    Failed,
}

/// `GET /v1/job`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    pub name: String,
    pub state: JobStatus,
    pub start_time: String,
    pub end_time: Option<String>,
    pub duration_ms: u64,
    /// Restarts after failures, by the restart strategy.
    pub restarts: u64,
    pub vertices: Vec<Vertex>,
    /// `None` until a checkpoint or savepoint completes.
    pub last_completed_checkpoint: Option<Checkpoint>,
    pub error: Option<String>,
}

impl Job {
    /// The largest vertex parallelism: what the job runs at.
    pub fn parallelism(&self) -> Option<usize> {
        self.vertices.iter().map(|v| v.parallelism).max()
    }
}

/// A vertex of the job graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vertex {
    pub id: usize,
    pub uid: String,
    pub name: String,
    pub parallelism: usize,
}

/// One checkpoint or savepoint, as `GET /v1/job/checkpoints` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub id: u64,
    pub kind: SnapshotKind,
    pub status: SnapshotStatus,
    pub trigger_time: String,
    /// From trigger to `_metadata` written (or to the failure).
    pub duration_ms: u64,
    pub size_bytes: u64,
    /// The longest time a subtask held input channels while aligning barriers.
    pub alignment_ms: u64,
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// `GET /v1/job/checkpoints`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoints {
    pub counts: CheckpointCounts,
    pub latest_completed: Option<Checkpoint>,
    /// Newest first.
    pub history: Vec<Checkpoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointCounts {
    pub completed: usize,
    pub failed: usize,
    pub in_progress: usize,
}

/// `GET /v1/job/metrics`: per vertex, aggregated over its subtasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMetrics {
    pub id: String,
    pub vertices: Vec<VertexMetrics>,
}

/// Ratios are averages over subtasks, rates and counts sums, the watermark the minimum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VertexMetrics {
    pub id: usize,
    pub name: String,
    pub parallelism: usize,
    pub busy_ratio: f64,
    pub backpressured_ratio: f64,
    pub idle_ratio: f64,
    pub busy_time_ms_per_second: f64,
    pub back_pressured_time_ms_per_second: f64,
    pub idle_time_ms_per_second: f64,
    pub records_in_per_second: f64,
    pub records_out_per_second: f64,
    pub bytes_in_per_second: f64,
    pub bytes_out_per_second: f64,
    pub records_in: u64,
    pub records_out: u64,
    /// RFC 3339, `+inf` once the input has ended, `None` before the first watermark.
    pub watermark: Option<String>,
    /// Records the sources have yet to read, where they know it.
    pub lag: Option<u64>,
    pub late_records_dropped: u64,
}

/// `POST /v1/job/savepoints`. A caller-chosen `triggerId` makes the call
/// idempotent: the same id returns the same savepoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SavepointRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_directory: Option<String>,
    /// Stop the job once the savepoint is complete.
    #[serde(default)]
    pub stop: bool,
    /// First send a final watermark that fires every window (Flink's `--drain`).
    #[serde(default)]
    pub drain: bool,
}

/// The answer to `POST /v1/job/savepoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavepointTriggered {
    pub trigger_id: String,
}

/// `GET /v1/job/savepoints/{triggerId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Savepoint {
    pub status: SnapshotStatus,
    pub location: Option<String>,
    pub error: Option<String>,
}

impl Savepoint {
    pub fn in_progress() -> Self {
        Savepoint { status: SnapshotStatus::InProgress, location: None, error: None }
    }
    pub fn completed(location: &str) -> Self {
        Savepoint { status: SnapshotStatus::Completed, location: Some(location.into()), error: None }
    }
    pub fn failed(error: &str) -> Self {
        Savepoint { status: SnapshotStatus::Failed, location: None, error: Some(error.into()) }
    }
}

/// The body of an error answer (4xx, 5xx).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names() {
        assert_eq!(serde_json::to_string(&JobStatus::Restarting).unwrap(), "\"RESTARTING\"");
        assert_eq!(JobStatus::Canceled.to_string(), "CANCELED");
        assert_eq!(serde_json::to_string(&SnapshotStatus::InProgress).unwrap(), "\"IN_PROGRESS\"");
        let r: SavepointRequest = serde_json::from_str(r#"{"triggerId":"t","stop":true}"#).unwrap();
        assert_eq!(r, SavepointRequest { trigger_id: Some("t".into()), stop: true, ..Default::default() });
        assert!(serde_json::from_str::<SavepointRequest>(r#"{"stop":"yes"}"#).is_err());
        assert!(serde_json::from_str::<SavepointRequest>(r#"{"bogus":1}"#).is_err());
    }
}
