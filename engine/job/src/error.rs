//! The errors of a job's definition: what the user wrote is wrong, and the
//! message says where (the file, line and column of the SQL; the table; the
//! configuration key).

use sluice_connectors::ConnectorError;
use sluice_sql::SqlError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Bad SQL, rendered `FILE:LINE:COL: message`.
    #[error("{}", .error.render(.file))]
    Sql { file: String, error: SqlError },
    /// A table's connector options.
    #[error("{0}")]
    Connector(#[from] ConnectorError),
    /// A configuration key, named in the message.
    #[error("configuration: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}
