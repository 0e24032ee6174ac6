//! Table-driven tests of the planner: every phase and the events that move it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::crd::{StreamJobSpec, StreamJobStatus};
use crate::engine::{CheckpointInfo, JobInfo, VertexInfo};

const T0: &str = "2026-11-30T12:00:00Z";

fn now(offset_secs: i64) -> Timestamp {
    T0.parse::<Timestamp>().unwrap().checked_add(jiff::SignedDuration::from_secs(offset_secs)).unwrap()
}

fn spec() -> StreamJobSpec {
    serde_json::from_value(serde_json::json!({
        "image": "sluice/engine:0.1.0",
        "sql": "INSERT INTO a SELECT * FROM b;",
        "parallelism": 2,
        "upgradeMode": "savepoint",
        "checkpointing": {"interval": "5s", "storage": "s3://b/chk"},
        "savepoints": {"directory": "s3://b/sp", "maxCount": 2},
        "upgrade": {"stabilizationPeriod": "30s", "readinessTimeout": "2m", "savepointTimeout": "1m"}
    }))
    .unwrap()
}

fn running(checkpoint_at: Option<&str>) -> EngineView {
    EngineView::Up(JobInfo {
        state: "RUNNING".into(),
        restarts: 0,
        vertices: vec![VertexInfo { parallelism: 2 }],
        last_completed_checkpoint: checkpoint_at.map(|t| CheckpointInfo {
            id: 3,
            kind: Some("CHECKPOINT".into()),
            trigger_time: Some(t.into()),
        }),
        error: None,
    })
}

fn state(s: &str) -> EngineView {
    EngineView::Up(JobInfo {
        state: s.into(),
        restarts: 1,
        vertices: vec![],
        last_completed_checkpoint: None,
        error: Some(format!("job is {s}")),
    })
}

fn children() -> ChildrenView {
    ChildrenView { engine_objects: true, pods: 3, deployment: Some(1), config_map: true, pod_problem: None }
}

fn gone() -> ChildrenView {
    ChildrenView { engine_objects: false, pods: 0, deployment: None, config_map: true, pod_problem: None }
}

/// A job deployed once (deployment 1) from `spec`, Stable.
fn deployed(spec: &StreamJobSpec) -> StreamJobStatus {
    let json = spec_json(spec);
    StreamJobStatus {
        phase: Phase::Stable,
        deployment: 1,
        reconciled_spec: Some(json.clone()),
        last_stable_spec: Some(json),
        reconciled_generation: Some(1),
        deployed_at: Some(T0.into()),
        running_since: Some(T0.into()),
        job_state: Some("RUNNING".into()),
        ..Default::default()
    }
}

/// An upgrade record of `kind` to `target`, at `step`, begun at T0.
fn record(kind: UpgradeKind, target: &StreamJobSpec, step: UpgradeStep, trigger: Option<&str>) -> UpgradeRecord {
    UpgradeRecord {
        kind,
        target_generation: 2,
        target_spec: spec_json(target),
        step,
        trigger_id: trigger.map(str::to_string),
        restore_from: None,
        started: T0.into(),
        note: None,
    }
}

struct Case<'a> {
    spec: &'a StreamJobSpec,
    status: &'a StreamJobStatus,
    engine: EngineView,
    trigger: Option<TriggerView>,
    children: ChildrenView,
    at: i64,
    generation: i64,
    validated: Result<String, String>,
    deleting: bool,
}

impl<'a> Case<'a> {
    fn new(spec: &'a StreamJobSpec, status: &'a StreamJobStatus) -> Case<'a> {
        Case {
            spec,
            status,
            engine: running(Some(T0)),
            trigger: None,
            children: children(),
            at: 60,
            generation: 1,
            validated: Ok(spec.sql.clone().unwrap_or_default()),
            deleting: false,
        }
    }

    fn plan(&self) -> Plan {
        plan(&Input {
            name: "clicks",
            now: now(self.at),
            generation: self.generation,
            deleting: self.deleting,
            spec: self.spec,
            validated: self.validated.clone(),
            status: self.status,
            engine: self.engine.clone(),
            trigger: self.trigger.clone(),
            children: self.children.clone(),
        })
    }
}

