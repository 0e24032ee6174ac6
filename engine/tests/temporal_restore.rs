#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Temporal join state (waiting left rows, versions, timers) across a
//! `kill -9` and a restore at another parallelism. Each order is emitted once
//! (the output is append-only), but the print sink is at-least-once, as
//! Flink's: rows printed after the last checkpoint are printed again by the
//! restored run. Keyed by the order id, the rows of both runs must be the rows
//! of a run that never stopped.

use std::collections::BTreeMap;

mod common;
use common::restore::{append_only_tables, kill_and_restore, reference_run};

/// Orders every 10 ms and rates every 50 ms over the same two minutes, each
/// from one source subtask with increasing times (so no row is late and the
/// result does not depend on how the two inputs interleave), 21 currencies.
fn job(orders_rate: u64) -> String {
    format!(
        "CREATE TABLE orders (id BIGINT, cur INT, price INT,
   ts AS TO_TIMESTAMP_LTZ(id * 10, 3),
   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'datagen', 'seed' = '3', 'rows-per-second' = '{orders_rate}', 'scan.parallelism' = '1',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '11999',
   'fields.cur.min' = '0', 'fields.cur.max' = '20', 'fields.price.min' = '0', 'fields.price.max' = '100');
CREATE TABLE rates (rid BIGINT, cur INT, rate INT,
   uts AS TO_TIMESTAMP_LTZ(rid * 50, 3),
   WATERMARK FOR uts AS uts - INTERVAL '1' SECOND,
   PRIMARY KEY (cur) NOT ENFORCED)
 WITH ('connector' = 'datagen', 'seed' = '5', 'rows-per-second' = '{rates_rate}', 'scan.parallelism' = '1',
   'fields.rid.kind' = 'sequence', 'fields.rid.start' = '0', 'fields.rid.end' = '2399',
   'fields.cur.min' = '0', 'fields.cur.max' = '20', 'fields.rate.min' = '0', 'fields.rate.max' = '1000');
CREATE TABLE priced (id BIGINT, cur INT, rid BIGINT, rate INT) WITH ('connector' = 'print', 'print-identifier' = 'priced');
CREATE TABLE dear (id BIGINT, rid BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'dear');
EXECUTE STATEMENT SET BEGIN
INSERT INTO priced SELECT o.id, o.cur, r.rid, r.rate
FROM orders AS o LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.cur = r.cur;
INSERT INTO dear SELECT o.id, r.rid
FROM orders AS o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.cur = r.cur AND r.rate > 500;
END;
",
        rates_rate = orders_rate / 5
    )
}

/// Printed rows of each sink, keyed by order id.
fn tables(outputs: &[String]) -> BTreeMap<String, BTreeMap<String, String>> {
    append_only_tables(outputs, |f| f[0].to_string())
}

#[test]
fn temporal_join_restores_at_another_parallelism_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let expected = tables(&[reference_run(dir.path(), &job(1_000_000))]);
    assert_eq!(expected["priced"].len(), 12_000, "every order, joined or padded");
    let padded = expected["priced"].values().filter(|r| r.ends_with("null, null")).count();
    assert!(padded > 0 && padded < 1_000, "some orders before their currency's first rate: {padded}");
    assert!(expected["dear"].len() > 3_000 && expected["dear"].len() < 9_000, "{}", expected["dear"].len());

    let (first, second) = kill_and_restore(dir.path(), "temporal", &job(3000));
    assert_ne!(tables(std::slice::from_ref(&first)), expected, "the job finished before it was killed");
    assert!(second.lines().any(|l| l.starts_with("priced:3> ")), "the restored join ran at parallelism 3");
    let got = tables(&[first, second]);
    for (sink, table) in &expected {
        assert_eq!(&got[sink], table, "{sink} differs after the restore");
    }
}
