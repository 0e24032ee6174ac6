//! Blue-green cutovers: every step of `status.cutover` and each way out of it.

use super::*;
use crate::crd::{Color, CutoverRecord, CutoverStep};
use sluice_api::rest::{Activation, Standby};

const SP: &str = "s3://b/sp/savepoint-clicks-3f2a9c1e-cutover-2-1";
const BACK: &str = "s3://b/sp/savepoint-clicks-3f2a9c1e-rollback-2-2";
const STOP_ID: &str = "clicks-3f2a9c1e-cutover-2-1";

fn blue_green() -> StreamJobSpec {
    let mut s = spec();
    s.upgrade_strategy = serde_json::from_value(serde_json::json!({
        "type": "blue-green",
        "blueGreen": {"verificationWindow": "1m", "maxRestarts": 0, "requireCheckpoint": true}
    }))
    .unwrap();
    s
}

fn changed(s: &StreamJobSpec) -> StreamJobSpec {
    let mut t = s.clone();
    t.sql = Some("INSERT INTO a SELECT * FROM b WHERE x > 0;".into());
    t
}

/// The running color's children, started with `--standby`.
fn standby_children() -> ChildrenView {
    ChildrenView { standby: true, ..children() }
}

/// The new color's children, applied for deployment 2.
fn green_children() -> ChildrenView {
    ChildrenView { deployment: Some(2), standby: true, ..children() }
}

/// A coordinator waiting in standby (`ready` or not), after `ran` (its last activation).
fn waiting(state: JobStatus, ready: bool, ran: Option<Activation>) -> EngineView {
    let mut j = job(state, 0, &[2], None, None);
    j.standby = Some(Standby {
        ready,
        preloaded: Some("s3://b/chk/chk-3".into()),
        preloaded_bytes: 100,
        message: if ready { "ready".into() } else { "waiting for workers: 1 of 2 slots".into() },
    });
    j.activation = ran;
    EngineView::Up(Box::new(j))
}

fn activation(id: &str, restore: &str) -> Activation {
    Activation {
        restore: Some(restore.into()),
        id: Some(id.into()),
        restore_bytes: 4096,
        restored_from: Some(restore.into()),
        requested_at: now(10).to_string(),
        running_at: Some(now(11).to_string()),
    }
}

/// A coordinator running from activation `id`, with `restarts`, and a checkpoint
/// completed at `checkpoint_at` (seconds after T0), if any.
fn activated(state: JobStatus, id: &str, restore: &str, restarts: u64, checkpoint_at: Option<i64>) -> EngineView {
    let at = checkpoint_at.map(|s| now(s).to_string());
    let mut j = job(state, restarts, &[3], at.as_deref(), None);
    if let Some(c) = j.last_completed_checkpoint.as_mut() {
        c.duration_ms = 500;
    }
    j.activation = Some(activation(id, restore));
    EngineView::Up(Box::new(j))
}

/// Blue after its stop: FINISHED, with its handoff savepoint, waiting again.
fn blue_after_handoff() -> EngineView {
    let mut j = job(JobStatus::Finished, 0, &[2], None, None);
    j.last_completed_checkpoint = Some(Checkpoint {
        id: 9,
        kind: SnapshotKind::Savepoint,
        status: SnapshotStatus::Completed,
        trigger_time: now(8).to_string(),
        duration_ms: 1000,
        size_bytes: 123_456,
        written_bytes: 123_456,
        alignment_ms: 0,
        location: SP.into(),
        failure: None,
        acks: Vec::new(),
    });
    j.standby =
        Some(Standby { ready: true, preloaded: Some(SP.into()), preloaded_bytes: 123_456, message: "ready".into() });
    EngineView::Up(Box::new(j))
}

