#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Exactly-once checkpoints, savepoints and restores, end to end through the
//! engine: a job killed with `kill -9` and restored from its latest checkpoint,
//! a stop-with-savepoint restored at other parallelisms, and damaged snapshots.
//! Every test compares the committed output with a run that never stopped.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sluice_engine::job::{JobState, JobStatus, SnapshotStatus};
use sluice_engine::local::{compile_text, prepare};
use sluice_engine::runtime::execute;

mod common;
use common::*;

fn spawn_run(job_file: &Path, args: &[&str]) -> Child {
    engine()
        .arg("run")
        .arg(job_file)
        .args(["--rest-addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn kill_9_and_restore_latest_commits_exactly_once() {
    let rows = 12_000;
    let expected = reference(rows);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ckpt = dir.path().join("ckpt");
    let job_file = dir.path().join("clicks.sql");
    std::fs::write(&job_file, job(&out, rows, 3000)).unwrap();
    let ck = ckpt.display().to_string();
    let args = ["--checkpoint-dir", &ck, "--checkpoint-interval", "300ms", "-p", "2"];
    let mut child = spawn_run(&job_file, &args);
    // The job id defaults to the file's stem.
    wait_for("two complete checkpoints", Duration::from_secs(60), || complete_checkpoints(&ckpt.join("clicks")) >= 2);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = outputs(&out);
    assert!(partial.1.len() < expected.1.len(), "the job finished before it was killed");
    // Committed output so far is a subset of the final output: nothing uncommitted is visible.
    for l in &partial.1 {
        assert!(expected.1.binary_search(l).is_ok(), "visible line not in the expected output: {l}");
    }
    let status = engine()
        .arg("run")
        .arg(&job_file)
        .args(["--rest-addr", "127.0.0.1:0", "--restore", "latest"])
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(status.status.success(), "{stderr}");
    assert!(stderr.contains("restoring from"), "{stderr}");
    let got = outputs(&out);
    assert_eq!(got.1, expected.1, "rows lost or duplicated");
    assert_eq!(got.0, expected.0, "window results differ");
    // The job finished: resuming it again stays terminal and writes nothing.
    let again = engine()
        .arg("run")
        .arg(&job_file)
        .args(["--rest-addr", "127.0.0.1:0", "--restore", "latest"])
        .args(args)
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("stays terminal"));
    assert_eq!(outputs(&out), expected);
    // A fresh run (no --restore) of the same job id is a new run: it clears the
    // marker at its start, so that --restore latest after a crash resumes it.
    assert!(ckpt.join("clicks/_terminal").exists());
    let mut fresh = spawn_run(&job_file, &args);
    let before = newest_checkpoint(&ckpt.join("clicks"));
    wait_for("a checkpoint of the new run", Duration::from_secs(60), || {
        newest_checkpoint(&ckpt.join("clicks")) > before
    });
    fresh.kill().unwrap();
    fresh.wait().unwrap();
    assert!(!ckpt.join("clicks/_terminal").exists(), "the new run did not clear the old terminal marker");
}

/// Session, hopping and cumulating windows with DOUBLE, STRING and COUNT
/// DISTINCT state, written to the same two tables as [`job`].
fn windows_job(out: &Path, rows: u64, rate: u64) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, k INT, v INT, name STRING,
   ts AS TO_TIMESTAMP_LTZ(id * 10 + MOD(id, 7) * 300, 3),
   WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
 WITH ('connector' = 'datagen', 'seed' = '11', 'rows-per-second' = '{rate}',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{last}',
   'fields.k.min' = '0', 'fields.k.max' = '40', 'fields.v.min' = '0', 'fields.v.max' = '50',
   'fields.name.length' = '2');
CREATE TABLE per_window (k INT, window_start TIMESTAMP(3), c BIGINT, s DOUBLE, m STRING)
 WITH ('connector' = 'filesystem', 'path' = '{w}', 'format' = 'csv');
CREATE TABLE rows_out (k INT, window_start TIMESTAMP(3), c BIGINT)
 WITH ('connector' = 'filesystem', 'path' = '{r}', 'format' = 'csv');
EXECUTE STATEMENT SET BEGIN
INSERT INTO per_window SELECT k, window_start, COUNT(DISTINCT name), AVG(CAST(v AS DOUBLE)), MIN(name)
  FROM TABLE(SESSION(TABLE src PARTITION BY k, DESCRIPTOR(ts), INTERVAL '400' MILLISECOND))
  GROUP BY k, window_start, window_end;
INSERT INTO rows_out SELECT k, window_start, COUNT(*)
  FROM TABLE(HOP(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '3' SECOND))
  GROUP BY k, window_start, window_end
UNION ALL SELECT k, window_start, CAST(SUM(v) AS BIGINT)
  FROM TABLE(CUMULATE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '4' SECOND))
  GROUP BY k, window_start, window_end;
