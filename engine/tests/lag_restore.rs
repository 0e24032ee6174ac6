#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A rate-limited source's backlog outlives a restart: datagen with
//! `rows-per-second` stands for an upstream producing at that rate, so a job
//! stopped with a savepoint and restored later is behind by what it was
//! behind at the savepoint plus the rate times the time it was down, not
//! back on schedule (which hid the backlog a rescale's pause builds).

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use sluice_engine::job::{JobState, JobStatus, SnapshotStatus};

mod common;
use common::*;

const RATE: u64 = 1000;

/// The source's lag, summed over its subtasks; `None` while any is unknown.
fn lag(state: &JobState) -> Option<u64> {
    let source = state.vertices.iter().find(|v| v.is_source).unwrap().id;
    state
        .subtasks
        .iter()
        .filter(|m| m.vertex == source)
        .map(|m| m.pending_records.load(Relaxed))
        .try_fold(0u64, |acc, l| if l == u64::MAX { None } else { Some(acc + l) })
}

#[test]
fn a_rate_limited_source_restored_after_a_pause_lags_by_the_rate_times_the_downtime() {
    let dir = tempfile::tempdir().unwrap();
    // The sink takes 500 rows a second in a vertex of its own: the source,
    // due to make 1000, falls behind by about 500 a second in both runs.
    let sql = format!(
        "CREATE TABLE src (x BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '{RATE}');
CREATE TABLE out (x BIGINT) WITH ('connector' = 'blackhole', 'sink.throttle' = '500', 'sink.parallelism' = '1');
INSERT INTO out SELECT x FROM src;"
    );
    let sp_dir = dir.path().join("savepoints").display().to_string();
    let ck_dir = dir.path().join("ckpt").display().to_string();
    // Batches of 10 rows, so that the channels hold few rows and the
    // backlog stays at the source.
    let batch = ("execution.batch-size", "10".to_string());
    let (state, h) = start(&sql, "lag", &config(&[("execution.checkpointing.dir", ck_dir.clone()), batch.clone()]));
    wait_for("running", Duration::from_secs(20), || state.status() == JobStatus::Running);
    std::thread::sleep(Duration::from_millis(800));
    let before = lag(&state).unwrap();
    let sampled = Instant::now();
    let trigger = state.request_savepoint(Some("stop".into()), Some(sp_dir), true, false).unwrap();
    h.join().unwrap().unwrap();
    let sp = state.savepoint(&trigger).unwrap();
    assert_eq!(sp.status, SnapshotStatus::Completed, "{sp:?}");
    // Down for 3 s; restored at parallelism 2.
    let down = Duration::from_secs(3);
    std::thread::sleep(down);
    let restore = config(&[
        ("execution.checkpointing.dir", ck_dir),
        ("execution.state-recovery.path", sp.location.unwrap()),
        ("parallelism.default", "2".into()),
        batch,
    ]);
    let (state, h) = start(&sql, "lag", &restore);
    wait_for("running", Duration::from_secs(20), || state.status() == JobStatus::Running);
    let mut after = None;
    wait_for("a known lag after the restore", Duration::from_secs(10), || {
        after = lag(&state).filter(|l| *l > 0);
        after.is_some()
    });
    let after = after.unwrap();
    let elapsed = sampled.elapsed();
    state.request_cancel();
    let _ = h.join().unwrap();
    // At least the lag before the stop plus the rows due while down; at most
    // everything due since that sample (nothing counted twice).
    let down_rows = RATE * down.as_millis() as u64 / 1000;
    assert!(after >= before + down_rows * 9 / 10, "{before} behind before, {after} after {down:?} down");
    let due = RATE * elapsed.as_millis() as u64 / 1000;
    assert!(after <= before + due + 100, "{before} behind before, {after} after {elapsed:?}: at most {due} more");
}
