#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A job across processes: one `sluice-engine coordinator` and several
//! `sluice-engine worker`s on this machine, talking over loopback. The
//! committed output is compared with a local run that never stopped: a keyed
//! shuffle across workers, a worker and a coordinator killed with `kill -9`, a
//! rescale from 2 to 3 workers through a
//! savepoint, SIGTERM, and backpressure from a slow sink across the network.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

mod common;
use common::cluster::*;
use common::*;

#[test]
fn three_workers_commit_what_the_local_runner_commits() {
    let rows = 20_000;
    let expected = reference(rows);
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&job(dir.path(), rows, 40_000));
    // Workers start first: they wait for the coordinator.
    let _w: Vec<Proc> = (0..3).map(|i| c.worker(&format!("w{i}"), 1)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut coord = c.coordinator("coordinator", 3, &[]);
    let status = coord.wait(Duration::from_secs(120));
    assert!(status.success(), "{}", coord.log());
    let log = coord.log();
    assert!(log.contains("attempt 1: 9 subtasks on") && log.matches("(3)").count() == 3, "{log}");
    assert_eq!(outputs(dir.path()), expected);
}

#[test]
fn a_worker_killed_with_kill_9_is_replaced_and_output_is_exactly_once() {
    let rows = 16_000;
    let expected = reference(rows);
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&job(dir.path(), rows, 3_000));
    let mut coord = c.coordinator("coordinator", 2, &["--on-finish", "stay"]);
    let _w0 = c.worker("w0", 1);
    let mut w1 = c.worker("w1", 1);
    wait_for("two checkpoints", Duration::from_secs(60), || complete_checkpoints(&c.job_dir()) >= 2);
    w1.kill_9();
    let _w2 = c.worker("w2", 1);
    wait_for("the job to finish", Duration::from_secs(120), || c.job_finished());
    let job = json(&c.rest, "/v1/job");
    assert!(job["restarts"].as_u64().unwrap() >= 1, "{job}");
    assert_eq!(outputs(dir.path()), expected);
    // The coordinator sees the connection close, or a surviving worker sees
    // its data connection to the dead one reset first; either fails the attempt.
    let log = coord.log();
    assert!(log.contains("was lost") || log.contains("data connection"), "{log}");
    // --on-finish stay: the coordinator is still up; SIGTERM ends it cleanly.
    coord.sigterm();
    assert!(coord.wait(Duration::from_secs(20)).success(), "{}", coord.log());
}

#[test]
fn a_coordinator_killed_with_kill_9_is_replaced_and_output_is_exactly_once() {
    let rows = 16_000;
    let expected = reference(rows);
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&job(dir.path(), rows, 3_000));
    let mut first = c.coordinator("coordinator-1", 2, &[]);
    let _w: Vec<Proc> = (0..2).map(|i| c.worker(&format!("w{i}"), 1)).collect();
    wait_for("two checkpoints", Duration::from_secs(60), || complete_checkpoints(&c.job_dir()) >= 2);
    first.kill_9();
    // The same command line: the new coordinator takes generation 2 and
    // recovers the newest checkpoint; the workers register again.
    let mut second = c.coordinator("coordinator-2", 2, &[]);
    let status = second.wait(Duration::from_secs(120));
    assert!(status.success(), "{}", second.log());
    assert!(second.log().contains("generation 2"), "{}", second.log());
    assert!(second.log().contains("restoring from"), "{}", second.log());
    assert_eq!(outputs(dir.path()), expected);
}

#[test]
fn stop_with_savepoint_on_two_workers_resumes_on_three_at_higher_parallelism() {
    let rows = 16_000;
    let expected = reference(rows);
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&job(dir.path(), rows, 3_000));
    let location = c.stop_with_savepoint("rescale-1");
    // Three workers, parallelism 3, from the savepoint.
    let mut resumed = c.coordinator("coordinator-p3", 3, &["--restore", &location]);
    let w: Vec<Proc> = (0..3).map(|i| c.worker(&format!("v{i}"), 1)).collect();
    assert!(resumed.wait(Duration::from_secs(120)).success(), "{}", resumed.log());
    assert_eq!(outputs(dir.path()), expected);
    // Each worker says what it restored.
    for x in &w {
        assert!(x.log().contains("worker restoring from"), "{}", x.log());
    }
}

/// A restore with one vertex at its own parallelism (the autoscaler's overrides):
/// some workers then run only that vertex, and must not need the state of the
/// sinks of vertices they do not run.
#[test]
fn a_restore_with_one_vertex_overridden_runs_workers_that_hold_only_that_vertex() {
    let rows = 16_000;
    let expected = reference(rows);
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&job(dir.path(), rows, 3_000));
    let location = c.stop_with_savepoint("override-1");
    let explained = engine().args(["explain", dir.path().join("job.sql").to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&explained.stdout).to_string();
    // "Vertex 1 (parallelism 1, uid …)" followed by the window aggregation's chain.
    let uid = text
        .split("\nVertex ")
        .find(|v| v.contains("WindowAggregate"))
        .and_then(|v| v.split("uid ").nth(1))
        .and_then(|v| v.split(')').next())
        .unwrap_or_else(|| panic!("no window vertex in {text}"))
        .to_string();
    let set = format!("pipeline.jobvertex-parallelism-overrides={uid}:3");
    let mut resumed = c.coordinator("coordinator-override", 1, &["--restore", &location, "--set", &set]);
    let w: Vec<Proc> = (0..3).map(|i| c.worker(&format!("o{i}"), 1)).collect();
    let ok = resumed.wait(Duration::from_secs(120)).success();
    let logs: Vec<String> = w.iter().map(Proc::log).collect();
    assert!(ok, "{}\n{}", resumed.log(), logs.join("\n"));
    assert_eq!(outputs(dir.path()), expected);
}

