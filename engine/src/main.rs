//! `sluice-engine`: run, explain or validate a Flink-SQL job.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use sluice_engine::config::Config;
use sluice_engine::error::EngineError;
use sluice_engine::rest;
use sluice_engine::runtime::{JobState, JobStatus, RunOptions, execute};

/// mimalloc, not glibc's malloc: the changelog operators allocate and free
/// millions of small blocks (a group's accumulators, a kept row, a string
/// value), which mimalloc does much faster on the task threads (Nexmark q18
/// about 1.9x, q4 and q19 about 1.5x; `bench/flink/RESULTS.md`). It takes about
/// the same memory for keyed state, and 10–40 MiB more for a process's
/// per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "sluice-engine", version, about = "Sluice's stream-processing engine for Flink SQL jobs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job in this process until its bounded sources finish.
    Run(RunArgs),
    /// Print the job graph: vertices, their parallelism and partitioning.
    Explain(JobArgs),
    /// Coordinate a job whose subtasks run on `worker` processes: plan it,
    /// place its subtasks, drive checkpoints and serve the REST API.
    Coordinator(CoordinatorArgs),
    /// Run subtasks for a coordinator and exchange data with other workers.
    Worker(WorkerArgs),
    /// Check a job: its SQL, its tables' connector options and its
    /// configuration; prints FILE:LINE:COL: message (or the key or table at
    /// fault) and exits 1 on error. The operator validates manifests the same way.
    Validate(JobArgs),
}

#[derive(Args)]
struct JobArgs {
    /// The job file: Flink SQL statements.
    job: PathBuf,
    #[command(flatten)]
    conf: ConfigArgs,
}

/// Parallelism and configuration, shared by every command that plans a job.
#[derive(Args, Clone)]
struct ConfigArgs {
    /// Parallelism of every vertex (overrides parallelism.default).
    #[arg(long, short = 'p')]
    parallelism: Option<usize>,
    /// A YAML file of Flink-style configuration keys.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Sets a configuration key; repeatable. Wins over --config.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A data policy (YAML, the shape of StreamJob.spec.dataPolicy): column
    /// masking and row rules enforced at the sources. Its hmac keys are read
    /// from <sluice.secrets-dir>/<secret>/<key> (default /var/run/secrets/sluice.dev).
    #[arg(long, value_name = "FILE")]
    data_policy: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
    #[command(flatten)]
    state: StateArgs,
    /// Address of the REST API; port 0 picks a free port and prints it.
    #[arg(long, default_value = "127.0.0.1:8081")]
    rest_addr: String,
    /// A file with the bearer token that the REST API's requests other than reads
    /// (cancel, savepoints, activate) need. Without it they are open to anyone who
    /// can reach --rest-addr. Reads stay open, for probes and Prometheus.
    #[arg(long, value_name = "FILE", env = "SLUICE_REST_TOKEN_FILE")]
    rest_token_file: Option<PathBuf>,
}

