//! The coordinator's decisions on one attempt, driven without threads or sockets.

use std::sync::atomic::Ordering::Relaxed;

use super::*;
use crate::checkpoint::metadata::SubtaskState;
use crate::plan::{JobGraph, Vertex};

/// A job of two vertices: vertex 0 with 2 subtasks, vertex 1 with 1.
fn job() -> Arc<JobState> {
    let vertex = |id, parallelism| Vertex {
        id,
        uid: format!("v{id}"),
        parallelism,
        source: None,
        reads: None,
        ops: vec![],
        inputs: vec![],
        outputs: vec![],
    };
    let g = JobGraph {
        vertices: vec![vertex(0, 2), vertex(1, 1)],
        edges: vec![],
        max_parallelism: 128,
        local_time_zone: "UTC".into(),
        data_policy: None,
        state_backend: Default::default(),
    };
    JobState::new("j", "j.sql", &g)
}

/// Attempt 2: worker 0 ("w0") runs subtasks 0/0 and 1/0, worker 1 ("w1") runs 0/1.
fn attempt(job: &Arc<JobState>) -> RemoteAttempt {
    let names = BTreeMap::from([(0, "w0".to_string()), (1, "w1".to_string())]);
    RemoteAttempt::new(2, &[vec![0, 1], vec![0]], names, job.clone())
}

/// One line per action, to compare sequences of actions.
fn show(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Send(w, ToWorker::Deploy(spec)) => format!("send {w} deploy {} you={}", spec.attempt, spec.you),
            Action::Send(w, ToWorker::Cancel { attempt }) => format!("send {w} cancel {attempt}"),
            Action::Send(w, other) => format!("send {w} {other:?}"),
            Action::Checkpoint(CoordMsg::Ack { id, vertex, subtask, .. }) => {
                format!("checkpoint ack {id} {vertex}/{subtask}")
            }
            Action::Checkpoint(other) => format!("checkpoint {other:?}"),
            Action::TickCheckpoints => "tick checkpoints".into(),
        })
        .collect()
}

fn deployed(attempt: u64) -> ToCoordinator {
    ToCoordinator::Deployed { attempt, restore_read_bytes: 0 }
}

fn exited(attempt: u64, vertex: usize, subtask: usize) -> ToCoordinator {
    ToCoordinator::Exited { attempt, vertex, subtask }
}

fn ack(attempt: u64, id: u64) -> ToCoordinator {
    let state = SubtaskState { subtask: 0, file: None, sections: vec![] };
    ToCoordinator::Ack { attempt, id, vertex: 0, subtask: 0, result: Ok((state, vec![])), alignment_ms: 0, pause_us: 0 }
}

fn failed(attempt: u64, message: &str) -> ToCoordinator {
    ToCoordinator::Failed { attempt, message: message.into() }
}

fn alive(workers: &[usize]) -> HashSet<usize> {
    workers.iter().copied().collect()
}

fn spec() -> DeploySpec {
    DeploySpec {
        generation: 1,
        attempt: 2,
        job_id: "j".into(),
        file: "j.sql".into(),
        job_text: String::new(),
        config: BTreeMap::new(),
        restore: None,
        workers: vec!["w0:7000".into(), "w1:7000".into()],
        placement: vec![vec![0, 1], vec![0]],
        you: 0,
        deployment_name: String::new(),
    }
}

#[test]
fn each_worker_gets_its_part_then_the_job_runs_and_the_attempt_ends_with_the_last_exit() {
    let job = job();
    let mut a = attempt(&job);
    assert_eq!(a.workers(), [0, 1]);
    assert_eq!(show(&a.deploy(&spec())), ["send 0 deploy 2 you=0", "send 1 deploy 2 you=1"]);
    assert!(a.on_worker(0, deployed(2)).is_empty());
    assert_ne!(job.status(), JobStatus::Running, "running before every worker deployed");
    a.on_worker(1, deployed(2));
    assert_eq!(job.status(), JobStatus::Running);
    // While nothing stops the attempt, the checkpoint coordinator works.
    assert_eq!(show(&a.on_tick(Instant::now(), &alive(&[0, 1]))), ["tick checkpoints"]);
    assert_eq!(show(&a.on_worker(0, ack(2, 7))), ["checkpoint ack 7 0/0"]);
    a.on_worker(0, exited(2, 0, 0));
    a.on_worker(1, exited(2, 0, 1));
    assert!(!a.is_over());
    a.on_worker(0, exited(2, 1, 0));
    assert!(a.is_over());
    assert_eq!(a.finish(), Ok(None));
}

