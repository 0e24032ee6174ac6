//! A client of the engine's REST contract (`engine/openapi.json`, whose bodies are the
//! types of `sluice_api::rest`, shared with the engine), reached
//! either directly (`http://<job>-coordinator.<ns>:8081`) or through the API
//! server's service proxy, for an operator that runs outside the cluster.
//!
//! Every call has a timeout and is retried a few times on transport errors.
//! Savepoint triggers carry a caller-chosen `triggerId`, which makes a retried
//! POST idempotent. Answers are read up to [`MAX_RESPONSE`] bytes: the engine runs
//! the image a user chose (`spec.image`), so its answers are not trusted to be small.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sluice_api::rest::{ErrorBody, Job, Savepoint, SavepointRequest};

/// The coordinator's REST port, as in ARCHITECTURE.md.
pub const REST_PORT: u16 = 8081;
const ATTEMPTS: u32 = 3;
/// The largest engine answer the operator reads (1 MiB); the contract's are a few KiB.
pub const MAX_RESPONSE: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Access {
    /// `http://<job>-coordinator.<ns>:8081`: the operator runs in the cluster.
    Direct,
    /// The API server's `services/<job>-coordinator:8081/proxy/` subresource.
    ApiserverProxy,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineClientError {
    #[error("the engine of job {job} is unreachable: {message}")]
    Unreachable { job: String, message: String },
    #[error("the engine of job {job} answered {path} with HTTP {code}: {message}")]
    Status { job: String, path: String, code: u16, message: String },
    #[error("the engine of job {job} sent an unreadable answer to {path}: {message}")]
    Decode { job: String, path: String, message: String },
    #[error("the engine of job {job} answered {path} with more than {limit} bytes; the answer is refused")]
    TooLarge { job: String, path: String, limit: usize },
}

/// Why one call failed.
enum CallError {
    Transport(String),
    /// The answer exceeded [`MAX_RESPONSE`]: not retried.
    TooLarge,
}

/// Reads `body` up to `limit` bytes. `Ok(None)` if it is longer: reading stops at the
/// limit, so an endless or huge answer costs at most `limit` bytes of memory.
pub async fn read_limited<B>(body: B, limit: usize) -> Result<Option<Bytes>, String>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(Some(collected.to_bytes())),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The engine REST client.
#[derive(Clone)]
pub struct EngineClient {
    access: Access,
    kube: kube::Client,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl EngineClient {
    pub fn new(access: Access, kube: kube::Client, timeout: Duration) -> EngineClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        let http = HttpClient::builder(TokioExecutor::new()).build(connector);
        EngineClient { access, kube, http, timeout }
    }

    /// The coordinator Service's name for a job's color: `job` is the color's instance
    /// (`<job>` or `<job>-green`, see `resources::instance`), and so is every `job`
    /// argument of this client.
    pub fn service(job: &str) -> String {
        format!("{job}-coordinator")
    }

    /// Activates a standby coordinator from `restore` (a snapshot, `latest`, or empty state).
    pub async fn activate(
        &self,
        ns: &str,
        job: &str,
        restore: Option<&str>,
        id: &str,
    ) -> Result<(), EngineClientError> {
        let path = "/v1/job/activate";
        let req = sluice_api::rest::ActivateRequest { restore: restore.map(str::to_string), id: Some(id.to_string()) };
        let body = serde_json::to_vec(&req).map_err(|e| EngineClientError::Decode {
            job: job.into(),
            path: path.into(),
            message: e.to_string(),
        })?;
        let (code, body) = self.call(ns, job, http::Method::POST, path, Some(body)).await?;
        if (200..300).contains(&code) { Ok(()) } else { Err(status_error(job, path, code, &body)) }
    }

    pub async fn job(&self, ns: &str, job: &str) -> Result<Job, EngineClientError> {
        let (code, body) = self.call(ns, job, http::Method::GET, "/v1/job", None).await?;
        decode(job, "/v1/job", code, &body)
    }

    /// `GET /v1/job/metrics`: per-vertex rates, busy time and lag (the autoscaler's input).
    pub async fn metrics(&self, ns: &str, job: &str) -> Result<sluice_api::rest::JobMetrics, EngineClientError> {
        let (code, body) = self.call(ns, job, http::Method::GET, "/v1/job/metrics", None).await?;
        decode(job, "/v1/job/metrics", code, &body)
    }

    pub async fn trigger_savepoint(
        &self,
        ns: &str,
        job: &str,
        req: &SavepointRequest,
    ) -> Result<(), EngineClientError> {
        let body = serde_json::to_vec(req).map_err(|e| EngineClientError::Decode {
            job: job.into(),
            path: "/v1/job/savepoints".into(),
            message: e.to_string(),
        })?;
        let (code, body) = self.call(ns, job, http::Method::POST, "/v1/job/savepoints", Some(body)).await?;
        if (200..300).contains(&code) { Ok(()) } else { Err(status_error(job, "/v1/job/savepoints", code, &body)) }
    }

    /// A savepoint's state, or `None` if this coordinator does not know the trigger
    /// (it was restarted since the trigger was sent).
    pub async fn savepoint(
        &self,
        ns: &str,
        job: &str,
        trigger_id: &str,
    ) -> Result<Option<Savepoint>, EngineClientError> {
        let path = format!("/v1/job/savepoints/{trigger_id}");
        let (code, body) = self.call(ns, job, http::Method::GET, &path, None).await?;
        if code == 404 {
            return Ok(None);
        }
        decode(job, &path, code, &body).map(Some)
    }

    async fn call(
        &self,
        ns: &str,
        job: &str,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), EngineClientError> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            let call = self.once(ns, job, method.clone(), path, body.clone());
            match tokio::time::timeout(self.timeout, call).await {
                Ok(Ok((code, bytes))) if !proxy_unavailable(self.access, code) => return Ok((code, bytes)),
                Ok(Ok((code, bytes))) => last = format!("HTTP {code}: {}", String::from_utf8_lossy(&bytes).trim()),
                Ok(Err(CallError::TooLarge)) => {
                    return Err(EngineClientError::TooLarge {
                        job: job.into(),
                        path: path.into(),
                        limit: MAX_RESPONSE,
                    });
                }
                Ok(Err(CallError::Transport(e))) => last = e,
                Err(_) => last = format!("no answer within {:?}", self.timeout),
            }
        }
        Err(EngineClientError::Unreachable { job: job.into(), message: format!("{method} {path}: {last}") })
    }

    async fn once(
        &self,
        ns: &str,
        job: &str,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), CallError> {
        let svc = EngineClient::service(job);
        let transport = |e: String| CallError::Transport(e);
        // Anything but a read carries the coordinator's REST token, if it has one.
        let token = if method == http::Method::GET { None } else { self.rest_token(ns, job).await };
        match self.access {
            Access::Direct => {
                let uri = format!("http://{svc}.{ns}:{REST_PORT}{path}");
                let mut req = http::Request::builder()
                    .method(method)
                    .uri(uri)
                    .header(http::header::CONTENT_TYPE, "application/json");
                if let Some(t) = &token {
                    req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
                }
                let req =
                    req.body(Full::new(Bytes::from(body.unwrap_or_default()))).map_err(|e| transport(e.to_string()))?;
                let resp = self.http.request(req).await.map_err(|e| transport(e.to_string()))?;
                let code = resp.status().as_u16();
                let bytes = read_limited(resp.into_body(), MAX_RESPONSE).await.map_err(transport)?;
                Ok((code, bytes.ok_or(CallError::TooLarge)?.to_vec()))
            }
            Access::ApiserverProxy => {
                let uri = format!("/api/v1/namespaces/{ns}/services/{svc}:{REST_PORT}/proxy{path}");
                // `Authorization` is the API server's own: the token goes in its own header.
                let mut req = http::Request::builder()
                    .method(method)
                    .uri(uri)
                    .header(http::header::CONTENT_TYPE, "application/json");
                if let Some(t) = &token {
                    req = req.header(sluice_api::rest::TOKEN_HEADER, t.as_str());
                }
                let req = req
                    .body(kube::client::Body::from(body.unwrap_or_default()))
                    .map_err(|e| transport(e.to_string()))?;
                let resp = self.kube.send(req).await.map_err(|e| transport(e.to_string()))?;
                let code = resp.status().as_u16();
                let bytes = read_limited(resp.into_body(), MAX_RESPONSE).await.map_err(transport)?;
                Ok((code, bytes.ok_or(CallError::TooLarge)?.to_vec()))
            }
        }
    }
}

