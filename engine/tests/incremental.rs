#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Incremental checkpoints end to end: a job with keyed state in a window
//! aggregation and a non-windowed aggregation writes a base, then only what
//! changed; it is killed with SIGKILL after several incremental checkpoints
//! and restored from the newest at another parallelism, which reads the base
//! and every change after it. The committed window output must be exactly
//! the output of a run that never stopped, and the printed changelog,
//! materialized, the table of such a run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

mod common;
use common::restore::{apply_changelog, first_fields, reference_run, run_job, run_job_with};
use common::{committed, wait_for};

/// 4,000 keys, each updated about every 2 s at 2,000 rows/s: a checkpoint
/// every 300 ms changes about 15% of them. `window` is the window TVF call on
/// `src`; a one-day one fires only at the end of the input.
fn job(out: &Path, rows: u64, rate: u64, window: &str) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, v INT, k AS id % 4000,
   ts AS TO_TIMESTAMP_LTZ(id, 3),
   WATERMARK FOR ts AS ts)
 WITH ('connector' = 'datagen', 'seed' = '3', 'rows-per-second' = '{rate}', 'scan.parallelism' = '1',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{last}',
   'fields.v.min' = '0', 'fields.v.max' = '1000');
CREATE TABLE daily (k BIGINT, n BIGINT, s BIGINT, m INT)
 WITH ('connector' = 'filesystem', 'path' = '{w}', 'format' = 'csv');
CREATE TABLE totals (k BIGINT, n BIGINT, s BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'totals');
EXECUTE STATEMENT SET BEGIN
INSERT INTO daily SELECT k, COUNT(*), SUM(id), MAX(v)
  FROM TABLE({window}) GROUP BY window_start, window_end, k;
INSERT INTO totals SELECT k, COUNT(*), SUM(v) FROM src GROUP BY k;
END;
",
        last = rows - 1,
        w = out.display()
    )
}

/// The printed changelog of `totals`, applied in order, keyed by `k`.
fn materialize(outputs: &[String]) -> BTreeMap<String, String> {
    let mut table = BTreeMap::new();
    for o in outputs {
        apply_changelog(&mut table, o, "totals", first_fields(1));
    }
    table
}

/// (bytes written, total bytes) of each complete checkpoint that refers to
/// an earlier one's files, by id.
fn incremental_checkpoints(job_dir: &Path) -> Vec<(u64, u64)> {
    let mut out = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(job_dir).unwrap().filter_map(Result::ok) {
        let Ok(raw) = std::fs::read(e.path().join("_metadata")) else { continue };
        let m: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let files = m["files"].as_array().unwrap();
        let size = |earlier: bool| {
            files
                .iter()
                .filter(|f| f["path"].as_str().unwrap().starts_with("../") == earlier)
                .map(|f| f["size"].as_u64().unwrap())
                .sum::<u64>()
        };
        if size(true) > 0 {
            out.insert(m["checkpointId"].as_u64().unwrap(), (size(false), size(false) + size(true)));
        }
    }
    out.into_values().collect()
}

/// Files under `dir`, at any depth, whose name starts with `prefix`.
fn files_named(dir: &Path, prefix: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| {
            let named = e.file_name().to_string_lossy().starts_with(prefix) as usize;
            if e.path().is_dir() { files_named(&e.path(), prefix) } else { named }
        })
        .sum()
}

/// Key groups whose state lies in more than one section of the same file, in
/// any complete checkpoint (state spilled to its file as it was encoded).
fn split_key_groups(job_dir: &Path) -> usize {
    let mut split = 0;
    for e in std::fs::read_dir(job_dir).unwrap().filter_map(Result::ok) {
        let Ok(raw) = std::fs::read(e.path().join("_metadata")) else { continue };
        let m: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let mut seen = std::collections::BTreeMap::new();
        for v in m["vertices"].as_array().unwrap() {
            for s in v["subtasks"].as_array().unwrap() {
                for sec in s["sections"].as_array().unwrap() {
                    let Some(kg) = sec["kind"]["key_group"].as_u64() else { continue };
                    let file = sec.get("file").or(s.get("file")).map(|f| f.to_string());
                    let at = (v["uid"].to_string(), sec["kind"]["operator"].as_u64(), kg, file);
                    *seen.entry(at).or_insert(0) += 1;
                }
            }
        }
        split += seen.values().filter(|n| **n > 1).count();
    }
    split
}

const TUMBLE: &str = "TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' DAY)";
/// Ten-second windows every five seconds of event time (40 s of it in all):
/// panes fire while the job runs, so changes delete fired panes too.
const HOP: &str = "HOP(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND)";