END;
",
        last = rows - 1,
        w = out.join("windows").display(),
        r = out.join("rows").display()
    )
}

/// Stops with a savepoint at parallelism 2 and restores it at `p`.
fn savepoint_then_restore(p: usize, expected: &(Vec<String>, Vec<String>), rows: u64) -> Arc<JobState> {
    savepoint_then_restore_job(job, p, expected, rows)
}

fn savepoint_then_restore_job(
    make: JobText,
    p: usize,
    expected: &(Vec<String>, Vec<String>),
    rows: u64,
) -> Arc<JobState> {
    savepoint_then_restore_with(make, &[("parallelism.default", p.to_string())], expected, rows)
}

/// Stops with a savepoint at parallelism 2 and restores it under `restore`;
/// returns the restored job.
fn savepoint_then_restore_with(
    make: JobText,
    restore: &[(&str, String)],
    expected: &(Vec<String>, Vec<String>),
    rows: u64,
) -> Arc<JobState> {
    savepoint_then_restore_after(make, restore, expected, rows, &|_| {})
}

/// [`savepoint_then_restore_with`], calling `before` with the savepoint's
/// location before the restore.
fn savepoint_then_restore_after(
    make: JobText,
    restore: &[(&str, String)],
    expected: &(Vec<String>, Vec<String>),
    rows: u64,
    before: &dyn Fn(&str),
) -> Arc<JobState> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sql = make(&out, rows, 4000);
    let sp_dir = dir.path().join("savepoints").display().to_string();
    let ck_dir = dir.path().join("ckpt").display().to_string();
    let cfg = config(&[
        ("parallelism.default", "2".into()),
        ("execution.checkpointing.dir", ck_dir.clone()),
        ("execution.checkpointing.interval", "200ms".into()),
    ]);
    let (state, h) = start(&sql, "rescale", &cfg);
    wait_for("some output", Duration::from_secs(30), || !committed(&out.join("rows")).is_empty());
    let trigger = state.request_savepoint(Some("stop-1".into()), Some(sp_dir.clone()), true, false).unwrap();
    h.join().unwrap().unwrap();
    assert_eq!(state.status(), JobStatus::Finished);
    let sp = state.savepoint(&trigger).unwrap();
    // Why the job restarted, if it did (seen under heavy load).
    let exceptions = state.exceptions.newest_first();
    assert_eq!(sp.status, SnapshotStatus::Completed, "{sp:?}; exceptions: {exceptions:?}");
    let location = sp.location.unwrap();
    assert!(location.ends_with("savepoint-stop-1"), "{location}");
    let stopped = outputs(&out);
    assert!(stopped.1.len() < expected.1.len(), "the job finished before the savepoint");
    before(&location);
    let mut pairs = vec![("execution.checkpointing.dir", ck_dir), ("execution.state-recovery.path", location)];
    pairs.extend(restore.iter().cloned());
    let (state, h) = start(&sql, "rescale", &config(&pairs));
    h.join().unwrap().unwrap();
    assert_eq!(state.status(), JobStatus::Finished);
    let got = outputs(&out);
    assert_eq!(got.1, expected.1, "p=2 -> {restore:?}: rows lost or duplicated");
    assert_eq!(got.0, expected.0, "p=2 -> {restore:?}: window results differ");
    state
}

