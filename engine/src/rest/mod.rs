//! The engine's REST API (axum, JSON, versioned under `/v1`).
//!
//! The contract is `engine/openapi.json`, served at `/v1/openapi.json`; a test
//! checks the server against it. JSON fields are camelCase, times RFC 3339, and
//! durations milliseconds.
//!
//! With a token ([`RestToken`], `--rest-token-file`), every request that is not a
//! read (anything but GET, HEAD and OPTIONS: cancel, savepoints, activation, and
//! any route added later) needs `Authorization: Bearer <token>` (or, through the
//! Kubernetes API server's proxy, `X-Sluice-Rest-Token: <token>`), compared in
//! constant time; others get 401. Reads stay open, for probes and Prometheus.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use sluice_api::rest as api;

use crate::error::EngineError;
use crate::job::rfc3339;
use crate::job::{JobState, JobStatus, SnapshotStatus, VertexInfo};

mod metrics;
mod ui;

/// The OpenAPI document, the REST contract.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// The routes the server answers, as `METHOD path`; the contract test compares
/// them with the OpenAPI document.
pub const ROUTES: &[&str] = &[
    "GET /",
    "GET /ui/{file}",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /v1/openapi.json",
    "GET /v1/job",
    "GET /v1/job/metrics",
    "GET /v1/job/history",
    "GET /v1/job/exceptions",
    "GET /v1/job/plan",
    "POST /v1/job/cancel",
    "POST /v1/job/activate",
    "GET /v1/job/checkpoints",
    "POST /v1/job/savepoints",
    "GET /v1/job/savepoints/{triggerId}",
];

struct RestState {
    job: Arc<JobState>,
    /// What the sampler read, refreshed every second.
    sampled: Arc<Mutex<metrics::Sampled>>,
}

pub struct Server {
    pub addr: SocketAddr,
}

/// The bearer token that requests other than reads need; `None` leaves them open.
#[derive(Clone, Default)]
pub struct RestToken(Option<Arc<[u8]>>);

impl RestToken {
    /// No token: every route is open to whoever reaches the address.
    pub fn none() -> RestToken {
        RestToken(None)
    }

    /// The token in `path` (surrounding whitespace ignored), such as a mounted Secret's key.
    pub fn from_file(path: &std::path::Path) -> Result<RestToken, EngineError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            EngineError::Config(format!("--rest-token-file {}: cannot read the REST token: {e}", path.display()))
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(EngineError::Config(format!("--rest-token-file {}: the file is empty", path.display())));
        }
        Ok(RestToken(Some(Arc::from(token.as_bytes()))))
    }

    /// Whether `headers` carry the token (always, without one).
    fn admits(&self, headers: &HeaderMap) -> bool {
        use subtle::ConstantTimeEq;
        let Some(want) = &self.0 else { return true };
        let bearer =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        // Through the API server's service proxy, which keeps `Authorization` for itself.
        let proxied = headers.get(api::TOKEN_HEADER).and_then(|v| v.to_str().ok());
        let given = bearer.or(proxied).map(str::trim).unwrap_or("");
        bool::from(given.as_bytes().ct_eq(want))
    }
}

/// Lets reads through, and anything else only with the token.
async fn guard(State(token): State<RestToken>, req: Request, next: Next) -> Response {
    let read = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if read || token.admits(req.headers()) {
        return next.run(req).await;
    }
    let error = format!(
        "{} {} needs the job's REST token: send 'Authorization: Bearer <token>' (the operator's Secret <job>-engine-token, or the file given to --rest-token-file)",
        req.method(),
        req.uri().path()
    );
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], axum::Json(api::ErrorBody { error }))
        .into_response()
}

/// Starts the REST server on a background thread. Port 0 picks a free port.
pub fn serve(addr: &str, job: Arc<JobState>, token: RestToken) -> Result<Server, EngineError> {
    let ctx = Arc::new(RestState { sampled: Arc::new(metrics::Sampled::new(job.subtasks.len())), job });
    let sampler = (ctx.job.clone(), ctx.sampled.clone());
    let router = router(ctx).layer(axum::middleware::from_fn_with_state(token, guard));
    serve_router(addr, router, Some(sampler))
}