impl EngineClient {
    /// The token of the coordinator of `job` (its instance), from its Secret; `None`
    /// when there is none (a deployment from before tokens) or it cannot be read,
    /// in which case the engine's 401 says what is missing.
    async fn rest_token(&self, ns: &str, job: &str) -> Option<String> {
        let api = kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(self.kube.clone(), ns);
        let name = crate::resources::engine_token::secret_name(job);
        match api.get_opt(&name).await {
            Ok(secret) => secret
                .and_then(|s| s.data)
                .and_then(|mut d| d.remove(crate::resources::engine_token::KEY))
                .and_then(|b| String::from_utf8(b.0).ok())
                .map(|t| t.trim().to_string()),
            Err(e) => {
                tracing::warn!("cannot read the REST token {ns}/{name}: {e}");
                None
            }
        }
    }
}

/// Through the API server proxy, a Service without a ready endpoint answers 503
/// (and a dial error 502): the engine is not reachable, as opposed to answering.
fn proxy_unavailable(access: Access, code: u16) -> bool {
    access == Access::ApiserverProxy && (code == 502 || code == 503)
}

fn decode<T: serde::de::DeserializeOwned>(
    job: &str,
    path: &str,
    code: u16,
    body: &[u8],
) -> Result<T, EngineClientError> {
    if !(200..300).contains(&code) {
        return Err(status_error(job, path, code, body));
    }
    serde_json::from_slice(body).map_err(|e| EngineClientError::Decode {
        job: job.into(),
        path: path.into(),
        message: e.to_string(),
    })
}

