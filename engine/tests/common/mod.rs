//! Helpers shared by the engine's integration tests: a deterministic,
//! rate-limited job with a keyed window and a plain sink, its committed
//! output, and a reference run that never stops.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod chaos;
pub mod cluster;
pub mod golden;
pub mod openlineage;
pub mod restore;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_engine::config::Config;
use sluice_engine::local::{compile_text, prepare};
use sluice_engine::runtime::{JobState, execute};

pub type JobText = fn(&Path, u64, u64) -> String;

/// A rate-limited, seeded, bounded source: deterministic rows, so every run
/// (interrupted or not, at any parallelism) must commit the same output.
pub fn job(out: &Path, rows: u64, rate: u64) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, k INT, v INT,
   ts AS TO_TIMESTAMP_LTZ(id * 10, 3),
   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'datagen', 'seed' = '7', 'rows-per-second' = '{rate}',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{last}',
   'fields.k.min' = '0', 'fields.k.max' = '15', 'fields.v.min' = '0', 'fields.v.max' = '1000');
CREATE TABLE per_window (k INT, window_start TIMESTAMP(3), c BIGINT, s INT, m INT)
 WITH ('connector' = 'filesystem', 'path' = '{w}', 'format' = 'csv');
CREATE TABLE rows_out (id BIGINT, k INT, v INT)
 WITH ('connector' = 'filesystem', 'path' = '{r}', 'format' = 'csv', 'sink.commit-log.enabled' = 'true');
EXECUTE STATEMENT SET BEGIN
INSERT INTO per_window SELECT k, window_start, COUNT(*), SUM(v), MAX(v)
  FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
INSERT INTO rows_out SELECT id, k, v FROM src WHERE MOD(id, 3) = 0;
END;
",
        last = rows - 1,
        w = out.join("windows").display(),
        r = out.join("rows").display()
    )
}

/// The committed output: every visible line of every `part-*` file, sorted.
pub fn committed(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return lines };
    for e in entries {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        lines.extend(std::fs::read_to_string(e.path()).unwrap().lines().map(str::to_string));
    }
    lines.sort();
    lines
}

pub fn outputs(out: &Path) -> (Vec<String>, Vec<String>) {
    (committed(&out.join("windows")), committed(&out.join("rows")))
}

pub fn config(pairs: &[(&str, String)]) -> Config {
    Config { values: pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect() }
}

/// Runs the job in this process; returns its state and the runner thread.
pub fn start(sql: &str, job_id: &str, cfg: &Config) -> (Arc<JobState>, std::thread::JoinHandle<Result<(), String>>) {
    let job = compile_text(sql, "job.sql").unwrap();
    let (graph, options) = prepare(&job, cfg, job_id).unwrap();
    let state = JobState::new(job_id, "job.sql", &graph);
    let s = state.clone();
    let h = std::thread::spawn(move || execute(&graph, &s, &options).map_err(|e| e.to_string()));
    (state, h)
}

pub fn reference(rows: u64) -> (Vec<String>, Vec<String>) {
    reference_of(job, rows)
}

pub fn reference_of(make: JobText, rows: u64) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let (_, h) =
        start(&make(dir.path(), rows, 1_000_000), "reference", &config(&[("parallelism.default", "2".into())]));
    h.join().unwrap().unwrap();
    let o = outputs(dir.path());
    assert!(o.0.len() > 50 && o.1.len() > 100, "the reference run produced too little: {} {}", o.0.len(), o.1.len());
    o
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn complete_checkpoints(job_dir: &Path) -> usize {
    std::fs::read_dir(job_dir)
        .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.path().join("_metadata").exists()).count())
        .unwrap_or(0)
}

/// The id of the newest complete checkpoint (retention keeps only a few).
pub fn newest_checkpoint(job_dir: &Path) -> u64 {
    std::fs::read_dir(job_dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().join("_metadata").exists())
                .filter_map(|e| e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

pub fn engine() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice-engine"))
}

/// Every file below `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Copies the files below `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    for f in walk(from) {
        let target = to.join(f.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&f, &target).unwrap();
    }
}

/// The flags of a job run under `<dir>/policy.yaml`, with its hmac keys under `<dir>/secrets`.
pub fn policy_args(dir: &Path) -> Vec<String> {
    vec![
        "--data-policy".into(),
        dir.join("policy.yaml").display().to_string(),
        "--set".into(),
        format!("sluice.secrets-dir={}", dir.join("secrets").display()),
    ]
}

/// Regular joins with state on both sides: a stream joined with a small
/// table on a key (with a residual), and a self-join of the stream (one source
/// vertex feeding both inputs). Inner joins of append-only inputs, so the
/// output is append-only and goes to the filesystem tables [`outputs`] reads.
pub fn joins_job(out: &Path, rows: u64, rate: u64) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, k INT, v INT)
 WITH ('connector' = 'datagen', 'seed' = '7', 'rows-per-second' = '{rate}',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{last}',
   'fields.k.min' = '0', 'fields.k.max' = '15', 'fields.v.min' = '0', 'fields.v.max' = '1000');
CREATE TABLE dim (d BIGINT, k INT, name STRING)
 WITH ('connector' = 'datagen', 'seed' = '3',
   'fields.d.kind' = 'sequence', 'fields.d.start' = '0', 'fields.d.end' = '63',
   'fields.k.min' = '0', 'fields.k.max' = '15', 'fields.name.length' = '3');
CREATE TABLE per_window (id BIGINT, d BIGINT, name STRING)
 WITH ('connector' = 'filesystem', 'path' = '{w}', 'format' = 'csv');
CREATE TABLE rows_out (id BIGINT, v INT, pv INT)
 WITH ('connector' = 'filesystem', 'path' = '{r}', 'format' = 'csv');
EXECUTE STATEMENT SET BEGIN
INSERT INTO per_window SELECT s.id, dm.d, dm.name FROM src AS s JOIN dim AS dm ON s.k = dm.k AND s.v > 500;
INSERT INTO rows_out SELECT a.id, a.v, b.v FROM src AS a JOIN src AS b ON a.id = b.id + 1;
END;
",
        last = rows - 1,
        w = out.join("windows").display(),
        r = out.join("rows").display()
    )
}
