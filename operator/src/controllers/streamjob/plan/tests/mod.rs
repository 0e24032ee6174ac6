//! Table-driven tests of the planner: every phase and the events that move it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::*;
use crate::crd::{StreamJobSpec, StreamJobStatus};
use sluice_api::rest::{Checkpoint, SnapshotKind, SnapshotStatus, Vertex};

const T0: &str = "2026-11-30T12:00:00Z";
/// The job's `metadata.uid`; trigger ids carry its first 8 characters.
const UID: &str = "3f2a9c1e-5b7d-4e21-9a0c-6d8e1f2b3c4d";

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

/// `GET /v1/job` of the job: `state`, with `restarts`, the vertices' parallelism,
/// the last completed checkpoint's trigger time and the error.
fn job(
    state: JobStatus,
    restarts: u64,
    parallelism: &[usize],
    checkpoint_at: Option<&str>,
    error: Option<String>,
) -> Job {
    Job {
        id: UID.into(),
        name: "clicks".into(),
        state,
        start_time: T0.into(),
        end_time: None,
        duration_ms: 0,
        restarts,
        vertices: parallelism
            .iter()
            .enumerate()
            .map(|(id, &parallelism)| Vertex {
                id,
                uid: format!("v{id}"),
                name: format!("v{id}"),
                parallelism,
                inputs: vec![],
                keyed: false,
                splits: None,
            })
            .collect(),
        max_parallelism: 128,
        data_policy: None,
        last_completed_checkpoint: checkpoint_at.map(|t| Checkpoint {
            id: 3,
            kind: SnapshotKind::Checkpoint,
            status: SnapshotStatus::Completed,
            trigger_time: t.into(),
            duration_ms: 0,
            size_bytes: 0,
            written_bytes: 0,
            alignment_ms: 0,
            location: "s3://b/chk/chk-3".into(),
            failure: None,
            acks: Vec::new(),
        }),
        error,
        standby: None,
        activation: None,
    }
}

fn running(checkpoint_at: Option<&str>) -> EngineView {
    EngineView::Up(Box::new(job(JobStatus::Running, 0, &[2], checkpoint_at, None)))
}

fn state(s: JobStatus) -> EngineView {
    EngineView::Up(Box::new(job(s, 1, &[], None, Some(format!("job is {s}")))))
}

/// The engine's view of a job that failed without ever running (restarts 0, no
/// checkpoint), as after a restore that failed.
fn failed(message: &str) -> EngineView {
    EngineView::Up(Box::new(job(JobStatus::Failed, 0, &[], None, Some(message.into()))))
}

fn children() -> ChildrenView {
    ChildrenView {
        engine_objects: true,
        pods: 3,
        deployment: Some(1),
        config_map: true,
        pod_problem: None,
        standby: false,
    }
}

fn gone() -> ChildrenView {
    ChildrenView {
        engine_objects: false,
        pods: 0,
        deployment: None,
        config_map: true,
        pod_problem: None,
        standby: false,
    }
}

/// Validation's verdict on SQL that does not compile.
fn invalid_sql(sql: &str) -> InvalidSpec {
    InvalidSpec::Job(std::sync::Arc::new(sluice_job::compile(sql, "job.sql").unwrap_err()))
}

/// `spec` as the status records it, with its own SQL.
fn recorded(spec: &StreamJobSpec) -> DeployedSpec {
    DeployedSpec::resolve(spec, spec.sql.as_deref().unwrap_or_default())
}