fn status_error(job: &str, path: &str, code: u16, body: &[u8]) -> EngineClientError {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).trim().to_string());
    EngineClientError::Status { job: job.into(), path: path.into(), code, message }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    #[tokio::test]
    async fn answers_are_read_up_to_the_limit_and_refused_beyond_it() {
        let small = Full::new(Bytes::from(vec![b'x'; 1024]));
        assert_eq!(read_limited(small, MAX_RESPONSE).await.unwrap().map(|b| b.len()), Some(1024));
        let exact = Full::new(Bytes::from(vec![b'x'; MAX_RESPONSE]));
        assert_eq!(read_limited(exact, MAX_RESPONSE).await.unwrap().map(|b| b.len()), Some(MAX_RESPONSE));
        let big = Full::new(Bytes::from(vec![b'x'; MAX_RESPONSE + 1]));
        assert_eq!(read_limited(big, MAX_RESPONSE).await.unwrap(), None);
        // An endless answer: reading stops at the limit.
        let chunk = Bytes::from_static(&[b'x'; 4096]);
        let endless = StreamBody::new(futures::stream::repeat_with(move || {
            Ok::<_, std::convert::Infallible>(Frame::data(chunk.clone()))
        }));
        assert_eq!(read_limited(endless, MAX_RESPONSE).await.unwrap(), None);
    }

    #[test]
    fn a_refused_answer_names_the_job_and_the_path() {
        let e = EngineClientError::TooLarge { job: "clicks".into(), path: "/v1/job".into(), limit: MAX_RESPONSE };
        assert_eq!(
            e.to_string(),
            "the engine of job clicks answered /v1/job with more than 1048576 bytes; the answer is refused"
        );
    }
}