/// Blue-green job deployed once (blue, deployment 1), and a record at `step`.
fn in_cutover(s: &StreamJobSpec, target: &StreamJobSpec, step: CutoverStep) -> StreamJobStatus {
    let mut st = deployed(s);
    st.phase = Phase::Upgrading;
    st.savepoint_triggers = 1;
    st.cutover = Some(CutoverRecord {
        target_generation: 2,
        target_spec: recorded(target),
        from: Color::Blue,
        deployment: 2,
        step,
        trigger_id: (step != CutoverStep::Preparing).then(|| STOP_ID.into()),
        handoff: matches!(
            step,
            CutoverStep::Activating | CutoverStep::Verifying | CutoverStep::RollingBack | CutoverStep::Restoring
        )
        .then(|| SP.into()),
        activated: matches!(step, CutoverStep::Verifying | CutoverStep::RollingBack | CutoverStep::Restoring)
            .then(|| T0.into()),
        rollback_trigger_id: None,
        rollback_from: None,
        started: T0.into(),
        step_started: Some(T0.into()),
        note: None,
        pause: None,
        savepoint_bytes: None,
        restore_bytes: None,
    });
    st
}

fn case<'a>(target: &'a StreamJobSpec, st: &'a StreamJobStatus) -> Case<'a> {
    let mut c = Case::new(target, st);
    c.generation = 2;
    c.children = standby_children();
    c.at = 5;
    c
}

fn step(p: &Plan) -> Option<CutoverStep> {
    p.status.cutover.as_ref().map(|c| c.step)
}

#[test]
fn a_change_starts_a_cutover_that_prepares_the_other_color_and_touches_nothing_running() {
    let s = blue_green();
    let t = changed(&s);
    let mut st = deployed(&s);
    st.phase = Phase::Stable;
    let mut c = case(&t, &st);
    c.children = standby_children();
    let p = c.plan();
    assert_eq!(step(&p), Some(CutoverStep::Preparing));
    assert_eq!(
        p.actions,
        vec![Action::ApplyColor {
            color: Color::Green,
            spec: Box::new(recorded(&t)),
            deployment: 2,
            restore: Some("latest".into())
        }]
    );
    assert_eq!(p.status.phase, Phase::Upgrading);
    assert_eq!(p.status.deployment, 1, "the running deployment stays the job's until the new one took over");
    assert_eq!(p.status.reconciled_spec, Some(recorded(&s)));
    assert!(p.status.upgrade.is_none());
    assert_eq!(reasons(&p), vec!["Upgrading", "CutoverStarted"]);
    // Planned again from the same status: the same step, nothing new.
    let mut again = case(&t, &p.status);
    again.other_children = green_children();
    again.other_engine = waiting(JobStatus::Standby, false, None);
    let p2 = again.plan();
    assert_eq!(step(&p2), Some(CutoverStep::Preparing));
    assert!(p2.actions.is_empty(), "applied already, and nothing else to do yet: {:?}", p2.actions);
}

#[test]
fn a_deployment_started_without_standby_rolls_the_change_out_in_place() {
    let s = blue_green();
    let t = changed(&s);
    let st = deployed(&s);
    let mut c = case(&t, &st);
    c.children = children();
    let p = c.plan();
    assert!(p.status.cutover.is_none());
    assert_eq!(p.status.upgrade.as_ref().map(|u| u.step), Some(UpgradeStep::Stopping));
    assert!(reasons(&p).contains(&"CutoverSkipped"), "{:?}", reasons(&p));
    let skipped = p.events.iter().find(|e| e.reason == "CutoverSkipped").unwrap();
    assert!(skipped.message.contains("no --standby"), "{}", skipped.message);
}

