//! Reading an object whole, as `aws s3 cp` does: the first range tells the
//! object's size; a larger object's other ranges are fetched a few at a time
//! in parallel and written into one buffer of the object's size. Every later
//! range is pinned to the first one's ETag (`If-Match`), so that an object
//! replaced meanwhile is an error, never a mix of two versions.
//!
//! A restore reads its state files this way: one stream from an S3-compatible
//! store tops out well below what the store and the network can give.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use tokio::task::JoinSet;

use super::client::Ctx;
use crate::StorageError;

/// Bytes per range request.
const RANGE: u64 = 16 << 20;
/// Range requests in flight at once.
const IN_FLIGHT: usize = 4;

/// The whole object at `key`.
pub(super) async fn get_whole(client: Client, ctx: Ctx, key: String) -> Result<Vec<u8>, StorageError> {
    let uri = ctx.uri(&key);
    let first = client.get_object().bucket(&ctx.bucket).key(&key).range(range(0, RANGE)).send().await;
    let out = match first {
        Ok(out) => out,
        // Any range of an empty object is unsatisfiable; a missing one is NoSuchKey.
        Err(e) if e.code() == Some("InvalidRange") => return Ok(Vec::new()),
        Err(e) => return Err(ctx.map(&uri, e)),
    };
    let total = out.content_range().and_then(total_size);
    let etag = out.e_tag().map(str::to_string);
    let mut buf = Vec::with_capacity(total.unwrap_or(0) as usize);
    append(&ctx, &uri, out.body, &mut buf).await?;
    let Some(total) = total.filter(|t| *t > buf.len() as u64) else { return Ok(buf) };
    if buf.len() as u64 != RANGE {
        return Err(short(&ctx, &uri, 0, buf.len()));
    }
    buf.resize(total as usize, 0);
    let mut starts = (RANGE..total).step_by(RANGE as usize);
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < IN_FLIGHT
            && let Some(start) = starts.next()
        {
            let (client, ctx, key, etag) = (client.clone(), ctx.clone(), key.clone(), etag.clone());
            let end = (start + RANGE).min(total);
            tasks.spawn(async move {
                let uri = ctx.uri(&key);
                let mut req = client.get_object().bucket(&ctx.bucket).key(&key).range(range(start, end));
                if let Some(tag) = etag {
                    req = req.if_match(tag);
                }
                let out = req.send().await.map_err(|e| ctx.map(&uri, e))?;
                let mut part = Vec::with_capacity((end - start) as usize);
                append(&ctx, &uri, out.body, &mut part).await?;
                if part.len() as u64 != end - start {
                    return Err(short(&ctx, &uri, start, part.len()));
                }
                Ok((start, part))
            });
        }
        let Some(done) = tasks.join_next().await else { return Ok(buf) };
        let (start, part) = done.map_err(|e| StorageError::Other {
            uri: uri.clone(),
            detail: format!("a range read of the object failed: {e}"),
        })??;
        buf[start as usize..start as usize + part.len()].copy_from_slice(&part);
    }
}

/// The HTTP Range header of bytes `[start, end)`.
fn range(start: u64, end: u64) -> String {
    format!("bytes={start}-{}", end - 1)
}

/// The object's size from a `Content-Range` header (`bytes 0-99/1234`).
fn total_size(content_range: &str) -> Option<u64> {
    content_range.rsplit('/').next()?.trim().parse().ok()
}

/// Appends a response body to `buf`, chunk by chunk (one copy).
async fn append(ctx: &Ctx, uri: &str, mut body: ByteStream, buf: &mut Vec<u8>) -> Result<(), StorageError> {
    while let Some(chunk) = body.try_next().await.map_err(|e| StorageError::Unreachable {
        endpoint: ctx.endpoint.clone(),
        uri: uri.to_string(),
        detail: format!("reading the response failed: {}", super::client::error_chain(&e)),
    })? {
        buf.extend_from_slice(&chunk);
    }
    Ok(())
}

fn short(ctx: &Ctx, uri: &str, start: u64, got: usize) -> StorageError {
    StorageError::Unreachable {
        endpoint: ctx.endpoint.clone(),
        uri: uri.to_string(),
        detail: format!("the response to a range read at byte {start} ended early, after {got} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_comes_from_content_range_and_ranges_are_inclusive() {
        assert_eq!(total_size("bytes 0-16777215/1000000000"), Some(1_000_000_000));
        assert_eq!(total_size("bytes 0-9/10"), Some(10));
        assert_eq!(total_size("bytes */10"), Some(10));
        assert_eq!(total_size("garbage"), None);
        assert_eq!(range(0, 16), "bytes=0-15");
    }
}
