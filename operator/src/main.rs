//! `sluice-operator`: runs StreamJobs and StreamSavepoints on Kubernetes.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use clap::Parser;
use kube::runtime::events::{Recorder, Reporter};
use sluice_operator::context::{Context, Defaults};
use sluice_operator::controllers::{streamjob, streamsavepoint};
use sluice_operator::engine::{Access, EngineClient};
use sluice_operator::leader::{Attempt, Elector, Leadership, Timings};
use sluice_operator::metrics::Metrics;
use sluice_operator::resources::network_policy::EnginePolicy;

#[derive(Parser)]
#[command(name = "sluice-operator", version, about = "The Sluice Kubernetes operator")]
struct Args {
    /// How to reach a job's engine REST API: `direct` (in the cluster) or
    /// `apiserver-proxy` (through the API server, for an operator outside the cluster).
    #[arg(long, value_enum, default_value = "direct", env = "SLUICE_ENGINE_ACCESS")]
    engine_access: Access,
    /// Namespaces to watch, comma-separated; all namespaces when empty.
    #[arg(long, value_delimiter = ',', env = "SLUICE_WATCH_NAMESPACES")]
    namespaces: Vec<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080", env = "SLUICE_HTTP_ADDR")]
    http_addr: SocketAddr,
    /// Run leader election on a Lease (two replicas, one active).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "SLUICE_LEADER_ELECTION")]
    leader_election: bool,
    /// The Lease's namespace (default: the pod's namespace, POD_NAMESPACE, else `default`).
    #[arg(long, env = "SLUICE_LEASE_NAMESPACE")]
    lease_namespace: Option<String>,
    #[arg(long, default_value = "sluice-operator")]
    lease_name: String,
    /// The S3 endpoint the operator itself uses to delete and find savepoints, when the
    /// jobs' in-cluster endpoint is not reachable from where the operator runs.
    #[arg(long, env = "SLUICE_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// The engine image of StreamJobs that do not set `spec.image` (the Helm value `engine.image`).
    #[arg(long, env = "SLUICE_DEFAULT_ENGINE_IMAGE")]
    default_engine_image: Option<String>,
    /// `spec.s3.endpoint` of StreamJobs that do not set `spec.s3` (the Helm value `s3.defaults.endpoint`).
    #[arg(long, env = "SLUICE_DEFAULT_S3_ENDPOINT")]
    default_s3_endpoint: Option<String>,
    /// `spec.s3.region` of StreamJobs that do not set `spec.s3`.
    #[arg(long, env = "SLUICE_DEFAULT_S3_REGION")]
    default_s3_region: Option<String>,
    /// `spec.s3.credentialsSecretRef.name` of StreamJobs that do not set `spec.s3`: a Secret
    /// of that name in the job's namespace.
    #[arg(long, env = "SLUICE_DEFAULT_S3_CREDENTIALS_SECRET")]
    default_s3_credentials_secret: Option<String>,
    /// Where the engines of StreamJobs send OpenLineage run events (the Helm value
    /// `openlineage.url`), unless a job's `spec.config` sets `openlineage.transport.url`
    /// or `openlineage.disabled`. Empty: no events.
    #[arg(long, env = "SLUICE_DEFAULT_OPENLINEAGE_URL")]
    default_openlineage_url: Option<String>,
    /// Give each job's engine pods a NetworkPolicy `<job>-engine` that admits only the
    /// job's own pods and the operator (and --engine-metrics-namespace on the REST port).
    #[arg(long, env = "SLUICE_ENGINE_NETWORK_POLICY", default_value_t = true, action = clap::ArgAction::Set)]
    engine_network_policy: bool,
    /// A namespace whose pods may scrape the engines' /metrics (REST port 8081) through
    /// their NetworkPolicy, such as Prometheus's. Repeat for several.
    #[arg(long, value_name = "NAMESPACE")]
    engine_metrics_namespace: Vec<String>,
    /// Timeout of one engine REST call, in seconds.
    #[arg(long, default_value_t = 5)]
    engine_timeout: u64,
    /// Log format: `json` (default) or `text`.
    #[arg(long, default_value = "json", env = "SLUICE_LOG_FORMAT")]
    log_format: String,
}

