//! `initialSavepoint` of a job that has never run: a first restore that failed can be
//! fixed, and a restart does not drop the savepoint for empty state.

use super::*;

const MISSING: &str = "s3://b/sp/savepoint-missing";
const REAL: &str = "s3://b/sp/savepoint-real";

fn restore_failed() -> EngineView {
    failed(&format!("cannot restore from {MISSING}: no _metadata"))
}

/// A job created with `spec` (whose `initialSavepoint` is [`MISSING`]), deployed by the
/// planner from an empty status, whose first restore the engine then reported FAILED.
fn first_restore_failed(spec: &StreamJobSpec) -> StreamJobStatus {
    let none = StreamJobStatus::default();
    let mut c = Case::new(spec, &none);
    c.at = 0;
    c.engine = EngineView::Down("no engine pods are deployed".into());
    c.children = ChildrenView::default();
    let first = c.plan();
    assert_eq!((first.status.deployment, first.status.deployed_from.as_deref()), (1, Some(MISSING)));
    let mut c = Case::new(spec, &first.status);
    c.at = 10;
    c.engine = restore_failed();
    let p = c.plan();
    assert_eq!(p.status.phase, Phase::Failed);
    p.status
}

fn with_initial(initial: &str) -> StreamJobSpec {
    let mut s = spec();
    s.initial_savepoint = Some(initial.into());
    s
}

#[test]
fn fixing_the_initial_savepoint_of_a_job_whose_first_restore_failed_redeploys_from_the_new_one() {
    let s = with_initial(MISSING);
    let st = first_restore_failed(&s);
    let fixed = with_initial(REAL);
    let mut c = Case::new(&fixed, &st);
    c.generation = 2;
    c.at = 20;
    c.engine = restore_failed();
    let p = c.plan();
    let rec = p.status.upgrade.clone().expect("the corrected initialSavepoint is rolled out");
    assert_eq!(
        (rec.kind, rec.step, rec.restore_from.as_deref()),
        (UpgradeKind::Upgrade, UpgradeStep::Stopped, Some(REAL))
    );
    assert_eq!(rec.target_spec, recorded(&fixed));
    assert_eq!(p.actions, vec![Action::DeleteEngine]);
    assert_eq!(p.status.phase, Phase::Upgrading);
    // The old pods are gone: deployment 2 restores the new initialSavepoint.
    let mut c = Case::new(&fixed, &p.status);
    c.generation = 2;
    c.at = 21;
    c.children = gone();
    c.engine = EngineView::Down("no engine pods are deployed".into());
    let p = c.plan();
    assert_eq!(p.actions, vec![Action::ApplyChildren]);
    assert_eq!((p.status.deployment, p.status.deployed_from.as_deref()), (2, Some(REAL)));
    assert_eq!(p.status.phase, Phase::Deploying);
    assert!(p.events.iter().any(|e| e.reason == "Deployment" && e.message.contains(REAL)), "{:?}", p.events);
    // Nothing more to roll out once it is deployed.
    let mut c = Case::new(&fixed, &p.status);
    c.generation = 2;
    c.at = 22;
    c.children = ChildrenView { deployment: Some(2), ..children() };
    c.engine = state(JobStatus::Created);
    let p = c.plan();
    assert!(p.status.upgrade.is_none() && p.actions.is_empty(), "{:?} {:?}", p.status.upgrade, p.actions);
    // It runs: from now on initialSavepoint is history, as in Flink's operator.
    c.at = 30;
    c.engine = running(None);
    let ran = c.plan();
    assert_eq!(ran.status.phase, Phase::Running);
    let other = with_initial("s3://b/sp/savepoint-other");
    let mut c = Case::new(&other, &ran.status);
    c.generation = 3;
    c.at = 31;
    c.children = ChildrenView { deployment: Some(2), ..children() };
    c.engine = running(None);
    let p = c.plan();
    assert!(p.status.upgrade.is_none(), "{:?}", p.status.upgrade);
    assert!(!p.actions.contains(&Action::DeleteEngine), "{:?}", p.actions);
}

#[test]
fn allowing_non_restored_state_after_a_first_restore_failed_on_it_redeploys() {
    let s = with_initial(MISSING);
    let st = first_restore_failed(&s);
    let mut allow = s.clone();
    allow.allow_non_restored_state = true;
    let mut c = Case::new(&allow, &st);
    c.generation = 2;
    c.engine = failed("savepoint state of operator 'agg-1' is not claimed by the job");
    let p = c.plan();
    let rec = p.status.upgrade.clone().expect("allowNonRestoredState is rolled out");
    assert_eq!((rec.step, rec.restore_from.as_deref()), (UpgradeStep::Stopped, Some(MISSING)));
    assert_eq!(rec.target_spec, recorded(&allow));
}

