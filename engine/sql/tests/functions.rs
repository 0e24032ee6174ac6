#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Scalar expressions evaluated on a small batch, against Flink's semantics.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;
use datafusion_common::DFSchema;
use sluice_sql::Position;
use sluice_sql::dialect::FlinkDialect;
use sluice_sql::expr::{ExprPlanner, physical};
use sqlparser::parser::Parser;

fn batch() -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("i", DataType::Int32, true),
        Field::new("b", DataType::Int64, true),
        Field::new("d", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(vec![Some(7), None])),
        Arc::new(Int64Array::from(vec![Some(1_700_000_000_123), Some(5)])),
        Arc::new(Float64Array::from(vec![Some(0.1), Some(1e7)])),
        Arc::new(StringArray::from(vec![Some(" Hello/World/x "), None])),
        Arc::new(TimestampMillisecondArray::from(vec![Some(1_704_067_265_123), Some(0)])),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).unwrap()
}

/// Evaluates `sql` on both rows; NULL prints as "NULL".
fn eval(sql: &str) -> Vec<String> {
    let b = batch();
    let df = DFSchema::try_from_qualified_schema("t", &b.schema()).unwrap();
    let ast = Parser::new(&FlinkDialect).try_with_sql(sql).unwrap().parse_expr().unwrap();
    let e = ExprPlanner::new("UTC").plan(&ast, &df, Position::default()).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let p = physical(&e, &df).unwrap();
    let a = p.evaluate(&b).unwrap().into_array(2).unwrap();
    (0..2).map(|i| if a.is_null(i) { "NULL".into() } else { array_value_to_string(&a, i).unwrap() }).collect()
}