/// A worker's probes: `/healthz`, and `/readyz`, which is 200 only while
/// `ready` (registered with the coordinator and running its subtasks).
pub fn serve_probes(addr: &str, ready: Arc<std::sync::atomic::AtomicBool>) -> Result<Server, EngineError> {
    let router = Router::new().route("/healthz", get(|| async { "ok" })).route(
        "/readyz",
        get(move || {
            let ready = ready.load(std::sync::atomic::Ordering::SeqCst);
            async move {
                if ready {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not registered or not deployed")
                }
            }
        }),
    );
    serve_router(addr, router, None)
}

fn serve_router(addr: &str, router: Router, sampler: Option<Sampler>) -> Result<Server, EngineError> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| EngineError::Config(format!("--rest-addr {addr}: cannot listen: {e}")))?;
    listener.set_nonblocking(true).map_err(|e| EngineError::Internal(e.to_string()))?;
    let local = listener.local_addr().map_err(|e| EngineError::Internal(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sluice-rest")
        .enable_all()
        .build()
        .map_err(|e| EngineError::Internal(format!("cannot start the REST runtime: {e}")))?;
    std::thread::Builder::new()
        .name("sluice-rest".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                if let Some((job, sampled)) = sampler {
                    tokio::spawn(metrics::sample(job, sampled));
                }
                let _ = axum::serve(listener, router).await;
            })
        })
        .map_err(|e| EngineError::Internal(format!("cannot start the REST thread: {e}")))?;
    Ok(Server { addr: local })
}

/// The job and where the sampler keeps what it reads.
type Sampler = (Arc<JobState>, Arc<Mutex<metrics::Sampled>>);

fn router(ctx: Arc<RestState>) -> Router {
    Router::new()
        .route("/", get(ui::index))
        .route("/ui/{file}", get(ui::asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(prometheus))
        .route("/v1/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .route("/v1/job", get(job))
        .route("/v1/job/metrics", get(job_metrics))
        .route("/v1/job/history", get(history))
        .route("/v1/job/exceptions", get(exceptions))
        .route("/v1/job/plan", get(plan))
        .route("/v1/job/cancel", post(cancel))
        .route("/v1/job/activate", post(activate))
        .route("/v1/job/checkpoints", get(checkpoints))
        .route("/v1/job/savepoints", post(trigger_savepoint))
        .route("/v1/job/savepoints/{trigger_id}", get(savepoint_status))
        .with_state(ctx)
}

async fn readyz(State(ctx): State<Arc<RestState>>) -> Response {
    match ctx.job.status() {
        JobStatus::Running | JobStatus::Finished => (StatusCode::OK, "ready").into_response(),
        s => (StatusCode::SERVICE_UNAVAILABLE, format!("job is {s:?}")).into_response(),
    }
}

async fn job(State(ctx): State<Arc<RestState>>) -> Response {
    let j = &ctx.job;
    let end = j.end_time.lock().ok().and_then(|e| *e);
    let duration = end.unwrap_or_else(SystemTime::now).duration_since(j.start_time).unwrap_or_default();
    let body = api::Job {
        id: j.job_id.clone(),
        name: j.job_name.clone(),
        state: j.status(),
        start_time: rfc3339(j.start_time),
        end_time: end.map(rfc3339),
        duration_ms: duration.as_millis() as u64,
        restarts: j.restarts.load(std::sync::atomic::Ordering::Relaxed),
        max_parallelism: j.max_parallelism,
        data_policy: j.data_policy.clone(),
        vertices: j.vertices.iter().map(|v| vertex(j, v)).collect(),
        last_completed_checkpoint: j.last_completed_checkpoint(),
        error: j.error(),
        standby: j.standby(),
        activation: j.activation(),
    };
    axum::Json(body).into_response()
}

fn vertex(j: &JobState, v: &VertexInfo) -> api::Vertex {
    // Every reader of a source knows the same total; the largest report wins
    // while they catch up with a directory that grows.
    let splits = if v.is_source {
        j.subtasks.iter().filter(|m| m.vertex == v.id).filter_map(|m| m.snapshot().splits).max()
    } else {
        None
    };
    api::Vertex {
        id: v.id,
        uid: v.uid.clone(),
        name: v.name.clone(),
        parallelism: v.parallelism,
        inputs: v
            .inputs
            .iter()
            .map(|(vertex, partitioning)| api::VertexInput { vertex: *vertex, partitioning: partitioning.clone() })
            .collect(),
        keyed: v.keyed,
        splits: splits.map(|n| n as usize),
    }
}

async fn job_metrics(State(ctx): State<Arc<RestState>>) -> Response {
    let vertices = metrics::vertex_metrics(&ctx.job, &ctx.sampled);
    axum::Json(api::JobMetrics { id: ctx.job.job_id.clone(), vertices }).into_response()
}

async fn history(State(ctx): State<Arc<RestState>>) -> Response {
    axum::Json(metrics::history(&ctx.sampled)).into_response()
}

async fn exceptions(State(ctx): State<Arc<RestState>>) -> Response {
    let restarts = ctx.job.restarts.load(std::sync::atomic::Ordering::Relaxed);
    axum::Json(api::Exceptions { restarts, exceptions: ctx.job.exceptions.newest_first() }).into_response()
}

async fn plan(State(ctx): State<Arc<RestState>>) -> Response {
    axum::Json(ctx.job.plan()).into_response()
}

async fn cancel(State(ctx): State<Arc<RestState>>) -> Response {
    if ctx.job.status() == JobStatus::Standby {
        let error = "the job is in standby and runs nothing; stop its coordinator instead";
        return (StatusCode::CONFLICT, axum::Json(json!({ "state": ctx.job.status(), "error": error })))
            .into_response();
    }
    if ctx.job.status().is_terminal() {
        return (
            StatusCode::CONFLICT,
            axum::Json(json!({ "state": ctx.job.status(), "error": "the job has already stopped" })),
        )
            .into_response();
    }
    ctx.job.request_cancel();
    (StatusCode::ACCEPTED, axum::Json(json!({ "state": ctx.job.status() }))).into_response()
}

async fn checkpoints(State(ctx): State<Arc<RestState>>) -> Response {
    let history = ctx.job.checkpoints();
    let completed = history.iter().filter(|c| c.status == SnapshotStatus::Completed).count();
    let failed = history.iter().filter(|c| c.status == SnapshotStatus::Failed).count();
    let counts = api::CheckpointCounts { completed, failed, in_progress: history.len() - completed - failed };
    let latest_completed = ctx.job.last_completed_checkpoint();
    let history = history.into_iter().rev().collect();
    axum::Json(api::Checkpoints { counts, latest_completed, history }).into_response()
}

/// `POST /v1/job/activate`: a standby coordinator starts the job from `restore`.
async fn activate(State(ctx): State<Arc<RestState>>, body: axum::body::Bytes) -> Response {
    let req: api::ActivateRequest = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("invalid activation request: {e}")),
    };
    if req.restore.as_deref().is_some_and(|r| r.trim().is_empty()) {
        return bad_request("restore must be a snapshot directory, `latest`, or null for empty state".into());
    }
    match ctx.job.request_activation(req.restore, req.id) {
        Ok(()) => (StatusCode::ACCEPTED, axum::Json(json!({ "state": ctx.job.status() }))).into_response(),
        Err(error) => (StatusCode::CONFLICT, axum::Json(api::ErrorBody { error })).into_response(),
    }
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(api::ErrorBody { error: message })).into_response()
}

