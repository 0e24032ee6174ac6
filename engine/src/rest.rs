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
use std::time::{Duration, SystemTime};

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
use crate::metrics::{NO_WATERMARK, Rates, Sample};

/// The OpenAPI document, the REST contract.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The routes the server answers, as `METHOD path`; the contract test compares
/// them with the OpenAPI document.
pub const ROUTES: &[&str] = &[
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /v1/openapi.json",
    "GET /v1/job",
    "GET /v1/job/metrics",
    "POST /v1/job/cancel",
    "POST /v1/job/activate",
    "GET /v1/job/checkpoints",
    "POST /v1/job/savepoints",
    "GET /v1/job/savepoints/{triggerId}",
];

struct RestState {
    job: Arc<JobState>,
    /// The latest per-subtask rates, refreshed every second.
    rates: Mutex<Vec<Rates>>,
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
    let ctx = Arc::new(RestState { rates: Mutex::new(vec![Rates::default(); job.subtasks.len()]), job });
    let sampler = ctx.clone();
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

fn serve_router(addr: &str, router: Router, sampler: Option<Arc<RestState>>) -> Result<Server, EngineError> {
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
                if let Some(ctx) = sampler {
                    tokio::spawn(sample_rates(ctx));
                }
                let _ = axum::serve(listener, router).await;
            })
        })
        .map_err(|e| EngineError::Internal(format!("cannot start the REST thread: {e}")))?;
    Ok(Server { addr: local })
}

fn router(ctx: Arc<RestState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(prometheus))
        .route("/v1/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .route("/v1/job", get(job))
        .route("/v1/job/metrics", get(job_metrics))
        .route("/v1/job/cancel", post(cancel))
        .route("/v1/job/activate", post(activate))
        .route("/v1/job/checkpoints", get(checkpoints))
        .route("/v1/job/savepoints", post(trigger_savepoint))
        .route("/v1/job/savepoints/{trigger_id}", get(savepoint_status))
        .with_state(ctx)
}

async fn sample_rates(ctx: Arc<RestState>) {
    let mut prev: Vec<Sample> = ctx.job.subtasks.iter().map(|m| m.snapshot()).collect();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now: Vec<Sample> = ctx.job.subtasks.iter().map(|m| m.snapshot()).collect();
        let rates = prev.iter().zip(&now).map(|(a, b)| Rates::between(a, b)).collect();
        if let Ok(mut r) = ctx.rates.lock() {
            *r = rates;
        }
        prev = now;
    }
}

