#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A window aggregation attached to a window join's windows (Flink's
//! `WindowAttachedWindowingStrategy`: `GROUP BY window_start, window_end`
//! over a window join), and one over a window aggregation, across a `kill -9`
//! at parallelism 2 and a restore at parallelism 3. Each window's row is
//! emitted once, when the watermark passes its end; the print sink is
//! at-least-once, as Flink's, so rows printed after the last checkpoint are
//! printed again by the restored run. Keyed by window (and key), the rows of
//! both runs must be the rows of a run that never stopped.

use std::collections::BTreeMap;

mod common;
use common::restore::{append_only_tables, kill_and_restore, reference_run};

/// Orders and payments, one each per 10 ms of event time over four minutes, each
/// from one source subtask with increasing times (so no row is late), joined
/// per customer in 100 ms windows, then aggregated per window and customer;
/// and a count of orders per customer in 500 ms windows, regrouped per window
/// and count (how many customers placed that many orders). Times are
/// TIMESTAMP(3): over TIMESTAMP_LTZ windows without a window_time column
/// Sluice plans the regrouping as an updating aggregation.
fn job(rate: u64) -> String {
    format!(
        "CREATE TABLE orders (id BIGINT, cust INT, amount INT,
   ts AS CAST(TO_TIMESTAMP_LTZ(id * 10, 3) AS TIMESTAMP(3)),
   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'datagen', 'seed' = '3', 'rows-per-second' = '{rate}', 'scan.parallelism' = '1',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '23999',
   'fields.cust.min' = '0', 'fields.cust.max' = '30', 'fields.amount.min' = '0', 'fields.amount.max' = '100');
CREATE TABLE payments (pid BIGINT, cust INT, paid INT,
   ts AS CAST(TO_TIMESTAMP_LTZ(pid * 10, 3) AS TIMESTAMP(3)),
   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'datagen', 'seed' = '5', 'rows-per-second' = '{rate}', 'scan.parallelism' = '1',
   'fields.pid.kind' = 'sequence', 'fields.pid.start' = '0', 'fields.pid.end' = '23999',
   'fields.cust.min' = '0', 'fields.cust.max' = '30', 'fields.paid.min' = '0', 'fields.paid.max' = '100');
CREATE TABLE pairs (window_start TIMESTAMP(3), window_end TIMESTAMP(3), cust INT, n BIGINT, total BIGINT, hi INT)
 WITH ('connector' = 'print', 'print-identifier' = 'pairs');
CREATE TABLE regrouped (window_start TIMESTAMP(3), window_end TIMESTAMP(3), cnt BIGINT, custs BIGINT)
 WITH ('connector' = 'print', 'print-identifier' = 'regrouped');
CREATE VIEW joined AS
SELECT o.cust, o.amount, p.paid, o.window_start, o.window_end
FROM (SELECT * FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '100' MILLISECOND))) o
JOIN (SELECT * FROM TABLE(TUMBLE(TABLE payments, DESCRIPTOR(ts), INTERVAL '100' MILLISECOND))) p
ON o.cust = p.cust AND o.window_start = p.window_start AND o.window_end = p.window_end;
CREATE VIEW per_cust AS
SELECT window_start, window_end, cust, COUNT(*) AS cnt
FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '500' MILLISECOND))
GROUP BY window_start, window_end, cust;
EXECUTE STATEMENT SET BEGIN
INSERT INTO pairs SELECT window_start, window_end, cust, COUNT(*), SUM(amount + paid), MAX(paid)
FROM joined GROUP BY window_start, window_end, cust;
INSERT INTO regrouped SELECT window_start, window_end, cnt, COUNT(*)
FROM per_cust GROUP BY window_start, window_end, cnt;
END;
"
    )
}

/// Printed rows of each sink, keyed by window start and key.
fn tables(outputs: &[String]) -> BTreeMap<String, BTreeMap<String, String>> {
    append_only_tables(outputs, |f| format!("{} {}", f[0], f[2]))
}

#[test]
fn window_aggregations_attached_to_joined_and_aggregated_windows_restore_at_another_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let expected = tables(&[reference_run(dir.path(), &job(1_000_000))]);
    let pairs = expected["pairs"].len();
    assert!(pairs > 5_000, "rows of windows and customers with a match: {pairs}");
    let windows: std::collections::BTreeSet<&str> =
        expected["regrouped"].keys().map(|k| k.split(' ').next().unwrap()).collect();
    assert_eq!(windows.len(), 480, "a row per 500 ms window");
    let field = |r: &str, i: usize| r.split(", ").nth(i).unwrap().parse::<u64>().unwrap();
    let orders: u64 = expected["regrouped"].values().map(|r| field(r, 2) * field(r, 3)).sum();
    assert_eq!(orders, 24_000, "every order counted once");

    let (first, second) = kill_and_restore(dir.path(), "attached", &job(3000));
    assert_ne!(tables(std::slice::from_ref(&first)), expected, "the job finished before it was killed");
    assert!(second.lines().any(|l| l.starts_with("pairs:3> ")), "the restored aggregation ran at parallelism 3");
    let got = tables(&[first, second]);
    for (sink, table) in &expected {
        assert_eq!(&got[sink], table, "{sink} differs after the restore");
    }
}
