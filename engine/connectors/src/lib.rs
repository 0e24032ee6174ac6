//! Sources and sinks of Sluice jobs.
//!
//! A connector is chosen by the `'connector'` option of a `CREATE TABLE`. Each
//! source subtask owns one [`SourceReader`]; each sink subtask owns one
//! [`SinkWriter`]. Readers and writers run on the subtask's own thread, so they
//! may block (a rate-limited datagen sleeps, a file reader reads).
//!
//! Option names follow Apache Flink's connectors, so the same `CREATE TABLE`
//! runs on Flink and on Sluice.
//!
//! Checkpoints: a reader's [`SourceReader::snapshot`] returns the state of the
//! splits it owns (datagen and nexmark: strides of the generator; filesystem:
//! files, with the offset of the next unread record); a restored subtask gets
//! every split of every old subtask in [`SourceContext::restored_splits`] and
//! picks its own, so a source can be restored at any parallelism. Sinks take
//! part in a two-phase commit ([`SinkWriter::pre_commit`],
//! [`SinkWriter::commit`], [`recover_sink`]): the filesystem sink is
//! exactly-once; print is at-least-once, as in Flink; blackhole keeps nothing.
//! The encoding of every state blob is described in the `state` module.
//!
//! The filesystem connector reads and writes local paths and `s3://bucket/prefix`
//! URIs (also `s3a://`, `s3p://`), the latter through `sluice-storage` with the
//! engine's S3 settings ([`SourceContext::s3`], [`SinkContext::s3`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

mod blackhole;
mod datagen;
mod filesystem;
mod format;
mod kafka;
mod nexmark;
mod options;
mod print;
mod rng;
mod state;
mod throttle;
pub mod values;

/// Test support: a real Apache Kafka broker and a client for tests (the `testing` feature).
#[cfg(feature = "testing")]
pub mod testing;

pub use filesystem::COMMIT_LOG_DIR;
use options::Options;
/// The S3 settings type of [`SourceContext::s3`] and [`SinkContext::s3`].
pub use sluice_storage::S3Options;
pub use state::StateError;

/// Errors of connectors. Each variant names the table, and the file and line
/// where there is one, so that a user can find the cause.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("table `{table}`: unknown connector '{connector}'; supported connectors are {supported}")]
    UnknownConnector { table: String, connector: String, supported: &'static str },
    #[error("table `{table}`: {message}")]
    InvalidOption { table: String, message: String },
    #[error("table `{table}`: {path}: {source}")]
    Io { table: String, path: PathBuf, source: std::io::Error },
    /// An object-storage (S3) operation failed. The storage error names the
    /// full `s3://` URI and what to check (bucket, credentials, endpoint).
    #[error("table `{table}`: {source}")]
    Storage { table: String, source: sluice_storage::StorageError },
    /// The Kafka client or broker refused or failed an operation.
    #[error("table `{table}`: Kafka: {message}")]
    Kafka { table: String, message: String },
    #[error("table `{table}`: {path}:{line}: {message}")]
    Parse { table: String, path: PathBuf, line: u64, message: String },
    /// A batch that could not be built, or that does not match the table.
    #[error("table `{table}`: {source}")]
    Batch { table: String, source: BatchError },
    /// Checkpoint state (a split, a committable, a sink state) that cannot be
    /// used: corrupt, of another connector, or of a newer format version.
    #[error("table `{table}`: cannot restore from checkpoint state: {source}")]
    State { table: String, source: StateError },
}

/// Why a batch could not be built or written. Apart from the 2 GiB limit of
/// Arrow's string offsets, each is a bug: the engine builds every batch
/// against the table's schema.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Arrow refused the arrays (lengths, offsets, precision).
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A batch handed to a sink whose columns are not the table's.
    #[error("{0}")]
    Columns(#[from] sluice_format::columns::ColumnsError),
    #[error("decimal builder for a column of type {0}")]
    DecimalBuilder(arrow::datatypes::DataType),
    /// A generator asked for a split it does not own.
    #[error("no split {0}")]
    NoSplit(usize),
    #[error("a batch of random strings exceeds 2 GiB; lower the batch size or the length")]
    RandomStringsTooLarge,
    #[error("a batch of nexmark strings exceeds 2 GiB; lower the batch size")]
    NexmarkStringsTooLarge,
}

