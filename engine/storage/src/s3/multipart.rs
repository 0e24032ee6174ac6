//! Multipart uploads: the streaming [`S3Upload`] behind `begin_upload`, a large
//! `put` sent in parallel parts, and the pending uploads found for cleanup.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::client::{Ctx, block_on};
use crate::handle::{HandleState, PartRef};
use crate::store::UploadSink;
use crate::{PART_SIZE, StorageError, UploadHandle, location};

/// Parts of one `put` in flight at once.
const MAX_CONCURRENT_PARTS: usize = 4;

/// Uploads `data` as part `number` and returns its reference.
pub(super) async fn upload_part(
    client: &Client,
    ctx: &Ctx,
    key: &str,
    upload_id: &str,
    number: i32,
    data: Vec<u8>,
) -> Result<PartRef, StorageError> {
    let out = client
        .upload_part()
        .bucket(&ctx.bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(number)
        .body(ByteStream::from(data))
        .send()
        .await
        .map_err(|e| ctx.map(&ctx.uri(key), e))?;
    let etag = out.e_tag().map(str::to_string).ok_or_else(|| StorageError::Other {
        uri: ctx.uri(key),
        detail: format!("the store returned no ETag for part {number}"),
    })?;
    Ok(PartRef { number, etag })
}

pub(super) async fn create_upload(client: &Client, ctx: &Ctx, key: &str) -> Result<String, StorageError> {
    let out = client
        .create_multipart_upload()
        .bucket(&ctx.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| ctx.map(&ctx.uri(key), e))?;
    out.upload_id()
        .map(str::to_string)
        .ok_or_else(|| StorageError::Other { uri: ctx.uri(key), detail: "the store returned no upload id".into() })
}

pub(super) async fn complete_upload(
    client: &Client,
    ctx: &Ctx,
    key: &str,
    upload_id: &str,
    parts: &[PartRef],
) -> Result<(), SdkError<aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadError, HttpResponse>>
{
    let mut parts = parts.to_vec();
    parts.sort_by_key(|p| p.number);
    let completed = CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts.into_iter().map(|p| CompletedPart::builder().part_number(p.number).e_tag(p.etag).build()).collect(),
        ))
        .build();
    client
        .complete_multipart_upload()
        .bucket(&ctx.bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(completed)
        .send()
        .await
        .map(|_| ())
}

pub(super) async fn abort_upload(client: &Client, ctx: &Ctx, key: &str, upload_id: &str) -> Result<(), StorageError> {
    match client.abort_multipart_upload().bucket(&ctx.bucket).key(key).upload_id(upload_id).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("NoSuchUpload") => Ok(()),
        Err(e) => match ctx.map(&ctx.uri(key), e) {
            StorageError::NotFound { .. } => Ok(()),
            other => Err(other),
        },
    }
}

/// `put` of a large object: parts of `PART_SIZE`, up to `MAX_CONCURRENT_PARTS` in flight.
pub(super) async fn put_multipart(client: &Client, ctx: &Ctx, key: &str, data: &[u8]) -> Result<(), StorageError> {
    let upload_id = create_upload(client, ctx, key).await?;
    let uploaded = async {
        let mut tasks = tokio::task::JoinSet::new();
        let mut chunks = data.chunks(PART_SIZE).zip(1..);
        let mut parts = Vec::new();
        loop {
            while tasks.len() < MAX_CONCURRENT_PARTS {
                let Some((chunk, number)) = chunks.next() else { break };
                let (client, ctx, key, upload_id, chunk) =
                    (client.clone(), ctx.clone(), key.to_string(), upload_id.clone(), chunk.to_vec());
                tasks.spawn(async move { upload_part(&client, &ctx, &key, &upload_id, number, chunk).await });
            }
            match tasks.join_next().await {
                None => break,
                Some(Ok(part)) => parts.push(part?),
                Some(Err(e)) => {
                    return Err(StorageError::Other {
                        uri: ctx.uri(key),
                        detail: format!("part upload task failed: {e}"),
                    });
                }
            }
        }
        complete_upload(client, ctx, key, &upload_id, &parts).await.map_err(|e| ctx.map(&ctx.uri(key), e))
    }
    .await;
    if uploaded.is_err() {
        // Best effort; an upload left behind is found by list_pending_uploads.
        let _ = abort_upload(client, ctx, key, &upload_id).await;
    }
    uploaded
}

