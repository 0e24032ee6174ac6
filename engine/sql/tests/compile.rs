#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_sql::compile;
use sluice_sql::logical::{PlanNode, WindowKind};

const BIDS: &str = "CREATE TABLE bids (
  auction BIGINT, price DECIMAL(10, 2), bidder STRING,
  epoch_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(epoch_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '100');
CREATE TABLE out1 (ws TIMESTAMP(3), we TIMESTAMP(3), auction BIGINT, cnt BIGINT, total DECIMAL(38, 2))
  WITH ('connector' = 'print');
";

#[test]
fn tumble_aggregation_plans() {
    let sql = format!(
        "{BIDS}
INSERT INTO out1
SELECT window_start, window_end, auction, COUNT(*), SUM(price)
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))
WHERE price > 1
GROUP BY window_start, window_end, auction;"
    );
    let job = compile(&sql).unwrap();
    assert_eq!(job.sinks.len(), 1);
    let mut node = &job.sinks[0].input.node;
    loop {
        match node {
            PlanNode::Project { input, .. } | PlanNode::Filter { input, .. } => node = &input.node,
            PlanNode::WindowAggregate { window, keys, aggs, input, .. } => {
                assert_eq!(window.kind, WindowKind::Tumble { size: 10_000, offset: 0 });
                assert_eq!(keys.len(), 1);
                assert_eq!(aggs.len(), 2);
                assert!(matches!(input.node, PlanNode::Filter { .. }));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn errors_have_positions() {
    let sql = format!("{BIDS}\nINSERT INTO out1 SELECT nope FROM bids;");
    let e = compile(&sql).unwrap_err();
    assert_eq!(e.position.line, 10, "{e}");
    assert!(e.message.contains("nope"), "{e}");
}

/// Every OVER form Sluice does not plan is a Sluice error with a position,
/// never DataFusion's "No functions registered ... please file a bug report".
#[test]
fn unsupported_over_forms_are_sluice_errors() {
    let src =
        "CREATE TABLE t (k STRING, v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
CREATE TABLE o (k STRING, v INT, n BIGINT) WITH ('connector' = 'print');
";
    let queries = [
        "SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v) FROM t",
        "SELECT k, v, n FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v) AS n FROM t)",
        "SELECT k, v, n FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k) AS n FROM t) WHERE n <= 2",
        "SELECT k, v, n FROM (SELECT k, v, DENSE_RANK() OVER (PARTITION BY k ORDER BY v) AS n FROM t) WHERE n <= 2",
        "SELECT k, v, COUNT(*) OVER (PARTITION BY k ORDER BY v ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM t",
        "SELECT k, v, COUNT(*) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 2 PRECEDING AND 2 FOLLOWING) FROM t",
        "SELECT k, v, COUNT(*) OVER (ORDER BY ts), ROW_NUMBER() OVER (ORDER BY ts) FROM t",
        "SELECT k, v, COUNT(*) OVER w FROM t",
        "SELECT k, v, 1 FROM t WHERE ROW_NUMBER() OVER (ORDER BY v) = 1",
        "SELECT k, MAX(v), ROW_NUMBER() OVER (ORDER BY k) FROM t GROUP BY k",
        "SELECT k, v, n FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS n FROM t) WHERE n = 1",
        "SELECT k, v, n FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v) AS n FROM t) WHERE n <= v",
    ];
    for q in queries {
        let e = compile(&format!("{src}INSERT INTO o {q};")).expect_err(q);
        assert!(e.position.line >= 3, "{q}: {e}");
        assert!(!e.message.contains("Internal error") && !e.message.contains("bug report"), "{q}: {e}");
        assert!(e.message.contains("OVER") || e.message.contains("row number"), "{q}: {e}");
    }
}

/// An aggregate with OVER is an OVER aggregation, beside ROW_NUMBER()'s Top-N.
#[test]
fn aggregates_over_a_window_plan_an_over_aggregation() {
    let src =
        "CREATE TABLE t (k STRING, v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
CREATE TABLE o (k STRING, v INT, n BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT k, v, COUNT(*) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM t;";
    let job = compile(src).unwrap();
    let PlanNode::Project { input, .. } = &job.sinks[0].input.node else { panic!("{:?}", job.sinks[0].input.node) };
    let PlanNode::OverAggregate { frame, aggs, .. } = &input.node else { panic!("{:?}", input.node) };
    assert_eq!(*frame, sluice_sql::plan::OverFrame { rows: true, preceding: Some(2) });
    assert_eq!(aggs.len(), 1);
    assert!(!job.sinks[0].input.updating);
}

/// Flink 2.3 plans a Top-1 without a row number over an append-only input as
/// an insert-only deduplication unless its ORDER BY is exactly one descending
/// key: append-only sinks take it. Every other Top-N updates and is refused.
#[test]
fn an_insert_only_top1_goes_to_append_only_sinks() {
    let src =
        "CREATE TABLE t (k STRING, v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
CREATE TABLE o (k STRING, v INT) WITH ('connector' = 'filesystem', 'path' = '/tmp/o', 'format' = 'json');
";
    let top = |order: &str, filter: &str, from: &str| {
        format!(
            "{src}INSERT INTO o SELECT k, v FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY {order}) AS n FROM {from}) WHERE {filter};"
        )
    };
    let agg = "(SELECT k, CAST(COUNT(*) AS INT) AS v, MAX(ts) AS ts FROM t GROUP BY k)";
    for ok in [top("v DESC, ts", "n <= 1", "t"), top("v", "n = 1", "t"), top("v DESC, ts DESC", "n < 2", "t")] {
        compile(&ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for refused in [top("v DESC", "n <= 1", "t"), top("v DESC, ts", "n <= 2", "t"), top("v, ts", "n = 1", agg)] {
        let e = compile(&refused).expect_err(&refused);
        assert!(e.message.contains("append-only"), "{refused}: {e}");
    }
}
