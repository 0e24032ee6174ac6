//! The bodies of the engine's REST API, versioned under `/v1`. JSON fields are
//! camelCase, times RFC 3339 strings, durations milliseconds. The engine
//! serializes these types and the operator reads them; the engine's contract
//! test checks them against `engine/openapi.json`.

use serde::{Deserialize, Serialize};

/// The header that carries a coordinator's REST token through the Kubernetes API
/// server's service proxy, where `Authorization` authenticates the caller to the
/// API server itself. Elsewhere the token is `Authorization: Bearer <token>`.
pub const TOKEN_HEADER: &str = "x-sluice-rest-token";

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
    /// A blue-green standby: compiled, workers registered, the snapshot it will
    /// restore checked; it reads no source and commits nothing until it is
    /// activated (`POST /v1/job/activate`).
    Standby,
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
            JobStatus::Standby => "STANDBY",
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
    /// `pipeline.max-parallelism`: the number of key groups, and the most
    /// subtasks any vertex can have. `0` from an engine that does not report it.
    #[serde(default)]
    pub max_parallelism: usize,
    /// The id of the data policy the job enforces (FNV-1a of its JSON, as
    /// `StreamJob.status.dataPolicy.hash`); absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_policy: Option<String>,
    pub vertices: Vec<Vertex>,
    /// `None` until a checkpoint or savepoint completes.
    pub last_completed_checkpoint: Option<Checkpoint>,
    pub error: Option<String>,
    /// A coordinator started with `--standby`: whether it can be activated, and on what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<Standby>,
    /// The last activation of a standby coordinator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
}

/// A standby coordinator's readiness (`GET /v1/job`'s `standby`). It is present while
/// the coordinator waits for `POST /v1/job/activate`: before its first run (state
/// `STANDBY`), and after a run has ended (the state stays `FINISHED`, `FAILED` or
/// `CANCELED`), for example blue after it handed over to green.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Standby {
    /// Workers with enough slots are registered and the snapshot below was read,
    /// verified and found compatible with the job: activation starts at once.
    pub ready: bool,
    /// The snapshot it checked (what `latest` resolves to now), or `None` for empty state.
    pub preloaded: Option<String>,
    /// Its size in bytes.
    pub preloaded_bytes: u64,
    /// What it waits for, or why it cannot be activated.
    pub message: String,
}

/// `POST /v1/job/activate`: start the job from `restore`, a snapshot directory or
/// `latest` (the newest snapshot of the job's current lineage); absent or null for
/// empty state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivateRequest {
    #[serde(default)]
    pub restore: Option<String>,
    /// A caller-chosen id that makes the call idempotent, as a savepoint's `triggerId`:
    /// `activation` reports it, so the caller knows which activation the job runs from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// What an activation did (`GET /v1/job`'s `activation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activation {
    /// As requested (`None`: empty state).
    pub restore: Option<String>,
    /// The request's `id`, if it had one.
    pub id: Option<String>,
    /// The snapshot it resolved to, once known.
    pub restored_from: Option<String>,
    /// The size of the snapshot it restored (every file is read and verified;
    /// `0` for empty state).
    pub restore_bytes: u64,
    pub requested_at: String,
    /// When the job was RUNNING again.
    pub running_at: Option<String>,
}

impl Job {
    /// The largest vertex parallelism: what the job runs at.
    pub fn parallelism(&self) -> Option<usize> {
        self.vertices.iter().map(|v| v.parallelism).max()
    }
}