#[test]
fn session_hop_and_cumulate_windows_restore_at_other_parallelisms() {
    let rows = 6_000;
    let expected = reference_of(windows_job, rows);
    savepoint_then_restore_job(windows_job, 1, &expected, rows);
    savepoint_then_restore_job(windows_job, 3, &expected, rows);
}

#[test]
fn stop_with_savepoint_restores_at_other_parallelisms() {
    let rows = 8_000;
    let expected = reference(rows);
    savepoint_then_restore(1, &expected, rows);
    let state = savepoint_then_restore(3, &expected, rows);
    // The datagen source's two strides are divided among the three subtasks: none idles.
    let source = state.vertices.iter().find(|v| v.is_source).unwrap().id;
    let read: Vec<u64> = state
        .subtasks
        .iter()
        .filter(|m| m.vertex == source)
        .map(|m| m.records_in.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    assert!(read.len() == 3 && read.iter().all(|n| *n > 0), "rows read per source subtask: {read:?}");
}

#[test]
fn a_restore_with_per_vertex_overrides_keeps_exactly_once() {
    let rows = 8_000;
    let expected = reference(rows);
    // The uids of the job's vertices (they do not depend on the parallelism).
    let graph =
        prepare(&compile_text(&job(Path::new("/unused"), rows, 1), "j.sql").unwrap(), &config(&[]), "j").unwrap().0;
    let uid = |label: &str| graph.vertices.iter().find(|v| v.name().contains(label)).unwrap().uid.clone();
    // The source (read twice, so its vertex is the scan alone) drops to 1 and the
    // keyed window aggregation rises to 3; the filtered copy stays at 2.
    let overrides = format!("{}:1,{}:3", uid("Source: src"), uid("WindowAggregate"));
    let restore = [("parallelism.default", "2".to_string()), ("pipeline.jobvertex-parallelism-overrides", overrides)];
    let state = savepoint_then_restore_with(job, &restore, &expected, rows);
    let parallelism = |label: &str| state.vertices.iter().find(|v| v.name.contains(label)).unwrap().parallelism;
    assert_eq!((parallelism("Source: src"), parallelism("WindowAggregate"), parallelism("Filter")), (1, 3, 2));
}

/// A restored job fails while it restores its keyed state lazily, before
/// any checkpoint: the restart restores the same savepoint again, whose keyed
/// files the first attempt let go (`Loaded::release_files`), and the output
/// is still exactly once.
#[test]
fn a_failure_during_a_lazy_restore_restarts_from_the_same_savepoint() {
    let rows = 8_000;
    let expected = reference(rows);
    let restore = [
        ("parallelism.default", "3".to_string()),
        ("restart-strategy.type", "fixed-delay".into()),
        ("restart-strategy.fixed-delay.delay", "100ms".into()),
        ("restart-strategy.fixed-delay.attempts", "2".into()),
    ];
    let fail = |location: &str| {
        // Scoped to this test's savepoint: other tests restore at the same time.
        sluice_engine::failpoint::set(&format!("restore.key-group@{location}"), "1*error(injected by the test)");
    };
    let state = savepoint_then_restore_after(job, &restore, &expected, rows, &fail);
    assert_eq!(state.restarts.load(std::sync::atomic::Ordering::SeqCst), 1, "the injected failure restarts the job");
    let exceptions = state.exceptions.newest_first();
    assert!(format!("{exceptions:?}").contains("injected by the test"), "{exceptions:?}");
}

/// Takes one savepoint of a running job and stops it; returns the savepoint dir.
fn take_savepoint(dir: &Path) -> PathBuf {
    let sql = job(&dir.join("out"), 20_000, 2000);
    let (state, h) = start(&sql, "damaged", &config(&[]));
    wait_for("running", Duration::from_secs(20), || state.status() == JobStatus::Running);
    std::thread::sleep(Duration::from_millis(600));
    let sp_dir = dir.join("sp").display().to_string();
    state.request_savepoint(Some("one".into()), Some(sp_dir), true, false).unwrap();
    h.join().unwrap().unwrap();
    let loc = state.savepoint("one").unwrap().location.unwrap();
    PathBuf::from(loc.trim_start_matches("file://"))
}

fn restore_error(dir: &Path, from: &Path) -> String {
    let sql = job(&dir.join("out2"), 20_000, 1_000_000);
    let job = compile_text(&sql, "job.sql").unwrap();
    let cfg = config(&[("execution.state-recovery.path", from.display().to_string())]);
    let (graph, options) = prepare(&job, &cfg, "damaged").unwrap();
    let state = JobState::new("damaged", "job.sql", &graph);
    execute(&graph, &state, &options).unwrap_err().to_string()
}

#[test]
fn damaged_savepoints_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let sp = take_savepoint(dir.path());
    let state_file = walk(&sp).into_iter().find(|p| p.extension().is_some_and(|e| e == "state")).expect("a state file");
    let original = std::fs::read(&state_file).unwrap();

    // Truncated.
    std::fs::write(&state_file, &original[..original.len() / 2]).unwrap();
    let e = restore_error(dir.path(), &sp);
    assert!(e.contains("truncated") && e.contains(".state"), "{e}");
    // Same size, one byte flipped.
    let mut flipped = original.clone();
    flipped[0] ^= 0xff;
    std::fs::write(&state_file, &flipped).unwrap();
    let e = restore_error(dir.path(), &sp);
    assert!(e.contains("checksum mismatch"), "{e}");
    std::fs::write(&state_file, &original).unwrap();
    // A newer format.
    let meta = sp.join("_metadata");
    let text = std::fs::read_to_string(&meta).unwrap();
    let current = format!("\"formatVersion\": {}", sluice_engine::checkpoint::metadata::FORMAT_VERSION);
    assert!(text.contains(&current), "{text}");
    std::fs::write(&meta, text.replace(&current, "\"formatVersion\": 99")).unwrap();
    let e = restore_error(dir.path(), &sp);
    assert!(e.contains("format version 99 is newer"), "{e}");
    // No _metadata.
    std::fs::remove_file(&meta).unwrap();
    let e = restore_error(dir.path(), &sp);
    assert!(e.contains("no _metadata"), "{e}");
}