#[derive(Args)]
struct CoordinatorArgs {
    /// The job file: Flink SQL statements.
    #[arg(long)]
    job: PathBuf,
    #[command(flatten)]
    conf: ConfigArgs,
    #[command(flatten)]
    state: StateArgs,
    /// Where workers connect; port 0 picks a free port and prints it.
    #[arg(long, default_value = "127.0.0.1:6123")]
    rpc_addr: String,
    /// Address of the REST API; port 0 picks a free port and prints it.
    #[arg(long, default_value = "127.0.0.1:8081")]
    rest_addr: String,
    /// A file with the bearer token that the REST API's requests other than reads
    /// (cancel, savepoints, activate) need. Without it they are open to anyone who
    /// can reach --rest-addr. Reads stay open, for probes and Prometheus.
    #[arg(long, value_name = "FILE", env = "SLUICE_REST_TOKEN_FILE")]
    rest_token_file: Option<PathBuf>,
    /// What to do once the job has finished or stopped with a savepoint:
    /// `exit` (0, and the workers exit too) or `stay` (keep answering REST).
    #[arg(long, value_enum, default_value = "exit")]
    on_finish: OnFinish,
    /// Blue-green: compile the job, let the workers register and check the
    /// snapshot --restore names, then wait for `POST /v1/job/activate` before
    /// each run, committing nothing until then. Needs --checkpoint-dir; the
    /// process stays up until SIGTERM.
    #[arg(long)]
    standby: bool,
    /// A file with the job's cluster secret: workers send it when they register
    /// and on every data connection, and the coordinator and workers refuse peers
    /// without it. Give the coordinator and its workers the same file.
    #[arg(long, value_name = "FILE", env = "SLUICE_CLUSTER_SECRET_FILE")]
    cluster_secret_file: Option<PathBuf>,
    /// Tells apart two deployments of the same job text and configuration
    /// (the two colors of a blue-green cutover): a restarted coordinator
    /// resumes only its own deployment's run.
    #[arg(long, value_name = "ID")]
    deployment_id: Option<String>,
    /// Names this deployment in sink commit logs (`sink.commit-log.enabled`), for
    /// example `3-green`; the operator sets it. Unlike --deployment-id, it does not
    /// tell deployments apart.
    #[arg(long, value_name = "NAME", env = "SLUICE_DEPLOYMENT_NAME")]
    deployment_name: Option<String>,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum OnFinish {
    Exit,
    Stay,
}

#[derive(Args)]
struct WorkerArgs {
    /// The coordinator's RPC address, HOST:PORT (a Service name on Kubernetes).
    #[arg(long, env = "SLUICE_COORDINATOR")]
    coordinator: String,
    /// How many slots this worker offers; a slot runs one subtask of each vertex.
    #[arg(long, default_value_t = 1, env = "SLUICE_SLOTS")]
    slots: usize,
    /// Where the data exchange listens; port 0 picks a free port.
    #[arg(long, default_value = "0.0.0.0:6124", env = "SLUICE_DATA_ADDR")]
    data_addr: String,
    /// The host other workers use to reach this one, e.g. the pod IP.
    /// Defaults to the --data-addr host; if that is 0.0.0.0, to the address
    /// the host name resolves to (the pod IP on Kubernetes), else 127.0.0.1.
    #[arg(long, env = "SLUICE_ADVERTISE_ADDR")]
    advertise_addr: Option<String>,
    /// Serve /healthz and /readyz here (ready once registered and deployed).
    #[arg(long, env = "SLUICE_PROBE_ADDR")]
    rest_addr: Option<String>,
    /// Sets a configuration key (heartbeat.interval, heartbeat.timeout); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A file with the job's cluster secret: workers send it when they register
    /// and on every data connection, and the coordinator and workers refuse peers
    /// without it. Give the coordinator and its workers the same file.
    #[arg(long, value_name = "FILE", env = "SLUICE_CLUSTER_SECRET_FILE")]
    cluster_secret_file: Option<PathBuf>,
}

/// Checkpoint, savepoint and restore flags, shared by `run` and `coordinator`.
#[derive(Args)]
struct StateArgs {
    /// The job id, stable across restarts: it names the job's directory under
    /// the checkpoint directory. Defaults to the job file's stem.
    #[arg(long)]
    job_id: Option<String>,
    /// Where checkpoints go: a directory, file:///dir or s3://bucket/prefix
    /// (execution.checkpointing.dir). Turns on exactly-once output.
    #[arg(long, value_name = "URI")]
    checkpoint_dir: Option<String>,
    /// Take a checkpoint this often, e.g. 10s (execution.checkpointing.interval).
    #[arg(long, value_name = "DURATION")]
    checkpoint_interval: Option<String>,
    /// The default target of savepoints (execution.checkpointing.savepoint-dir).
    #[arg(long, value_name = "URI")]
    savepoint_dir: Option<String>,
    /// Start from a checkpoint or savepoint directory, or `latest`: the newest
    /// complete checkpoint under --checkpoint-dir (execution.state-recovery.path).
    #[arg(long, value_name = "URI|latest")]
    restore: Option<String>,
    /// Skip snapshot state that no operator of the job claims.
    #[arg(long)]
    allow_non_restored_state: bool,
    /// The endpoint of an S3-compatible store, e.g. http://127.0.0.1:9000 (s3.endpoint).
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
}

impl StateArgs {
    /// The configuration keys the flags set.
    fn flags(&self) -> [(&'static str, Option<String>); 6] {
        [
            ("execution.checkpointing.dir", self.checkpoint_dir.clone()),
            ("execution.checkpointing.interval", self.checkpoint_interval.clone()),
            ("execution.checkpointing.savepoint-dir", self.savepoint_dir.clone()),
            ("execution.state-recovery.path", self.restore.clone()),
            ("execution.state-recovery.ignore-unclaimed-state", self.allow_non_restored_state.then(|| "true".into())),
            ("s3.endpoint", self.s3_endpoint.clone()),
        ]
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Validate(args) => match prepare(&args) {
            Ok(_) => {
                println!("{}: OK", args.job.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Command::Explain(args) => match prepare(&args) {
            Ok(p) => {
                print!("{}", p.graph.explain());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        Command::Run(args) => exit(run(&args)),
        Command::Coordinator(args) => exit(coordinator(&args)),
        Command::Worker(args) => exit(worker(&args)),
    }
}

/// Logs go to stderr through `SLUICE_LOG` (a `tracing` filter, default
/// `warn`); console lines (`sluice_engine::say!`) always, as `sluice: <line>`.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let user = std::env::var("SLUICE_LOG").unwrap_or_else(|_| "warn".into());
    // Console lines are printed by their own layer, not a second time as logs.
    let logs = EnvFilter::try_new(format!("{user},{}=off", sluice_engine::console::TARGET))
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,{}=off", sluice_engine::console::TARGET)));
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(logs))
        .with(sluice_engine::console::layer())
        .try_init();
}

fn exit(result: Result<(), EngineError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Sets the flag on SIGTERM or SIGINT.
fn on_termination() -> Result<Arc<std::sync::atomic::AtomicBool>, EngineError> {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = flag.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| EngineError::Internal(format!("cannot start the signal runtime: {e}")))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
                else {
                    return;
                };
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                f.store(true, std::sync::atomic::Ordering::SeqCst);
            })
        })
        .map_err(|e| EngineError::Internal(format!("cannot start the signal thread: {e}")))?;
    Ok(flag)
}

fn coordinator(args: &CoordinatorArgs) -> Result<(), EngineError> {
    if let Some(path) = &args.cluster_secret_file {
        sluice_engine::cluster::set_secret(path)?;
    }
    let job_args = JobArgs { job: args.job.clone(), conf: args.conf.clone() };
    let job_id = args.state.job_id.clone().unwrap_or_else(|| default_job_id(&job_args));
    let (prepared, config) = prepare_config(&job_args, &args.state.flags(), &job_id)?;
    let text = std::fs::read_to_string(&args.job)
        .map_err(|source| EngineError::Io { path: args.job.display().to_string(), source })?;
    let source = sluice_engine::cluster::coordinator::JobSource {
        job_id: job_id.clone(),
        file: args.job.display().to_string(),
        text,
        config: config.values.clone(),
        deployment: args.deployment_id.clone(),
        name: args.deployment_name.clone().unwrap_or_default(),
    };
    let copts = sluice_engine::cluster::coordinator::CoordinatorOptions {
        rpc_addr: args.rpc_addr.clone(),
        heartbeat_interval: Duration::from_millis(config.duration_ms("heartbeat.interval", 1000)?),
        heartbeat_timeout: Duration::from_millis(config.duration_ms("heartbeat.timeout", 10_000)?),
        standby: args.standby,
    };
    let shutdown = on_termination()?;
    let state = JobState::new(&job_id, &args.job.display().to_string(), &prepared.graph);
    state.restrict_savepoints_to(prepared.savepoint_dirs.clone());
    state.set_sql(&prepared.sql);
    let server = rest::serve(&args.rest_addr, state.clone(), rest_token(&args.rest_token_file, &args.rest_addr)?)?;
    sluice_engine::say!("job `{job_id}` REST API on http://{}", server.addr);
    sluice_engine::say!("job `{job_id}` web UI on http://{}/", server.addr);
    let stay = args.on_finish == OnFinish::Stay;
    let started = Instant::now();
    sluice_engine::openlineage::watching(prepared.lineage, &state, Some(shutdown.clone()), || {
        sluice_engine::cluster::coordinator::run(
            source,
            &prepared.graph,
            prepared.options,
            &copts,
            state.clone(),
            stay,
            shutdown.clone(),
        )
    })?;
    let status = state.status();
    summary(&state, started.elapsed());
    if status != JobStatus::Finished && !shutdown.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(EngineError::Ended { job: job_id, state: format!("{status:?}").to_uppercase() });
    }
    Ok(())
}

