//! The supervisor of a job: it runs attempts until the job finishes, is
//! canceled, stops with a savepoint, or fails beyond its restart strategy,
//! and it prepares the coordinator's side of each attempt (state layouts, the
//! restore check, sink recovery). One loop for the local runner and the
//! distributed coordinator.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use sluice_connectors::{recover_sink, withdraw_committed_after};

use super::deploy::{Tasks, Wiring, deploy, spawn};
use super::start::{self, Begin, Claimed};
use super::{RunOptions, restoring};
use crate::checkpoint::CoordMsg;
use crate::checkpoint::coordinator::{CheckpointCoordinator, Ending, VertexMeta};
use crate::checkpoint::restore;
use crate::checkpoint::store::{self, Loaded};
use crate::error::EngineError;
use crate::job::{JobState, JobStatus};
use crate::operators::factory::{SinkSetup, sink_context, vertex_metas};
use crate::plan::{JobGraph, OpSpec};

/// Runs one attempt of a job: in this process, or on workers.
pub trait Attempts {
    /// Whether this process restores keyed state itself, so that a restore
    /// must keep it in memory (every file is verified either way).
    fn restores_keyed_state(&self) -> bool {
        true
    }

    fn run(
        &mut self,
        graph: &JobGraph,
        state: &Arc<JobState>,
        opts: &RunOptions,
        restore: Option<&Loaded>,
        coord: &mut CheckpointCoordinator,
    ) -> Result<AttemptEnd, AttemptError>;
}

/// How one attempt of the job ended.
pub enum AttemptEnd {
    Finished,
    Stopped,
    Canceled,
}

/// Runs the job until it finishes, is canceled, stops with a savepoint, or
/// fails beyond its restart strategy. With checkpoint storage, it claims a
/// generation of the job first (a new run, never a restart).
pub fn execute(graph: &JobGraph, state: &Arc<JobState>, opts: &RunOptions) -> Result<(), EngineError> {
    let claimed = match &opts.checkpoint.job_dir {
        Some(dir) => Some(Claimed::claim(dir, "run", false).map_err(|e| start::failed(state, e))?),
        None => None,
    };
    execute_with(graph, state, opts, &mut LocalAttempts, claimed)
}

/// [`execute`] with another attempt runner and the generation it claimed, if
/// the job has checkpoint storage: its fence is checked before anything is
/// committed, and it decides where the run starts (see [`start`]).
pub fn execute_with(
    graph: &JobGraph,
    state: &Arc<JobState>,
    opts: &RunOptions,
    attempts: &mut dyn Attempts,
    claimed: Option<Claimed>,
) -> Result<(), EngineError> {
    let mut opts = opts.clone();
    opts.checkpoint.committer.generation = claimed.as_ref().map_or(0, |c| c.fence.generation);
    let opts = &opts;
    let ck = &opts.checkpoint;
    let keyed = attempts.restores_keyed_state();
    let keep = |m: &crate::checkpoint::Metadata, f: &crate::checkpoint::metadata::FileEntry| {
        keyed || store::holds_unkeyed(m, f)
    };
    let (mut initial, first_id) = match start::begin(graph, state, opts, claimed.as_ref(), &keep) {
        Ok(Some(Begin { initial, first_id })) => (initial, first_id),
        Ok(None) => return Ok(()),
        Err(e) => return Err(start::failed(state, e)),
    };
    let mut coord = CheckpointCoordinator::new(ck.clone(), state.clone(), graph.max_parallelism, Vec::new(), first_id);
    coord.fence = claimed.map(|c| c.fence);
    let mut restored_from: Option<Loaded> = None;
    let mut attempt = 0u32;
    loop {
        let from = if restored_from.is_some() { &mut restored_from } else { &mut initial };
        if let Some(l) = from.as_ref().filter(|l| l.released()) {
            *from = Some(start::reload(l, opts, &keep).map_err(|e| start::failed(state, e))?);
        }
        let restore = from.as_ref();
        let result = attempts.run(graph, state, opts, restore, &mut coord);
        match result {
            Ok(AttemptEnd::Finished) | Ok(AttemptEnd::Stopped) => {
                state.set_status(JobStatus::Finished);
                return Ok(());
            }
            Ok(AttemptEnd::Canceled) => {
                state.set_status(JobStatus::Canceled);
                return Ok(());
            }
            Err(AttemptError::Fatal(e)) => return Err(start::failed(state, e)),
            Err(e) => {
                // Errors while setting up the first attempt are the user's to fix.
                let setup = matches!(e, AttemptError::Setup(_)) && attempt == 0;
                let err = e.into_inner();
                attempt += 1;
                let delay =
                    if setup || state.user_cancel.load(Ordering::SeqCst) { None } else { opts.restart.delay(attempt) };
                let Some(delay) = delay else {
                    if state.user_cancel.load(Ordering::SeqCst) && !setup {
                        state.set_status(JobStatus::Canceled);
                        return Ok(());
                    }
                    return Err(start::failed(state, err));
                };
                state.exceptions.record(&err.to_string(), true);
                state.restarts.store(attempt as u64, Ordering::SeqCst);
                state.set_status(JobStatus::Restarting);
                let from =
                    coord.latest.as_ref().map(|d| d.uri()).or_else(|| initial.as_ref().map(|l| l.location.clone()));
                crate::say!(
                    "job `{}` failed: {err}\nsluice: restart {attempt} in {} ms, from {}",
                    state.job_id,
                    delay.as_millis(),
                    from.as_deref().unwrap_or("the beginning")
                );
                let until = Instant::now() + delay;
                while Instant::now() < until && !state.user_cancel.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
                }
                if state.user_cancel.load(Ordering::SeqCst) {
                    state.set_status(JobStatus::Canceled);
                    return Ok(());
                }
                state.clear_failure();
                if let Some(dir) = coord.latest.clone() {
                    let t = Instant::now();
                    restored_from = match store::load_verified(&dir, &keep) {
                        Ok(l) => {
                            restoring(state, &l, t);
                            Some(l)
                        }
                        Err(why) => {
                            tracing::warn!("cannot restore from {}: {why}; trying older checkpoints", dir.uri());
                            // This generation's newest other checkpoint, else where it started.
                            let generation = coord.fence.as_ref().map(|f| f.generation);
                            match &ck.job_dir {
                                Some(j) => store::load_latest_of(j, generation, &keep).ok().flatten(),
                                None => None,
                            }
                        }
                    };
                }
            }
        }
    }
}

