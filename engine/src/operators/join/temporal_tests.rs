use arrow::array::{ArrayRef, Int64Array, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion_expr::Operator;
use datafusion_physical_expr::expressions::{BinaryExpr, Column, Literal};

use super::*;
use crate::operators::KeyGroupWriters;
use crate::operators::join::test_util::show;

fn ts(name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Millisecond, None), true)
}

/// Left: (k, lt); right: (k2, rt, rate).
fn inputs() -> [arrow::datatypes::SchemaRef; 2] {
    [
        Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true), ts("lt")])),
        Arc::new(Schema::new(vec![
            Field::new("k2", DataType::Int64, true),
            ts("rt"),
            Field::new("rate", DataType::Int64, true),
        ])),
    ]
}

fn join(kind: JoinKind, residual: Option<Arc<dyn PhysicalExpr>>) -> TemporalJoin {
    let [l, r] = inputs();
    let out = Arc::new(Schema::new([l.fields().to_vec(), r.fields().to_vec()].concat()));
    TemporalJoin::new(
        JoinDef {
            kind,
            keys: [vec![Arc::new(Column::new("k", 0))], vec![Arc::new(Column::new("k2", 0))]],
            key_types: vec![DataType::Int64],
            inputs: [l, r],
            residual,
            schema: out,
            updating: false,
            ttl: 0,
        },
        TemporalTimes { left_time: 1, right_time: 1 },
    )
    .unwrap()
}

fn left(rows: &[(i64, i64)]) -> RecordBatch {
    let k: ArrayRef = Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()));
    let t: ArrayRef = Arc::new(TimestampMillisecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()));
    RecordBatch::try_new(inputs()[0].clone(), vec![k, t]).unwrap()
}

/// Right rows (key, time, rate, kind).
fn right(rows: &[(i64, i64, i64, RowKind)]) -> RecordBatch {
    let k: ArrayRef = Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()));
    let t: ArrayRef = Arc::new(TimestampMillisecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()));
    let v: ArrayRef = Arc::new(Int64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>()));
    let data = RecordBatch::try_new(inputs()[1].clone(), vec![k, t, v]).unwrap();
    changelog::attach(&data, &rows.iter().map(|r| r.3).collect::<Vec<_>>()).unwrap()
}

fn feed(j: &mut TemporalJoin, side: usize, batch: RecordBatch) -> Vec<String> {
    let mut out = Vec::new();
    j.process_batch_from(side, batch, &mut out).unwrap();
    show(out)
}

fn watermark(j: &mut TemporalJoin, w: i64) -> Vec<String> {
    let mut out = Vec::new();
    j.process_watermark(w, &mut out).unwrap();
    show(out)
}

use RowKind::{Delete, Insert, UpdateAfter, UpdateBefore};

#[test]
fn each_left_row_joins_the_version_valid_at_its_time_once_the_watermark_passes_it() {
    let mut j = join(JoinKind::Left, None);
    assert!(feed(&mut j, 1, right(&[(1, 10, 100, Insert), (1, 20, 200, Insert)])).is_empty());
    // Before any version, at a version's time, between versions, after the last; another key.
    assert!(feed(&mut j, 0, left(&[(1, 25), (1, 5), (1, 10), (1, 15), (2, 12)])).is_empty());
    assert_eq!(
        watermark(&mut j, 12),
        ["[1, 5, null, null, null]", "[1, 10, 1, 10, 100]", "[2, 12, null, null, null]", "W12"]
    );
    assert_eq!(watermark(&mut j, 30), ["[1, 25, 1, 20, 200]", "[1, 15, 1, 10, 100]", "W30"]);
    // INNER drops what LEFT pads.
    let mut j = join(JoinKind::Inner, None);
    feed(&mut j, 1, right(&[(1, 10, 100, Insert)]));
    feed(&mut j, 0, left(&[(1, 5), (1, 11), (2, 12)]));
    assert_eq!(watermark(&mut j, i64::MAX), ["[1, 11, 1, 10, 100]", &format!("W{}", i64::MAX)]);
}

