//! Running a job in this process: compile, apply configuration, build the graph,
//! execute. Used by `sluice-engine run` and by the tests.

use std::path::Path;
use std::sync::Arc;

use sluice_job::{CheckpointSettings, Settings};
use sluice_storage::Storage;

use crate::checkpoint::coordinator::CheckpointOptions;
use crate::config::Config;
use crate::error::EngineError;
use crate::plan::{JobGraph, build_graph};
use crate::runtime::{JobState, RunOptions, execute};

/// Reads and compiles a job file, and checks its connectors' options.
pub fn compile_file(path: &Path) -> Result<sluice_sql::Job, EngineError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| EngineError::Io { path: path.display().to_string(), source })?;
    compile_text(&text, &path.display().to_string())
}

/// Compiles job text and checks its connectors' options; `file` names it in errors.
pub fn compile_text(text: &str, file: &str) -> Result<sluice_sql::Job, EngineError> {
    Ok(sluice_job::compile(text, file)?)
}

/// The job graph and runtime options for a job under a configuration. The
/// job's own `SET` statements are the lowest layer of the configuration.
/// `job_id` names the job's directory under the checkpoint directory.
pub fn prepare(job: &sluice_sql::Job, overrides: &Config, job_id: &str) -> Result<(JobGraph, RunOptions), EngineError> {
    let mut config = Config { values: job.settings.clone() };
    config.values.extend(overrides.values.clone());
    let settings = Settings::from_config(&config)?;
    let graph = build_graph(job, &settings)?;
    Ok((graph, run_options(settings, job_id)?))
}

/// The runtime options of validated settings; the job's directory is
/// `<checkpoint-dir>/<job_id>`.
pub fn run_options(settings: Settings, job_id: &str) -> Result<RunOptions, EngineError> {
    Ok(RunOptions {
        batch_size: settings.batch_size,
        buffer_capacity: settings.buffer_capacity,
        debloat_target: settings.debloat_target,
        idle_timeout: settings.idle_timeout,
        latency_interval: settings.latency_interval,
        checkpoint: checkpoint_options(settings.checkpoint, job_id)?,
        restart: settings.restart,
        restore: settings.restore,
        allow_non_restored_state: settings.allow_non_restored_state,
    })
}

fn checkpoint_options(c: CheckpointSettings, job_id: &str) -> Result<CheckpointOptions, EngineError> {
    let job_dir = match &c.dir {
        Some(uri) => Some(
            Storage::open(uri, &c.s3)
                .map_err(|e| EngineError::Config(format!("'execution.checkpointing.dir': {e}")))?
                .child(job_id),
        ),
        None => None,
    };
    Ok(CheckpointOptions {
        job_dir,
        interval: c.interval,
        timeout: c.timeout,
        retained: c.retained,
        savepoint_dir: c.savepoint_dir,
        incremental: c.incremental,
        s3: c.s3,
        committer: Default::default(),
    })
}

/// Compiles and runs job text to completion, returning the finished job's state.
/// Sends the run's OpenLineage events if the configuration says where.
pub fn run_text(text: &str, file: &str, job_id: &str, overrides: &Config) -> Result<Arc<JobState>, EngineError> {
    let job = sluice_job::compile_configured(text, file, overrides)?;
    let (graph, options) = prepare(&job, overrides, job_id)?;
    let state = JobState::new(job_id, file, &graph);
    state.set_sql(text);
    let lineage = crate::openlineage::Lineage::of(&job, overrides)?;
    crate::openlineage::watching(lineage, &state, None, || execute(&graph, &state, &options))?;
    Ok(state)
}