/// A job deployed once (deployment 1) from `spec`, Stable.
fn deployed(spec: &StreamJobSpec) -> StreamJobStatus {
    let spec = recorded(spec);
    StreamJobStatus {
        phase: Phase::Stable,
        deployment: 1,
        reconciled_spec: Some(spec.clone()),
        last_stable_spec: Some(spec),
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
        target_spec: recorded(target),
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
    validated: Result<DeployedSpec, InvalidSpec>,
    deleting: bool,
    uid: &'a str,
    other_children: ChildrenView,
    other_engine: EngineView,
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
            validated: Ok(recorded(spec)),
            deleting: false,
            uid: UID,
            other_children: ChildrenView { config_map: false, ..gone() },
            other_engine: EngineView::Down("no cutover in flight".into()),
        }
    }

    fn plan(&self) -> Plan {
        plan(&Input {
            name: "clicks",
            uid: self.uid,
            now: now(self.at),
            generation: self.generation,
            deleting: self.deleting,
            spec: self.spec,
            validated: self.validated.clone(),
            status: self.status,
            engine: self.engine.clone(),
            trigger: self.trigger.clone(),
            children: self.children.clone(),
            other_children: self.other_children.clone(),
            other_engine: self.other_engine.clone(),
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
    assert_eq!(p.status.reconciled_spec, Some(recorded(&s)));
    assert_eq!(p.status.observed_generation, Some(1));
    assert_eq!(condition(&p, "Reconciling").status, "True");
    assert_eq!(reasons(&p), vec!["Deploying", "Deployment"]);
}

#[test]
fn invalid_sql_on_a_new_job_stalls_and_deploys_nothing() {
    let s = spec();
    let st = StreamJobStatus::default();
    let mut c = Case::new(&s, &st);
    c.validated = Err(invalid_sql("INSERT INTO a SELECT * FROM b;"));
    let p = c.plan();
    assert!(p.actions.is_empty());
    assert_eq!(p.status.phase, Phase::Created);
    let stalled = condition(&p, "Stalled");
    assert_eq!((stalled.status.as_str(), stalled.reason.as_str()), ("True", "InvalidSpec"));
    assert!(stalled.message.starts_with("invalid spec: job.sql:1:"), "{}", stalled.message);
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
    c.validated = Err(invalid_sql("INSERT INTO nowhere SELEC"));
    c.generation = 2;
    let p = c.plan();
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert!(p.status.upgrade.is_none());
    assert_eq!(p.status.phase, Phase::Stable);
    assert_eq!(condition(&p, "Stalled").status, "True");
    assert_eq!(condition(&p, "Ready").status, "False");
    assert_eq!(p.status.observed_generation, Some(2));
}

/// The error of an invalid spec stays while the spec is invalid (also once Stable), and
/// goes when it is valid again; an error of another kind is not cleared by a valid spec.
#[test]
fn an_invalid_specs_error_lasts_as_long_as_the_spec_is_invalid() {
    let s = spec();
    let st = deployed(&s);
    let mut c = Case::new(&s, &st);
    let error = invalid_sql("INSERT INTO nowhere SELEC");
    c.validated = Err(error.clone());
    c.generation = 2;
    let invalid = c.plan();
    assert_eq!(invalid.status.phase, Phase::Stable);
    assert_eq!(invalid.status.error, Some(error.to_string()));
    let mut again = Case::new(&s, &invalid.status);
    again.validated = c.validated.clone();
    again.generation = 2;
    assert_eq!(again.plan().status.error, invalid.status.error);
    let mut valid = Case::new(&s, &invalid.status);
    valid.generation = 3;
    let p = valid.plan();
    assert_eq!(p.status.error, None);
    assert_eq!(condition(&p, "Stalled").status, "False");
    let mut starting = invalid.status.clone();
    starting.phase = Phase::Running;
    starting.running_since = Some(now(50).to_string());
    let mut valid = Case::new(&s, &starting);
    valid.generation = 3;
    let p = valid.plan();
    assert_eq!((p.status.phase, p.status.error), (Phase::Running, None));
    // Not Stable yet: an engine's error stays although the spec is valid.
    let mut failing = deployed(&s);
    failing.phase = Phase::Running;
    failing.running_since = Some(now(50).to_string());
    failing.error = Some("the job is FAILED".into());
    let p = Case::new(&s, &failing).plan();
    assert_eq!(p.status.error.as_deref(), Some("the job is FAILED"));
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

mod conditions;
mod cutover;
mod delete;
mod initial_savepoint;
mod running;
mod savepoints;
mod upgrade;
