#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Failure windows of recovery, sinks, fencing and upgrades, each hit at the
//! exact moment with a fault point (`SLUICE_FAILPOINTS`, see
//! `sluice_engine::failpoint`) rather than a sleep, and each checked against
//! the output of a run that never failed: no row lost, none written twice.

use std::path::Path;
use std::time::Duration;

mod common;
use common::cluster::*;
use common::*;

const FAILPOINTS: &str = "SLUICE_FAILPOINTS";

/// A directory where paused fault points meet the test.
struct Gate(tempfile::TempDir);

impl Gate {
    fn new() -> Gate {
        Gate(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> String {
        self.0.path().display().to_string()
    }

    fn reached(&self, point: &str) -> bool {
        self.0.path().join(format!("{point}.reached")).exists()
    }

    fn open(&self, point: &str) {
        std::fs::write(self.0.path().join(format!("{point}.go")), b"").unwrap();
    }
}

/// The job stops with a savepoint on two workers; a new deployment at
/// parallelism 3 starts from it on three workers, and its coordinator dies at
/// fault point `crash`. Restarted with the same command line, it must restore
/// that savepoint (not the old deployment's checkpoints or terminal marker)
/// and commit exactly the reference output.
fn a_new_deployment_dies_at(crash: &str) {
    let rows = 16_000;
    let expected = reference(rows);
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&job(dir.path(), rows, 3_000));
    let location = c.stop_with_savepoint("upgrade-1");
    let restore = ["--restore", location.as_str()];
    let _w: Vec<Proc> = (0..3).map(|i| c.worker(&format!("v{i}"), 1)).collect();
    let points = [(FAILPOINTS, format!("{crash}=1*exit"))];
    let mut first = c.coordinator_with("coordinator-d2-crashed", 3, &restore, &points);
    assert_eq!(first.wait(Duration::from_secs(120)).code(), Some(137), "{}", first.log());
    let mut again = c.coordinator("coordinator-d2", 3, &restore);
    assert!(again.wait(Duration::from_secs(120)).success(), "{}", again.log());
    assert!(again.log().contains(&format!("restoring from {location}")), "{}", again.log());
    assert_eq!(outputs(dir.path()), expected);
}

/// Finding 1 (a): the new deployment's coordinator dies while it loads the
/// savepoint, before the old deployment's terminal marker is gone.
#[test]
fn a_new_deployment_killed_while_restoring_starts_again_from_its_savepoint() {
    a_new_deployment_dies_at("restore.loaded");
}

/// Finding 1 (b): the new deployment's coordinator dies before its first
/// checkpoint completes.
#[test]
fn a_new_deployment_killed_before_its_first_checkpoint_starts_again_from_its_savepoint() {
    a_new_deployment_dies_at("checkpoint.before-metadata");
}

/// Finding 5: a coordinator that passed every check before a new one started
/// is paused just before it writes `_metadata`; the new coordinator takes over
/// with its own workers. The zombie must not commit, and the new coordinator's
/// output must be exactly the reference.
#[test]
fn a_zombie_coordinator_paused_before_completing_a_checkpoint_commits_nothing() {
    let rows = 16_000;
    let expected = reference(rows);
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&job(dir.path(), rows, 3_000));
    let gate = Gate::new();
    let pause = [(FAILPOINTS, format!("checkpoint.before-metadata=1*pause({})", gate.path()))];
    let mut old = c.coordinator_with("coordinator-old", 2, &[], &pause);
    let old_workers: Vec<Proc> = (0..2).map(|i| c.worker(&format!("w{i}"), 1)).collect();
    wait_for("the old coordinator to pause", Duration::from_secs(60), || gate.reached("checkpoint.before-metadata"));
    // A second coordinator for the job, as after a network partition.
    let other = Cluster::new(dir.path());
    let mut new = other.coordinator("coordinator-new", 2, &[]);
    wait_for("generation 2", Duration::from_secs(30), || new.log().contains("(generation 2)"));
    gate.open("checkpoint.before-metadata");
    assert!(!old.wait(Duration::from_secs(60)).success(), "{}", old.log());
    assert!(old.log().contains("superseded by generation 2"), "{}", old.log());
    drop(old_workers);
    let _w: Vec<Proc> = (0..2).map(|i| other.worker(&format!("n{i}"), 1)).collect();
    assert!(new.wait(Duration::from_secs(120)).success(), "{}", new.log());
    assert_eq!(outputs(dir.path()), expected);
}

