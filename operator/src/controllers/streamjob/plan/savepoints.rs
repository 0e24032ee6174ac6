//! Savepoints that stop nothing (periodic, nonce), and retention.

use super::*;

impl Planner<'_> {
    /// Periodic and nonce-triggered savepoints, which stop nothing.
    pub(super) fn schedule_savepoints(&mut self, spec: &StreamJobSpec) {
        let Some(dir) = spec.savepoints.directory.clone() else { return };
        let running = self.engine_running();
        let nonce = self.i.spec.savepoint_nonce;
        let trigger = if nonce.is_some() && nonce != self.st.savepoint_nonce {
            self.st.savepoint_nonce = nonce;
            Some("manual")
        } else if let Some(interval) = spec.savepoints.interval.as_deref().and_then(parse_duration) {
            let last = self.st.last_savepoint.as_ref().and_then(|s| s.time.parse::<Timestamp>().ok());
            let base = last.into_iter().chain(ts(&self.st.deployed_at)).max();
            match base {
                Some(b) if elapsed(self.i.now, b) >= interval => Some("periodic"),
                Some(b) => {
                    self.soon(interval - elapsed(self.i.now, b));
                    None
                }
                None => None,
            }
        } else {
            None
        };
        let Some(kind) = trigger else { return };
        if !running {
            if kind == "manual" {
                self.event(true, "SavepointSkipped", "savepointNonce changed, but the job is not RUNNING".into());
            }
            return;
        }
        // The counter also tells apart two savepoints of one nonce value set again later.
        let n = self.next_trigger();
        let id = if kind == "periodic" {
            self.trigger_id(kind, &[self.st.deployment, n])
        } else {
            self.trigger_id(kind, &[nonce.unwrap_or_default(), n])
        };
        self.st.pending_savepoint =
            Some(PendingSavepoint { trigger_id: id.clone(), trigger: kind.into(), started: self.now() });
        self.actions.push(Action::TriggerSavepoint(SavepointRequest {
            trigger_id: Some(id),
            target_directory: Some(dir),
            stop: false,
            drain: false,
        }));
        self.soon(FAST);
    }

    pub(super) fn pending_savepoint(&mut self) {
        let Some(p) = self.st.pending_savepoint.clone() else { return };
        let timeout = self
            .deployed()
            .map(|s| dur(&s.upgrade.savepoint_timeout, Duration::from_secs(300)))
            .unwrap_or(Duration::from_secs(300));
        let timed_out = p.started.parse::<Timestamp>().is_ok_and(|s| elapsed(self.i.now, s) >= timeout);
        match &self.i.trigger {
            Some(TriggerView::Completed(location)) => {
                let location = location.clone();
                self.st.pending_savepoint = None;
                self.record_savepoint(&location, &p.trigger);
                self.event(false, "SavepointCompleted", format!("{} savepoint at {location}", p.trigger));
            }
            Some(TriggerView::Failed(e)) => {
                self.st.pending_savepoint = None;
                self.event(true, "SavepointFailed", format!("{} savepoint failed: {e}", p.trigger));
            }
            Some(TriggerView::Unknown | TriggerView::Unreadable(_)) | None if !timed_out => {
                // Not known yet (the trigger may not have reached the engine): send it again.
                if let Some(dir) = self.deployed().and_then(|s| s.savepoints.directory.clone()) {
                    self.actions.push(Action::TriggerSavepoint(SavepointRequest {
                        trigger_id: Some(p.trigger_id.clone()),
                        target_directory: Some(dir),
                        stop: false,
                        drain: false,
                    }));
                }
                self.soon(FAST);
            }
            _ if timed_out => {
                self.st.pending_savepoint = None;
                self.event(
                    true,
                    "SavepointTimedOut",
                    format!("{} savepoint {} abandoned after {timeout:?}", p.trigger, p.trigger_id),
                );
            }
            _ => self.soon(FAST),
        }
    }

    /// Adds a completed savepoint to the history and applies retention.
    pub(super) fn record_savepoint(&mut self, location: &str, trigger: &str) {
        let info = SavepointInfo { location: location.into(), time: self.now(), trigger: trigger.into() };
        if self.st.savepoint_history.iter().all(|s| s.location != location) {
            self.st.savepoint_history.push(info.clone());
        }
        self.st.last_savepoint = Some(info);
        let Some(spec) = self.target() else { return };
        // Only data under the job's own directories is ever deleted: the engine reports
        // the location, and the engine runs an image the user chose.
        let deployed = self.deployed();
        let roots = crate::storage::disposal_roots(std::iter::once(spec.spec()).chain(deployed.as_deref()));
        let max_count = usize::try_from(spec.savepoints.max_count.max(1)).unwrap_or(1);
        let max_age = spec.savepoints.max_age.as_deref().and_then(parse_duration);
        let keep = [self.st.deployed_from.clone(), self.st.upgrade.as_ref().and_then(|u| u.restore_from.clone())];
        let n = self.st.savepoint_history.len();
        let mut dispose = Vec::new();
        let mut kept = Vec::new();
        for (idx, s) in std::mem::take(&mut self.st.savepoint_history).into_iter().enumerate() {
            let newest = idx + 1 == n;
            let too_many = n - idx > max_count;
            let too_old =
                max_age.is_some_and(|a| s.time.parse::<Timestamp>().is_ok_and(|t| elapsed(self.i.now, t) > a));
            let protected = keep.iter().flatten().any(|k| *k == s.location);
            if !newest && !protected && (too_many || too_old) {
                if crate::storage::may_dispose(&s.location, &roots) {
                    dispose.push(s.location);
                    continue;
                }
                self.event(
                    true,
                    "DisposeRefused",
                    format!(
                        "savepoint {} is due for deletion (retention), but it is not under the job's savepoint \
                         directory or checkpoint storage ({}); it is kept, and its record too",
                        s.location,
                        if roots.is_empty() { "none configured".into() } else { roots.join(", ") }
                    ),
                );
            }
            kept.push(s);
        }
        self.st.savepoint_history = kept;
        if !dispose.is_empty() {
            self.actions.push(Action::Dispose { locations: dispose, roots });
        }
    }
}
