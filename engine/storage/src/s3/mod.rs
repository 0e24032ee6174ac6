//! The S3 backend, on `aws-sdk-s3`. The SDK is async; every call blocks on one private Tokio
//! runtime per process, started on first use. Connect timeout 5 s, per-attempt timeout 30 s and
//! at most 3 attempts, so that an unreachable store fails a checkpoint instead of hanging it.
//!
//! - [`client`]: the runtime, the client and error mapping;
//! - [`multipart`]: multipart uploads;
//! - [`download`]: reading an object whole, in parallel ranges;
//! - here: the [`ObjectStore`] operations.

mod client;
mod download;
mod multipart;

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use client::{Ctx, block_on, build_client, read_body};
use multipart::{S3Upload, abort_upload, complete_upload, pending_uploads, put_multipart};

use crate::handle::HandleState;
use crate::store::{ObjectStore, UploadSink};
use crate::{ObjectInfo, PART_SIZE, S3Options, StorageError, UploadHandle, location};

/// Keys per DeleteObjects request (the S3 maximum).
const DELETE_BATCH: usize = 1000;

/// Creates `bucket` (for tests and tools). An existing bucket owned by the caller is Ok.
#[cfg(feature = "testing")]
pub(crate) fn create_bucket(opts: &S3Options, bucket: &str) -> Result<(), StorageError> {
    let store = S3Store::new(bucket.to_string(), opts.clone());
    let uri = store.uri("");
    let client = store.client()?;
    let res = block_on(&uri, async { client.create_bucket().bucket(bucket).send().await })?;
    match res {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
        Err(e) => Err(store.ctx.map(&uri, e)),
    }
}

pub(crate) struct S3Store {
    opts: S3Options,
    ctx: Ctx,
    client: OnceLock<Client>,
}

impl S3Store {
    pub(crate) fn new(bucket: String, opts: S3Options) -> Self {
        let endpoint = match (&opts.endpoint, &opts.region) {
            (Some(endpoint), _) => endpoint.clone(),
            (None, Some(region)) => format!("AWS S3 ({region})"),
            (None, None) => "AWS S3".to_string(),
        };
        S3Store { opts, ctx: Ctx { bucket, endpoint }, client: OnceLock::new() }
    }

    /// The client, built on first use (loading the AWS configuration may do I/O).
    fn client(&self) -> Result<Client, StorageError> {
        if let Some(c) = self.client.get() {
            return Ok(c.clone());
        }
        let client = block_on(&self.ctx.uri(""), build_client(&self.opts))?;
        Ok(self.client.get_or_init(|| client).clone())
    }

    /// Runs `f(client)` on the runtime.
    fn run<T, Fut>(&self, uri: &str, f: impl FnOnce(Client) -> Fut) -> Result<T, StorageError>
    where
        Fut: Future<Output = Result<T, StorageError>> + Send,
        T: Send,
    {
        let client = self.client()?;
        block_on(uri, f(client))?
    }
}

/// Every object at or below `prefix` (directory semantics).
async fn list_objects(client: &Client, ctx: &Ctx, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(&ctx.bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| ctx.map(&ctx.uri(prefix), e))?;
        for obj in page.contents() {
            if let Some(key) = obj.key()
                && location::is_under(key, prefix)
            {
                out.push(ObjectInfo { path: key.to_string(), size: obj.size().unwrap_or(0).max(0) as u64 });
            }
        }
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() || page.is_truncated() != Some(true) {
            return Ok(out);
        }
    }
}