#[test]
fn a_changed_query_names_the_operator_whose_state_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let sp = take_savepoint(dir.path());
    // MAX became MIN: the window aggregate's state layout differs.
    let sql = job(&dir.path().join("out2"), 20_000, 1_000_000).replace("MAX(v)", "MIN(v)");
    let job = compile_text(&sql, "job.sql").unwrap();
    let cfg = config(&[("execution.state-recovery.path", sp.display().to_string())]);
    let (graph, options) = prepare(&job, &cfg, "damaged").unwrap();
    let state = JobState::new("damaged", "job.sql", &graph);
    let e = execute(&graph, &state, &options).unwrap_err().to_string();
    assert!(e.contains("WindowAggregate") && e.contains("incompatible state"), "{e}");
    // Another maxParallelism cannot take the key groups.
    let cfg = config(&[
        ("execution.state-recovery.path", sp.display().to_string()),
        ("pipeline.max-parallelism", "64".into()),
    ]);
    let job = compile_text(&job_sql_unchanged(dir.path()), "job.sql").unwrap();
    let (graph, options) = prepare(&job, &cfg, "damaged").unwrap();
    let state = JobState::new("damaged", "job.sql", &graph);
    let e = execute(&graph, &state, &options).unwrap_err().to_string();
    assert!(e.contains("maxParallelism 128") && e.contains("64"), "{e}");
}

fn job_sql_unchanged(dir: &Path) -> String {
    job(&dir.join("out3"), 20_000, 1_000_000)
}

