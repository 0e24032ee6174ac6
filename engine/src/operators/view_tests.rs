//! Snapshot views of the stateful operators: a view taken at a barrier
//! encodes the state of that moment, whatever the operator does after, in
//! the format a restore reads.

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;
use datafusion_physical_expr::expressions::Column;
use sluice_sql::plan::{AggFunc, WindowKind};

use super::aggregate::AggDef;
use super::session::SessionAggregate;
use super::window::{Keys, TimeShift, WindowAggregate};
use super::{KeyGroupWriters, StreamOperator};
use crate::state::StateView;

pub(super) const MAX_PARALLELISM: usize = 16;

/// Rows of (k, v, name, ts).
pub(super) fn batch(rows: &[(i64, f64, &str, i64)]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("ts", DataType::Int64, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3))),
        ],
    )
    .unwrap()
}

fn agg(func: AggFunc, col: Option<(&str, usize, DataType)>, distinct: bool, out: DataType) -> AggDef {
    let input_type = col.as_ref().map(|c| c.2.clone());
    let arg = col.map(|(n, i, _)| Arc::new(Column::new(n, i)) as _);
    AggDef { func, arg, filter: None, distinct, input_type, output_type: out, separator: None }
}

/// COUNT(DISTINCT name), SUM(v) (a DOUBLE: bundled), MAX(name), COUNT(*).
fn aggs() -> Vec<AggDef> {
    vec![
        agg(AggFunc::Count, Some(("name", 2, DataType::Utf8)), true, DataType::Int64),
        agg(AggFunc::Sum, Some(("v", 1, DataType::Float64)), false, DataType::Float64),
        agg(AggFunc::Max, Some(("name", 2, DataType::Utf8)), false, DataType::Utf8),
        agg(AggFunc::Count, None, false, DataType::Int64),
    ]
}

