//! The seam between [`crate::Storage`] and its backends. Keys are full keys inside the store
//! (already normalized by `location`); `Storage` handles relative paths and sorting.

use crate::{ObjectInfo, StorageError, UploadHandle};

pub(crate) trait ObjectStore: Send + Sync {
    /// The URI of `key` ("" for the store's root).
    fn uri(&self, key: &str) -> String;
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError>;
    /// Writes `data` to `key` only if no object is there; `Ok(false)` if one was. Atomic: of
    /// two concurrent calls for one key, exactly one returns `Ok(true)`.
    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool, StorageError>;
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError>;
    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError>;
    /// Objects at or under `prefix` (directory semantics) with full keys, in any order.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError>;
    /// Immediate child directory names of `dir`, in any order.
    fn list_dirs(&self, dir: &str) -> Result<Vec<String>, StorageError>;
    fn exists(&self, key: &str) -> Result<bool, StorageError>;
    fn delete(&self, key: &str) -> Result<(), StorageError>;
    fn delete_prefix(&self, prefix: &str) -> Result<(), StorageError>;
    fn rename(&self, from: &str, to: &str) -> Result<(), StorageError>;
    /// Copies the object at `from` to `to` within this store (server-side
    /// where the backend can), replacing `to`.
    fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let data = self.get(from)?;
        self.put(to, &data)
    }
    fn check(&self, prefix: &str) -> Result<(), StorageError>;
    fn begin_upload(&self, key: &str) -> Result<Box<dyn UploadSink>, StorageError>;
    fn complete_recorded(&self, h: &UploadHandle) -> Result<(), StorageError>;
    fn abort_recorded(&self, h: &UploadHandle) -> Result<(), StorageError>;
    fn list_pending_uploads(&self, prefix: &str) -> Result<Vec<UploadHandle>, StorageError>;
    /// The store whose root holds this store's root, where there is one (a
    /// local directory's parent); object stores have none above their bucket.
    fn parent(&self) -> Option<std::sync::Arc<dyn ObjectStore>> {
        None
    }
}

/// The backend half of an [`crate::Upload`].
pub(crate) trait UploadSink: Send {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError>;
    fn prepare(self: Box<Self>) -> Result<UploadHandle, StorageError>;
    fn abort(self: Box<Self>) -> Result<(), StorageError>;
}
