//! Engine errors. Each names the job, the file or the vertex it concerns.

use sluice_connectors::ConnectorError;
use sluice_job::JobError;
use sluice_sql::SqlError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Bad SQL, rendered `FILE:LINE:COL: message`.
    #[error("{}", .error.render(.file))]
    Sql { file: String, error: SqlError },
    #[error("{0}")]
    Connector(#[from] ConnectorError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// A failure while running; the message names the job and the vertex and
    /// subtask (or the worker) where it happened.
    #[error("{0}")]
    Failed(String),
    /// The job ended without finishing (it was canceled).
    #[error("job `{job}` ended {state}, not FINISHED")]
    Ended { job: String, state: String },
    /// Checkpoint or savepoint storage failed.
    #[error("{0}")]
    Storage(String),
    /// A snapshot, its markers or the job's lineage records cannot be read or written.
    #[error("{0}")]
    Snapshot(#[from] crate::checkpoint::error::SnapshotError),
    /// A snapshot cannot be restored into this job.
    #[error("cannot restore from {location}: {message}")]
    Restore { location: String, message: String },
    /// A newer coordinator took over the job.
    #[error("fenced: {0}")]
    Fenced(String),
    /// Talking to another engine process failed.
    #[error("{0}")]
    Cluster(String),
    /// An invariant of the engine was broken: a bug, reported with context.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Errors inside an operator; the runtime adds the job, vertex and subtask.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    Connector(#[from] ConnectorError),
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("{0}")]
    DataFusion(#[from] datafusion_common::DataFusionError),
    #[error("{0}")]
    Other(String),
}

/// A job definition's errors keep their messages (file, line and column; the
/// table; the configuration key).
impl From<JobError> for EngineError {
    fn from(e: JobError) -> EngineError {
        match e {
            JobError::Sql { file, error } => EngineError::Sql { file, error },
            JobError::Connector(c) => EngineError::Connector(c),
            JobError::Config(m) => EngineError::Config(m),
            JobError::Io { path, source } => EngineError::Io { path, source },
        }
    }
}