/// A vertex of the job graph.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vertex {
    pub id: usize,
    /// Stable for the same SQL and table options, whatever the parallelism: the
    /// key of `pipeline.jobvertex-parallelism-overrides`.
    pub uid: String,
    pub name: String,
    pub parallelism: usize,
    /// The edges into the vertex; none at a source.
    #[serde(default)]
    pub inputs: Vec<VertexInput>,
    /// Whether the vertex keeps keyed state in key groups (an input is
    /// hash-partitioned): its parallelism spreads `maxParallelism` key groups.
    #[serde(default)]
    pub keyed: bool,
    /// At a source, the number of splits of what it reads (the files of a
    /// filesystem source), once its readers know it: subtasks beyond it would
    /// have nothing to read. `None` when unknown or unbounded (datagen and
    /// nexmark split their streams at any parallelism), and at other vertices.
    #[serde(default)]
    pub splits: Option<usize>,
}

/// An edge into a vertex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VertexInput {
    /// The upstream vertex's id.
    pub vertex: usize,
    /// How records are spread over the vertex's subtasks, as `explain` prints it:
    /// `FORWARD` (subtask i to subtask i, equal parallelisms), `REBALANCE` (round
    /// robin), `HASH[k1, k2]` (by key group of the keys) or `GLOBAL` (all to subtask 0).
    pub partitioning: String,
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
    /// The size of every file the snapshot consists of, including those of
    /// earlier checkpoints that an incremental one refers to (Flink's full
    /// checkpoint data size).
    pub size_bytes: u64,
    /// The bytes this snapshot wrote itself: less than `sizeBytes` when it is
    /// incremental (Flink's checkpointed data size).
    #[serde(default)]
    pub written_bytes: u64,
    /// The longest time a subtask held input channels while aligning barriers.
    pub alignment_ms: u64,
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Each subtask's acknowledgement, in the order they arrived (empty while
    /// none has, and from engines that do not report them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acks: Vec<CheckpointAck>,
}

/// One subtask's acknowledgement of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointAck {
    pub vertex: usize,
    pub subtask: usize,
    /// From the trigger to the acknowledgement.
    pub ack_ms: u64,
    /// How long the subtask held input channels while aligning the barrier.
    pub alignment_ms: u64,
    /// How long the subtask's thread paused processing to take its snapshot
    /// (views of its state; encoding and upload happen off the thread):
    /// Flink's synchronous part of a checkpoint, in microseconds.
    #[serde(default)]
    pub pause_us: u64,
    /// The bytes of state the subtask wrote.
    pub state_bytes: u64,
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
    /// The vertex's uid, as in `GET /v1/job`.
    #[serde(default)]
    pub uid: String,
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
    /// At a source, records it has yet to read (its lag), summed over its
    /// subtasks; `None` when any subtask does not know it, and at other vertices.
    /// A rate-limited generator (datagen `rows-per-second`, nexmark
    /// `events-per-second`) stands for an upstream that produces at that rate:
    /// its lag is the rows behind that schedule, which a restore carries over
    /// (plus the rate times the time the job was down). The filesystem source
    /// estimates it: its unread bytes (the rest of the file being read and every
    /// listed file not yet read) over the mean bytes per record read so far,
    /// rounded up; unknown until it has read a record.
    pub lag: Option<u64>,
    pub late_records_dropped: u64,
    /// CPU seconds of the vertex's threads per million records in (over the last
    /// second, or since the start when nothing flowed): the cost per event.
    #[serde(default)]
    pub cpu_seconds_per_million_records: Option<f64>,
    /// Bytes of keyed and operator state in the last completed checkpoint,
    /// summed over subtasks; `None` before one.
    #[serde(default)]
    pub state_bytes: Option<u64>,
    /// Keys in the vertex's keyed state at the last checkpoint; `None` when unknown
    /// or the vertex keeps no keyed state.
    #[serde(default)]
    pub state_keys: Option<u64>,
    /// Of those, the entries the disk state backend holds on local disk (0 on
    /// the heap backend); `None` when unknown or the vertex keeps no keyed
    /// state that can spill (session windows).
    #[serde(default)]
    pub state_keys_on_disk: Option<u64>,
    /// At a sink: latency percentiles over the last minute (or since the start
    /// when the last minute had none); `None` at other vertices.
    #[serde(default)]
    pub latency: Option<SinkLatency>,
    /// When a subtask of the vertex first took a record in during this run, and
    /// when one last did (RFC 3339, ms; workers report every 500 ms, and at the end
    /// of a run; at a source: read); `None` before a record. The output pause of a
    /// cutover is the new color's sink `firstRecordAt` minus the old one's `lastRecordAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_record_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_record_at: Option<String>,
    #[serde(default)]
    pub subtasks: Vec<SubtaskMetrics>,
}

