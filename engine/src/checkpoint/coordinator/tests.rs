//! The coordinator's decisions, driven without threads or sockets.

use std::cell::RefCell;

use super::*;
use crate::checkpoint::lineage::OWNER;
use crate::checkpoint::metadata::{FORMAT_VERSION, SectionKind};
use crate::plan::JobGraph;

/// Records what the coordinator asks of the subtasks.
#[derive(Default)]
struct Fake {
    triggered: RefCell<Vec<u64>>,
    resumed: RefCell<usize>,
    committed: RefCell<Vec<u64>>,
    sinks: HashSet<(usize, usize)>,
}

impl Cluster for Fake {
    fn trigger(&self, barrier: &Barrier) {
        self.triggered.borrow_mut().push(barrier.id);
    }
    fn resume(&self) {
        *self.resumed.borrow_mut() += 1;
    }
    fn commit(&self, id: u64) -> HashSet<(usize, usize)> {
        self.committed.borrow_mut().push(id);
        self.sinks.clone()
    }
}

/// Two vertices: a source (2 subtasks) and a sink (1 subtask).
fn coordinator(job_dir: &Storage, interval: Option<Duration>) -> CheckpointCoordinator {
    let g = JobGraph {
        vertices: vec![],
        edges: vec![],
        max_parallelism: 128,
        local_time_zone: "UTC".into(),
        data_policy: None,
        state_backend: Default::default(),
    };
    let job = JobState::new("j", "j.sql", &g);
    let opts = CheckpointOptions { job_dir: Some(job_dir.clone()), interval, ..CheckpointOptions::default() };
    let v = |uid: &str, p| VertexMeta { uid: uid.into(), name: uid.into(), parallelism: p, operators: vec![] };
    CheckpointCoordinator::new(opts, job, 128, vec![v("src", 2), v("sink", 1)], 1)
}

fn ack(id: u64, vertex: usize, subtask: usize) -> CoordMsg {
    CoordMsg::Ack {
        id,
        vertex,
        subtask,
        result: Ok((SubtaskState { subtask, file: None, sections: vec![] }, vec![])),
        alignment_ms: 3,
        pause_us: 40,
    }
}

fn finished(vertex: usize, subtask: usize, last_checkpoint: u64) -> CoordMsg {
    let mut snapshot = SubtaskSnapshot::default();
    snapshot.sections.push((SectionKind::Split, vec![1, 2, 3]));
    CoordMsg::Finished { vertex, subtask, snapshot, last_checkpoint }
}

#[test]
fn a_checkpoint_completes_on_the_last_ack_and_then_sinks_commit() {
    let dir = Storage::in_memory().child("j");
    let mut c = coordinator(&dir, Some(Duration::ZERO));
    let fake = Fake::default();
    c.reset_attempt(&fake);
    c.tick(&fake);
    assert_eq!(*fake.triggered.borrow(), vec![1]);
    c.tick(&fake); // one checkpoint at a time
    assert_eq!(*fake.triggered.borrow(), vec![1]);
    assert_eq!(c.on_message(ack(1, 0, 0), &fake), None);
    assert_eq!(c.on_message(ack(1, 0, 1), &fake), None);
    assert!(fake.committed.borrow().is_empty(), "committed before every subtask acknowledged");
    assert!(!dir.child("chk-1").exists("_metadata").unwrap());
    assert_eq!(c.on_message(ack(1, 1, 0), &fake), None);
    assert!(dir.child("chk-1").exists("_metadata").unwrap());
    assert_eq!(*fake.committed.borrow(), vec![1]);
    let r = c.job.last_completed_checkpoint().unwrap();
    assert_eq!((r.id, r.alignment_ms, r.status), (1, 3, SnapshotStatus::Completed));
}