async fn trigger_savepoint(State(ctx): State<Arc<RestState>>, body: axum::body::Bytes) -> Response {
    let req: api::SavepointRequest = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("invalid savepoint request: {e}")),
    };
    if req.trigger_id.as_deref().is_some_and(|t| t.is_empty() || t.len() > 200) {
        return bad_request("triggerId must be 1 to 200 characters".into());
    }
    if req.drain && !req.stop {
        return bad_request("drain needs stop: true (a drained job cannot go on)".into());
    }
    if let Some(Err(e)) = req.target_directory.as_deref().map(|t| ctx.job.savepoint_target_allowed(t)) {
        return bad_request(e);
    }
    match ctx.job.request_savepoint(req.trigger_id, req.target_directory, req.stop, req.drain) {
        Ok(trigger_id) => (StatusCode::ACCEPTED, axum::Json(api::SavepointTriggered { trigger_id })).into_response(),
        Err(error) => (StatusCode::CONFLICT, axum::Json(api::ErrorBody { error })).into_response(),
    }
}

async fn savepoint_status(State(ctx): State<Arc<RestState>>, Path(trigger_id): Path<String>) -> Response {
    match ctx.job.savepoint(&trigger_id) {
        Some(s) => axum::Json(s).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(api::ErrorBody { error: format!("no savepoint with triggerId '{trigger_id}'") }),
        )
            .into_response(),
    }
}

async fn prometheus(State(ctx): State<Arc<RestState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics::prometheus(&ctx.job, &ctx.sampled)).into_response()
}