/// The REST token of `--rest-token-file`; without one, a warning when the API
/// listens beyond loopback.
fn rest_token(file: &Option<PathBuf>, addr: &str) -> Result<rest::RestToken, EngineError> {
    match file {
        Some(path) => rest::RestToken::from_file(path),
        None => {
            let loopback = addr.parse::<std::net::SocketAddr>().is_ok_and(|a| a.ip().is_loopback());
            if !loopback {
                tracing::warn!(
                    "the REST API on {addr} takes cancel and savepoint requests from anyone who can reach it; pass --rest-token-file"
                );
            }
            Ok(rest::RestToken::none())
        }
    }
}

fn worker(args: &WorkerArgs) -> Result<(), EngineError> {
    if let Some(path) = &args.cluster_secret_file {
        sluice_engine::cluster::set_secret(path)?;
    }
    let mut config = Config::default();
    config.set_all(&args.set)?;
    let opts = sluice_engine::cluster::worker::WorkerOptions {
        coordinator: args.coordinator.clone(),
        slots: args.slots,
        data_addr: args.data_addr.clone(),
        advertise: args.advertise_addr.clone(),
        heartbeat_interval: Duration::from_millis(config.duration_ms("heartbeat.interval", 1000)?),
        heartbeat_timeout: Duration::from_millis(config.duration_ms("heartbeat.timeout", 10_000)?),
    };
    let shutdown = on_termination()?;
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(addr) = &args.rest_addr {
        let server = rest::serve_probes(addr, ready.clone())?;
        sluice_engine::say!("worker probes on http://{}", server.addr);
    }
    sluice_engine::cluster::worker::run(&opts, &shutdown, &ready)
}

