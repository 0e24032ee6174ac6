//! The steady state: following the engine, Stable, Finished, Failed, and rollback.

use super::*;

impl Planner<'_> {
    /// The steady state: follow the engine, detect Stable, Finished, Failed, and roll back.
    pub(super) fn observe_running(&mut self, deployed: &StreamJobSpec) {
        let children_ok = self.i.children.engine_objects
            && self.i.children.config_map
            && self.i.children.deployment == Some(self.st.deployment);
        if !children_ok && !matches!(self.st.phase, Phase::Finished | Phase::Failed) {
            self.actions.push(Action::ApplyChildren);
        }
        let stabilization = dur(&deployed.upgrade.stabilization_period, Duration::from_secs(30));
        let readiness = dur(&deployed.upgrade.readiness_timeout, Duration::from_secs(300));
        let job = match &self.i.engine {
            EngineView::Up(j) => j.clone(),
            EngineView::Down(e) => {
                // A crashing pod says more than an unreachable REST API.
                self.st.error = Some(self.i.children.pod_problem.clone().unwrap_or_else(|| e.clone()));
                if self.st.running_since.is_none() && self.st.phase != Phase::RolledBack {
                    self.set_phase(Phase::Deploying);
                }
                self.maybe_rollback(readiness, "the engine never became reachable");
                self.soon(WATCH);
                return;
            }
        };
        if self.st.error.as_deref().is_some_and(|e| e.contains("unreachable")) {
            self.st.error = None;
        }
        self.st.job_state = Some(job.state.to_string());
        if let Some(p) = job.parallelism().and_then(|p| i32::try_from(p).ok()) {
            self.st.current_parallelism = Some(p);
        }
        let rolled_back = self.st.phase == Phase::RolledBack;
        match job.state {
            JobStatus::Standby => {
                // A blue-green deployment waits to be activated: from where it was deployed to start.
                self.st.running_since = None;
                let id = self.trigger_id("start", &[self.st.deployment]);
                if cutover::Activated::of(&job, &id) == cutover::Activated::Waiting {
                    let color = self.st.active_color.unwrap_or_default();
                    self.actions.push(Action::Activate { color, restore: self.st.deployed_from.clone(), id });
                }
                if !rolled_back {
                    self.set_phase(Phase::Deploying);
                }
                self.maybe_rollback(readiness, "the job did not become Stable");
                self.soon(FAST);
            }
            JobStatus::Running => {
                let since = match ts(&self.st.running_since) {
                    Some(s) => s,
                    None => {
                        self.st.running_since = Some(self.now());
                        self.i.now
                    }
                };
                let checkpointed = deployed.checkpointing.storage.is_none()
                    || job
                        .last_completed_checkpoint
                        .as_ref()
                        .is_some_and(|c| c.trigger_time.parse::<Timestamp>().ok().is_none_or(|t| t >= since));
                let stable = elapsed(self.i.now, since) >= stabilization && checkpointed;
                if stable {
                    if !rolled_back {
                        self.set_phase(Phase::Stable);
                    }
                    if self.st.last_stable_spec != self.st.reconciled_spec {
                        self.st.last_stable_spec = self.st.reconciled_spec.clone();
                    }
                    // An invalid spec's error stays as long as the spec is invalid.
                    if self.invalid.is_none() {
                        self.st.error = None;
                    }
                    self.soon(IDLE);
                } else {
                    if !rolled_back {
                        self.set_phase(Phase::Running);
                    }
                    let left = stabilization.saturating_sub(elapsed(self.i.now, since));
                    self.soon(left.max(FAST).min(WATCH));
                    self.maybe_rollback(readiness, "the job did not become Stable");
                }
            }
            JobStatus::Finished => {
                self.st.running_since = None;
                if !rolled_back {
                    self.set_phase(Phase::Finished);
                }
            }
            JobStatus::Failed | JobStatus::Canceled => {
                // Also a restore that failed (a missing, truncated or unreadable snapshot):
                // the engine reports it as FAILED with its message.
                self.st.running_since = None;
                let why = job.error.clone().unwrap_or_else(|| format!("the job is {}", job.state));
                let known = matches!(self.i.status.phase, Phase::Failed | Phase::RollingBack)
                    && self.i.status.error.as_deref().is_some_and(|e| e.contains(why.as_str()));
                if !known {
                    let what = if rolled_back { "the rolled-back job" } else { "the job" };
                    self.event(
                        true,
                        "JobFailed",
                        format!("{what} (deployment {}) is {}: {why}", self.st.deployment, job.state),
                    );
                }
                self.st.error = Some(why.clone());
                if rolled_back {
                    // The rollback's own deployment failed: nothing older to go back to.
                    self.set_phase(Phase::Failed);
                } else if !self.maybe_rollback(Duration::ZERO, &why) {
                    self.set_phase(Phase::Failed);
                }
            }
            JobStatus::Created | JobStatus::Restarting | JobStatus::Failing | JobStatus::Suspended => {
                // The job is (re)starting.
                self.st.running_since = None;
                if !rolled_back {
                    let phase = if self.st.phase == Phase::Stable { Phase::Running } else { self.st.phase };
                    let phase = if matches!(phase, Phase::Created | Phase::Running | Phase::Deploying) {
                        if job.state == JobStatus::Created { Phase::Deploying } else { Phase::Running }
                    } else {
                        phase
                    };
                    self.set_phase(phase);
                }
                self.maybe_rollback(readiness, "the job did not become Stable");
                self.soon(WATCH);
            }
        }
    }

    /// Rolls an upgrade back to the last stable spec once `readiness` has passed
    /// since it was deployed without the job becoming Stable.
    pub(super) fn maybe_rollback(&mut self, readiness: Duration, why: &str) -> bool {
        let Some(stable) = self.st.last_stable_spec.clone() else { return false };
        if self.st.reconciled_spec.as_ref() == Some(&stable) || self.st.phase == Phase::RolledBack {
            return false;
        }
        let Some(at) = ts(&self.st.deployed_at) else { return false };
        if elapsed(self.i.now, at) < readiness {
            self.soon(readiness - elapsed(self.i.now, at));
            return false;
        }
        let within = if readiness.is_zero() { String::new() } else { format!(" within {readiness:?}") };
        let msg = format!(
            "rolling back to the last stable spec from {}: {why}{within}",
            self.st.deployed_from.as_deref().unwrap_or("empty state"),
        );
        self.event(true, "RollingBack", msg.clone());
        self.st.error = Some(msg);
        let generation = self.st.reconciled_generation.unwrap_or(self.i.generation);
        self.begin(UpgradeKind::Rollback, &stable);
        if let Some(rec) = self.st.upgrade.as_mut() {
            rec.target_generation = generation;
        }
        true
    }
}