/// One subtask's figures (`GET /v1/job/metrics`'s `vertices[].subtasks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubtaskMetrics {
    pub subtask: usize,
    pub busy_ratio: f64,
    pub backpressured_ratio: f64,
    pub idle_ratio: f64,
    pub records_in_per_second: f64,
    pub records_out_per_second: f64,
    pub watermark: Option<String>,
    pub lag: Option<u64>,
    pub cpu_seconds_per_million_records: Option<f64>,
}

/// A sink's latency (`VertexMetrics.latency`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkLatency {
    /// Processing time at the sink's write minus each record's event time.
    /// Empty when the sink's input carries no event time (no time attribute
    /// or `window_end` column).
    pub event_time_lag_ms: Quantiles,
    /// From a source's read to the sink's write, measured by latency markers
    /// that sources send about every 100 ms and that wait in the same queues
    /// as records (Flink's `metrics.latency.interval`).
    pub processing_latency_ms: Quantiles,
}

/// Percentiles in milliseconds, estimated from a histogram whose buckets are at
/// most 25 % wide; `None` without values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quantiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    /// Values the percentiles are taken from.
    pub count: u64,
}

/// `GET /v1/job/history`: the last minutes of a job's figures, kept by the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// Time between points.
    pub interval_ms: u64,
    /// Oldest first.
    pub points: Vec<HistoryPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPoint {
    pub time: String,
    pub vertices: Vec<HistoryVertex>,
}

/// One vertex at one point of [`History`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryVertex {
    pub id: usize,
    pub records_in_per_second: f64,
    pub records_out_per_second: f64,
    pub busy_ratio: f64,
    pub backpressured_ratio: f64,
    /// Wall-clock time minus the vertex's watermark; `None` without a watermark
    /// or after the end of input.
    pub watermark_lag_ms: Option<i64>,
    /// At a sink: the 99th percentile of processing latency over the last 10 s.
    pub latency_p99_ms: Option<f64>,
}

/// `GET /v1/job/exceptions`: the job's failures, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exceptions {
    pub restarts: u64,
    pub exceptions: Vec<JobException>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobException {
    pub time: String,
    pub message: String,
    /// The restart strategy restarted the job after it.
    pub restarted: bool,
}

/// `GET /v1/job/plan`: the job's SQL and its plan, as `explain` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub file: String,
    pub sql: String,
    pub explain: String,
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

    #[test]
    fn an_older_engines_answers_still_parse() {
        let v: Vertex = serde_json::from_str(r#"{"id":1,"uid":"u","name":"n","parallelism":2}"#).unwrap();
        assert_eq!(v, Vertex { id: 1, uid: "u".into(), name: "n".into(), parallelism: 2, ..Default::default() });
        assert_eq!((v.inputs.len(), v.keyed, v.splits), (0, false, None));
        let v = Vertex {
            inputs: vec![VertexInput { vertex: 0, partitioning: "HASH[k]".into() }],
            keyed: true,
            splits: Some(3),
            ..v
        };
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["inputs"][0]["partitioning"], "HASH[k]");
        assert_eq!(json["splits"], 3);
        let job = r#"{"id":"j","name":"j.sql","state":"RUNNING","startTime":"t","endTime":null,"durationMs":1,
            "restarts":0,"vertices":[],"lastCompletedCheckpoint":null,"error":null}"#;
        assert_eq!(serde_json::from_str::<Job>(job).unwrap().max_parallelism, 0);
    }
}
