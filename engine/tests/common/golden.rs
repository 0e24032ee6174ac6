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

/// How a changelog case (sinks `'connector' = 'print'`) is compared with
/// Flink, from the first line of its job.sql: `-- compare: changelog` or
/// `-- compare: materialized`. `None` for a case of filesystem sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// At parallelism 1 the printed changelog, line for line in order; at
    /// other parallelisms the materialized tables.
    Changelog,
    /// The materialized tables, at every parallelism.
    Materialized,
}

pub fn compare_mode(case: &Path) -> Option<Compare> {
    let sql = fs::read_to_string(case.join("job.sql")).ok()?;
    match sql.lines().next()?.trim() {
        "-- compare: changelog" => Some(Compare::Changelog),
        "-- compare: materialized" => Some(Compare::Materialized),
        _ => None,
    }
}

/// Runs a changelog case with the `sluice-engine` binary and returns what each
/// print sink printed, in order, without its `<identifier>[:<subtask>]> ` prefix.
pub fn run_printed_case(
    case: &Path,
    parallelism: usize,
    batch_size: usize,
    extra: &[&str],
) -> Result<BTreeMap<String, Vec<String>>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sql = fs::read_to_string(case.join("job.sql"))
        .map_err(|e| e.to_string())?
        .replace("${INPUT_DIR}", &case.join("input").display().to_string())
        .replace("${OUTPUT_DIR}", &dir.path().join("out").display().to_string());
    let name = case.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let job = dir.path().join(format!("{name}.sql"));
    fs::write(&job, sql).map_err(|e| e.to_string())?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice-engine"))
        .arg("run")
        .arg(&job)
        .args(["-p", &parallelism.to_string(), "--set", &format!("execution.batch-size={batch_size}")])
        .args(["--rest-addr", "127.0.0.1:0"])
        .args(extra)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("sluice-engine run failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let mut outputs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in fs::read_dir(case.join("expected")).map_err(|e| e.to_string())?.flatten() {
        let sink = e.path().file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        outputs.insert(sink, Vec::new());
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((prefix, row)) = line.split_once("> ") else { continue };
        let id = prefix.split(':').next().unwrap_or_default();
        if let Some(lines) = outputs.get_mut(id) {
            lines.push(row.to_string());
        }
    }
    Ok(outputs)
}

/// A changelog applied to an empty table: the rows left, sorted; a row
/// retracted more often than added shows as `!retracted <row>`.
pub fn materialize(changelog: &[String]) -> Vec<String> {
    let mut rows: BTreeMap<&str, i64> = BTreeMap::new();
    for l in changelog {
        let (kind, row) = l.split_at(l.len().min(2));
        *rows.entry(row).or_default() += if kind == "+I" || kind == "+U" { 1 } else { -1 };
    }
    let mut out = Vec::new();
    for (row, n) in rows {
        if n < 0 {
            out.push(format!("!retracted {row}"));
        }
        for _ in 0..n.max(0) {
            out.push(row.to_string());
        }
    }
    out
}

/// What differs between a changelog case's expected output and `outputs`:
/// the changelogs in order when `ordered`, else the materialized tables.
pub fn changelog_mismatches(
    case: &Path,
    label: &str,
    outputs: BTreeMap<String, Vec<String>>,
    ordered: bool,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (sink, actual) in outputs {
        let text = fs::read_to_string(case.join("expected").join(format!("{sink}.txt"))).unwrap_or_default();
        let expected: Vec<String> = text.lines().map(str::to_string).collect();
        let (e, a, what) = if ordered {
            (expected, actual, "changelog lines")
        } else {
            (materialize(&expected), materialize(&actual), "materialized rows")
        };
        if e != a {
            let first = e.iter().zip(&a).position(|(x, y)| x != y).unwrap_or(e.len().min(a.len()));
            failures.push(format!(
                "{label} sink {sink}: {} {what} expected, {} produced; first difference at line {}: expected {:?}, got {:?}{}",
                e.len(),
                a.len(),
                first + 1,
                e.get(first),
                a.get(first),
                diff(&e, &a)
            ));
        }
    }
    failures
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
    settings: &[(&str, &str)],
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
    for (k, v) in settings {
        config.values.insert(k.to_string(), v.to_string());
    }
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