#[test]
fn messages_of_an_earlier_attempt_are_dropped() {
    let job = job();
    let mut a = attempt(&job);
    for w in [0, 1] {
        assert!(a.on_worker(w, deployed(1)).is_empty());
    }
    assert_ne!(job.status(), JobStatus::Running, "an earlier attempt's deployment counted");
    assert!(a.on_worker(0, ack(1, 7)).is_empty(), "an earlier attempt's ack reached the checkpoint coordinator");
    assert!(a.on_worker(0, failed(1, "late")).is_empty());
    assert_eq!(job.error(), None);
    let sample = MetricSample {
        vertex: 0,
        subtask: 0,
        counters: [5; 9],
        watermark: 3,
        pending_records: 0,
        splits: 2,
        ..Default::default()
    };
    a.on_worker(0, ToCoordinator::Metrics { attempt: 1, samples: vec![sample] });
    assert_eq!(job.subtasks[0].records_in.load(Relaxed), 0);
    for (w, v, s) in [(0, 0, 0), (1, 0, 1), (0, 1, 0)] {
        a.on_worker(w, exited(1, v, s));
    }
    assert!(!a.is_over(), "an earlier attempt's exits ended this one");
}

#[test]
fn a_worker_lost_before_deployment_fails_the_attempt() {
    let job = job();
    let mut a = attempt(&job);
    // Only a deployment that cannot be delivered fails it.
    a.on_undelivered(1, &ToWorker::Cancel { attempt: 2 });
    assert_eq!(job.error(), None);
    a.on_undelivered(1, &ToWorker::Deploy(Box::new(spec())));
    assert_eq!(job.error().as_deref(), Some("worker w1 was lost during deployment"));
    assert!(job.cancel.load(Ordering::SeqCst));
    // Its subtask counts as stopped once it is gone after the cancel.
    assert_eq!(show(&a.on_tick(Instant::now(), &alive(&[0]))), ["send 0 cancel 2", "send 1 cancel 2"]);
    a.on_worker(0, exited(2, 0, 0));
    a.on_worker(0, exited(2, 1, 0));
    assert!(a.is_over());
}

#[test]
fn a_worker_lost_while_its_subtasks_run_fails_the_attempt_and_one_lost_after_they_stopped_does_not() {
    let job = job();
    let mut a = attempt(&job);
    a.on_worker(0, deployed(2));
    a.on_worker(1, deployed(2));
    a.on_lost(1, "w1", "connection reset");
    assert_eq!(job.error().as_deref(), Some("worker w1 was lost: connection reset"));
    a.on_worker(0, exited(2, 0, 0));
    a.on_worker(0, exited(2, 1, 0));
    assert!(a.is_over(), "the lost worker's subtask still counted as running");

    let job2 = self::job();
    let mut b = attempt(&job2);
    b.on_worker(1, exited(2, 0, 1));
    b.on_lost(1, "w1", "connection reset");
    // A worker of no attempt may leave too.
    b.on_lost(5, "w5", "connection reset");
    assert_eq!(job2.error(), None, "a worker that had stopped failed the attempt");
}

#[test]
fn a_setup_failure_on_one_worker_is_the_attempts_setup_error() {
    let job = job();
    let mut a = attempt(&job);
    a.on_worker(0, deployed(2));
    a.on_worker(1, failed(2, "cannot read the snapshot"));
    assert_eq!(job.error().as_deref(), Some("worker w1: cannot read the snapshot"));
    // Its subtask never started: only worker 0's need to stop.
    assert_eq!(show(&a.on_tick(Instant::now(), &alive(&[0, 1]))), ["send 0 cancel 2", "send 1 cancel 2"]);
    a.on_worker(0, exited(2, 0, 0));
    a.on_worker(0, exited(2, 1, 0));
    assert!(a.is_over());
    assert_eq!(a.finish(), Err("worker w1: cannot read the snapshot".to_string()));
}

