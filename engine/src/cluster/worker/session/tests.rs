//! The worker's protocol decisions, driven without threads or sockets.

use std::collections::BTreeMap;

use super::*;
use crate::checkpoint::SnapshotKind;
use crate::checkpoint::metadata::SubtaskState;

const TIMEOUT: Duration = Duration::from_secs(10);

/// What the driver would read from the subtasks.
#[derive(Default)]
struct Subtasks {
    failure: Option<String>,
    stopping: bool,
}

impl Observe for Subtasks {
    fn failure(&self) -> Option<String> {
        self.failure.clone()
    }
    fn stopping(&self) -> bool {
        self.stopping
    }
    fn samples(&self, only: Option<(usize, usize)>) -> Vec<MetricSample> {
        let all = [(0, 0), (1, 0)];
        let sample = |(vertex, subtask)| MetricSample {
            vertex,
            subtask,
            counters: [1; 9],
            watermark: 0,
            pending_records: 0,
            splits: 0,
            ..Default::default()
        };
        all.into_iter().filter(|k| only.is_none_or(|o| o == *k)).map(sample).collect()
    }
}

/// One line per step, to compare sequences of steps.
fn show(steps: &[Step]) -> Vec<String> {
    let frame = |m: &ToCoordinator| match m {
        ToCoordinator::Deployed { attempt, restore_read_bytes: 0 } => format!("deployed {attempt}"),
        ToCoordinator::Deployed { attempt, restore_read_bytes } => {
            format!("deployed {attempt} (read {restore_read_bytes} bytes)")
        }
        ToCoordinator::Failed { attempt, message } => format!("failed {attempt}: {message}"),
        ToCoordinator::Ack { attempt, id, vertex, subtask, .. } => format!("ack {attempt} {id} {vertex}/{subtask}"),
        ToCoordinator::Finished { attempt, vertex, subtask, .. } => format!("finished {attempt} {vertex}/{subtask}"),
        ToCoordinator::Committed { attempt, id, vertex, subtask } => {
            format!("committed {attempt} {id} {vertex}/{subtask}")
        }
        ToCoordinator::Exited { attempt, vertex, subtask } => format!("exited {attempt} {vertex}/{subtask}"),
        ToCoordinator::Metrics { attempt, samples } => {
            let of: Vec<String> = samples.iter().map(|s| format!("{}/{}", s.vertex, s.subtask)).collect();
            format!("metrics {attempt} [{}]", of.join(" "))
        }
        other => format!("{other:?}"),
    };
    steps
        .iter()
        .map(|s| match s {
            Step::Send(m) => format!("send {}", frame(m)),
            Step::StopAttempt => "stop attempt".into(),
            Step::Deploy(spec) => format!("deploy {}", spec.attempt),
            Step::Prefetch(spec) => format!("prefetch {}", spec.restore.as_deref().unwrap_or("-")),
            Step::Trigger { attempt, barrier } => format!("trigger {attempt} {}", barrier.id),
            Step::Commit(id) => format!("commit {id}"),
            Step::Resume => "resume".into(),
            Step::Cancel => "cancel".into(),
            Step::CloseExchange => "close exchange".into(),
            Step::Release => "release".into(),
            Step::End { exit } => format!("end exit={exit}"),
        })
        .collect()
}

fn spec(attempt: u64) -> DeploySpec {
    DeploySpec {
        generation: 1,
        attempt,
        job_id: "j".into(),
        file: "j.sql".into(),
        job_text: String::new(),
        config: BTreeMap::new(),
        restore: None,
        workers: vec!["w0:1".into()],
        placement: vec![vec![0], vec![0]],
        you: 0,
        deployment_name: String::new(),
    }
}

fn trigger(attempt: u64, id: u64) -> ToWorker {
    let barrier = BarrierWire {
        id,
        kind: SnapshotKind::Checkpoint,
        incremental: true,
        stop: false,
        drain: false,
        dir: "file:///c/chk-1".into(),
    };
    ToWorker::Trigger { attempt, barrier }
}

fn ack(id: u64) -> CoordMsg {
    let state = SubtaskState { subtask: 0, file: None, sections: vec![] };
    CoordMsg::Ack { id, vertex: 0, subtask: 0, result: Ok((state, vec![])), alignment_ms: 0, pause_us: 0 }
}