fn condition<'a>(p: &'a Plan, t: &str) -> &'a Condition {
    p.status.conditions.iter().find(|c| c.type_ == t).unwrap()
}

fn reasons(p: &Plan) -> Vec<&str> {
    p.events.iter().map(|e| e.reason.as_str()).collect()
}

#[test]
fn a_new_job_is_deployed_from_its_initial_savepoint() {
    let mut s = spec();
    s.initial_savepoint = Some("s3://b/sp/savepoint-x".into());
    let st = StreamJobStatus::default();
    let mut c = Case::new(&s, &st);
    c.engine = EngineView::Down("no engine pods are deployed".into());
    c.children = ChildrenView::default();
    let p = c.plan();
    assert_eq!(p.actions, vec![Action::ApplyChildren]);
    assert_eq!(p.status.phase, Phase::Deploying);
    assert_eq!(p.status.deployment, 1);
    assert_eq!(p.status.deployed_from.as_deref(), Some("s3://b/sp/savepoint-x"));
    assert_eq!(p.status.reconciled_spec, Some(spec_json(&s)));
    assert_eq!(p.status.observed_generation, Some(1));
    assert_eq!(condition(&p, "Reconciling").status, "True");
    assert_eq!(reasons(&p), vec!["Deploying", "Deployment"]);
}

#[test]
fn invalid_sql_on_a_new_job_stalls_and_deploys_nothing() {
    let s = spec();
    let st = StreamJobStatus::default();
    let mut c = Case::new(&s, &st);
    c.validated = Err("invalid spec: job.sql:1:8: unknown table b".into());
    let p = c.plan();
    assert!(p.actions.is_empty());
    assert_eq!(p.status.phase, Phase::Created);
    let stalled = condition(&p, "Stalled");
    assert_eq!((stalled.status.as_str(), stalled.reason.as_str()), ("True", "InvalidSpec"));
    assert!(stalled.message.contains("job.sql:1:8"));
    assert_eq!(p.events[0].reason, "InvalidSpec");
    assert!(p.events[0].warning);
}

#[test]
fn invalid_sql_on_a_running_job_keeps_the_last_valid_spec_running() {
    let s = spec();
    let st = deployed(&s);
    let mut changed = s.clone();
    changed.sql = Some("INSERT INTO nowhere SELEC".into());
    let mut c = Case::new(&changed, &st);
    c.validated = Err("invalid spec: job.sql:1:21: expected SELECT".into());
    c.generation = 2;
    let p = c.plan();
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert!(p.status.upgrade.is_none());
    assert_eq!(p.status.phase, Phase::Stable);
    assert_eq!(condition(&p, "Stalled").status, "True");
    assert_eq!(condition(&p, "Ready").status, "False");
    assert_eq!(p.status.observed_generation, Some(2));
}

#[test]
fn running_becomes_stable_after_the_stabilization_period_with_a_checkpoint() {
    let s = spec();
    let mut st = deployed(&s);
    st.phase = Phase::Running;
    st.last_stable_spec = None;
    st.running_since = Some(T0.into());
    // 10 s in: Running.
    let mut c = Case::new(&s, &st);
    c.at = 10;
    c.engine = running(Some("2026-11-30T12:00:05Z"));
    let p = c.plan();
    assert_eq!(p.status.phase, Phase::Running);
    assert!(p.requeue <= Duration::from_secs(3));
    // 40 s in, but no checkpoint since RUNNING: still Running.
    c.at = 40;
    c.engine = running(None);
    assert_eq!(c.plan().status.phase, Phase::Running);
    // 40 s in with a checkpoint: Stable, and the spec is the new rollback target.
    c.engine = running(Some("2026-11-30T12:00:35Z"));
    let p = c.plan();
    assert_eq!(p.status.phase, Phase::Stable);
    assert_eq!(p.status.last_stable_spec, st.reconciled_spec);
    assert_eq!(condition(&p, "Ready").status, "True");
    assert_eq!(reasons(&p), vec!["Stable"]);
}