#[test]
fn sigterm_stops_workers_and_the_coordinator_without_committing_a_partial_epoch() {
    let rows = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&job(dir.path(), rows, 5_000));
    let mut coord = c.coordinator("coordinator", 2, &[]);
    let mut w: Vec<Proc> = (0..2).map(|i| c.worker(&format!("w{i}"), 1)).collect();
    wait_for("a checkpoint", Duration::from_secs(60), || complete_checkpoints(&c.job_dir()) >= 1);
    for x in &w {
        x.sigterm();
    }
    for x in w.iter_mut() {
        assert!(x.wait(Duration::from_secs(20)).success(), "{}", x.log());
        assert!(x.log().contains("nothing more is committed"), "{}", x.log());
    }
    let committed = outputs(dir.path());
    coord.sigterm();
    assert!(coord.wait(Duration::from_secs(20)).success(), "{}", coord.log());
    // Nothing became visible after the stop, and the job is not terminal: a
    // new coordinator would resume it.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(outputs(dir.path()), committed);
    assert!(!c.job_dir().join("_terminal").exists());
}

#[test]
fn a_slow_sink_backpressures_sources_on_other_workers_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    // Many keys per 1-second window: each firing emits far more rows than the
    // throttled sink takes per second, so the window operator blocks, its
    // input channels fill, and the sources on both workers wait for credit.
    c.write_job(
        "CREATE TABLE src (id BIGINT, k INT, ts AS TO_TIMESTAMP_LTZ(id, 3), WATERMARK FOR ts AS ts)
 WITH ('connector' = 'datagen', 'rows-per-second' = '200000',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '100000000',
   'fields.k.min' = '0', 'fields.k.max' = '1000000');
CREATE TABLE slow (k INT, c BIGINT) WITH ('connector' = 'blackhole', 'sink.throttle' = '2000');
INSERT INTO slow SELECT k, COUNT(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND))
  GROUP BY k, window_start, window_end;",
    );
    let _coord = c.coordinator("coordinator", 2, &[]);
    let w: Vec<Proc> = (0..2).map(|i| c.worker(&format!("w{i}"), 1)).collect();
    wait_for("the job to run", Duration::from_secs(60), || {
        http(&c.rest, "GET", "/v1/job", "").is_some_and(|(_, b)| b.contains("\"RUNNING\""))
    });
    std::thread::sleep(Duration::from_secs(6));
    let rss_early: Vec<u64> = w.iter().map(Proc::rss_kib).collect();
    let mut backpressured = 0.0;
    wait_for("backpressured sources", Duration::from_secs(60), || {
        let m = json(&c.rest, "/v1/job/metrics");
        backpressured = m["vertices"][0]["backPressuredTimeMsPerSecond"].as_f64().unwrap_or(0.0);
        backpressured > 500.0
    });
    std::thread::sleep(Duration::from_secs(4));
    let rss_late: Vec<u64> = w.iter().map(Proc::rss_kib).collect();
    for (a, b) in rss_early.iter().zip(&rss_late) {
        // Credits bound what is in flight: memory does not keep growing.
        assert!(*b < *a + 200 * 1024, "worker RSS grew from {a} KiB to {b} KiB while backpressured");
    }
    // Latency markers cross the network with the records and wait behind them: the
    // workers' sink histograms reach the coordinator, and they show the queueing.
    let m = json(&c.rest, "/v1/job/metrics");
    let sink = &m["vertices"][1];
    let processing = &sink["latency"]["processingLatencyMs"];
    assert!(processing["count"].as_u64().unwrap_or(0) > 0, "no latency markers reached the sink: {sink}");
    assert!(processing["p99"].as_f64().unwrap_or(0.0) > 10.0, "backpressured, yet markers were fast: {sink}");
    // The sink writes (k, c): no time attribute or window_end, so no event-time lag.
    assert_eq!(sink["latency"]["eventTimeLagMs"]["count"], 0, "{sink}");
    assert!(sink["cpuSecondsPerMillionRecords"].as_f64().unwrap_or(0.0) > 0.0, "{sink}");
}