#[test]
fn a_version_arriving_before_the_watermark_passes_a_left_row_is_seen_by_it() {
    let mut j = join(JoinKind::Left, None);
    feed(&mut j, 0, left(&[(1, 15)]));
    assert_eq!(watermark(&mut j, 14), ["W14"]);
    // Out of order on the right: 12 comes after 13, both before the watermark reaches 15.
    feed(&mut j, 1, right(&[(1, 13, 130, Insert), (1, 12, 120, Insert), (1, 16, 160, Insert)]));
    assert_eq!(watermark(&mut j, 15), ["[1, 15, 1, 13, 130]", "W15"]);
}

#[test]
fn deletes_end_a_key_and_update_befores_change_nothing() {
    let mut j = join(JoinKind::Left, None);
    feed(
        &mut j,
        1,
        right(&[(1, 10, 100, Insert), (1, 10, 100, UpdateBefore), (1, 20, 200, UpdateAfter), (1, 30, 200, Delete)]),
    );
    feed(&mut j, 0, left(&[(1, 12), (1, 22), (1, 31)]));
    assert_eq!(
        watermark(&mut j, 40),
        ["[1, 12, 1, 10, 100]", "[1, 22, 1, 20, 200]", "[1, 31, null, null, null]", "W40"]
    );
}

#[test]
fn versions_no_left_row_can_need_are_dropped_and_a_late_row_sees_what_is_left() {
    let mut j = join(JoinKind::Left, None);
    feed(&mut j, 1, right(&[(1, 10, 100, Insert), (1, 20, 200, Insert), (1, 40, 400, Insert)]));
    feed(&mut j, 0, left(&[(1, 25)]));
    assert_eq!(watermark(&mut j, 30), ["[1, 25, 1, 20, 200]", "W30"]);
    let kept: Vec<i64> = j.state.entries().iter().flat_map(|(_, v)| v.right.keys().copied()).collect();
    assert_eq!(kept, [20, 40], "the latest version at or before the watermark and later ones");
    // A left row older than the watermark waits for the next one, as in
    // Flink, and its version (10) is gone: padded.
    feed(&mut j, 0, left(&[(1, 12), (1, 22)]));
    assert_eq!(watermark(&mut j, 31), ["[1, 12, null, null, null]", "[1, 22, 1, 20, 200]", "W31"]);
}

#[test]
fn a_residual_is_checked_on_the_version_found_not_used_to_pick_an_older_one() {
    // rate > 150
    let residual: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
        Arc::new(Column::new("rate", 4)),
        Operator::Gt,
        Arc::new(Literal::new(datafusion_common::ScalarValue::Int64(Some(150)))),
    ));
    let mut j = join(JoinKind::Left, Some(residual.clone()));
    feed(&mut j, 1, right(&[(1, 10, 200, Insert), (1, 20, 100, Insert)]));
    feed(&mut j, 0, left(&[(1, 15), (1, 25)]));
    assert_eq!(watermark(&mut j, 30), ["[1, 15, 1, 10, 200]", "[1, 25, null, null, null]", "W30"]);
    let mut j = join(JoinKind::Inner, Some(residual));
    feed(&mut j, 1, right(&[(1, 10, 200, Insert), (1, 20, 100, Insert)]));
    feed(&mut j, 0, left(&[(1, 15), (1, 25)]));
    assert_eq!(watermark(&mut j, 30), ["[1, 15, 1, 10, 200]", "W30"]);
}

#[test]
fn waiting_rows_versions_and_timers_survive_a_restore() {
    let mut j = join(JoinKind::Left, None);
    feed(&mut j, 1, right(&[(1, 10, 100, Insert), (2, 5, 50, Insert)]));
    feed(&mut j, 0, left(&[(1, 12), (2, 20), (3, 7)]));
    assert_eq!(watermark(&mut j, 8), ["[3, 7, null, null, null]", "W8"]);
    let mut groups = KeyGroupWriters::new();
    j.snapshot().unwrap().unwrap().encode(128, &mut groups, &|| true).unwrap();
    let mut back = join(JoinKind::Left, None);
    for (kg, w) in &groups {
        back.restore(*kg, &w.buf).unwrap();
    }
    // Key 3 had nothing left once its row was fired.
    assert_eq!(back.state_keys(), Some(2));
    feed(&mut back, 1, right(&[(2, 15, 150, Insert)]));
    assert_eq!(watermark(&mut back, 25), ["[1, 12, 1, 10, 100]", "[2, 20, 2, 15, 150]", "W25"]);
}

