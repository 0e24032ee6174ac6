//! Deletion: the deletion savepoint, and a finalizer that always goes.

use super::*;

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
