//! Sluice's object-storage layer: one blocking API over local directories and S3 (or an
//! S3-compatible store), used for checkpoints, savepoints and the files of file-system connectors.
//!
//! Callers are plain threads. The S3 backend runs the async AWS SDK on a private, lazily started
//! Tokio runtime and blocks on it, so callers never need a runtime of their own.
//!
//! Paths given to [`Storage`] methods are relative to the storage's base URI and use `/`
//! separators. Prefixes have directory semantics: `list("chk-1")` covers `chk-1/…` but not
//! `chk-10/…`.
//!
//! Two-phase uploads (for exactly-once sinks): [`Storage::begin_upload`] returns an [`Upload`];
//! [`Upload::prepare`] makes the data durable but invisible and returns an [`UploadHandle`] that is
//! stored in a checkpoint; [`Storage::complete_recorded`] publishes it, also from another process
//! after a restart. Invariants:
//! - before completion, the target is absent from `get`, `exists` and `list`;
//! - completion is atomic (a rename, or S3's CompleteMultipartUpload) and idempotent;
//! - uploads that were begun and never completed stay discoverable by
//!   [`Storage::list_pending_uploads`] until they are aborted.

mod error;
mod file;
mod handle;
mod location;
mod mem;
mod options;
mod s3;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;
use std::sync::Arc;

pub use error::StorageError;
pub use handle::UploadHandle;
pub use options::S3Options;

use location::Location;
use store::{ObjectStore, UploadSink};

/// Size of a multipart part on S3, and the threshold above which `put` uses multipart.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// An object found by [`Storage::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Path relative to the listing storage's base.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// A handle on a directory or bucket prefix. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Key prefix inside the store, normalized unless it was built from an invalid `child` path
    /// (then every operation fails with `InvalidUri`).
    base: String,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Storage").field(&self.uri()).finish()
    }
}

impl Storage {
    /// Opens `uri`: `file:///abs/dir`, a plain path (relative or absolute; treated as a local
    /// directory), or `s3://bucket/prefix`. Validates the syntax only; no I/O happens until the
    /// first operation (use [`Storage::check`] to fail early).
    pub fn open(uri: &str, s3: &S3Options) -> Result<Storage, StorageError> {
        let (store, base): (Arc<dyn ObjectStore>, String) = match location::parse(uri)? {
            Location::File(root) => (Arc::new(file::FileStore::new(root)), String::new()),
            Location::S3 { bucket, prefix } => (Arc::new(s3::S3Store::new(bucket, s3.clone())), prefix),
        };
        Ok(Storage { store, base })
    }

    /// An empty in-memory store, for unit tests of callers. Clones share the objects.
    pub fn in_memory() -> Storage {
        Storage { store: Arc::new(mem::MemStore::new()), base: String::new() }
    }

    /// The canonical base URI: `file:///abs/dir`, `s3://bucket/prefix` or `memory:///prefix`.
    pub fn uri(&self) -> String {
        self.store.uri(&self.base)
    }

    /// The storage at `rel` below this one.
    pub fn child(&self, rel: &str) -> Storage {
        let rel = location::normalize(rel).unwrap_or_else(|_| rel.to_string());
        Storage { store: Arc::clone(&self.store), base: location::join(&self.base, &rel) }
    }

    /// Copies `src_rel` of `src` to `dst_rel` here, replacing it: on the
    /// server when both are the same bucket (S3 `CopyObject`, for objects up
    /// to 5 GB), else by reading and writing it.
    pub fn copy_from(&self, src: &Storage, src_rel: &str, dst_rel: &str) -> Result<(), StorageError> {
        let (from, to) = (src.object_key(src_rel)?, self.object_key(dst_rel)?);
        // The same store, or another handle on the same bucket or directory (in-memory
        // stores are distinct objects even with equal URIs).
        let root = self.store.uri("");
        if Arc::ptr_eq(&self.store, &src.store) || (root == src.store.uri("") && !root.starts_with("memory:")) {
            return self.store.copy(&from, &to);
        }
        let data = src.get(src_rel)?;
        self.put(dst_rel, &data)
    }