#[test]
fn a_job_killed_after_incremental_checkpoints_restores_exactly_once_at_a_higher_parallelism() {
    killed_after_incremental_checkpoints(TUMBLE, 2, 3, true, None);
}

#[test]
fn a_hopping_window_killed_after_incremental_checkpoints_restores_exactly_once_at_a_lower_parallelism() {
    // Every pane is new after 10 s of event time: changes are as large as the state.
    killed_after_incremental_checkpoints(HOP, 3, 2, false, None);
}

/// On the disk state backend with a 16 KiB budget: the window's pane spills
/// run after run (and its runs are merged), the GROUP BY's keys spill to the
/// LSM, and the job still restores exactly once after `kill -9`.
#[test]
fn a_job_whose_window_and_keys_spill_to_disk_restores_exactly_once_after_kill_9() {
    let spill = tempfile::tempdir().unwrap();
    killed_after_incremental_checkpoints(TUMBLE, 2, 3, false, Some(spill.path()));
}

/// `small`: some incremental checkpoint must write less than half its size.
/// `disk`: run on the disk state backend, spilling under this directory.
fn killed_after_incremental_checkpoints(window: &str, from: usize, to: usize, small: bool, disk: Option<&Path>) {
    let job = |out: &Path, rows, rate| job(out, rows, rate, window);
    let dir = tempfile::tempdir().unwrap();
    let rows = 40_000;
    let reference = reference_run(dir.path(), &job(&dir.path().join("ref"), rows, 1_000_000));
    let expected_daily = committed(&dir.path().join("ref"));
    assert!(expected_daily.len() >= 4000, "{}", expected_daily.len());

    let ckpt = dir.path().join("ckpt");
    let job_file = dir.path().join("inc.sql");
    std::fs::write(&job_file, job(&dir.path().join("out"), rows, 2000)).unwrap();
    let ck = ckpt.display().to_string();
    let mut args = vec!["--checkpoint-dir", ck.as_str(), "--checkpoint-interval", "300ms"];
    let tmp = disk.map(|d| format!("io.tmp.dirs={}", d.display()));
    if let Some(tmp) = &tmp {
        args.extend([
            "--set",
            "state.backend.type=disk",
            "--set",
            "taskmanager.memory.managed.size=16kb",
            "--set",
            tmp,
        ]);
    }
    let first_out = dir.path().join("first.out");
    let (from, to) = (from.to_string(), to.to_string());
    // The TUMBLE case spills its encoded state to the state file every 16 KiB, so
    // that a key group's state lies in several sections of one file.
    let spill: &[(&str, &str)] = if small { &[("SLUICE_SPILL_BYTES", "16384")] } else { &[] };
    let mut child = run_job_with(&job_file, &[&args[..], &["-p", &from]].concat(), &first_out, spill);
    let job_dir = ckpt.join("inc");
    // Every key exists after 2 s; retention keeps 3 checkpoints, and once that many
    // later ones refer to earlier files, chains of several changes were written.
    std::thread::sleep(Duration::from_secs(5));
    wait_for("three incremental checkpoints", Duration::from_secs(60), || {
        job_dir.exists() && incremental_checkpoints(&job_dir).len() >= 3
    });
    if let Some(d) = disk {
        wait_for("a window run on disk", Duration::from_secs(30), || files_named(d, "window-run") > 0);
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let written = incremental_checkpoints(&job_dir);
    let spilled = split_key_groups(&job_dir);
    assert_eq!(spilled > 0, small, "key groups in several sections of one file: {spilled}");
    // A subtask writes a new base when a snapshot of it was abandoned (under load)
    // or its changes outgrew its base, so not every checkpoint is small: some are.
    let smallest = written.iter().map(|(own, total)| *own as f64 / *total as f64).fold(1.0, f64::min);
    assert!(!small || smallest < 0.5, "no incremental checkpoint wrote less than half its size: {written:?}");

    let second_out = dir.path().join("second.out");
    let restored = run_job(&job_file, &[&args[..], &["-p", &to, "--restore", "latest"]].concat(), &second_out)
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&restored.stderr);
    assert!(restored.status.success(), "{stderr}");
    assert!(stderr.contains("restoring from"), "{stderr}");

    let daily = committed(&dir.path().join("out"));
    let wrong: Vec<_> = daily.iter().filter(|l| !expected_daily.contains(l)).take(5).collect();
    assert!(
        daily == expected_daily,
        "the committed window output is not exactly once: {} rows for {} expected; first wrong: {wrong:?}",
        daily.len(),
        expected_daily.len()
    );
    let outputs = [std::fs::read_to_string(first_out).unwrap(), std::fs::read_to_string(second_out).unwrap()];
    assert_eq!(materialize(&outputs), materialize(&[reference]));
}