#[test]
fn a_checkpoint_past_its_timeout_is_aborted_and_the_next_one_starts() {
    let dir = Storage::in_memory().child("j");
    let mut c = coordinator(&dir, Some(Duration::ZERO));
    c.opts.timeout = Duration::from_millis(1);
    let fake = Fake::default();
    c.reset_attempt(&fake);
    c.tick(&fake);
    std::thread::sleep(Duration::from_millis(5));
    c.tick(&fake); // aborts checkpoint 1
    let history = c.job.checkpoints();
    assert_eq!(history[0].status, SnapshotStatus::Failed);
    assert!(history[0].failure.as_deref().is_some_and(|f| f.contains("execution.checkpointing.timeout")));
    c.tick(&fake);
    assert_eq!(*fake.triggered.borrow(), vec![1, 2]);
    // The aborted checkpoint's acks no longer count.
    for (v, s) in [(0, 0), (0, 1), (1, 0)] {
        assert_eq!(c.on_message(ack(1, v, s), &fake), None);
    }
    assert!(fake.committed.borrow().is_empty());
}

/// Checkpoint 1 fails after subtask (0, 0) wrote its state file; returns
/// whether the file is still there.
fn file_left_by_a_failed_checkpoint(incremental: bool) -> bool {
    let dir = Storage::in_memory().child("j");
    let mut c = coordinator(&dir, Some(Duration::ZERO));
    c.opts.incremental = incremental;
    let fake = Fake::default();
    c.reset_attempt(&fake);
    c.tick(&fake);
    dir.child("chk-1").put("src/0.state", b"changes").unwrap();
    assert_eq!(c.on_message(ack(1, 0, 0), &fake), None);
    let failed =
        CoordMsg::Ack { id: 1, vertex: 0, subtask: 1, result: Err("disk full".into()), alignment_ms: 0, pause_us: 0 };
    assert_eq!(c.on_message(failed, &fake), None);
    assert!(c.pending.is_none());
    dir.child("chk-1").exists("src/0.state").unwrap()
}

#[test]
fn a_failed_incremental_checkpoint_keeps_the_files_later_ones_build_on() {
    assert!(file_left_by_a_failed_checkpoint(true), "a subtask's next changes refer to this file");
    assert!(!file_left_by_a_failed_checkpoint(false), "a full checkpoint's leftovers are cleaned up");
}

#[test]
fn a_failed_ack_aborts_and_resumes_a_stop_with_savepoint() {
    let dir = Storage::in_memory().child("j");
    let mut c = coordinator(&dir, None);
    let fake = Fake::default();
    c.reset_attempt(&fake);
    c.job.request_savepoint(Some("t".into()), None, true, false).unwrap();
    // The in-memory store has no URI: trigger into a directory of it directly.
    let req = c.job.next_savepoint_request().unwrap();
    c.trigger_savepoint_to(req, dir.child("sp"), &fake);
    assert_eq!(fake.triggered.borrow().len(), 1);
    let id = fake.triggered.borrow()[0];
    let failed = CoordMsg::Ack {
        id,
        vertex: 0,
        subtask: 1,
        result: Err("s3://b/x: unreachable".into()),
        alignment_ms: 0,
        pause_us: 0,
    };
    assert_eq!(c.on_message(failed, &fake), None);
    assert_eq!(*fake.resumed.borrow(), 1, "sources were not resumed");
    assert_eq!(c.job.savepoint("t").unwrap().status, SnapshotStatus::Failed);
    assert!(fake.committed.borrow().is_empty());
    // A late ack of the aborted checkpoint changes nothing.
    assert_eq!(c.on_message(ack(id, 0, 0), &fake), None);
    assert!(c.pending.is_none());
}

#[test]
fn a_finished_subtask_counts_only_for_checkpoints_after_its_last_one() {
    let dir = Storage::in_memory().child("j");
    let mut c = coordinator(&dir, Some(Duration::ZERO));
    let fake = Fake { sinks: [(1, 0)].into(), ..Fake::default() };
    c.reset_attempt(&fake);
    c.tick(&fake); // checkpoint 1
    // Source 0 took part in checkpoint 1, then finished: its ack is still due.
    assert_eq!(c.on_message(finished(0, 0, 1), &fake), None);
    assert_eq!(c.on_message(ack(1, 0, 1), &fake), None);
    assert_eq!(c.on_message(ack(1, 1, 0), &fake), None);
    assert!(fake.committed.borrow().is_empty(), "completed without source 0's ack");
    assert_eq!(c.on_message(ack(1, 0, 0), &fake), None);
    assert_eq!(*fake.committed.borrow(), vec![1]);
    // Everything finishes: a final checkpoint, then the job ends once the sink committed.
    assert_eq!(c.on_message(finished(0, 1, 1), &fake), None);
    assert_eq!(c.on_message(finished(1, 0, 1), &fake), None);
    assert_eq!(*fake.committed.borrow(), vec![1, 2]);
    assert!(dir.child("chk-2").exists("_metadata").unwrap());
    let end = c.on_message(CoordMsg::Committed { id: 2, vertex: 1, subtask: 0 }, &fake);
    assert_eq!(end, Some(Ending::Finished { location: dir.child("chk-2").uri() }));
    assert!(store::read_terminal(&dir).unwrap().is_some_and(|t| t.reason == "FINISHED"));
}