#[test]
fn the_engine_states_map_to_phases() {
    let s = spec();
    let mut st = deployed(&s);
    st.last_stable_spec = st.reconciled_spec.clone();
    for (engine, phase) in [
        (state("FINISHED"), Phase::Finished),
        (state("FAILED"), Phase::Failed),
        (state("RESTARTING"), Phase::Running),
        (state("CREATED"), Phase::Deploying),
    ] {
        let mut c = Case::new(&s, &st);
        c.engine = engine.clone();
        let p = c.plan();
        assert_eq!(p.status.phase, phase, "{engine:?}");
    }
}

#[test]
fn a_sql_change_starts_a_savepoint_upgrade_recorded_before_the_trigger() {
    let s = spec();
    let st = deployed(&s);
    let mut changed = s.clone();
    changed.sql = Some("INSERT INTO a SELECT x FROM b;".into());
    let mut c = Case::new(&changed, &st);
    c.generation = 2;
    let p = c.plan();
    let rec = p.status.upgrade.clone().unwrap();
    assert_eq!((rec.kind, rec.step, rec.target_generation), (UpgradeKind::Upgrade, UpgradeStep::Stopping, 2));
    let id = format!("clicks-upgrade-2-{}", now(60).as_second());
    assert_eq!(rec.trigger_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        p.actions,
        vec![Action::TriggerSavepoint(SavepointRequest {
            trigger_id: id.clone(),
            target_directory: Some("s3://b/sp".into()),
            stop: true,
            drain: false
        })]
    );
    assert_eq!(p.status.phase, Phase::Upgrading);
}

#[test]
fn a_completed_upgrade_savepoint_deletes_the_old_pods_then_deploys_from_it() {
    let s = spec();
    let mut changed = s.clone();
    changed.parallelism = 3;
    let mut st = deployed(&s);
    st.upgrade = Some(record(UpgradeKind::Upgrade, &changed, UpgradeStep::Stopping, Some("clicks-upgrade-2-1")));
    let mut c = Case::new(&changed, &st);
    c.generation = 2;
    c.engine = state("FINISHED");
    c.trigger = Some(TriggerView::Completed("s3://b/sp/savepoint-clicks-upgrade-2-1".into()));
    let p = c.plan();
    let rec = p.status.upgrade.clone().unwrap();
    assert_eq!(rec.step, UpgradeStep::Stopped);
    assert_eq!(rec.restore_from.as_deref(), Some("s3://b/sp/savepoint-clicks-upgrade-2-1"));
    assert_eq!(p.actions, vec![Action::DeleteEngine]);
    assert_eq!(p.status.last_savepoint.as_ref().map(|s| s.trigger.as_str()), Some("upgrade"));

    // Pods still terminating: wait.
    let mut c2 = Case::new(&changed, &p.status);
    c2.generation = 2;
    c2.children =
        ChildrenView { engine_objects: false, pods: 2, deployment: None, config_map: true, pod_problem: None };
    c2.engine = EngineView::Down("gone".into());
    let p2 = c2.plan();
    assert!(p2.actions.is_empty());
    assert!(p2.status.upgrade.is_some());

    // Pods gone: the new deployment is recorded, then applied.
    c2.children = gone();
    let p3 = c2.plan();
    assert_eq!(p3.actions, vec![Action::ApplyChildren]);
    assert!(p3.status.upgrade.is_none());
    assert_eq!(p3.status.deployment, 2);
    assert_eq!(p3.status.deployed_from.as_deref(), Some("s3://b/sp/savepoint-clicks-upgrade-2-1"));
    assert_eq!(p3.status.reconciled_spec, Some(spec_json(&changed)));
    assert_eq!(p3.status.phase, Phase::Deploying);
    assert_eq!(p3.status.current_parallelism, Some(3));
}

#[test]
fn a_failed_savepoint_falls_back_to_the_newest_checkpoint() {
    let s = spec();
    let mut changed = s.clone();
    changed.parallelism = 1;
    let mut st = deployed(&s);
    st.upgrade = Some(record(UpgradeKind::Upgrade, &changed, UpgradeStep::Stopping, Some("t")));
    let mut c = Case::new(&changed, &st);
    c.trigger = Some(TriggerView::Failed("disk full".into()));
    let p = c.plan();
    let rec = p.status.upgrade.clone().unwrap();
    assert_eq!((rec.step, rec.restore_from.as_deref()), (UpgradeStep::Stopped, Some("latest")));
    assert!(rec.note.unwrap().contains("disk full"));
    assert!(reasons(&p).contains(&"SavepointFallback"));
    // A savepoint still in progress after savepointTimeout falls back the same way.
    c.trigger = Some(TriggerView::InProgress);
    c.at = 61;
    assert_eq!(c.plan().status.upgrade.unwrap().restore_from.as_deref(), Some("latest"));
    c.at = 30;
    let waiting = c.plan();
    assert_eq!(waiting.status.upgrade.unwrap().step, UpgradeStep::Stopping);
    assert!(waiting.actions.is_empty());
}

