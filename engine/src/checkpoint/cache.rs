//! What a process already read of snapshots: the state files it verified, and
//! the bytes of those it was asked to keep, so that a later restore reads
//! from storage only what it has not seen. A blue-green standby pre-loads the
//! newest checkpoint this way; the handoff savepoint then copies most of that
//! checkpoint's files (see the runtime's `snapshot` module), and activation
//! reads only the changes.
//!
//! Invariants:
//! - a file is known by where it was first written (a copy names its origin,
//!   `FileEntry::origin`) and is used only if its size and CRC-32 match the
//!   manifest that asks for it, so a rewritten file is read again;
//! - bytes are kept only when a load asks for it ([`FileCache::keep`]) and are
//!   released by [`FileCache::release`]; what is only verified costs a few
//!   bytes per file, and the whole cache is bounded ([`MAX_FILES`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Files remembered at most; past that the cache starts over.
pub const MAX_FILES: usize = 100_000;

#[derive(Debug, Clone)]
struct Entry {
    size: u64,
    crc32: u32,
    bytes: Option<Arc<Vec<u8>>>,
}

/// What the cache knows of a file.
#[derive(Debug, PartialEq)]
pub enum Known {
    /// Verified, and here are its bytes.
    Bytes(Arc<Vec<u8>>),
    /// Verified before; its bytes were not kept.
    Verified,
}

#[derive(Debug, Default)]
pub struct FileCache {
    files: Mutex<HashMap<String, Entry>>,
}

impl FileCache {
    /// The process's cache.
    pub fn global() -> &'static FileCache {
        static CACHE: OnceLock<FileCache> = OnceLock::new();
        CACHE.get_or_init(FileCache::default)
    }

    fn files(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What is known of the file at `uri` with this size and checksum.
    pub fn get(&self, uri: &str, size: u64, crc32: u32) -> Option<Known> {
        let files = self.files();
        let e = files.get(uri).filter(|e| e.size == size && e.crc32 == crc32)?;
        Some(e.bytes.clone().map_or(Known::Verified, Known::Bytes))
    }

    /// Like [`FileCache::get`], but takes the bytes out (the file stays known
    /// as verified).
    pub fn take(&self, uri: &str, size: u64, crc32: u32) -> Option<Known> {
        let mut files = self.files();
        let e = files.get_mut(uri).filter(|e| e.size == size && e.crc32 == crc32)?;
        Some(e.bytes.take().map_or(Known::Verified, Known::Bytes))
    }

    /// Records a verified file, with its bytes if given.
    pub fn put(&self, uri: &str, size: u64, crc32: u32, bytes: Option<&[u8]>) {
        let mut files = self.files();
        if files.len() >= MAX_FILES && !files.contains_key(uri) {
            files.clear();
        }
        let bytes = bytes.map(|b| Arc::new(b.to_vec()));
        files.insert(uri.to_string(), Entry { size, crc32, bytes });
    }

    /// Drops every kept byte; what was verified stays known.
    pub fn release(&self) {
        for e in self.files().values_mut() {
            e.bytes = None;
        }
    }

    /// The bytes kept.
    pub fn kept_bytes(&self) -> u64 {
        self.files().values().filter_map(|e| e.bytes.as_ref()).map(|b| b.len() as u64).sum()
    }
}

/// How a load uses a cache: whether it keeps the bytes it reads.
#[derive(Debug, Clone, Copy)]
pub struct Use<'a> {
    pub cache: &'a FileCache,
    pub keep: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_known_only_with_its_size_and_checksum() {
        let c = FileCache::default();
        c.put("s3://b/j/chk-1/v/0.state", 3, 7, Some(b"abc"));
        assert_eq!(c.get("s3://b/j/chk-1/v/0.state", 3, 7), Some(Known::Bytes(Arc::new(b"abc".to_vec()))));
        assert_eq!(c.get("s3://b/j/chk-1/v/0.state", 3, 8), None, "rewritten since");
        assert_eq!(c.kept_bytes(), 3);
        c.release();
        assert_eq!(c.get("s3://b/j/chk-1/v/0.state", 3, 7), Some(Known::Verified));
        assert_eq!(c.kept_bytes(), 0);
        c.put("s3://b/j/chk-1/v/1.state", 1, 1, None);
        assert_eq!(c.get("s3://b/j/chk-1/v/1.state", 1, 1), Some(Known::Verified));
    }
}