fn out_schema() -> Arc<Schema> {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    Arc::new(Schema::new(vec![
        Field::new("window_start", ts.clone(), true),
        Field::new("window_end", ts.clone(), true),
        Field::new("window_time", ts, true),
        Field::new("k", DataType::Int64, true),
        Field::new("c", DataType::Int64, true),
        Field::new("s", DataType::Float64, true),
        Field::new("m", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
    ]))
}

fn keys() -> Keys {
    Keys::new(vec![Arc::new(Column::new("k", 0))], vec![DataType::Int64]).unwrap()
}

pub(super) fn window() -> Box<dyn StreamOperator> {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    let kind = WindowKind::Hop { slide: 1000, size: 2000, offset: 0 };
    Box::new(WindowAggregate::new(kind, 3, ts, TimeShift::new(None).unwrap(), keys(), aggs(), out_schema()))
}

fn session() -> Box<dyn StreamOperator> {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    Box::new(SessionAggregate::new(300, 3, ts, TimeShift::new(None).unwrap(), keys(), aggs(), out_schema()).unwrap())
}

pub(super) fn encode(view: &dyn StateView) -> Vec<(u32, Vec<u8>)> {
    let mut w = KeyGroupWriters::new();
    view.encode(MAX_PARALLELISM, &mut w, &|| true).unwrap();
    w.into_iter().map(|(kg, w)| (kg, w.buf)).collect()
}

pub(super) fn first() -> RecordBatch {
    let rows: Vec<(i64, f64, &str, i64)> =
        (0..5000).map(|i| (i % 1700, i as f64 * 0.5, ["a", "b", "c"][i as usize % 3], (i * 7) % 2500)).collect();
    batch(&rows)
}

/// Updates to keys already there, new keys, new windows or sessions.
pub(super) fn later() -> RecordBatch {
    let rows: Vec<(i64, f64, &str, i64)> =
        (0..4000).map(|i| (i % 2300, -1.25, ["z", "a"][i as usize % 2], 1000 + (i * 3) % 4000)).collect();
    batch(&rows)
}

/// Takes a view after `first`, then processes `later` (and fires what the
/// watermark closes): the view must encode what an operator that saw only
/// `first` encodes, and restore into it.
fn a_view_holds_the_barrier_state(make: fn() -> Box<dyn StreamOperator>) {
    let mut op = make();
    let mut out = Vec::new();
    op.process_batch(first(), &mut out).unwrap();
    op.process_watermark(300, &mut out).unwrap();
    let view = op.snapshot().unwrap().unwrap();
    op.process_batch(later(), &mut out).unwrap();
    op.process_watermark(2600, &mut out).unwrap();
    let fired: usize = out
        .iter()
        .map(|e| match e {
            super::StreamEvent::Batch(b) => b.num_rows(),
            _ => 0,
        })
        .sum();
    assert!(fired > 0, "the later watermark fires some state the view still holds");
    let held = encode(view.as_ref());

    let mut reference = make();
    reference.process_batch(first(), &mut out).unwrap();
    reference.process_watermark(300, &mut out).unwrap();
    let expected = encode(reference.snapshot().unwrap().unwrap().as_ref());
    assert!(expected.len() > 4, "state in several key groups");
    // The same bytes per key group, but for the order of COUNT DISTINCT's
    // sets (each set hashes with its own seed): compare what the state fires.
    let sizes = |e: &[(u32, Vec<u8>)]| e.iter().map(|(kg, b)| (*kg, b.len())).collect::<Vec<_>>();
    assert_eq!(sizes(&held), sizes(&expected), "the view changed after the barrier");
    let fired_by = |state: &[(u32, Vec<u8>)]| {
        let mut restored = make();
        for (kg, bytes) in state {
            restored.restore(*kg, bytes).unwrap();
        }
        assert_eq!(restored.state_keys(), reference.state_keys());
        rows(restored.as_mut())
    };
    let from_view = fired_by(&held);
    assert!(from_view.len() > 1000, "{}", from_view.len());
    assert_eq!(from_view, fired_by(&expected), "the view changed after the barrier");
    assert_eq!(from_view, rows(reference.as_mut()), "restored from the view, the state is not the same");
}

/// Everything the operator fires at the end of time, as sorted lines.
pub(super) fn rows(op: &mut dyn StreamOperator) -> Vec<String> {
    let mut out = Vec::new();
    op.process_watermark(i64::MAX, &mut out).unwrap();
    let mut lines = Vec::new();
    for e in out {
        if let super::StreamEvent::Batch(b) = e {
            for r in 0..b.num_rows() {
                let cells: Vec<String> = b.columns().iter().map(|c| array_value_to_string(c, r).unwrap()).collect();
                lines.push(cells.join(","));
            }
        }
    }
    lines.sort();
    lines
}

#[test]
fn a_window_view_holds_the_state_of_its_barrier() {
    a_view_holds_the_barrier_state(window);
}

#[test]
fn a_session_view_holds_the_state_of_its_barrier() {
    a_view_holds_the_barrier_state(session);
}

/// As entries, per key group: a base, or the changes since the last view.
pub(super) fn entries_of(view: &dyn StateView, changes: bool) -> Vec<(u32, Vec<u8>)> {
    let e = view.entries().expect("the window aggregations' state is written as entries");
    let mut w = KeyGroupWriters::new();
    if changes {
        assert!(e.knows_changes());
        e.encode_changes(MAX_PARALLELISM, 0..MAX_PARALLELISM as u32, &mut w, &|| true).unwrap();
    } else {
        e.encode_base(MAX_PARALLELISM, &mut w, &|| true).unwrap();
    }
    w.into_iter().map(|(kg, w)| (kg, w.buf)).collect()
}

/// A base after `first`, then changes after updates to a few keys (one new)
/// and a watermark that fires state: restored from the base and the changes,
/// the operator holds what the live one holds. The changes must be at most
/// `1 / smaller` of the base. A key's sessions are one record, so a session
/// that fires rewrites its key's other sessions: `watermark` fires less there.
fn restores_from_a_base_and_the_changes_after_it(
    make: fn() -> Box<dyn StreamOperator>,
    watermark: i64,
    smaller: usize,
) {
    let mut out = Vec::new();
    let mut op = make();
    op.process_batch(first(), &mut out).unwrap();
    op.process_watermark(300, &mut out).unwrap();
    let base = entries_of(op.snapshot().unwrap().unwrap().as_ref(), false);
    // Updates to some keys only, then state fires.
    op.process_batch(
        batch(&[
            (3, 1.0, "q", 1200),
            (4, 2.0, "r", 2300),
            (1699, 3.0, "s", 2400),
            (9000, 4.0, "t", 2450),
            (9001, 5.0, "u", 310),
        ]),
        &mut out,
    )
    .unwrap();
    let keys_before = op.state_keys();
    op.process_watermark(watermark, &mut out).unwrap();
    assert!(op.state_keys() < keys_before, "the watermark fires some keys' whole state");
    let view = op.snapshot().unwrap().unwrap();
    let changes = entries_of(view.as_ref(), true);
    let size = |e: &[(u32, Vec<u8>)]| e.iter().map(|(_, b)| b.len()).sum::<usize>();
    assert!(size(&changes) * smaller < size(&base), "changes {} of a base of {}", size(&changes), size(&base));

    let mut restored = make();
    for kg in 0..MAX_PARALLELISM as u32 {
        let chain: Vec<&[u8]> =
            base.iter().chain(&changes).filter(|(k, _)| *k == kg).map(|(_, b)| b.as_slice()).collect();
        restored.restore(kg, &crate::state::entries::merge(&chain, 1).unwrap()).unwrap();
    }
    assert_eq!(restored.state_keys(), op.state_keys(), "fired state is deleted by the changes");
    assert_eq!(rows(restored.as_mut()), rows(op.as_mut()));
}

#[test]
fn a_window_restores_from_a_base_and_the_changes_after_it() {
    restores_from_a_base_and_the_changes_after_it(window, 1500, 20);
}

#[test]
fn a_session_window_restores_from_a_base_and_the_changes_after_it() {
    restores_from_a_base_and_the_changes_after_it(session, 700, 2);
}