/// What a source subtask needs to know to build its reader.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// The table name, for error messages.
    pub table: String,
    /// The `WITH (...)` options, keys as written (Flink's option names).
    pub options: BTreeMap<String, String>,
    /// The physical columns the reader must produce, in order. Computed columns are
    /// not included: the engine evaluates them after the reader.
    pub schema: SchemaRef,
    /// This subtask's index and the source's parallelism: a reader reads only its
    /// share (files, row ranges).
    pub subtask: usize,
    pub parallelism: usize,
    /// Preferred rows per batch.
    pub batch_size: usize,
    /// `table.local-time-zone`, an IANA name or a fixed offset; `UTC` by default.
    pub local_time_zone: String,
    /// Split states restored from a checkpoint: ALL splits snapshotted by ALL
    /// subtasks of this source (at whatever parallelism it had), in any order;
    /// None on a fresh start. Each reader takes the splits it owns by its own
    /// deterministic rule for (subtask, parallelism) and may use the others as
    /// knowledge (e.g. which files are done).
    pub restored_splits: Option<Vec<Vec<u8>>>,
    /// S3 settings from the engine configuration (`s3.*` keys, see
    /// [`S3Options::from_config`]), used for `s3://` paths.
    /// `S3Options::default()` uses the standard AWS chain only.
    pub s3: S3Options,
}

/// What a reader returns on each poll.
#[derive(Debug)]
pub enum SourceEvent {
    /// A batch of rows with exactly the context's schema.
    Batch(RecordBatch),
    /// Nothing is available now (an unbounded source waiting for data, or a
    /// rate-limited source ahead of its schedule). The caller polls again soon.
    Idle,
    /// The source is finished: it is bounded and has produced everything.
    End,
}

/// One source subtask's reader.
pub trait SourceReader: Send {
    /// Produces the next batch. May block for a short while (at most ~100 ms).
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError>;
    /// Whether this subtask has any work at all (a filesystem subtask without
    /// files has none). A reader without work is idle for watermark purposes.
    fn has_work(&self) -> bool {
        true
    }
    /// Records waiting to be read (source lag), summed over the splits this
    /// reader owns, when it knows them; `None` is "unknown", never 0.
    fn pending_records(&self) -> Option<u64> {
        None
    }
    /// The number of splits of the whole source (every subtask's, as this
    /// reader knows them), when it bounds the source's useful parallelism:
    /// a subtask beyond it would have nothing to read. `None` when unknown or
    /// unbounded.
    fn splits(&self) -> Option<u64> {
        None
    }
    /// Records skipped because they could not be parsed (`json.ignore-parse-errors`).
    fn skipped_records(&self) -> u64 {
        0
    }
    /// Per-split watermarks (Flink's per-partition watermarks): when each
    /// batch comes from one split, the split of the batch that `poll` just
    /// returned, and every split this reader owns now. The engine then keeps a
    /// watermark per split and emits their minimum, so that a subtask reading
    /// several partitions never emits a watermark that one of them violates.
    /// `None` (the default): one watermark for the subtask's whole input.
    fn batch_split(&self) -> Option<(u32, Vec<u32>)> {
        None
    }
    /// The state that [`SourceReader::snapshot`] just returned belongs to
    /// checkpoint `checkpoint`.
    fn checkpoint_taken(&mut self, _checkpoint: u64) {}
    /// Checkpoint `checkpoint` completed (Kafka commits its offsets to the
    /// consumer group then, for monitoring, as Flink does).
    fn checkpoint_complete(&mut self, _checkpoint: u64) {}
    /// Buffer debloating asks for batches of at most `rows` while the source's
    /// channels are backpressured, so that the runtime injects a checkpoint
    /// barrier between smaller batches; `usize::MAX` returns to the configured
    /// `execution.batch-size`, which is never exceeded. A reader that cannot cut
    /// its batches ignores it.
    fn set_batch_size(&mut self, _rows: usize) {}
    /// The job reads only the physical columns marked `true` (Flink's projection
    /// push-down): the reader may leave the others NULL instead of converting
    /// them. A reader that cannot skip columns ignores it.
    fn read_only(&mut self, _columns: &[bool]) {}
    /// The state of every split this reader owns, opaque bytes each, taken
    /// between two polls: after a restore from these bytes, the reader
    /// continues exactly after the last row returned by poll() before the
    /// snapshot (no row lost, none repeated).
    fn snapshot(&self) -> Result<Vec<Vec<u8>>, ConnectorError>;
}

