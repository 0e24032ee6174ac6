//! The object-storage side of the filesystem connector: `s3://` paths through
//! `sluice-storage`. Like [`super::fsio`] for local files, this is the only
//! code that talks to the store.
//!
//! A source split names an object by its canonical URI (`s3://bucket/key`),
//! so split state has the same shape as for local files (path, offset,
//! status). A sink writes each part file as a multipart upload to
//! `<prefix>/part-<job>-<subtask>-<n>` that becomes visible only when it is
//! completed.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use sluice_storage::{S3Options, Storage, StorageError};

/// Bytes fetched per ranged GET while reading an object.
const READ_CHUNK: u64 = 8 << 20;

/// Whether `path` is an S3 URI (`s3://`, `s3a://`, `s3p://`, any case).
pub(crate) fn is_s3(path: &str) -> bool {
    let lower = path.trim_start().get(..6).unwrap_or(path).to_ascii_lowercase();
    lower.starts_with("s3://") || lower.starts_with("s3a://") || lower.starts_with("s3p://")
}

/// Whether a path (a local path or a split's URI) names an object in S3.
pub(crate) fn is_s3_path(p: &Path) -> bool {
    p.to_str().is_some_and(is_s3)
}

/// Splits `s3://bucket/key` (any accepted scheme) into the bucket and the
/// key (possibly empty). The syntax is checked by [`Storage::open`].
fn split_uri(uri: &str) -> Option<(&str, &str)> {
    let (_, rest) = uri.trim().split_once("://")?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

/// An `s3://bucket/prefix` location: the storage of the whole bucket and
/// the key prefix inside it, so that every object is addressed by its full
/// key and its URI is `s3://bucket/key`.
#[derive(Clone, Debug)]
pub(crate) struct S3Root {
    bucket: Storage,
    /// The canonical `s3://bucket` URI.
    bucket_uri: String,
    /// The normalized key prefix ("" for the whole bucket).
    prefix: String,
}

impl S3Root {
    /// Opens `uri`; checks its syntax only, no I/O.
    pub(crate) fn open(uri: &str, s3: &S3Options) -> Result<S3Root, StorageError> {
        // The full URI first: it validates the bucket name and the prefix.
        let at_prefix = Storage::open(uri, s3)?;
        let Some((bucket_name, _)) = split_uri(uri) else {
            return Err(StorageError::InvalidUri {
                uri: uri.to_string(),
                reason: "expected s3://bucket/prefix".into(),
            });
        };
        let bucket = Storage::open(&format!("s3://{bucket_name}"), s3)?;
        let bucket_uri = bucket.uri();
        let prefix = at_prefix.uri().strip_prefix(&bucket_uri).unwrap_or_default().trim_start_matches('/').to_string();
        Ok(S3Root { bucket, bucket_uri, prefix })
    }

    fn uri_of(&self, key: &str) -> String {
        if key.is_empty() { self.bucket_uri.clone() } else { format!("{}/{key}", self.bucket_uri) }
    }

    /// The key of the object `uri` if it is in this root's bucket.
    fn key_of<'a>(&self, uri: &'a str) -> Option<&'a str> {
        let (bucket, key) = split_uri(uri)?;
        (format!("s3://{bucket}") == self.bucket_uri && !key.is_empty()).then_some(key)
    }

    /// The storage at the prefix (for the sink, whose names are relative).
    pub(crate) fn storage(&self) -> Storage {
        if self.prefix.is_empty() { self.bucket.clone() } else { self.bucket.child(&self.prefix) }
    }

    /// The URIs of every visible object at or below the prefix, with their
    /// sizes in bytes, sorted: no
    /// path segment below the prefix may start with `.` or `_`, as for local
    /// directories. A prefix that is itself an object gives that object.
    pub(crate) fn list_files(&self) -> Result<Vec<(PathBuf, u64)>, StorageError> {
        let mut out = Vec::new();
        for o in self.bucket.list(&self.prefix)? {
            let below = if self.prefix.is_empty() {
                o.path.as_str()
            } else {
                o.path.strip_prefix(self.prefix.as_str()).unwrap_or(&o.path).trim_start_matches('/')
            };
            if below.split('/').any(|seg| seg.starts_with('.') || seg.starts_with('_')) {
                continue;
            }
            // A "directory marker" object (`dir/`) has no content to read.
            if o.path.ends_with('/') {
                continue;
            }
            out.push((PathBuf::from(self.uri_of(&o.path)), o.size));
        }
        out.sort();
        Ok(out)
    }

    /// Opens the object `uri` for reading from byte `offset`. An object in
    /// another bucket (a split restored after `path` changed) is reached with
    /// the same settings.
    pub(crate) fn open_read(
        &self,
        uri: &str,
        offset: u64,
        s3: &S3Options,
    ) -> Result<Box<dyn BufRead + Send>, StorageError> {
        let (storage, key) = match self.key_of(uri) {
            Some(key) => (self.bucket.clone(), key.to_string()),
            None => {
                let other = S3Root::open(uri, s3)?;
                if other.prefix.is_empty() {
                    return Err(StorageError::InvalidUri {
                        uri: uri.to_string(),
                        reason: "a source split must name an object, not a bucket".into(),
                    });
                }
                (other.bucket, other.prefix)
            }
        };
        Ok(Box::new(ObjectReader { storage, key, pos: offset, buf: Vec::new(), at: 0, eof: false }))
    }
}

