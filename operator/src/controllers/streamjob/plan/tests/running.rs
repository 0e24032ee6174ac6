//! The steady state: phases from the engine, Stable, rollback.

use super::*;

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
        (state(JobStatus::Finished), Phase::Finished),
        (state(JobStatus::Failed), Phase::Failed),
        (state(JobStatus::Restarting), Phase::Running),
        (state(JobStatus::Created), Phase::Deploying),
    ] {
        let mut c = Case::new(&s, &st);
        c.engine = engine.clone();
        let p = c.plan();
        assert_eq!(p.status.phase, phase, "{engine:?}");
    }
}

#[test]
fn an_upgrade_that_never_stabilizes_is_rolled_back_from_its_savepoint() {
    let s = spec();
    let mut bad = s.clone();
    bad.sql = Some("INSERT INTO a SELECT crash FROM b;".into());
    let mut st = deployed(&s);
    st.reconciled_spec = Some(recorded(&bad));
    st.reconciled_generation = Some(2);
    st.deployment = 2;
    st.deployed_from = Some("s3://b/sp/savepoint-up".into());
    st.phase = Phase::Running;
    st.running_since = None;
    let mut c = Case::new(&bad, &st);
    c.generation = 2;
    c.engine = state(JobStatus::Restarting);
    c.at = 60;
    assert!(c.plan().status.upgrade.is_none(), "within readinessTimeout");
    c.at = 121;
    let p = c.plan();
    let rec = p.status.upgrade.clone().unwrap();
    assert_eq!((rec.kind, rec.step), (UpgradeKind::Rollback, UpgradeStep::Stopped));
    assert_eq!(rec.restore_from.as_deref(), Some("s3://b/sp/savepoint-up"));
    assert_eq!(rec.target_spec, recorded(&s));
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
    assert_eq!(p.status.reconciled_spec, Some(recorded(&s)));
    assert_eq!(condition(&p, "Stalled").status, "True");
    let mut c = Case::new(&bad, &p.status);
    c.generation = 2;
    c.children = ChildrenView { deployment: Some(3), ..children() };
    let p2 = c.plan();
    assert!(p2.status.upgrade.is_none());
    assert_eq!(p2.status.phase, Phase::RolledBack);
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

/// A restore that fails (a missing, truncated or unreadable savepoint) is reported by
/// the engine as FAILED with its message: the job must not sit in Deploying without one.
#[test]
fn a_deployment_whose_restore_fails_is_failed_with_the_engines_message_and_a_warning() {
    let mut s = spec();
    s.initial_savepoint = Some("s3://b/sp/missing".into());
    let mut st = deployed(&s);
    st.phase = Phase::Deploying;
    st.last_stable_spec = None;
    st.running_since = None;
    st.deployed_from = s.initial_savepoint.clone();
    let msg = "cannot restore from s3://b/sp/missing: no _metadata";
    let mut c = Case::new(&s, &st);
    c.engine = failed(msg);
    let p = c.plan();
    assert_eq!(p.status.phase, Phase::Failed);
    assert_eq!(p.status.error.as_deref(), Some(msg));
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let warning = p.events.iter().find(|e| e.reason == "JobFailed").expect("a JobFailed Event");
    assert!(warning.warning && warning.message.contains(msg), "{warning:?}");
    let stalled = condition(&p, "Stalled");
    assert_eq!((stalled.status.as_str(), stalled.message.as_str()), ("True", msg));
    // Said once.
    let mut c = Case::new(&s, &p.status);
    c.engine = failed(msg);
    let again = c.plan();
    assert!(again.events.is_empty(), "{:?}", again.events);
    assert_eq!(again.status, p.status);
}

#[test]
fn an_upgrade_whose_restore_fails_is_rolled_back_and_a_failing_rollback_is_failed() {
    let s = spec();
    let mut up = s.clone();
    up.parallelism = 3;
    let mut st = deployed(&s);
    st.reconciled_spec = Some(recorded(&up));
    st.reconciled_generation = Some(2);
    st.deployment = 2;
    st.deployed_from = Some("s3://b/sp/savepoint-up".into());
    st.phase = Phase::Deploying;
    st.running_since = None;
    let msg = "cannot restore from s3://b/sp/savepoint-up: _metadata is truncated";
    let mut c = Case::new(&up, &st);
    c.generation = 2;
    c.engine = failed(msg);
    let p = c.plan();
    assert_eq!(p.status.phase, Phase::RollingBack);
    assert!(p.status.error.as_deref().is_some_and(|e| e.contains(msg)), "{:?}", p.status.error);
    assert!(reasons(&p).contains(&"JobFailed") && reasons(&p).contains(&"RollingBack"), "{:?}", reasons(&p));
    // The rollback restores from the same savepoint, and fails the same way: Failed, not RolledBack.
    let mut rolled = p.status.clone();
    rolled.upgrade = None;
    rolled.phase = Phase::RolledBack;
    rolled.rolled_back_generation = Some(2);
    rolled.deployment = 3;
    rolled.reconciled_spec = Some(recorded(&s));
    rolled.error = None;
    let mut c = Case::new(&up, &rolled);
    c.generation = 2;
    c.children = ChildrenView { deployment: Some(3), ..children() };
    c.engine = failed(msg);
    let p = c.plan();
    assert_eq!(p.status.phase, Phase::Failed);
    assert!(p.status.error.as_deref().is_some_and(|e| e.contains(msg)), "{:?}", p.status.error);
    assert!(p.events.iter().any(|e| e.warning && e.reason == "JobFailed"), "{:?}", p.events);
    assert!(p.status.upgrade.is_none());
}
