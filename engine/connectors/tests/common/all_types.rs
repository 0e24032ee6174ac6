//! The rows of `tests/flink/gen_all_types.py`, which Flink 2.3 wrote to
//! `tests/flink/all_types.*`, as Arrow batches.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

pub fn all_types_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, true),
        Field::new("b", DataType::Boolean, true),
        Field::new("bi", DataType::Int64, true),
        Field::new("d", DataType::Float64, true),
        Field::new("dm", DataType::Decimal128(10, 2), true),
        Field::new("dsmall", DataType::Decimal128(20, 10), true),
        Field::new("s", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("ltz", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), true),
    ]))
}

type Row = (Option<bool>, Option<i64>, f64, i128, i128, Option<&'static str>, Option<i64>, Option<i64>);

/// Row `id` (1-based) of the Flink test data.
fn row(id: usize) -> Row {
    const T10: i64 = 1_704_067_210_000; // 2024-01-01 00:00:10
    const T0: i64 = 1_704_067_200_000; // 2024-01-01 00:00:00
    let rest = |d: f64, s: Option<&'static str>| -> Row {
        (Some(true), Some(1), d, 100, 10_000_000_000, s, Some(T0), Some(0))
    };
    match id {
        1 => (Some(true), Some(i64::MAX), 1.0, 1250, 1, Some("plain"), Some(T10), Some(T10)),
        2 => (Some(false), Some(-5), 0.5, 0, 1000, Some("a,b"), Some(T10 + 500), Some(T10 + 500)),
        3 => (None, None, 1.0e7, -314, 1_234_560_000_000, Some("say \"hi\""), Some(T10 + 123), Some(T10 + 120)),
        4 => (Some(true), Some(0), 1.234e-5, 9_999_999_999, 0, Some("line\nbreak"), None, None),
        5 => (Some(true), Some(1), 123_456.789, 100, 10_000_000_000, Some(""), Some(-1), Some(-1)),
        6 => rest(f64::NAN, None),
        7 => rest(f64::INFINITY, Some(" lead space")),
        8 => rest(0.0, Some("tab\tx")),
        9 => rest(0.001, Some("semi;colon'q")),
        10 => rest(9_999_999.0, Some("ünï")),
        11 => rest(0.001, Some("#hash")),
        12 => rest(100.0, Some("ctl\u{1}x")),
        13 => rest(0.002, Some("cr\r")),
        14 => rest(1.0e21, Some("back\\slash/")),
        _ => rest(4.9e-324, Some("x")),
    }
}

/// The rows with the given ids, in that order.
pub fn all_types_batch(ids: &[usize]) -> RecordBatch {
    let rows: Vec<Row> = ids.iter().map(|&i| row(i)).collect();
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(ids.iter().map(|&i| i as i32).collect::<Vec<_>>())),
        Arc::new(BooleanArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
        Arc::new(
            Decimal128Array::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())
                .with_precision_and_scale(10, 2)
                .unwrap(),
        ),
        Arc::new(
            Decimal128Array::from(rows.iter().map(|r| r.4).collect::<Vec<_>>())
                .with_precision_and_scale(20, 10)
                .unwrap(),
        ),
        Arc::new(StringArray::from(rows.iter().map(|r| r.5).collect::<Vec<_>>())),
        Arc::new(TimestampMillisecondArray::from(rows.iter().map(|r| r.6).collect::<Vec<_>>())),
        Arc::new(TimestampMillisecondArray::from(rows.iter().map(|r| r.7).collect::<Vec<_>>()).with_timezone("UTC")),
    ];
    RecordBatch::try_new(all_types_schema(), arrays).unwrap()
}