/// A session with attempt `attempt` of two subtasks deployed.
fn deployed(attempt: u64, now: Instant) -> Session {
    let mut s = Session::new("coordinator:6123", TIMEOUT, now);
    assert_eq!(show(&s.on_coordinator(ToWorker::Deploy(Box::new(spec(attempt))), now)), [format!("deploy {attempt}")]);
    assert_eq!(show(&s.on_deployed(&spec(attempt), Ok((2, 0)))), [format!("send deployed {attempt}")]);
    s
}

#[test]
fn messages_of_another_attempt_are_dropped() {
    let t0 = Instant::now();
    let mut s = deployed(1, t0);
    let here = Subtasks::default();
    // The coordinator moved on to attempt 2 before this worker heard of it.
    for stale in [trigger(2, 5), ToWorker::Commit { attempt: 2, id: 5 }, ToWorker::Resume { attempt: 2 }] {
        assert!(s.on_coordinator(stale, t0).is_empty());
    }
    assert!(s.on_coordinator(ToWorker::Cancel { attempt: 0 }, t0).is_empty());
    assert!(s.on_task(0, ack(5), Some(&here)).is_empty(), "a report of an earlier attempt was sent");
    // The current attempt's messages go through.
    assert_eq!(show(&s.on_coordinator(trigger(1, 5), t0)), ["trigger 1 5"]);
    assert_eq!(show(&s.on_coordinator(ToWorker::Commit { attempt: 1, id: 5 }, t0)), ["commit 5"]);
    assert_eq!(show(&s.on_coordinator(ToWorker::Resume { attempt: 1 }, t0)), ["resume"]);
    assert_eq!(show(&s.on_coordinator(ToWorker::Cancel { attempt: 1 }, t0)), ["cancel"]);
    assert_eq!(show(&s.on_task(1, ack(5), Some(&here))), ["send ack 1 5 0/0"]);
}

#[test]
fn a_prefetch_reads_state_beside_the_running_attempt_and_changes_nothing_of_it() {
    let t0 = Instant::now();
    let mut s = deployed(1, t0);
    let ahead = DeploySpec { restore: Some("s3://b/j/chk-4".into()), ..spec(7) };
    assert_eq!(show(&s.on_coordinator(ToWorker::Prefetch(Box::new(ahead)), t0)), ["prefetch s3://b/j/chk-4"]);
    // Attempt 1 still runs: its messages go through, and nothing was stopped.
    assert_eq!(show(&s.on_coordinator(trigger(1, 5), t0)), ["trigger 1 5"]);
    assert_eq!(show(&s.on_deployed(&spec(2), Ok((1, 4096)))), ["send deployed 2 (read 4096 bytes)"]);
}

#[test]
fn a_new_deployment_stops_the_running_attempt_first_and_its_late_reports_are_dropped() {
    let t0 = Instant::now();
    let mut s = deployed(1, t0);
    let steps = s.on_coordinator(ToWorker::Deploy(Box::new(spec(2))), t0);
    assert_eq!(show(&steps), ["stop attempt", "deploy 2"]);
    // The stopped attempt's subtasks still report while they end.
    let exited = CoordMsg::Exited { vertex: 0, subtask: 0 };
    assert!(s.on_task(1, exited, Some(&Subtasks::default())).is_empty());
    assert_eq!(show(&s.on_deployed(&spec(2), Ok((2, 0)))), ["send deployed 2"]);
    assert_eq!(show(&s.on_coordinator(trigger(2, 1), t0)), ["trigger 2 1"]);
}

#[test]
fn a_deployment_that_fails_is_reported_and_leaves_nothing_running() {
    let t0 = Instant::now();
    let mut s = Session::new("coordinator:6123", TIMEOUT, t0);
    s.on_coordinator(ToWorker::Deploy(Box::new(spec(3))), t0);
    let steps = s.on_deployed(&spec(3), Err("the job here has [2, 1]".into()));
    assert_eq!(show(&steps), ["send failed 3: the job here has [2, 1]"]);
    assert!(s.on_coordinator(trigger(3, 1), t0).is_empty());
    assert!(s.on_tick(t0 + METRICS_INTERVAL, None).is_empty(), "metrics of an attempt that does not run");
}