pub enum AttemptError {
    /// Building the attempt failed (configuration, restore compatibility).
    Setup(EngineError),
    /// A subtask failed while running.
    Run(EngineError),
    /// The job must not restart (this coordinator was fenced off).
    Fatal(EngineError),
}

impl AttemptError {
    fn into_inner(self) -> EngineError {
        match self {
            AttemptError::Setup(e) | AttemptError::Run(e) | AttemptError::Fatal(e) => e,
        }
    }
}

/// What each sink vertex needs: the restored writer states and the mode.
/// With `recover`, this also commits what the restored snapshot covers and
/// cleans up what an earlier attempt left pending (the coordinator's job).
/// Only the vertices `runs_here` selects are set up (a worker's: those with a
/// subtask on it); the others get the default.
pub fn sink_setups(
    graph: &JobGraph,
    state: &JobState,
    opts: &RunOptions,
    restore: Option<&Loaded>,
    recover: bool,
    runs_here: &dyn Fn(&crate::plan::Vertex) -> bool,
) -> Result<Vec<SinkSetup>, EngineError> {
    let exactly_once = opts.checkpoint.exactly_once();
    let mut setups: Vec<SinkSetup> = vec![SinkSetup::default(); graph.vertices.len()];
    for v in graph.vertices.iter().filter(|v| runs_here(v)) {
        let Some(OpSpec::Sink { table, .. }) = v.ops.last() else { continue };
        let restored = match restore {
            Some(l) => restore::sink_for(l, &v.uid)?,
            None => None,
        };
        let recovering = exactly_once || restored.is_some();
        let (committables, restored_states) = match restored {
            Some(r) => (r.committables, Some(r.states)),
            None => (Vec::new(), None),
        };
        let sink = SinkSetup {
            restored_states,
            exactly_once,
            s3: opts.checkpoint.s3.clone(),
            checkpoint_interval: opts.checkpoint.interval.filter(|_| exactly_once),
            committer: opts.checkpoint.committer.clone(),
        };
        if recover && recovering {
            let ctx = sink_context(table, 0, v.parallelism, &state.job_id, &graph.local_time_zone, &sink);
            recover_sink(&ctx, &committables)?;
            if let Some(l) = restore.filter(|l| !l.passed_over.is_empty()) {
                let withdrawn = withdraw_committed_after(&ctx, &restore::sink_states_by_subtask(l, &v.uid)?)?;
                crate::say!(
                    "job `{}`: sink `{}`: withdrew {} part files committed after checkpoint {} by checkpoints {:?}, which cannot be restored; the job writes their rows again",
                    state.job_id,
                    ctx.table,
                    withdrawn.len(),
                    l.metadata.checkpoint_id,
                    l.passed_over
                );
            }
        }
        setups[v.id] = sink;
    }
    Ok(setups)
}