#[test]
fn state_without_an_operator_needs_allow_non_restored_state() {
    let dir = tempfile::tempdir().unwrap();
    let sp = take_savepoint(dir.path());
    // Only the pass-through insert is left: the window aggregate's state is unclaimed.
    let full = job(&dir.path().join("out4"), 20_000, 1_000_000);
    let start_at = full.find("EXECUTE STATEMENT SET").unwrap();
    let sql = format!("{}INSERT INTO rows_out SELECT id, k, v FROM src WHERE MOD(id, 3) = 0;\n", &full[..start_at]);
    let job = compile_text(&sql, "job.sql").unwrap();
    let cfg = config(&[("execution.state-recovery.path", sp.display().to_string())]);
    let (graph, options) = prepare(&job, &cfg, "damaged").unwrap();
    let state = JobState::new("damaged", "job.sql", &graph);
    let e = execute(&graph, &state, &options).unwrap_err().to_string();
    assert!(e.contains("has no matching operator") && e.contains("--allow-non-restored-state"), "{e}");
    let cfg = config(&[
        ("execution.state-recovery.path", sp.display().to_string()),
        ("execution.state-recovery.ignore-unclaimed-state", "true".into()),
    ]);
    let (graph, options) = prepare(&job, &cfg, "damaged").unwrap();
    let state = JobState::new("damaged", "job.sql", &graph);
    execute(&graph, &state, &options).unwrap();
    assert_eq!(state.status(), JobStatus::Finished);
}

#[test]
fn a_failed_task_restarts_from_the_latest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&input).unwrap();
    let rows = |from: u64, to: u64| (from..to).map(|i| format!("{{\"id\":{i}}}\n")).collect::<String>();
    std::fs::write(input.join("a.json"), rows(0, 500)).unwrap();
    let sql = format!(
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json',
   'source.monitor-interval' = '50ms');
CREATE TABLE dst (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
INSERT INTO dst SELECT id FROM src;",
        input.display(),
        out.display()
    );
    let cfg = config(&[
        ("execution.checkpointing.dir", dir.path().join("ckpt").display().to_string()),
        ("execution.checkpointing.interval", "100ms".into()),
        ("restart-strategy.type", "fixed-delay".into()),
        ("restart-strategy.fixed-delay.delay", "1500ms".into()),
        ("restart-strategy.fixed-delay.attempts", "3".into()),
    ]);
    let (state, h) = start(&sql, "restart", &cfg);
    wait_for("a.json committed", Duration::from_secs(30), || committed(&out).len() == 500);
    // A malformed file fails the source task; the job restarts after the delay.
    std::fs::write(input.join("b.json"), format!("{}{{\"id\": oops}}\n", rows(500, 700))).unwrap();
    wait_for("a restart", Duration::from_secs(30), || state.status() == JobStatus::Restarting);
    assert_eq!(state.restarts.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(state.error().is_some_and(|e| e.contains("b.json")), "{:?}", state.error());
    // Fixed before the restart: the new attempt reads the corrected file.
    let fixed = input.join(".b.tmp");
    std::fs::write(&fixed, rows(500, 700)).unwrap();
    std::fs::rename(&fixed, input.join("b.json")).unwrap();
    wait_for("b.json committed", Duration::from_secs(30), || committed(&out).len() >= 700);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state.status(), JobStatus::Running);
    assert_eq!(state.restarts.load(std::sync::atomic::Ordering::SeqCst), 1);
    state.request_cancel();
    h.join().unwrap().unwrap();
    let mut ids: Vec<u64> = committed(&out).iter().map(|l| l.parse().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..700).collect::<Vec<_>>(), "rows lost or duplicated across the restart");
}

#[test]
fn stop_with_drain_fires_every_window_before_the_savepoint() {
    let rows = 8_000;
    let expected = reference(rows);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = config(&[
        ("parallelism.default", "2".into()),
        ("execution.checkpointing.dir", dir.path().join("ckpt").display().to_string()),
    ]);
    let (state, h) = start(&job(&out, rows, 4000), "drain", &cfg);
    wait_for("running", Duration::from_secs(20), || state.status() == JobStatus::Running);
    std::thread::sleep(Duration::from_millis(700));
    let sp = dir.path().join("sp").display().to_string();
    state.request_savepoint(Some("drained".into()), Some(sp), true, true).unwrap();
    h.join().unwrap().unwrap();
    assert_eq!(state.savepoint("drained").unwrap().status, SnapshotStatus::Completed);
    let (windows, passed) = outputs(&out);
    assert!(passed.len() < expected.1.len(), "the job finished before the savepoint");
    // Every window with data was fired: the newest one is partial, so the
    // drained output holds a row that a full run does not.
    let last_id = passed.iter().map(|l| l.split(',').next().unwrap().parse::<u64>().unwrap()).max().unwrap();
    let secs = last_id / 100;
    let last_window = format!("\"1970-01-01 00:{:02}:{:02}\"", secs / 60, secs % 60);
    assert!(windows.iter().any(|l| l.contains(&last_window)), "the newest window {last_window} did not fire");
    // (Seen failing once under CI load, not reproduced alone: the message says enough to tell why next time.)
    let newest: Vec<&String> = windows.iter().filter(|l| l.contains(&last_window)).collect();
    assert!(
        windows.iter().any(|l| expected.0.binary_search(l).is_err()),
        "no partial window was fired: {} windows, {} rows passed up to id {last_id}; the newest window's rows {newest:?}",
        windows.len(),
        passed.len()
    );
}

