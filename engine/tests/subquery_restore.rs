#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Semi and anti join state (IN and NOT EXISTS subqueries) across a `kill -9`
//! and a restore at another parallelism. The job prints its changelog
//! (at-least-once, as Flink's print sink: rows printed after the last
//! checkpoint are printed again), so both runs' outputs, applied in order to a
//! table keyed by the left row's id, must give the table of a run that never
//! stopped.
//!
//! The two inputs of each join come from two sources, so how they interleave
//! differs from run to run. The sinks are built so that what the restored run
//! prints does not depend on it:
//! - the semi join's output is append-only (both inputs are), and a left row
//!   that matched once is in the final result whatever the order;
//! - every row that can match in the anti join's right input comes in its
//!   first 50 rows, long before the first checkpoint, so after it the anti
//!   join's output depends only on the restored right rows.

use std::collections::BTreeMap;

mod common;
use common::restore::{apply_changelog, first_fields, kill_and_restore, reference_run};

fn job(rate: u64) -> String {
    format!(
        "CREATE TABLE a (id BIGINT, k INT, v INT)
 WITH ('connector' = 'datagen', 'seed' = '11', 'rows-per-second' = '{rate}', 'scan.parallelism' = '1',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '11999',
   'fields.k.min' = '0', 'fields.k.max' = '99', 'fields.v.min' = '0', 'fields.v.max' = '100');
CREATE TABLE b (bid BIGINT, v INT, k AS CAST(CASE WHEN bid < 50 THEN bid ELSE bid + 1000 END AS INT))
 WITH ('connector' = 'datagen', 'seed' = '13', 'rows-per-second' = '{rate}', 'scan.parallelism' = '1',
   'fields.bid.kind' = 'sequence', 'fields.bid.start' = '0', 'fields.bid.end' = '999',
   'fields.v.min' = '0', 'fields.v.max' = '100');
CREATE TABLE c (cid BIGINT, k INT, w INT)
 WITH ('connector' = 'datagen', 'seed' = '17', 'rows-per-second' = '{half}', 'scan.parallelism' = '1',
   'fields.cid.kind' = 'sequence', 'fields.cid.start' = '0', 'fields.cid.end' = '5999',
   'fields.k.min' = '0', 'fields.k.max' = '9999', 'fields.w.min' = '0', 'fields.w.max' = '100');
CREATE TABLE semi (id BIGINT, k INT) WITH ('connector' = 'print', 'print-identifier' = 'semi');
CREATE TABLE anti (id BIGINT, k INT, v INT) WITH ('connector' = 'print', 'print-identifier' = 'anti');
EXECUTE STATEMENT SET BEGIN
INSERT INTO semi SELECT id, k FROM a WHERE k * 100 + v IN (SELECT k FROM c WHERE w > 50);
INSERT INTO anti SELECT id, k, v FROM a WHERE NOT EXISTS (SELECT * FROM b WHERE b.k = a.k AND b.v >= a.v);
END;
",
        half = rate / 2
    )
}

/// The materialized sinks: (sink, table).
fn tables(outputs: &[String]) -> BTreeMap<&'static str, BTreeMap<String, String>> {
    let mut all = BTreeMap::new();
    for id in ["semi", "anti"] {
        let mut table = BTreeMap::new();
        for o in outputs {
            apply_changelog(&mut table, o, id, first_fields(1));
        }
        all.insert(id, table);
    }
    all
}

#[test]
fn semi_and_anti_joins_restore_at_another_parallelism_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let expected = tables(&[reference_run(dir.path(), &job(1_000_000))]);
    // About 6000 × 0.5 of the 10,000 values of k * 100 + v are sought: a quarter of the rows.
    let (semi, anti) = (expected["semi"].len(), expected["anti"].len());
    assert!((1_500..4_500).contains(&semi), "semi join rows: {semi}");
    // Half the keys have a right row, which rules out the left rows of v up to its v.
    assert!((6_000..11_000).contains(&anti), "anti join rows: {anti}");

    let (first, second) = kill_and_restore(dir.path(), "subqueries", &job(3000));
    assert_ne!(tables(std::slice::from_ref(&first)), expected, "the job finished before it was killed");
    assert!(second.lines().any(|l| l.starts_with("anti:3> ")), "the restored anti join ran at parallelism 3");
    let got = tables(&[first, second]);
    for (sink, table) in &expected {
        assert_eq!(&got[sink], table, "{sink} differs after the restore");
    }
}
