#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! ARRAY values in changelog state across a `kill -9` and a restore at
//! another parallelism: a deduplication keeps each key's last row with its
//! ARRAY, UNNEST expands the updating result (each element row with the row's
//! kind), and a GROUP BY is keyed by an ARRAY. The printed changelogs of both
//! runs (at-least-once, as Flink's print sink), applied in order to tables,
//! must give the tables of a run that never stopped.

use std::collections::BTreeMap;

mod common;
use common::restore::{apply_changelog, kill_and_restore, reference_run};

fn job(rows: u64, rate: u64) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, k INT, name STRING,
   ts AS TO_TIMESTAMP_LTZ(id * 10, 3),
   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'datagen', 'seed' = '11', 'rows-per-second' = '{rate}', 'scan.parallelism' = '1',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{last}',
   'fields.k.min' = '0', 'fields.k.max' = '40', 'fields.name.length' = '3');
CREATE TABLE last_tags (k INT, id BIGINT, tag STRING, pos INT)
 WITH ('connector' = 'print', 'print-identifier' = 'last_tags');
CREATE TABLE by_array (k INT, arr ARRAY<STRING>, n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'by_array');
EXECUTE STATEMENT SET BEGIN
INSERT INTO last_tags SELECT k, id, tag, pos FROM (
  SELECT * FROM (
    SELECT k, id, ts, ARRAY[name, CAST(id AS STRING)] AS tags,
      ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC) AS rn FROM src
  ) WHERE rn = 1
) CROSS JOIN UNNEST(tags) WITH ORDINALITY AS t(tag, pos);
INSERT INTO by_array SELECT k, arr, COUNT(*) FROM (
  SELECT k, ARRAY[CAST(MOD(id, 3) AS STRING), 'x'] AS arr FROM src
) GROUP BY k, arr;
END;
",
        last = rows - 1
    )
}

/// A row's key: the text before its last `value` fields (arrays hold `, `).
fn all_but(value: usize) -> impl Fn(&str) -> String {
    move |fields| fields.rsplitn(value + 1, ", ").last().unwrap_or_default().to_string()
}

fn tables(outputs: &[String]) -> BTreeMap<&'static str, BTreeMap<String, String>> {
    let mut all = BTreeMap::new();
    // last_tags rows are whole keys; by_array is keyed by (k, arr).
    for (id, value) in [("last_tags", 0), ("by_array", 1)] {
        let mut table = BTreeMap::new();
        for o in outputs {
            apply_changelog(&mut table, o, id, all_but(value));
        }
        all.insert(id, table);
    }
    all
}

#[test]
fn arrays_in_state_restore_at_another_parallelism_after_a_kill() {
    let rows = 12_000;
    let dir = tempfile::tempdir().unwrap();
    let expected = tables(&[reference_run(dir.path(), &job(rows, 1_000_000))]);
    assert_eq!(expected["last_tags"].len(), 41 * 2, "two element rows of the last row of each of the 41 keys");
    assert_eq!(expected["by_array"].len(), 41 * 3, "three arrays per key");
    assert!(expected["by_array"].keys().any(|k| k.ends_with("[2, x]")), "{:?}", expected["by_array"]);

    let (first, second) = kill_and_restore(dir.path(), "arrays", &job(rows, 3000));
    assert_ne!(tables(std::slice::from_ref(&first)), expected, "the job finished before it was killed");
    assert!(second.lines().any(|l| l.starts_with("by_array:3> ")), "the restored GROUP BY ran at parallelism 3");
    let got = tables(&[first, second]);
    for (sink, table) in &expected {
        assert_eq!(&got[sink], table, "{sink} differs after the restore");
    }
}