#[test]
fn the_old_color_stops_only_once_the_new_one_is_ready_in_standby() {
    let s = blue_green();
    let t = changed(&s);
    let st = in_cutover(&s, &t, CutoverStep::Preparing);
    let mut c = case(&t, &st);
    c.other_children = green_children();
    c.other_engine = waiting(JobStatus::Standby, false, None);
    let p = c.plan();
    assert_eq!(step(&p), Some(CutoverStep::Preparing));
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    c.other_engine = waiting(JobStatus::Standby, true, None);
    let p = c.plan();
    assert_eq!(step(&p), Some(CutoverStep::Stopping));
    let rec = p.status.cutover.clone().unwrap();
    assert_eq!(rec.trigger_id.as_deref(), Some("clicks-3f2a9c1e-cutover-2-2"));
    assert_eq!(
        p.actions,
        vec![Action::TriggerSavepointOn(
            Color::Blue,
            SavepointRequest {
                trigger_id: rec.trigger_id.clone(),
                target_directory: Some("s3://b/sp".into()),
                stop: true,
                drain: false
            }
        )]
    );
    assert_eq!(reasons(&p), vec!["CutoverReady"]);
}

#[test]
fn a_new_color_that_cannot_restore_is_removed_and_the_job_keeps_running() {
    let s = blue_green();
    let t = changed(&s);
    let st = in_cutover(&s, &t, CutoverStep::Preparing);
    let mut c = case(&t, &st);
    c.other_children = green_children();
    let mut refused = job(
        JobStatus::Failed,
        0,
        &[2],
        None,
        Some("cannot restore from s3://b/chk/chk-3: state of operator `w` has no matching operator".into()),
    );
    refused.standby =
        Some(Standby { ready: false, preloaded: None, preloaded_bytes: 0, message: "cannot be activated".into() });
    c.other_engine = EngineView::Up(Box::new(refused));
    let p = c.plan();
    assert!(p.status.cutover.is_none(), "the record is cleared on every exit");
    assert_eq!(p.actions, vec![Action::DeleteColor(Color::Green)]);
    assert_eq!(p.status.phase, Phase::Running);
    assert_eq!(p.status.active_color, None);
    assert_eq!(p.status.rolled_back_generation, Some(2));
    let report = p.status.last_cutover.clone().unwrap();
    assert_eq!((report.outcome.as_str(), report.generation), ("aborted", 2));
    assert!(report.reason.unwrap().contains("has no matching operator"));
    let stalled = condition(&p, "Stalled");
    assert_eq!((stalled.status.as_str(), stalled.reason.as_str()), ("True", "CutoverAborted"));
    assert_eq!(reasons(&p), vec!["CutoverAborted", "Running"]);
    // The same generation is not tried again; the job goes on as it was.
    let mut next = case(&t, &p.status);
    next.engine = running(Some(T0));
    let p = next.plan();
    assert!(p.status.cutover.is_none() && p.status.upgrade.is_none());
    assert!(!p.actions.iter().any(|a| matches!(a, Action::ApplyColor { .. } | Action::TriggerSavepointOn(..))));
}

#[test]
fn a_new_color_that_never_gets_ready_is_given_up_with_the_reason() {
    let s = blue_green();
    let t = changed(&s);
    let st = in_cutover(&s, &t, CutoverStep::Preparing);
    let mut c = case(&t, &st);
    c.other_children = ChildrenView {
        pod_problem: Some("pod clicks-green-coordinator-x: container engine is ImagePullBackOff".into()),
        ..green_children()
    };
    c.other_engine = EngineView::Down("unreachable".into());
    c.at = 299;
    assert_eq!(step(&c.plan()), Some(CutoverStep::Preparing));
    c.at = 300;
    let p = c.plan();
    assert!(p.status.cutover.is_none());
    assert_eq!(p.actions, vec![Action::DeleteColor(Color::Green)]);
    assert!(p.status.error.as_deref().unwrap().contains("ImagePullBackOff"), "{:?}", p.status.error);
}