/// Reads an object with ranged GETs of [`READ_CHUNK`] bytes. Storage errors
/// travel inside `io::Error::other` and are unwrapped by
/// [`super::connector_io_error`].
struct ObjectReader {
    storage: Storage,
    key: String,
    /// The object offset just after `buf`.
    pos: u64,
    buf: Vec<u8>,
    at: usize,
    eof: bool,
}

impl Read for ObjectReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ObjectReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.at >= self.buf.len() && !self.eof {
            self.buf = self.storage.get_range(&self.key, self.pos, READ_CHUNK).map_err(std::io::Error::other)?;
            self.at = 0;
            self.pos += self.buf.len() as u64;
            self.eof = self.buf.is_empty();
        }
        Ok(self.buf.get(self.at..).unwrap_or_default())
    }

    fn consume(&mut self, amt: usize) {
        self.at = (self.at + amt).min(self.buf.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_s3_uris() {
        for p in ["s3://b/x", "S3://b", "s3a://b/x", "s3p://b/x"] {
            assert!(is_s3(p), "{p}");
        }
        for p in ["/tmp/x", "s3:/b", "rel/s3://x", "file:///x", "s3"] {
            assert!(!is_s3(p), "{p}");
        }
    }

    #[test]
    fn roots_and_keys() {
        let r = S3Root::open("s3a://bucket/a//b/", &S3Options::default()).unwrap();
        assert_eq!(r.storage().uri(), "s3://bucket/a/b");
        assert_eq!(r.uri_of("a/b/c"), "s3://bucket/a/b/c");
        assert_eq!(r.key_of("s3://bucket/a/b/c.json"), Some("a/b/c.json"));
        assert_eq!(r.key_of("s3://other/a/b/c.json"), None);
        assert_eq!(r.key_of("s3://bucket"), None);
        let whole = S3Root::open("s3://bucket", &S3Options::default()).unwrap();
        assert_eq!(whole.storage().uri(), "s3://bucket");
        assert!(S3Root::open("s3://B/x", &S3Options::default()).is_err());
    }

    #[test]
    fn reads_an_object_in_chunks_from_an_offset() {
        let storage = Storage::in_memory();
        storage.put("k", b"line1\nline2\n").unwrap();
        let mut r = ObjectReader { storage, key: "k".into(), pos: 6, buf: Vec::new(), at: 0, eof: false };
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "line2\n");
    }
}
