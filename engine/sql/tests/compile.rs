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
            PlanNode::WindowAggregate { window, keys, aggs, input } => {
                assert_eq!(window.kind, WindowKind::Tumble { size: 10_000 });
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