#[test]
fn an_intermediate_savepoint_commits_nothing_and_a_stop_savepoint_commits_after_the_terminal_marker() {
    let dir = Storage::in_memory().child("j");
    let mut c = coordinator(&dir, None);
    let fake = Fake { sinks: [(1, 0)].into(), ..Fake::default() };
    c.reset_attempt(&fake);
    c.job.request_savepoint(Some("sp".into()), None, false, false).unwrap();
    let req = c.job.next_savepoint_request().unwrap();
    c.trigger_savepoint_to(req, dir.child("sp"), &fake);
    for (v, s) in [(0, 0), (0, 1), (1, 0)] {
        assert_eq!(c.on_message(ack(1, v, s), &fake), None);
    }
    assert_eq!(c.job.savepoint("sp").unwrap().status, SnapshotStatus::Completed);
    assert!(fake.committed.borrow().is_empty(), "an intermediate savepoint committed output");
    assert!(c.latest.is_none(), "an intermediate savepoint became a recovery point");
    c.job.request_savepoint(Some("stop".into()), None, true, false).unwrap();
    let req = c.job.next_savepoint_request().unwrap();
    c.trigger_savepoint_to(req, dir.child("stop"), &fake);
    for (v, s) in [(0, 0), (0, 1), (1, 0)] {
        assert_eq!(c.on_message(ack(2, v, s), &fake), None);
    }
    assert_eq!(*fake.committed.borrow(), vec![2]);
    // The marker is written before the sinks commit.
    assert!(store::read_terminal(&dir).unwrap().is_some_and(|t| t.reason == "STOPPED"));
    let end = c.on_message(CoordMsg::Committed { id: 2, vertex: 1, subtask: 0 }, &fake);
    assert_eq!(end, Some(Ending::Stopped { location: dir.child("stop").uri() }));
}

#[test]
fn a_trigger_id_whose_savepoint_exists_answers_with_it_if_it_is_this_jobs() {
    let dir = Storage::in_memory().child("j");
    let mut c = coordinator(&dir, None);
    let fake = Fake::default();
    c.reset_attempt(&fake);
    let ours = dir.child("sp/savepoint-again");
    let meta = |job: &str| Metadata {
        format_version: FORMAT_VERSION,
        generation: 1,
        job_id: job.into(),
        checkpoint_id: 1,
        kind: SnapshotKind::Savepoint,
        max_parallelism: 128,
        timestamp: String::new(),
        vertices: vec![],
        files: vec![],
        checksum: None,
    };
    store::write_metadata(&ours, &meta("j")).unwrap();
    store::write_metadata(&dir.child("sp/savepoint-theirs"), &meta("other")).unwrap();
    for id in ["again", "theirs"] {
        c.job.request_savepoint(Some(id.into()), None, false, false).unwrap();
        let req = c.job.next_savepoint_request().unwrap();
        c.trigger_savepoint_into(req, dir.child("sp"), &fake);
    }
    assert!(fake.triggered.borrow().is_empty(), "a savepoint was taken over an existing one");
    assert_eq!(c.job.savepoint("again").unwrap().location, Some(ours.uri()));
    let theirs = c.job.savepoint("theirs").unwrap();
    assert!(theirs.error.as_deref().is_some_and(|e| e.contains("savepoint of job `other`")), "{theirs:?}");
}