#[test]
fn the_handoff_savepoint_activates_the_new_color_from_it() {
    let s = blue_green();
    let t = changed(&s);
    let st = in_cutover(&s, &t, CutoverStep::Stopping);
    let mut c = case(&t, &st);
    c.other_children = green_children();
    c.other_engine = waiting(JobStatus::Standby, true, None);
    c.trigger = Some(TriggerView::InProgress);
    let p = c.plan();
    assert_eq!(step(&p), Some(CutoverStep::Stopping));
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    c.trigger = Some(TriggerView::Completed(SP.into()));
    c.engine = blue_after_handoff();
    let p = c.plan();
    assert_eq!(step(&p), Some(CutoverStep::Activating));
    assert_eq!(p.status.cutover.as_ref().unwrap().handoff.as_deref(), Some(SP));
    assert_eq!(p.status.last_savepoint.as_ref().map(|s| s.trigger.as_str()), Some("cutover"));
    assert_eq!(
        p.actions,
        vec![Action::Activate { color: Color::Green, restore: Some(SP.into()), id: format!("{STOP_ID}-activate") }]
    );
}

#[test]
fn a_failed_stop_savepoint_leaves_the_old_color_running_and_is_retried_later() {
    let s = blue_green();
    let t = changed(&s);
    let st = in_cutover(&s, &t, CutoverStep::Stopping);
    let mut c = case(&t, &st);
    c.other_children = green_children();
    c.trigger = Some(TriggerView::Failed("a subtask declined".into()));
    let p = c.plan();
    assert!(p.status.cutover.is_none());
    assert_eq!(p.actions, vec![Action::DeleteColor(Color::Green)]);
    assert_eq!(p.status.rolled_back_generation, None, "a failed savepoint may be transient: retried");
    assert!(p.status.upgrade_retry_after.is_some());
    assert_eq!(condition(&p, "Stalled").status, "False");
}

#[test]
fn a_healthy_new_color_takes_over_after_the_verification_window() {
    let s = blue_green();
    let t = changed(&s);
    let st = in_cutover(&s, &t, CutoverStep::Activating);
    let id = format!("{STOP_ID}-activate");
    let mut c = case(&t, &st);
    c.engine = blue_after_handoff();
    c.other_children = green_children();
    c.other_engine = activated(JobStatus::Running, &id, SP, 0, None);
    let p = c.plan();
    assert_eq!(step(&p), Some(CutoverStep::Verifying));
    let rec = p.status.cutover.clone().unwrap();
    assert_eq!((rec.restore_bytes, rec.savepoint_bytes), (Some(4096), Some(123_456)));
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    // Inside the window: nothing yet, even with a checkpoint.
    let mut v = case(&t, &p.status);
    v.engine = blue_after_handoff();
    v.other_children = green_children();
    v.other_engine = activated(JobStatus::Running, &id, SP, 0, Some(12));
    v.at = 30;
    let p = v.plan();
    assert_eq!(step(&p), Some(CutoverStep::Verifying));
    // The pause: blue's savepoint completed at T0+9 s, green's first checkpoint at T0+12.5 s.
    assert_eq!(p.status.cutover.as_ref().unwrap().pause, Some(3500));
    let mut v = case(&t, &p.status);
    v.engine = blue_after_handoff();
    v.other_children = green_children();
    v.other_engine = activated(JobStatus::Running, &id, SP, 0, Some(40));
    v.at = 66;
    let p = v.plan();
    assert!(p.status.cutover.is_none());
    assert_eq!(p.actions, vec![Action::DeleteColor(Color::Blue)]);
    assert_eq!(p.status.active_color, Some(Color::Green));
    assert_eq!(p.status.deployment, 2);
    assert_eq!(p.status.reconciled_spec, Some(recorded(&t)));
    assert_eq!(p.status.reconciled_generation, Some(2));
    assert_eq!(p.status.deployed_from.as_deref(), Some(SP));
    let report = p.status.last_cutover.clone().unwrap();
    assert_eq!(
        (report.outcome.as_str(), report.pause, report.savepoint_bytes, report.restore_bytes),
        ("succeeded", Some(3500), Some(123_456), Some(4096))
    );
    assert_eq!(reasons(&p), vec!["Running", "CutoverSucceeded"]);
}