/// Two pipelines in one statement set: `a` is short and ends, `b` keeps running.
fn two_pipelines(out: &Path) -> String {
    format!(
        "CREATE TABLE a_src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '2000',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '1999');
CREATE TABLE b_src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '2000',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '9999');
CREATE TABLE a_out (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{a}', 'format' = 'csv');
CREATE TABLE b_out (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{b}', 'format' = 'csv');
EXECUTE STATEMENT SET BEGIN
INSERT INTO a_out SELECT id FROM a_src;
INSERT INTO b_out SELECT id FROM b_src;
END;
",
        a = out.join("a").display(),
        b = out.join("b").display()
    )
}

fn ids(dir: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = committed(dir).iter().map(|l| l.parse().unwrap()).collect();
    v.sort_unstable();
    v
}

/// `sluice-engine run` of `job.sql` in `dir`, with checkpoints under `dir/ck`.
fn run_job(dir: &Path, name: &str, extra: &[&str], env: &[(&str, String)]) -> Proc {
    let job = dir.join("job.sql");
    let ck = dir.join("ck");
    let mut args = vec![
        "run",
        job.to_str().unwrap(),
        "--job-id",
        "local",
        "--checkpoint-dir",
        ck.to_str().unwrap(),
        "--set",
        "restart-strategy.type=fixed-delay",
        "--set",
        "restart-strategy.fixed-delay.delay=100ms",
    ];
    args.extend_from_slice(extra);
    spawn_with(&args, dir.join(format!("{name}.log")), env)
}

/// Finding 2: pipeline `a` acknowledges checkpoint 1 and then ends while that
/// checkpoint is still completing; then a task fails. Its last output must
/// become visible only with a checkpoint that covers it, so that the restart
/// from checkpoint 1 does not write it twice.
#[test]
fn a_finished_pipeline_commits_its_last_output_only_with_a_checkpoint_that_covers_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("job.sql"), two_pipelines(dir.path())).unwrap();
    let gate = Gate::new();
    // `sink.finished` only signals: its way is open from the start.
    gate.open("sink.finished");
    let points = format!(
        "checkpoint.before-metadata=1*pause({g});sink.finished=1*pause({g});checkpoint.committed=1*error(a task failed)",
        g = gate.path()
    );
    let mut run = run_job(dir.path(), "run", &["--checkpoint-interval", "200ms"], &[(FAILPOINTS, points)]);
    // Checkpoint 1 has every acknowledgement (pipeline `a` took part in it)
    // and waits; meanwhile pipeline `a` ends and pre-commits its last output.
    wait_for("checkpoint 1 to wait", Duration::from_secs(60), || gate.reached("checkpoint.before-metadata"));
    wait_for("pipeline a to end", Duration::from_secs(60), || gate.reached("sink.finished"));
    gate.open("checkpoint.before-metadata");
    assert!(run.wait(Duration::from_secs(120)).success(), "{}", run.log());
    assert!(run.log().contains("a task failed") && run.log().contains("restart 1"), "{}", run.log());
    assert_eq!(ids(&dir.path().join("a")), (0..2000).collect::<Vec<_>>(), "pipeline a");
    assert_eq!(ids(&dir.path().join("b")), (0..10000).collect::<Vec<_>>(), "pipeline b");
}

