#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The fault-injection suite. Every scenario runs a job whose correct output is
//! known (a reference run that was never disturbed), injects faults, and
//! checks the committed output with a sequence checker: no row lost, none
//! duplicated. It records the time from each fault to the job's recovery.
//!
//! `make test` runs the short version of each scenario; `make chaos`
//! (`SLUICE_CHAOS=full`) the long one, and `scripts/chaos.sh` writes the
//! report `.bench/chaos.md` from the lines each scenario appends to
//! `$SLUICE_CHAOS_REPORT`. Set `SLUICE_CHAOS_SEED` to repeat a run's faults.
//!
//! Recovery is "a checkpoint triggered after the fault completed": the job runs
//! again, and what it ran is safe.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::chaos::*;
use common::cluster::*;
use common::*;

/// The job of every kill scenario: a keyed window and a filtered copy of the
/// source, two exactly-once filesystem sinks.
const ROWS: u64 = 16_000;
const RATE: u64 = 3_000;

/// Where a kill lands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Moment {
    /// At a random time.
    Anytime,
    /// While a checkpoint is in flight: its directory exists without `_metadata`.
    Checkpoint,
    /// Right after a savepoint was requested.
    Savepoint,
    /// While the job restores, after an earlier kill.
    Restore,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Worker,
    Coordinator,
    Both,
}

/// A coordinator and its workers on loopback, restarted after each kill.
struct Job {
    c: Cluster,
    coord: Proc,
    workers: Vec<Proc>,
    started: usize,
    extra: Vec<String>,
}

impl Job {
    fn start(dir: &Path, extra: &[&str]) -> Job {
        Job::start_with(dir, job, extra)
    }

    /// A run of the job `text` makes (see `common::job`).
    fn start_with(dir: &Path, text: JobText, extra: &[&str]) -> Job {
        let c = Cluster::new(dir);
        c.write_job(&text(dir, ROWS, RATE));
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let mut job = Job { coord: coordinator(&c, 0, &extra), c, workers: Vec::new(), started: 1, extra };
        for _ in 0..2 {
            job.add_worker();
        }
        job
    }

    fn add_worker(&mut self) {
        self.started += 1;
        self.workers.push(self.c.worker(&format!("w{}", self.started), 1));
    }

    /// Whether the coordinator ended on its own: the job finished.
    fn finished(&mut self) -> bool {
        match self.coord.child.try_wait().unwrap() {
            None => false,
            Some(s) if s.success() => true,
            Some(s) => panic!("the coordinator failed ({s}):\n{}", self.coord.log()),
        }
    }

    fn kill(&mut self, target: Target, rng: &mut Rng) {
        if matches!(target, Target::Worker | Target::Both) && !self.workers.is_empty() {
            let i = rng.range(0, self.workers.len() as u64) as usize;
            self.workers.remove(i).kill_9();
            self.add_worker();
        }
        if matches!(target, Target::Coordinator | Target::Both) {
            self.coord.kill_9();
            self.started += 1;
            self.coord = coordinator(&self.c, self.started, &self.extra);
        }
    }

    /// How many times the processes running now said they restore a snapshot.
    fn restores(&self) -> usize {
        std::iter::once(&self.coord).chain(&self.workers).map(|p| p.log().matches("restoring from").count()).sum()
    }