/// `latest` of a job that never completed a checkpoint (and whose restore never
/// succeeded) is empty state: the savepoint the user asked for would be dropped.
#[test]
fn a_restart_or_upgrade_of_a_job_that_never_ran_restores_its_initial_savepoint_not_latest() {
    for mode in [UpgradeMode::Savepoint, UpgradeMode::LastState, UpgradeMode::Stateless] {
        let mut s = with_initial(MISSING);
        s.upgrade_mode = mode;
        let st = first_restore_failed(&s);
        let mut restart = s.clone();
        restart.restart_nonce = Some(1);
        let mut c = Case::new(&restart, &st);
        c.generation = 2;
        c.engine = restore_failed();
        let p = c.plan();
        let rec = p.status.upgrade.clone().unwrap();
        assert_eq!((rec.kind, rec.restore_from.as_deref()), (UpgradeKind::Restart, Some(MISSING)), "{mode:?}");
        assert_eq!(p.actions, vec![Action::DeleteEngine]);
    }
    // The first pods never started (a bad image): fixing the image keeps the savepoint too.
    let s = with_initial(REAL);
    let none = StreamJobStatus::default();
    let mut c = Case::new(&s, &none);
    c.engine = EngineView::Down("no engine pods are deployed".into());
    c.children = ChildrenView::default();
    let first = c.plan();
    let mut c = Case::new(&s, &first.status);
    c.engine = EngineView::Down("the engine of job clicks is unreachable".into());
    c.children.pod_problem = Some("pod clicks-coordinator-x: container engine is ErrImagePull".into());
    let stuck = c.plan();
    assert_eq!(stuck.status.phase, Phase::Deploying);
    let mut image = s.clone();
    image.image = Some("sluice/engine:0.1.1".into());
    let mut c = Case::new(&image, &stuck.status);
    c.generation = 2;
    c.engine = EngineView::Down("the engine of job clicks is unreachable".into());
    let p = c.plan();
    let rec = p.status.upgrade.clone().unwrap();
    assert_eq!((rec.kind, rec.restore_from.as_deref()), (UpgradeKind::Upgrade, Some(REAL)));
}

#[test]
fn a_job_that_has_run_keeps_initial_savepoint_for_its_first_deployment_only() {
    let s = with_initial(REAL);
    let none = StreamJobStatus::default();
    let mut c = Case::new(&s, &none);
    c.at = 0;
    c.engine = EngineView::Down("no engine pods are deployed".into());
    c.children = ChildrenView::default();
    let first = c.plan();
    // Seen RUNNING once, then FAILED (a coordinator restarted and failed before running).
    let mut c = Case::new(&s, &first.status);
    c.at = 10;
    c.engine = running(None);
    let ran = c.plan();
    c = Case::new(&s, &ran.status);
    c.at = 20;
    c.engine = restore_failed();
    let failed_later = c.plan();
    assert_eq!(failed_later.status.phase, Phase::Failed);
    let other = with_initial("s3://b/sp/savepoint-other");
    let mut c = Case::new(&other, &failed_later.status);
    c.generation = 2;
    c.at = 30;
    c.engine = restore_failed();
    let p = c.plan();
    assert!(p.status.upgrade.is_none() && p.actions.is_empty(), "{:?} {:?}", p.status.upgrade, p.actions);
    // A restart of a job that has run restores the newest checkpoint, as before.
    let mut restart = s.clone();
    restart.restart_nonce = Some(1);
    let mut c = Case::new(&restart, &failed_later.status);
    c.generation = 2;
    c.engine = restore_failed();
    let rec = c.plan().status.upgrade.unwrap();
    assert_eq!((rec.kind, rec.restore_from.as_deref()), (UpgradeKind::Restart, Some("latest")));

    // The edit arrives in the reconcile that first sees the job RUNNING: it has run.
    let mut c = Case::new(&other, &first.status);
    c.generation = 2;
    c.engine = running(None);
    let p = c.plan();
    assert!(p.status.upgrade.is_none(), "{:?}", p.status.upgrade);
    assert_eq!(p.status.phase, Phase::Running);

    // A status written before the operator tracked this is taken as a job that has run.
    let mut st = deployed(&s);
    st.phase = Phase::Failed;
    st.deployed_from = Some(REAL.into());
    st.last_stable_spec = None;
    let mut c = Case::new(&other, &st);
    c.generation = 2;
    c.engine = restore_failed();
    assert!(c.plan().status.upgrade.is_none());
}

#[test]
fn a_job_suspended_before_it_ever_ran_resumes_from_its_current_initial_savepoint() {
    let s = with_initial(MISSING);
    let st = first_restore_failed(&s);
    let mut suspended = s.clone();
    suspended.state = DesiredState::Suspended;
    let mut c = Case::new(&suspended, &st);
    c.generation = 2;
    c.engine = restore_failed();
    let p = c.plan();
    let rec = p.status.upgrade.clone().unwrap();
    assert_eq!(
        (rec.kind, rec.step, rec.restore_from.as_deref()),
        (UpgradeKind::Suspend, UpgradeStep::Stopped, Some(MISSING))
    );
    let mut c = Case::new(&suspended, &p.status);
    c.generation = 2;
    c.children = gone();
    c.engine = EngineView::Down("no engine pods are deployed".into());
    let p = c.plan();
    assert_eq!(p.status.phase, Phase::Suspended);
    // Corrected while suspended, then resumed: the corrected savepoint.
    let resumed = with_initial(REAL);
    let mut c = Case::new(&resumed, &p.status);
    c.generation = 3;
    c.children = gone();
    c.engine = EngineView::Down("no engine pods are deployed".into());
    let p = c.plan();
    assert_eq!(p.actions, vec![Action::ApplyChildren]);
    assert_eq!((p.status.deployment, p.status.deployed_from.as_deref()), (2, Some(REAL)));
}