    /// The storage one level up: the directory that holds this one. `None` at
    /// a bucket's root or at the filesystem's root.
    pub fn parent(&self) -> Option<Storage> {
        match self.base.rsplit_once('/') {
            Some((up, _)) => Some(Storage { store: Arc::clone(&self.store), base: up.to_string() }),
            None if !self.base.is_empty() => Some(Storage { store: Arc::clone(&self.store), base: String::new() }),
            None => self.store.parent().map(|store| Storage { store, base: String::new() }),
        }
    }

    /// Writes `data` to `rel`, replacing it. Readers see the old or the new content, never a
    /// part: a local file is written to a hidden temporary file and renamed; on S3, objects over
    /// [`PART_SIZE`] are sent as a multipart upload with up to 4 parts in flight.
    pub fn put(&self, rel: &str, data: &[u8]) -> Result<(), StorageError> {
        self.store.put(&self.object_key(rel)?, data)
    }

    /// Creates `rel` with `data` unless it exists: `Ok(true)` if this call created it,
    /// `Ok(false)` if an object was already there (it is left unchanged). Atomic on every
    /// backend (a hard link of a complete temporary file locally, `If-None-Match: *` on S3), so
    /// of two writers racing for one name exactly one wins: the basis of fencing.
    pub fn put_if_absent(&self, rel: &str, data: &[u8]) -> Result<bool, StorageError> {
        self.store.put_if_absent(&self.object_key(rel)?, data)
    }

    /// The whole content of `rel`; [`StorageError::NotFound`] when it does not exist.
    pub fn get(&self, rel: &str) -> Result<Vec<u8>, StorageError> {
        self.store.get(&self.object_key(rel)?)
    }

    /// Up to `len` bytes of `rel` from `offset`; fewer at the end of the object, none past it.
    pub fn get_range(&self, rel: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        self.store.get_range(&self.object_key(rel)?, offset, len)
    }

    /// Every object at or below `rel_prefix` ("" for all), recursively, with paths relative to
    /// this storage's base, sorted by path. A missing directory gives an empty list; a missing
    /// bucket is [`StorageError::NoSuchBucket`]. Local names starting with `.` (staging and
    /// temporary files) are skipped.
    pub fn list(&self, rel_prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let prefix = self.key(rel_prefix)?;
        let mut found: Vec<ObjectInfo> = self
            .store
            .list(&prefix)?
            .into_iter()
            .map(|o| ObjectInfo { path: location::relative_to(&o.path, &self.base).to_string(), size: o.size })
            .collect();
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    }

    /// Names of the immediate "directories" below `rel` ("" for the base), sorted. On S3 these
    /// are the common prefixes for the delimiter `/`.
    pub fn list_dirs(&self, rel: &str) -> Result<Vec<String>, StorageError> {
        let mut dirs = self.store.list_dirs(&self.key(rel)?)?;
        dirs.sort();
        dirs.dedup();
        Ok(dirs)
    }

    /// Whether the object `rel` exists (directories are not objects).
    pub fn exists(&self, rel: &str) -> Result<bool, StorageError> {
        self.store.exists(&self.object_key(rel)?)
    }

    /// Deletes the object `rel`; a missing object is not an error.
    pub fn delete(&self, rel: &str) -> Result<(), StorageError> {
        self.store.delete(&self.object_key(rel)?)
    }

    /// Deletes everything at or below `rel` ("" for everything below the base); missing is not
    /// an error.
    pub fn delete_prefix(&self, rel: &str) -> Result<(), StorageError> {
        self.store.delete_prefix(&self.key(rel)?)
    }

