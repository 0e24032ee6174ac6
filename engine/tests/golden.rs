#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Golden SQL tests: every case under `tests/golden/<case>/` runs at parallelism 1
//! and 3, and each sink's output must equal, line for line after sorting, what
//! Apache Flink wrote for the same SQL and input (`expected/<sink>.txt`, made by
//! `tools/flink/make_goldens.py`). A case may be selected with `GOLDEN=<name>`.
//!
//! Changelog cases (job.sql starting with `-- compare: changelog|materialized`)
//! write to print sinks and run through the `sluice-engine` binary: at
//! parallelism 1 a `changelog` case must print Flink's changelog line for
//! line; otherwise the tables the changelogs materialize must be equal.

mod common;
use common::golden::{Compare, cases, changelog_mismatches, compare_mode, mismatches, run_case, run_printed_case};

#[test]
fn golden_outputs_match_flink_at_parallelism_1_and_3() {
    let cases = cases();
    assert!(!cases.is_empty(), "no golden cases found");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Parallelism 1 and 3, and a tiny batch size: output depends on neither.
        for (p, batch) in [(1, 8192), (3, 8192), (3, 7)] {
            if let Some(mode) = compare_mode(case) {
                let label = format!("{name} (p={p}, batch={batch})");
                match run_printed_case(case, p, batch, &[]) {
                    Err(e) => failures.push(format!("{label}: {e}")),
                    Ok(outputs) => {
                        let ordered = mode == Compare::Changelog && p == 1;
                        failures.extend(changelog_mismatches(case, &label, outputs, ordered))
                    }
                }
                continue;
            }
            match run_case(case, p, batch, &|sql| sql) {
                Err(e) => failures.push(format!("{name} (p={p}, batch={batch}): {e}")),
                Ok(outputs) => failures.extend(mismatches(case, &format!("{name} (p={p}, batch={batch})"), outputs)),
            }
        }
        eprintln!("golden case {name}: done");
    }
    assert!(failures.is_empty(), "{} golden failures:\n{}", failures.len(), failures.join("\n"));
}