/// The coordinator's side of an attempt, shared by the local runner and the
/// distributed coordinator: the stateful layouts, the restore check (before
/// anything has side effects), and sink recovery.
pub fn prepare_attempt(
    graph: &JobGraph,
    state: &Arc<JobState>,
    opts: &RunOptions,
    restore: Option<&Loaded>,
) -> Result<(Vec<VertexMeta>, Vec<SinkSetup>), EngineError> {
    let metas = vertex_metas(graph, state)?;
    if let Some(l) = restore {
        restore::check(l, &metas, graph.max_parallelism, opts.allow_non_restored_state)?;
    }
    let setups = sink_setups(graph, state, opts, restore, true, &|_| true)?;
    Ok((metas, setups))
}

/// What ends an attempt that the coordinator ended.
pub fn log_ending(state: &JobState, e: &Ending) {
    match e {
        Ending::Finished { location } => tracing::info!("job `{}` finished; final checkpoint {location}", state.job_id),
        Ending::Stopped { location } => crate::say!("job `{}` stopped with savepoint {location}", state.job_id),
    }
}

/// How an attempt ended, from the ending the coordinator chose (if any) and
/// the job state.
pub fn attempt_result(state: &JobState, ending: Option<Ending>) -> Result<AttemptEnd, AttemptError> {
    if let Some(e) = ending {
        log_ending(state, &e);
        state.cancel.store(false, Ordering::SeqCst);
        return Ok(if matches!(e, Ending::Stopped { .. }) { AttemptEnd::Stopped } else { AttemptEnd::Finished });
    }
    if let Some(e) = state.error() {
        // The message names the job, the vertex and the subtask (or the worker).
        return Err(AttemptError::Run(EngineError::Failed(e)));
    }
    if state.cancel.load(Ordering::SeqCst) {
        return Ok(AttemptEnd::Canceled);
    }
    Ok(AttemptEnd::Finished)
}

/// Runs every subtask in this process.
pub struct LocalAttempts;

impl Attempts for LocalAttempts {
    fn run(
        &mut self,
        graph: &JobGraph,
        state: &Arc<JobState>,
        opts: &RunOptions,
        restore: Option<&Loaded>,
        coord: &mut CheckpointCoordinator,
    ) -> Result<AttemptEnd, AttemptError> {
        let setup = AttemptError::Setup;
        let (metas, setups) = prepare_attempt(graph, state, opts, restore).map_err(setup)?;
        let d = deploy(graph, state, opts, restore, &setups, None).map_err(setup)?;
        coord.set_vertices(metas);
        let Tasks { tasks, wiring, coord_rx } = d;
        coord.reset_attempt(&wiring);
        state.set_status(JobStatus::Running);
        let total = tasks.len();
        let handles = spawn(graph, state, opts, tasks).map_err(setup)?;

        // Drive the coordinator until every subtask has exited.
        let mut exited = 0;
        let mut ending: Option<Ending> = None;
        while exited < total {
            match coord_rx.recv_timeout(Duration::from_millis(10)) {
                Ok(CoordMsg::Exited { .. }) => exited += 1,
                Ok(msg) => {
                    if let Some(e) = coord.on_message(msg, &wiring) {
                        ending = Some(e);
                        // The job is complete: stop every subtask.
                        state.cancel.store(true, Ordering::SeqCst);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if !state.cancel.load(Ordering::Relaxed) {
                coord.tick(&wiring);
            }
        }
        drop(wiring);
        for h in handles {
            if h.join().is_err() {
                state.fail("a subtask thread panicked".into());
            }
        }
        // Acknowledgements still in flight are dropped with the attempt.
        coord.reset_attempt(&Wiring::default());
        if let Some(why) = coord.fenced() {
            return Err(AttemptError::Fatal(EngineError::Fenced(why)));
        }
        attempt_result(state, ending)
    }
}
