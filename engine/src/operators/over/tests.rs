//! The operator driven by batches and watermarks, without threads: routing by
//! partition, firing in time order at the watermark, lateness, and a restore
//! of its key groups split between two subtasks.

use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion_physical_expr::PhysicalExpr;
use datafusion_physical_expr::expressions::Column;
use sluice_sql::plan::AggFunc;

use super::*;
use crate::operators::KeyGroupWriters;

fn input_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
    ]))
}

fn col(name: &str, i: usize) -> Arc<dyn PhysicalExpr> {
    Arc::new(Column::new(name, i))
}

/// SUM(v) and COUNT(*) over a frame, partitioned by k.
fn operator(frame: OverFrame) -> OverAggregate {
    let keys = Keys::new(vec![col("k", 0)], vec![DataType::Utf8]).unwrap();
    let aggs = vec![
        AggDef {
            func: AggFunc::Sum,
            arg: Some(col("v", 2)),
            filter: None,
            distinct: false,
            input_type: Some(DataType::Int64),
            output_type: DataType::Int64,
            separator: None,
        },
        AggDef {
            func: AggFunc::Count,
            arg: None,
            filter: None,
            distinct: false,
            input_type: None,
            output_type: DataType::Int64,
            separator: None,
        },
    ];
    let mut fields: Vec<Field> = input_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("s", DataType::Int64, true));
    fields.push(Field::new("c", DataType::Int64, false));
    let types = vec![DataType::Utf8, DataType::Int64, DataType::Int64];
    OverAggregate::new(keys, 1, frame, aggs, types, Arc::new(Schema::new(fields)))
}