#[test]
fn a_coordinator_superseded_while_completing_keeps_the_snapshot_and_commits_nothing() {
    let dir = Storage::in_memory().child("j");
    let mut c = coordinator(&dir, Some(Duration::ZERO));
    let (fence, _) = crate::checkpoint::lineage::claim(&dir, "a").unwrap();
    c.fence = Some(fence);
    let fake = Fake { sinks: [(1, 0)].into(), ..Fake::default() };
    c.reset_attempt(&fake);
    c.tick(&fake);
    assert!(dir.child("chk-1").exists(OWNER).unwrap(), "the checkpoint directory was not reserved");
    assert_eq!(c.on_message(ack(1, 0, 0), &fake), None);
    assert_eq!(c.on_message(ack(1, 0, 1), &fake), None);
    // A new coordinator claims generation 2 before the last acknowledgement.
    crate::checkpoint::lineage::claim(&dir, "a").unwrap();
    assert_eq!(c.on_message(ack(1, 1, 0), &fake), None);
    assert!(fake.committed.borrow().is_empty(), "a superseded coordinator committed");
    assert!(c.fenced().is_some_and(|w| w.contains("superseded by generation 2")));
    // The snapshot stays: the new coordinator may have restored it.
    assert!(dir.child("chk-1").exists("_metadata").unwrap());
    // Ids reserved by another generation are skipped.
    let (other, _) = crate::checkpoint::lineage::claim(&dir, "b").unwrap();
    assert!(other.reserve(2).unwrap());
    let mut d = coordinator(&dir, Some(Duration::ZERO));
    d.fence = Some(crate::checkpoint::lineage::claim(&dir, "c").unwrap().0);
    d.next_id = 2;
    d.reset_attempt(&fake);
    d.tick(&fake);
    assert_eq!(fake.triggered.borrow().last(), Some(&3));
}

#[test]
fn a_savepoint_takes_precedence_over_a_periodic_checkpoint_in_flight() {
    let dir = Storage::in_memory().child("j");
    let sp = tempfile::tempdir().unwrap();
    let mut c = coordinator(&dir, Some(Duration::ZERO));
    c.opts.savepoint_dir = Some(sp.path().display().to_string());
    let fake = Fake::default();
    c.reset_attempt(&fake);
    c.tick(&fake);
    assert_eq!(c.on_message(ack(1, 0, 0), &fake), None);
    c.job.request_savepoint(Some("up".into()), None, false, false).unwrap();
    c.tick(&fake);
    assert_eq!(*fake.triggered.borrow(), vec![1, 2], "the savepoint waited behind checkpoint 1");
    let one = c.job.checkpoints().into_iter().find(|r| r.id == 1).unwrap();
    assert_eq!(one.status, SnapshotStatus::Failed);
    assert!(one.failure.as_deref().is_some_and(|f| f.contains("savepoint `up` takes precedence")), "{one:?}");
    // Late acks of the aborted checkpoint count for nothing; the savepoint
    // completes on its own, and a second request waits behind it.
    for (v, s) in [(0, 1), (1, 0)] {
        assert_eq!(c.on_message(ack(1, v, s), &fake), None);
    }
    c.job.request_savepoint(Some("next".into()), None, false, false).unwrap();
    c.tick(&fake);
    assert_eq!(*fake.triggered.borrow(), vec![1, 2], "a savepoint preempted another savepoint");
    for (v, s) in [(0, 0), (0, 1), (1, 0)] {
        assert_eq!(c.on_message(ack(2, v, s), &fake), None);
    }
    assert_eq!(c.job.savepoint("up").unwrap().status, SnapshotStatus::Completed);
    assert!(sp.path().join("savepoint-up/_metadata").exists());
    assert!(!dir.child("chk-1").exists("_metadata").unwrap());
    assert!(fake.committed.borrow().is_empty(), "an intermediate savepoint commits nothing");
    c.tick(&fake);
    assert_eq!(*fake.triggered.borrow(), vec![1, 2, 3], "the queued savepoint runs next");
}

#[test]
fn a_savepoint_never_preempts_another_savepoint_or_a_final_checkpoint() {
    let barrier =
        |kind| BarrierInfo { id: 1, kind, incremental: false, stop: false, drain: false, dir: Storage::in_memory() };
    assert!(savepoint_preempts(&barrier(SnapshotKind::Checkpoint), false));
    assert!(!savepoint_preempts(&barrier(SnapshotKind::Checkpoint), true));
    assert!(!savepoint_preempts(&barrier(SnapshotKind::Savepoint), false));
}
