//! Deletion: the savepoint that `savepoints.onDeletion` asks for, then the finalizer.
//! A deletion never waits forever: a savepoint that fails, times out or cannot be
//! taken (the engine is gone) is reported, and the finalizer goes.

use super::*;

impl Planner<'_> {
    pub(super) fn delete(&mut self) {
        self.set_phase(Phase::Deleting);
        let Some(spec) = self.deployed() else {
            self.actions.push(Action::RemoveFinalizer);
            return;
        };
        let running = self.engine_running();
        let wanted = spec.savepoints.on_deletion && spec.savepoints.directory.is_some();
        match (&self.st.pending_savepoint, &self.i.trigger) {
            (Some(p), Some(TriggerView::Completed(location))) if p.trigger == "deletion" => {
                let location = location.clone();
                self.st.pending_savepoint = None;
                self.record_savepoint(&location, "deletion");
                self.event(false, "SavepointCompleted", format!("deletion savepoint at {location}"));
                self.actions.retain(|a| !matches!(a, Action::Dispose { .. }));
                self.actions.push(Action::RemoveFinalizer);
            }
            (Some(p), trigger) if p.trigger == "deletion" => {
                let timeout = dur(&spec.upgrade.savepoint_timeout, Duration::from_secs(300));
                let timed_out = p.started.parse::<Timestamp>().is_ok_and(|s| elapsed(self.i.now, s) >= timeout);
                let failed = match trigger {
                    Some(TriggerView::Failed(e)) => Some(format!("the deletion savepoint failed: {e}")),
                    _ if timed_out => Some(format!("the deletion savepoint did not complete within {timeout:?}")),
                    _ if !running && !matches!(trigger, Some(TriggerView::InProgress)) => {
                        Some(format!("the engine is gone ({})", self.engine_state()))
                    }
                    _ => None,
                };
                match failed {
                    Some(why) => {
                        self.event(true, "DeletedWithoutSavepoint", format!("{why}; the finalizer is removed"));
                        self.actions.push(Action::RemoveFinalizer);
                    }
                    None => {
                        if !matches!(trigger, Some(TriggerView::InProgress)) {
                            self.actions.push(Action::TriggerSavepoint(SavepointRequest {
                                trigger_id: Some(p.trigger_id.clone()),
                                target_directory: spec.savepoints.directory.clone(),
                                stop: true,
                                drain: false,
                            }));
                        }
                        self.soon(FAST);
                    }
                }
            }
            _ if wanted && running => {
                let id = self.trigger_id("deletion", &[self.st.deployment]);
                self.st.pending_savepoint =
                    Some(PendingSavepoint { trigger_id: id.clone(), trigger: "deletion".into(), started: self.now() });
                self.actions.push(Action::TriggerSavepoint(SavepointRequest {
                    trigger_id: Some(id),
                    target_directory: spec.savepoints.directory.clone(),
                    stop: true,
                    drain: false,
                }));
                self.soon(FAST);
            }
            _ => {
                let taken = self.st.last_savepoint.as_ref().is_some_and(|s| s.trigger == "deletion");
                if wanted && !taken {
                    self.event(
                        true,
                        "DeletedWithoutSavepoint",
                        format!(
                            "savepoints.onDeletion is set but the job is not RUNNING ({}); the finalizer is removed",
                            self.engine_state()
                        ),
                    );
                }
                self.actions.push(Action::RemoveFinalizer);
            }
        }
    }
}
