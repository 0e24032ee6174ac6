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
//! 5. Its workers prefetch the state they would restore. Before its first run it
//!    reports ready only once they all have (or after [`PREFETCH_WAIT`]), so the
//!    operator stops the other color only when this one is warm; an activation
//!    never waits for a prefetch. After a run its workers prefetch only after
//!    [`PREFETCH_AFTER_RUN`], so that they do not compete with the color being
//!    activated.
//!
//! The decisions are [`lineage::is_active`] and [`readiness`]; this module is
//! the loop around them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::rpc::WorkerEvent;
use super::{JobSource, RemoteAttempts, Rpc};
use crate::checkpoint::lineage;
use crate::cluster::ToCoordinator;
use crate::error::EngineError;
use crate::job::{Activation, Standby, rfc3339};
use crate::plan::JobGraph;
use crate::runtime::{Claimed, JobState, JobStatus, Restore, RunOptions, execute_with, start};

/// What the standby found when it checked where it would start.
type Checked = Result<(Option<String>, u64), String>;

/// Where a standby's prefetch stands, as far as its readiness waits for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Warm {
    /// Not waited for: after a run (the standby is the color a cutover left,
    /// kept for a rollback), or with nothing to prefetch.
    NotAwaited,
    /// `done` of `of` workers have reported their prefetch.
    Pending { done: usize, of: usize },
    /// Every worker asked has reported, or [`PREFETCH_WAIT`] has passed.
    Done,
}

/// How long a standby that has not run yet waits for its workers' prefetch
/// before it reports ready without it.
pub const PREFETCH_WAIT: Duration = Duration::from_secs(60);
/// How long a standby waits after a run before its workers prefetch: the other
/// color is being activated then, on the same machines and storage.
pub const PREFETCH_AFTER_RUN: Duration = Duration::from_secs(10);

/// Whether a standby can be activated ([`activatable`]) and whether it is
/// ready, with what it tells the caller. Before its first run a standby reports
/// ready only once its workers hold the state they would restore ([`Warm`]), so
/// that the other color is stopped only when this one is warm: the prefetch
/// then never competes with the handoff savepoint or the activation.
pub fn readiness(checked: &Checked, slots: usize, workers: usize, needed: usize, warm: Warm) -> Standby {
    let (preloaded, preloaded_bytes) = match checked {
        Ok((location, bytes)) => (location.clone(), *bytes),
        Err(_) => (None, 0),
    };
    let (ready, message) = match (checked, warm) {
        (Err(e), _) => (false, format!("cannot be activated: {e}")),
        (Ok(_), _) if slots < needed => {
            (false, format!("waiting for workers: {slots} of {needed} slots ({workers} workers registered)"))
        }
        (Ok((Some(l), _)), Warm::Pending { done, of }) => {
            (false, format!("prefetching the state of {l}: {done} of {of} workers done"))
        }
        (Ok((Some(l), _)), _) => (true, format!("ready: {workers} workers, {slots} slots; checked {l}")),
        (Ok((None, _)), _) => (true, format!("ready: {workers} workers, {slots} slots; no snapshot, it starts empty")),
    };
    Standby { ready, preloaded, preloaded_bytes, message }
}

/// Whether an activation can go ahead: the snapshot checks and the workers have
/// the slots. A prefetch still under way does not hold it back (the restore then
/// reads from storage what the cache lacks).
fn activatable(checked: &Checked, slots: usize, needed: usize) -> bool {
    checked.is_ok() && slots >= needed
}

/// A prefetch the workers were asked for.
struct Prefetching {
    location: String,
    asked: Vec<usize>,
    done: BTreeSet<usize>,
    read_bytes: u64,
    since: Instant,
}