#[test]
fn without_a_fallback_a_failing_upgrade_is_aborted_and_held_back() {
    let mut s = spec();
    s.checkpointing.storage = None;
    let mut changed = s.clone();
    changed.parallelism = 1;
    let mut st = deployed(&s);
    st.upgrade = Some(record(UpgradeKind::Upgrade, &changed, UpgradeStep::Stopping, Some("t")));
    let mut c = Case::new(&changed, &st);
    c.generation = 2;
    c.trigger = Some(TriggerView::Failed("no space".into()));
    let p = c.plan();
    assert!(p.status.upgrade.is_none());
    assert!(p.actions.is_empty());
    assert!(p.status.error.clone().unwrap().contains("aborted"));
    assert_eq!(p.status.upgrade_retry_after.as_deref(), Some("2026-11-30T12:02:00Z"));
    // Held back until the retry time, then started again.
    let mut c2 = Case::new(&changed, &p.status);
    c2.generation = 2;
    c2.at = 90;
    assert!(c2.plan().status.upgrade.is_none());
    c2.at = 121;
    assert_eq!(c2.plan().status.upgrade.unwrap().step, UpgradeStep::Stopping);
}

#[test]
fn last_state_and_stateless_upgrades_stop_without_a_savepoint() {
    for (mode, restore) in [(UpgradeMode::LastState, Some("latest")), (UpgradeMode::Stateless, None)] {
        let mut s = spec();
        s.upgrade_mode = mode;
        let st = deployed(&s);
        let mut changed = s.clone();
        changed.sql = Some("INSERT INTO a SELECT 1 FROM b;".into());
        let mut c = Case::new(&changed, &st);
        c.generation = 2;
        let p = c.plan();
        let rec = p.status.upgrade.clone().unwrap();
        assert_eq!((rec.step, rec.restore_from.as_deref()), (UpgradeStep::Stopped, restore), "{mode:?}");
        assert_eq!(p.actions, vec![Action::DeleteEngine]);
    }
}

#[test]
fn a_restart_nonce_restarts_and_a_savepoint_nonce_only_snapshots() {
    let s = spec();
    let st = deployed(&s);
    let mut restart = s.clone();
    restart.restart_nonce = Some(7);
    let p = Case::new(&restart, &st).plan();
    assert_eq!(p.status.upgrade.unwrap().kind, UpgradeKind::Restart);

    let mut snap = s.clone();
    snap.savepoint_nonce = Some(3);
    let p = Case::new(&snap, &st).plan();
    assert!(p.status.upgrade.is_none());
    assert_eq!(p.status.savepoint_nonce, Some(3));
    assert_eq!(p.status.pending_savepoint.as_ref().map(|s| s.trigger.as_str()), Some("manual"));
    assert_eq!(
        p.actions,
        vec![Action::TriggerSavepoint(SavepointRequest {
            trigger_id: "clicks-manual-3".into(),
            target_directory: Some("s3://b/sp".into()),
            stop: false,
            drain: false
        })]
    );
    // Acted on once only.
    let again = Case::new(&snap, &p.status);
    let mut again_status = p.status.clone();
    again_status.pending_savepoint = None;
    let again = Case { status: &again_status, ..again };
    assert!(again.plan().actions.is_empty());
}