/// Finding 3: a savepoint of a running job, then `kill -9` before any
/// checkpoint, then `--restore latest`. The savepoint must not have committed
/// output that the restored run writes again.
#[test]
fn a_savepoint_of_a_running_job_commits_nothing_that_a_restore_of_latest_writes_again() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '4000',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '19999');
CREATE TABLE out (id BIGINT) WITH ('connector' = 'filesystem', 'path' = 'OUT', 'format' = 'csv');
INSERT INTO out SELECT id FROM src;
";
    let out = dir.path().join("out");
    std::fs::write(dir.path().join("job.sql"), sql.replace("OUT", &out.display().to_string())).unwrap();
    let rest = format!("127.0.0.1:{}", free_port());
    let target = dir.path().join("savepoints");
    let args = ["--checkpoint-interval", "1h", "--rest-addr", &rest, "--savepoint-dir", target.to_str().unwrap()];
    let mut first = run_job(dir.path(), "first", &args, &[]);
    wait_for("rows", Duration::from_secs(60), || {
        http(&rest, "GET", "/v1/job/metrics", "")
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|m| m["vertices"][0]["recordsIn"].as_f64())
            .is_some_and(|n| n >= 4000.0)
    });
    let body = format!(r#"{{"triggerId":"sp-1","targetDirectory":"{}","stop":false}}"#, target.display());
    assert!(http(&rest, "POST", "/v1/job/savepoints", &body).is_some_and(|(s, _)| s == 200 || s == 202));
    wait_for("the savepoint", Duration::from_secs(60), || {
        http(&rest, "GET", "/v1/job/savepoints/sp-1", "").is_some_and(|(_, b)| b.contains("COMPLETED"))
    });
    first.kill_9();
    let mut second = run_job(dir.path(), "second", &["--restore", "latest", "--rest-addr", "127.0.0.1:0"], &[]);
    assert!(second.wait(Duration::from_secs(120)).success(), "{}", second.log());
    assert_eq!(ids(&out), (0..20000).collect::<Vec<_>>());
}

/// A restore that fails (a missing, truncated or unreadable snapshot) makes
/// the job FAILED with the reason in `/v1/job`, instead of leaving it CREATED.
#[test]
fn a_restore_that_fails_makes_the_job_failed_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    // A real snapshot to damage: the final checkpoint of a short local run.
    c.write_job(&job(dir.path(), 200, 1_000_000));
    let mut run = run_job(dir.path(), "run", &["--rest-addr", "127.0.0.1:0"], &[]);
    assert!(run.wait(Duration::from_secs(60)).success(), "{}", run.log());
    let final_chk = std::fs::read_dir(dir.path().join("ck/local"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("_metadata").exists())
        .unwrap();
    let truncated = dir.path().join("truncated");
    let unreadable = dir.path().join("unreadable");
    for copy in [&truncated, &unreadable] {
        copy_dir(&final_chk, copy);
    }
    let state = walk(&truncated).into_iter().find(|p| p.extension().is_some_and(|e| e == "state")).unwrap();
    let bytes = std::fs::read(&state).unwrap();
    std::fs::write(&state, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(unreadable.join("_metadata"), b"{ not json").unwrap();
    let cases =
        [(dir.path().join("missing"), "no _metadata"), (truncated, "truncated"), (unreadable, "unreadable manifest")];
    for (i, (snapshot, why)) in cases.iter().enumerate() {
        let c = Cluster::new(dir.path());
        let mut coord = c.coordinator(
            &format!("coordinator-{i}"),
            1,
            &["--on-finish", "stay", "--restore", snapshot.to_str().unwrap()],
        );
        let mut job = serde_json::Value::Null;
        wait_for("the job to fail", Duration::from_secs(30), || {
            job = http(&c.rest, "GET", "/v1/job", "")
                .and_then(|(_, b)| serde_json::from_str(&b).ok())
                .unwrap_or_default();
            job["state"] == "FAILED"
        });
        let error = job["error"].as_str().unwrap_or_default();
        assert!(error.contains(why) && error.contains(snapshot.to_str().unwrap()), "{job}");
        coord.sigterm();
        coord.wait(Duration::from_secs(20));
    }
}