impl Prefetching {
    fn warm(&self) -> Warm {
        if self.done.len() >= self.asked.len() || self.since.elapsed() >= PREFETCH_WAIT {
            Warm::Done
        } else {
            Warm::Pending { done: self.done.len(), of: self.asked.len() }
        }
    }
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
    // Whether this process has run the job: after a run, it is the color a
    // cutover left (or a job that ended), and it need not be warm to be ready.
    let mut ran = false;
    state.set_status(JobStatus::Standby);
    loop {
        let restore = if resume {
            crate::say!("job `{}`: this deployment was active; it resumes without waiting", state.job_id);
            opts.restore.clone()
        } else {
            match wait(graph, &state, &opts, &attempts, &check, &fingerprint, needed, ran, &shutdown) {
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
        ran = true;
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
            state.set_standby(Some(readiness(&checked, 0, 0, 0, Warm::NotAwaited)));
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
    ran: bool,
    shutdown: &AtomicBool,
) -> Option<Restore> {
    let rpc = &attempts.rpc;
    // The state shown while waiting: STANDBY before the first run, else how the last run ended.
    let shown = state.status();
    let mut checked: Checked = Err(String::new());
    let mut checked_at: Option<Instant> = None;
    let mut last_message = String::new();
    let entered = Instant::now();
    // The snapshot the workers were asked to prefetch, and which have done it.
    let mut prefetching: Option<Prefetching> = None;
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
        let ready = activatable(&checked, slots, needed);
        if ready
            && (!ran || entered.elapsed() >= PREFETCH_AFTER_RUN)
            && let Ok((Some(location), _)) = &checked
            && prefetching.as_ref().is_none_or(|p| {
                let mut alive: Vec<usize> = rpc.alive_indexes().into_iter().collect();
                alive.sort_unstable();
                p.location != *location || p.asked != alive
            })
        {
            let asked = attempts.prefetch(graph, location);
            crate::say!("job `{}` standby: workers {asked:?} prefetch the state of {location}", state.job_id);
            prefetching = Some(Prefetching {
                location: location.clone(),
                asked,
                done: BTreeSet::new(),
                read_bytes: 0,
                since: Instant::now(),
            });
        }
        let warm = match &prefetching {
            Some(p) if !ran => p.warm(),
            _ => Warm::NotAwaited,
        };
        let standby = readiness(&checked, slots, workers, needed, warm);
        if standby.message != last_message {
            tracing::info!("job `{}` standby: {}", state.job_id, standby.message);
            last_message = standby.message.clone();
        }
        state.set_standby(Some(standby));
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
        if let Ok(WorkerEvent::Message(w, ToCoordinator::Prefetched { location, read_bytes, error })) =
            rpc.events.recv_timeout(Duration::from_millis(50))
            && let Some(p) = prefetching.as_mut()
            && p.location == location
            && p.asked.contains(&w)
            && p.done.insert(w)
        {
            p.read_bytes += read_bytes;
            if let Some(e) = error {
                crate::say!("job `{}` standby: worker {w} could not prefetch {location}: {e}", state.job_id);
            }
            if p.done.len() == p.asked.len() {
                crate::say!(
                    "job `{}` standby: workers prefetched {} bytes of {location} in {} ms",
                    state.job_id,
                    p.read_bytes,
                    p.since.elapsed().as_millis()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_is_ready_once_its_snapshot_checks_and_its_workers_have_the_slots() {
        let ok: Checked = Ok((Some("s3://b/j/chk-3".into()), 100));
        let waiting = readiness(&ok, 1, 1, 2, Warm::NotAwaited);
        assert!(!waiting.ready);
        assert_eq!(waiting.message, "waiting for workers: 1 of 2 slots (1 workers registered)");
        let ready = readiness(&ok, 2, 2, 2, Warm::Done);
        assert!(ready.ready, "{}", ready.message);
        assert_eq!((ready.preloaded.as_deref(), ready.preloaded_bytes), (Some("s3://b/j/chk-3"), 100));
        assert!(readiness(&ok, 2, 2, 2, Warm::NotAwaited).ready, "after a run the prefetch is not waited for");
        assert!(readiness(&Ok((None, 0)), 2, 1, 2, Warm::NotAwaited).message.contains("starts empty"));
        let bad: Checked = Err("cannot restore from s3://b/j/chk-3: state of operator `w` has no match".into());
        let refused = readiness(&bad, 4, 2, 2, Warm::Done);
        assert!(!refused.ready, "an incompatible snapshot is never activated, whatever the workers");
        assert!(refused.message.starts_with("cannot be activated: cannot restore from s3://b/j/chk-3"));
        assert!(!activatable(&bad, 4, 2));
    }

    #[test]
    fn before_its_first_run_a_standby_is_ready_once_its_workers_have_prefetched() {
        let ok: Checked = Ok((Some("s3://b/j/chk-3".into()), 100));
        let warming = readiness(&ok, 2, 2, 2, Warm::Pending { done: 1, of: 2 });
        assert!(!warming.ready, "the other color is not stopped while this one warms up");
        assert_eq!(warming.message, "prefetching the state of s3://b/j/chk-3: 1 of 2 workers done");
        assert!(activatable(&ok, 2, 2), "an activation does not wait for the prefetch");
        let mut p = Prefetching {
            location: "s3://b/j/chk-3".into(),
            asked: vec![0, 1],
            done: BTreeSet::from([1]),
            read_bytes: 0,
            since: Instant::now(),
        };
        assert_eq!(p.warm(), Warm::Pending { done: 1, of: 2 });
        p.done.insert(0);
        assert_eq!(p.warm(), Warm::Done);
        let (Some(since), Some(early)) =
            (Instant::now().checked_sub(PREFETCH_WAIT), Instant::now().checked_sub(PREFETCH_WAIT / 2))
        else {
            return; // a clock too young to go back this far
        };
        let late = Prefetching { done: BTreeSet::new(), since, ..p };
        assert_eq!(late.warm(), Warm::Done, "a worker that never answers holds it back for PREFETCH_WAIT at most");
        let early = Prefetching { since: early, ..late };
        assert_eq!(early.warm(), Warm::Pending { done: 0, of: 2 });
        let none = Prefetching { asked: vec![], ..early };
        assert_eq!(none.warm(), Warm::Done, "no worker holds state");
    }
}