/// What a sink subtask needs to know to build its writer.
#[derive(Debug, Clone)]
pub struct SinkContext {
    pub table: String,
    pub options: BTreeMap<String, String>,
    /// The columns written, in order.
    pub schema: SchemaRef,
    pub subtask: usize,
    pub parallelism: usize,
    /// The job id, stable across restarts; usable in part-file names.
    pub job_id: String,
    pub local_time_zone: String,
    /// Sink states restored from a checkpoint: every
    /// [`SinkWriter::snapshot_state`] of every subtask at the old parallelism;
    /// None on a fresh start.
    pub restored_states: Option<Vec<Vec<u8>>>,
    /// S3 settings from the engine configuration (`s3.*` keys, see
    /// [`S3Options::from_config`]), used for `s3://` paths.
    /// `S3Options::default()` uses the standard AWS chain only.
    pub s3: S3Options,
    /// The checkpoint interval; None when checkpointing is off. A
    /// transactional sink checks its transaction timeout against it.
    pub checkpoint_interval: Option<std::time::Duration>,
    /// Who commits: what a sink's commit log records.
    pub committer: Committer,
}

/// Which deployment of a job commits a sink's output: the filesystem sink's
/// commit log (`sink.commit-log.enabled`) records it with each commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committer {
    /// The deployment's name (`--deployment-name`, `SLUICE_DEPLOYMENT`); the
    /// operator names its deployments `<number>-<color>`, e.g. `3-green`.
    /// Empty when unnamed.
    pub deployment: String,
    /// The generation of the job that the committing coordinator claimed;
    /// 0 when unknown.
    pub generation: u64,
}

/// One sink subtask's writer.
pub trait SinkWriter: Send {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError>;
    /// Called once when every input has ended (a bounded job finished): flush and
    /// make all output final and visible.
    fn finish(&mut self) -> Result<(), ConnectorError>;
    /// Checkpoint barrier (pre-commit): flush everything written since the last
    /// pre_commit into durable, invisible pending form and return an opaque
    /// committable describing it (may describe nothing). Output written after
    /// this call belongs to the next checkpoint.
    fn pre_commit(&mut self, checkpoint_id: u64) -> Result<Vec<u8>, ConnectorError>;
    /// Make these committables visible (the checkpoint completed). Idempotent:
    /// a committable already committed (pending file gone, final file present)
    /// is skipped without error. Called on the same writer that produced them.
    fn commit(&mut self, committables: &[Vec<u8>]) -> Result<(), ConnectorError>;
    /// Small per-subtask state stored in the checkpoint with the committable
    /// (e.g. the next part-file counter), handed back through
    /// [`SinkContext::restored_states`].
    fn snapshot_state(&self) -> Result<Vec<u8>, ConnectorError> {
        Ok(Vec::new())
    }
}

/// Whether a table is used as a source or as a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Sink,
}

/// The connectors and the roles they support.
const CONNECTORS: &str = "'datagen' (source), 'nexmark' (source), 'filesystem' (source and sink), 'kafka' (source and sink), 'upsert-kafka' (source and sink), 'print' (sink) and 'blackhole' (sink)";

/// A connector's parsed and validated configuration.
enum Config {
    Datagen(datagen::DatagenConfig),
    Nexmark(nexmark::NexmarkConfig),
    Filesystem(filesystem::FsConfig),
    Kafka(Box<kafka::KafkaConfig>),
    Print(print::PrintConfig),
    /// Rows per second per sink subtask, if throttled, and whether the subtasks in
    /// one process share that rate.
    Blackhole(Option<u64>, bool),
}