#[test]
fn periodic_savepoints_and_retention() {
    let mut s = spec();
    s.savepoints.interval = Some("10m".into());
    let mut st = deployed(&s);
    let p = Case::new(&s, &st).plan();
    assert!(p.actions.is_empty(), "not due yet: {:?}", p.actions);
    assert!(p.requeue <= Duration::from_secs(540));
    let mut c = Case::new(&s, &st);
    c.at = 601;
    let p = c.plan();
    assert_eq!(p.status.pending_savepoint.as_ref().map(|s| s.trigger.as_str()), Some("periodic"));
    // Completion adds it to the history; maxCount 2 disposes the oldest, never the newest.
    st.pending_savepoint = p.status.pending_savepoint.clone();
    st.savepoint_history = vec![
        SavepointInfo { location: "s3://b/sp/one".into(), time: T0.into(), trigger: "periodic".into() },
        SavepointInfo { location: "s3://b/sp/two".into(), time: T0.into(), trigger: "periodic".into() },
    ];
    let mut c = Case::new(&s, &st);
    c.at = 602;
    c.trigger = Some(TriggerView::Completed("s3://b/sp/three".into()));
    let p = c.plan();
    assert!(p.status.pending_savepoint.is_none());
    assert_eq!(p.actions, vec![Action::Dispose(vec!["s3://b/sp/one".into()])]);
    let kept: Vec<&str> = p.status.savepoint_history.iter().map(|s| s.location.as_str()).collect();
    assert_eq!(kept, vec!["s3://b/sp/two", "s3://b/sp/three"]);
    assert_eq!(p.status.last_savepoint.unwrap().location, "s3://b/sp/three");
}

#[test]
fn suspend_takes_a_savepoint_removes_the_pods_and_resume_restores_it() {
    let s = spec();
    let st = deployed(&s);
    let mut suspended = s.clone();
    suspended.state = DesiredState::Suspended;
    let p = Case::new(&suspended, &st).plan();
    let rec = p.status.upgrade.clone().unwrap();
    assert_eq!((rec.kind, rec.step), (UpgradeKind::Suspend, UpgradeStep::Stopping));
    // Savepoint done, pods gone: Suspended, the record kept for the resume.
    let mut st2 = p.status.clone();
    if let Some(u) = st2.upgrade.as_mut() {
        u.step = UpgradeStep::Stopped;
        u.restore_from = Some("s3://b/sp/savepoint-s".into());
    }
    let mut c = Case::new(&suspended, &st2);
    c.children = gone();
    c.engine = EngineView::Down("none".into());
    let p = c.plan();
    assert_eq!(p.status.phase, Phase::Suspended);
    assert!(p.actions.is_empty());
    assert_eq!(condition(&p, "Ready").status, "True");
    // Resume.
    let mut c = Case::new(&s, &p.status);
    c.children = gone();
    c.engine = EngineView::Down("none".into());
    let p = c.plan();
    assert_eq!(p.actions, vec![Action::ApplyChildren]);
    assert_eq!(p.status.deployed_from.as_deref(), Some("s3://b/sp/savepoint-s"));
    assert_eq!(p.status.phase, Phase::Deploying);
    assert!(reasons(&p).contains(&"Resuming"));
}

#[test]
fn an_upgrade_that_never_stabilizes_is_rolled_back_from_its_savepoint() {
    let s = spec();
    let mut bad = s.clone();
    bad.sql = Some("INSERT INTO a SELECT crash FROM b;".into());
    let mut st = deployed(&s);
    st.reconciled_spec = Some(spec_json(&bad));
    st.reconciled_generation = Some(2);
    st.deployment = 2;
    st.deployed_from = Some("s3://b/sp/savepoint-up".into());
    st.phase = Phase::Running;
    st.running_since = None;
    let mut c = Case::new(&bad, &st);
    c.generation = 2;
    c.engine = state("RESTARTING");
    c.at = 60;
    assert!(c.plan().status.upgrade.is_none(), "within readinessTimeout");
    c.at = 121;
    let p = c.plan();
    let rec = p.status.upgrade.clone().unwrap();
    assert_eq!((rec.kind, rec.step), (UpgradeKind::Rollback, UpgradeStep::Stopped));
    assert_eq!(rec.restore_from.as_deref(), Some("s3://b/sp/savepoint-up"));
    assert_eq!(rec.target_spec, spec_json(&s));
    assert_eq!(p.status.phase, Phase::RollingBack);
    assert_eq!(p.actions, vec![Action::DeleteEngine]);
    // Pods gone: the stable spec is redeployed and the failed generation is not retried.
    let mut c = Case::new(&bad, &p.status);
    c.generation = 2;
    c.children = gone();
    c.engine = EngineView::Down("none".into());
    let p = c.plan();
    assert_eq!(p.status.phase, Phase::RolledBack);
    assert_eq!(p.status.rolled_back_generation, Some(2));
    assert_eq!(p.status.reconciled_spec, Some(spec_json(&s)));
    assert_eq!(condition(&p, "Stalled").status, "True");
    let mut c = Case::new(&bad, &p.status);
    c.generation = 2;
    c.children = ChildrenView { deployment: Some(3), ..children() };
    let p2 = c.plan();
    assert!(p2.status.upgrade.is_none());
    assert_eq!(p2.status.phase, Phase::RolledBack);
}