    /// Waits for a checkpoint triggered after `newest` completed (or for the
    /// job to finish), up to two minutes.
    fn wait_recovered(&mut self, newest: u64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while newest_checkpoint(&self.c.job_dir()) < newest + 2 && !self.finished() {
            assert!(Instant::now() < deadline, "no recovery within 2 minutes; coordinator:\n{}", self.coord.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits up to a minute for the first checkpoint; on a timeout, says what
    /// the coordinator and the workers logged.
    fn wait_first_checkpoint(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while complete_checkpoints(&self.c.job_dir()) < 1 {
            if Instant::now() >= deadline {
                let workers: Vec<String> = self.workers.iter().map(|w| w.log()).collect();
                panic!(
                    "timed out waiting for a first checkpoint; coordinator:\n{}\nworkers:\n{}",
                    self.coord.log(),
                    workers.join("\n---\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to three minutes for the job to finish.
    fn wait_finished(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while !self.finished() {
            assert!(Instant::now() < deadline, "the job did not finish:\n{}", self.coord.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `timeout` for a checkpoint in flight.
    fn wait_in_flight(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && !self.finished() {
            let newest = newest_checkpoint(&self.c.job_dir());
            if self.c.job_dir().join(format!("chk-{}", newest + 1)).exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn coordinator(c: &Cluster, n: usize, extra: &[String]) -> Proc {
    let mut args = vec!["--set", "restart-strategy.fixed-delay.attempts=100000"];
    args.extend(extra.iter().map(String::as_str));
    c.coordinator(&format!("coordinator-{n}"), 2, &args)
}

/// `kill -9` of a random worker, the coordinator or both, at random times and
/// during checkpoints, savepoints and restores, until the job has taken
/// `kills` kills; as many runs of the job as that takes.
#[test]
fn kill_9_of_workers_and_coordinators_loses_and_duplicates_nothing() {
    let kills = scale(8, 100);
    let expected = reference(ROWS);
    let mut rng = Rng::seeded("kill -9");
    let mut report =
        Scenario::new("kill -9: worker, coordinator, both (anytime, mid-checkpoint, mid-savepoint, mid-restore)");
    let moments = [Moment::Anytime, Moment::Checkpoint, Moment::Savepoint, Moment::Restore];
    let targets = [Target::Worker, Target::Coordinator, Target::Both];
    let mut per_moment = [0u64; 4];
    while report.faults < kills {
        let dir = tempfile::tempdir().unwrap();
        let mut job = Job::start(dir.path(), &[]);
        job.wait_first_checkpoint();
        while report.faults < kills && !job.finished() {
            std::thread::sleep(rng.millis(100, 1200));
            let moment = *rng.pick(&moments);
            let target = *rng.pick(&targets);
            match moment {
                Moment::Anytime => {}
                Moment::Checkpoint => job.wait_in_flight(Duration::from_secs(2)),
                Moment::Savepoint => {
                    let body = format!(r#"{{"triggerId":"chaos-{}","stop":false}}"#, report.faults);
                    let _ = http(&job.c.rest, "POST", "/v1/job/savepoints", &body);
                    std::thread::sleep(rng.millis(0, 40));
                }
                Moment::Restore => {
                    // A first kill, then another as soon as something restores.
                    let before = job.restores();
                    job.kill(target, &mut rng);
                    report.faults += 1;
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while job.restores() == before && Instant::now() < deadline && !job.finished() {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            }
            if job.finished() {
                break;
            }
            let newest = newest_checkpoint(&job.c.job_dir());
            let killed = Instant::now();
            job.kill(target, &mut rng);
            report.faults += 1;
            per_moment[moment as usize] += 1;
            job.wait_recovered(newest);
            report.recovered(killed);
        }
        finish_and_check(&mut job, dir, &expected, &mut report);
    }
    report.notes.push(format!(
        "kills by moment: anytime {}, mid-checkpoint {}, mid-savepoint {}, mid-restore {} (+ the kill before each)",
        per_moment[0], per_moment[1], per_moment[2], per_moment[3]
    ));
    report.finish();
}

/// The same kills on the disk state backend, with so little memory (16 KiB)
/// that the joins' keys live on disk, at random times and while incremental
/// checkpoints are in flight: the checkpoints hold the heap's view and an LSM
/// snapshot, and a restored worker reads them back from the checkpoint, not
/// from its (or a killed worker's) spill directory.
#[test]
fn kill_9_on_the_disk_backend_mid_incremental_checkpoints_loses_and_duplicates_nothing() {
    let kills = scale(4, 40);
    let expected = reference_of(joins_job, ROWS);
    let mut rng = Rng::seeded("kill -9, disk backend");
    let mut report = Scenario::new("kill -9 on the disk state backend: worker or both (anytime, mid-checkpoint)");
    let spill = tempfile::tempdir().unwrap();
    let tmp = format!("io.tmp.dirs={}", spill.path().display());
    let extra = ["--set", "state.backend.type=disk", "--set", "taskmanager.memory.managed.size=16kb", "--set", &tmp];
    let mut on_disk = 0;
    while report.faults < kills {
        let dir = tempfile::tempdir().unwrap();
        let mut job = Job::start_with(dir.path(), joins_job, &extra);
        job.wait_first_checkpoint();
        while report.faults < kills && !job.finished() {
            std::thread::sleep(rng.millis(100, 1200));
            if rng.range(0, 2) == 0 {
                job.wait_in_flight(Duration::from_secs(2));
            }
            on_disk = on_disk.max(keys_on_disk(&job.c.rest));
            if job.finished() {
                break;
            }
            let newest = newest_checkpoint(&job.c.job_dir());
            let killed = Instant::now();
            job.kill(*rng.pick(&[Target::Worker, Target::Both]), &mut rng);
            report.faults += 1;
            job.wait_recovered(newest);
            report.recovered(killed);
        }
        finish_and_check(&mut job, dir, &expected, &mut report);
    }
    assert!(on_disk > 0, "no keys were ever on disk (`stateKeysOnDisk`): the scenario tested the heap");
    report.notes.push(format!("most keys on disk before a kill (`stateKeysOnDisk`, summed over vertices): {on_disk}"));
    report.finish();
}

/// Lets a run finish, then counts what its committed output lost or
/// duplicated, and explains any damage.
fn finish_and_check(
    job: &mut Job,
    dir: tempfile::TempDir,
    expected: &(Vec<String>, Vec<String>),
    report: &mut Scenario,
) {
    job.wait_finished();
    let (windows, rows) = outputs(dir.path());
    let before = (report.lost, report.duplicated);
    report.check(&[(&expected.0, &windows), (&expected.1, &rows)]);
    if (report.lost, report.duplicated) != before {
        explain_damage(dir, expected, (&windows, &rows));
    }
}

/// The keys on disk of every vertex (`stateKeysOnDisk` of `GET
/// /v1/job/metrics`, as of the last checkpoint), summed; 0 when unknown.
fn keys_on_disk(rest: &str) -> u64 {
    let Some((200, body)) = http(rest, "GET", "/v1/job/metrics", "") else { return 0 };
    let m: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    m["vertices"].as_array().map_or(0, |v| v.iter().filter_map(|v| v["stateKeysOnDisk"].as_u64()).sum())
}

/// Keeps a run's directory whose output is wrong and prints what it lacks or
/// repeats, with what its processes said about restoring.
fn explain_damage(dir: tempfile::TempDir, expected: &(Vec<String>, Vec<String>), actual: (&[String], &[String])) {
    for (name, e, a) in [("windows", &expected.0, actual.0), ("rows", &expected.1, actual.1)] {
        let missing: Vec<&String> = e.iter().filter(|x| !a.contains(x)).take(5).collect();
        let extra = a.len() as i64 - e.len() as i64;
        eprintln!("sink {name}: {} rows, {} expected ({extra:+}); missing e.g. {missing:?}", a.len(), e.len());
    }
    let kept = dir.keep();
    for f in walk(&kept).into_iter().filter(|f| f.extension().is_some_and(|e| e == "log")) {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for l in text.lines().filter(|l| l.contains("restor") || l.contains("withdrew") || l.contains("generation")) {
            eprintln!("{}: {l}", f.file_name().unwrap().to_string_lossy());
        }
    }
    eprintln!("kept {}", kept.display());
}

/// The ways a checkpoint file is damaged.
const DAMAGE: [&str; 4] =
    ["truncate a state file", "flip a bit in a state file", "truncate _metadata", "flip a bit in _metadata"];

/// Damages one file of checkpoint `dir` as `how` says; returns its name.
fn damage(dir: &Path, how: &str, rng: &mut Rng) -> String {
    let mut files: Vec<_> = walk(dir).into_iter().filter(|f| f.extension().is_some_and(|e| e == "state")).collect();
    files.sort();
    let file = if how.ends_with("_metadata") { dir.join("_metadata") } else { rng.pick(&files).clone() };
    let mut bytes = std::fs::read(&file).unwrap();
    if how.starts_with("truncate") {
        bytes.truncate(rng.range(0, bytes.len() as u64) as usize);
    } else {
        let i = rng.range(0, bytes.len() as u64) as usize;
        bytes[i] ^= 1 << rng.range(0, 8);
    }
    std::fs::write(&file, bytes).unwrap();
    file.strip_prefix(dir).unwrap().display().to_string()
}

/// The whole job killed, its newest checkpoint damaged, and the job started
/// again: the coordinator names the damaged file, restores the checkpoint
/// before it, and the output is still exactly once.
#[test]
fn a_damaged_newest_checkpoint_is_named_and_an_older_one_restored() {
    let runs = scale(4, 16);
    let expected = reference(ROWS);
    let mut rng = Rng::seeded("corruption");
    let mut report = Scenario::new("corrupt newest checkpoint (truncated or bit-flipped state file or _metadata)");
    for run in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let mut job = Job::start(dir.path(), &[]);
        let target = rng.range(3, 12) as usize;
        wait_for("checkpoints", Duration::from_secs(60), || complete_checkpoints(&job.c.job_dir()) >= target.min(3));
        std::thread::sleep(rng.millis(0, 1500));
        job.coord.kill_9();
        for w in &mut job.workers {
            w.kill_9();
        }
        let newest = newest_checkpoint(&job.c.job_dir());
        if newest == 0 || job.c.job_dir().join("_terminal").exists() {
            continue; // finished before the kill
        }
        let how = DAMAGE[run as usize % DAMAGE.len()];
        let name = damage(&job.c.job_dir().join(format!("chk-{newest}")), how, &mut rng);
        report.faults += 1;
        let restarted = Instant::now();
        job.started += 1;
        job.coord = coordinator(&job.c, job.started, &job.extra);
        job.workers = Vec::new();
        job.add_worker();
        job.add_worker();
        job.wait_recovered(newest);
        report.recovered(restarted);
        job.wait_finished();
        let log = job.coord.log();
        let named = log.lines().find(|l| l.contains(&format!("checkpoint {newest}")) && l.contains(&name));
        assert!(named.is_some(), "the coordinator did not name {name} of checkpoint {newest} ({how}):\n{log}");
        let (windows, rows) = outputs(dir.path());
        report.check(&[(&expected.0, &windows), (&expected.1, &rows)]);
        let restored = log.lines().find(|l| l.contains("restoring from")).unwrap_or("nothing restored");
        eprintln!("run {run}: {how} ({name}); {}; {restored}", named.unwrap().trim());
    }
    report.notes.push("recovery: from the restart to a checkpoint triggered after it".into());
    report.finish();
}

/// The address a worker's log says it exchanges data on.
fn data_addr(w: &Proc) -> Option<String> {
    let log = w.log();
    let line = log.lines().find(|l| l.contains("data exchange on"))?;
    Some(line.rsplit(' ').next()?.trim().to_string())
}

/// Sends `bytes` to `addr` and reads whatever comes back until the peer closes
/// or half a second passes: the peer must survive it.
fn poke(addr: &str, bytes: &[u8]) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return };
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let _ = s.write_all(bytes);
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
}

/// Garbage, truncated and oversized frames on the coordinator's RPC port and a
/// worker's data port, and an oversized REST body, while the job runs: each
/// is refused, and the job neither restarts nor loses or duplicates a row.
#[test]
fn garbage_and_oversized_input_on_every_port_is_refused_without_harm() {
    let rounds = scale(3, 30);
    let expected = reference(ROWS);
    let mut rng = Rng::seeded("bad input");
    let mut report = Scenario::new("garbage and oversized frames on the RPC and data ports, oversized REST body");
    let dir = tempfile::tempdir().unwrap();
    let job = Job::start(dir.path(), &["--on-finish", "stay"]);
    wait_for("a first checkpoint", Duration::from_secs(60), || complete_checkpoints(&job.c.job_dir()) >= 1);
    let data = data_addr(&job.workers[0]).expect("the worker's data address");
    for _ in 0..rounds {
        let mut garbage = vec![0u8; rng.range(1, 4096) as usize];
        garbage.iter_mut().for_each(|b| *b = rng.next() as u8);
        // A length prefix that claims 4 GiB, then nothing.
        let huge = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        for addr in [&job.c.rpc, &data] {
            poke(addr, &garbage);
            poke(addr, &huge);
            poke(addr, &garbage[..garbage.len().min(3)]);
            report.faults += 3;
        }
        let body = "x".repeat((rng.range(4, 64) as usize) << 20);
        let (status, _) = http(&job.c.rest, "POST", "/v1/job/savepoints", &body).unwrap_or((0, String::new()));
        assert!(status == 413 || status == 400 || status == 0, "an oversized REST body got {status}");
        report.faults += 1;
    }
    wait_for("the job to finish", Duration::from_secs(180), || job.c.job_finished());
    let status = json(&job.c.rest, "/v1/job");
    assert_eq!(status["restarts"], 0, "bad input restarted the job: {status}");
    let (windows, rows) = outputs(dir.path());
    report.check(&[(&expected.0, &windows), (&expected.1, &rows)]);
    let logs: String = std::iter::once(&job.coord).chain(&job.workers).map(Proc::log).collect();
    assert!(!logs.contains("panicked"), "{logs}");
    let refused = |what: &str| logs.lines().filter(|l| l.contains(what)).count();
    // The workers exit with the job; the coordinator stays up.
    assert!(refused("refused a connection from 127.0.0.1:") >= 3 * rounds as usize, "{logs}");
    assert!(refused("refused a data connection from 127.0.0.1:") >= 3, "{logs}");
    report.notes.push("each input refused with a logged reason; no restart, no panic".into());
    report.finish();
}

/// Tokens the SQL fuzzer inserts: keywords, operators, literals and the
/// fragments that parsers and planners trip on.
const SQL_TOKENS: [&str; 40] = [
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "HAVING",
    "JOIN",
    "ON",
    "INSERT INTO",
    "CREATE TABLE",
    "WITH",
    "TUMBLE(",
    "HOP(",
    "SESSION(",
    "DESCRIPTOR(",
    "INTERVAL '1' SECOND",
    "WATERMARK FOR",
    "AS",
    "(",
    ")",
    ",",
    ";",
    "'",
    "\"",
    "*",
    "/ 0",
    "NULL",
    "CAST(",
    "AS BIGINT)",
    "9223372036854775808",
    "-1",
    "1e309",
    "``",
    "\u{0}",
    "ä",
    "OVER (",
    "PARTITION BY",
    "ORDER BY",
    "LIMIT",
    "TABLE(",
    "EXECUTE STATEMENT SET BEGIN",
];

/// Mutated jobs through validation and planning: any input gets an answer
/// (a job or an error), never a panic.
#[test]
fn mutated_sql_gets_an_error_or_a_plan_never_a_panic() {
    let cases = scale(400, 20_000);
    let mut rng = Rng::seeded("sql fuzz");
    let mut report = Scenario::new("SQL fuzz: mutated jobs through validate and plan");
    let base = job(Path::new("/tmp/sluice-fuzz"), 1000, 1000);
    let (mut errors, mut panics) = (0, Vec::new());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for _ in 0..cases {
        let mut text: Vec<char> = base.chars().collect();
        for _ in 0..rng.range(1, 3) {
            let at = rng.range(0, text.len() as u64 + 1) as usize;
            match rng.range(0, 7) {
                0 | 1 => {
                    let end = (at + rng.range(1, 40) as usize).min(text.len());
                    text.drain(at..end);
                }
                2 | 3 => {
                    let t = format!(" {} ", rng.pick(&SQL_TOKENS));
                    text.splice(at..at, t.chars());
                }
                4 => text.truncate(at),
                _ => {
                    if let Some(c) = text.get_mut(at) {
                        *c = char::from_u32(rng.range(1, 0x2FF) as u32).unwrap_or('?');
                    }
                }
            }
        }
        let text: String = text.into_iter().collect();
        let outcome = std::panic::catch_unwind(|| {
            let compiled = sluice_engine::local::compile_text(&text, "fuzz.sql").map_err(|e| e.to_string())?;
            sluice_engine::local::prepare(&compiled, &config(&[]), "fuzz").map(|_| ()).map_err(|e| e.to_string())
        });
        report.faults += 1;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                errors += 1;
                assert!(!e.trim().is_empty(), "an empty error for:\n{text}");
            }
            Err(_) => panics.push(text),
        }
    }
    std::panic::set_hook(hook);
    report.runs = 1;
    report.notes.push(format!("{cases} mutated jobs: {errors} refused with an error, {} panics", panics.len()));
    assert!(panics.is_empty(), "{} inputs panicked; the first:\n{}", panics.len(), panics[0]);
    report.finish();
}

/// A worker whose RPC connection to the coordinator and whose data port (as
/// the other workers reach it) go through [`Link`]s that the test cuts.
struct Partitionable {
    proc: Proc,
    rpc: Link,
    data: Link,
}

fn partitionable_worker(c: &Cluster, name: &str) -> Partitionable {
    let rpc = Link::start("127.0.0.1:0", &c.rpc);
    let port = free_port();
    // The others reach this worker at 127.0.0.2:<port>, the link's end.
    let data = Link::start(&format!("127.0.0.2:{port}"), &format!("127.0.0.1:{port}"));
    let bind = format!("127.0.0.1:{port}");
    let args = [
        "worker",
        "--coordinator",
        &rpc.addr,
        "--slots",
        "1",
        "--data-addr",
        &bind,
        "--advertise-addr",
        "127.0.0.2",
        "--set",
        "heartbeat.timeout=2s",
    ];
    Partitionable { proc: spawn(&args, c.dir.join(format!("{name}.log"))), rpc, data }
}

/// One worker cut off from the coordinator, from the other workers, or from
/// both, for twice the heartbeat timeout, then healed: the job recovers, and
/// the fenced side commits nothing twice.
#[test]
fn a_partitioned_worker_is_fenced_and_the_job_recovers_when_it_heals() {
    let rounds = scale(3, 15);
    let rate = 3_000;
    let rows = rate * (rounds * 6 + 4);
    let expected = reference(rows);
    let mut rng = Rng::seeded("partition");
    let mut report = Scenario::new("network partition of one worker: from the coordinator, the workers, or both");
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&job(dir.path(), rows, rate));
    let coord =
        coordinator(&c, 0, &["--set".into(), "heartbeat.timeout=2s".into(), "--on-finish".into(), "stay".into()]);
    let workers: Vec<Partitionable> = (0..3).map(|i| partitionable_worker(&c, &format!("w{i}"))).collect();
    wait_for("a first checkpoint", Duration::from_secs(60), || complete_checkpoints(&c.job_dir()) >= 1);
    let kinds = ["from the coordinator", "from the other workers", "from both"];
    let (mut fenced, mut during) = (0, 0);
    for round in 0..rounds {
        let w = &workers[rng.range(0, 3) as usize];
        let kind = kinds[round as usize % kinds.len()];
        let (newest, cut) = (newest_checkpoint(&c.job_dir()), Instant::now());
        let before = coord.log().matches("was lost").count();
        if kind != "from the other workers" {
            w.rpc.cut();
        }
        if kind != "from the coordinator" {
            w.data.cut();
        }
        // Recovery may come during the partition (the worker was fenced and
        // replaced, or ran nothing), or only once it heals.
        let progressed = || newest_checkpoint(&c.job_dir()) >= newest + 2;
        let mut recovered = None;
        while cut.elapsed() < Duration::from_secs(4) {
            if recovered.is_none() && progressed() {
                recovered = Some(cut.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        w.rpc.heal();
        w.data.heal();
        fenced += usize::from(coord.log().matches("was lost").count() > before);
        report.faults += 1;
        if recovered.is_none() {
            wait_for("a checkpoint after the partition", Duration::from_secs(120), || progressed() || c.job_finished());
        } else {
            during += 1;
        }
        report.recover_ms.push(recovered.unwrap_or_else(|| cut.elapsed()).as_millis() as u64);
        std::thread::sleep(rng.millis(200, 1500));
    }
    wait_for("the job to finish", Duration::from_secs(300), || c.job_finished());
    let (windows, rows_out) = outputs(dir.path());
    report.check(&[(&expected.0, &windows), (&expected.1, &rows_out)]);
    let logs: String = workers.iter().map(|w| w.proc.log()).collect();
    assert!(!logs.contains("panicked"), "{logs}");
    report.notes.push(format!(
        "partitions of 4 s (heartbeat timeout 2 s); {fenced} of {rounds} fenced the worker; the job progressed during {during} of them and after the heal in the others; recovery: from the cut to a checkpoint triggered after it"
    ));
    report.finish();
}

/// The backpressure job, `bench/state/backpressure.sql` (what `make bench`
/// measures checkpoints on): every source row goes to a throttled sink (the
/// bottleneck) and every third to an exactly-once filesystem sink.
fn spike_job(out: &Path, rows: u64, rate: u64, sink_rate: u64) -> String {
    let sql = include_str!("../../bench/state/backpressure.sql");
    let rows_out = out.join("rows").display().to_string();
    [
        ("${ROWS_LAST}", (rows - 1).to_string()),
        ("${RATE}", rate.to_string()),
        ("${SINK_RATE}", sink_rate.to_string()),
        ("${OUT}", rows_out),
    ]
    .iter()
    .fold(sql.to_string(), |sql, (k, v)| sql.replace(k, v))
}

/// Sources offered 5× what the slowest sink takes, for the whole run: the job
/// is backpressured throughout; checkpoints still complete, worker memory stays
/// bounded. Once a checkpoint completed under backpressure, a worker is killed
/// with `kill -9` (and replaced): the job restores from that checkpoint, still
/// backpressured, and no row is lost or duplicated.
#[test]
fn a_source_at_five_times_the_sinks_capacity_still_checkpoints_with_bounded_memory() {
    let secs = scale(10, 60);
    let sink_rate = 1_500; // per subtask, parallelism 2
    let rows = 2 * sink_rate * secs;
    let reference_dir = tempfile::tempdir().unwrap();
    let (_, h) = start(
        &spike_job(reference_dir.path(), rows, 1_000_000, 1_000_000),
        "reference",
        &config(&[("parallelism.default", "2".into())]),
    );
    h.join().unwrap().unwrap();
    let expected = committed(&reference_dir.path().join("rows"));
    let mut report = Scenario::new("backpressure: sources offered 5× the slowest sink's capacity");
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(dir.path());
    c.write_job(&spike_job(dir.path(), rows, 5 * 2 * sink_rate, sink_rate));
    let coord = c.coordinator("coordinator", 2, &["--on-finish", "stay"]);
    let mut w: Vec<Proc> = (0..2).map(|i| c.worker(&format!("w{i}"), 1)).collect();
    wait_for("a first checkpoint", Duration::from_secs(60), || complete_checkpoints(&c.job_dir()) >= 1);
    let started = Instant::now();
    let first = newest_checkpoint(&c.job_dir());
    let rss_early: u64 = w.iter().map(Proc::rss_kib).sum();
    let (mut rss_max, mut backpressured) = (rss_early, 0.0f64);
    let mut killed_after = None;
    while !c.job_finished() {
        assert!(started.elapsed() < Duration::from_secs(secs * 5 + 120), "the job did not finish");
        let newest = newest_checkpoint(&c.job_dir());
        if killed_after.is_none() && newest > first && backpressured > 500.0 {
            w.remove(1).kill_9();
            w.push(c.worker("w2", 1));
            killed_after = Some(newest);
        }
        rss_max = rss_max.max(w.iter().map(Proc::rss_kib).sum());
        if let Some((200, b)) = http(&c.rest, "GET", "/v1/job/metrics", "") {
            let m: serde_json::Value = serde_json::from_str(&b).unwrap();
            backpressured = backpressured.max(m["vertices"][0]["backPressuredTimeMsPerSecond"].as_f64().unwrap_or(0.0));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let checkpoints = json(&c.rest, "/v1/job/checkpoints");
    let history = checkpoints["history"].as_array().cloned().unwrap_or_default();
    let slowest = history.iter().filter_map(|c| c["durationMs"].as_u64()).max().unwrap_or(0);
    let completed = newest_checkpoint(&c.job_dir()) - first;
    let killed_after = killed_after.expect("no checkpoint completed under backpressure before the job finished");
    report.faults = 2;
    report.check(&[(&expected, &committed(&dir.path().join("rows")))]);
    report.notes.push(format!(
        "{:.0} s backpressured (up to {backpressured:.0} ms/s at the source); {completed} checkpoints completed, the slowest in {slowest} ms; a worker killed with kill -9 after checkpoint {killed_after}; workers' RSS {} MiB at the start, {} MiB at most",
        started.elapsed().as_secs_f64(),
        rss_early / 1024,
        rss_max / 1024
    ));
    // Their pace is a figure for the report (the state-at-scale issue's), not an assertion.
    assert!(completed >= 1, "no checkpoint completed under backpressure: {checkpoints}");
    assert!(backpressured > 500.0, "the sources were not backpressured ({backpressured} ms/s)");
    let log: String = std::iter::once(&coord).chain(&w).map(Proc::log).collect();
    assert!(log.contains("restoring from"), "the job did not restore after the kill:\n{log}");
    report.finish();
}
