//! The coordinator's side of one attempt on its workers, as a state machine.
//!
//! A [`RemoteAttempt`] starts with the placement of the attempt's subtasks.
//! Its inputs are the workers' messages ([`RemoteAttempt::on_worker`]), lost
//! workers ([`RemoteAttempt::on_lost`]), frames that could not be delivered,
//! the end that the checkpoint coordinator decides ([`RemoteAttempt::on_ending`])
//! and the clock ([`RemoteAttempt::on_tick`]). It answers with [`Action`]s:
//! frames to send, and what to hand the checkpoint coordinator. It records
//! what the job's state shows (running, failed, the relayed metrics) in the
//! [`JobState`]. The driver (`remote.rs`) owns the RPC endpoint and the
//! checkpoint coordinator; the decisions are here, testable without either.
//!
//! Invariants:
//! - Only messages of this attempt count: a worker's late report of an
//!   earlier attempt is dropped, so it can neither complete a checkpoint nor
//!   end this attempt.
//! - The attempt is over when every worker's subtasks have exited, or count
//!   as stopped: a worker that failed to set up its part (its subtasks never
//!   started), a worker lost while its subtasks ran (which fails the job's
//!   attempt), or a worker gone after the cancel was sent.
//! - The job is running when every worker has deployed its part and the
//!   attempt is not being stopped.
//! - Once the attempt is being stopped (a failure, a cancel, or the job's
//!   end), each worker is told to cancel once, and after 30 s the attempt
//!   goes on without the subtasks that have not stopped. Until then the
//!   checkpoint coordinator is ticked; after, it is not, so that no new
//!   checkpoint starts.
//! - A failure to set up is an attempt's setup error unless the job ended
//!   anyway (a checkpoint coordinator's ending wins).
//! - Metric samples carry a subtask's totals; each is added to the job's
//!   counters as the growth since that subtask's previous sample, so a
//!   sample relayed twice counts once.
//! - A worker speaks only for the subtasks the placement gave it: an `Ack`,
//!   `Finished`, `Committed`, `Exited` or metric sample about another
//!   worker's subtask (or one that does not exist) is dropped and logged, so
//!   no registered client can complete a checkpoint, commit or end an
//!   attempt on another's behalf.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::checkpoint::coordinator::Ending;
use crate::checkpoint::{CoordMsg, SubtaskSnapshot};
use crate::cluster::{DeploySpec, MetricSample, ToCoordinator, ToWorker};
use crate::runtime::{JobState, JobStatus};

/// How long canceled subtasks have to stop before the attempt goes on without them.
const CANCEL_GRACE: Duration = Duration::from_secs(30);

/// What the driver does, in order.
#[derive(Debug)]
pub(super) enum Action {
    /// Send a frame to a worker; if it is gone, report that with
    /// [`RemoteAttempt::on_undelivered`].
    Send(usize, ToWorker),
    /// Hand a subtask's report to the checkpoint coordinator; if it ends the
    /// job, report that with [`RemoteAttempt::on_ending`].
    Checkpoint(CoordMsg),
    /// Let the checkpoint coordinator trigger checkpoints and savepoints and
    /// time them out.
    TickCheckpoints,
}

/// The coordinator's bookkeeping of one attempt.
pub(super) struct RemoteAttempt {
    attempt: u64,
    job: Arc<JobState>,
    /// The attempt's workers, by index: their names for messages.
    names: BTreeMap<usize, String>,
    /// The worker of each subtask (vertex, subtask), from the placement.
    owners: BTreeMap<(usize, usize), usize>,
    /// Subtasks not yet stopped, per worker of the attempt.
    remaining: BTreeMap<usize, usize>,
    /// Workers whose part is running.
    deployed: HashSet<usize>,
    /// The last metric sample of each subtask (vertex, subtask).
    last_samples: BTreeMap<(usize, usize), MetricSample>,
    /// How the checkpoint coordinator ended the job, if it did.
    ending: Option<Ending>,
    /// The first worker's failure to set up its part.
    setup_failure: Option<String>,
    cancel_sent: Option<Instant>,
    /// Given up on: the RPC server stopped, or subtasks ignored the cancel.
    abandoned: bool,
}

