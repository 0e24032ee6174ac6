#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Top-N and deduplication state across a `kill -9` and a restore at another
//! parallelism: the job prints its changelog (at-least-once, as Flink's print
//! sink: rows printed after the last checkpoint are printed again), so the
//! outputs of both runs, applied in order to a table keyed by the sink's
//! unique key, must give the table of a run that never stopped.

use std::collections::BTreeMap;

mod common;
use common::restore::{apply_changelog, first_fields, kill_and_restore, reference_run};

/// Per key `k`: the top 5 by `v` (ties broken by `id`, so the result does not
/// depend on arrival order) with the row number, the last and the first row on
/// event time; and the top 3 of each 1-second window. The source runs at
/// parallelism 1, so each key's rows arrive in the same order in every run and
/// a replay repeats what was printed.
fn job(rows: u64, rate: u64) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, k INT, v INT, name STRING,
   ts AS TO_TIMESTAMP_LTZ(id * 10, 3),
   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'datagen', 'seed' = '7', 'rows-per-second' = '{rate}', 'scan.parallelism' = '1',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{last}',
   'fields.k.min' = '0', 'fields.k.max' = '40', 'fields.v.min' = '0', 'fields.v.max' = '100000',
   'fields.name.length' = '3');
CREATE TABLE top5 (k INT, rn BIGINT, id BIGINT, v INT) WITH ('connector' = 'print', 'print-identifier' = 'top5');
CREATE TABLE last_row (k INT, id BIGINT, name STRING) WITH ('connector' = 'print', 'print-identifier' = 'last');
CREATE TABLE first_row (k INT, id BIGINT, name STRING) WITH ('connector' = 'print', 'print-identifier' = 'first');
CREATE TABLE window_top (window_start TIMESTAMP(3), rn BIGINT, id BIGINT, v INT)
 WITH ('connector' = 'print', 'print-identifier' = 'window_top');
EXECUTE STATEMENT SET BEGIN
INSERT INTO top5 SELECT k, rn, id, v FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC, id) AS rn FROM src) WHERE rn <= 5;
INSERT INTO last_row SELECT k, id, name FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC) AS rn FROM src) WHERE rn = 1;
INSERT INTO first_row SELECT k, id, name FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts) AS rn FROM src) WHERE rn = 1;
INSERT INTO window_top SELECT window_start, rn, id, v FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY v DESC, id) AS rn
  FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND))) WHERE rn <= 3;
END;
",
        last = rows - 1
    )
}

/// The materialized sinks: (sink, table).
fn tables(outputs: &[String]) -> BTreeMap<&'static str, BTreeMap<String, String>> {
    let mut all = BTreeMap::new();
    for (id, key) in [("top5", 2), ("last", 1), ("first", 1), ("window_top", 2)] {
        let mut table = BTreeMap::new();
        for o in outputs {
            apply_changelog(&mut table, o, id, first_fields(key));
        }
        all.insert(id, table);
    }
    all
}

#[test]
fn top_n_and_deduplication_restore_at_another_parallelism_after_a_kill() {
    let rows = 12_000;
    let dir = tempfile::tempdir().unwrap();
    // The reference: one uninterrupted run at parallelism 1.
    let expected = tables(&[reference_run(dir.path(), &job(rows, 1_000_000))]);
    assert_eq!(expected["top5"].len(), 41 * 5, "a top 5 for each of the 41 keys");
    assert_eq!(expected["last"].len(), 41, "a last row for each key");
    assert_eq!(expected["first"].len(), 41, "a first row for each key");
    assert_eq!(expected["window_top"].len(), 120 * 3, "a top 3 for each of the 120 windows");

    let (first, second) = kill_and_restore(dir.path(), "ranks", &job(rows, 3000));
    assert_ne!(tables(std::slice::from_ref(&first)), expected, "the job finished before it was killed");
    assert!(second.lines().any(|l| l.starts_with("top5:3> ")), "the restored Top-N ran at parallelism 3");
    let got = tables(&[first, second]);
    for (sink, table) in &expected {
        assert_eq!(&got[sink], table, "{sink} differs after the restore");
    }
}
