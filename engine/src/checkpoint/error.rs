//! The errors of the checkpoint layer: reading and writing snapshots, their
//! markers, and the lineage records under `_generations/`. Every message names
//! the object it concerns, so a user can find it in storage.

use sluice_storage::StorageError;

use super::metadata::{FORMAT_VERSION, MIN_FORMAT_VERSION};
use super::store::METADATA;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A directory without `_metadata` is not a snapshot.
    #[error(
        "{location}: no {METADATA}; the snapshot is incomplete (it was interrupted) or this is not a snapshot directory"
    )]
    Incomplete { location: String },
    /// A JSON record (a manifest, a marker, a generation) that cannot be read;
    /// `what` says which ("unreadable manifest", "damaged record", …).
    #[error("{uri}: {what}: {source}")]
    Unreadable { uri: String, what: &'static str, source: serde_json::Error },
    #[error(
        "{location}: snapshot format version {found} is newer than this engine's ({FORMAT_VERSION}); restore it with a newer sluice-engine"
    )]
    NewerFormat { location: String, found: u32 },
    #[error(
        "{location}: snapshot format version {found} is too old; this engine reads versions {MIN_FORMAT_VERSION} to {FORMAT_VERSION}"
    )]
    OlderFormat { location: String, found: u32 },
    #[error("{uri}: size {size} differs from the manifest's {expected}; the file is truncated or damaged")]
    Truncated { uri: String, size: u64, expected: u64 },
    #[error("{uri}: checksum mismatch; the file is damaged")]
    Checksum { uri: String },
    /// A state file that the load did not keep in memory.
    #[error("{uri}: not in the snapshot")]
    NotLoaded { uri: String },
    #[error("{uri}: a section lies outside the file")]
    OutsideFile { uri: String },
    /// A storage call failed; `context` says on what ("cannot claim …").
    #[error("{context}: {source}")]
    Access { context: String, source: StorageError },
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error("cannot encode a record: {0}")]
    Encode(serde_json::Error),
    #[error("cannot claim a generation under {job_dir}: too many coordinators are starting at once")]
    Contended { job_dir: String },
    /// A fault injected by a test (see `crate::failpoint`).
    #[error("{0}")]
    Injected(String),
}

impl SnapshotError {
    /// Whether the snapshot itself is damaged (a truncated, bit-flipped, missing or
    /// unreadable file, or a format this engine cannot read), as opposed to the
    /// storage failing to answer: an older snapshot is then the way forward.
    pub fn is_damage(&self) -> bool {
        match self {
            SnapshotError::Unreadable { .. }
            | SnapshotError::NewerFormat { .. }
            | SnapshotError::OlderFormat { .. }
            | SnapshotError::Truncated { .. }
            | SnapshotError::Checksum { .. }
            | SnapshotError::NotLoaded { .. }
            | SnapshotError::OutsideFile { .. } => true,
            SnapshotError::Access { source, .. } | SnapshotError::Storage(source) => source.is_not_found(),
            _ => false,
        }
    }
}
