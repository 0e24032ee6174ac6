#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Golden SQL tests: every case under `tests/golden/<case>/` runs at parallelism 1
//! and 3, and each sink's output must equal, line for line after sorting, what
//! Apache Flink wrote for the same SQL and input (`expected/<sink>.txt`, made by
//! `tools/flink/make_goldens.py`). A case may be selected with `GOLDEN=<name>`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sluice_engine::config::Config;
use sluice_engine::local::run_text;

fn cases() -> Vec<PathBuf> {
    let root = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/golden");
    let only = std::env::var("GOLDEN").ok();
    let mut v: Vec<PathBuf> = fs::read_dir(&root)
        .expect("tests/golden exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("job.sql").exists() && p.join("expected").exists())
        .filter(|p| only.as_ref().is_none_or(|o| p.file_name().is_some_and(|n| n == o.as_str())))
        .collect();
    v.sort();
    v
}

/// All lines of the visible part files under `dir`, sorted.
fn read_output(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return lines };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let text = fs::read_to_string(e.path()).expect("readable part file");
        lines.extend(text.lines().map(str::to_string));
    }
    lines.sort();
    lines
}

fn run_case(case: &Path, parallelism: usize, batch_size: usize) -> Result<BTreeMap<String, Vec<String>>, String> {
    let out = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sql = fs::read_to_string(case.join("job.sql"))
        .map_err(|e| e.to_string())?
        .replace("${INPUT_DIR}", &case.join("input").display().to_string())
        .replace("${OUTPUT_DIR}", &out.path().display().to_string());
    let mut config = Config::default();
    config.values.insert("parallelism.default".into(), parallelism.to_string());
    config.values.insert("execution.batch-size".into(), batch_size.to_string());
    let name = case.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    run_text(&sql, &format!("{name}/job.sql"), &name, &config).map_err(|e| e.to_string())?;
    let mut outputs = BTreeMap::new();
    for e in fs::read_dir(case.join("expected")).map_err(|e| e.to_string())?.flatten() {
        let sink = e.path().file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        outputs.insert(sink.clone(), read_output(&out.path().join(&sink)));
    }
    Ok(outputs)
}

fn diff(expected: &[String], actual: &[String]) -> String {
    let mut s = String::new();
    for l in expected.iter().filter(|l| !actual.contains(l)).take(5) {
        s.push_str(&format!("\n  missing:    {l}"));
    }
    for l in actual.iter().filter(|l| !expected.contains(l)).take(5) {
        s.push_str(&format!("\n  unexpected: {l}"));
    }
    s
}

#[test]
fn golden_outputs_match_flink_at_parallelism_1_and_3() {
    let cases = cases();
    assert!(!cases.is_empty(), "no golden cases found");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Parallelism 1 and 3, and a tiny batch size: output depends on neither.
        for (p, batch) in [(1, 8192), (3, 8192), (3, 7)] {
            match run_case(case, p, batch) {
                Err(e) => failures.push(format!("{name} (p={p}, batch={batch}): {e}")),
                Ok(outputs) => {
                    for (sink, actual) in outputs {
                        let text =
                            fs::read_to_string(case.join("expected").join(format!("{sink}.txt"))).unwrap_or_default();
                        let mut expected: Vec<String> = text.lines().map(str::to_string).collect();
                        expected.sort();
                        if expected != actual {
                            failures.push(format!(
                                "{name} (p={p}, batch={batch}) sink {sink}: {} rows expected, {} produced{}",
                                expected.len(),
                                actual.len(),
                                diff(&expected, &actual)
                            ));
                        }
                    }
                }
            }
        }
        eprintln!("golden case {name}: done");
    }
    assert!(failures.is_empty(), "{} golden failures:\n{}", failures.len(), failures.join("\n"));
}
