//! A standby coordinator (`sluice-engine coordinator --standby`): one color of
//! a blue-green cutover. It compiles the job, lets its workers register, and
//! checks the snapshot it would start from, then waits to be activated
//! (`POST /v1/job/activate`); after each run it waits again.
//!
//! Invariants:
//! 1. Waiting, it claims no generation and writes nothing under the job
//!    directory: it only reads. So a standby can neither fence off nor disturb
//!    the job that runs, and removing it leaves nothing behind.
//! 2. It runs only when activated, or when the newest claimed generation is its
//!    own deployment's ([`lineage::is_active`]): it was activated, and this
//!    process restarted; then it recovers its lineage as any restarted
//!    coordinator does. The fingerprint includes `--deployment-id`, so two
//!    colors of the same job text are still two deployments.
//! 3. Activation claims the next generation before anything is restored, and
//!    that claim fences off every earlier coordinator: none commits after it
//!    (`lineage` invariant 1). The operator activates a color only once the
//!    other has stopped with a savepoint, or, if it could not, from `latest`,
//!    which is the newest checkpoint of the lineage the claim fenced off.
//! 4. After a run ends, it waits again, checking `latest`: after a stop with
//!    savepoint that is its own savepoint, so a rollback onto it is one
//!    activation with the other color's savepoint.
//!
//! The decisions are [`lineage::is_active`] and [`readiness`]; this module is
//! the loop around them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::{JobSource, RemoteAttempts, Rpc};
use crate::checkpoint::lineage;
use crate::error::EngineError;
use crate::job::{Activation, Standby, rfc3339};
use crate::plan::JobGraph;
use crate::runtime::{Claimed, JobState, JobStatus, Restore, RunOptions, execute_with, start};

/// What the standby found when it checked where it would start.
type Checked = Result<(Option<String>, u64), String>;

/// Whether a standby can be activated, and what it tells the caller.
pub fn readiness(checked: &Checked, slots: usize, workers: usize, needed: usize) -> Standby {
    let (preloaded, preloaded_bytes) = match checked {
        Ok((location, bytes)) => (location.clone(), *bytes),
        Err(_) => (None, 0),
    };
    let (ready, message) = match checked {
        Err(e) => (false, format!("cannot be activated: {e}")),
        Ok(_) if slots < needed => {
            (false, format!("waiting for workers: {slots} of {needed} slots ({workers} workers registered)"))
        }
        Ok((Some(l), _)) => (true, format!("ready: {workers} workers, {slots} slots; checked {l}")),
        Ok((None, _)) => (true, format!("ready: {workers} workers, {slots} slots; no snapshot, it starts empty")),
    };
    Standby { ready, preloaded, preloaded_bytes, message }
}

/// Runs the coordinator in standby until SIGTERM (`shutdown`).
pub fn run(
    source: JobSource,
    graph: &JobGraph,
    opts: RunOptions,
    rpc: Rpc,
    state: Arc<JobState>,
    shutdown: Arc<AtomicBool>,
) -> Result<(), EngineError> {
    let fingerprint = source.fingerprint();
    let Some(job_dir) = opts.checkpoint.job_dir.clone() else {
        let e = EngineError::Config("--standby needs checkpoint storage (--checkpoint-dir)".into());
        return Err(start::failed(&state, e));
    };
    let needed = graph.vertices.iter().map(|v| v.parallelism).max().unwrap_or(1);
    let mut attempts = RemoteAttempts::new(rpc, source, 0);
    // Only at start: a restarted process of the active deployment resumes.
    let mut resume = match lineage::read(&job_dir) {
        Ok(previous) => lineage::is_active(&previous, &fingerprint),
        Err(e) => return Err(start::failed(&state, e.into())),
    };
    let mut check = opts.restore.clone();
    state.set_status(JobStatus::Standby);
    loop {
        let restore = if resume {
            crate::say!("job `{}`: this deployment was active; it resumes without waiting", state.job_id);
            opts.restore.clone()
        } else {
            match wait(graph, &state, &opts, &attempts, &check, &fingerprint, needed, &shutdown) {
                Some(r) => r,
                None => return Ok(()),
            }
        };
        state.set_standby(None);
        state.reset_for_run();
        let claimed = match Claimed::claim(&job_dir, &fingerprint, resume) {
            Ok(c) => c,
            Err(e) => {
                crate::say!("job `{}`: activation failed: {e}; waiting in standby again", state.job_id);
                state.fail(e.to_string());
                state.set_status(JobStatus::Failed);
                resume = false;
                continue;
            }
        };
        resume = false;
        attempts.generation = claimed.fence.generation;
        attempts.rpc.set_generation(claimed.fence.generation);
        crate::say!(
            "job `{}` activated as generation {} from {}",
            state.job_id,
            claimed.fence.generation,
            describe(&restore)
        );
        let run = RunOptions { restore, ..opts.clone() };
        let result = execute_with(graph, &state, &run, &mut attempts, Some(claimed));
        if shutdown.load(Ordering::SeqCst) {
            return result;
        }
        match &result {
            Ok(()) => crate::say!("job `{}` is {}; waiting in standby", state.job_id, state.status()),
            Err(e) => crate::say!("job `{}` FAILED: {e}; waiting in standby", state.job_id),
        }
        check = after_run(&state);
    }
}

/// How often a standby whose check failed checks again.
const RECHECK: Duration = Duration::from_secs(10);

