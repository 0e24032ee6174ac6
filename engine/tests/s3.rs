#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Checkpoints and savepoints on a real S3-compatible server (MinIO, started on
//! loopback by `sluice_storage::testing`): a savepoint on S3 restored at another
//! parallelism, an S3 outage during checkpoints, a missing bucket and wrong
//! credentials.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_engine::config::Config;
use sluice_engine::job::{JobState, JobStatus, SnapshotStatus};
use sluice_engine::local::{compile_text, prepare};
use sluice_engine::runtime::execute;
use sluice_storage::testing::S3Server;

fn job(out: &Path, rows: u64, rate: u64) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, k INT, v INT, ts AS TO_TIMESTAMP_LTZ(id * 10, 3),
   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'datagen', 'seed' = '3', 'rows-per-second' = '{rate}',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{last}',
   'fields.k.min' = '0', 'fields.k.max' = '20', 'fields.v.min' = '0', 'fields.v.max' = '99');
CREATE TABLE per_window (k INT, window_start TIMESTAMP(3), c BIGINT, s INT)
 WITH ('connector' = 'filesystem', 'path' = '{w}', 'format' = 'csv');
INSERT INTO per_window SELECT k, window_start, COUNT(*), SUM(v)
  FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
",
        last = rows - 1,
        w = out.display()
    )
}

fn committed(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && !name.starts_with('_') {
            lines.extend(std::fs::read_to_string(e.path()).unwrap().lines().map(str::to_string));
        }
    }
    lines.sort();
    lines
}

fn config(server: &S3Server, pairs: &[(&str, String)]) -> Config {
    let o = server.options();
    let mut values: std::collections::BTreeMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    values.insert("s3.endpoint".into(), o.endpoint.clone().unwrap());
    values.insert("s3.access-key".into(), o.access_key.clone().unwrap());
    values.insert("s3.secret-key".into(), o.secret_key.clone().unwrap());
    Config { values }
}

fn start(sql: &str, id: &str, cfg: &Config) -> (Arc<JobState>, std::thread::JoinHandle<Result<(), String>>) {
    let job = compile_text(sql, "job.sql").unwrap();
    let (graph, options) = prepare(&job, cfg, id).unwrap();
    let state = JobState::new(id, "job.sql", &graph);
    let s = state.clone();
    (state, std::thread::spawn(move || execute(&graph, &s, &options).map_err(|e| e.to_string())))
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn savepoint_on_s3_restores_at_another_parallelism() {
    let server = S3Server::start();
    server.create_bucket("state");
    let dir = tempfile::tempdir().unwrap();
    let rows = 6_000;
    // The reference: one uninterrupted run.
    let (_, h) = start(&job(&dir.path().join("ref"), rows, 1_000_000), "ref", &Config::default());
    h.join().unwrap().unwrap();
    let expected = committed(&dir.path().join("ref"));
    assert!(expected.len() > 100);

    let out = dir.path().join("out");
    let sql = job(&out, rows, 3000);
    let cfg = config(
        &server,
        &[
            ("parallelism.default", "2".into()),
            ("execution.checkpointing.dir", "s3://state/checkpoints".into()),
            ("execution.checkpointing.interval", "200ms".into()),
        ],
    );
    let (state, h) = start(&sql, "s3job", &cfg);
    wait_for("a completed checkpoint", Duration::from_secs(30), || state.last_completed_checkpoint().is_some());
    let first = state.last_completed_checkpoint().unwrap();
    assert!(first.location.starts_with("s3://state/checkpoints/s3job/chk-"), "{first:?}");
    state.request_savepoint(Some("s3-stop".into()), Some("s3://state/savepoints".into()), true, false).unwrap();
    h.join().unwrap().unwrap();
    let sp = state.savepoint("s3-stop").unwrap();
    assert_eq!(sp.status, SnapshotStatus::Completed, "{sp:?}");
    let location = sp.location.unwrap();
    assert_eq!(location, "s3://state/savepoints/savepoint-s3-stop");
    assert!(committed(&out).len() < expected.len(), "the job finished before the savepoint");

    let cfg = config(
        &server,
        &[
            ("parallelism.default", "3".into()),
            ("execution.checkpointing.dir", "s3://state/checkpoints".into()),
            ("execution.state-recovery.path", location),
        ],
    );
    let (state, h) = start(&sql, "s3job", &cfg);
    h.join().unwrap().unwrap();
    assert_eq!(state.status(), JobStatus::Finished);
    assert_eq!(committed(&out), expected, "rows lost or duplicated across the S3 savepoint");
}

#[test]
fn an_s3_outage_fails_checkpoints_but_not_the_job() {
    let mut server = S3Server::start();
    server.create_bucket("state");
    let dir = tempfile::tempdir().unwrap();
    let sql = job(&dir.path().join("out"), 100_000_000, 2000);
    let cfg = config(
        &server,
        &[
            ("execution.checkpointing.dir", "s3://state/ckpt".into()),
            ("execution.checkpointing.interval", "300ms".into()),
        ],
    );
    let (state, h) = start(&sql, "outage", &cfg);
    wait_for("a completed checkpoint", Duration::from_secs(30), || state.last_completed_checkpoint().is_some());
    server.stop();
    wait_for("a failed checkpoint", Duration::from_secs(60), || {
        state.checkpoints().iter().any(|c| c.status == SnapshotStatus::Failed)
    });
    let failed = state.checkpoints().into_iter().find(|c| c.status == SnapshotStatus::Failed).unwrap();
    assert!(failed.failure.as_deref().is_some_and(|f| !f.is_empty()), "{failed:?}");
    assert_eq!(state.status(), JobStatus::Running, "the outage stopped the job");
    server.restart();
    wait_for("a checkpoint after the outage", Duration::from_secs(60), || {
        state.last_completed_checkpoint().is_some_and(|c| c.id > failed.id)
    });
    assert_eq!(state.status(), JobStatus::Running);
    state.request_cancel();
    h.join().unwrap().unwrap();
    assert_eq!(state.status(), JobStatus::Canceled);
}

#[test]
fn a_missing_bucket_and_wrong_credentials_are_clear_errors() {
    let server = S3Server::start();
    server.create_bucket("state");
    let dir = tempfile::tempdir().unwrap();
    let sql = job(&dir.path().join("out"), 100, 1_000_000);
    let cfg = config(&server, &[("execution.checkpointing.dir", "s3://no-such-bucket/ckpt".into())]);
    let (_, h) = start(&sql, "nobucket", &cfg);
    let e = h.join().unwrap().unwrap_err();
    assert!(e.contains("no-such-bucket"), "{e}");
    assert!(e.contains("checkpoint storage"), "{e}");

    let mut cfg = config(&server, &[("execution.checkpointing.dir", "s3://state/ckpt".into())]);
    cfg.values.insert("s3.secret-key".into(), "wrong-secret-key".into());
    let (_, h) = start(&sql, "badcreds", &cfg);
    let e = h.join().unwrap().unwrap_err();
    assert!(e.to_lowercase().contains("denied"), "{e}");
    assert!(!e.contains("wrong-secret-key"), "the secret leaked: {e}");
}