/// Parses and validates the options of `table` for `role`; the single place
/// where option rules live, shared by validation and construction.
fn configure(
    table: &str,
    options: &BTreeMap<String, String>,
    schema: &SchemaRef,
    role: Role,
) -> Result<Config, ConnectorError> {
    let o = Options::new(table, options);
    let connector = o.required("connector", &format!("one of {CONNECTORS}"))?.trim();
    let wrong_role = |what: &str| {
        Err(ConnectorError::InvalidOption {
            table: table.to_string(),
            message: format!("connector '{connector}' can only be used as a {what}"),
        })
    };
    if connector != "kafka"
        && connector != "upsert-kafka"
        && let Some((f, key)) =
            schema.fields().iter().find_map(|f| sluice_api::columns::metadata_key(f.metadata()).map(|k| (f, k)))
    {
        return Err(ConnectorError::InvalidOption {
            table: table.to_string(),
            message: format!(
                "column `{}`: connector '{connector}' has no metadata columns (METADATA FROM '{key}'); of Sluice's connectors, 'kafka' has them{}",
                f.name(),
                if options.get("format").is_some_and(|f| format::cdc::CDC_FORMATS.contains(&f.trim())) {
                    " (a changelog format's metadata, such as 'value.source.timestamp', is read by 'kafka' tables; Flink's filesystem source offers only its 'file.*' keys)"
                } else {
                    ""
                }
            ),
        });
    }
    match connector {
        "datagen" | "nexmark" if role == Role::Sink => wrong_role("source"),
        "print" | "blackhole" if role == Role::Source => wrong_role("sink"),
        "datagen" => Ok(Config::Datagen(datagen::DatagenConfig::parse(&o, schema)?)),
        "nexmark" => Ok(Config::Nexmark(nexmark::NexmarkConfig::parse(&o, schema)?)),
        "filesystem" => {
            let cfg = filesystem::FsConfig::parse(&o, schema)?;
            if role == Role::Sink {
                cfg.format.check_sink().map_err(|m| o.error(m))?;
            }
            Ok(Config::Filesystem(cfg))
        }
        "kafka" => Ok(Config::Kafka(Box::new(kafka::KafkaConfig::parse(&o, schema, role == Role::Sink, false)?))),
        "upsert-kafka" => Ok(Config::Kafka(Box::new(kafka::KafkaConfig::parse(&o, schema, role == Role::Sink, true)?))),
        "print" => Ok(Config::Print(print::PrintConfig::parse(&o, schema)?)),
        "blackhole" => {
            let throttle = o.u64("sink.throttle")?;
            if throttle == Some(0) {
                return Err(o.error("'sink.throttle' must be a positive number of rows per second"));
            }
            let shared = o.bool("sink.throttle.shared", false)?;
            if shared && throttle.is_none() {
                return Err(o.error("'sink.throttle.shared' needs 'sink.throttle'"));
            }
            o.check_all_used(
                "blackhole",
                "'sink.throttle' (rows per second per subtask, for testing backpressure) and \
                 'sink.throttle.shared' (the rate is for all subtasks in the process)",
            )?;
            Ok(Config::Blackhole(throttle, shared))
        }
        other => Err(ConnectorError::UnknownConnector {
            table: table.to_string(),
            connector: other.to_string(),
            supported: CONNECTORS,
        }),
    }
}

/// Builds the reader of one source subtask.
pub fn create_source(ctx: &SourceContext) -> Result<Box<dyn SourceReader>, ConnectorError> {
    match configure(&ctx.table, &ctx.options, &ctx.schema, Role::Source)? {
        Config::Datagen(c) => Ok(Box::new(datagen::DatagenReader::new(ctx, c)?)),
        Config::Nexmark(c) => Ok(Box::new(nexmark::NexmarkReader::new(ctx, c)?)),
        Config::Filesystem(c) => Ok(Box::new(filesystem::FsSource::new(ctx, c)?)),
        Config::Kafka(c) => Ok(Box::new(kafka::KafkaSource::new(ctx, *c)?)),
        Config::Print(_) | Config::Blackhole(..) => Err(ConnectorError::InvalidOption {
            table: ctx.table.clone(),
            message: "this connector can only be used as a sink".into(),
        }),
    }
}