impl RemoteAttempt {
    /// `placement`: for each vertex, the worker of each subtask; `names`: of
    /// every worker the attempt places subtasks on.
    pub(super) fn new(
        attempt: u64,
        placement: &[Vec<usize>],
        names: BTreeMap<usize, String>,
        job: Arc<JobState>,
    ) -> RemoteAttempt {
        let mut remaining: BTreeMap<usize, usize> = BTreeMap::new();
        for w in placement.iter().flatten() {
            *remaining.entry(*w).or_default() += 1;
        }
        let owners = placement
            .iter()
            .enumerate()
            .flat_map(|(v, workers)| workers.iter().enumerate().map(move |(s, w)| ((v, s), *w)))
            .collect();
        RemoteAttempt {
            attempt,
            job,
            names,
            owners,
            remaining,
            deployed: HashSet::new(),
            last_samples: BTreeMap::new(),
            ending: None,
            setup_failure: None,
            cancel_sent: None,
            abandoned: false,
        }
    }

    /// The workers that run subtasks of this attempt.
    pub(super) fn workers(&self) -> Vec<usize> {
        self.remaining.keys().copied().collect()
    }

    /// Each worker's part of the attempt: `spec`, addressed to it.
    pub(super) fn deploy(&self, spec: &DeploySpec) -> Vec<Action> {
        let total: usize = self.remaining.values().sum();
        let layout: Vec<String> = self.remaining.iter().map(|(w, n)| format!("{} ({n})", self.name(*w))).collect();
        crate::say!("job `{}` attempt {}: {total} subtasks on {}", self.job.job_id, self.attempt, layout.join(", "));
        self.remaining
            .keys()
            .map(|w| Action::Send(*w, ToWorker::Deploy(Box::new(DeploySpec { you: *w, ..spec.clone() }))))
            .collect()
    }

    /// A frame to worker `w` could not be delivered: it is gone.
    pub(super) fn on_undelivered(&mut self, w: usize, msg: &ToWorker) {
        // A lost worker's other frames do not matter: its loss fails the attempt.
        if matches!(msg, ToWorker::Deploy(_)) {
            self.job.fail(format!("worker {} was lost during deployment", self.name(w)));
        }
    }

    /// Whether worker `w` runs subtask `subtask` of `vertex` in this attempt; logs a
    /// message about another's subtask, which is then dropped.
    fn owns(&self, w: usize, vertex: usize, subtask: usize, what: &str) -> bool {
        let owner = self.owners.get(&(vertex, subtask)).copied();
        if owner != Some(w) {
            tracing::warn!(
                "job `{}` attempt {}: worker {} sent {what} for subtask {vertex}/{subtask}, which {}; dropped",
                self.job.job_id,
                self.attempt,
                self.name(w),
                owner.map_or_else(|| "does not exist".to_string(), |o| format!("runs on worker {}", self.name(o)))
            );
        }
        owner == Some(w)
    }

    pub(super) fn on_worker(&mut self, w: usize, msg: ToCoordinator) -> Vec<Action> {
        let attempt = self.attempt;
        let report = match msg {
            ToCoordinator::Deployed { attempt: a, restore_read_bytes } if a == attempt => {
                self.deployed.insert(w);
                // What the workers read counts for the activation's first run only.
                self.job.update_activation(|x| {
                    if x.running_at.is_none() {
                        x.restore_bytes += restore_read_bytes;
                    }
                });
                if self.deployed.len() == self.remaining.len() && !self.job.cancel.load(Ordering::SeqCst) {
                    self.job.set_status(JobStatus::Running);
                }
                None
            }
            ToCoordinator::Failed { attempt: a, message } if a == attempt => {
                let why = format!("worker {}: {message}", self.name(w));
                if !self.deployed.contains(&w) {
                    // Its subtasks never started.
                    self.remaining.insert(w, 0);
                    self.setup_failure.get_or_insert(why.clone());
                }
                self.job.fail(why);
                None
            }
            ToCoordinator::Ack { attempt: a, id, vertex, subtask, result, alignment_ms, pause_us } if a == attempt => {
                self.owns(w, vertex, subtask, "an Ack").then_some(CoordMsg::Ack {
                    id,
                    vertex,
                    subtask,
                    result,
                    alignment_ms,
                    pause_us,
                })
            }
            ToCoordinator::Finished { attempt: a, vertex, subtask, sections, last_checkpoint } if a == attempt => {
                self.owns(w, vertex, subtask, "Finished").then_some(CoordMsg::Finished {
                    vertex,
                    subtask,
                    snapshot: SubtaskSnapshot { sections },
                    last_checkpoint,
                })
            }
            ToCoordinator::Committed { attempt: a, id, vertex, subtask } if a == attempt => {
                self.owns(w, vertex, subtask, "Committed").then_some(CoordMsg::Committed { id, vertex, subtask })
            }
            ToCoordinator::Exited { attempt: a, vertex, subtask } if a == attempt => {
                if self.owns(w, vertex, subtask, "Exited")
                    && let Some(n) = self.remaining.get_mut(&w)
                {
                    *n = n.saturating_sub(1);
                }
                None
            }
            ToCoordinator::Metrics { attempt: a, samples } if a == attempt => {
                let own: Vec<MetricSample> =
                    samples.into_iter().filter(|s| self.owns(w, s.vertex, s.subtask, "a metric sample")).collect();
                self.relay(own);
                None
            }
            _ => None, // a message of an earlier attempt
        };
        report.map(Action::Checkpoint).into_iter().collect()
    }

