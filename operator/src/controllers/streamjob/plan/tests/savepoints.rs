//! Periodic and nonce savepoints, retention, and trigger ids.

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
    assert_eq!(
        p.status.pending_savepoint.as_ref().map(|s| s.trigger_id.as_str()),
        Some("clicks-3f2a9c1e-periodic-1-1")
    );
    c.at = 700;
    assert_eq!(c.plan().status.pending_savepoint.map(|s| s.trigger_id), Some("clicks-3f2a9c1e-periodic-1-1".into()));
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
    let roots = vec!["s3://b/sp".to_string(), "s3://b/chk".to_string()];
    assert_eq!(p.actions, vec![Action::Dispose { locations: vec!["s3://b/sp/one".into()], roots }]);
    let kept: Vec<&str> = p.status.savepoint_history.iter().map(|s| s.location.as_str()).collect();
    assert_eq!(kept, vec!["s3://b/sp/two", "s3://b/sp/three"]);
    assert_eq!(p.status.last_savepoint.unwrap().location, "s3://b/sp/three");
}

#[test]
fn retention_deletes_nothing_outside_the_jobs_directories_and_keeps_its_record() {
    let mut s = spec();
    s.savepoints.interval = Some("10m".into());
    let mut st = deployed(&s);
    st.pending_savepoint = Some(PendingSavepoint {
        trigger_id: "clicks-3f2a9c1e-periodic-1-3".into(),
        trigger: "periodic".into(),
        started: T0.into(),
    });
    // Locations as an engine reported them: a sibling directory sharing the prefix, a
    // climb out of the directory, the directory itself, and one that is fine.
    st.savepoint_history = ["s3://b/sp2/one", "s3://b/sp/../chk-evil", "s3://b/sp", "s3://b/chk/old", "s3://b/sp/two"]
        .into_iter()
        .map(|l| SavepointInfo { location: l.into(), time: T0.into(), trigger: "periodic".into() })
        .collect();
    let mut c = Case::new(&s, &st);
    c.at = 602;
    c.trigger = Some(TriggerView::Completed("s3://b/sp/three".into()));
    let p = c.plan();
    // maxCount 2: all but the two newest are due; only the one under checkpoint storage goes.
    let disposed: Vec<&Action> = p.actions.iter().filter(|a| matches!(a, Action::Dispose { .. })).collect();
    assert_eq!(
        disposed,
        vec![&Action::Dispose {
            locations: vec!["s3://b/chk/old".into()],
            roots: vec!["s3://b/sp".into(), "s3://b/chk".into()]
        }]
    );
    let refused: Vec<&PlannedEvent> = p.events.iter().filter(|e| e.reason == "DisposeRefused").collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(refused.iter().all(|e| e.warning));
    assert!(refused[0].message.contains("s3://b/sp2/one") && refused[0].message.contains("s3://b/sp, s3://b/chk"));
    let kept: Vec<&str> = p.status.savepoint_history.iter().map(|s| s.location.as_str()).collect();
    assert_eq!(kept, vec!["s3://b/sp2/one", "s3://b/sp/../chk-evil", "s3://b/sp", "s3://b/sp/two", "s3://b/sp/three"]);
}

/// Every trigger id the planner makes, for a job with `uid`: an upgrade, a suspend, a
/// restart, a periodic, a manual and a deletion savepoint.
fn all_trigger_ids(uid: &str) -> Vec<String> {
    let mut s = spec();
    s.savepoints.interval = Some("10m".into());
    s.savepoints.on_deletion = true;
    let st = deployed(&s);
    let mut ids = Vec::new();
    let mut changed = s.clone();
    changed.parallelism = 3;
    let mut suspended = s.clone();
    suspended.state = DesiredState::Suspended;
    let mut restart = s.clone();
    restart.restart_nonce = Some(1);
    for target in [&changed, &suspended, &restart] {
        let mut c = Case::new(target, &st);
        c.uid = uid;
        c.generation = 2;
        ids.push(c.plan().status.upgrade.and_then(|u| u.trigger_id).unwrap());
    }
    let mut manual = s.clone();
    manual.savepoint_nonce = Some(1);
    for (i, (spec, deleting)) in [(&s, false), (&manual, false), (&s, true)].into_iter().enumerate() {
        let mut c = Case::new(spec, &st);
        c.uid = uid;
        c.at = if i == 0 { 601 } else { 60 };
        c.deleting = deleting;
        ids.push(c.plan().status.pending_savepoint.map(|p| p.trigger_id).unwrap());
    }
    ids
}

/// The engine takes an existing `savepoint-<triggerId>/_metadata` as that trigger's
/// completed savepoint, and the operator finds savepoints in storage by id: a job of the
/// same name in another namespace, or re-created with its name, sharing the savepoint
/// directory, must never get the other's ids.
#[test]
fn two_jobs_of_the_same_name_with_different_uids_get_different_trigger_ids() {
    let a = all_trigger_ids(UID);
    let b = all_trigger_ids("9c0d1e2f-0000-4000-8000-000000000000");
    assert_eq!(a.len(), 6);
    for (x, y) in a.iter().zip(&b) {
        assert_ne!(x, y, "two job objects named clicks share a trigger id");
        assert!(x.starts_with("clicks-3f2a9c1e-"), "{x}");
        assert!(y.starts_with("clicks-9c0d1e2f-"), "{y}");
    }
    assert_eq!(
        a,
        vec![
            "clicks-3f2a9c1e-upgrade-2-1",
            "clicks-3f2a9c1e-suspend-2-1",
            "clicks-3f2a9c1e-restart-2-1",
            "clicks-3f2a9c1e-periodic-1-1",
            "clicks-3f2a9c1e-manual-1-1",
            "clicks-3f2a9c1e-deletion-1",
        ]
    );
    // Deterministic: the same status and uid, the same ids.
    assert_eq!(all_trigger_ids(UID), a);
}
