//! The S3 backend, on `aws-sdk-s3`. The SDK is async; every call blocks on one private Tokio
//! runtime per process, started on first use. Connect timeout 5 s, per-attempt timeout 30 s and
//! at most 3 attempts, so that an unreachable store fails a checkpoint instead of hanging it.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use tokio::runtime::Runtime;

use crate::handle::{HandleState, PartRef};
use crate::store::{ObjectStore, UploadSink};
use crate::{ObjectInfo, PART_SIZE, S3Options, StorageError, UploadHandle, location};

/// Parts of one `put` in flight at once.
const MAX_CONCURRENT_PARTS: usize = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_ATTEMPTS: u32 = 3;
/// Keys per DeleteObjects request (the S3 maximum).
const DELETE_BATCH: usize = 1000;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

fn runtime(uri: &str) -> Result<&'static Runtime, StorageError> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sluice-s3")
        .enable_all()
        .build()
        .map_err(|e| StorageError::Io { uri: uri.to_string(), source: e })?;
    // Losing a race only drops the extra runtime.
    let _ = RUNTIME.set(rt);
    RUNTIME.get().ok_or_else(|| StorageError::Other { uri: uri.to_string(), detail: "no S3 runtime".into() })
}

/// Runs `fut` to completion on the private runtime. Callers are meant to be plain threads; from
/// inside some other Tokio runtime, where blocking in place would panic, it blocks on a helper
/// thread instead.
pub(crate) fn block_on<F>(uri: &str, fut: F) -> Result<F::Output, StorageError>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime(uri)?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(rt.block_on(fut));
    }
    std::thread::scope(|s| s.spawn(|| rt.block_on(fut)).join())
        .map_err(|_| StorageError::Other { uri: uri.to_string(), detail: "the S3 request thread panicked".into() })
}

/// Builds a client: explicit options first, then the standard AWS chain (environment, web
/// identity/IRSA, profile, instance metadata).
async fn build_client(opts: &S3Options) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(endpoint) = &opts.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader = match (&opts.region, &opts.endpoint) {
        (Some(region), _) => loader.region(Region::new(region.clone())),
        // S3-compatible stores ignore the region but signing needs one; skip the slow chain.
        (None, Some(_)) => loader.region(Region::from_static("us-east-1")),
        (None, None) => loader.region(RegionProviderChain::default_provider().or_else("us-east-1")),
    };
    if let (Some(ak), Some(sk)) = (&opts.access_key, &opts.secret_key) {
        loader = loader.credentials_provider(Credentials::new(ak, sk, None, None, "sluice-s3-options"));
    }
    let sdk = loader.load().await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(opts.effective_path_style())
        // Checksums only where S3 requires them: many S3-compatible stores reject the newer
        // default trailing checksums.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    Client::from_conf(conf)
}

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

/// An error and its sources, `: `-separated, skipping repeats (SDK layers often repeat their
/// source's message).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let msg = e.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = e.source();
    }
    out
}

/// What error mapping needs to know; cheap to clone into tasks.
#[derive(Clone)]
struct Ctx {
    bucket: String,
    endpoint: String,
}

impl Ctx {
    fn uri(&self, key: &str) -> String {
        if key.is_empty() { format!("s3://{}", self.bucket) } else { format!("s3://{}/{key}", self.bucket) }
    }

    /// Maps an SDK error on `uri`. The detail comes from the SDK's error chain, which holds no
    /// secrets.
    fn map<E>(&self, uri: &str, err: SdkError<E, HttpResponse>) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let uri = uri.to_string();
        let detail = match (err.code(), err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => error_chain(&err),
        };
        let unreachable =
            |detail: String| StorageError::Unreachable { endpoint: self.endpoint.clone(), uri: uri.clone(), detail };
        match &err {
            SdkError::TimeoutError(_) => unreachable(detail),
            SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => unreachable(detail),
            SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_)
                if detail.to_ascii_lowercase().contains("credential") =>
            {
                StorageError::AccessDenied { uri, detail }
            }
            SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
                let status = err.raw_response().map(|r| r.status().as_u16());
                match (err.code(), status) {
                    (Some("NoSuchBucket"), _) => StorageError::NoSuchBucket { bucket: self.bucket.clone(), uri },
                    (Some("NoSuchKey" | "NotFound"), _) | (None, Some(404)) => StorageError::NotFound { uri },
                    (
                        Some(
                            "AccessDenied"
                            | "InvalidAccessKeyId"
                            | "SignatureDoesNotMatch"
                            | "InvalidToken"
                            | "ExpiredToken"
                            | "TokenRefreshRequired"
                            | "AllAccessDisabled"
                            | "InvalidSecurity",
                        ),
                        _,
                    )
                    | (_, Some(401 | 403)) => StorageError::AccessDenied { uri, detail },
                    _ => StorageError::Other { uri, detail },
                }
            }
            _ => StorageError::Other { uri, detail },
        }
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

/// Uploads `data` as part `number` and returns its reference.
async fn upload_part(
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

async fn create_upload(client: &Client, ctx: &Ctx, key: &str) -> Result<String, StorageError> {
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

async fn complete_upload(
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

async fn abort_upload(client: &Client, ctx: &Ctx, key: &str, upload_id: &str) -> Result<(), StorageError> {
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
async fn put_multipart(client: &Client, ctx: &Ctx, key: &str, data: &[u8]) -> Result<(), StorageError> {
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

async fn pending_uploads(client: &Client, ctx: &Ctx, prefix: &str) -> Result<Vec<UploadHandle>, StorageError> {
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

async fn list_parts(client: &Client, ctx: &Ctx, key: &str, upload_id: &str) -> Result<Vec<PartRef>, StorageError> {
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
        let ctx = &self.ctx;
        let uri = &ctx.uri(key);
        self.run(uri, |client| async move {
            let out = client.get_object().bucket(&ctx.bucket).key(key).send().await.map_err(|e| ctx.map(uri, e))?;
            read_body(ctx, uri, out.body).await
        })
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
        Ok(Box::new(S3Upload {
            client: self.client()?,
            ctx: self.ctx.clone(),
            key: key.to_string(),
            upload_id: None,
            parts: Vec::new(),
            buf: Vec::new(),
        }))
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

async fn read_body(ctx: &Ctx, uri: &str, body: ByteStream) -> Result<Vec<u8>, StorageError> {
    body.collect().await.map(|b| b.into_bytes().to_vec()).map_err(|e| StorageError::Unreachable {
        endpoint: ctx.endpoint.clone(),
        uri: uri.to_string(),
        detail: format!("reading the response failed: {}", error_chain(&e)),
    })
}

struct S3Upload {
    client: Client,
    ctx: Ctx,
    key: String,
    upload_id: Option<String>,
    parts: Vec<PartRef>,
    buf: Vec<u8>,
}

impl S3Upload {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_keys_are_percent_encoded() {
        assert_eq!(encode_key("a/b c/ü+x.txt"), "a/b%20c/%C3%BC%2Bx.txt");
    }
}