    /// The checkpoint coordinator ended the job: stop every subtask.
    pub(super) fn on_ending(&mut self, ending: Ending) {
        self.ending = Some(ending);
        self.job.cancel.store(true, Ordering::SeqCst);
    }

    /// Worker `w`'s connection closed, or it missed its heartbeats. `name`:
    /// the worker's, which need not be one of this attempt's.
    pub(super) fn on_lost(&mut self, w: usize, name: &str, why: &str) {
        if self.remaining.get_mut(&w).map(std::mem::take).unwrap_or(0) > 0 {
            self.job.fail(format!("worker {name} was lost: {why}"));
        } else {
            crate::say!("worker {name} left: {why}");
        }
    }

    /// The RPC server stopped: no worker can be reached any more.
    pub(super) fn on_rpc_stopped(&mut self) {
        self.job.fail("the RPC server stopped".into());
        self.abandoned = true;
    }

    /// Cancels a stopping attempt, or lets the checkpoint coordinator work.
    /// `alive`: the workers still connected.
    pub(super) fn on_tick(&mut self, now: Instant, alive: &HashSet<usize>) -> Vec<Action> {
        if !self.job.cancel.load(Ordering::SeqCst) {
            return vec![Action::TickCheckpoints];
        }
        let mut actions = Vec::new();
        match self.cancel_sent {
            None => {
                let attempt = self.attempt;
                actions.extend(self.remaining.keys().map(|w| Action::Send(*w, ToWorker::Cancel { attempt })));
                self.cancel_sent = Some(now);
            }
            Some(t) if now.saturating_duration_since(t) > CANCEL_GRACE => {
                crate::say!(
                    "job `{}`: {} subtasks did not stop within 30 s of being canceled; going on without them",
                    self.job.job_id,
                    self.remaining.values().sum::<usize>()
                );
                self.abandoned = true;
                return actions;
            }
            Some(_) => {}
        }
        // Workers that died after the cancel still count as stopped.
        for (w, n) in self.remaining.iter_mut() {
            if !alive.contains(w) {
                *n = 0;
            }
        }
        actions
    }

    /// Whether the attempt is over: every subtask stopped, or it was given up on.
    pub(super) fn is_over(&self) -> bool {
        self.abandoned || self.remaining.values().all(|n| *n == 0)
    }

    /// How the attempt ended: the checkpoint coordinator's ending, if any, or
    /// the first setup failure.
    pub(super) fn finish(self) -> Result<Option<Ending>, String> {
        match self.setup_failure {
            Some(why) if self.ending.is_none() => Err(why),
            _ => Ok(self.ending),
        }
    }

    fn relay(&mut self, samples: Vec<MetricSample>) {
        for s in samples {
            if let Some(m) = self.job.subtasks.iter().find(|m| m.vertex == s.vertex && m.subtask == s.subtask) {
                s.apply(m, self.last_samples.get(&(s.vertex, s.subtask)));
            }
            self.last_samples.insert((s.vertex, s.subtask), s);
        }
    }

    fn name(&self, w: usize) -> String {
        self.names.get(&w).cloned().unwrap_or_else(|| format!("#{w}"))
    }
}

#[cfg(test)]
mod tests;