#[test]
fn a_failure_after_deployment_or_an_ending_is_not_a_setup_error() {
    let job = job();
    let mut a = attempt(&job);
    a.on_worker(1, deployed(2));
    a.on_worker(1, failed(2, "division by zero"));
    assert!(!a.is_over(), "a running worker's subtasks were taken as stopped");
    assert_eq!(a.finish(), Ok(None));

    let job = self::job();
    let mut b = attempt(&job);
    b.on_worker(1, failed(2, "cannot read the snapshot"));
    let ending = Ending::Finished { location: "file:///c/chk-3".into() };
    b.on_ending(ending.clone());
    assert_eq!(b.finish(), Ok(Some(ending)));
}

#[test]
fn an_ending_stops_every_subtask_and_the_checkpoint_coordinator() {
    let job = job();
    let mut a = attempt(&job);
    a.on_worker(0, deployed(2));
    a.on_worker(1, deployed(2));
    a.on_ending(Ending::Stopped { location: "file:///s/savepoint-1".into() });
    assert!(job.cancel.load(Ordering::SeqCst));
    let t0 = Instant::now();
    assert_eq!(show(&a.on_tick(t0, &alive(&[0, 1]))), ["send 0 cancel 2", "send 1 cancel 2"]);
    assert!(a.on_tick(t0, &alive(&[0, 1])).is_empty(), "the cancel was sent twice, or a checkpoint started");
}

#[test]
fn a_cancel_that_is_not_obeyed_within_30_s_is_given_up_on() {
    let job = job();
    let mut a = attempt(&job);
    job.fail("a task failed".into());
    let t0 = Instant::now();
    assert_eq!(show(&a.on_tick(t0, &alive(&[0, 1]))), ["send 0 cancel 2", "send 1 cancel 2"]);
    a.on_worker(1, exited(2, 0, 1));
    assert!(a.on_tick(t0 + CANCEL_GRACE, &alive(&[0, 1])).is_empty());
    assert!(!a.is_over(), "given up on at 30 s, not after");
    assert!(a.on_tick(t0 + CANCEL_GRACE + Duration::from_millis(1), &alive(&[0, 1])).is_empty());
    assert!(a.is_over());
}

#[test]
fn workers_gone_after_the_cancel_count_as_stopped() {
    let job = job();
    let mut a = attempt(&job);
    job.fail("a task failed".into());
    let t0 = Instant::now();
    a.on_tick(t0, &alive(&[0, 1]));
    a.on_tick(t0, &alive(&[1]));
    assert!(!a.is_over());
    a.on_tick(t0, &alive(&[]));
    assert!(a.is_over());
}

#[test]
fn a_metric_sample_is_relayed_once() {
    let job = job();
    let mut a = attempt(&job);
    let sample = |n, watermark| MetricSample {
        vertex: 0,
        subtask: 1,
        counters: [n; 9],
        watermark,
        pending_records: 4,
        splits: 7,
        ..Default::default()
    };
    let metrics = |samples| ToCoordinator::Metrics { attempt: 2, samples };
    a.on_worker(1, metrics(vec![sample(5, 10)]));
    a.on_worker(1, metrics(vec![sample(5, 10)]));
    let m = &job.subtasks[1];
    assert_eq!((m.vertex, m.subtask), (0, 1));
    assert_eq!((m.records_in.load(Relaxed), m.skipped_records.load(Relaxed)), (5, 5), "a sample counted twice");
    a.on_worker(1, metrics(vec![sample(8, 20)]));
    assert_eq!(m.records_in.load(Relaxed), 8);
    assert_eq!((m.watermark.load(Relaxed), m.pending_records.load(Relaxed)), (20, 4));
    assert_eq!(m.snapshot().splits, Some(7));
    // A worker that does not report splits leaves them unknown.
    let old: MetricSample = serde_json::from_str(
        r#"{"vertex":0,"subtask":1,"counters":[9,9,9,9,9,9,9,9,9],"watermark":20,"pendingRecords":4}"#,
    )
    .unwrap();
    a.on_worker(1, metrics(vec![old]));
    assert_eq!(m.snapshot().splits, None);
    assert_eq!((m.snapshot().first_record_ms, m.snapshot().last_record_ms), (None, None), "no record times yet");
    // Record times keep the earliest first and the latest last.
    let timed = |first, last| MetricSample { first_record_ms: first, last_record_ms: last, ..sample(9, 20) };
    a.on_worker(1, metrics(vec![timed(1_000, 1_500)]));
    a.on_worker(1, metrics(vec![timed(1_000, 2_500)]));
    a.on_worker(1, metrics(vec![timed(0, 0)]));
    assert_eq!((m.snapshot().first_record_ms, m.snapshot().last_record_ms), (Some(1_000), Some(2_500)));
    // Other subtasks are untouched.
    assert_eq!(job.subtasks[0].records_in.load(Relaxed), 0);
    assert_eq!(job.subtasks[0].snapshot().last_record_ms, None);
}