#[test]
fn flink_scalar_functions() {
    let cases: &[(&str, [&str; 2])] = &[
        ("UPPER(TRIM(s))", ["HELLO/WORLD/X", "NULL"]),
        ("CHAR_LENGTH(s)", ["15", "NULL"]),
        ("CONCAT(s, 'a')", [" Hello/World/x a", "NULL"]),
        ("SUBSTRING(TRIM(s) FROM 1 FOR 5)", ["Hello", "NULL"]),
        ("REGEXP_EXTRACT(s, '([A-Z])[a-z]+/([A-Z])', 2)", ["W", "NULL"]),
        ("REGEXP_EXTRACT(s, 'zzz')", ["NULL", "NULL"]),
        ("SPLIT_INDEX(s, '/', 1)", ["World", "NULL"]),
        ("SPLIT_INDEX(s, '/', 9)", ["NULL", "NULL"]),
        ("COALESCE(i, 0) + 1", ["8", "1"]),
        ("CASE WHEN i > 5 THEN 'big' ELSE 'small' END", ["big", "small"]),
        ("IF(i IS NULL, -1, i)", ["7", "-1"]),
        ("MOD(b, 10)", ["3", "5"]),
        ("i IN (1, 7)", ["true", "NULL"]),
        ("s LIKE '%World%'", ["true", "NULL"]),
        ("i BETWEEN 1 AND 10", ["true", "NULL"]),
        ("CAST(d AS STRING)", ["0.1", "1.0E7"]),
        ("CAST(i > 1 AS STRING)", ["TRUE", "NULL"]),
        ("CAST(ts AS STRING)", ["2024-01-01 00:01:05.123", "1970-01-01 00:00:00.000"]),
        ("TRY_CAST('x' AS INT)", ["NULL", "NULL"]),
        ("DATE_FORMAT(ts, 'yyyy-MM-dd HH:mm')", ["2024-01-01 00:01", "1970-01-01 00:00"]),
        ("EXTRACT(MINUTE FROM ts)", ["1", "0"]),
        ("HOUR(ts)", ["0", "0"]),
        ("MINUTE(ts)", ["1", "0"]),
        ("SECOND(ts)", ["5", "0"]),
        ("YEAR(ts) * 100 + MONTH(ts)", ["202401", "197001"]),
        ("DAYOFMONTH(ts) + DAYOFYEAR(ts)", ["2", "2"]),
        ("b / 4.0e0", ["425000000030.75", "1.25"]),
        ("CAST(FLOOR(ts TO MINUTE) AS STRING)", ["2024-01-01 00:01:00.000", "1970-01-01 00:00:00.000"]),
        ("CAST(CEIL(ts TO MINUTE) AS STRING)", ["2024-01-01 00:02:00.000", "1970-01-01 00:00:00.000"]),
        ("CAST(TO_TIMESTAMP('2024-02-03 04:05:06') AS STRING)", ["2024-02-03 04:05:06.000", "2024-02-03 04:05:06.000"]),
        (
            "CAST(TO_TIMESTAMP('03/02/2024', 'dd/MM/yyyy') AS STRING)",
            ["2024-02-03 00:00:00.000", "2024-02-03 00:00:00.000"],
        ),
        ("CAST(TO_TIMESTAMP_LTZ(b, 3) AS STRING)", ["2023-11-14 22:13:20.123", "1970-01-01 00:00:00.005"]),
        ("CAST(ts - INTERVAL '5' SECOND AS STRING)", ["2024-01-01 00:01:00.123", "1969-12-31 23:59:55.000"]),
    ];
    let mut failures = Vec::new();
    for (sql, expected) in cases {
        let got = eval(sql);
        if got != expected.iter().map(|s| s.to_string()).collect::<Vec<_>>() {
            failures.push(format!("{sql}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn extract_is_bigint_as_in_flink() {
    let b = batch();
    let df = DFSchema::try_from_qualified_schema("t", &b.schema()).unwrap();
    use datafusion_expr::ExprSchemable;
    // HOUR(ts) and friends are EXTRACT; a literal with an exponent is a DOUBLE.
    for (sql, t) in
        [("EXTRACT(HOUR FROM ts)", DataType::Int64), ("HOUR(ts)", DataType::Int64), ("i * 3.0e0", DataType::Float64)]
    {
        let ast = Parser::new(&FlinkDialect).try_with_sql(sql).unwrap().parse_expr().unwrap();
        let e = ExprPlanner::new("UTC").plan(&ast, &df, Position::default()).unwrap();
        assert_eq!(e.get_type(&df).unwrap(), t, "{sql}");
    }
}

/// Plans `sql`; the error's message, if any.
fn plan_error(sql: &str) -> Option<String> {
    let b = batch();
    let df = DFSchema::try_from_qualified_schema("t", &b.schema()).unwrap();
    let ast = Parser::new(&FlinkDialect).try_with_sql(sql).unwrap().parse_expr().unwrap();
    ExprPlanner::new("UTC").plan(&ast, &df, Position::default()).err().map(|e| e.to_string())
}

#[test]
fn the_map_value_constructor_keeps_the_order_written_and_the_last_value_of_a_key() {
    let cases: &[(&str, [&str; 2])] = &[
        // Values coerced to one type (INT and BIGINT: BIGINT); NULL values kept.
        ("MAP['a', i, 'b', b]", ["{a: 7, b: 1700000000123}", "{a: , b: 5}"]),
        // A key written twice keeps its first place and its last value.
        ("MAP['x', 1, 'y', 2, 'x', 3]", ["{x: 3, y: 2}", "{x: 3, y: 2}"]),
        ("MAP[b, 'one', b + 1, 'two']", ["{1700000000123: one, 1700000000124: two}", "{5: one, 6: two}"]),
        ("CARDINALITY(MAP['p', 1, 'q', 2, 'p', 3])", ["2", "2"]),
        // Access by a constant key and by a computed one.
        ("MAP['k', i, 'l', 2]['k']", ["7", "NULL"]),
        ("MAP['k', i, 'l', 2][CASE WHEN i IS NULL THEN 'l' ELSE 'k' END]", ["7", "2"]),
        ("MAP['k', i]['missing']", ["NULL", "NULL"]),
    ];
    for (sql, expected) in cases {
        assert_eq!(eval(sql), expected.to_vec(), "{sql}");
    }
}

#[test]
fn map_values_are_refused_as_flink_refuses_them() {
    let err = |sql: &str| plan_error(sql).unwrap_or_else(|| panic!("{sql} planned"));
    assert!(err("MAP['a', 1, 2, 3]").contains("Parameters must be of the same type: MAP[...] keys are STRING, BIGINT"));
    assert!(err("MAP['a', 1, 'b', 'c']").contains("values are BIGINT, STRING"));
    assert!(err("MAP['a', NULL]").contains("untyped NULL"));
    assert!(
        Parser::new(&FlinkDialect)
            .try_with_sql("MAP['a', 1, 'b']")
            .unwrap()
            .parse_expr()
            .unwrap_err()
            .to_string()
            .contains("Map requires an even number of arguments")
    );
}

#[test]
fn a_map_key_that_is_null_fails_with_a_reason() {
    let b = batch();
    let df = DFSchema::try_from_qualified_schema("t", &b.schema()).unwrap();
    let ast = Parser::new(&FlinkDialect).try_with_sql("MAP[s, 1]").unwrap().parse_expr().unwrap();
    let e = ExprPlanner::new("UTC").plan(&ast, &df, Position::default()).unwrap();
    let err = physical(&e, &df).unwrap().evaluate(&b).unwrap_err().to_string();
    assert!(err.contains("a MAP[...] key is NULL"), "{err}");
}
