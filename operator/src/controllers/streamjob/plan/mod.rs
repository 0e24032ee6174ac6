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
//! - a savepoint that fails or outlives `savepointTimeout` is not given up while the
//!   old deployment could still complete and commit it (the engine keeps handling
//!   acknowledgements after SIGTERM): step `Fencing` removes the old pods first, and
//!   only once every one is gone is storage asked whether the savepoint exists; it is
//!   restored if it does, else the fallback (`latest`, the last savepoint, or empty);
//! - a new deployment's number, spec and restore point are recorded before its
//!   children are applied.
//!
//! Savepoint trigger ids are derived from the record (the job's name and a prefix of its
//! uid, the kind, the target generation and `savepointTriggers`, a counter in the
//! status), never from the clock, so two reconciles planned from the same status ask for
//! the same savepoint, and no other job object (the same name in another namespace, or
//! re-created) ever asks for it. The
//! caller writes the status with the resourceVersion it planned from, so a plan from a
//! stale status fails before any of its actions is taken.
//!
//! An operator restarted at any point therefore repeats only idempotent steps.
//!
//! A job that has never run (`neverRan`: its first restore failed, or its pods never
//! started) has committed nothing, and the engine's `latest` would start it empty, as
//! it records where a run started only once the restore succeeded. Until it runs, every
//! redeploy restores `spec.initialSavepoint`, and changing that field (or
//! `allowNonRestoredState`) redeploys; afterwards they are history, as in Flink's operator.

use std::time::Duration;

use jiff::Timestamp;

use crate::crd::{
    Color, CutoverRecord, CutoverReport, CutoverStep, DeployedSpec, DesiredState, PendingSavepoint, Phase,
    SavepointInfo, StrategyType, StreamJobSpec, StreamJobStatus, UpgradeKind, UpgradeMode, UpgradeRecord, UpgradeStep,
    parse_duration,
};
use crate::error::InvalidSpec;
use sluice_api::rest::{Job, JobStatus, SavepointRequest};

mod conditions;
mod cutover;
mod delete;
mod running;
mod savepoints;
#[cfg(test)]
mod tests;
mod upgrade;

pub use conditions::conditions;
use conditions::reports_invalid_spec;

