//! A worker's side of the protocol with its coordinator, as a state machine.
//!
//! A [`Session`] lasts as long as one coordinator connection. Its inputs are
//! the coordinator's messages ([`Session::on_coordinator`]), the reports of
//! this worker's subtasks ([`Session::on_task`]), the outcome of what it asked
//! for ([`Session::on_deployed`], [`Session::on_trigger_failed`]), and the
//! clock ([`Session::on_tick`]). It answers with [`Step`]s: frames to send,
//! and what to do with the subtasks. The driver (`driver.rs`) owns the
//! connection, the threads and the subtasks, and reads them for the session
//! through [`Observe`]; the decisions are here, testable without either.
//!
//! Invariants:
//! - Only the attempt that runs here is acted on: a trigger, commit, resume or
//!   cancel of another attempt is dropped, and so is a late report of an
//!   earlier attempt's subtask.
//! - A failure of the attempt is reported once, before the exit of the first
//!   subtask that ends after it; each exit carries that subtask's last
//!   counters first, so none of its work is missing from the job's metrics.
//! - The attempt is released when its last subtask has exited.
//! - The session ends, and its subtasks stop without committing anything,
//!   when the coordinator says exit, when the process shuts down, when the
//!   connection is lost, or when nothing has been heard from the coordinator
//!   for `heartbeat.timeout`. Only the first two are for good; otherwise the
//!   worker registers again.

use std::time::{Duration, Instant};

use crate::checkpoint::CoordMsg;
use crate::cluster::{BarrierWire, DeploySpec, MetricSample, ToCoordinator, ToWorker};

/// How often the counters of running subtasks go to the coordinator.
const METRICS_INTERVAL: Duration = Duration::from_millis(500);

/// What the session reads from the subtasks of the running attempt.
pub(super) trait Observe {
    /// The attempt's first failure, if a subtask failed.
    fn failure(&self) -> Option<String>;
    /// Whether the attempt is stopping: it was canceled, or a subtask failed.
    fn stopping(&self) -> bool;
    /// The counters of every subtask on this worker, or of one of them.
    fn samples(&self, only: Option<(usize, usize)>) -> Vec<MetricSample>;
}

/// What the driver does, in order.
#[derive(Debug)]
pub(super) enum Step {
    /// Send a frame to the coordinator.
    Send(ToCoordinator),
    /// Stop the running attempt's subtasks without committing, and join them.
    StopAttempt,
    /// Build and start this worker's part of an attempt, then report with
    /// [`Session::on_deployed`].
    Deploy(Box<DeploySpec>),
    /// Read the state files a deployment of this spec would restore into the
    /// process's cache, in the background (a standby's prefetch).
    Prefetch(Box<DeploySpec>),
    /// Open the barrier's snapshot directory and pass the barrier to the
    /// running attempt's sources; report a failure with [`Session::on_trigger_failed`].
    Trigger { attempt: u64, barrier: BarrierWire },
    /// Tell the running attempt's sinks to commit up to a checkpoint.
    Commit(u64),
    /// Tell the running attempt's stopped sources to go on.
    Resume,
    /// Cancel the running attempt's subtasks; they report their exits.
    Cancel,
    /// Close the running attempt's data connections: producers waiting for
    /// credits from other workers must not hang once the attempt is stopping.
    CloseExchange,
    /// Every subtask of the attempt has exited: let queued data to other
    /// workers drain, then join the threads.
    Release,
    /// The session is over: stop the running attempt, if any, and close the
    /// connection. `exit`: the worker stops; otherwise it registers again.
    End { exit: bool },
}

/// The attempt that runs here.
#[derive(Debug)]
struct Attempt {
    attempt: u64,
    /// Subtasks that have not exited yet.
    remaining: usize,
    failure_reported: bool,
}

/// The protocol state of one coordinator connection.
pub(super) struct Session {
    /// The coordinator's address, for logs.
    coordinator: String,
    heartbeat_timeout: Duration,
    last_heard: Instant,
    last_metrics: Instant,
    running: Option<Attempt>,
}

impl Session {
    pub(super) fn new(coordinator: &str, heartbeat_timeout: Duration, now: Instant) -> Session {
        Session {
            coordinator: coordinator.to_string(),
            heartbeat_timeout,
            last_heard: now,
            last_metrics: now,
            running: None,
        }
    }

    pub(super) fn on_coordinator(&mut self, msg: ToWorker, now: Instant) -> Vec<Step> {
        self.last_heard = now;
        match msg {
            ToWorker::Prefetch(spec) => vec![Step::Prefetch(spec)],
            ToWorker::Deploy(spec) => {
                let mut steps = Vec::new();
                if self.running.take().is_some() {
                    steps.push(Step::StopAttempt);
                }
                steps.push(Step::Deploy(spec));
                steps
            }
            ToWorker::Trigger { attempt, barrier } => self.if_running(attempt, Step::Trigger { attempt, barrier }),
            ToWorker::Commit { attempt, id } => self.if_running(attempt, Step::Commit(id)),
            ToWorker::Resume { attempt } => self.if_running(attempt, Step::Resume),
            ToWorker::Cancel { attempt } => self.if_running(attempt, Step::Cancel),
            ToWorker::Exit { reason } => {
                crate::say!("worker exiting: {reason}");
                self.end(true)
            }
            ToWorker::Heartbeat | ToWorker::Registered { .. } | ToWorker::Refused { .. } => Vec::new(),
        }
    }