/// Builds the writer of one sink subtask.
pub fn create_sink(ctx: &SinkContext) -> Result<Box<dyn SinkWriter>, ConnectorError> {
    match configure(&ctx.table, &ctx.options, &ctx.schema, Role::Sink)? {
        Config::Filesystem(c) => Ok(Box::new(filesystem::FsSink::new(ctx, c)?)),
        Config::Kafka(c) => Ok(Box::new(kafka::KafkaSink::new(ctx, *c)?)),
        Config::Print(c) => Ok(Box::new(print::PrintSink::new(ctx, c)?)),
        Config::Blackhole(Some(rate), true) => Ok(Box::new(blackhole::Blackhole::shared(&ctx.table, rate))),
        Config::Blackhole(throttle, _) => Ok(Box::new(blackhole::Blackhole::new(throttle))),
        Config::Datagen(_) | Config::Nexmark(_) => Err(ConnectorError::InvalidOption {
            table: ctx.table.clone(),
            message: "this connector can only be used as a source".into(),
        }),
    }
}

/// Called once per sink table by the engine before a restored job starts
/// (with the committables of the restored checkpoint that may not have been
/// committed yet), and also on a fresh start with job_id-based cleanup
/// (committables empty): commits the given committables (idempotent) and
/// deletes pending/in-progress hidden files of THIS job_id left by an earlier
/// attempt that are not among them. Never touches other jobs' files or
/// visible `part-*` files. On S3 the committables are multipart uploads that
/// are completed, and "hidden files" are pending multipart uploads of this job,
/// which are aborted (see the filesystem module for MinIO's limits). Connectors
/// without files do nothing.
pub fn recover_sink(ctx: &SinkContext, committables: &[Vec<u8>]) -> Result<(), ConnectorError> {
    match configure(&ctx.table, &ctx.options, &ctx.schema, Role::Sink)? {
        Config::Filesystem(c) => filesystem::recover(ctx, &c, committables),
        Config::Kafka(c) => kafka::recover(ctx, &c, committables),
        Config::Print(_) | Config::Blackhole(..) => Ok(()),
        Config::Datagen(_) | Config::Nexmark(_) => Err(ConnectorError::InvalidOption {
            table: ctx.table.clone(),
            message: "this connector can only be used as a source".into(),
        }),
    }
}

/// Withdraws the output that a sink committed after the checkpoint being
/// restored, when newer complete checkpoints could not be restored (they were
/// damaged) and the job falls back to an older one: the replay writes those
/// rows again. `states` are the restored writer states with the old subtask
/// of each. Returns the names of the files deleted; connectors without files
/// delete nothing.
pub fn withdraw_committed_after(ctx: &SinkContext, states: &[(usize, Vec<u8>)]) -> Result<Vec<String>, ConnectorError> {
    match configure(&ctx.table, &ctx.options, &ctx.schema, Role::Sink)? {
        Config::Filesystem(c) => filesystem::withdraw(ctx, &c, states),
        _ => Ok(Vec::new()),
    }
}

/// Checks a table's options and column types for `role` without creating
/// anything: unknown connector, missing or unknown options, bad values,
/// unsupported formats and column types are all errors naming the table and
/// the option.
pub fn validate_table(
    table: &str,
    options: &BTreeMap<String, String>,
    schema: &SchemaRef,
    role: Role,
) -> Result<(), ConnectorError> {
    configure(table, options, schema, role).map(|_| ())
}

/// Whether a source table with these options ends by itself: datagen with
/// `number-of-rows` or a sequence field, nexmark with `number-of-events`, a
/// filesystem source without `source.monitor-interval`, kafka and upsert-kafka
/// with `scan.bounded.mode`. Sink-only connectors count as bounded; an unknown
/// connector as unbounded.
pub fn is_bounded(options: &BTreeMap<String, String>) -> bool {
    let connector = options.get("connector").map(|c| c.trim());
    match connector {
        Some("datagen") => {
            options.contains_key("number-of-rows")
                || options
                    .iter()
                    .any(|(k, v)| k.starts_with("fields.") && k.ends_with(".kind") && v.trim() == "sequence")
        }
        Some("nexmark") => options.contains_key("number-of-events"),
        Some("filesystem") => !options.contains_key("source.monitor-interval"),
        Some("kafka") | Some("upsert-kafka") => {
            options.get("scan.bounded.mode").is_some_and(|m| m.trim() != "unbounded")
        }
        Some("print") | Some("blackhole") => true,
        _ => false,
    }
}