/// Percent-encodes a key for `x-amz-copy-source`, keeping `/`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl ObjectStore for S3Store {
    fn uri(&self, key: &str) -> String {
        self.ctx.uri(key)
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let ctx = &self.ctx;
        let uri = &ctx.uri(key);
        self.run(uri, |client| async move {
            if data.len() > PART_SIZE {
                return put_multipart(&client, ctx, key, data).await;
            }
            client
                .put_object()
                .bucket(&ctx.bucket)
                .key(key)
                .body(ByteStream::from(data.to_vec()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ctx.map(uri, e))
        })
    }

    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool, StorageError> {
        let ctx = &self.ctx;
        let uri = &ctx.uri(key);
        self.run(uri, |client| async move {
            // Conditional writes: 412 when the object exists. AWS answers 409 to a conditional
            // write that races another one for the same key; the object then exists or is about
            // to, so the loser reads that as "already there" only after it sees the object.
            for _ in 0..10 {
                let sent = client
                    .put_object()
                    .bucket(&ctx.bucket)
                    .key(key)
                    .if_none_match("*")
                    .body(ByteStream::from(data.to_vec()))
                    .send()
                    .await;
                let err = match sent {
                    Ok(_) => return Ok(true),
                    Err(e) => e,
                };
                let status = err.raw_response().map(|r| r.status().as_u16());
                match (err.code(), status) {
                    (Some("PreconditionFailed"), _) | (_, Some(412)) => return Ok(false),
                    (Some("ConditionalRequestConflict"), _) | (_, Some(409)) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    _ => return Err(ctx.map(uri, err)),
                }
            }
            Err(StorageError::Other {
                uri: uri.clone(),
                detail: "conditional write kept conflicting with concurrent writes (409); retry later".into(),
            })
        })
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let (ctx, key) = (self.ctx.clone(), key.to_string());
        self.run(&self.ctx.uri(&key), |client| download::get_whole(client, ctx, key))
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        if len == 0 {
            return if self.exists(key)? { Ok(Vec::new()) } else { Err(StorageError::NotFound { uri: self.uri(key) }) };
        }
        let ctx = &self.ctx;
        let uri = &ctx.uri(key);
        let range = format!("bytes={offset}-{}", offset.saturating_add(len - 1));
        self.run(uri, |client| async move {
            match client.get_object().bucket(&ctx.bucket).key(key).range(range).send().await {
                Ok(out) => read_body(ctx, uri, out.body).await,
                // The range starts past the end of an existing object.
                Err(e) if e.code() == Some("InvalidRange") => Ok(Vec::new()),
                Err(e) => Err(ctx.map(uri, e)),
            }
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let ctx = &self.ctx;
        self.run(&ctx.uri(prefix), |client| async move { list_objects(&client, ctx, prefix).await })
    }

    fn list_dirs(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        let ctx = &self.ctx;
        let uri = &ctx.uri(dir);
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        self.run(uri, |client| async move {
            let mut out = Vec::new();
            let mut token = None;
            loop {
                let page = client
                    .list_objects_v2()
                    .bucket(&ctx.bucket)
                    .prefix(&prefix)
                    .delimiter("/")
                    .set_continuation_token(token)
                    .send()
                    .await
                    .map_err(|e| ctx.map(uri, e))?;
                for cp in page.common_prefixes() {
                    if let Some(name) = cp.prefix().and_then(|p| p.strip_prefix(prefix.as_str()))
                        && let Some(name) = name.strip_suffix('/').filter(|n| !n.is_empty())
                    {
                        out.push(name.to_string());
                    }
                }
                token = page.next_continuation_token().map(str::to_string);
                if token.is_none() || page.is_truncated() != Some(true) {
                    return Ok(out);
                }
            }
        })
    }

    fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let ctx = &self.ctx;
        let uri = &ctx.uri(key);
        self.run(uri, |client| async move {
            // A one-byte GET rather than HEAD: a HEAD error has no body, so a missing bucket would
            // look like a missing object, and a restore would silently find "no checkpoint".
            match client.get_object().bucket(&ctx.bucket).key(key).range("bytes=0-0").send().await {
                Ok(_) => Ok(true),
                // An empty object has no byte 0.
                Err(e) if e.code() == Some("InvalidRange") => Ok(true),
                Err(e) => match ctx.map(uri, e) {
                    StorageError::NotFound { .. } => Ok(false),
                    other => Err(other),
                },
            }
        })
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let ctx = &self.ctx;
        let uri = &ctx.uri(key);
        self.run(uri, |client| async move {
            match client.delete_object().bucket(&ctx.bucket).key(key).send().await {
                Ok(_) => Ok(()),
                Err(e) => match ctx.map(uri, e) {
                    StorageError::NotFound { .. } => Ok(()),
                    other => Err(other),
                },
            }
        })
    }

    fn delete_prefix(&self, prefix: &str) -> Result<(), StorageError> {
        let ctx = &self.ctx;
        let uri = &ctx.uri(prefix);
        self.run(uri, |client| async move {
            let keys = list_objects(&client, ctx, prefix).await?;
            for batch in keys.chunks(DELETE_BATCH) {
                let ids = batch
                    .iter()
                    .map(|o| ObjectIdentifier::builder().key(&o.path).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| StorageError::Other { uri: uri.clone(), detail: e.to_string() })?;
                let delete = Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()
                    .map_err(|e| StorageError::Other { uri: uri.clone(), detail: e.to_string() })?;
                let out = client
                    .delete_objects()
                    .bucket(&ctx.bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(|e| ctx.map(uri, e))?;
                if let Some(failed) = out.errors().first() {
                    let key = failed.key().unwrap_or_default();
                    return Err(StorageError::Other {
                        uri: ctx.uri(key),
                        detail: format!(
                            "delete failed ({} of {} keys): {} {}",
                            out.errors().len(),
                            batch.len(),
                            failed.code().unwrap_or_default(),
                            failed.message().unwrap_or_default()
                        ),
                    });
                }
            }
            Ok(())
        })
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        self.copy(from, to)?;
        let ctx = &self.ctx;
        let uri = &ctx.uri(from);
        self.run(uri, |client| async move {
            client.delete_object().bucket(&ctx.bucket).key(from).send().await.map_err(|e| ctx.map(uri, e))?;
            Ok(())
        })
    }

    fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let ctx = &self.ctx;
        let uri = &ctx.uri(from);
        let source = format!("{}/{}", ctx.bucket, encode_key(from));
        self.run(uri, |client| async move {
            client
                .copy_object()
                .bucket(&ctx.bucket)
                .key(to)
                .copy_source(source)
                .send()
                .await
                .map_err(|e| ctx.map(uri, e))?;
            Ok(())
        })
    }

    fn check(&self, prefix: &str) -> Result<(), StorageError> {
        let ctx = &self.ctx;
        let uri = &ctx.uri(prefix);
        self.run(uri, |client| async move {
            client
                .list_objects_v2()
                .bucket(&ctx.bucket)
                .prefix(prefix)
                .max_keys(1)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ctx.map(uri, e))
        })
    }

    fn begin_upload(&self, key: &str) -> Result<Box<dyn UploadSink>, StorageError> {
        // The multipart upload is created with the first part: an upload that stays small never
        // costs a request before prepare.
        Ok(Box::new(S3Upload::new(self.client()?, self.ctx.clone(), key)))
    }

    fn complete_recorded(&self, h: &UploadHandle) -> Result<(), StorageError> {
        let HandleState::S3 { bucket, key, upload_id, parts } = &h.state else {
            return Err(h.wrong_backend("S3"));
        };
        // The handle names its bucket; reach it with this store's endpoint and credentials.
        let ctx = Ctx { bucket: bucket.clone(), endpoint: self.ctx.endpoint.clone() };
        let ctx = &ctx;
        let uri = &ctx.uri(key);
        self.run(uri, |client| async move {
            let Some(upload_id) = upload_id else {
                // Nothing was written: the object is empty.
                return client
                    .put_object()
                    .bucket(&ctx.bucket)
                    .key(key)
                    .body(ByteStream::from(Vec::new()))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| ctx.map(uri, e));
            };
            let err = match complete_upload(&client, ctx, key, upload_id, parts).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if err.code() != Some("NoSuchUpload") {
                return Err(ctx.map(uri, err));
            }
            // Completed before (the upload id is gone once completed): fine if the object is there.
            match client.head_object().bucket(&ctx.bucket).key(key).send().await {
                Ok(_) => Ok(()),
                Err(e) => match ctx.map(uri, e) {
                    StorageError::NotFound { .. } => Err(StorageError::UploadLost {
                        uri: uri.clone(),
                        detail: format!("upload id {upload_id} is unknown"),
                    }),
                    other => Err(other),
                },
            }
        })
    }

    fn abort_recorded(&self, h: &UploadHandle) -> Result<(), StorageError> {
        let HandleState::S3 { bucket, key, upload_id, .. } = &h.state else {
            return Err(h.wrong_backend("S3"));
        };
        let Some(upload_id) = upload_id else { return Ok(()) };
        let ctx = Ctx { bucket: bucket.clone(), endpoint: self.ctx.endpoint.clone() };
        let ctx = &ctx;
        self.run(&ctx.uri(key), |client| async move { abort_upload(&client, ctx, key, upload_id).await })
    }

    fn list_pending_uploads(&self, prefix: &str) -> Result<Vec<UploadHandle>, StorageError> {
        let ctx = &self.ctx;
        self.run(&ctx.uri(prefix), |client| async move { pending_uploads(&client, ctx, prefix).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_keys_are_percent_encoded() {
        assert_eq!(encode_key("a/b c/ü+x.txt"), "a/b%20c/%C3%BC%2Bx.txt");
    }
}