#[test]
fn joins_restore_their_state_at_other_parallelisms() {
    let rows = 12_000;
    let expected = reference_of(joins_job, rows);
    assert_eq!(expected.1.len() as u64, rows - 1, "the self-join matches each row but the first once");
    savepoint_then_restore_job(joins_job, 1, &expected, rows);
    savepoint_then_restore_job(joins_job, 3, &expected, rows);
}

#[test]
fn joins_killed_with_sigkill_resume_from_the_latest_checkpoint_at_another_parallelism() {
    joins_killed_and_restored(&[]);
}

/// The same on the disk state backend, with so little memory that the joins'
/// keys live on disk: the killed run leaves its spill directory behind, the
/// restored run deletes it, and the output is still exactly-once.
#[test]
fn joins_on_the_disk_backend_killed_with_sigkill_resume_exactly_once() {
    let spill = tempfile::tempdir().unwrap();
    let dir = format!("io.tmp.dirs={}", spill.path().display());
    let spill_dirs = || std::fs::read_dir(spill.path()).unwrap().flatten().count();
    let stderr = joins_killed_and_restored(&[
        "--set",
        "state.backend.type=disk",
        "--set",
        "taskmanager.memory.managed.size=16kb",
        "--set",
        &dir,
    ]);
    assert!(stderr.contains("state backend 'disk'"), "{stderr}");
    assert_eq!(spill_dirs(), 0, "the killed run's spill directory is deleted, and the restored run's at its end");
}

/// Runs the joins job at parallelism 2 with `extra` arguments, kills it after
/// two checkpoints, restores it at 3 and checks the output against a run that
/// never stopped; returns what the restored run wrote on stderr.
fn joins_killed_and_restored(extra: &[&str]) -> String {
    let rows = 12_000;
    let expected = reference_of(joins_job, rows);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ckpt = dir.path().join("ckpt");
    let job_file = dir.path().join("joins.sql");
    std::fs::write(&job_file, joins_job(&out, rows, 3000)).unwrap();
    let ck = ckpt.display().to_string();
    let mut args = vec!["--checkpoint-dir", &ck, "--checkpoint-interval", "300ms", "-p", "2"];
    args.extend(extra);
    let mut child = spawn_run(&job_file, &args);
    wait_for("two complete checkpoints", Duration::from_secs(60), || complete_checkpoints(&ckpt.join("joins")) >= 2);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = outputs(&out);
    assert!(partial.1.len() < expected.1.len(), "the job finished before it was killed");
    let status = engine()
        .arg("run")
        .arg(&job_file)
        .args(["--rest-addr", "127.0.0.1:0", "--restore", "latest"])
        .args(["--checkpoint-dir", &ck, "--checkpoint-interval", "300ms", "-p", "3"])
        .args(extra)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr).into_owned();
    assert!(status.status.success(), "{stderr}");
    assert!(stderr.contains("restoring from"), "{stderr}");
    let got = outputs(&out);
    assert_eq!(got.1, expected.1, "self-join rows lost or duplicated");
    assert_eq!(got.0, expected.0, "stream-table join rows lost or duplicated");
    stderr
}