#[test]
fn deletion_takes_a_savepoint_when_asked_and_never_deadlocks() {
    let mut s = spec();
    s.savepoints.on_deletion = true;
    let st = deployed(&s);
    let mut c = Case::new(&s, &st);
    c.deleting = true;
    let p = c.plan();
    assert_eq!(p.status.phase, Phase::Deleting);
    assert!(matches!(&p.actions[..], [Action::TriggerSavepoint(r)] if r.stop));
    let mut c2 = Case::new(&s, &p.status);
    c2.deleting = true;
    c2.trigger = Some(TriggerView::Completed("s3://b/sp/last".into()));
    assert_eq!(c2.plan().actions, vec![Action::RemoveFinalizer]);
    // The engine is gone: the finalizer goes, with a warning.
    c2.trigger = Some(TriggerView::Unknown);
    c2.engine = EngineView::Down("connection refused".into());
    let p = c2.plan();
    assert_eq!(p.actions, vec![Action::RemoveFinalizer]);
    assert!(reasons(&p).contains(&"DeletedWithoutSavepoint"));
    // Without onDeletion: straight away.
    let plain = spec();
    let plain_status = deployed(&plain);
    let mut c3 = Case::new(&plain, &plain_status);
    c3.deleting = true;
    assert_eq!(c3.plan().actions, vec![Action::RemoveFinalizer]);
}

#[test]
fn missing_children_are_applied_again_and_conditions_keep_their_times() {
    let s = spec();
    let st = deployed(&s);
    let mut c = Case::new(&s, &st);
    c.children =
        ChildrenView { engine_objects: false, pods: 0, deployment: None, config_map: false, pod_problem: None };
    assert!(c.plan().actions.contains(&Action::ApplyChildren));
    let first = Case::new(&s, &st).plan();
    let mut c = Case::new(&s, &first.status);
    c.at = 500;
    let later = c.plan();
    assert_eq!(later.status.conditions, first.status.conditions);
    assert_eq!(later.status, first.status, "a steady reconcile changes nothing");
}

#[test]
fn a_job_created_suspended_runs_nothing_until_it_is_set_running() {
    let mut s = spec();
    s.state = DesiredState::Suspended;
    let st = StreamJobStatus::default();
    let mut c = Case::new(&s, &st);
    c.engine = EngineView::Down("no engine pods are deployed".into());
    c.children = ChildrenView::default();
    let p = c.plan();
    assert!(p.actions.is_empty());
    assert_eq!(p.status.phase, Phase::Suspended);
    assert_eq!(p.status.deployment, 0);
    assert_eq!(reasons(&p), vec!["Suspended"]);
    let running = spec();
    let mut c = Case::new(&running, &p.status);
    c.engine = EngineView::Down("no engine pods are deployed".into());
    c.children = ChildrenView::default();
    let p = c.plan();
    assert_eq!(p.actions, vec![Action::ApplyChildren]);
    assert_eq!(p.status.deployment, 1);
}

#[test]
fn a_crashing_engine_pod_explains_the_error() {
    let s = spec();
    let mut st = deployed(&s);
    st.phase = Phase::Deploying;
    st.running_since = None;
    let mut c = Case::new(&s, &st);
    c.engine = EngineView::Down("the engine of job clicks is unreachable".into());
    c.children.pod_problem = Some(
        "pod clicks-coordinator-x: container engine exited with 1 (CrashLoopBackOff): error: bucket missing".into(),
    );
    let p = c.plan();
    assert_eq!(p.status.error, c.children.pod_problem);
    assert_eq!(p.status.phase, Phase::Deploying);
}
