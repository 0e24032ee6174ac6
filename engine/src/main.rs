//! `sluice-engine`: run, explain or validate a Flink-SQL job.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use sluice_engine::config::Config;
use sluice_engine::error::EngineError;
use sluice_engine::rest;
use sluice_engine::runtime::{JobState, JobStatus, RunOptions, execute};

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
    /// Check a job's SQL; prints FILE:LINE:COL: message and exits 1 on error.
    Validate {
        /// The job file.
        job: PathBuf,
    },
}

#[derive(Args)]
struct JobArgs {
    /// The job file: Flink SQL statements.
    job: PathBuf,
    /// Parallelism of every vertex (overrides parallelism.default).
    #[arg(long, short = 'p')]
    parallelism: Option<usize>,
    /// A YAML file of Flink-style configuration keys.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Sets a configuration key; repeatable. Wins over --config.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
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
    /// Address of the REST API; port 0 picks a free port and prints it.
    #[arg(long, default_value = "127.0.0.1:8081")]
    rest_addr: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init();
    match cli.command {
        Command::Validate { job } => match load(&job) {
            Ok(_) => {
                println!("{}: OK", job.display());
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
        Command::Run(args) => match run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
    }
}

fn load(job: &Path) -> Result<sluice_sql::Job, EngineError> {
    sluice_engine::local::compile_file(job)
}

struct Prepared {
    graph: sluice_engine::plan::JobGraph,
    options: RunOptions,
}

/// Configuration layers: SET in the job < --config < --set < flags.
fn prepare(args: &JobArgs) -> Result<Prepared, EngineError> {
    prepare_with(args, &[], &default_job_id(args))
}

fn default_job_id(args: &JobArgs) -> String {
    args.job.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "job".into())
}

fn prepare_with(args: &JobArgs, flags: &[(&str, Option<String>)], job_id: &str) -> Result<Prepared, EngineError> {
    let job = load(&args.job)?;
    let mut config = Config::default();
    if let Some(path) = &args.config {
        config.values.extend(Config::from_file(path)?.values);
    }
    config.set_all(&args.set)?;
    if let Some(p) = args.parallelism {
        config.values.insert("parallelism.default".into(), p.to_string());
    }
    for (key, value) in flags {
        if let Some(v) = value {
            config.values.insert(key.to_string(), v.clone());
        }
    }
    let (graph, options) = sluice_engine::local::prepare(&job, &config, job_id)?;
    Ok(Prepared { graph, options })
}

fn run(args: &RunArgs) -> Result<(), EngineError> {
    let job_id = args.job_id.clone().unwrap_or_else(|| default_job_id(&args.job));
    let flags = [
        ("execution.checkpointing.dir", args.checkpoint_dir.clone()),
        ("execution.checkpointing.interval", args.checkpoint_interval.clone()),
        ("execution.checkpointing.savepoint-dir", args.savepoint_dir.clone()),
        ("execution.state-recovery.path", args.restore.clone()),
        ("execution.state-recovery.ignore-unclaimed-state", args.allow_non_restored_state.then(|| "true".into())),
        ("s3.endpoint", args.s3_endpoint.clone()),
    ];
    let prepared = prepare_with(&args.job, &flags, &job_id)?;
    let state = JobState::new(&job_id, &args.job.job.display().to_string(), &prepared.graph);
    let server = rest::serve(&args.rest_addr, state.clone())?;
    eprintln!("sluice: job `{job_id}` REST API on http://{}", server.addr);
    let progress = if std::io::stderr().is_terminal() { Some(spawn_progress(state.clone())) } else { None };
    let started = Instant::now();
    let result = execute(&prepared.graph, &state, &prepared.options);
    if let Some(p) = progress {
        p.stop();
    }
    let elapsed = started.elapsed();
    let records: u64 = state
        .vertices
        .iter()
        .filter(|v| v.is_source)
        .flat_map(|v| state.metrics_of(v.id))
        .map(|m| m.records_in.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    let late: u64 =
        state.subtasks.iter().map(|m| m.late_records_dropped.load(std::sync::atomic::Ordering::Relaxed)).sum();
    let skipped: u64 =
        state.subtasks.iter().map(|m| m.skipped_records.load(std::sync::atomic::Ordering::Relaxed)).sum();
    result?;
    eprintln!(
        "sluice: job `{job_id}` {:?} in {:.2}s: {records} records read ({:.0}/s), {late} late records dropped, {skipped} unparsable records skipped",
        state.status(),
        elapsed.as_secs_f64(),
        records as f64 / elapsed.as_secs_f64().max(1e-9),
    );
    if state.status() != JobStatus::Finished {
        return Err(EngineError::Ended { job: job_id, state: format!("{:?}", state.status()).to_uppercase() });
    }
    Ok(())
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
