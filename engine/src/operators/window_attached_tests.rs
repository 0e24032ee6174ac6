//! The window-attached aggregation: rows carry their windows in columns (as
//! a window join's output does), and each row counts in that window only.

use std::sync::Arc;

use arrow::array::{Int64Array, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;
use datafusion_physical_expr::expressions::Column;
use sluice_sql::plan::{AggFunc, WindowKind};

use super::*;
use crate::operators::aggregate::AggDef;
use crate::operators::{KeyGroupWriters, StreamEvent, StreamOperator};

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

/// Rows of (k, window_start, window_end).
fn batch(rows: &[(i64, i64, i64)]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("window_start", ts(), true),
        Field::new("window_end", ts(), true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
    .unwrap()
}

/// COUNT(*) per k and HOP window (slide 1 s, size 2 s) taken from the rows.
fn operator() -> WindowAggregate {
    let keys = Keys::new(vec![Arc::new(Column::new("k", 0))], vec![DataType::Int64]).unwrap();
    let count = AggDef {
        func: AggFunc::Count,
        arg: None,
        filter: None,
        distinct: false,
        input_type: None,
        output_type: DataType::Int64,
        separator: None,
    };
    let out = Schema::new(vec![
        Field::new("window_start", ts(), true),
        Field::new("window_end", ts(), true),
        Field::new("window_time", ts(), true),
        Field::new("k", DataType::Int64, true),
        Field::new("c", DataType::Int64, true),
    ]);
    let kind = WindowKind::Hop { slide: 1000, size: 2000, offset: 0 };
    WindowAggregate::new(kind, 1, ts(), TimeShift::new(None).unwrap(), keys, vec![count], Arc::new(out))
        .attached(Some([1, 2]))
}

/// `start end k count` per output row, and the watermarks.
fn text(events: &[StreamEvent]) -> Vec<String> {
    let mut lines = Vec::new();
    for e in events {
        match e {
            StreamEvent::Batch(b) => {
                for r in 0..b.num_rows() {
                    let v = |c: usize| {
                        let a = b.column(c);
                        match a.data_type() {
                            DataType::Timestamp(..) => crate::operators::epoch_millis(a).unwrap().value(r).to_string(),
                            _ => array_value_to_string(a, r).unwrap(),
                        }
                    };
                    lines.push(format!("{} {} {} {}", v(0), v(1), v(3), v(4)));
                }
            }
            StreamEvent::Watermark(w) => lines.push(format!("wm {w}")),
        }
    }
    lines
}

fn push(op: &mut WindowAggregate, rows: &[(i64, i64, i64)], wm: i64) -> Vec<String> {
    let mut out = Vec::new();
    op.process_batch(batch(rows), &mut out).unwrap();
    op.process_watermark(wm, &mut out).unwrap();
    text(&out)
}

#[test]
fn each_row_counts_in_the_window_it_carries_and_late_windows_are_dropped() {
    let mut op = operator();
    // Two rows of window [0, 2000), one of [1000, 3000): not re-assigned to
    // every HOP window their times would belong to.
    assert_eq!(push(&mut op, &[(1, 0, 2000), (1, 0, 2000), (1, 1000, 3000)], 1998), ["wm 1998"]);
    assert_eq!(push(&mut op, &[(2, 1000, 3000)], 1999), ["0 2000 1 2", "wm 1999"]);
    // A row of a window that has fired is late.
    assert_eq!(
        push(&mut op, &[(1, 0, 2000), (1, 2000, 4000)], 3999),
        ["1000 3000 1 1", "1000 3000 2 1", "2000 4000 1 1", "wm 3999"]
    );
    assert_eq!(op.late_records_dropped(), 1);
}

#[test]
fn open_windows_survive_a_restore() {
    let mut op = operator();
    push(&mut op, &[(1, 0, 2000), (2, 1000, 3000)], 0);
    let mut groups = KeyGroupWriters::new();
    op.snapshot().unwrap().unwrap().encode(128, &mut groups, &|| true).unwrap();
    let mut back = operator();
    for (kg, w) in &groups {
        back.restore(*kg, &w.buf).unwrap();
    }
    assert_eq!(push(&mut back, &[(1, 0, 2000)], 2999), ["0 2000 1 2", "1000 3000 2 1", "wm 2999"]);
}