/// Checks where the job would start if it were activated now; a failure shows
/// as FAILED with the reason, a success restores the state shown before.
fn check_once(
    graph: &JobGraph,
    state: &Arc<JobState>,
    opts: &RunOptions,
    check: &Restore,
    fingerprint: &str,
    shown: JobStatus,
) -> Checked {
    let checked: Checked = start::check_standby(graph, state, opts, check, fingerprint)
        .map(|l| l.map_or((None, 0), |l| (Some(l.location.clone()), l.metadata.total_size())))
        .map_err(|e| e.to_string());
    match &checked {
        Ok((Some(l), bytes)) => crate::say!("job `{}` standby: checked {l} ({bytes} bytes)", state.job_id),
        Ok((None, _)) => crate::say!("job `{}` standby: no snapshot to restore; it would start empty", state.job_id),
        Err(e) => {
            if state.error().as_deref() != Some(e.as_str()) {
                crate::say!("job `{}` cannot be activated: {e}", state.job_id);
            }
            state.clear_failure();
            state.fail(e.clone());
            // Why it cannot be activated is published before the FAILED status, so
            // that a client that sees FAILED also sees the reason (the loop then adds
            // the slots).
            state.set_standby(Some(readiness(&checked, 0, 0, 0)));
            state.set_status(JobStatus::Failed);
        }
    }
    if checked.is_ok() && state.status() != shown {
        state.clear_failure();
        state.set_status(shown);
    }
    checked
}

/// What a coordinator checks while it waits after a run: its own stop savepoint
/// after a stop (the handoff, so that a rollback restores onto what it knows),
/// else the newest snapshot of the lineage.
fn after_run(state: &JobState) -> Restore {
    match state.last_completed_checkpoint() {
        Some(c) if state.status() == JobStatus::Finished && c.kind == crate::job::SnapshotKind::Savepoint => {
            Restore::Uri(c.location)
        }
        _ => Restore::Latest,
    }
}

fn describe(r: &Restore) -> String {
    match r {
        Restore::None => "empty state".into(),
        Restore::Latest => "latest".into(),
        Restore::Uri(u) => u.clone(),
    }
}

/// Waits in standby: checks where the job would start, reports readiness, and
/// returns the activation's restore point; `None` on SIGTERM.
#[allow(clippy::too_many_arguments)]
fn wait(
    graph: &JobGraph,
    state: &Arc<JobState>,
    opts: &RunOptions,
    attempts: &RemoteAttempts,
    check: &Restore,
    fingerprint: &str,
    needed: usize,
    shutdown: &AtomicBool,
) -> Option<Restore> {
    let rpc = &attempts.rpc;
    // The state shown while waiting: STANDBY before the first run, else how the last run ended.
    let shown = state.status();
    let mut checked: Checked = Err(String::new());
    let mut checked_at: Option<Instant> = None;
    let mut last_message = String::new();
    // The snapshot the workers were asked to prefetch, and which workers.
    let mut prefetched: Option<(String, Vec<usize>)> = None;
    loop {
        if shutdown.load(Ordering::SeqCst) {
            return None;
        }
        // A check that failed is tried again (storage may have been unreachable); one
        // that passed holds until the activation, which checks again as every restore does.
        if checked.is_err() && checked_at.is_none_or(|t| t.elapsed() >= RECHECK) {
            checked = check_once(graph, state, opts, check, fingerprint, shown);
            checked_at = Some(Instant::now());
        }
        rpc.expire();
        let (slots, workers) = rpc.slots();
        let standby = readiness(&checked, slots, workers, needed);
        if standby.message != last_message {
            tracing::info!("job `{}` standby: {}", state.job_id, standby.message);
            last_message = standby.message.clone();
        }
        let ready = standby.ready;
        state.set_standby(Some(standby));
        if ready
            && let Ok((Some(location), _)) = &checked
            && prefetched.as_ref().is_none_or(|(l, w)| {
                let mut alive: Vec<usize> = rpc.alive_indexes().into_iter().collect();
                alive.sort_unstable();
                l != location || *w != alive
            })
        {
            let asked = attempts.prefetch(graph, location);
            crate::say!("job `{}` standby: workers {asked:?} prefetch the state of {location}", state.job_id);
            prefetched = Some((location.clone(), asked));
        }
        if ready && let Some(request) = state.take_activation() {
            let restore = request.restore;
            state.set_activation(Activation {
                restore: restore.clone(),
                id: request.id,
                restored_from: None,
                restore_bytes: 0,
                requested_at: rfc3339(SystemTime::now()),
                running_at: None,
            });
            return Some(restore.as_deref().map_or(Restore::None, Restore::parse));
        }
        // Registrations and losses matter only through `slots`.
        let _ = rpc.events.recv_timeout(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_is_ready_once_its_snapshot_checks_and_its_workers_have_the_slots() {
        let ok: Checked = Ok((Some("s3://b/j/chk-3".into()), 100));
        let waiting = readiness(&ok, 1, 1, 2);
        assert!(!waiting.ready);
        assert_eq!(waiting.message, "waiting for workers: 1 of 2 slots (1 workers registered)");
        let ready = readiness(&ok, 2, 2, 2);
        assert!(ready.ready, "{}", ready.message);
        assert_eq!((ready.preloaded.as_deref(), ready.preloaded_bytes), (Some("s3://b/j/chk-3"), 100));
        assert!(readiness(&Ok((None, 0)), 2, 1, 2).message.contains("starts empty"));
        let bad: Checked = Err("cannot restore from s3://b/j/chk-3: state of operator `w` has no match".into());
        let refused = readiness(&bad, 4, 2, 2);
        assert!(!refused.ready, "an incompatible snapshot is never activated, whatever the workers");
        assert!(refused.message.starts_with("cannot be activated: cannot restore from s3://b/j/chk-3"));
    }
}
