#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Plan and error golden files: every `tests/plans/<case>.sql` is compiled and
//! its result compared with the file next to it (see `tests/plans/README.md`):
//! `<case>.plan` holds `Job::explain()` of a job that compiles, and
//! `error_<case>.err` the `file:line:col: message` of one that does not.
//! `UPDATE_GOLDEN=1 cargo test -p sluice-sql --test plans` rewrites the expected
//! files from what the compiler produces now; review the diff before committing.

use std::fs;
use std::path::{Path, PathBuf};

fn plans_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans")
}

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(plans_dir())
        .expect("tests/plans exists")
        .map(|e| e.expect("readable tests/plans entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    v.sort();
    v
}

/// What the compiler makes of one case: `(expected file, actual text)`, or why
/// the case did not turn out the kind its name says.
fn run_case(sql_path: &Path) -> Result<(PathBuf, String), String> {
    let name = sql_path.file_name().expect("file name").to_string_lossy().into_owned();
    let sql = fs::read_to_string(sql_path).map_err(|e| format!("{name}: {e}"))?;
    let expects_error = name.starts_with("error_");
    match (sluice_sql::compile(&sql), expects_error) {
        (Ok(job), false) => Ok((sql_path.with_extension("plan"), job.explain())),
        (Err(e), true) => Ok((sql_path.with_extension("err"), format!("{}\n", e.render(&name)))),
        (Ok(job), true) => Err(format!("{name}: expected an error, but it compiled:\n{}", job.explain())),
        (Err(e), false) => Err(format!("{name}: expected a plan, but: {}", e.render(&name))),
    }
}

/// A line diff (longest common subsequence) of the changed lines with two
/// lines of context around them: `-` expected, `+` actual, `@@ line N` where a
/// hunk starts in the expected file.
fn diff(expected: &str, actual: &str) -> String {
    const CONTEXT: usize = 2;
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    // (mark, line number in the expected file, text)
    let mut ops: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i + 1, a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i + 1, a[i]));
            i += 1;
        } else {
            ops.push(('+', i + 1, b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = ops.iter().enumerate().filter(|(_, op)| op.0 != ' ').map(|(k, _)| k).collect();
    let near_change = |k: usize| changed.iter().any(|&c| c.abs_diff(k) <= CONTEXT);
    let mut out = String::new();
    let mut previous: Option<usize> = None;
    for (k, (mark, line, text)) in ops.iter().enumerate() {
        if !near_change(k) {
            continue;
        }
        if previous.is_none_or(|p| p + 1 != k) {
            out.push_str(&format!("@@ line {line}\n"));
        }
        out.push_str(&format!("{mark} {text}\n"));
        previous = Some(k);
    }
    out
}

#[test]
fn plans_and_errors_match_their_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let cases = cases();
    assert!(cases.len() >= 10, "expected the golden cases under {}", plans_dir().display());
    let mut failures = Vec::new();
    for case in &cases {
        let (expected_path, actual) = match run_case(case) {
            Ok(r) => r,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let shown = expected_path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(&expected_path).display();
        if update {
            fs::write(&expected_path, &actual).expect("writable golden file");
            continue;
        }
        match fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{shown} differs (- expected, + actual; UPDATE_GOLDEN=1 rewrites it):\n{}",
                diff(&expected, &actual)
            )),
            Err(e) => failures.push(format!("{shown}: {e}; UPDATE_GOLDEN=1 writes it:\n{actual}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_golden_file_belongs_to_a_case() {
    let mut orphans = Vec::new();
    for e in fs::read_dir(plans_dir()).expect("tests/plans exists") {
        let p = e.expect("readable tests/plans entry").path();
        let is_golden = p.extension().is_some_and(|x| x == "plan" || x == "err");
        if is_golden && !p.with_extension("sql").exists() {
            orphans.push(p.display().to_string());
        }
    }
    assert!(orphans.is_empty(), "golden files without a .sql case: {orphans:?}");
}

#[test]
fn the_diff_marks_changed_lines() {
    assert_eq!(diff("a\nb\nc\n", "a\nx\nc\n"), "@@ line 1\n  a\n- b\n+ x\n  c\n");
    let long: String = (1..=20).map(|n| format!("{n}\n")).collect();
    let changed = long.replace("\n15\n", "\nfifteen\n");
    assert_eq!(diff(&long, &changed), "@@ line 13\n  13\n  14\n- 15\n+ fifteen\n  16\n  17\n");
}