fn batch(rows: &[(&str, i64, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        input_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
    .unwrap()
}

/// The output rows as `k ts v sum count`, and the watermarks forwarded.
fn text(events: &[StreamEvent]) -> Vec<String> {
    let mut out = Vec::new();
    for e in events {
        match e {
            StreamEvent::Batch(b) => {
                let k = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
                let ints = |c: usize| b.column(c).as_any().downcast_ref::<Int64Array>().unwrap().clone();
                let (ts, v, s, c) = (ints(1), ints(2), ints(3), ints(4));
                for i in 0..b.num_rows() {
                    out.push(format!("{} {} {} {} {}", k.value(i), ts.value(i), v.value(i), s.value(i), c.value(i)));
                }
            }
            StreamEvent::Watermark(w) => out.push(format!("wm {w}")),
        }
    }
    out
}

fn push(op: &mut OverAggregate, rows: &[(&str, i64, i64)], wm: Option<i64>) -> Vec<String> {
    let mut out = Vec::new();
    op.process_batch(batch(rows), &mut out).unwrap();
    if let Some(w) = wm {
        op.process_watermark(w, &mut out).unwrap();
    }
    text(&out)
}

#[test]
fn rows_are_emitted_when_the_watermark_passes_them_in_time_order_per_partition() {
    let mut op = operator(OverFrame { rows: true, preceding: Some(1) });
    assert_eq!(
        push(&mut op, &[("a", 30, 3), ("a", 10, 1), ("b", 20, 5), ("a", 20, 2)], Some(15)),
        ["a 10 1 1 1", "wm 15"]
    );
    assert_eq!(
        push(&mut op, &[("b", 25, 7)], Some(40)),
        ["a 20 2 3 2", "b 20 5 5 1", "b 25 7 12 2", "a 30 3 5 2", "wm 40"]
    );
    // a's last fired timer is 30: a row at 25 is late; b's is 25, so 26 is not.
    assert_eq!(push(&mut op, &[("a", 25, 100), ("b", 26, 1)], Some(41)), ["b 26 1 8 2", "wm 41"]);
    assert_eq!(op.late_records_dropped(), 1);
}

#[test]
fn an_unbounded_range_drops_rows_behind_the_watermark_and_sums_peers_together() {
    let mut op = operator(OverFrame { rows: false, preceding: None });
    assert_eq!(
        push(&mut op, &[("a", 10, 1), ("a", 10, 2), ("a", 12, 4)], Some(11)),
        ["a 10 1 3 2", "a 10 2 3 2", "wm 11"]
    );
    assert_eq!(push(&mut op, &[("a", 11, 8), ("a", 13, 16)], None), Vec::<String>::new());
    assert_eq!(op.late_records_dropped(), 1);
    assert_eq!(push(&mut op, &[], Some(i64::MAX)), ["a 12 4 7 3", "a 13 16 23 4", format!("wm {}", i64::MAX).as_str()]);
}

/// Checkpoints one operator, restores its key groups split between two
/// (as at parallelism 2), and checks they go on as the original does.
#[test]
fn a_restore_split_between_subtasks_continues_each_partition() {
    let frame = OverFrame { rows: false, preceding: Some(10) };
    let mut op = operator(frame);
    let keys = ["a", "b", "c", "d", "e", "f"];
    let first: Vec<(&str, i64, i64)> = keys.iter().enumerate().map(|(i, k)| (*k, 5 + i as i64, 1)).collect();
    push(&mut op, &first, Some(8));
    let view = op.snapshot().unwrap().unwrap();
    let mut groups = KeyGroupWriters::new();
    view.encode(128, &mut groups, &|| true).unwrap();
    let mut halves = [operator(frame), operator(frame)];
    for (kg, w) in &groups {
        halves[usize::from(*kg >= 64)].restore(*kg, &w.buf).unwrap();
    }
    assert_eq!(halves.iter().map(|h| h.state_keys().unwrap()).sum::<u64>(), 6);
    let second: Vec<(&str, i64, i64)> = keys.iter().map(|k| (*k, 16, 10)).collect();
    let mut want = push(&mut op, &second, Some(100));
    let mut got = Vec::new();
    for h in halves.iter_mut() {
        // Each half gets the rows of its own keys, as the keyed exchange routes them.
        let own: Vec<(&str, i64, i64)> =
            second.iter().copied().filter(|(k, _, _)| h.state.get(&key_of(h, k)).is_some()).collect();
        got.extend(push(h, &own, Some(100)).into_iter().filter(|l| !l.starts_with("wm")));
    }
    want.retain(|l| !l.starts_with("wm"));
    want.sort();
    got.sort();
    assert_eq!(got, want);
    // The rows that were waiting for the watermark at the checkpoint come out.
    assert!(want.iter().any(|l| l == "e 9 1 1 1"), "{want:?}");
    assert!(want.iter().any(|l| l == "a 16 10 10 1"), "{want:?}");
    assert!(want.iter().any(|l| l == "f 16 10 11 2"), "{want:?}");
}

fn key_of(op: &OverAggregate, k: &str) -> Vec<u8> {
    let rows = op.keys.encode(&batch(&[(k, 0, 0)])).unwrap().unwrap();
    rows.row(0).data().to_vec()
}

thread_local! {
    /// Each test's processing time (tests run on threads of their own).
    static NOW: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

fn at(ms: i64) {
    NOW.with(|n| n.set(ms));
}

/// The operator with a 1 s state TTL on a clock the test moves.
fn with_ttl(frame: OverFrame) -> OverAggregate {
    at(0);
    let ttl = crate::state::ttl::Ttl::new(std::time::Duration::from_millis(1000)).with_clock(|| NOW.with(|n| n.get()));
    operator(frame).with_ttl(ttl)
}

#[test]
fn a_partition_idle_for_the_ttl_starts_over_but_not_while_rows_wait() {
    for frame in [OverFrame { rows: true, preceding: None }, OverFrame { rows: false, preceding: None }] {
        let mut op = with_ttl(frame);
        assert_eq!(
            push(&mut op, &[("a", 10, 1), ("b", 10, 2), ("b", 50, 4)], Some(20)),
            ["a 10 1 1 1", "b 10 2 2 1", "wm 20"]
        );
        at(999);
        assert_eq!(push(&mut op, &[("a", 30, 8)], Some(30)), ["a 30 8 9 2", "wm 30"]);
        // a was touched at 999, b at 0 but a row of b still waits (50).
        at(1998);
        assert_eq!(push(&mut op, &[("a", 40, 16)], Some(60)), ["a 40 16 25 3", "b 50 4 6 2", "wm 60"]);
        // Untouched from 1998 to 2998: both start over.
        at(2998);
        assert_eq!(push(&mut op, &[("a", 70, 32), ("b", 70, 64)], Some(70)), ["a 70 32 32 1", "b 70 64 64 1", "wm 70"]);
    }
}

#[test]
fn a_rows_bounded_partition_forgets_its_lateness_with_its_state() {
    let mut op = with_ttl(OverFrame { rows: true, preceding: Some(2) });
    assert_eq!(push(&mut op, &[("a", 10, 1), ("a", 30, 2)], Some(100)), ["a 10 1 1 1", "a 30 2 3 2", "wm 100"]);
    // Within the TTL a row at 20 is late for a (its last timer fired at 30),
    // and still counts as a touch, as in Flink.
    at(500);
    assert_eq!(push(&mut op, &[("a", 20, 4)], Some(101)), ["wm 101"]);
    at(1499);
    assert_eq!(push(&mut op, &[("a", 25, 4)], Some(102)), ["wm 102"]);
    assert_eq!(op.late_records_dropped(), 2);
    // A TTL after its last touch the partition is new: 103 is not late.
    at(2499);
    assert_eq!(push(&mut op, &[("a", 103, 8)], Some(110)), ["a 103 8 8 1", "wm 110"]);
}

#[test]
fn a_range_bounded_frame_ignores_the_ttl_as_flink_does() {
    let mut op = with_ttl(OverFrame { rows: false, preceding: Some(100) });
    assert_eq!(push(&mut op, &[("a", 10, 1)], Some(10)), ["a 10 1 1 1", "wm 10"]);
    at(10_000);
    assert_eq!(push(&mut op, &[("a", 20, 2)], Some(20)), ["a 20 2 3 2", "wm 20"]);
}
