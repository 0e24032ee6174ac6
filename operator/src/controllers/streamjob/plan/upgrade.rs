//! Stop-and-redeploy: upgrades, restarts, suspends and rollbacks, step by step.

use super::*;

impl Planner<'_> {
    /// Starts a stop-and-redeploy: the record is written before anything happens.
    pub(super) fn begin(&mut self, kind: UpgradeKind, target: &DeployedSpec) {
        // The old deployment is going away: do not re-apply it.
        self.actions.retain(|a| *a != Action::ApplyChildren);
        let mode = target.upgrade_mode;
        let dir = target.savepoints.directory.clone();
        let savepoint = match kind {
            UpgradeKind::Rollback => false,
            UpgradeKind::Suspend => mode != UpgradeMode::Stateless && dir.is_some(),
            _ => mode == UpgradeMode::Savepoint && dir.is_some(),
        };
        let job_alive = self.engine_running();
        let (step, trigger_id, restore_from) = if savepoint && job_alive {
            // From the write-ahead record, unique per attempt: an aborted upgrade retried
            // later must not get the failed savepoint back.
            let n = self.next_trigger();
            let id = self.trigger_id(kind_name(kind), &[self.i.generation, n]);
            (UpgradeStep::Stopping, Some(id), None)
        } else {
            (UpgradeStep::Stopped, None, self.fallback_restore(target, kind))
        };
        if self.st.pending_savepoint.take().is_some() {
            self.event(
                false,
                "SavepointSuperseded",
                format!("a pending savepoint is dropped: the {} takes its own", kind_name(kind)),
            );
        }
        let note = (step == UpgradeStep::Stopped && savepoint).then(|| {
            format!(
                "the job is not RUNNING ({}), so no savepoint can be taken; restoring from {}",
                self.engine_state(),
                restore_from.as_deref().unwrap_or("nothing (empty state)")
            )
        });
        if let Some(n) = &note {
            self.event(true, "SavepointSkipped", n.clone());
        }
        self.st.upgrade_retry_after = None;
        self.st.upgrade = Some(UpgradeRecord {
            kind,
            target_generation: self.i.generation,
            target_spec: target.clone(),
            step,
            trigger_id,
            restore_from,
            started: self.now(),
            note,
        });
        self.set_phase(match kind {
            UpgradeKind::Rollback => Phase::RollingBack,
            _ => Phase::Upgrading,
        });
        self.event(false, "UpgradeStarted", format!("{} started ({} mode)", kind_name(kind), mode_name(mode)));
        self.upgrade();
    }

    /// Where a deployment restores from when no savepoint is taken.
    pub(super) fn fallback_restore(&self, target: &StreamJobSpec, kind: UpgradeKind) -> Option<String> {
        if kind == UpgradeKind::Rollback {
            return self.st.deployed_from.clone();
        }
        if self.st.never_ran {
            // Nothing has run, so nothing was committed: the job still starts as its first
            // deployment would (`latest` would be empty state), whatever the upgrade mode.
            return target.initial_savepoint.clone();
        }
        match target.upgrade_mode {
            UpgradeMode::Stateless => None,
            _ if target.checkpointing.storage.is_some() => Some("latest".into()),
            _ => self.st.last_savepoint.as_ref().map(|s| s.location.clone()),
        }
    }

    pub(super) fn upgrade(&mut self) {
        let Some(rec) = self.st.upgrade.clone() else { return };
        let target = rec.target_spec.clone();
        match rec.step {
            UpgradeStep::Stopping => self.stopping(rec, &target),
            UpgradeStep::Fencing => self.fencing(rec, &target),
            UpgradeStep::Stopped => self.stopped(rec, target),
        }
    }

    /// Waits for the stop-with-savepoint. A savepoint that fails or outlives
    /// `savepointTimeout` is not abandoned while the old deployment could still
    /// complete it: the upgrade moves to [`UpgradeStep::Fencing`] instead.
    pub(super) fn stopping(&mut self, mut rec: UpgradeRecord, target: &StreamJobSpec) {
        let Some(trigger_id) = rec.trigger_id.clone() else {
            rec.step = UpgradeStep::Stopped;
            self.st.upgrade = Some(rec);
            return self.upgrade();
        };
        let timeout = dur(&target.upgrade.savepoint_timeout, Duration::from_secs(300));
        let timed_out = ts(&Some(rec.started.clone())).is_some_and(|s| elapsed(self.i.now, s) >= timeout);
        let (failure, reason) = match &self.i.trigger {
            Some(TriggerView::Completed(location)) => {
                let location = location.clone();
                self.record_savepoint(&location, kind_name(rec.kind));
                rec.step = UpgradeStep::Stopped;
                rec.restore_from = Some(location);
                self.st.upgrade = Some(rec);
                return self.upgrade();
            }
            Some(TriggerView::Failed(e)) => (format!("the savepoint failed: {e}"), "SavepointFailed"),
            _ if !timed_out => {
                if !matches!(self.i.trigger, Some(TriggerView::InProgress)) && self.engine_running() {
                    self.actions.push(Action::TriggerSavepoint(SavepointRequest {
                        trigger_id: Some(trigger_id),
                        target_directory: target.savepoints.directory.clone(),
                        stop: true,
                        drain: false,
                    }));
                }
                self.soon(FAST);
                return;
            }
            _ => (
                format!("the savepoint did not complete within {}", target.upgrade.savepoint_timeout),
                "SavepointTimedOut",
            ),
        };
        let job_running = self.engine_running();
        let fallback =
            self.fallback_restore(target, rec.kind).is_some() && target.upgrade_mode != UpgradeMode::Stateless;
        if !fallback && job_running {
            if matches!(self.i.trigger, Some(TriggerView::InProgress)) {
                // Nothing to fall back to, and stopping the pods now would lose the state:
                // wait for the engine's own answer (its savepoint completes or fails).
                if rec.note.is_none() {
                    let note = format!(
                        "{failure}, and there is nothing to fall back to; waiting for the engine to complete or fail it"
                    );
                    self.event(true, reason, note.clone());
                    rec.note = Some(note);
                    self.st.upgrade = Some(rec);
                }
                self.soon(WATCH);
                return;
            }
            // The engine does not have the savepoint in flight (it failed, or the engine
            // never received it): the job keeps running as it is.
            let msg = format!(
                "{} aborted: {failure}, and there is no checkpoint storage or earlier savepoint to fall back to; the job keeps running its current spec and the {} is retried",
                kind_name(rec.kind),
                kind_name(rec.kind)
            );
            self.event(true, "UpgradeAborted", msg.clone());
            self.st.error = Some(msg);
            self.st.upgrade = None;
            self.set_phase(Phase::Running);
            // The next attempt waits, so that a failing savepoint is not retried in a loop.
            let retry = self.i.now.checked_add(ABORT_BACKOFF).unwrap_or(self.i.now);
            self.st.upgrade_retry_after = Some(retry.round(jiff::Unit::Second).unwrap_or(retry).to_string());
            self.soon(ABORT_BACKOFF);
            return;
        }
        // The savepoint may still complete (and commit) until the old pods are gone:
        // remove them first, then choose the restore point.
        self.event(
            true,
            reason,
            format!(
                "{} savepoint {trigger_id}: {failure}; removing the old engine pods before choosing where to restore from \
                 (the savepoint is used if it completes before they are gone)",
                kind_name(rec.kind)
            ),
        );
        rec.step = UpgradeStep::Fencing;
        rec.note = Some(failure);
        self.st.upgrade = Some(rec);
        self.upgrade()
    }

    /// After a savepoint was given up on: the old deployment's pods are removed, and only
    /// once every one is gone (nothing of that deployment can commit any more) is the
    /// restore point chosen: the savepoint if it completed after all, else the fallback.
    /// Every step is idempotent, so an operator restarted here repeats it safely.
    pub(super) fn fencing(&mut self, mut rec: UpgradeRecord, target: &StreamJobSpec) {
        let failure = rec.note.clone().unwrap_or_else(|| "the savepoint did not complete".into());
        let trigger_id = rec.trigger_id.clone().unwrap_or_default();
        let gone = !self.i.children.engine_objects && self.i.children.pods == 0;
        match &self.i.trigger {
            Some(TriggerView::Completed(location)) => {
                let location = location.clone();
                self.record_savepoint(&location, kind_name(rec.kind));
                self.event(
                    false,
                    "SavepointCompleted",
                    format!(
                        "the {} savepoint completed after all, at {location} ({failure} before); restoring from it",
                        kind_name(rec.kind)
                    ),
                );
                rec.step = UpgradeStep::Stopped;
                rec.restore_from = Some(location);
                rec.note = Some(format!("{failure}; it completed before the old pods were gone"));
                self.st.upgrade = Some(rec);
                return self.upgrade();
            }
            _ if !gone => {
                if self.i.children.engine_objects {
                    self.actions.push(Action::DeleteEngine);
                }
                self.soon(FAST);
                return;
            }
            Some(TriggerView::Unreadable(e)) => {
                // Falling back without knowing whether the savepoint exists could restore
                // an older snapshot than one that committed output: wait for storage.
                let msg = format!(
                    "cannot tell whether the {} savepoint {trigger_id} completed: {e}; the old pods are gone, and the \
                     restore point is chosen once storage answers",
                    kind_name(rec.kind)
                );
                if self.st.error.as_deref() != Some(msg.as_str()) {
                    self.event(true, "SavepointUnknown", msg.clone());
                    self.st.error = Some(msg);
                }
                self.soon(WATCH);
                return;
            }
            Some(TriggerView::InProgress) => {
                self.soon(FAST);
                return;
            }
            Some(TriggerView::Unknown | TriggerView::Failed(_)) | None => {}
        }
        let from = self.fallback_restore(target, rec.kind).filter(|_| target.upgrade_mode != UpgradeMode::Stateless);
        let note = match &from {
            Some(from) => format!("{failure}; the old pods are gone and it was not written; restoring from {from}"),
            None => format!("{failure}; the old pods are gone and it was not written; restarting with empty state"),
        };
        self.event(true, "SavepointFallback", note.clone());
        if self.st.error.as_deref().is_some_and(|e| e.starts_with("cannot tell whether")) {
            self.st.error = None;
        }
        rec.step = UpgradeStep::Stopped;
        rec.restore_from = from;
        rec.note = Some(note);
        self.st.upgrade = Some(rec);
        self.upgrade()
    }

    pub(super) fn stopped(&mut self, rec: UpgradeRecord, target: DeployedSpec) {
        if self.i.children.engine_objects {
            self.actions.push(Action::DeleteEngine);
            self.soon(FAST);
            return;
        }
        if self.i.children.pods > 0 {
            self.soon(FAST);
            return;
        }
        self.st.job_state = None;
        self.st.running_since = None;
        match rec.kind {
            UpgradeKind::Suspend => {
                let resume = self.i.validated.is_ok() && self.i.spec.state == DesiredState::Running;
                if !resume {
                    self.st.current_parallelism = None;
                    self.set_phase(Phase::Suspended);
                    return;
                }
                let Some(spec) = self.target() else { return };
                // A job suspended before it ever ran starts from its initialSavepoint as it is now.
                let restore = if self.st.never_ran { spec.initial_savepoint.clone() } else { rec.restore_from };
                self.event(
                    false,
                    "Resuming",
                    format!("resuming from {}", restore.as_deref().unwrap_or("nothing (empty state)")),
                );
                self.deploy(&spec, restore, Phase::Deploying);
            }
            UpgradeKind::Rollback => {
                self.st.rolled_back_generation = Some(rec.target_generation);
                self.deploy(&target, rec.restore_from, Phase::RolledBack);
            }
            UpgradeKind::Upgrade | UpgradeKind::Restart => {
                let secs = ts(&Some(rec.started.clone())).map(|s| elapsed(self.i.now, s).as_secs()).unwrap_or(0);
                self.event(false, "Upgraded", format!("{} rolled out after {secs} s", kind_name(rec.kind)));
                self.deploy(&target, rec.restore_from, Phase::Deploying);
            }
        }
    }
}
