//! The `filesystem` connector, as a source and as a sink, on local paths and
//! on `s3://bucket/prefix` URIs (also `s3a://`, `s3p://`), the latter reached
//! through `sluice-storage` with the engine's S3 settings
//! ([`crate::SourceContext::s3`], [`crate::SinkContext::s3`]).
//!
//! - [`source`]: reads the files under a path, each file a checkpointed split;
//! - [`sink`]: writes rows into rolling part files;
//! - [`commit`]: the two-phase commit that makes part files visible exactly
//!   once, and the recovery of a restored sink (its invariants are stated
//!   there);
//! - [`fsio`] and [`s3io`]: all local file-system access, and all S3 access.
//!
//! The source splits, committables and sink states that this connector puts
//! in checkpoints are encoded in `crate::state::filesystem`, beside the
//! other connectors' state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use sluice_format::types::ColType;
use sluice_storage::{S3Options, Storage, StorageError};

use crate::format::{Format, cdc::CDC_OPTIONS, csv::CSV_OPTIONS, json::JSON_OPTIONS};
use crate::options::Options;
use crate::{ConnectorError, SinkContext};

mod commit;
mod commit_log;
mod fsio;
mod lag;
mod s3io;
mod sink;
mod source;

pub(crate) use commit::{recover, withdraw};
pub use commit_log::COMMIT_LOG_DIR;
pub(crate) use sink::FsSink;
pub(crate) use source::FsSource;

use s3io::S3Root;

const DEFAULT_ROLL_SIZE: u64 = 128 << 20;
/// Flink's defaults of `sink.rolling-policy.rollover-interval` and
/// `sink.rolling-policy.inactivity-interval`.
const DEFAULT_ROLLOVER_INTERVAL: Duration = Duration::from_secs(30 * 60);
const DEFAULT_INACTIVITY_INTERVAL: Duration = Duration::from_secs(30 * 60);

pub(crate) fn supported_options() -> String {
    format!(
        "'path', 'format', 'source.monitor-interval', 'sink.rolling-policy.file-size', \
'sink.rolling-policy.rollover-interval', 'sink.rolling-policy.check-interval', \
'sink.rolling-policy.inactivity-interval', 'sink.commit-log.enabled', and the format options {JSON_OPTIONS}, {CSV_OPTIONS}, {CDC_OPTIONS}"
    )
}

#[derive(Debug, Clone)]
pub(crate) struct FsConfig {
    /// The local path, or the `s3://` URI as written.
    path: PathBuf,
    /// Whether `path` is an S3 URI.
    s3: bool,
    pub(crate) format: Format,
    monitor_interval: Option<Duration>,
    roll_size: u64,
    rollover_interval: Duration,
    inactivity_interval: Duration,
    types: Vec<ColType>,
    /// `sink.commit-log.enabled`: record each commit (see [`commit_log`]).
    commit_log: bool,
}

impl FsConfig {
    pub(crate) fn parse(o: &Options<'_>, schema: &SchemaRef) -> Result<Self, ConnectorError> {
        let raw = o.required("path", "a file or directory path")?.trim();
        let s3 = s3io::is_s3(raw);
        if s3 {
            // Syntax only (bucket name, no '..'); no I/O.
            S3Root::open(raw, &S3Options::default()).map_err(|e| o.error(format!("option 'path': {e}")))?;
        }
        let path = PathBuf::from(raw);
        let format = Format::parse(o)?;
        let monitor_interval = o.duration("source.monitor-interval")?;
        if monitor_interval == Some(Duration::ZERO) {
            return Err(o.error("option 'source.monitor-interval' must be greater than zero"));
        }
        let roll_size = o.memory_size("sink.rolling-policy.file-size")?.unwrap_or(DEFAULT_ROLL_SIZE);
        if roll_size == 0 {
            return Err(o.error("option 'sink.rolling-policy.file-size' must be greater than zero"));
        }
        let rollover_interval =
            o.duration("sink.rolling-policy.rollover-interval")?.unwrap_or(DEFAULT_ROLLOVER_INTERVAL);
        let inactivity_interval =
            o.duration("sink.rolling-policy.inactivity-interval")?.unwrap_or(DEFAULT_INACTIVITY_INTERVAL);
        // Sluice checks the time-based policies whenever rows arrive and closes
        // the open file at every checkpoint, so it needs no timer.
        o.duration("sink.rolling-policy.check-interval")?;
        let commit_log = o.bool("sink.commit-log.enabled", false)?;
        let types = format.column_types(schema.fields(), "filesystem").map_err(|e| o.error(e.to_string()))?;
        o.check_all_used("filesystem", &supported_options())?;
        Ok(FsConfig {
            path,
            s3,
            format,
            monitor_interval,
            roll_size,
            rollover_interval,
            inactivity_interval,
            types,
            commit_log,
        })
    }
}

/// An I/O error on `path`; a storage error carried inside it (reading an S3
/// object) becomes [`ConnectorError::Storage`], whose message names the URI.
fn connector_io_error(table: &str, path: &Path, e: std::io::Error) -> ConnectorError {
    if e.get_ref().is_some_and(|inner| inner.is::<StorageError>()) {
        match e.into_inner().map(|inner| inner.downcast::<StorageError>()) {
            Some(Ok(source)) => return storage_error(table, *source),
            Some(Err(other)) => {
                return ConnectorError::Io {
                    table: table.to_string(),
                    path: path.to_path_buf(),
                    source: std::io::Error::other(other),
                };
            }
            None => {
                return ConnectorError::Io {
                    table: table.to_string(),
                    path: path.to_path_buf(),
                    source: std::io::Error::other("unknown error"),
                };
            }
        }
    }
    ConnectorError::Io { table: table.to_string(), path: path.to_path_buf(), source: e }
}

fn storage_error(table: &str, source: StorageError) -> ConnectorError {
    ConnectorError::Storage { table: table.to_string(), source }
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    let b = name.as_encoded_bytes();
    b.first().is_some_and(|c| *c == b'.' || *c == b'_')
}

/// The storage at an S3 sink's prefix.
fn sink_storage(ctx: &SinkContext, cfg: &FsConfig) -> Result<Storage, ConnectorError> {
    S3Root::open(&cfg.path.to_string_lossy(), &ctx.s3).map(|r| r.storage()).map_err(|e| storage_error(&ctx.table, e))
}
