//! What a running job's subtasks measure, on small jobs in this process:
//! busy, backpressured and idle time, and a rate-limited source's lag. The
//! autoscaler reads these, so each must mean what it says: a source waiting
//! for its schedule is idle, a slow sink is busy, and a source held back by
//! backpressure falls behind its schedule.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::*;
use crate::config::Config;
use crate::metrics::{Rates, Sample};

/// Runs `sql` (a datagen table `src` into a blackhole table `out`) with
/// record batches of 10 rows, so that a slow sink soon backpressures.
fn start(sql: &str) -> (Arc<JobState>, JoinHandle<Result<(), crate::error::EngineError>>) {
    let job = crate::local::compile_text(sql, "j.sql").unwrap();
    let config = Config { values: [("execution.batch-size".to_string(), "10".to_string())].into() };
    let (graph, options) = crate::local::prepare(&job, &config, "j").unwrap();
    let state = JobState::new("j", "j.sql", &graph);
    let s = state.clone();
    (state, std::thread::spawn(move || execute(&graph, &s, &options)))
}

fn sql(rate: u64, sink: &str) -> String {
    format!(
        "CREATE TABLE src (x BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '{rate}');
CREATE TABLE out (x BIGINT) WITH ('connector' = 'blackhole'{sink});
INSERT INTO out SELECT x FROM src;"
    )
}

/// The one subtask of vertex `v`.
fn sample(state: &JobState, v: usize) -> Sample {
    state.subtasks.iter().find(|m| m.vertex == v).unwrap().snapshot()
}

/// Each vertex's rates over a second of the running job, after its first half second.
fn rates(state: &JobState) -> Vec<Rates> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while state.status() != JobStatus::Running && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    let before: Vec<Sample> = (0..state.vertices.len()).map(|v| sample(state, v)).collect();
    std::thread::sleep(Duration::from_secs(1));
    (0..state.vertices.len()).map(|v| Rates::between(&before[v], &sample(state, v))).collect()
}

fn stop(state: &JobState, h: JoinHandle<Result<(), crate::error::EngineError>>) {
    state.request_cancel();
    h.join().unwrap().unwrap();
}

#[test]
fn a_source_waiting_for_its_rate_is_idle_not_busy_and_on_schedule() {
    let (state, h) = start(&sql(1000, ""));
    assert_eq!(state.vertices.len(), 1, "the sink chains onto the source");
    let r = rates(&state);
    let lag = sample(&state, 0).pending_records;
    stop(&state, h);
    // Before, the throttle slept inside a poll that then returned a batch, so
    // a source making 1000 rows a second looked busy all the time.
    // Loose bounds: on a loaded machine the subtask's thread waits for a core too.
    assert!(r[0].busy_ms_per_second < 500.0, "{r:?}");
    assert!(r[0].idle_ms_per_second > 400.0, "{r:?}");
    assert!((500.0..1500.0).contains(&r[0].records_in_per_second), "{r:?}");
    assert!(lag.is_some_and(|l| l < 100), "a source that keeps up is not behind: {lag:?}");
}

#[test]
fn a_throttled_sink_is_busy_and_the_source_it_holds_back_falls_behind() {
    // The sink takes 500 rows a second in a vertex of its own; the source is
    // due to make 2000.
    let (state, h) = start(&sql(2000, ", 'sink.throttle' = '500', 'sink.parallelism' = '1'"));
    assert_eq!(state.vertices.len(), 2);
    let r = rates(&state);
    let lag1 = sample(&state, 0).pending_records.unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let lag2 = sample(&state, 0).pending_records.unwrap();
    stop(&state, h);
    // The sink's throttle is busy time, as a slow external system would be.
    assert!(r[1].busy_ms_per_second > 800.0, "sink: {:?}", r[1]);
    assert!((350.0..650.0).contains(&r[1].records_in_per_second), "sink: {:?}", r[1]);
    // The source waits on full channels: backpressured, and behind its
    // schedule by about (2000 - 500) rows per second of the run.
    assert!(r[0].backpressured_ms_per_second > 600.0, "source: {:?}", r[0]);
    assert!(lag1 > 1000, "{lag1} rows behind after 1.5 s");
    assert!(lag2 >= lag1 + 400, "the lag grows with the shortfall: {lag1} then {lag2}");
}

#[test]
fn a_source_reading_a_directory_lags_by_its_unread_records_until_it_has_read_them() {
    // 3000 records in three files, read by a monitored (so unbounded, still
    // running once read) filesystem source into a sink that takes 1000 rows
    // a second in a vertex of its own: the source is held back, with records
    // left unread, then reads the last of them.
    let dir = tempfile::tempdir().unwrap();
    for f in 0..3 {
        let lines: String = (0..1000).map(|i| format!("{{\"x\":{}}}\n", 100_000 + f * 1000 + i)).collect();
        std::fs::write(dir.path().join(format!("f{f}.json")), lines).unwrap();
    }
    let (state, h) = start(&format!(
        "CREATE TABLE src (x BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json',
  'source.monitor-interval' = '1 h');
CREATE TABLE out (x BIGINT) WITH ('connector' = 'blackhole', 'sink.throttle' = '1000', 'sink.parallelism' = '1');
INSERT INTO out SELECT x FROM src;",
        dir.path().display()
    ));
    assert_eq!(state.vertices.len(), 2);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        let lag = sample(&state, 0).pending_records;
        seen.push(lag);
        if lag == Some(0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(&state, h);
    let known: Vec<u64> = seen.iter().flatten().copied().collect();
    assert_eq!(seen.last(), Some(&Some(0)), "the lag falls to 0 once every record is read: {seen:?}");
    let first = known.iter().copied().find(|l| *l > 0);
    assert!(first.is_some_and(|l| (1000..3000).contains(&l)), "a positive lag while held back: {seen:?}");
    assert!(known.windows(2).all(|w| w[1] <= w[0]), "the lag only falls: {seen:?}");
}