/// Interval joins of the stream with itself (rows of the same key less than
/// 50 ms apart; and a LEFT one whose rare matches leave most rows padded once
/// the watermark passes them): kept rows and their timers go through the
/// savepoint.
fn interval_joins_job(out: &Path, rows: u64, rate: u64) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, k INT, v INT,
   ts AS TO_TIMESTAMP_LTZ(id * 10, 3),
   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'datagen', 'seed' = '7', 'rows-per-second' = '{rate}',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{last}',
   'fields.k.min' = '0', 'fields.k.max' = '15', 'fields.v.min' = '0', 'fields.v.max' = '1000');
CREATE TABLE per_window (a BIGINT, b BIGINT)
 WITH ('connector' = 'filesystem', 'path' = '{w}', 'format' = 'csv');
CREATE TABLE rows_out (a BIGINT, b BIGINT)
 WITH ('connector' = 'filesystem', 'path' = '{r}', 'format' = 'csv');
EXECUTE STATEMENT SET BEGIN
INSERT INTO per_window SELECT a.id, b.id FROM src AS a JOIN src AS b
  ON a.k = b.k AND a.ts BETWEEN b.ts - INTERVAL '50' MILLISECOND AND b.ts + INTERVAL '50' MILLISECOND;
INSERT INTO rows_out SELECT a.id, b.id FROM src AS a LEFT JOIN src AS b
  ON a.k = b.k AND b.v > 900 AND a.ts > b.ts AND a.ts <= b.ts + INTERVAL '200' MILLISECOND;
END;
",
        last = rows - 1,
        w = out.join("windows").display(),
        r = out.join("rows").display()
    )
}

#[test]
fn interval_joins_restore_their_state_at_other_parallelisms() {
    let rows = 6_000;
    let expected = reference_of(interval_joins_job, rows);
    savepoint_then_restore_job(interval_joins_job, 1, &expected, rows);
    savepoint_then_restore_job(interval_joins_job, 3, &expected, rows);
}

/// Window joins of the stream with itself (pairs of a key within a 100 ms
/// tumbling window; and a FULL one over hopping windows whose sides rarely
/// match, so most rows come out padded when their window fires): the rows
/// buffered per key and window, and their timers, go through the savepoint.
fn window_joins_job(out: &Path, rows: u64, rate: u64) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, k INT, v INT,
   ts AS TO_TIMESTAMP_LTZ(id * 10, 3),
   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'datagen', 'seed' = '7', 'rows-per-second' = '{rate}',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{last}',
   'fields.k.min' = '0', 'fields.k.max' = '15', 'fields.v.min' = '0', 'fields.v.max' = '1000');
CREATE TABLE per_window (a BIGINT, b BIGINT)
 WITH ('connector' = 'filesystem', 'path' = '{w}', 'format' = 'csv');
CREATE TABLE rows_out (a BIGINT, b BIGINT)
 WITH ('connector' = 'filesystem', 'path' = '{r}', 'format' = 'csv');
EXECUTE STATEMENT SET BEGIN
INSERT INTO per_window SELECT L.id, R.id
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '100' MILLISECOND)) AS L
JOIN TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '100' MILLISECOND)) AS R
  ON L.k = R.k AND L.window_start = R.window_start AND L.window_end = R.window_end AND L.id < R.id;
INSERT INTO rows_out SELECT L.id, R.id
FROM (SELECT * FROM TABLE(HOP(TABLE src, DESCRIPTOR(ts), INTERVAL '50' MILLISECOND, INTERVAL '100' MILLISECOND))
      WHERE v > 500) AS L
FULL JOIN (SELECT * FROM TABLE(HOP(TABLE src, DESCRIPTOR(ts), INTERVAL '50' MILLISECOND, INTERVAL '100' MILLISECOND))
      WHERE v <= 100) AS R
  ON L.k = R.k AND L.window_start = R.window_start AND L.window_end = R.window_end;
END;
",
        last = rows - 1,
        w = out.join("windows").display(),
        r = out.join("rows").display()
    )
}

#[test]
fn window_joins_restore_their_state_at_other_parallelisms() {
    let rows = 12_000;
    let expected = reference_of(window_joins_job, rows);
    assert!(expected.0.len() > 1000 && expected.1.len() > 1000, "both joins have output");
    savepoint_then_restore_job(window_joins_job, 1, &expected, rows);
    savepoint_then_restore_job(window_joins_job, 3, &expected, rows);
}