#[test]
fn restarts_beyond_the_limit_roll_back_through_a_savepoint_of_the_new_color() {
    let s = blue_green();
    let t = changed(&s);
    let st = in_cutover(&s, &t, CutoverStep::Verifying);
    let id = format!("{STOP_ID}-activate");
    let mut c = case(&t, &st);
    c.engine = blue_after_handoff();
    c.other_children = green_children();
    c.other_engine = activated(JobStatus::Running, &id, SP, 1, None);
    let p = c.plan();
    assert_eq!(step(&p), Some(CutoverStep::RollingBack));
    assert_eq!(p.status.phase, Phase::RollingBack);
    let rec = p.status.cutover.clone().unwrap();
    assert_eq!(rec.rollback_trigger_id.as_deref(), Some("clicks-3f2a9c1e-rollback-2-2"));
    assert!(rec.note.unwrap().contains("restarted 1 times, more than maxRestarts 0"));
    assert!(matches!(&p.actions[..], [Action::TriggerSavepointOn(Color::Green, r)] if r.stop));
    // Green's savepoint completes: blue is activated from it.
    let mut r = case(&t, &p.status);
    r.engine = blue_after_handoff();
    r.other_children = green_children();
    r.other_engine = activated(JobStatus::Finished, &id, SP, 1, None);
    r.trigger = Some(TriggerView::Completed(BACK.into()));
    let p = r.plan();
    assert_eq!(step(&p), Some(CutoverStep::Restoring));
    let reactivate = format!("{STOP_ID}-reactivate");
    assert_eq!(
        p.actions,
        vec![Action::Activate { color: Color::Blue, restore: Some(BACK.into()), id: reactivate.clone() }]
    );
    // Blue runs from it: the rollback is done, and green goes.
    let mut d = case(&t, &p.status);
    d.engine = activated(JobStatus::Running, &reactivate, BACK, 0, None);
    d.other_children = green_children();
    let p = d.plan();
    assert!(p.status.cutover.is_none());
    assert_eq!(p.actions, vec![Action::DeleteColor(Color::Green)]);
    assert_eq!(p.status.phase, Phase::RolledBack);
    assert_eq!(p.status.active_color, None, "blue stays the job's color");
    assert_eq!(p.status.rolled_back_generation, Some(2));
    assert_eq!(p.status.deployed_from.as_deref(), Some(BACK));
    assert_eq!(p.status.reconciled_spec, Some(recorded(&s)), "the old spec runs");
    assert_eq!(p.status.last_cutover.as_ref().map(|c| c.outcome.as_str()), Some("rolledBack"));
    assert_eq!(condition(&p, "Stalled").reason, "RolledBack");
}

#[test]
fn a_new_color_that_failed_rolls_back_from_its_newest_checkpoint() {
    let s = blue_green();
    let t = changed(&s);
    let st = in_cutover(&s, &t, CutoverStep::Verifying);
    let id = format!("{STOP_ID}-activate");
    let mut c = case(&t, &st);
    c.engine = blue_after_handoff();
    c.other_children = green_children();
    c.other_engine = activated(JobStatus::Failed, &id, SP, 3, None);
    let p = c.plan();
    assert_eq!(step(&p), Some(CutoverStep::Restoring));
    assert_eq!(p.status.cutover.as_ref().unwrap().rollback_from.as_deref(), Some("latest"));
    // Its pods go first: a restarting one could still write part files.
    assert_eq!(p.actions, vec![Action::DeleteColor(Color::Green)]);
    assert!(reasons(&p).contains(&"CutoverRollbackFallback"), "{:?}", reasons(&p));
    let mut r = case(&t, &p.status);
    r.engine = blue_after_handoff();
    r.other_children = ChildrenView { engine_objects: false, pods: 1, ..green_children() };
    assert!(r.plan().actions.is_empty(), "a pod of green is still terminating");
    r.other_children = ChildrenView { config_map: false, ..gone() };
    assert_eq!(
        r.plan().actions,
        vec![Action::Activate {
            color: Color::Blue,
            restore: Some("latest".into()),
            id: format!("{STOP_ID}-reactivate")
        }]
    );
}

