//! The S3 client: one private Tokio runtime per process, the client built from
//! [`S3Options`] and the standard AWS chain, and the mapping of SDK errors to
//! [`StorageError`]s that name the URI.

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
use tokio::runtime::Runtime;

use crate::{S3Options, StorageError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_ATTEMPTS: u32 = 3;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

pub(super) fn runtime(uri: &str) -> Result<&'static Runtime, StorageError> {
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
pub(super) async fn build_client(opts: &S3Options) -> Client {
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

/// An error and its sources, `: `-separated, skipping repeats (SDK layers often repeat their
/// source's message).
pub(super) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
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
pub(super) struct Ctx {
    pub(super) bucket: String,
    pub(super) endpoint: String,
}

impl Ctx {
    pub(super) fn uri(&self, key: &str) -> String {
        if key.is_empty() { format!("s3://{}", self.bucket) } else { format!("s3://{}/{key}", self.bucket) }
    }

    /// Maps an SDK error on `uri`. The detail comes from the SDK's error chain, which holds no
    /// secrets.
    pub(super) fn map<E>(&self, uri: &str, err: SdkError<E, HttpResponse>) -> StorageError
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

pub(super) async fn read_body(ctx: &Ctx, uri: &str, body: ByteStream) -> Result<Vec<u8>, StorageError> {
    body.collect().await.map(|b| b.into_bytes().to_vec()).map_err(|e| StorageError::Unreachable {
        endpoint: ctx.endpoint.clone(),
        uri: uri.to_string(),
        detail: format!("reading the response failed: {}", error_chain(&e)),
    })
}
