#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Asynchronous snapshots, end to end: a subtask's keyed state is encoded and
//! written off its thread, so records keep flowing while a snapshot is held
//! at fault point `snapshot.encode`; a checkpoint is complete only once every
//! state file is written; and a failed upload fails that checkpoint, not the
//! job. Fault points are scoped to each test's job id.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sluice_engine::failpoint;
use sluice_engine::job::{JobState, SnapshotStatus};

mod common;
use common::*;

/// Keyed TUMBLE state that stays (a day-long window), from an unbounded source.
fn keyed_job(out: &Path) -> String {
    format!(
        "CREATE TABLE src (k BIGINT, v INT, t BIGINT, ts AS TO_TIMESTAMP_LTZ(t, 3),
   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'datagen', 'seed' = '3', 'rows-per-second' = '20000',
   'fields.k.min' = '0', 'fields.k.max' = '50000', 'fields.v.min' = '0', 'fields.v.max' = '9',
   'fields.t.min' = '1700000000000', 'fields.t.max' = '1700000000000');
CREATE TABLE out_t (k BIGINT, c BIGINT, s INT)
 WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
INSERT INTO out_t SELECT k, COUNT(*), SUM(v)
  FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' DAY)) GROUP BY k, window_start, window_end;
",
        out.display()
    )
}

/// Records the keyed window vertex (the one after the source) has taken in.
fn window_records(state: &JobState) -> u64 {
    state.metrics_of(1).map(|m| m.records_in.load(Ordering::Relaxed)).sum()
}

fn start_keyed(dir: &Path, job_id: &str) -> (std::sync::Arc<JobState>, std::thread::JoinHandle<Result<(), String>>) {
    let cfg = config(&[
        ("parallelism.default", "1".into()),
        ("execution.checkpointing.dir", dir.join("ckpt").display().to_string()),
        ("execution.checkpointing.interval", "200ms".into()),
    ]);
    start(&keyed_job(&dir.join("out")), job_id, &cfg)
}

fn completed(state: &JobState) -> Vec<u64> {
    state.checkpoints().iter().filter(|c| c.status == SnapshotStatus::Completed).map(|c| c.id).collect()
}

#[test]
fn records_keep_flowing_while_a_snapshot_is_encoded_and_it_completes_only_once_written() {
    let dir = tempfile::tempdir().unwrap();
    let pause = dir.path().join("points");
    std::fs::create_dir_all(&pause).unwrap();
    failpoint::set("snapshot.encode@async-encode", &format!("1*pause({})", pause.display()));
    let (state, h) = start_keyed(dir.path(), "async-encode");
    wait_for("the window's first snapshot to be held", Duration::from_secs(60), || {
        pause.join("snapshot.encode.reached").exists()
    });
    let held_at = window_records(&state);
    // With the snapshot encoded on the task thread, the window would take in
    // nothing until it is released.
    wait_for("the window to process records while its snapshot is held", Duration::from_secs(30), || {
        window_records(&state) >= held_at + 20_000
    });
    let job_dir = dir.path().join("ckpt/async-encode");
    assert_eq!(completed(&state), Vec::<u64>::new(), "a checkpoint completed before its state was written");
    assert_eq!(complete_checkpoints(&job_dir), 0);
    std::fs::write(pause.join("snapshot.encode.go"), b"").unwrap();
    wait_for("the held checkpoint to complete", Duration::from_secs(60), || !completed(&state).is_empty());
    let first = completed(&state)[0];
    let record = state.checkpoints().into_iter().find(|c| c.id == first).unwrap();
    assert!(record.size_bytes > 0, "the window's state is in the checkpoint: {record:?}");
    // Each subtask reports its thread's pause, which left out the encoding held meanwhile.
    let longest = record.acks.iter().map(|a| a.pause_us).max().unwrap();
    assert!(longest * 10 < record.duration_ms * 1000, "a pause of {longest} µs in a checkpoint of {record:?}");
    state.request_cancel();
    h.join().unwrap().unwrap();
}

#[test]
fn a_failed_upload_fails_that_checkpoint_and_the_job_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    failpoint::set("snapshot.upload@async-fail", "1*error(disk full)");
    let (state, h) = start_keyed(dir.path(), "async-fail");
    wait_for("a checkpoint after the failed one", Duration::from_secs(60), || completed(&state).len() >= 2);
    let history = state.checkpoints();
    let failed: Vec<_> = history.iter().filter(|c| c.status == SnapshotStatus::Failed).collect();
    assert_eq!(failed.len(), 1, "{history:?}");
    let why = failed[0].failure.clone().unwrap_or_default();
    assert!(why.contains("fault point `snapshot.upload`: disk full"), "{why}");
    assert!(completed(&state).iter().all(|id| *id > failed[0].id), "{history:?}");
    assert!(!dir.path().join(format!("ckpt/async-fail/chk-{}/_metadata", failed[0].id)).exists());
    assert!(!state.status().is_terminal(), "the job failed: {:?}", state.error());
    state.request_cancel();
    h.join().unwrap().unwrap();
}

#[test]
fn a_savepoint_takes_precedence_over_a_checkpoint_in_flight_whose_upload_is_then_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let pause = dir.path().join("points");
    std::fs::create_dir_all(&pause).unwrap();
    failpoint::set("snapshot.encode@async-precede", &format!("1*pause({})", pause.display()));
    let (state, h) = start_keyed(dir.path(), "async-precede");
    wait_for("the window's first snapshot to be held", Duration::from_secs(60), || {
        pause.join("snapshot.encode.reached").exists()
    });
    let held = state.checkpoints()[0].id;
    let target = dir.path().join("savepoints").display().to_string();
    let trigger = state.request_savepoint(Some("precede".into()), Some(target), false, false).unwrap();
    // The savepoint does not wait for the checkpoint: the checkpoint is aborted.
    wait_for("the checkpoint in flight to be aborted", Duration::from_secs(30), || {
        state.checkpoints().iter().any(|c| c.id == held && c.status == SnapshotStatus::Failed)
    });
    let aborted = state.checkpoints().into_iter().find(|c| c.id == held).unwrap();
    assert!(aborted.failure.as_deref().is_some_and(|f| f.contains("savepoint `precede` takes precedence")));
    std::fs::write(pause.join("snapshot.encode.go"), b"").unwrap();
    wait_for("the savepoint", Duration::from_secs(60), || {
        state.savepoint(&trigger).is_some_and(|s| s.status == SnapshotStatus::Completed)
    });
    // The held checkpoint's upload was abandoned once the savepoint's barrier
    // came: the window's state file of the aborted checkpoint is never written.
    let location = state.savepoint(&trigger).unwrap().location.unwrap();
    let location = location.strip_prefix("file://").unwrap_or(&location);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(location).join("_metadata")).unwrap()).unwrap();
    let window =
        meta["vertices"].as_array().unwrap().iter().find(|v| !v["operators"].as_array().unwrap().is_empty()).unwrap();
    let uid = window["uid"].as_str().unwrap();
    assert!(Path::new(location).join(format!("{uid}/0.state")).exists(), "the savepoint holds the window's state");
    let chk = dir.path().join(format!("ckpt/async-precede/chk-{held}"));
    assert!(!chk.join("_metadata").exists());
    assert!(!chk.join(format!("{uid}/0.state")).exists(), "the aborted checkpoint's upload went on");
    assert!(!state.status().is_terminal(), "the job failed: {:?}", state.error());
    state.request_cancel();
    h.join().unwrap().unwrap();
}
