//! Blue-green cutovers, step by step; `status.cutover` is the write-ahead record.
//!
//! The job runs on one color (`status.activeColor`, blue when absent). A change
//! rolls out to the other color: its pods start beside the running ones, its
//! coordinator waits in standby (see the engine's `cluster/coordinator/standby.rs`),
//! and only then is the running color stopped with a savepoint and the new one
//! activated from it.
//!
//! Invariants:
//! 1. At most one color commits at a time. A standby commits nothing and claims
//!    nothing. The new color is activated only once the old color's stop savepoint
//!    has completed: the old color committed everything up to it, and nothing
//!    after. The activation claims a generation of the job, which fences off the
//!    old color. A rollback is the same the other way.
//! 2. The running color is not touched before the new one reports itself ready in
//!    standby: its SQL compiled, its workers registered, the running job's newest
//!    snapshot read and found compatible. A new color that cannot get there (an
//!    invalid spec, an image that does not start, an incompatible state) is
//!    removed and the cutover ends `aborted`, with the old color still running.
//! 3. Every step is recorded before it is taken, and trigger ids come from the
//!    record, never from a clock. An operator restarted at any step repeats only
//!    idempotent calls: server-side apply, the engine's savepoint trigger (per
//!    trigger id), activation (per restore point).
//! 4. Every exit (succeeded, rolled back, aborted) clears the record in the same
//!    status write that records the outcome in `lastCutover`, so nothing is left
//!    behind to block a later change.
//!
//! A new color that fails its verification (it restarts more than `maxRestarts`
//! times, fails, or completes no checkpoint within `verificationWindow`) is
//! stopped with a savepoint if it is still running, and the old color, idle on
//! its handoff savepoint since the cutover, is activated from that savepoint, or
//! from `latest` (the new color's newest checkpoint) if there is none. The
//! generation is then not rolled out again until the spec changes.

use super::*;
use sluice_api::rest::SnapshotKind;

/// A new color that is not ready in standby within this long (or `readinessTimeout`,
/// if longer) is given up.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(300);
/// While the job is paused (the old color stopping, the new one starting), the
/// operator looks this often: it decides nothing slower than the engines act.
const HANDOFF_POLL: Duration = Duration::from_millis(100);

