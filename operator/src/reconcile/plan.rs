//! The pure heart of the operator: from (spec, status, observation) to the next
//! status, the actions that follow it, the Events, and when to look again.
//!
//! The status is a write-ahead log. The caller patches the returned status
//! first and only then runs the actions, so every destructive step is recorded
//! before it is taken:
//! - an upgrade records its target spec and savepoint `triggerId` (step `Stopping`)
//!   before the savepoint is requested; the engine's trigger is idempotent per id;
//! - it records where the new deployment restores from (step `Stopped`) before
//!   any engine pod is deleted;
//! - a new deployment's number, spec and restore point are recorded before its
//!   children are applied.
//!
//! An operator restarted at any point therefore repeats only idempotent steps.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{
    DesiredState, PendingSavepoint, Phase, SavepointInfo, StreamJobSpec, StreamJobStatus, UpgradeKind, UpgradeMode,
    UpgradeRecord, UpgradeStep, parse_duration,
};
use crate::engine::{JobInfo, SavepointRequest};

/// What observe found.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub name: &'a str,
    pub now: Timestamp,
    pub generation: i64,
    pub deleting: bool,
    pub spec: &'a StreamJobSpec,
    /// The resolved SQL, or why the spec is invalid (with the SQL's line and column).
    pub validated: Result<String, String>,
    pub status: &'a StreamJobStatus,
    pub engine: EngineView,
    /// The state of the savepoint in flight (`status.upgrade` or `status.pendingSavepoint`).
    pub trigger: Option<TriggerView>,
    pub children: ChildrenView,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EngineView {
    Up(JobInfo),
    Down(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TriggerView {
    /// The engine does not know the trigger, and storage holds no such savepoint.
    Unknown,
    InProgress,
    Completed(String),
    Failed(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChildrenView {
    /// The coordinator Deployment or the worker StatefulSet exists.
    pub engine_objects: bool,
    /// Engine pods that still exist (terminating or not).
    pub pods: usize,
    /// The `sluice.dev/deployment` of the coordinator Deployment's pod template, if any.
    pub deployment: Option<i64>,
    pub config_map: bool,
    /// Why an engine pod is failing (CrashLoopBackOff, an image or config error), if one is.
    pub pod_problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Apply every child for `status.reconciledSpec`, `status.deployment` and `status.deployedFrom`.
    ApplyChildren,
    /// Delete the coordinator Deployment and the worker StatefulSet (the ConfigMap stays).
    DeleteEngine,
    TriggerSavepoint(SavepointRequest),
    RemoveFinalizer,
    /// Delete these savepoints' data from storage (retention).
    Dispose(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub status: StreamJobStatus,
    pub actions: Vec<Action>,
    pub events: Vec<Event>,
    pub requeue: Duration,
}

/// Steps of an upgrade are polled this often (the pods' own changes also trigger a reconcile).
const FAST: Duration = Duration::from_millis(250);
const WATCH: Duration = Duration::from_secs(3);
const IDLE: Duration = Duration::from_secs(30);
const ABORT_BACKOFF: Duration = Duration::from_secs(60);

/// Plans one reconcile.
pub fn plan(input: &Input) -> Plan {
    let mut p = Planner {
        i: input,
        st: input.status.clone(),
        actions: Vec::new(),
        events: Vec::new(),
        requeue: IDLE,
        invalid: None,
    };
    p.run();
    p.finish()
}

struct Planner<'a> {
    i: &'a Input<'a>,
    st: StreamJobStatus,
    actions: Vec<Action>,
    events: Vec<Event>,
    requeue: Duration,
    invalid: Option<String>,
}

/// The spec as deployed: the object's spec with the SQL resolved into `sql`.
pub fn resolved_spec(spec: &StreamJobSpec, sql: &str) -> StreamJobSpec {
    let mut s = spec.clone();
    s.sql = Some(sql.to_string());
    s
}

/// The fields whose change restarts the job. Snapshot scheduling, upgrade
/// settings and the desired state are handled without a redeploy.
pub fn identity(spec: &StreamJobSpec) -> serde_json::Value {
    let mut s = spec.clone();
    s.state = DesiredState::Running;
    s.upgrade_mode = UpgradeMode::Stateless;
    s.upgrade = Default::default();
    s.savepoints = crate::crd::SavepointsSpec { directory: s.savepoints.directory.clone(), ..Default::default() };
    s.initial_savepoint = None;
    s.allow_non_restored_state = false;
    s.savepoint_nonce = None;
    serde_json::to_value(&s).unwrap_or_default()
}

pub fn spec_json(spec: &StreamJobSpec) -> String {
    serde_json::to_string(spec).unwrap_or_default()
}

pub fn parse_spec(json: &str) -> Option<StreamJobSpec> {
    serde_json::from_str(json).ok()
}

fn ts(s: &Option<String>) -> Option<Timestamp> {
    s.as_deref().and_then(|t| t.parse().ok())
}

fn elapsed(now: Timestamp, since: Timestamp) -> Duration {
    now.duration_since(since).try_into().unwrap_or(Duration::ZERO)
}

fn dur(s: &str, default: Duration) -> Duration {
    parse_duration(s).unwrap_or(default)
}

impl<'a> Planner<'a> {
    fn now(&self) -> String {
        self.i.now.round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_else(|_| self.i.now.to_string())
    }

    fn event(&mut self, warning: bool, reason: &str, message: String) {
        self.events.push(Event { warning, reason: reason.into(), message });
    }

    fn soon(&mut self, d: Duration) {
        self.requeue = self.requeue.min(d);
    }

    /// The spec to work with: the current one if it is valid, else the last deployed one.
    fn target(&self) -> Option<StreamJobSpec> {
        match &self.i.validated {
            Ok(sql) => Some(resolved_spec(self.i.spec, sql)),
            Err(_) => self.st.reconciled_spec.as_deref().and_then(parse_spec),
        }
    }

    fn deployed(&self) -> Option<StreamJobSpec> {
        self.st.reconciled_spec.as_deref().and_then(parse_spec)
    }

    fn run(&mut self) {
        if let Err(e) = &self.i.validated {
            self.invalid = Some(e.clone());
            if self.st.error.as_deref() != Some(e.as_str()) {
                self.event(true, "InvalidSpec", format!("{e}; the job keeps running its last valid spec"));
            }
            self.st.error = Some(e.clone());
        } else if self.st.error.as_deref().is_some_and(|e| e.starts_with("invalid spec")) {
            self.st.error = None;
        }
        if self.i.deleting {
            return self.delete();
        }
        if self.st.upgrade.is_some() {
            return self.upgrade();
        }
        self.pending_savepoint();
        let Some(target) = self.target() else {
            // Invalid and never deployed: nothing to run yet.
            return;
        };
        let Some(deployed) = self.deployed() else {
            if target.state == DesiredState::Suspended {
                // Created suspended: nothing runs until `state: running`.
                self.set_phase(Phase::Suspended);
                return;
            }
            let restore = target.initial_savepoint.clone();
            return self.deploy(&target, restore, Phase::Deploying);
        };
        if target.state == DesiredState::Suspended {
            return self.begin(UpgradeKind::Suspend, &deployed);
        }
        let rolled_back = self.st.rolled_back_generation == Some(self.i.generation);
        let held = ts(&self.st.upgrade_retry_after).is_some_and(|t| t > self.i.now);
        if held {
            self.soon(FAST.max(ts(&self.st.upgrade_retry_after).map(|t| elapsed(t, self.i.now)).unwrap_or(FAST)));
        }
        if identity(&target) != identity(&deployed) && !rolled_back && !held && self.invalid.is_none() {
            let only_nonce = {
                let mut a = identity(&target);
                let mut b = identity(&deployed);
                for v in [&mut a, &mut b] {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("restartNonce");
                    }
                }
                a == b
            };
            let kind = if only_nonce { UpgradeKind::Restart } else { UpgradeKind::Upgrade };
            return self.begin(kind, &target);
        }
        self.observe_running(&deployed);
        if self.st.upgrade.is_none() && self.st.pending_savepoint.is_none() {
            self.schedule_savepoints(&target);
        }
    }

    /// Records a new deployment, then applies it.
    fn deploy(&mut self, spec: &StreamJobSpec, restore: Option<String>, phase: Phase) {
        self.st.deployment += 1;
        self.st.reconciled_spec = Some(spec_json(spec));
        self.st.reconciled_generation = Some(self.i.generation);
        self.st.deployed_from = restore.clone();
        self.st.deployed_at = Some(self.now());
        self.st.running_since = None;
        self.st.job_state = None;
        self.st.current_parallelism = Some(spec.parallelism);
        self.st.upgrade = None;
        self.set_phase(phase);
        let from = restore.map(|r| format!(" from {r}")).unwrap_or_else(|| " with empty state".into());
        self.event(
            false,
            "Deployment",
            format!("deployment {} at parallelism {}{from}", self.st.deployment, spec.parallelism),
        );
        self.actions.push(Action::ApplyChildren);
        self.soon(WATCH);
    }

    fn set_phase(&mut self, phase: Phase) {
        if self.st.phase != phase {
            self.event(false, phase.as_str(), format!("phase {} → {}", self.st.phase, phase));
            self.st.phase = phase;
        }
    }

    /// Starts a stop-and-redeploy: the record is written before anything happens.
    fn begin(&mut self, kind: UpgradeKind, target: &StreamJobSpec) {
        // The old deployment is going away: do not re-apply it.
        self.actions.retain(|a| *a != Action::ApplyChildren);
        let mode = target.upgrade_mode;
        let dir = target.savepoints.directory.clone();
        let savepoint = match kind {
            UpgradeKind::Rollback => false,
            UpgradeKind::Suspend => mode != UpgradeMode::Stateless && dir.is_some(),
            _ => mode == UpgradeMode::Savepoint && dir.is_some(),
        };
        let job_alive = matches!(&self.i.engine, EngineView::Up(j) if j.state == "RUNNING");
        let (step, trigger_id, restore_from) = if savepoint && job_alive {
            // Unique per attempt: an aborted upgrade retried later must not get the failed savepoint back.
            let id = format!("{}-{}-{}-{}", self.i.name, kind_name(kind), self.i.generation, self.i.now.as_second());
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
            target_spec: spec_json(target),
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

    fn engine_state(&self) -> String {
        match &self.i.engine {
            EngineView::Up(j) => j.state.clone(),
            EngineView::Down(e) => format!("unreachable: {e}"),
        }
    }

    /// Where a deployment restores from when no savepoint is taken.
    fn fallback_restore(&self, target: &StreamJobSpec, kind: UpgradeKind) -> Option<String> {
        if kind == UpgradeKind::Rollback {
            return self.st.deployed_from.clone();
        }
        match target.upgrade_mode {
            UpgradeMode::Stateless => None,
            _ if target.checkpointing.storage.is_some() => Some("latest".into()),
            _ => self.st.last_savepoint.as_ref().map(|s| s.location.clone()),
        }
    }

    fn upgrade(&mut self) {
        let Some(rec) = self.st.upgrade.clone() else { return };
        let Some(target) = parse_spec(&rec.target_spec) else {
            self.st.upgrade = None;
            self.st.error = Some("the upgrade record's target spec is unreadable; the upgrade is dropped".into());
            return;
        };
        match rec.step {
            UpgradeStep::Stopping => self.stopping(rec, &target),
            UpgradeStep::Stopped => self.stopped(rec, target),
        }
    }

    fn stopping(&mut self, mut rec: UpgradeRecord, target: &StreamJobSpec) {
        let Some(trigger_id) = rec.trigger_id.clone() else {
            rec.step = UpgradeStep::Stopped;
            self.st.upgrade = Some(rec);
            return self.upgrade();
        };
        let timeout = dur(&target.upgrade.savepoint_timeout, Duration::from_secs(300));
        let timed_out = ts(&Some(rec.started.clone())).is_some_and(|s| elapsed(self.i.now, s) >= timeout);
        let failure = match &self.i.trigger {
            Some(TriggerView::Completed(location)) => {
                let location = location.clone();
                self.record_savepoint(&location, kind_name(rec.kind));
                rec.step = UpgradeStep::Stopped;
                rec.restore_from = Some(location);
                self.st.upgrade = Some(rec);
                return self.upgrade();
            }
            Some(TriggerView::Failed(e)) => Some(format!("the savepoint failed: {e}")),
            _ if timed_out => {
                Some(format!("the savepoint did not complete within {}", target.upgrade.savepoint_timeout))
            }
            Some(TriggerView::InProgress) => None,
            Some(TriggerView::Unknown) | None => {
                if let EngineView::Up(j) = &self.i.engine
                    && j.state == "RUNNING"
                {
                    self.actions.push(Action::TriggerSavepoint(SavepointRequest {
                        trigger_id,
                        target_directory: target.savepoints.directory.clone(),
                        stop: true,
                        drain: false,
                    }));
                }
                None
            }
        };
        let Some(failure) = failure else {
            self.soon(FAST);
            return;
        };
        let job_running = matches!(&self.i.engine, EngineView::Up(j) if j.state == "RUNNING");
        let fallback =
            self.fallback_restore(target, rec.kind).filter(|_| target.upgrade_mode != UpgradeMode::Stateless);
        match fallback {
            Some(from) => {
                let note = format!("{failure}; falling back to restoring from {from}");
                self.event(true, "SavepointFallback", note.clone());
                rec.step = UpgradeStep::Stopped;
                rec.restore_from = Some(from);
                rec.note = Some(note);
                self.st.upgrade = Some(rec);
                self.upgrade()
            }
            None if job_running => {
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
            }
            None => {
                let note = format!("{failure}; the job is not running, so it restarts with empty state");
                self.event(true, "SavepointFallback", note.clone());
                rec.step = UpgradeStep::Stopped;
                rec.restore_from = None;
                rec.note = Some(note);
                self.st.upgrade = Some(rec);
                self.upgrade()
            }
        }
    }

    fn stopped(&mut self, rec: UpgradeRecord, target: StreamJobSpec) {
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
                self.event(
                    false,
                    "Resuming",
                    format!("resuming from {}", rec.restore_from.as_deref().unwrap_or("nothing (empty state)")),
                );
                self.deploy(&spec, rec.restore_from, Phase::Deploying);
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

    /// The steady state: follow the engine, detect Stable, Finished, Failed, and roll back.
    fn observe_running(&mut self, deployed: &StreamJobSpec) {
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
        self.st.job_state = Some(job.state.clone());
        if let Some(p) = job.parallelism() {
            self.st.current_parallelism = Some(p);
        }
        let rolled_back = self.st.phase == Phase::RolledBack;
        match job.state.as_str() {
            "RUNNING" => {
                let since = match ts(&self.st.running_since) {
                    Some(s) => s,
                    None => {
                        self.st.running_since = Some(self.now());
                        self.i.now
                    }
                };
                let checkpointed = deployed.checkpointing.storage.is_none()
                    || job.last_completed_checkpoint.as_ref().is_some_and(|c| {
                        c.trigger_time.as_deref().and_then(|t| t.parse::<Timestamp>().ok()).is_none_or(|t| t >= since)
                    });
                let stable = elapsed(self.i.now, since) >= stabilization && checkpointed;
                if stable {
                    if !rolled_back {
                        self.set_phase(Phase::Stable);
                    }
                    if self.st.last_stable_spec != self.st.reconciled_spec {
                        self.st.last_stable_spec = self.st.reconciled_spec.clone();
                    }
                    if self.st.error.as_deref().is_some_and(|e| !e.starts_with("invalid spec")) {
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
            "FINISHED" => {
                self.st.running_since = None;
                if !rolled_back {
                    self.set_phase(Phase::Finished);
                }
            }
            "FAILED" | "CANCELED" => {
                self.st.running_since = None;
                let why = job.error.clone().unwrap_or_else(|| format!("the job is {}", job.state));
                self.st.error = Some(why.clone());
                if !self.maybe_rollback(Duration::ZERO, &why) && !rolled_back {
                    self.set_phase(Phase::Failed);
                }
            }
            _ => {
                // CREATED, RESTARTING, FAILING: the job is (re)starting.
                self.st.running_since = None;
                if !rolled_back {
                    let phase = if self.st.phase == Phase::Stable { Phase::Running } else { self.st.phase };
                    let phase = if matches!(phase, Phase::Created | Phase::Running | Phase::Deploying) {
                        if job.state == "CREATED" { Phase::Deploying } else { Phase::Running }
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
    fn maybe_rollback(&mut self, readiness: Duration, why: &str) -> bool {
        let Some(stable) = self.st.last_stable_spec.clone() else { return false };
        if self.st.reconciled_spec.as_deref() == Some(stable.as_str()) || self.st.phase == Phase::RolledBack {
            return false;
        }
        let Some(at) = ts(&self.st.deployed_at) else { return false };
        if elapsed(self.i.now, at) < readiness {
            self.soon(readiness - elapsed(self.i.now, at));
            return false;
        }
        let Some(spec) = parse_spec(&stable) else { return false };
        let msg = format!(
            "rolling back to the last stable spec from {}: {why} within {:?}",
            self.st.deployed_from.as_deref().unwrap_or("empty state"),
            readiness
        );
        self.event(true, "RollingBack", msg.clone());
        self.st.error = Some(msg);
        let generation = self.st.reconciled_generation.unwrap_or(self.i.generation);
        self.begin(UpgradeKind::Rollback, &spec);
        if let Some(rec) = self.st.upgrade.as_mut() {
            rec.target_generation = generation;
        }
        true
    }

    /// Periodic and nonce-triggered savepoints, which stop nothing.
    fn schedule_savepoints(&mut self, spec: &StreamJobSpec) {
        let Some(dir) = spec.savepoints.directory.clone() else { return };
        let running = matches!(&self.i.engine, EngineView::Up(j) if j.state == "RUNNING");
        let nonce = self.i.spec.savepoint_nonce;
        let trigger = if nonce.is_some() && nonce != self.st.savepoint_nonce {
            self.st.savepoint_nonce = nonce;
            Some(("manual", format!("{}-manual-{}", self.i.name, nonce.unwrap_or_default())))
        } else if let Some(interval) = spec.savepoints.interval.as_deref().and_then(parse_duration) {
            let last = self.st.last_savepoint.as_ref().and_then(|s| s.time.parse::<Timestamp>().ok());
            let base = last.into_iter().chain(ts(&self.st.deployed_at)).max();
            match base {
                Some(b) if elapsed(self.i.now, b) >= interval => Some((
                    "periodic",
                    format!("{}-periodic-{}-{}", self.i.name, self.st.deployment, self.i.now.as_second()),
                )),
                Some(b) => {
                    self.soon(interval - elapsed(self.i.now, b));
                    None
                }
                None => None,
            }
        } else {
            None
        };
        let Some((kind, id)) = trigger else { return };
        if !running {
            if kind == "manual" {
                self.event(true, "SavepointSkipped", "savepointNonce changed, but the job is not RUNNING".into());
            }
            return;
        }
        self.st.pending_savepoint =
            Some(PendingSavepoint { trigger_id: id.clone(), trigger: kind.into(), started: self.now() });
        self.actions.push(Action::TriggerSavepoint(SavepointRequest {
            trigger_id: id,
            target_directory: Some(dir),
            stop: false,
            drain: false,
        }));
        self.soon(FAST);
    }

    fn pending_savepoint(&mut self) {
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
            Some(TriggerView::Unknown) | None if !timed_out => {
                // Not known yet (the trigger may not have reached the engine): send it again.
                if let Some(dir) = self.deployed().and_then(|s| s.savepoints.directory) {
                    self.actions.push(Action::TriggerSavepoint(SavepointRequest {
                        trigger_id: p.trigger_id.clone(),
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
    fn record_savepoint(&mut self, location: &str, trigger: &str) {
        let info = SavepointInfo { location: location.into(), time: self.now(), trigger: trigger.into() };
        if self.st.savepoint_history.iter().all(|s| s.location != location) {
            self.st.savepoint_history.push(info.clone());
        }
        self.st.last_savepoint = Some(info);
        let Some(spec) = self.target() else { return };
        let max_count = usize::try_from(spec.savepoints.max_count.max(1)).unwrap_or(1);
        let max_age = spec.savepoints.max_age.as_deref().and_then(parse_duration);
        let keep = [self.st.deployed_from.clone(), self.st.upgrade.as_ref().and_then(|u| u.restore_from.clone())];
        let n = self.st.savepoint_history.len();
        let mut dispose = Vec::new();
        let mut kept = Vec::new();
        for (idx, s) in self.st.savepoint_history.drain(..).enumerate() {
            let newest = idx + 1 == n;
            let too_many = n - idx > max_count;
            let too_old =
                max_age.is_some_and(|a| s.time.parse::<Timestamp>().is_ok_and(|t| elapsed(self.i.now, t) > a));
            let protected = keep.iter().flatten().any(|k| *k == s.location);
            if !newest && !protected && (too_many || too_old) {
                dispose.push(s.location);
            } else {
                kept.push(s);
            }
        }
        self.st.savepoint_history = kept;
        if !dispose.is_empty() {
            self.actions.push(Action::Dispose(dispose));
        }
    }

    fn delete(&mut self) {
        self.set_phase(Phase::Deleting);
        let Some(spec) = self.deployed() else {
            self.actions.push(Action::RemoveFinalizer);
            return;
        };
        let running = matches!(&self.i.engine, EngineView::Up(j) if j.state == "RUNNING");
        let wanted = spec.savepoints.on_deletion && spec.savepoints.directory.is_some();
        match (&self.st.pending_savepoint, &self.i.trigger) {
            (Some(p), Some(TriggerView::Completed(location))) if p.trigger == "deletion" => {
                let location = location.clone();
                self.st.pending_savepoint = None;
                self.record_savepoint(&location, "deletion");
                self.event(false, "SavepointCompleted", format!("deletion savepoint at {location}"));
                self.actions.retain(|a| !matches!(a, Action::Dispose(_)));
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
                                trigger_id: p.trigger_id.clone(),
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
                let id = format!("{}-deletion-{}", self.i.name, self.st.deployment);
                self.st.pending_savepoint =
                    Some(PendingSavepoint { trigger_id: id.clone(), trigger: "deletion".into(), started: self.now() });
                self.actions.push(Action::TriggerSavepoint(SavepointRequest {
                    trigger_id: id,
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

    fn finish(mut self) -> Plan {
        self.st.observed_generation = Some(self.i.generation);
        self.st.conditions =
            conditions(&self.st, self.invalid.as_deref(), self.i.generation, self.i.now, &self.i.status.conditions);
        Plan { status: self.st, actions: self.actions, events: self.events, requeue: self.requeue }
    }
}

fn kind_name(k: UpgradeKind) -> &'static str {
    match k {
        UpgradeKind::Upgrade => "upgrade",
        UpgradeKind::Suspend => "suspend",
        UpgradeKind::Restart => "restart",
        UpgradeKind::Rollback => "rollback",
    }
}

fn mode_name(m: UpgradeMode) -> &'static str {
    match m {
        UpgradeMode::Stateless => "stateless",
        UpgradeMode::Savepoint => "savepoint",
        UpgradeMode::LastState => "last-state",
    }
}

/// kstatus conditions: `Ready`, `Reconciling` and `Stalled`, each with
/// `observedGeneration`. A condition keeps its `lastTransitionTime` until its
/// status changes, so a reconcile never rewrites a timestamp for nothing.
pub fn conditions(
    st: &StreamJobStatus,
    invalid: Option<&str>,
    generation: i64,
    now: Timestamp,
    previous: &[Condition],
) -> Vec<Condition> {
    let phase = st.phase;
    let ready = matches!(phase, Phase::Stable | Phase::Finished | Phase::Suspended) && invalid.is_none();
    let reconciling = matches!(
        phase,
        Phase::Created | Phase::Deploying | Phase::Running | Phase::Upgrading | Phase::RollingBack | Phase::Deleting
    ) && invalid.is_none();
    let (stalled, stalled_reason, stalled_msg) = match (invalid, phase) {
        (Some(e), _) => (true, "InvalidSpec", e.to_string()),
        (None, Phase::Failed) => (true, "Failed", st.error.clone().unwrap_or_else(|| "the job failed".into())),
        (None, Phase::RolledBack) => {
            (true, "RolledBack", st.error.clone().unwrap_or_else(|| "the upgrade was rolled back".into()))
        }
        _ => (false, phase.as_str(), String::new()),
    };
    let make = |type_: &str, status: bool, reason: &str, message: String| {
        let status = if status { "True" } else { "False" }.to_string();
        let last = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| Time(now.round(jiff::Unit::Second).unwrap_or(now)));
        Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message,
            observed_generation: Some(generation),
            last_transition_time: last,
        }
    };
    vec![
        make("Ready", ready, phase.as_str(), format!("phase {phase}")),
        make(
            "Reconciling",
            reconciling,
            phase.as_str(),
            if reconciling { format!("phase {phase}") } else { String::new() },
        ),
        make("Stalled", stalled, stalled_reason, stalled_msg),
    ]
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
