//! The serializable record of a prepared upload, stored in checkpoints.

use serde::{Deserialize, Serialize};

use crate::StorageError;

/// A prepared upload: enough to complete or abort it later, from any process that can reach the
/// same storage. It names its target absolutely (a URI), so it does not depend on the base of the
/// [`crate::Storage`] it is used with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadHandle {
    /// The URI the object will have once completed.
    target: String,
    #[serde(flatten)]
    pub(crate) state: HandleState,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub(crate) enum HandleState {
    /// A hidden staging file next to the target, renamed on completion.
    File { target_path: String, staging_path: String },
    /// A multipart upload. `upload_id` is `None` when nothing was written: completion then
    /// writes an empty object.
    S3 { bucket: String, key: String, upload_id: Option<String>, parts: Vec<PartRef> },
    /// A staged object of the in-memory store.
    Memory { key: String, staging_id: String },
}

/// One uploaded part of a multipart upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartRef {
    pub(crate) number: i32,
    pub(crate) etag: String,
}

impl UploadHandle {
    pub(crate) fn new(target: String, state: HandleState) -> Self {
        UploadHandle { target, state }
    }

    /// The URI the object gets when the upload completes.
    pub fn target_uri(&self) -> &str {
        &self.target
    }

    /// The handle as JSON bytes, for a checkpoint.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Cannot fail: the handle holds only strings, integers and options.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a handle written by [`UploadHandle::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StorageError> {
        serde_json::from_slice(bytes).map_err(|e| StorageError::Other {
            uri: "(upload handle)".into(),
            detail: format!("not a valid upload handle: {e}; the checkpoint may be corrupt or from another version"),
        })
    }

    /// The error for a handle given to a backend of another kind.
    pub(crate) fn wrong_backend(&self, backend: &str) -> StorageError {
        StorageError::InvalidUri {
            uri: self.target.clone(),
            reason: format!("this upload handle does not belong to the {backend} storage it was given to"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_bytes() {
        let h = UploadHandle::new(
            "s3://b/k".into(),
            HandleState::S3 {
                bucket: "b".into(),
                key: "k".into(),
                upload_id: Some("u1".into()),
                parts: vec![PartRef { number: 1, etag: "\"e1\"".into() }, PartRef { number: 2, etag: "\"e2\"".into() }],
            },
        );
        let bytes = h.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"backend\":\"s3\""), "{text}");
        assert_eq!(UploadHandle::from_bytes(&bytes).unwrap(), h);
        let err = UploadHandle::from_bytes(b"{\"target\":1}").unwrap_err();
        assert!(err.to_string().contains("not a valid upload handle"), "{err}");
    }
}
