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
//!
//! The third run (parallelism 3, 7-row batches) keeps keyed state on the disk
//! backend with a 1 KiB budget ([`DISK_BACKEND`]), so that the changelog
//! operators' keys go to disk and back all the time.

mod common;
use common::golden::{Compare, cases, changelog_mismatches, compare_mode, mismatches, run_case, run_printed_case};

/// The settings of the third run: the disk state backend, with so little
/// memory that most keys are spilled.
const DISK_BACKEND: [(&str, &str); 2] = [("state.backend.type", "disk"), ("taskmanager.memory.managed.size", "1kb")];

#[test]
fn golden_outputs_match_flink_at_parallelism_1_and_3() {
    let cases = cases();
    assert!(!cases.is_empty(), "no golden cases found");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Parallelism 1 and 3, a tiny batch size, and the disk state backend:
        // output depends on none of them.
        for (p, batch) in [(1, 8192), (3, 8192), (3, 7)] {
            let settings: &[(&str, &str)] = if batch == 7 { &DISK_BACKEND } else { &[] };
            let label = format!("{name} (p={p}, batch={batch}{})", if batch == 7 { ", disk state" } else { "" });
            if let Some(mode) = compare_mode(case) {
                let sets: Vec<String> =
                    settings.iter().flat_map(|(k, v)| ["--set".into(), format!("{k}={v}")]).collect();
                let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
                match run_printed_case(case, p, batch, &sets) {
                    Err(e) => failures.push(format!("{label}: {e}")),
                    Ok(outputs) => {
                        let ordered = mode == Compare::Changelog && p == 1;
                        failures.extend(changelog_mismatches(case, &label, outputs, ordered))
                    }
                }
                continue;
            }
            match run_case(case, p, batch, settings, &|sql| sql) {
                Err(e) => failures.push(format!("{label}: {e}")),
                Ok(outputs) => failures.extend(mismatches(case, &label, outputs)),
            }
        }
        eprintln!("golden case {name}: done");
    }
    assert!(failures.is_empty(), "{} golden failures:\n{}", failures.len(), failures.join("\n"));
}