    /// Moves the object `from` to `to`, replacing `to`. Local: a rename. S3: copy, then delete
    /// (not atomic; objects up to 5 GiB).
    pub fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        self.store.rename(&self.object_key(from)?, &self.object_key(to)?)
    }

    /// A cheap check that the storage is usable: the bucket exists and the credentials can list
    /// it (S3), or the directory exists or can be created (local).
    pub fn check(&self) -> Result<(), StorageError> {
        self.store.check(&self.key("")?)
    }

    /// Starts a streaming upload to `rel` that becomes visible only when completed.
    pub fn begin_upload(&self, rel: &str) -> Result<Upload, StorageError> {
        let key = self.object_key(rel)?;
        let sink = self.store.begin_upload(&key)?;
        Ok(Upload { sink: Some(sink) })
    }

    /// Publishes an upload recorded by [`Upload::prepare`], possibly from another process.
    /// Idempotent: completing an upload that was already completed (its target exists) is Ok.
    /// The handle names its target absolutely; it must come from the same kind of backend.
    pub fn complete_recorded(&self, h: &UploadHandle) -> Result<(), StorageError> {
        self.store.complete_recorded(h)
    }

    /// Discards a recorded upload; one that is already gone is not an error.
    pub fn abort_recorded(&self, h: &UploadHandle) -> Result<(), StorageError> {
        self.store.abort_recorded(h)
    }

    /// Uploads at or below `rel_prefix` that were begun but neither completed nor aborted (local:
    /// the hidden staging files; S3: ListMultipartUploads), for cleanup after a failure.
    pub fn list_pending_uploads(&self, rel_prefix: &str) -> Result<Vec<UploadHandle>, StorageError> {
        let mut found = self.store.list_pending_uploads(&self.key(rel_prefix)?)?;
        found.sort_by(|a, b| a.target_uri().cmp(b.target_uri()));
        Ok(found)
    }

    /// The key of `rel` inside the store; `InvalidUri` for `..`.
    fn key(&self, rel: &str) -> Result<String, StorageError> {
        let joined = location::join(&self.base, rel);
        location::normalize(&joined).map_err(|reason| StorageError::InvalidUri { uri: self.store.uri(&joined), reason })
    }

    /// Like `key`, for operations on one object: the key must not be empty.
    fn object_key(&self, rel: &str) -> Result<String, StorageError> {
        let key = self.key(rel)?;
        if key.is_empty() {
            return Err(StorageError::InvalidUri {
                uri: self.uri(),
                reason: "an object path is needed, not the store's root".into(),
            });
        }
        Ok(key)
    }
}

/// A streaming write that becomes visible only when completed. Dropping it without
/// [`Upload::prepare`] aborts it (best effort).
pub struct Upload {
    sink: Option<Box<dyn UploadSink>>,
}

impl Upload {
    /// Appends `data`. On S3, every full [`PART_SIZE`] of buffered data is uploaded as a part.
    pub fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        match self.sink.as_mut() {
            Some(sink) => sink.write(data),
            // Unreachable: prepare and abort consume the Upload.
            None => Err(StorageError::Other { uri: String::new(), detail: "the upload was already finished".into() }),
        }
    }

    /// Makes everything written durable but invisible and returns a handle that
    /// [`Storage::complete_recorded`] can publish later, even from another process.
    pub fn prepare(mut self) -> Result<UploadHandle, StorageError> {
        match self.sink.take() {
            Some(sink) => sink.prepare(),
            None => Err(StorageError::Other { uri: String::new(), detail: "the upload was already finished".into() }),
        }
    }

    /// Discards the upload.
    pub fn abort(mut self) -> Result<(), StorageError> {
        match self.sink.take() {
            Some(sink) => sink.abort(),
            None => Ok(()),
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            // Best effort: leftovers are found by list_pending_uploads.
            let _ = sink.abort();
        }
    }
}

/// A short random suffix for temporary and staging names.
pub(crate) fn unique_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    format!("{:016x}", h.finish())
}
