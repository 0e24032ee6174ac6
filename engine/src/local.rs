//! Running a job in this process: compile, apply configuration, build the graph,
//! execute. Used by `sluice-engine run` and by the tests.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sluice_storage::{S3Options, Storage};

use crate::checkpoint::coordinator::CheckpointOptions;
use crate::checkpoint::restart::RestartStrategy;
use crate::config::Config;
use crate::error::EngineError;
use crate::plan::{JobGraph, build_graph, validate_connectors};
use crate::runtime::{JobState, Restore, RunOptions, execute};

/// Reads and compiles a job file, and checks its connectors' options.
pub fn compile_file(path: &Path) -> Result<sluice_sql::Job, EngineError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| EngineError::Io { path: path.display().to_string(), source })?;
    compile_text(&text, &path.display().to_string())
}

/// Compiles job text; `file` names it in errors.
pub fn compile_text(text: &str, file: &str) -> Result<sluice_sql::Job, EngineError> {
    let job = sluice_sql::compile(text).map_err(|error| EngineError::Sql { file: file.to_string(), error })?;
    validate_connectors(&job)?;
    Ok(job)
}

/// The job graph and runtime options for a job under a configuration. The
/// job's own `SET` statements are the lowest layer of the configuration.
/// `job_id` names the job's directory under the checkpoint directory.
pub fn prepare(job: &sluice_sql::Job, overrides: &Config, job_id: &str) -> Result<(JobGraph, RunOptions), EngineError> {
    let mut config = Config { values: job.settings.clone() };
    config.values.extend(overrides.values.clone());
    let parallelism = config.usize("parallelism.default", 1)?;
    let max_parallelism = config.usize("pipeline.max-parallelism", 128)?;
    let graph = build_graph(job, parallelism, max_parallelism)?;
    let checkpoint = checkpoint_options(&config, job_id)?;
    let restart = RestartStrategy::from_config(&config, checkpoint.interval.is_some())?;
    let restore = match config.get("execution.state-recovery.path").map(str::trim) {
        None | Some("") => Restore::None,
        Some("latest") => Restore::Latest,
        Some(uri) => Restore::Uri(uri.to_string()),
    };
    let options = RunOptions {
        batch_size: config.usize("execution.batch-size", 8192)?,
        buffer_capacity: config.usize("execution.buffer-capacity", 8)?,
        idle_timeout: Duration::from_millis(config.duration_ms("table.exec.source.idle-timeout", 0)?),
        checkpoint,
        restart,
        restore,
        allow_non_restored_state: config.bool("execution.state-recovery.ignore-unclaimed-state")?,
    };
    Ok((graph, options))
}

/// The first key that is set, of Flink's current and older names.
fn first<'a>(config: &'a Config, keys: &[&str]) -> Option<(&'a str, String)> {
    keys.iter().find_map(|k| config.get(k).map(|v| (v, k.to_string())))
}

/// Checkpointing from Flink's keys:
/// `execution.checkpointing.dir` (or `state.checkpoints.dir`),
/// `execution.checkpointing.interval`, `execution.checkpointing.timeout`
/// (default 10 min), `execution.checkpointing.num-retained` (or
/// `state.checkpoints.num-retained`, default 3),
/// `execution.checkpointing.savepoint-dir` (or `state.savepoints.dir`), and the
/// `s3.*` keys of [`S3Options::from_config`].
pub fn checkpoint_options(config: &Config, job_id: &str) -> Result<CheckpointOptions, EngineError> {
    let s3 = S3Options::from_config(|k| config.get(k).map(str::to_string));
    let interval = match first(config, &["execution.checkpointing.interval"]) {
        Some((v, k)) => {
            let ms = config.duration_ms(&k, 0)?;
            if ms == 0 {
                return Err(EngineError::Config(format!("'{k}': '{v}' must be a positive duration such as '10 s'")));
            }
            Some(Duration::from_millis(ms))
        }
        None => None,
    };
    let job_dir = match first(config, &["execution.checkpointing.dir", "state.checkpoints.dir"]) {
        Some((uri, key)) => Some(
            Storage::open(uri.trim(), &s3).map_err(|e| EngineError::Config(format!("'{key}': {e}")))?.child(job_id),
        ),
        None if interval.is_some() => {
            return Err(EngineError::Config(
                "checkpointing is on (execution.checkpointing.interval) but there is no checkpoint directory; pass --checkpoint-dir or set execution.checkpointing.dir".into(),
            ));
        }
        None => None,
    };
    let retained = match first(config, &["execution.checkpointing.num-retained", "state.checkpoints.num-retained"]) {
        Some((_, k)) => config.usize(&k, 3)?,
        None => 3,
    };
    Ok(CheckpointOptions {
        job_dir,
        interval,
        timeout: Duration::from_millis(config.duration_ms("execution.checkpointing.timeout", 600_000)?),
        retained,
        savepoint_dir: first(config, &["execution.checkpointing.savepoint-dir", "state.savepoints.dir"])
            .map(|(v, _)| v.trim().to_string()),
        s3,
    })
}

/// Compiles and runs job text to completion, returning the finished job's state.
pub fn run_text(text: &str, file: &str, job_id: &str, overrides: &Config) -> Result<Arc<JobState>, EngineError> {
    let job = compile_text(text, file)?;
    let (graph, options) = prepare(&job, overrides, job_id)?;
    let state = JobState::new(job_id, file, &graph);
    execute(&graph, &state, &options)?;
    Ok(state)
}