impl Planner<'_> {
    /// Why the running deployment cannot hand over by a cutover, if it cannot: it must be
    /// RUNNING (a stop with savepoint needs it) and its coordinator a standby one.
    pub(super) fn cannot_cut_over(&self) -> Option<String> {
        if !self.i.children.standby {
            return Some(
                "the running deployment was not started for blue-green (its coordinator has no --standby)".into(),
            );
        }
        if !self.engine_running() {
            return Some(format!("a blue-green cutover needs the running job, which is {}", self.engine_state()));
        }
        None
    }

    /// Starts a cutover: the record is written before the new color's children are applied.
    pub(super) fn begin_cutover(&mut self, target: &DeployedSpec) {
        let from = self.st.active_color.unwrap_or_default();
        if self.st.pending_savepoint.take().is_some() {
            self.event(
                false,
                "SavepointSuperseded",
                "a pending savepoint is dropped: the cutover takes its own".into(),
            );
        }
        self.st.upgrade_retry_after = None;
        self.st.cutover = Some(CutoverRecord {
            target_generation: self.i.generation,
            target_spec: target.clone(),
            from,
            deployment: self.st.deployment + 1,
            step: CutoverStep::Preparing,
            trigger_id: None,
            handoff: None,
            activated: None,
            rollback_trigger_id: None,
            rollback_from: None,
            started: self.now(),
            step_started: Some(self.now()),
            note: None,
            pause: None,
            savepoint_bytes: None,
            restore_bytes: None,
        });
        self.set_phase(Phase::Upgrading);
        self.event(
            false,
            "CutoverStarted",
            format!(
                "blue-green cutover from {from} to {} started: deployment {} at parallelism {} prepares in standby",
                from.other(),
                self.st.deployment + 1,
                target.parallelism
            ),
        );
        self.cutover();
    }

    pub(super) fn cutover(&mut self) {
        let Some(rec) = self.st.cutover.clone() else { return };
        match rec.step {
            CutoverStep::Preparing => self.preparing(rec),
            CutoverStep::Stopping => self.stopping_old(rec),
            CutoverStep::Activating => self.activating(rec),
            CutoverStep::Verifying => self.verifying(rec),
            CutoverStep::RollingBack => self.rolling_back(rec),
            CutoverStep::Restoring => self.restoring(rec),
        }
    }

    /// The id of an activation of this cutover (`activate`: the new color from the
    /// handoff; `reactivate`: the old color on a rollback), from the record.
    fn activation_id(&self, kind: &str, rec: &CutoverRecord) -> String {
        // The stop's trigger id is unique per cutover attempt, and set before any activation.
        format!("{}-{kind}", rec.trigger_id.as_deref().unwrap_or("cutover"))
    }

    /// Moves the record to `step`, now.
    fn step(&mut self, mut rec: CutoverRecord, step: CutoverStep) -> CutoverRecord {
        rec.step = step;
        rec.step_started = Some(self.now());
        rec
    }

    fn step_elapsed(&self, rec: &CutoverRecord) -> Duration {
        ts(&rec.step_started).or(ts(&Some(rec.started.clone()))).map(|t| elapsed(self.i.now, t)).unwrap_or_default()
    }

    /// The new color's view, if its engine answers.
    fn new_color(&self) -> Option<&Job> {
        match &self.i.other_engine {
            EngineView::Up(j) => Some(j),
            EngineView::Down(_) => None,
        }
    }

    fn old_color(&self) -> Option<&Job> {
        match &self.i.engine {
            EngineView::Up(j) => Some(j),
            EngineView::Down(_) => None,
        }
    }

    /// The new color's pods start in standby, checking the running job's newest snapshot.
    fn preparing(&mut self, rec: CutoverRecord) {
        let to = rec.from.other();
        let applied = self.i.other_children.engine_objects
            && self.i.other_children.config_map
            && self.i.other_children.deployment == Some(rec.deployment);
        if !applied {
            self.actions.push(Action::ApplyColor {
                color: to,
                spec: Box::new(rec.target_spec.clone()),
                deployment: rec.deployment,
                restore: Some("latest".into()),
            });
        }
        self.soon(FAST);
        if !self.engine_running() {
            let why = format!("the running job is {} and cannot hand over", self.engine_state());
            return self.abort(rec, &why, true);
        }
        let ready = self.new_color().and_then(|j| j.standby.as_ref().map(|s| (j.state, s.ready, s.message.clone())));
        match ready {
            Some((JobStatus::Standby, true, message)) => {
                // Recorded first: the trigger id of the old color's stop.
                let n = self.next_trigger();
                let id = self.trigger_id("cutover", &[rec.target_generation, n]);
                let mut rec = self.step(rec, CutoverStep::Stopping);
                rec.trigger_id = Some(id);
                self.event(
                    false,
                    "CutoverReady",
                    format!("{to} is ready in standby ({message}); stopping {}", rec.from),
                );
                self.st.cutover = Some(rec);
                self.cutover()
            }
            Some((JobStatus::Failed, _, message)) => {
                let error = self.new_color().and_then(|j| j.error.clone()).unwrap_or(message);
                self.abort(rec, &format!("{to} cannot take over: {error}"), false)
            }
            _ => {
                let readiness = dur(&rec.target_spec.upgrade.readiness_timeout, PREPARE_TIMEOUT).max(PREPARE_TIMEOUT);
                if self.step_elapsed(&rec) >= readiness {
                    let why = self
                        .i
                        .other_children
                        .pod_problem
                        .clone()
                        .or_else(|| self.new_color().and_then(|j| j.standby.as_ref().map(|s| s.message.clone())))
                        .unwrap_or_else(|| match &self.i.other_engine {
                            EngineView::Down(e) => format!("its engine is unreachable: {e}"),
                            EngineView::Up(j) => format!("its engine is {}", j.state),
                        });
                    self.abort(rec, &format!("{to} was not ready in standby within {readiness:?}: {why}"), false);
                }
            }
        }
    }

    /// The old color stops with a savepoint. One that fails leaves it running: the
    /// cutover is given up and retried later. One that is slow is waited for: until
    /// it completes or fails, the old color may still commit.
    fn stopping_old(&mut self, rec: CutoverRecord) {
        let Some(id) = rec.trigger_id.clone() else {
            return self.abort(rec, "the cutover record has no trigger id", true);
        };
        // The job pauses from here until the new color runs: look again sooner.
        self.soon(HANDOFF_POLL);
        match &self.i.trigger {
            Some(TriggerView::Completed(location)) => {
                let location = location.clone();
                self.record_savepoint(&location, "cutover");
                let mut rec = self.step(rec, CutoverStep::Activating);
                rec.handoff = Some(location);
                self.st.cutover = Some(rec);
                self.cutover()
            }
            Some(TriggerView::Failed(e)) => {
                let why = format!("{} could not stop with a savepoint: {e}", rec.from);
                self.abort(rec, &why, true)
            }
            Some(TriggerView::InProgress | TriggerView::Unreadable(_)) => {}
            Some(TriggerView::Unknown) if !self.engine_running() => {
                let why =
                    format!("{} stopped running ({}) before its savepoint was taken", rec.from, self.engine_state());
                self.abort(rec, &why, true)
            }
            _ => {
                if self.engine_running() {
                    self.actions.push(Action::TriggerSavepointOn(
                        rec.from,
                        SavepointRequest {
                            trigger_id: Some(id),
                            target_directory: rec.target_spec.savepoints.directory.clone(),
                            stop: true,
                            drain: false,
                        },
                    ));
                }
            }
        }
    }

    /// The new color is activated from the handoff savepoint.
    fn activating(&mut self, rec: CutoverRecord) {
        let to = rec.from.other();
        let handoff = rec.handoff.clone();
        self.soon(HANDOFF_POLL);
        let id = self.activation_id("activate", &rec);
        let view = self.new_color().map(|j| Activated::of(j, &id));
        match view {
            Some(Activated::Yes(JobStatus::Running)) => {
                let mut rec = self.step(rec, CutoverStep::Verifying);
                rec.activated = Some(self.now());
                rec.restore_bytes = self
                    .new_color()
                    .and_then(|j| j.activation.as_ref())
                    .and_then(|a| i64::try_from(a.restore_bytes).ok());
                rec.savepoint_bytes = self
                    .old_color()
                    .and_then(|j| j.last_completed_checkpoint.as_ref())
                    .filter(|c| Some(&c.location) == handoff.as_ref())
                    .and_then(|c| i64::try_from(c.size_bytes).ok());
                self.event(
                    false,
                    "CutoverActivated",
                    format!(
                        "{to} runs from {}; {} stays idle for a rollback until {to} has been healthy for {}",
                        handoff.as_deref().unwrap_or("?"),
                        rec.from,
                        rec.target_spec.upgrade_strategy.blue_green.verification_window
                    ),
                );
                self.st.cutover = Some(rec);
                self.cutover()
            }
            Some(Activated::Yes(JobStatus::Failed | JobStatus::Canceled)) => {
                let error = self.new_color().and_then(|j| j.error.clone()).unwrap_or_else(|| "no reason given".into());
                self.roll_back(rec, format!("{to} failed at its activation: {error}"))
            }
            view => {
                let readiness = dur(&rec.target_spec.upgrade.readiness_timeout, PREPARE_TIMEOUT);
                if self.step_elapsed(&rec) >= readiness {
                    let why = format!("{to} was not RUNNING within {readiness:?} of its activation");
                    return self.roll_back(rec, why);
                }
                if view == Some(Activated::Waiting) {
                    self.actions.push(Action::Activate { color: to, restore: handoff, id });
                }
            }
        }
    }

    /// The new color must stay healthy for the verification window.
    fn verifying(&mut self, mut rec: CutoverRecord) {
        let to = rec.from.other();
        let bg = rec.target_spec.upgrade_strategy.blue_green.clone();
        let window = dur(&bg.verification_window, Duration::from_secs(120));
        let since = ts(&rec.activated).unwrap_or(self.i.now);
        let over = elapsed(self.i.now, since) >= window;
        self.soon(FAST.max(window.saturating_sub(elapsed(self.i.now, since)).min(WATCH)));
        let Some(job) = self.new_color().cloned() else {
            if over {
                let why = match &self.i.other_engine {
                    EngineView::Down(e) => format!("{to}'s engine is unreachable: {e}"),
                    EngineView::Up(_) => String::new(),
                };
                return self.roll_back(rec, why);
            }
            return;
        };
        self.st.job_state = Some(job.state.to_string());
        if rec.pause.is_none()
            && let Some(pause) = self.pause(&rec, &job)
        {
            rec.pause = Some(pause);
            self.st.cutover = Some(rec.clone());
        }
        let restarts = i64::try_from(job.restarts).unwrap_or(i64::MAX);
        let failure = match job.state {
            JobStatus::Failed | JobStatus::Canceled => Some(format!(
                "{to} is {}: {}",
                job.state,
                job.error.clone().unwrap_or_else(|| "no reason given".into())
            )),
            _ if restarts > i64::from(bg.max_restarts) => Some(format!(
                "{to} restarted {restarts} times, more than maxRestarts {}{}",
                bg.max_restarts,
                job.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
            )),
            _ => None,
        };
        if let Some(why) = failure {
            return self.roll_back(rec, why);
        }
        let checkpointed = !bg.require_checkpoint || rec.pause.is_some();
        if job.state == JobStatus::Finished || (over && job.state == JobStatus::Running && checkpointed) {
            return self.succeed(rec);
        }
        if over && !checkpointed {
            let why =
                format!("{to} completed no checkpoint within the verification window ({})", bg.verification_window);
            self.roll_back(rec, why);
        } else if over && job.state != JobStatus::Running {
            let why =
                format!("{to} is {} at the end of the verification window ({})", job.state, bg.verification_window);
            self.roll_back(rec, why);
        }
    }

    /// Milliseconds from the old color's last commit (its stop savepoint completed) to
    /// the new color's first (its first checkpoint after the activation completed), as
    /// the two engines report them.
    fn pause(&self, rec: &CutoverRecord, new: &Job) -> Option<i64> {
        let completed = |c: &sluice_api::rest::Checkpoint| {
            c.trigger_time
                .parse::<Timestamp>()
                .ok()?
                .checked_add(jiff::SignedDuration::from_millis(c.duration_ms as i64))
                .ok()
        };
        let first = new.last_completed_checkpoint.as_ref().filter(|c| {
            c.kind == SnapshotKind::Checkpoint
                && Some(&c.location) != rec.handoff.as_ref()
                && new.activation.as_ref().is_some_and(|a| c.trigger_time >= a.requested_at)
        })?;
        let last = self
            .old_color()
            .and_then(|j| j.last_completed_checkpoint.as_ref())
            .filter(|c| Some(&c.location) == rec.handoff.as_ref())?;
        let ms = completed(first)?.duration_since(completed(last)?).as_millis();
        i64::try_from(ms).ok().map(|ms| ms.max(0))
    }

    /// The new color proved itself: the old color's children go, and the new color is the job.
    fn succeed(&mut self, rec: CutoverRecord) {
        let to = rec.from.other();
        self.actions.push(Action::DeleteColor(rec.from));
        self.st.active_color = Some(to);
        self.st.deployment = rec.deployment;
        self.st.reconciled_spec = Some(rec.target_spec.clone());
        self.st.reconciled_generation = Some(rec.target_generation);
        self.st.last_stable_spec = Some(rec.target_spec.clone());
        self.st.deployed_from = rec.handoff.clone();
        self.st.deployed_at = rec.activated.clone();
        self.st.running_since = rec.activated.clone();
        self.st.current_parallelism = Some(rec.target_spec.parallelism);
        self.st.never_ran = false;
        self.report(&rec, "succeeded", None);
        self.st.cutover = None;
        self.set_phase(Phase::Running);
        let pause = rec.pause.map(|p| format!("; pause {p} ms")).unwrap_or_default();
        self.event(
            false,
            "CutoverSucceeded",
            format!("{to} (deployment {}) runs the job; {} is removed{pause}", rec.deployment, rec.from),
        );
    }

    /// Records the outcome in `lastCutover`.
    fn report(&mut self, rec: &CutoverRecord, outcome: &str, reason: Option<String>) {
        self.st.last_cutover = Some(CutoverReport {
            outcome: outcome.into(),
            from: rec.from,
            to: rec.from.other(),
            generation: rec.target_generation,
            pause: rec.pause,
            savepoint_bytes: rec.savepoint_bytes,
            restore_bytes: rec.restore_bytes,
            finished: self.now(),
            reason,
        });
    }

    /// Gives up before the old color was touched (or after its stop savepoint failed,
    /// which leaves it running): the new color's children go. `retry`: the generation
    /// is tried again after a backoff (a failed savepoint may be transient); otherwise
    /// it is not rolled out until the spec changes.
    fn abort(&mut self, rec: CutoverRecord, why: &str, retry: bool) {
        self.actions.retain(|a| !matches!(a, Action::ApplyColor { .. }));
        self.actions.push(Action::DeleteColor(rec.from.other()));
        let msg = format!("blue-green cutover aborted: {why}; the job keeps running on {}", rec.from);
        self.event(true, "CutoverAborted", msg.clone());
        self.st.error = Some(msg);
        if retry {
            let at = self.i.now.checked_add(ABORT_BACKOFF).unwrap_or(self.i.now);
            self.st.upgrade_retry_after = Some(at.round(jiff::Unit::Second).unwrap_or(at).to_string());
        } else {
            self.st.rolled_back_generation = Some(rec.target_generation);
        }
        self.report(&rec, "aborted", Some(why.to_string()));
        self.st.cutover = None;
        self.set_phase(Phase::Running);
    }

    /// Starts a rollback: the record says why before anything is stopped.
    fn roll_back(&mut self, rec: CutoverRecord, why: String) {
        let mut rec = self.step(rec, CutoverStep::RollingBack);
        self.event(true, "CutoverRollingBack", format!("rolling back to {}: {why}", rec.from));
        self.st.error = Some(why.clone());
        rec.note = Some(why);
        self.set_phase(Phase::RollingBack);
        self.st.cutover = Some(rec);
        self.cutover()
    }

    /// The new color stops with a savepoint if it can; otherwise the old color
    /// resumes from `latest`, the new color's newest checkpoint (its activation
    /// fences the new color off, so nothing after it is committed).
    fn rolling_back(&mut self, rec: CutoverRecord) {
        let to = rec.from.other();
        let new_running = self.new_color().is_some_and(|j| j.state == JobStatus::Running);
        self.soon(FAST);
        let Some(id) = rec.rollback_trigger_id.clone() else {
            if !new_running {
                return self.restore_from(rec, "latest".into(), format!("{to} is not running"));
            }
            let n = self.next_trigger();
            let id = self.trigger_id("rollback", &[rec.target_generation, n]);
            let mut rec = rec;
            rec.rollback_trigger_id = Some(id);
            self.st.cutover = Some(rec);
            return self.cutover();
        };
        let timeout = dur(&rec.target_spec.upgrade.savepoint_timeout, Duration::from_secs(300));
        match &self.i.trigger {
            Some(TriggerView::Completed(location)) => {
                let location = location.clone();
                self.record_savepoint(&location, "rollback");
                self.restore_from(rec, location, String::new())
            }
            Some(TriggerView::Failed(e)) => {
                let why = format!("{to}'s savepoint failed: {e}");
                self.restore_from(rec, "latest".into(), why)
            }
            _ if self.step_elapsed(&rec) >= timeout => {
                let why = format!("{to}'s savepoint did not complete within {timeout:?}");
                self.restore_from(rec, "latest".into(), why)
            }
            Some(TriggerView::InProgress) => {}
            _ if new_running => self.actions.push(Action::TriggerSavepointOn(
                to,
                SavepointRequest {
                    trigger_id: Some(id),
                    target_directory: rec.target_spec.savepoints.directory.clone(),
                    stop: true,
                    drain: false,
                },
            )),
            _ => self.restore_from(rec, "latest".into(), format!("{to} stopped running")),
        }
    }

    fn restore_from(&mut self, rec: CutoverRecord, from: String, why: String) {
        if !why.is_empty() {
            self.event(true, "CutoverRollbackFallback", format!("{why}; {} resumes from {from}", rec.from));
        }
        let mut rec = self.step(rec, CutoverStep::Restoring);
        rec.rollback_from = Some(from);
        self.st.cutover = Some(rec);
        self.cutover()
    }

    /// The old color, idle since the handoff, is activated from the rollback point.
    /// From `latest` (the new color could not stop with a savepoint), the new color's
    /// pods are removed first: one that is restarting could otherwise still write part
    /// files under the names the old color is about to use (it can no longer commit
    /// them once fenced, but a local sink's pending file could be replaced).
    fn restoring(&mut self, rec: CutoverRecord) {
        let restore = rec.rollback_from.clone();
        let id = self.activation_id("reactivate", &rec);
        self.soon(FAST);
        let other = &self.i.other_children;
        if restore.as_deref() == Some("latest") && (other.engine_objects || other.pods > 0) {
            if other.engine_objects {
                self.actions.push(Action::DeleteColor(rec.from.other()));
            }
            return;
        }
        match self.old_color().map(|j| Activated::of(j, &id)) {
            Some(Activated::Yes(JobStatus::Running)) => {
                let to = rec.from.other();
                self.actions.push(Action::DeleteColor(to));
                self.st.rolled_back_generation = Some(rec.target_generation);
                self.st.job_state = Some(JobStatus::Running.to_string());
                self.st.running_since = Some(self.now());
                self.st.deployed_from = restore.clone();
                let why = rec.note.clone().unwrap_or_else(|| "the verification failed".into());
                self.report(&rec, "rolledBack", Some(why.clone()));
                self.st.cutover = None;
                self.set_phase(Phase::RolledBack);
                self.event(
                    true,
                    "CutoverRolledBack",
                    format!(
                        "{} runs the job again from {} ({why}); generation {} is not rolled out again until the spec changes",
                        rec.from,
                        restore.as_deref().unwrap_or("?"),
                        rec.target_generation
                    ),
                );
            }
            Some(Activated::Waiting) => self.actions.push(Action::Activate { color: rec.from, restore, id }),
            _ => {}
        }
    }
}

/// Where a color's coordinator stands with respect to one activation (by its id).
#[derive(Debug, PartialEq)]
pub(super) enum Activated {
    /// It waits in standby, ready: it can be activated.
    Waiting,
    /// It is not ready yet, or runs from another activation.
    NotYet,
    /// It runs, or ran, from this activation; the job is in this state.
    Yes(JobStatus),
}

impl Activated {
    pub(super) fn of(job: &Job, id: &str) -> Activated {
        match (&job.activation, &job.standby) {
            (Some(a), _) if a.id.as_deref() == Some(id) => Activated::Yes(job.state),
            (_, Some(s)) if s.ready => Activated::Waiting,
            _ => Activated::NotYet,
        }
    }
}