/// What observe found.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub name: &'a str,
    /// The StreamJob's `metadata.uid`: trigger ids carry a prefix of it, so that no other
    /// job object (same name in another namespace, or re-created) shares one.
    pub uid: &'a str,
    pub now: Timestamp,
    pub generation: i64,
    pub deleting: bool,
    pub spec: &'a StreamJobSpec,
    /// The spec with its SQL resolved, or why it is invalid (with the SQL's line and column).
    pub validated: Result<DeployedSpec, InvalidSpec>,
    pub status: &'a StreamJobStatus,
    pub engine: EngineView,
    /// The state of the savepoint in flight (`status.upgrade`, `status.pendingSavepoint`,
    /// or the cutover's stop savepoint of either color).
    pub trigger: Option<TriggerView>,
    /// The children and the engine of the color that runs the job (`status.activeColor`).
    pub children: ChildrenView,
    /// The other color's, during a blue-green cutover; empty and `Down` otherwise.
    pub other_children: ChildrenView,
    pub other_engine: EngineView,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EngineView {
    Up(Box<Job>),
    Down(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TriggerView {
    /// The engine does not know the trigger, and storage holds no such savepoint.
    Unknown,
    InProgress,
    Completed(String),
    Failed(String),
    /// The engine does not know the trigger, and storage could not be read.
    Unreadable(String),
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
    /// The coordinator waits to be activated (`--standby`): it can hand over to another
    /// color, and take over again.
    pub standby: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Apply every child for `status.reconciledSpec`, `status.deployment` and `status.deployedFrom`.
    ApplyChildren,
    /// Delete the coordinator Deployment and the worker StatefulSet (the ConfigMap stays).
    DeleteEngine,
    TriggerSavepoint(SavepointRequest),
    RemoveFinalizer,
    /// Delete these savepoints' data from storage (retention); each lies under one of
    /// `roots` (the job's savepoint directory and checkpoint storage), which apply checks again.
    Dispose {
        locations: Vec<String>,
        roots: Vec<String>,
    },
    /// Apply a color's children for `spec`, as deployment `deployment`, its coordinator
    /// in standby checking `restore` (blue-green).
    ApplyColor {
        color: Color,
        spec: Box<DeployedSpec>,
        deployment: i64,
        restore: Option<String>,
    },
    /// Delete every child of a color: its engine objects, Services, budget and ConfigMap.
    DeleteColor(Color),
    /// Activate a color's standby coordinator from `restore` (a snapshot, `latest`, or
    /// empty state when `None`).
    Activate {
        color: Color,
        restore: Option<String>,
        /// Makes the call idempotent; the engine reports the activation it runs from by it.
        id: String,
    },
    /// A savepoint of a color's job (the cutover's stops); `TriggerSavepoint` is the active color's.
    TriggerSavepointOn(Color, SavepointRequest),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEvent {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub status: StreamJobStatus,
    pub actions: Vec<Action>,
    pub events: Vec<PlannedEvent>,
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
    events: Vec<PlannedEvent>,
    requeue: Duration,
    invalid: Option<String>,
}

/// The fields whose change restarts the job. Snapshot scheduling, upgrade
/// settings and the desired state are handled without a redeploy; the first start
/// ([`first_start`]) only while the job has never run.
pub fn identity(spec: &StreamJobSpec) -> serde_json::Value {
    let mut s = spec.clone();
    s.state = DesiredState::Running;
    s.upgrade_mode = UpgradeMode::Stateless;
    s.upgrade = Default::default();
    s.upgrade_strategy = Default::default();
    // What the autoscaler decides reaches the deployment as the effective spec's
    // parallelism and overrides; its settings alone restart nothing.
    s.autoscaler = Default::default();
    s.savepoints = crate::crd::SavepointsSpec { directory: s.savepoints.directory.clone(), ..Default::default() };
    s.initial_savepoint = None;
    s.allow_non_restored_state = false;
    s.savepoint_nonce = None;
    serde_json::to_value(&s).unwrap_or_default()
}

/// How the job's first run starts: `initialSavepoint` and `allowNonRestoredState`.
pub fn first_start(spec: &StreamJobSpec) -> (Option<&str>, bool) {
    (spec.initial_savepoint.as_deref(), spec.allow_non_restored_state)
}

/// Whether the engine's view shows that a deployment started: it ran, restarted or
/// completed a checkpoint. `CREATED` (still restoring), `STANDBY` (not activated yet)
/// and a `FAILED` with no restart and no checkpoint (a restore that failed) do not.
fn started(job: &Job) -> bool {
    !matches!(job.state, JobStatus::Created | JobStatus::Failed | JobStatus::Standby)
        || job.restarts > 0
        || job.last_completed_checkpoint.is_some()
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
        self.events.push(PlannedEvent { warning, reason: reason.into(), message });
    }

    fn soon(&mut self, d: Duration) {
        self.requeue = self.requeue.min(d);
    }

    /// The spec to work with: the current one if it is valid, else the last deployed one.
    fn target(&self) -> Option<DeployedSpec> {
        match &self.i.validated {
            Ok(spec) => Some(spec.clone()),
            Err(_) => self.st.reconciled_spec.clone(),
        }
    }

    fn deployed(&self) -> Option<DeployedSpec> {
        self.st.reconciled_spec.clone()
    }

    fn run(&mut self) {
        match &self.i.validated {
            Err(e) => {
                let e = e.to_string();
                if self.st.error.as_deref() != Some(e.as_str()) {
                    self.event(true, "InvalidSpec", format!("{e}; the job keeps running its last valid spec"));
                }
                self.st.error = Some(e.clone());
                self.invalid = Some(e);
            }
            // The spec is valid again: the error it was reported with goes.
            Ok(_) if self.st.error.as_deref().is_some_and(|e| reports_invalid_spec(&self.i.status.conditions, e)) => {
                self.st.error = None;
            }
            Ok(_) => {}
        }
        self.note_started();
        if self.i.deleting {
            return self.delete();
        }
        if self.st.upgrade.is_some() {
            return self.upgrade();
        }
        if self.st.cutover.is_some() {
            return self.cutover();
        }
        // What an interrupted cutover left of the other color (its record is gone).
        let other = &self.i.other_children;
        if other.engine_objects || other.config_map {
            let color = self.st.active_color.unwrap_or_default().other();
            self.actions.push(Action::DeleteColor(color));
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
            self.st.never_ran = true;
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
        // A first start that failed is fixed by correcting it.
        let first_start_changed = self.st.never_ran && first_start(&target) != first_start(&deployed);
        let changed = identity(&target) != identity(&deployed) || first_start_changed;
        if changed && !rolled_back && !held && self.invalid.is_none() {
            let only_nonce = !first_start_changed && {
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
            if target.upgrade_strategy.type_ == StrategyType::BlueGreen {
                match self.cannot_cut_over() {
                    None => return self.begin_cutover(&target),
                    Some(why) => self.event(
                        true,
                        "CutoverSkipped",
                        format!(
                            "{why}, so this change rolls out in place (upgradeMode {})",
                            mode_name(target.upgrade_mode)
                        ),
                    ),
                }
            }
            return self.begin(kind, &target);
        }
        self.observe_running(&deployed);
        if self.st.upgrade.is_none() && self.st.pending_savepoint.is_none() {
            self.schedule_savepoints(&target);
        }
    }

    /// Records a new deployment, then applies it.
    fn deploy(&mut self, spec: &DeployedSpec, restore: Option<String>, phase: Phase) {
        self.st.deployment += 1;
        self.st.reconciled_spec = Some(spec.clone());
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

    /// Clears `neverRan` once the engine shows that the current deployment started.
    fn note_started(&mut self) {
        if self.st.never_ran
            && self.i.children.deployment == Some(self.st.deployment)
            && matches!(&self.i.engine, EngineView::Up(j) if started(j))
        {
            self.st.never_ran = false;
        }
    }

    /// A trigger id of this job object (see [`crate::trigger_id`]).
    fn trigger_id(&self, kind: &str, parts: &[i64]) -> String {
        crate::trigger_id::job(self.i.name, self.i.uid, kind, parts)
    }

    /// The number of the next savepoint trigger, counted in the status (see `savepointTriggers`).
    fn next_trigger(&mut self) -> i64 {
        self.st.savepoint_triggers += 1;
        self.st.savepoint_triggers
    }

    fn set_phase(&mut self, phase: Phase) {
        if self.st.phase != phase {
            self.event(false, phase.as_str(), format!("phase {} → {}", self.st.phase, phase));
            self.st.phase = phase;
        }
    }

    /// Whether the engine answers and the job is RUNNING: only then can it take a savepoint.
    fn engine_running(&self) -> bool {
        matches!(&self.i.engine, EngineView::Up(j) if j.state == JobStatus::Running)
    }

    fn engine_state(&self) -> String {
        match &self.i.engine {
            EngineView::Up(j) => j.state.to_string(),
            EngineView::Down(e) => format!("unreachable: {e}"),
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