    /// The outcome of [`Step::Deploy`]: how many subtasks started and the
    /// bytes of state read for them, or why none did.
    pub(super) fn on_deployed(&mut self, spec: &DeploySpec, started: Result<(usize, u64), String>) -> Vec<Step> {
        let attempt = spec.attempt;
        match started {
            Ok((subtasks, restore_read_bytes)) => {
                crate::say!("worker running {subtasks} subtasks of job `{}` (attempt {attempt})", spec.job_id);
                self.running = Some(Attempt { attempt, remaining: subtasks, failure_reported: false });
                vec![Step::Send(ToCoordinator::Deployed { attempt, restore_read_bytes })]
            }
            Err(message) => {
                crate::say!("worker cannot deploy attempt {attempt}: {message}");
                vec![Step::Send(ToCoordinator::Failed { attempt, message })]
            }
        }
    }

    /// The barrier of [`Step::Trigger`] could not be opened.
    pub(super) fn on_trigger_failed(&mut self, attempt: u64, why: String) -> Vec<Step> {
        vec![Step::Send(ToCoordinator::Failed { attempt, message: format!("checkpoint storage: {why}") })]
    }

    /// The connection to the coordinator closed or broke.
    pub(super) fn on_coordinator_lost(&mut self, why: &str) -> Vec<Step> {
        crate::say!("worker lost coordinator {} ({why}); canceling its subtasks", self.coordinator);
        self.end(false)
    }

    /// The process is shutting down (SIGTERM).
    pub(super) fn on_shutdown(&mut self) -> Vec<Step> {
        crate::say!("worker stopping: its subtasks are canceled, nothing more is committed");
        self.end(true)
    }

    /// A message of a subtask of `attempt`, for the coordinator.
    pub(super) fn on_task(&mut self, attempt: u64, msg: CoordMsg, subtasks: Option<&dyn Observe>) -> Vec<Step> {
        let Some(r) = self.running.as_mut().filter(|r| r.attempt == attempt) else {
            return Vec::new(); // a subtask of an attempt that was stopped
        };
        let mut steps = Vec::new();
        let frame = match msg {
            CoordMsg::Ack { id, vertex, subtask, result, alignment_ms, pause_us } => {
                ToCoordinator::Ack { attempt, id, vertex, subtask, result, alignment_ms, pause_us }
            }
            CoordMsg::Finished { vertex, subtask, snapshot, last_checkpoint } => {
                ToCoordinator::Finished { attempt, vertex, subtask, sections: snapshot.sections, last_checkpoint }
            }
            CoordMsg::Committed { id, vertex, subtask } => ToCoordinator::Committed { attempt, id, vertex, subtask },
            CoordMsg::Exited { vertex, subtask } => {
                if let Some(message) = subtasks.and_then(|s| s.failure())
                    && !r.failure_reported
                {
                    r.failure_reported = true;
                    steps.push(Step::Send(ToCoordinator::Failed { attempt, message }));
                }
                let samples = subtasks.map(|s| s.samples(Some((vertex, subtask)))).unwrap_or_default();
                steps.push(Step::Send(ToCoordinator::Metrics { attempt, samples }));
                r.remaining = r.remaining.saturating_sub(1);
                ToCoordinator::Exited { attempt, vertex, subtask }
            }
        };
        steps.push(Step::Send(frame));
        if r.remaining == 0 {
            self.running = None;
            steps.push(Step::Release);
        }
        steps
    }

    /// Checks the attempt, the coordinator's heartbeats and the metrics' schedule.
    pub(super) fn on_tick(&mut self, now: Instant, subtasks: Option<&dyn Observe>) -> Vec<Step> {
        let mut steps = Vec::new();
        // A failed subtask stops the others; waiting producers must not hang
        // on credits from other workers.
        if self.running.is_some() && subtasks.is_some_and(|s| s.stopping()) {
            steps.push(Step::CloseExchange);
        }
        if now.saturating_duration_since(self.last_heard) > self.heartbeat_timeout {
            crate::say!(
                "worker heard nothing from coordinator {} for {} ms (heartbeat.timeout); canceling its subtasks",
                self.coordinator,
                self.heartbeat_timeout.as_millis()
            );
            steps.extend(self.end(false));
            return steps;
        }
        if let Some(r) = &self.running
            && now.saturating_duration_since(self.last_metrics) >= METRICS_INTERVAL
        {
            self.last_metrics = now;
            let samples = subtasks.map(|s| s.samples(None)).unwrap_or_default();
            steps.push(Step::Send(ToCoordinator::Metrics { attempt: r.attempt, samples }));
        }
        steps
    }

    fn if_running(&self, attempt: u64, step: Step) -> Vec<Step> {
        if self.running.as_ref().is_some_and(|r| r.attempt == attempt) { vec![step] } else { Vec::new() }
    }

    fn end(&mut self, exit: bool) -> Vec<Step> {
        self.running = None;
        vec![Step::End { exit }]
    }
}

#[cfg(test)]
mod tests;
