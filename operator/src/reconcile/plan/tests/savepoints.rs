//! Periodic and nonce savepoints, retention, and the deletion savepoint.

use super::*;

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
    // Its id follows from the status (deployment 1, first trigger), not from the clock.
    assert_eq!(p.status.pending_savepoint.as_ref().map(|s| s.trigger_id.as_str()), Some("clicks-periodic-1-1"));
    c.at = 700;
    assert_eq!(c.plan().status.pending_savepoint.map(|s| s.trigger_id), Some("clicks-periodic-1-1".into()));
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