struct Prepared {
    graph: sluice_engine::plan::JobGraph,
    options: RunOptions,
    lineage: Option<sluice_engine::openlineage::Lineage>,
    /// Where savepoints may go: the savepoint and checkpoint directories, and
    /// `sluice.savepoint.allowed-directories`.
    savepoint_dirs: Vec<String>,
    /// The job's text, for `GET /v1/job/plan`.
    sql: String,
}

/// Configuration layers: SET in the job < --config < --set < flags.
fn prepare(args: &JobArgs) -> Result<Prepared, EngineError> {
    prepare_with(args, &[], &default_job_id(args))
}

fn default_job_id(args: &JobArgs) -> String {
    args.job.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "job".into())
}

fn prepare_with(args: &JobArgs, flags: &[(&str, Option<String>)], job_id: &str) -> Result<Prepared, EngineError> {
    prepare_config(args, flags, job_id).map(|p| p.0)
}

/// The prepared job and the configuration it was prepared with (without the
/// job's own SET statements, which every process reads from the job text).
/// The job goes through `sluice_job::validate`, as the operator's do.
fn prepare_config(
    args: &JobArgs,
    flags: &[(&str, Option<String>)],
    job_id: &str,
) -> Result<(Prepared, Config), EngineError> {
    let file = args.job.display().to_string();
    let text = std::fs::read_to_string(&args.job).map_err(|source| EngineError::Io { path: file.clone(), source })?;
    let mut config = Config::default();
    if let Some(path) = &args.conf.config {
        config.values.extend(Config::from_file(path)?.values);
    }
    config.set_all(&args.conf.set)?;
    if let Some(path) = &args.conf.data_policy {
        config.values.insert(sluice_api::policy::CONFIG_KEY.into(), sluice_job::policy_file_json(path)?);
    }
    if let Some(p) = args.conf.parallelism {
        config.values.insert("parallelism.default".into(), p.to_string());
    }
    for (key, value) in flags {
        if let Some(v) = value {
            config.values.insert(key.to_string(), v.clone());
        }
    }
    let validated = sluice_job::validate(&text, &file, &config)?;
    let graph = sluice_engine::plan::build_graph(&validated.job, &validated.settings)?;
    if let Some(hash) = &graph.data_policy {
        let applied: Vec<String> = validated
            .job
            .tables
            .values()
            .flat_map(|t| t.policy.describe().into_iter().map(move |l| format!("{}.{l}", t.name)))
            .collect();
        sluice_engine::say!("job `{job_id}`: data policy {hash} enforced at the sources: {}", applied.join("; "));
    }
    let lineage = sluice_engine::openlineage::Lineage::of(&validated.job, &config)?;
    let ck = &validated.settings.checkpoint;
    // The flags and files win over the job's own SET, as for every key.
    let key = sluice_api::layout::ALLOWED_SAVEPOINT_DIRS;
    let extra = config.get(key).or_else(|| validated.job.settings.get(key).map(String::as_str)).unwrap_or("");
    let savepoint_dirs = [ck.savepoint_dir.clone(), ck.dir.clone()]
        .into_iter()
        .flatten()
        .chain(extra.split(',').map(str::trim).filter(|d| !d.is_empty()).map(str::to_string))
        .map(|d| absolute(&d))
        .collect();
    let options = sluice_engine::local::run_options(validated.settings, job_id)?;
    Ok((Prepared { graph, options, lineage, savepoint_dirs, sql: text }, config))
}

