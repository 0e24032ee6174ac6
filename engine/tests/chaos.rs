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
        let c = Cluster::new(dir);
        c.write_job(&job(dir, ROWS, RATE));
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
        wait_for("a first checkpoint", Duration::from_secs(60), || complete_checkpoints(&job.c.job_dir()) >= 1);
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
        let deadline = Instant::now() + Duration::from_secs(180);
        while !job.finished() {
            assert!(Instant::now() < deadline, "the job did not finish:\n{}", job.coord.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let (windows, rows) = outputs(dir.path());
        report.check(&[(&expected.0, &windows), (&expected.1, &rows)]);
    }
    report.notes.push(format!(
        "kills by moment: anytime {}, mid-checkpoint {}, mid-savepoint {}, mid-restore {} (+ the kill before each)",
        per_moment[0], per_moment[1], per_moment[2], per_moment[3]
    ));
    report.finish();
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
        let deadline = Instant::now() + Duration::from_secs(180);
        while !job.finished() {
            assert!(Instant::now() < deadline, "the job did not finish:\n{}", job.coord.log());
            std::thread::sleep(Duration::from_millis(50));
        }
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