#[test]
fn records_taken_in_stamp_the_first_and_last_record_times() {
    let m = crate::metrics::SubtaskMetrics::new(0, 0);
    m.took_in(0);
    assert_eq!(m.snapshot().first_record_ms, None, "an empty batch is no record");
    let before = crate::job::now_ms();
    m.took_in(3);
    let first = m.snapshot().first_record_ms.unwrap();
    assert!(first >= before && first <= crate::job::now_ms());
    m.saw_records_at(first + 5_000, first + 5_000);
    let s = m.snapshot();
    assert_eq!((s.records_in, s.first_record_ms, s.last_record_ms), (3, Some(first), Some(first + 5_000)));
}

#[test]
fn a_stopped_rpc_server_ends_the_attempt() {
    let job = job();
    let mut a = attempt(&job);
    a.on_rpc_stopped();
    assert!(a.is_over());
    assert_eq!(job.error().as_deref(), Some("the RPC server stopped"));
}

#[test]
fn a_worker_speaks_only_for_the_subtasks_it_runs() {
    let job = job();
    let mut a = attempt(&job);
    a.deploy(&spec());
    let state = || SubtaskState { subtask: 1, file: None, sections: vec![] };
    // Subtask 0/1 runs on worker 1: worker 0 cannot acknowledge, finish, commit or end it.
    let forged = [
        ToCoordinator::Ack {
            attempt: 2,
            id: 1,
            vertex: 0,
            subtask: 1,
            result: Ok((state(), vec![])),
            alignment_ms: 0,
            pause_us: 0,
        },
        ToCoordinator::Finished { attempt: 2, vertex: 0, subtask: 1, sections: vec![], last_checkpoint: 0 },
        ToCoordinator::Committed { attempt: 2, id: 1, vertex: 0, subtask: 1 },
        exited(2, 0, 1),
        // Nor a subtask that does not exist.
        ToCoordinator::Committed { attempt: 2, id: 1, vertex: 7, subtask: 0 },
    ];
    for msg in forged {
        let what = format!("{msg:?}");
        assert!(show(&a.on_worker(0, msg)).is_empty(), "worker 0 spoke for another's subtask: {what}");
    }
    let sample = MetricSample {
        vertex: 0,
        subtask: 1,
        counters: [5; 9],
        watermark: 1,
        pending_records: 0,
        splits: 0,
        ..Default::default()
    };
    a.on_worker(0, ToCoordinator::Metrics { attempt: 2, samples: vec![sample.clone()] });
    assert_eq!(job.subtasks[1].records_in.load(Relaxed), 0, "a forged sample was counted");
    // Worker 1 still has its subtask to stop: worker 0's forged exit did not count.
    for (v, s) in [(0, 0), (1, 0)] {
        a.on_worker(0, exited(2, v, s));
    }
    assert!(!a.is_over(), "a forged exit ended the attempt");
    // The owner is heard.
    let ack = ToCoordinator::Ack {
        attempt: 2,
        id: 1,
        vertex: 0,
        subtask: 1,
        result: Ok((state(), vec![])),
        alignment_ms: 0,
        pause_us: 0,
    };
    assert_eq!(show(&a.on_worker(1, ack)), ["checkpoint ack 1 0/1"]);
    a.on_worker(1, ToCoordinator::Metrics { attempt: 2, samples: vec![sample] });
    assert_eq!(job.subtasks[1].records_in.load(Relaxed), 5);
    a.on_worker(1, exited(2, 0, 1));
    assert!(a.is_over());
}
