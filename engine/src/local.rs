//! Running a job in this process: compile, apply configuration, build the graph,
//! execute. Used by `sluice-engine run` and by the tests.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::error::EngineError;
use crate::plan::{JobGraph, build_graph, validate_connectors};
use crate::runtime::{JobState, RunOptions, execute};

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
pub fn prepare(job: &sluice_sql::Job, overrides: &Config) -> Result<(JobGraph, RunOptions), EngineError> {
    let mut config = Config { values: job.settings.clone() };
    config.values.extend(overrides.values.clone());
    let parallelism = config.usize("parallelism.default", 1)?;
    let max_parallelism = config.usize("pipeline.max-parallelism", 128)?;
    let graph = build_graph(job, parallelism, max_parallelism)?;
    let options = RunOptions {
        batch_size: config.usize("execution.batch-size", 8192)?,
        buffer_capacity: config.usize("execution.buffer-capacity", 8)?,
        idle_timeout: Duration::from_millis(config.duration_ms("table.exec.source.idle-timeout", 0)?),
    };
    Ok((graph, options))
}

/// Compiles and runs job text to completion, returning the finished job's state.
pub fn run_text(text: &str, file: &str, job_id: &str, overrides: &Config) -> Result<Arc<JobState>, EngineError> {
    let job = compile_text(text, file)?;
    let (graph, options) = prepare(&job, overrides)?;
    let state = JobState::new(job_id, file, &graph);
    execute(&graph, &state, &options)?;
    Ok(state)
}
