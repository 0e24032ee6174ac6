#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Golden SQL tests: every case under `tests/golden/<case>/` runs at parallelism 1
//! and 3, and each sink's output must equal, line for line after sorting, what
//! Apache Flink wrote for the same SQL and input (`expected/<sink>.txt`, made by
//! `tools/flink/make_goldens.py`). A case may be selected with `GOLDEN=<name>`.

mod common;
use common::golden::{cases, mismatches, run_case};

#[test]
fn golden_outputs_match_flink_at_parallelism_1_and_3() {
    let cases = cases();
    assert!(!cases.is_empty(), "no golden cases found");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Parallelism 1 and 3, and a tiny batch size: output depends on neither.
        for (p, batch) in [(1, 8192), (3, 8192), (3, 7)] {
            match run_case(case, p, batch, &|sql| sql) {
                Err(e) => failures.push(format!("{name} (p={p}, batch={batch}): {e}")),
                Ok(outputs) => failures.extend(mismatches(case, &format!("{name} (p={p}, batch={batch})"), outputs)),
            }
        }
        eprintln!("golden case {name}: done");
    }
    assert!(failures.is_empty(), "{} golden failures:\n{}", failures.len(), failures.join("\n"));
}
