#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! OVER aggregation state across a `kill -9` and a restore at another
//! parallelism: rows waiting for the watermark, the rows of bounded frames and
//! the accumulators. The print sink is at-least-once (rows printed after the
//! last checkpoint are printed again), and every output row belongs to one
//! input row, so the outputs of both runs, keyed by the input's id, must give
//! the rows of a run that never stopped.

use std::collections::BTreeMap;

mod common;
use common::restore::{kill_and_restore, reference_run};

/// Per key `k`, ordered by event time (10 ms per id, in order, so no row is
/// late): a ROWS frame of 6 rows, a RANGE frame of 2 s, and the default
/// unbounded RANGE frame. The source runs at parallelism 1, so every run sees
/// the same rows in the same order.
fn job(rows: u64, rate: u64) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, k INT, v INT,
   ts AS TO_TIMESTAMP_LTZ(id * 10, 3),
   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'datagen', 'seed' = '11', 'rows-per-second' = '{rate}', 'scan.parallelism' = '1',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{last}',
   'fields.k.min' = '0', 'fields.k.max' = '40', 'fields.v.min' = '0', 'fields.v.max' = '1000');
CREATE TABLE last6 (id BIGINT, k INT, s INT, c BIGINT, lo INT, hi INT)
 WITH ('connector' = 'print', 'print-identifier' = 'last6');
CREATE TABLE last2s (id BIGINT, k INT, s INT, hi INT) WITH ('connector' = 'print', 'print-identifier' = 'last2s');
CREATE TABLE running (id BIGINT, k INT, c BIGINT, s INT) WITH ('connector' = 'print', 'print-identifier' = 'running');
EXECUTE STATEMENT SET BEGIN
INSERT INTO last6 SELECT id, k, SUM(v) OVER w, COUNT(*) OVER w, MIN(v) OVER w, MAX(v) OVER w
  FROM src WINDOW w AS (PARTITION BY k ORDER BY ts ROWS BETWEEN 5 PRECEDING AND CURRENT ROW);
INSERT INTO last2s SELECT id, k, SUM(v) OVER w, MAX(v) OVER w
  FROM src WINDOW w AS (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND CURRENT ROW);
INSERT INTO running SELECT id, k, COUNT(*) OVER (PARTITION BY k ORDER BY ts), SUM(v) OVER (PARTITION BY k ORDER BY ts)
  FROM src;
END;
",
        last = rows - 1
    )
}

/// Per sink, each printed row (`<sink>[:n]> +I[id, ...]`) by its id.
fn tables(outputs: &[String]) -> BTreeMap<String, BTreeMap<u64, String>> {
    let mut all: BTreeMap<String, BTreeMap<u64, String>> = BTreeMap::new();
    for line in outputs.iter().flat_map(|o| o.lines()) {
        let Some((prefix, row)) = line.split_once("> ") else { continue };
        let sink = prefix.split(':').next().unwrap().to_string();
        let fields = row.strip_prefix("+I[").and_then(|r| r.strip_suffix(']')).expect(line);
        let id: u64 = fields.split(", ").next().unwrap().parse().unwrap();
        let previous = all.entry(sink).or_default().insert(id, fields.to_string());
        assert!(previous.is_none_or(|p| p == fields), "row {id} printed twice, differently: {line}");
    }
    all
}

#[test]
fn over_aggregations_restore_at_another_parallelism_after_a_kill() {
    let rows = 12_000;
    let dir = tempfile::tempdir().unwrap();
    // The reference: one uninterrupted run at parallelism 1.
    let expected = tables(&[reference_run(dir.path(), &job(rows, 1_000_000))]);
    // A bounded frame drops the row at the epoch (time 0), as Flink's does.
    assert_eq!(expected["last6"].len() as u64, rows - 1);
    assert_eq!(expected["last2s"].len() as u64, rows - 1);
    assert_eq!(expected["running"].len() as u64, rows);

    let (first, second) = kill_and_restore(dir.path(), "overs", &job(rows, 3000));
    assert_ne!(tables(std::slice::from_ref(&first)), expected, "the job finished before it was killed");
    assert!(second.lines().any(|l| l.starts_with("last6:3> ")), "the restored OVER aggregation ran at parallelism 3");
    let got = tables(&[first, second]);
    for (sink, table) in &expected {
        assert_eq!(&got[sink], table, "{sink} differs after the restore");
    }
}
