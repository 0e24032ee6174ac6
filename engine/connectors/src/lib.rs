//! Sources and sinks of Sluice jobs.
//!
//! A connector is chosen by the `'connector'` option of a `CREATE TABLE`. Each
//! source subtask owns one [`SourceReader`]; each sink subtask owns one
//! [`SinkWriter`]. Readers and writers run on the subtask's own thread, so they
//! may block (a rate-limited datagen sleeps, a file reader reads).
//!
//! Option names follow Apache Flink's connectors, so the same `CREATE TABLE`
//! runs on Flink and on Sluice.

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

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
    #[error("table `{table}`: {path}:{line}: {message}")]
    Parse { table: String, path: PathBuf, line: u64, message: String },
    #[error("table `{table}`: {message}")]
    Arrow { table: String, message: String },
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
    /// Records known to be waiting to be read (source lag), when known.
    fn pending_records(&self) -> Option<u64> {
        None
    }
    /// Records skipped because they could not be parsed (`json.ignore-parse-errors`).
    fn skipped_records(&self) -> u64 {
        0
    }
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
}

/// One sink subtask's writer.
pub trait SinkWriter: Send {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError>;
    /// Called once when every input has ended (a bounded job finished): flush and
    /// make all output final and visible.
    fn finish(&mut self) -> Result<(), ConnectorError>;
}

// The factory functions below are the crate's entry points; the engine calls
// nothing else.
//
// pub fn create_source(ctx: &SourceContext) -> Result<Box<dyn SourceReader>, ConnectorError>;
// pub fn create_sink(ctx: &SinkContext) -> Result<Box<dyn SinkWriter>, ConnectorError>;
// pub fn validate_table(table: &str, options: &BTreeMap<String, String>, schema: &SchemaRef, role: Role) -> Result<(), ConnectorError>;
// pub fn is_bounded(options: &BTreeMap<String, String>) -> bool;