#[test]
fn no_checkpoint_within_the_window_rolls_back_when_one_is_required() {
    let s = blue_green();
    let t = changed(&s);
    let st = in_cutover(&s, &t, CutoverStep::Verifying);
    let id = format!("{STOP_ID}-activate");
    let mut c = case(&t, &st);
    c.engine = blue_after_handoff();
    c.other_children = green_children();
    c.other_engine = activated(JobStatus::Running, &id, SP, 0, None);
    c.at = 61;
    let p = c.plan();
    assert_eq!(step(&p), Some(CutoverStep::RollingBack));
    assert!(p.status.error.unwrap().contains("completed no checkpoint within the verification window (1m)"));
    // Without requireCheckpoint it takes over.
    let mut lax = t.clone();
    lax.upgrade_strategy.blue_green.require_checkpoint = false;
    let st = in_cutover(&s, &lax, CutoverStep::Verifying);
    let mut c = case(&lax, &st);
    c.engine = blue_after_handoff();
    c.other_children = green_children();
    c.other_engine = activated(JobStatus::Running, &id, SP, 0, None);
    c.at = 61;
    assert_eq!(c.plan().status.active_color, Some(Color::Green));
}

#[test]
fn a_blue_green_deployment_is_activated_from_where_it_was_deployed() {
    let s = blue_green();
    let mut st = deployed(&s);
    st.phase = Phase::Deploying;
    st.running_since = None;
    st.deployed_from = Some("s3://b/sp/savepoint-x".into());
    let mut c = case(&s, &st);
    c.generation = 1;
    c.engine = waiting(JobStatus::Standby, true, None);
    let p = c.plan();
    assert_eq!(
        p.actions,
        vec![Action::Activate {
            color: Color::Blue,
            restore: Some("s3://b/sp/savepoint-x".into()),
            id: "clicks-3f2a9c1e-start-1".into()
        }]
    );
    assert_eq!(p.status.phase, Phase::Deploying);
    // Not ready yet: nothing is asked.
    c.engine = waiting(JobStatus::Standby, false, None);
    assert!(c.plan().actions.is_empty());
}

#[test]
fn what_an_interrupted_cutover_left_of_the_other_color_is_removed() {
    let s = blue_green();
    let st = deployed(&s);
    let mut c = case(&s, &st);
    c.generation = 1;
    c.other_children = green_children();
    let p = c.plan();
    assert_eq!(p.actions, vec![Action::DeleteColor(Color::Green)]);
    // Once it is gone, nothing more is done.
    c.other_children = ChildrenView { config_map: false, ..gone() };
    assert!(c.plan().actions.is_empty());
}

#[test]
fn every_step_planned_twice_from_the_same_status_asks_for_the_same_thing() {
    let s = blue_green();
    let t = changed(&s);
    let id = format!("{STOP_ID}-activate");
    for step_ in [CutoverStep::Preparing, CutoverStep::Stopping, CutoverStep::Activating, CutoverStep::Verifying] {
        let st = in_cutover(&s, &t, step_);
        let mut c = case(&t, &st);
        c.engine = running(Some(T0));
        c.other_children = green_children();
        c.other_engine = match step_ {
            CutoverStep::Verifying => activated(JobStatus::Running, &id, SP, 0, None),
            _ => waiting(JobStatus::Standby, true, None),
        };
        let (a, b) = (c.plan(), c.plan());
        assert_eq!(a.status, b.status, "{step_:?}");
        assert_eq!(a.actions, b.actions, "{step_:?}");
    }
}
