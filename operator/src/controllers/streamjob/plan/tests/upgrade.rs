//! Upgrades, restarts and suspends: the write-ahead record, savepoints and fallbacks.

use super::*;

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
    let id = "clicks-3f2a9c1e-upgrade-2-1".to_string();
    assert_eq!(rec.trigger_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        p.actions,
        vec![Action::TriggerSavepoint(SavepointRequest {
            trigger_id: Some(id.clone()),
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
    st.upgrade =
        Some(record(UpgradeKind::Upgrade, &changed, UpgradeStep::Stopping, Some("clicks-3f2a9c1e-upgrade-2-1")));
    let mut c = Case::new(&changed, &st);
    c.generation = 2;
    c.engine = state(JobStatus::Finished);
    c.trigger = Some(TriggerView::Completed("s3://b/sp/savepoint-clicks-3f2a9c1e-upgrade-2-1".into()));
    let p = c.plan();
    let rec = p.status.upgrade.clone().unwrap();
    assert_eq!(rec.step, UpgradeStep::Stopped);
    assert_eq!(rec.restore_from.as_deref(), Some("s3://b/sp/savepoint-clicks-3f2a9c1e-upgrade-2-1"));
    assert_eq!(p.actions, vec![Action::DeleteEngine]);
    assert_eq!(p.status.last_savepoint.as_ref().map(|s| s.trigger.as_str()), Some("upgrade"));

    // Pods still terminating: wait.
    let mut c2 = Case::new(&changed, &p.status);
    c2.generation = 2;
    c2.children = ChildrenView {
        engine_objects: false,
        pods: 2,
        deployment: None,
        config_map: true,
        pod_problem: None,
        standby: false,
    };
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
    assert_eq!(p3.status.deployed_from.as_deref(), Some("s3://b/sp/savepoint-clicks-3f2a9c1e-upgrade-2-1"));
    assert_eq!(p3.status.reconciled_spec, Some(recorded(&changed)));
    assert_eq!(p3.status.phase, Phase::Deploying);
    assert_eq!(p3.status.current_parallelism, Some(3));
}

#[test]
fn a_failed_savepoint_removes_the_old_pods_then_falls_back_to_the_newest_checkpoint() {
    let s = spec();
    let mut changed = s.clone();
    changed.parallelism = 1;
    let mut st = deployed(&s);
    st.upgrade = Some(record(UpgradeKind::Upgrade, &changed, UpgradeStep::Stopping, Some("t")));
    let mut c = Case::new(&changed, &st);
    c.generation = 2;
    c.at = 30;
    c.trigger = Some(TriggerView::InProgress);
    let waiting = c.plan();
    assert_eq!(waiting.status.upgrade.unwrap().step, UpgradeStep::Stopping);
    assert!(waiting.actions.is_empty());
    c.trigger = Some(TriggerView::Failed("disk full".into()));
    let p = c.plan();
    let rec = p.status.upgrade.clone().unwrap();
    assert_eq!((rec.step, rec.restore_from.as_deref()), (UpgradeStep::Fencing, None));
    assert!(rec.note.unwrap().contains("disk full"));
    assert_eq!(p.actions, vec![Action::DeleteEngine]);
    assert_eq!(reasons(&p), vec!["SavepointFailed"]);
    // The pods are gone and storage has no such savepoint: the newest checkpoint.
    let mut c = Case::new(&changed, &p.status);
    c.generation = 2;
    c.at = 31;
    c.children = gone();
    c.engine = EngineView::Down("no engine pods are deployed".into());
    c.trigger = Some(TriggerView::Unknown);
    let p = c.plan();
    assert_eq!(p.actions, vec![Action::ApplyChildren]);
    assert_eq!((p.status.deployment, p.status.deployed_from.as_deref()), (2, Some("latest")));
    let fallback = p.events.iter().find(|e| e.reason == "SavepointFallback").unwrap();
    assert!(fallback.warning && fallback.message.contains("disk full"), "{fallback:?}");
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
            trigger_id: Some("clicks-3f2a9c1e-manual-3-1".into()),
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
    // Set to another value and back later: a new savepoint each time, never the first one
    // again (the engine would answer a known id with its old savepoint).
    let mut ids = Vec::new();
    let mut st = again_status.clone();
    for nonce in [4, 3] {
        let mut next = s.clone();
        next.savepoint_nonce = Some(nonce);
        let p = Case::new(&next, &st).plan();
        ids.push(p.status.pending_savepoint.clone().unwrap().trigger_id);
        st = p.status;
        st.pending_savepoint = None;
    }
    assert_eq!(ids, vec!["clicks-3f2a9c1e-manual-4-2", "clicks-3f2a9c1e-manual-3-3"]);
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

/// Finding 4 of issue 14: the savepoint may still complete, commit and mark the job
/// terminal after SIGTERM, so no restore point is chosen before every old pod is gone.
#[test]
fn a_stop_savepoint_in_flight_at_its_timeout_is_not_abandoned_before_the_old_pods_are_gone() {
    let s = spec();
    let mut changed = s.clone();
    changed.parallelism = 1;
    let mut st = deployed(&s);
    st.upgrade = Some(record(UpgradeKind::Upgrade, &changed, UpgradeStep::Stopping, Some("t")));
    let mut c = Case::new(&changed, &st);
    c.generation = 2;
    c.trigger = Some(TriggerView::InProgress);
    c.at = 61;
    let p = c.plan();
    let rec = p.status.upgrade.clone().unwrap();
    // The old deployment can still complete and commit the savepoint: no restore point yet.
    assert_eq!((rec.step, rec.restore_from.as_deref()), (UpgradeStep::Fencing, None), "{rec:?}");
    assert_eq!(p.actions, vec![Action::DeleteEngine]);
    assert_eq!(reasons(&p), vec!["SavepointTimedOut"]);
    let fencing = p.status.clone();
    let at = |children: ChildrenView, trigger: TriggerView| {
        let mut c = Case::new(&changed, &fencing);
        c.generation = 2;
        c.at = 62;
        c.children = children;
        c.engine = EngineView::Down("no engine pods are deployed".into());
        c.trigger = Some(trigger);
        c.plan()
    };
    // An operator restarted before the deletion deletes again; pods still terminating: wait.
    let mut c = Case::new(&changed, &fencing);
    c.generation = 2;
    c.trigger = Some(TriggerView::InProgress);
    assert_eq!(c.plan().actions, vec![Action::DeleteEngine]);
    let terminating = ChildrenView { engine_objects: false, pods: 2, ..gone() };
    let p = at(terminating, TriggerView::Unknown);
    assert!(p.actions.is_empty());
    assert_eq!(p.status.upgrade, fencing.upgrade, "nothing is chosen while a pod may still commit");
    // Once they are gone: the savepoint completed after all, and it is restored.
    let p = at(gone(), TriggerView::Completed("s3://b/sp/savepoint-t".into()));
    assert_eq!(p.actions, vec![Action::ApplyChildren]);
    assert_eq!((p.status.deployment, p.status.deployed_from.as_deref()), (2, Some("s3://b/sp/savepoint-t")));
    assert_eq!(p.status.last_savepoint.as_ref().map(|s| s.location.as_str()), Some("s3://b/sp/savepoint-t"));
    assert!(reasons(&p).contains(&"SavepointCompleted"), "{:?}", reasons(&p));
    assert!(!reasons(&p).contains(&"SavepointFallback"));
    // Storage cannot be read: wait, and say so once.
    let p = at(gone(), TriggerView::Unreadable("connection refused".into()));
    assert!(p.actions.is_empty());
    assert_eq!(p.status.upgrade.as_ref().map(|u| u.step), Some(UpgradeStep::Fencing));
    assert!(p.status.error.as_deref().is_some_and(|e| e.contains("connection refused")));
    assert_eq!(reasons(&p), vec!["SavepointUnknown"]);
    let mut c = Case::new(&changed, &p.status);
    c.generation = 2;
    c.children = gone();
    c.engine = EngineView::Down("none".into());
    c.trigger = Some(TriggerView::Unreadable("connection refused".into()));
    assert!(c.plan().events.is_empty());
    // It was never written: the fallback, and the storage error is cleared.
    let mut c = Case::new(&changed, &p.status);
    c.generation = 2;
    c.children = gone();
    c.engine = EngineView::Down("none".into());
    c.trigger = Some(TriggerView::Unknown);
    let p = c.plan();
    assert_eq!(p.status.deployed_from.as_deref(), Some("latest"));
    assert_eq!(p.status.error, None);
    assert!(reasons(&p).contains(&"SavepointFallback"));
    // The engine reports it completed before its pods were removed: used at once.
    let mut c = Case::new(&changed, &fencing);
    c.generation = 2;
    c.engine = state(JobStatus::Finished);
    c.trigger = Some(TriggerView::Completed("s3://b/sp/savepoint-t".into()));
    let p = c.plan();
    let rec = p.status.upgrade.unwrap();
    assert_eq!((rec.step, rec.restore_from.as_deref()), (UpgradeStep::Stopped, Some("s3://b/sp/savepoint-t")));
    assert_eq!(p.actions, vec![Action::DeleteEngine]);
}

#[test]
fn with_nothing_to_fall_back_to_a_savepoint_in_flight_is_awaited_not_aborted() {
    let mut s = spec();
    s.checkpointing.storage = None;
    let mut changed = s.clone();
    changed.parallelism = 1;
    let mut st = deployed(&s);
    st.upgrade = Some(record(UpgradeKind::Upgrade, &changed, UpgradeStep::Stopping, Some("t")));
    let mut c = Case::new(&changed, &st);
    c.generation = 2;
    c.at = 61;
    c.trigger = Some(TriggerView::InProgress);
    let p = c.plan();
    let rec = p.status.upgrade.clone().unwrap();
    assert_eq!(rec.step, UpgradeStep::Stopping);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(reasons(&p), vec!["SavepointTimedOut"]);
    // Said once.
    let mut c = Case::new(&changed, &p.status);
    c.generation = 2;
    c.at = 90;
    c.trigger = Some(TriggerView::InProgress);
    let again = c.plan();
    assert!(again.events.is_empty() && again.actions.is_empty());
    // The engine died meanwhile: the pods go, then storage decides; nothing there, empty state.
    c.engine = EngineView::Down("connection refused".into());
    c.trigger = Some(TriggerView::Unknown);
    let p = c.plan();
    assert_eq!(p.status.upgrade.as_ref().map(|u| u.step), Some(UpgradeStep::Fencing));
    assert_eq!(p.actions, vec![Action::DeleteEngine]);
    let mut c = Case::new(&changed, &p.status);
    c.generation = 2;
    c.children = gone();
    c.engine = EngineView::Down("none".into());
    c.trigger = Some(TriggerView::Unknown);
    let p = c.plan();
    assert_eq!((p.status.deployment, p.status.deployed_from.as_deref()), (2, None));
    assert!(p.events.iter().any(|e| e.reason == "SavepointFallback" && e.message.contains("empty state")));
}

/// Finding 6 of issue 14: two reconciles planned from the same status (two operators,
/// or one with a stale cache) must ask for the same savepoint, whatever their clocks.
#[test]
fn trigger_ids_follow_from_the_status_not_the_clock_and_a_retry_gets_a_new_one() {
    let mut s = spec();
    s.checkpointing.storage = None;
    let st = deployed(&s);
    let mut changed = s.clone();
    changed.parallelism = 3;
    let id = |st: &StreamJobStatus, at: i64| {
        let mut c = Case::new(&changed, st);
        c.generation = 2;
        c.at = at;
        let p = c.plan();
        (p.status.upgrade.as_ref().and_then(|u| u.trigger_id.clone()).unwrap(), p)
    };
    let (first, p) = id(&st, 60);
    assert_eq!(id(&st, 61).0, first, "two reconcilers of the same status, a second apart");
    assert_eq!(id(&st, 3600).0, first);
    assert!(first.starts_with("clicks-3f2a9c1e-upgrade-2-"), "{first}");
    // The savepoint fails and the upgrade is aborted (nothing to fall back to); its retry
    // gets a fresh id, so that the failed savepoint is not returned for it.
    let mut c = Case::new(&changed, &p.status);
    c.generation = 2;
    c.at = 62;
    c.trigger = Some(TriggerView::Failed("disk full".into()));
    let aborted = c.plan();
    assert!(aborted.status.upgrade.is_none(), "{:?}", aborted.status.upgrade);
    let (retry, _) = id(&aborted.status, 200);
    assert_ne!(retry, first);
    assert_eq!(id(&aborted.status, 201).0, retry);
}