#[test]
fn worker_probes_are_ready_only_while_registered_and_deployed() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&job(dir.path(), 1_000_000, 2_000));
    let probes = format!("127.0.0.1:{}", free_port());
    let args = ["worker", "--coordinator", &c.rpc, "--data-addr", "127.0.0.1:0", "--rest-addr", &probes];
    let w = spawn(&args, dir.path().join("w0.log"));
    wait_for("the probes", Duration::from_secs(20), || http(&probes, "GET", "/healthz", "").is_some());
    // No coordinator yet: alive, not ready, and saying what it waits for.
    assert_eq!(http(&probes, "GET", "/readyz", "").unwrap().0, 503);
    wait_for("the worker to log", Duration::from_secs(20), || w.log().contains("waiting for coordinator"));
    let _coord = c.coordinator("coordinator", 1, &[]);
    wait_for("readiness", Duration::from_secs(60), || http(&probes, "GET", "/readyz", "").is_some_and(|r| r.0 == 200));
}

/// Sends one raw registration frame to the coordinator's RPC port; its answer.
fn register_raw(c: &Cluster, register: &str) -> serde_json::Value {
    let mut stream = None;
    wait_for("the RPC port", Duration::from_secs(20), || {
        stream = TcpStream::connect(&c.rpc).ok();
        stream.is_some()
    });
    let mut s = stream.unwrap();
    s.write_all(&(register.len() as u32).to_le_bytes()).unwrap();
    s.write_all(register.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn only_workers_with_the_jobs_cluster_secret_join() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&job(&dir.path().join("out"), 30_000, 3_000));
    let (secret, other) = (dir.path().join("secret"), dir.path().join("other"));
    std::fs::write(&secret, "job-secret\n").unwrap();
    std::fs::write(&other, "another-jobs-secret").unwrap();
    // Parallelism 2 on two workers: the data connections between them carry the secret too.
    let mut coord = c.coordinator("coordinator", 2, &["--cluster-secret-file", secret.to_str().unwrap()]);
    // A registration without the secret is refused with the reason.
    let register = format!(
        r#"{{"type":"register","protocol":{},"name":"stranger","slots":1,"dataAddr":"127.0.0.1:1","generationSeen":0}}"#,
        sluice_engine::cluster::PROTOCOL
    );
    let reply = register_raw(&c, &register);
    assert_eq!(reply["type"], "refused", "{reply}");
    assert!(reply["reason"].as_str().unwrap().contains("cluster secret"), "{reply}");
    // A worker of another job is refused too; the job's own worker runs it to the end.
    let worker = |name: &str, file: &Path, data: &str| {
        let args = ["worker", "--coordinator", &c.rpc, "--slots", "1", "--data-addr", data];
        let file = file.to_str().unwrap().to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--cluster-secret-file", file.as_str()]);
        spawn(&all, dir.path().join(format!("{name}.log")))
    };
    let stranger = worker("stranger", &other, "127.0.0.1:0");
    wait_for("the stranger's refusal", Duration::from_secs(30), || stranger.log().contains("cluster secret"));
    let data = format!("127.0.0.1:{}", free_port());
    let own = [worker("own-1", &secret, &data), worker("own-2", &secret, "127.0.0.1:0")];
    // While the job runs, a data connection without the secret is refused and logged.
    wait_for("running", Duration::from_secs(60), || coord.log().contains("subtasks on"));
    let mut s = TcpStream::connect(&data).unwrap();
    let hello = br#"{"key":{"generation":1,"attempt":1},"from":0}"#;
    let mut frame = ((16 + hello.len()) as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&[0u8; 16]);
    frame.extend_from_slice(hello);
    s.write_all(&frame).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(s.read(&mut [0u8; 16]).unwrap_or(0), 0, "the connection is closed");
    wait_for("the data refusal", Duration::from_secs(10), || {
        own[0].log().contains("refused a data connection claiming to be worker 0")
    });
    assert!(coord.wait(Duration::from_secs(120)).success(), "{}", coord.log());
    assert_eq!(committed(&dir.path().join("out").join("rows")).len(), 10_000, "every row of the job, once");
    assert!(!coord.log().contains("stranger registered"), "{}", coord.log());
}

#[test]
fn a_worker_of_another_protocol_version_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&job(dir.path(), 1_000_000, 2_000));
    let _coord = c.coordinator("coordinator", 1, &[]);
    let register =
        r#"{"type":"register","protocol":999,"name":"old","slots":1,"dataAddr":"127.0.0.1:1","generationSeen":0}"#;
    let reply = register_raw(&c, register);
    assert_eq!(reply["type"], "refused", "{reply}");
    assert!(reply["reason"].as_str().unwrap().contains("protocol 999"), "{reply}");
}

#[test]
fn joins_across_three_workers_commit_what_the_local_runner_commits() {
    // Both inputs of each join are hashed across workers (a self-join reads
    // one source vertex twice).
    let rows = 8_000;
    let expected = reference_of(joins_job, rows);
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&joins_job(dir.path(), rows, 20_000));
    let _w: Vec<Proc> = (0..3).map(|i| c.worker(&format!("w{i}"), 1)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut coord = c.coordinator("coordinator", 3, &[]);
    let status = coord.wait(Duration::from_secs(120));
    assert!(status.success(), "{}", coord.log());
    assert_eq!(outputs(dir.path()), expected);
}