/// The defaults for what a StreamJob leaves unset; empty flags count as unset.
fn defaults(args: &Args) -> Defaults {
    let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let (endpoint, region) = (set(&args.default_s3_endpoint), set(&args.default_s3_region));
    let secret = set(&args.default_s3_credentials_secret).map(|name| sluice_operator::crd::LocalObjectRef { name });
    let s3 = (endpoint.is_some() || region.is_some() || secret.is_some()).then_some(sluice_operator::crd::S3Spec {
        endpoint,
        region,
        credentials_secret_ref: secret,
    });
    let network_policy = args.engine_network_policy.then(|| EnginePolicy {
        operator_namespace: std::env::var("POD_NAMESPACE").ok().filter(|s| !s.is_empty()),
        metrics_namespaces: args.engine_metrics_namespace.clone(),
        rest_from_anywhere: args.engine_access == Access::ApiserverProxy,
    });
    Defaults {
        image: set(&args.default_engine_image),
        s3,
        openlineage_url: set(&args.default_openlineage_url),
        network_policy,
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    // kube (ring) and the AWS SDK (aws-lc-rs) both link rustls: choose one provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // kube logs every non-2xx answer at ERROR; an engine that is not up yet answers 503 through
    // the API server proxy, which the operator reports itself.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube_client::client::builder=off".into());
    if args.log_format == "text" {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    } else {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice-operator: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "sluice-operator stopped");
            ExitCode::FAILURE
        }
    }
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("cannot configure a Kubernetes client (in-cluster or KUBECONFIG): {0}")]
    Client(#[source] kube::Error),
    #[error("cannot listen on --http-addr {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot reach the API server: {0}")]
    ApiServer(#[source] kube::Error),
    #[error("lost leadership: {0}; exiting so that only the new leader reconciles")]
    LostLeadership(String),
}

async fn run(args: Args) -> Result<(), RunError> {
    let client = kube::Client::try_default().await.map_err(RunError::Client)?;
    let identity = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("sluice-operator-{}", std::process::id()));
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .map_err(|source| RunError::Listen { addr: args.http_addr, source })?;
    tracing::info!(addr = %args.http_addr, "serving /metrics, /healthz and /readyz");
    let router = {
        let (m, r) = (metrics.clone(), ready.clone());
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/readyz",
                get(move || {
                    let ok = r.load(Ordering::SeqCst);
                    async move {
                        if ok { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "starting") }
                    }
                }),
            )
            .route("/metrics", get(move || {
                let text = m.encode();
                async move { ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text) }
            }))
    };
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });
    client.apiserver_version().await.map_err(RunError::ApiServer)?;
    ready.store(true, Ordering::SeqCst);

    let timings = Timings::default();
    let leadership = Arc::new(if args.leader_election { Leadership::elected() } else { Leadership::always() });
    let elector = if args.leader_election {
        let ns = args
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into());
        let e = Elector::new(client.clone(), &ns, &args.lease_name, &identity, timings);
        let mut waiting_logged = false;
        let renewed = loop {
            let start = tokio::time::Instant::now();
            match e.try_acquire(start + timings.renew_deadline).await {
                Ok(Attempt::Acquired) => break start,
                Ok(Attempt::HeldBy(h)) => {
                    if !waiting_logged {
                        tracing::info!(holder = %h, lease = %format!("{ns}/{}", args.lease_name), "standing by: another replica leads");
                        waiting_logged = true;
                    }
                }
                Err(err) => tracing::warn!(error = %err, "leader election failed; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(timings.retry_period) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        };
        leadership.renewed(renewed + timings.renew_deadline);
        tracing::info!(
            identity = %identity,
            lease_duration = ?timings.lease_duration,
            renew_deadline = ?timings.renew_deadline,
            "leading"
        );
        Some((Arc::new(e), renewed))
    } else {
        None
    };
    metrics.leader.set(1);

    let reporter = Reporter { controller: "sluice-operator".into(), instance: Some(identity.clone()) };
    let ctx = Arc::new(Context {
        client: client.clone(),
        engine: EngineClient::new(args.engine_access, client.clone(), Duration::from_secs(args.engine_timeout.max(1))),
        recorder: Recorder::new(client.clone(), reporter),
        metrics: metrics.clone(),
        s3_endpoint: args.s3_endpoint.clone(),
        defaults: defaults(&args),
        version: env!("CARGO_PKG_VERSION").into(),
        validated: Default::default(),
        namespace_labels: Default::default(),
        caches: Default::default(),
        leadership: leadership.clone(),
    });
    let lost = {
        let (elector, leadership) = (elector.clone(), leadership.clone());
        async move {
            match elector {
                Some((e, renewed)) => e.hold(&leadership, renewed).await,
                None => std::future::pending::<String>().await,
            }
        }
    };
    let namespaces = args.namespaces.clone();
    tracing::info!(namespaces = ?namespaces, access = ?args.engine_access, "starting the StreamJob and StreamSavepoint controllers");
    let controllers =
        futures::future::join(streamjob::run(ctx.clone(), &namespaces), streamsavepoint::run(ctx.clone(), &namespaces));
    tokio::select! {
        _ = controllers => {
            tracing::info!("shutting down (signal)");
        }
        why = lost => {
            metrics.leader.set(0);
            return Err(RunError::LostLeadership(why));
        }
    }
    leadership.drop_now();
    if let Some((e, _)) = elector {
        e.release().await;
    }
    Ok(())
}
