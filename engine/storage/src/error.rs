//! The one error type of the storage layer. Every variant names the full URI of the object or
//! prefix involved and its message says what to check, because these errors end up in job status
//! and logs read by people who did not write the code.

use std::io;

/// An error from [`crate::Storage`]. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object does not exist.
    #[error("{uri} does not exist")]
    NotFound { uri: String },

    /// The S3 bucket does not exist.
    #[error("bucket '{bucket}' does not exist (accessing {uri}); create the bucket or fix the bucket name in the URI")]
    NoSuchBucket { bucket: String, uri: String },

    /// The store refused the request: wrong or missing credentials, or a policy that denies it.
    #[error(
        "access to {uri} was denied: {detail}; check the credentials (s3.access-key and s3.secret-key, \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the pod's IAM role) and the bucket policy"
    )]
    AccessDenied { uri: String, detail: String },

    /// The object store could not be reached (connection refused, DNS, timeout).
    #[error(
        "cannot reach the object store at {endpoint} (accessing {uri}): {detail}; check s3.endpoint, \
         the network, and that the store is running"
    )]
    Unreachable { endpoint: String, uri: String, detail: String },

    /// The URI or a path inside it is malformed.
    #[error("invalid storage URI '{uri}': {reason}; use file:///absolute/dir, a local path, or s3://bucket/prefix")]
    InvalidUri { uri: String, reason: String },

    /// A local file-system operation failed.
    #[error("I/O error on {uri}: {source}; check that the path exists, is writable and that the disk is not full")]
    Io {
        uri: String,
        #[source]
        source: io::Error,
    },

    /// A recorded upload can no longer be completed: it was aborted or expired, and its target does
    /// not exist. The data it held is lost.
    #[error(
        "the upload to {uri} can no longer be completed ({detail}) and the object does not exist; \
         the upload was aborted or expired (check the bucket's lifecycle rule for incomplete multipart uploads)"
    )]
    UploadLost { uri: String, detail: String },

    /// Anything else the store reported.
    #[error("object store error on {uri}: {detail}")]
    Other { uri: String, detail: String },
}

impl StorageError {
    /// Whether the object (not the bucket) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }

    /// Maps an `io::Error` on `uri`, turning "not found" into [`StorageError::NotFound`].
    pub(crate) fn from_io(uri: String, source: io::Error) -> StorageError {
        if source.kind() == io::ErrorKind::NotFound {
            StorageError::NotFound { uri }
        } else {
            StorageError::Io { uri, source }
        }
    }
}
