//! Golden cases (`tests/golden/<case>/`): running a case's job and comparing
//! each sink's output, sorted, with what Apache Flink wrote for the same SQL
//! and input (`expected/<sink>.txt`, made by `tools/flink/make_goldens.py`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sluice_engine::config::Config;
use sluice_engine::local::run_text;

/// `tests/golden`.
pub fn root() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()))
        .join("tests/golden")
}

/// Every case, or only `GOLDEN=<name>`.
pub fn cases() -> Vec<PathBuf> {
    let only = std::env::var("GOLDEN").ok();
    let mut v: Vec<PathBuf> = fs::read_dir(root())
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

/// Runs a case's job, its text passed through `rewrite` (which may, say, read
/// the input from elsewhere), and returns each sink's output, sorted.
pub fn run_case(
    case: &Path,
    parallelism: usize,
    batch_size: usize,
    rewrite: &dyn Fn(String) -> String,
) -> Result<BTreeMap<String, Vec<String>>, String> {
    let out = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sql = fs::read_to_string(case.join("job.sql"))
        .map_err(|e| e.to_string())?
        .replace("${INPUT_DIR}", &case.join("input").display().to_string())
        .replace("${OUTPUT_DIR}", &out.path().display().to_string());
    let sql = rewrite(sql);
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

/// What differs between a case's expected output and `outputs`, one line per
/// sink that differs (empty when all match); `label` names the run.
pub fn mismatches(case: &Path, label: &str, outputs: BTreeMap<String, Vec<String>>) -> Vec<String> {
    mismatches_with(case, label, outputs, &|l| l.to_string())
}

/// [`mismatches`] of lines passed through `normalize` on both sides.
pub fn mismatches_with(
    case: &Path,
    label: &str,
    outputs: BTreeMap<String, Vec<String>>,
    normalize: &dyn Fn(&str) -> String,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (sink, actual) in outputs {
        let text = fs::read_to_string(case.join("expected").join(format!("{sink}.txt"))).unwrap_or_default();
        let mut expected: Vec<String> = text.lines().map(normalize).collect();
        expected.sort();
        let mut actual: Vec<String> = actual.iter().map(|l| normalize(l)).collect();
        actual.sort();
        if expected != actual {
            failures.push(format!(
                "{label} sink {sink}: {} rows expected, {} produced{}",
                expected.len(),
                actual.len(),
                diff(&expected, &actual)
            ));
        }
    }
    failures
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

/// A JSON line with every fractional number rounded to 12 significant digits.
/// Floating-point sums depend on the order of their additions: Flink's window
/// aggregation adds bundles that end at watermarks, and with per-partition
/// watermarks those depend on how partitions interleave, so two correct runs
/// may differ in the last digits.
pub fn round_fractions(line: &str) -> String {
    fn round(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                serde_json::Value::String(format!("{:.11e}", n.as_f64().unwrap_or_default()))
            }
            serde_json::Value::Object(m) => {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k, round(v))).collect())
            }
            v => v,
        }
    }
    serde_json::from_str(line).map(round).map(|v| v.to_string()).unwrap_or_else(|_| line.to_string())
}