#[test]
fn a_storage_failure_on_trigger_fails_the_attempt() {
    let mut s = deployed(1, Instant::now());
    let steps = s.on_trigger_failed(1, "s3://b/c: access denied".into());
    assert_eq!(show(&steps), ["send failed 1: checkpoint storage: s3://b/c: access denied"]);
}

#[test]
fn a_failure_is_reported_once_before_the_first_exit_and_the_last_exit_releases_the_attempt() {
    let mut s = deployed(1, Instant::now());
    let failed = Subtasks { failure: Some("division by zero".into()), stopping: true };
    let exit = |v| CoordMsg::Exited { vertex: v, subtask: 0 };
    assert_eq!(
        show(&s.on_task(1, exit(1), Some(&failed))),
        ["send failed 1: division by zero", "send metrics 1 [1/0]", "send exited 1 1/0"]
    );
    assert_eq!(show(&s.on_task(1, exit(0), Some(&failed))), ["send metrics 1 [0/0]", "send exited 1 0/0", "release"]);
    // Released: nothing runs here any more.
    assert!(s.on_task(1, ack(1), Some(&failed)).is_empty());
    assert!(s.on_coordinator(ToWorker::Cancel { attempt: 1 }, Instant::now()).is_empty());
}

#[test]
fn a_stopping_attempt_closes_its_data_connections() {
    let t0 = Instant::now();
    let mut s = deployed(1, t0);
    assert!(s.on_tick(t0, Some(&Subtasks::default())).is_empty());
    let stopping = Subtasks { failure: None, stopping: true };
    assert_eq!(show(&s.on_tick(t0, Some(&stopping))), ["close exchange"]);
}

#[test]
fn running_subtasks_report_their_counters_every_500_ms() {
    let t0 = Instant::now();
    let mut s = deployed(1, t0);
    let here = Subtasks::default();
    assert!(s.on_tick(t0 + Duration::from_millis(499), Some(&here)).is_empty());
    let t1 = t0 + METRICS_INTERVAL;
    assert_eq!(show(&s.on_tick(t1, Some(&here))), ["send metrics 1 [0/0 1/0]"]);
    assert!(s.on_tick(t1 + Duration::from_millis(100), Some(&here)).is_empty(), "sent twice in one interval");
    assert_eq!(show(&s.on_tick(t1 + METRICS_INTERVAL, Some(&here))), ["send metrics 1 [0/0 1/0]"]);
}

#[test]
fn a_silent_coordinator_ends_the_session_after_the_heartbeat_timeout_and_any_message_counts() {
    let t0 = Instant::now();
    let mut s = Session::new("coordinator:6123", TIMEOUT, t0);
    assert!(s.on_tick(t0 + TIMEOUT, None).is_empty());
    // A heartbeat at 9 s: the silence starts again.
    s.on_coordinator(ToWorker::Heartbeat, t0 + Duration::from_secs(9));
    assert!(s.on_tick(t0 + Duration::from_secs(19), None).is_empty());
    let late = t0 + Duration::from_secs(19) + Duration::from_millis(1);
    assert_eq!(show(&s.on_tick(late, None)), ["end exit=false"]);
}

#[test]
fn only_an_exit_or_a_shutdown_ends_the_worker_and_a_lost_connection_registers_again() {
    let t0 = Instant::now();
    let exit = ToWorker::Exit { reason: "the job finished".into() };
    assert_eq!(show(&deployed(1, t0).on_coordinator(exit, t0)), ["end exit=true"]);
    assert_eq!(show(&deployed(1, t0).on_shutdown()), ["end exit=true"]);
    assert_eq!(show(&deployed(1, t0).on_coordinator_lost("connection reset")), ["end exit=false"]);
    // A silent coordinator also stops the attempt before ending the session.
    let mut s = deployed(1, t0);
    let stopping = Subtasks { failure: None, stopping: true };
    let steps = s.on_tick(t0 + TIMEOUT + Duration::from_millis(1), Some(&stopping));
    assert_eq!(show(&steps), ["close exchange", "end exit=false"]);
}