/// A relative local path made absolute (against the working directory); URIs and
/// absolute paths as they are.
fn absolute(dir: &str) -> String {
    if dir.contains("://") || dir.starts_with('/') || dir.starts_with("file:") {
        return dir.to_string();
    }
    std::env::current_dir().map(|cwd| cwd.join(dir).display().to_string()).unwrap_or_else(|_| dir.to_string())
}

fn run(args: &RunArgs) -> Result<(), EngineError> {
    let job_id = args.state.job_id.clone().unwrap_or_else(|| default_job_id(&args.job));
    let prepared = prepare_with(&args.job, &args.state.flags(), &job_id)?;
    let state = JobState::new(&job_id, &args.job.job.display().to_string(), &prepared.graph);
    state.restrict_savepoints_to(prepared.savepoint_dirs.clone());
    state.set_sql(&prepared.sql);
    let server = rest::serve(&args.rest_addr, state.clone(), rest_token(&args.rest_token_file, &args.rest_addr)?)?;
    sluice_engine::say!("job `{job_id}` REST API on http://{}", server.addr);
    sluice_engine::say!("job `{job_id}` web UI on http://{}/", server.addr);
    let progress = if std::io::stderr().is_terminal() { Some(spawn_progress(state.clone())) } else { None };
    let started = Instant::now();
    let result = sluice_engine::openlineage::watching(prepared.lineage, &state, None, || {
        execute(&prepared.graph, &state, &prepared.options)
    });
    if let Some(p) = progress {
        p.stop();
    }
    result?;
    summary(&state, started.elapsed());
    if state.status() != JobStatus::Finished {
        return Err(EngineError::Ended { job: job_id, state: format!("{:?}", state.status()).to_uppercase() });
    }
    Ok(())
}

/// The closing line of a run: records read, rate, late and skipped records.
fn summary(state: &JobState, elapsed: Duration) {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let records: u64 = state
        .vertices
        .iter()
        .filter(|v| v.is_source)
        .flat_map(|v| state.metrics_of(v.id))
        .map(|m| load(&m.records_in))
        .sum();
    let late: u64 = state.subtasks.iter().map(|m| load(&m.late_records_dropped)).sum();
    let skipped: u64 = state.subtasks.iter().map(|m| load(&m.skipped_records)).sum();
    sluice_engine::say!(
        "job `{}` {:?} in {:.2}s: {records} records read ({:.0}/s), {late} late records dropped, {skipped} unparsable records skipped",
        state.job_id,
        state.status(),
        elapsed.as_secs_f64(),
        records as f64 / elapsed.as_secs_f64().max(1e-9),
    );
}

struct Progress {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<()>,
}

impl Progress {
    fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.handle.join();
        eprint!("\r\x1b[2K");
    }
}

/// A progress line on stderr: records per second and the lowest watermark.
fn spawn_progress(state: Arc<JobState>) -> Progress {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let sources: Vec<_> = state.vertices.iter().filter(|v| v.is_source).map(|v| v.id).collect();
        let read = |s: &JobState| -> u64 {
            sources
                .iter()
                .flat_map(|v| s.metrics_of(*v))
                .map(|m| m.records_in.load(std::sync::atomic::Ordering::Relaxed))
                .sum()
        };
        let mut last = (Instant::now(), read(&state));
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
            if last.0.elapsed() < Duration::from_secs(1) {
                continue;
            }
            let now = (Instant::now(), read(&state));
            let rate = (now.1 - last.1) as f64 / now.0.duration_since(last.0).as_secs_f64();
            let wm = state
                .subtasks
                .iter()
                .map(|m| m.watermark.load(std::sync::atomic::Ordering::Relaxed))
                .filter(|w| *w != i64::MIN)
                .min();
            let wm = match wm {
                Some(i64::MAX) => "end".to_string(),
                Some(w) => chrono::DateTime::from_timestamp_millis(w)
                    .map(|d| d.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
                    .unwrap_or_else(|| w.to_string()),
                None => "none".into(),
            };
            eprint!("\r\x1b[2K{} records read, {:.0} records/s, watermark {wm}", now.1, rate);
            last = now;
        }
    });
    Progress { stop, handle }
}