/// A watermark as the API writes it: RFC 3339, `+inf` at the end of input.
fn watermark_text(w: i64) -> Option<String> {
    match w {
        NO_WATERMARK => None,
        i64::MAX => Some("+inf".into()),
        w => chrono::DateTime::from_timestamp_millis(w).map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    }
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

/// Per vertex, aggregated over subtasks: ratios are averages, rates and counts are sums,
/// the watermark is the minimum.
fn vertex_metrics(ctx: &RestState) -> Vec<api::VertexMetrics> {
    let rates = ctx.rates.lock().map(|r| r.clone()).unwrap_or_default();
    ctx.job
        .vertices
        .iter()
        .map(|v| {
            let idx: Vec<usize> =
                ctx.job.subtasks.iter().enumerate().filter(|(_, m)| m.vertex == v.id).map(|(i, _)| i).collect();
            let n = idx.len().max(1) as f64;
            let r = |f: fn(&Rates) -> f64| idx.iter().filter_map(|i| rates.get(*i)).map(f).sum::<f64>();
            let samples: Vec<Sample> = idx.iter().map(|i| ctx.job.subtasks[*i].snapshot()).collect();
            let watermark = samples.iter().map(|s| s.watermark).min().unwrap_or(NO_WATERMARK);
            api::VertexMetrics {
                id: v.id,
                uid: v.uid.clone(),
                name: v.name.clone(),
                parallelism: v.parallelism,
                busy_ratio: r(|x| x.busy_ms_per_second) / n / 1000.0,
                backpressured_ratio: r(|x| x.backpressured_ms_per_second) / n / 1000.0,
                idle_ratio: r(|x| x.idle_ms_per_second) / n / 1000.0,
                busy_time_ms_per_second: r(|x| x.busy_ms_per_second) / n,
                back_pressured_time_ms_per_second: r(|x| x.backpressured_ms_per_second) / n,
                idle_time_ms_per_second: r(|x| x.idle_ms_per_second) / n,
                records_in_per_second: r(|x| x.records_in_per_second),
                records_out_per_second: r(|x| x.records_out_per_second),
                bytes_in_per_second: r(|x| x.bytes_in_per_second),
                bytes_out_per_second: r(|x| x.bytes_out_per_second),
                records_in: samples.iter().map(|s| s.records_in).sum(),
                records_out: samples.iter().map(|s| s.records_out).sum(),
                watermark: watermark_text(watermark),
                lag: if v.is_source { samples.iter().map(|s| s.pending_records).sum() } else { None },
                late_records_dropped: samples.iter().map(|s| s.late_records_dropped).sum(),
            }
        })
        .collect()
}

async fn job_metrics(State(ctx): State<Arc<RestState>>) -> Response {
    axum::Json(api::JobMetrics { id: ctx.job.job_id.clone(), vertices: vertex_metrics(&ctx) }).into_response()
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

/// A Prometheus metric: name, type, and how to read it from a subtask.
type Gauge = (&'static str, &'static str, fn(&Sample, &Rates) -> f64);

async fn prometheus(State(ctx): State<Arc<RestState>>) -> Response {
    use std::fmt::Write;
    let rates = ctx.rates.lock().map(|r| r.clone()).unwrap_or_default();
    let mut out = String::new();
    let job = &ctx.job.job_id;
    let gauges: [Gauge; 12] = [
        ("sluice_records_in_total", "counter", |s, _| s.records_in as f64),
        ("sluice_records_out_total", "counter", |s, _| s.records_out as f64),
        ("sluice_bytes_in_total", "counter", |s, _| s.bytes_in as f64),
        ("sluice_bytes_out_total", "counter", |s, _| s.bytes_out as f64),
        ("sluice_late_records_dropped_total", "counter", |s, _| s.late_records_dropped as f64),
        ("sluice_busy_time_ms_per_second", "gauge", |_, r| r.busy_ms_per_second),
        ("sluice_backpressured_time_ms_per_second", "gauge", |_, r| r.backpressured_ms_per_second),
        ("sluice_idle_time_ms_per_second", "gauge", |_, r| r.idle_ms_per_second),
        ("sluice_records_in_per_second", "gauge", |_, r| r.records_in_per_second),
        ("sluice_records_out_per_second", "gauge", |_, r| r.records_out_per_second),
        ("sluice_current_watermark_ms", "gauge", |s, _| match s.watermark {
            NO_WATERMARK => f64::NAN,
            w => w as f64,
        }),
        ("sluice_pending_records", "gauge", |s, _| s.pending_records.map(|p| p as f64).unwrap_or(f64::NAN)),
    ];
    let samples: Vec<Sample> = ctx.job.subtasks.iter().map(|m| m.snapshot()).collect();
    for (name, kind, f) in gauges {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (i, m) in ctx.job.subtasks.iter().enumerate() {
            let r = rates.get(i).copied().unwrap_or_default();
            let v = f(&samples[i], &r);
            if v.is_nan() {
                continue;
            }
            let _ = writeln!(out, "{name}{{job=\"{job}\",vertex=\"{}\",subtask=\"{}\"}} {v}", m.vertex, m.subtask);
        }
    }
    let _ = writeln!(out, "# TYPE sluice_job_running gauge");
    let _ = writeln!(out, "sluice_job_running{{job=\"{job}\"}} {}", u8::from(ctx.job.status() == JobStatus::Running));
    let lineage = &ctx.job.lineage;
    for (name, counter) in [
        ("sluice_openlineage_events_sent_total", &lineage.sent),
        ("sluice_openlineage_events_dropped_total", &lineage.dropped),
        ("sluice_openlineage_send_failures_total", &lineage.failed_attempts),
    ] {
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name}{{job=\"{job}\"}} {}", counter.load(std::sync::atomic::Ordering::Relaxed));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