thread_local! {
    /// Each test's processing time (tests run on threads of their own).
    static NOW: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

fn at(ms: i64) {
    NOW.with(|n| n.set(ms));
}

/// A join with a 1 s state TTL on a clock the test moves.
fn join_with_ttl(kind: JoinKind) -> TemporalJoin {
    at(0);
    let ttl = crate::state::ttl::Ttl::new(std::time::Duration::from_millis(1000)).with_clock(|| NOW.with(|n| n.get()));
    join(kind, None).with_ttl(ttl)
}

#[test]
fn a_key_untouched_for_the_ttl_loses_its_latest_version_and_its_waiting_rows() {
    let mut j = join_with_ttl(JoinKind::Left);
    feed(&mut j, 1, right(&[(1, 10, 100, Insert), (2, 10, 200, Insert)]));
    feed(&mut j, 0, left(&[(1, 12), (2, 30)]));
    assert_eq!(watermark(&mut j, 20), ["[1, 12, 1, 10, 100]", "W20"]);
    // Key 1 was fired at 0 ms, key 2 touched at 0 ms; at 999 ms both live.
    at(999);
    feed(&mut j, 0, left(&[(1, 21)]));
    assert_eq!(watermark(&mut j, 22), ["[1, 21, 1, 10, 100]", "W22"]);
    // At 1998 ms key 1 (touched at 999) lives; key 2 (touched at 0) expired:
    // its waiting row (30) is gone, and a new row finds no version.
    at(1998);
    feed(&mut j, 0, left(&[(1, 23), (2, 24)]));
    assert_eq!(watermark(&mut j, 40), ["[1, 23, 1, 10, 100]", "[2, 24, null, null, null]", "W40"]);
    assert_eq!(j.state_keys(), Some(1), "key 2 had nothing left after its row was fired");
}

#[test]
fn without_a_ttl_the_latest_version_is_kept_forever_and_a_sweep_forgets_idle_keys() {
    let mut j = join(JoinKind::Inner, None);
    feed(&mut j, 1, right(&[(1, 10, 100, Insert)]));
    feed(&mut j, 0, left(&[(1, 12)]));
    assert_eq!(watermark(&mut j, 20), ["[1, 12, 1, 10, 100]", "W20"]);
    let mut t = join_with_ttl(JoinKind::Inner);
    feed(&mut t, 1, right(&[(1, 10, 100, Insert), (2, 10, 200, Insert)]));
    // An event on another key sweeps the state a TTL later: both versions go.
    at(1000);
    feed(&mut t, 1, right(&[(3, 10, 300, Insert)]));
    assert_eq!(t.state_keys(), Some(1));
    feed(&mut t, 0, left(&[(1, 12), (3, 12)]));
    assert_eq!(watermark(&mut t, 20), ["[3, 12, 3, 10, 300]", "W20"]);
}

#[test]
fn the_last_touch_survives_a_restore() {
    let mut j = join_with_ttl(JoinKind::Left);
    feed(&mut j, 1, right(&[(1, 10, 100, Insert)]));
    let mut groups = KeyGroupWriters::new();
    j.snapshot().unwrap().unwrap().encode(128, &mut groups, &|| true).unwrap();
    let mut back = join_with_ttl(JoinKind::Left);
    for (kg, w) in &groups {
        back.restore(*kg, &w.buf).unwrap();
    }
    at(1000);
    feed(&mut back, 0, left(&[(1, 12)]));
    assert_eq!(watermark(&mut back, 20), ["[1, 12, null, null, null]", "W20"]);
}
