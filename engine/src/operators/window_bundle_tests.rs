//! Bundles of the window aggregation: like Flink's local window buffer, a
//! bundle of partial accumulators ends at a watermark trigger only when a
//! window it holds rows of fires, and floating-point results depend on it.

use std::sync::Arc;

use arrow::array::{Float64Array, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion_physical_expr::expressions::Column;
use sluice_sql::plan::{AggFunc, WindowKind};

use super::*;
use crate::operators::aggregate::AggDef;
use crate::operators::aggregate::welford::Welford;
use crate::operators::{StreamEvent, StreamOperator};

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

/// VAR_POP(v) per TUMBLE window of 10 s, without keys.
fn operator() -> WindowAggregate {
    let var = AggDef {
        func: AggFunc::VarPop,
        arg: Some(Arc::new(Column::new("v", 0))),
        filter: None,
        distinct: false,
        input_type: Some(DataType::Float64),
        output_type: DataType::Float64,
        separator: None,
    };
    let out = Schema::new(vec![
        Field::new("window_start", ts(), true),
        Field::new("window_end", ts(), true),
        Field::new("window_time", ts(), true),
        Field::new("var", DataType::Float64, true),
    ]);
    let keys = Keys::new(vec![], vec![]).unwrap();
    WindowAggregate::new(
        WindowKind::Tumble { size: 10_000, offset: 0 },
        1,
        ts(),
        TimeShift::new(None).unwrap(),
        keys,
        vec![var],
        Arc::new(out),
    )
}

fn row(v: f64, t: i64) -> RecordBatch {
    let schema = Schema::new(vec![Field::new("v", DataType::Float64, true), Field::new("ts", ts(), true)]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(Float64Array::from(vec![v])), Arc::new(TimestampMillisecondArray::from_iter_values([t]))],
    )
    .unwrap()
}

fn results(out: &[StreamEvent]) -> Vec<f64> {
    let mut r = Vec::new();
    for e in out {
        if let StreamEvent::Batch(b) = e {
            let a = b.column(3).as_any().downcast_ref::<Float64Array>().unwrap();
            r.extend(a.iter().map(|v| v.unwrap()));
        }
    }
    r
}

#[test]
fn watermarks_that_fire_no_window_end_no_bundle() {
    // Rows of one window, each followed by its watermark (ts - 1 s): the
    // watermarks cross the first trigger and -1 without firing a window, so
    // (as in Flink) all rows are one bundle and the variance is the one of
    // the rows accumulated in order. Ending a bundle after the first rows
    // gives 2.304973187443925 instead.
    let rows = [(-0.2096008, 376), (0.5631696, 921), (2.1, 2408), (-0.9, 2746), (-1.5, 9394), (2.6938434, 9685)];
    let mut op = operator();
    let mut out = Vec::new();
    let mut seq = Welford::default();
    for (v, t) in rows {
        op.process_batch(row(v, t), &mut out).unwrap();
        op.process_watermark(t - 1000, &mut out).unwrap();
        seq.accumulate(v);
    }
    op.process_watermark(12_000, &mut out).unwrap();
    assert_eq!(results(&out), vec![2.3049731874439257]);
    assert_eq!(seq.value(AggFunc::VarPop), Some(2.3049731874439257));
}

#[test]
fn a_window_that_fires_ends_the_bundle_of_later_rows() {
    // Rows of the second window that arrive before the first fires are one
    // bundle, merged into the window's accumulator when the first window
    // fires; the rows after are another.
    let mut op = operator();
    let mut out = Vec::new();
    for (v, t) in [(1.0, 1000), (0.1, 10_100), (0.2, 10_200)] {
        op.process_batch(row(v, t), &mut out).unwrap();
    }
    op.process_watermark(10_000, &mut out).unwrap();
    for (v, t) in [(0.3, 10_300), (0.7, 10_400)] {
        op.process_batch(row(v, t), &mut out).unwrap();
        op.process_watermark(t - 1000, &mut out).unwrap();
    }
    op.process_watermark(30_000, &mut out).unwrap();
    let mut first = Welford::default();
    first.accumulate(0.1);
    first.accumulate(0.2);
    let mut second = Welford::default();
    second.accumulate(0.3);
    second.accumulate(0.7);
    let mut merged = Welford::default();
    merged.merge(&first);
    merged.merge(&second);
    let mut seq = first;
    seq.accumulate(0.3);
    seq.accumulate(0.7);
    assert_ne!(merged.value(AggFunc::VarPop), seq.value(AggFunc::VarPop), "the data tells the bundles apart");
    assert_eq!(results(&out), vec![0.0, merged.value(AggFunc::VarPop).unwrap()]);
}