pub(super) async fn pending_uploads(
    client: &Client,
    ctx: &Ctx,
    prefix: &str,
) -> Result<Vec<UploadHandle>, StorageError> {
    let mut uploads = Vec::new();
    let (mut key_marker, mut id_marker) = (None, None);
    loop {
        let page = client
            .list_multipart_uploads()
            .bucket(&ctx.bucket)
            .prefix(prefix)
            .set_key_marker(key_marker)
            .set_upload_id_marker(id_marker)
            .send()
            .await
            .map_err(|e| ctx.map(&ctx.uri(prefix), e))?;
        for u in page.uploads() {
            if let (Some(key), Some(id)) = (u.key(), u.upload_id())
                && location::is_under(key, prefix)
            {
                uploads.push((key.to_string(), id.to_string()));
            }
        }
        key_marker = page.next_key_marker().map(str::to_string);
        id_marker = page.next_upload_id_marker().map(str::to_string);
        if page.is_truncated() != Some(true) || key_marker.is_none() {
            break;
        }
    }
    let mut out = Vec::with_capacity(uploads.len());
    for (key, upload_id) in uploads {
        let parts = match list_parts(client, ctx, &key, &upload_id).await {
            Ok(parts) => parts,
            // Completed or aborted since it was listed.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        out.push(UploadHandle::new(
            ctx.uri(&key),
            HandleState::S3 { bucket: ctx.bucket.clone(), key, upload_id: Some(upload_id), parts },
        ));
    }
    Ok(out)
}

pub(super) async fn list_parts(
    client: &Client,
    ctx: &Ctx,
    key: &str,
    upload_id: &str,
) -> Result<Vec<PartRef>, StorageError> {
    let mut parts = Vec::new();
    let mut marker = None;
    loop {
        let page = match client
            .list_parts()
            .bucket(&ctx.bucket)
            .key(key)
            .upload_id(upload_id)
            .set_part_number_marker(marker)
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) if e.code() == Some("NoSuchUpload") => return Err(StorageError::NotFound { uri: ctx.uri(key) }),
            Err(e) => return Err(ctx.map(&ctx.uri(key), e)),
        };
        for p in page.parts() {
            if let (Some(number), Some(etag)) = (p.part_number(), p.e_tag()) {
                parts.push(PartRef { number, etag: etag.to_string() });
            }
        }
        marker = page.next_part_number_marker().map(str::to_string);
        if page.is_truncated() != Some(true) || marker.is_none() {
            return Ok(parts);
        }
    }
}

pub(super) struct S3Upload {
    client: Client,
    ctx: Ctx,
    key: String,
    upload_id: Option<String>,
    parts: Vec<PartRef>,
    buf: Vec<u8>,
}

impl S3Upload {
    pub(super) fn new(client: Client, ctx: Ctx, key: &str) -> S3Upload {
        S3Upload { client, ctx, key: key.to_string(), upload_id: None, parts: Vec::new(), buf: Vec::new() }
    }

    /// Uploads `data` as the next part, creating the multipart upload first if needed.
    fn send_part(&mut self, data: Vec<u8>) -> Result<(), StorageError> {
        let (client, ctx, key) = (&self.client, &self.ctx, self.key.as_str());
        let uri = &ctx.uri(key);
        let number = i32::try_from(self.parts.len() + 1)
            .map_err(|_| StorageError::Other { uri: uri.clone(), detail: "too many parts".into() })?;
        let existing = self.upload_id.clone();
        let (upload_id, part) = block_on(uri, async move {
            let upload_id = match existing {
                Some(id) => id,
                None => create_upload(client, ctx, key).await?,
            };
            let part = upload_part(client, ctx, key, &upload_id, number, data).await;
            Ok::<_, StorageError>((upload_id, part))
        })??;
        self.upload_id = Some(upload_id);
        self.parts.push(part?);
        Ok(())
    }
}

impl UploadSink for S3Upload {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.buf.extend_from_slice(data);
        while self.buf.len() >= PART_SIZE {
            let rest = self.buf.split_off(PART_SIZE);
            let part = std::mem::replace(&mut self.buf, rest);
            self.send_part(part)?;
        }
        Ok(())
    }

    fn prepare(mut self: Box<Self>) -> Result<UploadHandle, StorageError> {
        if !self.buf.is_empty() {
            // The last part may be smaller than S3's 5 MiB minimum.
            let last = std::mem::take(&mut self.buf);
            self.send_part(last)?;
        }
        let S3Upload { ctx, key, upload_id, parts, .. } = *self;
        Ok(UploadHandle::new(ctx.uri(&key), HandleState::S3 { bucket: ctx.bucket, key, upload_id, parts }))
    }

    fn abort(self: Box<Self>) -> Result<(), StorageError> {
        let Some(upload_id) = &self.upload_id else { return Ok(()) };
        let uri = self.ctx.uri(&self.key);
        block_on(&uri, abort_upload(&self.client, &self.ctx, &self.key, upload_id))?
    }
}
