//! A snapshot read into memory and verified ([`Loaded`]), and shared
//! references to its sections ([`SectionRef`]): a lazy restore (see
//! `runtime::lazy`) holds the sections it has not decoded yet, and a process
//! lets go of its copy of the state files once its subtasks are built.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::error::SnapshotError;
use super::metadata::Metadata;

/// A snapshot read into memory and verified.
pub struct Loaded {
    pub metadata: Metadata,
    /// The snapshot directory's URI.
    pub location: String,
    /// State files by manifest path, shared so that a lazy restore (see
    /// `runtime::lazy`) can hold the sections it has not decoded yet.
    files: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    /// Whether the state files were let go ([`Loaded::release_files`]).
    released: AtomicBool,
    /// Complete checkpoints newer than this one, of the same generation, that
    /// could not be restored (damaged): their output may be committed, and a
    /// restore of this one withdraws it before the replay writes it again
    /// (see [`crate::runtime::sink_setups`]).
    pub passed_over: Vec<u64>,
    /// The bytes read from storage: less than the snapshot's size when a
    /// cache held some of its files (see [`super::cache`]).
    pub read_bytes: u64,
}

impl Loaded {
    pub(super) fn new(
        metadata: Metadata,
        location: String,
        files: HashMap<String, Arc<Vec<u8>>>,
        read_bytes: u64,
    ) -> Loaded {
        Loaded {
            metadata,
            location,
            files: Mutex::new(files),
            released: AtomicBool::new(false),
            passed_over: Vec::new(),
            read_bytes,
        }
    }

    fn files(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Vec<u8>>>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A loaded file's bytes.
    pub fn file(&self, path: &str) -> Option<Arc<Vec<u8>>> {
        self.files().get(path).cloned()
    }

    /// How many files are in memory, and their bytes.
    pub fn in_memory(&self) -> (usize, u64) {
        let files = self.files();
        (files.len(), files.values().map(|f| f.len() as u64).sum())
    }

    /// Lets go of the state files once an attempt's subtasks are built: the
    /// sinks and sources took their sections, and a lazy restore keeps its own
    /// references to the keyed state it has not decoded yet (a file goes
    /// when the last key group in it is restored). A running job thus keeps no copy of
    /// its snapshot; a later attempt loads it again (`runtime::start::reload`).
    pub fn release_files(&self) {
        self.files().clear();
        self.released.store(true, Ordering::SeqCst);
    }

    /// Whether [`Loaded::release_files`] let the files go.
    pub fn released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    /// A section of a subtask's state file, as a shared reference into its
    /// file, which stays in memory while the reference lives.
    pub fn section(&self, file: &str, offset: u64, len: u64) -> Result<SectionRef, SnapshotError> {
        if len == 0 {
            return Ok(SectionRef::whole(Vec::new()));
        }
        let uri = || format!("{}/{file}", self.location);
        let bytes = self.file(file).ok_or_else(|| SnapshotError::NotLoaded { uri: uri() })?;
        let end = offset.checked_add(len).filter(|e| *e <= bytes.len() as u64);
        match end {
            Some(end) => Ok(SectionRef { file: bytes, range: offset as usize..end as usize }),
            None => Err(SnapshotError::OutsideFile { uri: uri() }),
        }
    }
}

/// A section of a loaded state file (see [`Loaded::section_ref`]).
#[derive(Clone)]
pub struct SectionRef {
    file: Arc<Vec<u8>>,
    range: std::ops::Range<usize>,
}

impl SectionRef {
    /// A section that is a whole file of its own.
    pub fn whole(bytes: Vec<u8>) -> SectionRef {
        let range = 0..bytes.len();
        SectionRef { file: Arc::new(bytes), range }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.file[self.range.clone()]
    }

    /// Whether both are sections of the same file.
    pub fn same_file(&self, other: &SectionRef) -> bool {
        Arc::ptr_eq(&self.file, &other.file)
    }
}
