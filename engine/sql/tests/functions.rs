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

/// The planned type of `sql`, in Flink's names.
fn planned_type(sql: &str, tz: &str) -> String {
    use datafusion_expr::ExprSchemable;
    let b = batch();
    let df = DFSchema::try_from_qualified_schema("t", &b.schema()).unwrap();
    let ast = Parser::new(&FlinkDialect).try_with_sql(sql).unwrap().parse_expr().unwrap();
    let e = ExprPlanner::new(tz).plan(&ast, &df, Position::default()).unwrap_or_else(|e| panic!("{sql}: {e}"));
    sluice_sql::types::flink_name(&e.get_type(&df).unwrap())
}

#[test]
fn added_functions_have_flink_return_types() {
    let cases = [
        ("TIMESTAMPDIFF(DAY, ts, ts)", "INT"),
        ("TIMESTAMPADD(MONTH, 1, ts)", "TIMESTAMP(3)"),
        ("TIMESTAMPADD(HOUR, i, TO_TIMESTAMP_LTZ(b, 3))", "TIMESTAMP_LTZ(3)"),
        ("UNIX_TIMESTAMP()", "BIGINT"),
        ("UNIX_TIMESTAMP(s, 'yyyy')", "BIGINT"),
        ("DAYOFWEEK(ts)", "BIGINT"),
        ("CONVERT_TZ(s, 'UTC', 'Asia/Tokyo')", "STRING"),
        ("LOCALTIMESTAMP", "TIMESTAMP(3)"),
        ("LOCATE('a', s)", "INT"),
        ("REGEXP(s, 'a')", "BOOLEAN"),
        ("REGEXP_EXTRACT_ALL(s, '(a)')", "ARRAY<STRING>"),
        ("SPLIT(s, '/')", "ARRAY<STRING>"),
        ("STR_TO_MAP(s)", "MAP<STRING, STRING>"),
        ("IS_DIGIT(s)", "BOOLEAN"),
        ("MD5(s)", "STRING"),
        ("SHA2(s, 256)", "STRING"),
        ("TRUNCATE(d, 1)", "DOUBLE"),
        ("TRUNCATE(i)", "INT"),
        ("TRUNCATE(CAST(d AS DECIMAL(10, 3)), 1)", "DECIMAL(9, 1)"),
        ("TRUNCATE(CAST(d AS DECIMAL(10, 3)), 5)", "DECIMAL(10, 3)"),
        ("SIGN(b)", "BIGINT"),
        ("SIGN(CAST(d AS DECIMAL(10, 3)))", "DECIMAL(10, 3)"),
        ("E()", "DOUBLE"),
        ("ELEMENT(ARRAY[i])", "INT"),
        ("ARRAY_POSITION(ARRAY[i], 1)", "INT"),
        ("ARRAY_CONTAINS(ARRAY[s], 'x')", "BOOLEAN"),
        ("ARRAY_SLICE(ARRAY[s], 1, 2)", "ARRAY<STRING>"),
        ("ARRAY_MAX(ARRAY[d])", "DOUBLE"),
        ("ARRAY_JOIN(ARRAY[s], ',')", "STRING"),
        ("MAP_KEYS(MAP['a', i])", "ARRAY<STRING>"),
        ("MAP_VALUES(MAP['a', i])", "ARRAY<INT>"),
        ("JSON_VALUE(s, '$.a')", "STRING"),
        ("JSON_EXISTS(s, '$.a')", "BOOLEAN"),
        ("JSON_VALUE(s, '$.a' RETURNING INT)", "INT"),
        ("JSON_OBJECT('a' VALUE i)", "STRING"),
        ("JSON_ARRAY(i, s ABSENT ON NULL)", "STRING"),
        ("JSON_STRING(ts)", "STRING"),
        ("FROM_UNIXTIME(b)", "STRING"),
        ("PRINTF('%d', i)", "STRING"),
        ("ARRAY_EXCEPT(ARRAY[i], ARRAY[1])", "ARRAY<INT>"),
        ("MAP_FROM_ARRAYS(ARRAY['a'], ARRAY[d])", "MAP<STRING, DOUBLE>"),
        ("MAP_UNION(MAP['a', i], MAP['b', i])", "MAP<STRING, INT>"),
    ];
    let mut failures = Vec::new();
    for (sql, want) in cases {
        let got = planned_type(sql, "UTC");
        if got != want {
            failures.push(format!("{sql}: expected {want}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn added_functions_follow_flink_on_rows_and_nulls() {
    let cases: &[(&str, [&str; 2])] = &[
        // ts is 2024-01-01 00:01:05.123 and 1970-01-01 00:00:00.
        ("TIMESTAMPDIFF(YEAR, TIMESTAMPADD(SECOND, 1, ts), ts)", ["0", "0"]),
        ("TIMESTAMPDIFF(MONTH, ts, TIMESTAMPADD(MONTH, 13, ts))", ["13", "13"]),
        ("TIMESTAMPDIFF(SECOND, ts, TIMESTAMPADD(HOUR, i, ts))", ["25200", "NULL"]),
        ("CAST(TIMESTAMPADD(MONTH, 1, TO_TIMESTAMP('2024-01-31 08:00:00')) AS STRING)", ["2024-02-29 08:00:00.000"; 2]),
        ("DAYOFWEEK(ts)", ["2", "5"]),
        ("UNIX_TIMESTAMP('1970-01-01 01:00:00')", ["3600", "3600"]),
        ("UNIX_TIMESTAMP('31/12/1969', 'dd/MM/yyyy')", ["-86400", "-86400"]),
        ("UNIX_TIMESTAMP('garbage')", ["-9223372036854775808"; 2]),
        ("UNIX_TIMESTAMP(s)", ["-9223372036854775808", "NULL"]),
        ("CONVERT_TZ('2024-07-01 12:00:00', 'UTC', 'Europe/Paris')", ["2024-07-01 14:00:00"; 2]),
        ("TIMESTAMPDIFF(MINUTE, LOCALTIMESTAMP, LOCALTIMESTAMP)", ["0", "0"]),
        ("LOCATE('o', s)", ["6", "NULL"]),
        ("LOCATE('o', s, 7)", ["9", "NULL"]),
        ("LOCATE('', '', 9)", ["1", "1"]),
        ("REGEXP(s, 'W.r')", ["true", "NULL"]),
        ("REGEXP(s, '(')", ["NULL", "NULL"]),
        ("REGEXP_SUBSTR(s, '[A-Z][a-z]+')", ["Hello", "NULL"]),
        ("ARRAY_JOIN(REGEXP_EXTRACT_ALL(s, '([A-Z])[a-z]+'), '+')", ["H+W", "NULL"]),
        ("CARDINALITY(REGEXP_EXTRACT_ALL(s, '[a-z]'))", ["NULL", "NULL"]),
        ("ARRAY_JOIN(SPLIT(s, '/'), '|')", [" Hello|World|x ", "NULL"]),
        ("CARDINALITY(SPLIT('', '/'))", ["0", "0"]),
        ("STR_TO_MAP('a=1;b;a=3', ';', '=')['a']", ["3", "3"]),
        ("CARDINALITY(STR_TO_MAP('a=1;b;a=3', ';', '='))", ["2", "2"]),
        ("IS_DIGIT(s)", ["false", "false"]),
        ("IS_DECIMAL('-1.5e3')", ["true", "true"]),
        ("ELT(i - 5, 'a', 'b', 'c')", ["b", "NULL"]),
        ("STARTSWITH(s, ' He')", ["true", "NULL"]),
        ("URL_ENCODE('a b/ä')", ["a+b%2Fä", "a+b%2Fä"].map(|_| "a+b%2F%C3%A4")),
        ("PARSE_URL('http://h.com:81/p?a=1&b=2', 'QUERY', 'b')", ["2", "2"]),
        ("FROM_BASE64(TO_BASE64(s))", [" Hello/World/x ", "NULL"]),
        ("BIN(i)", ["111", "NULL"]),
        ("HEX(b)", ["18BCFE5687B", "5"]),
        ("MD5(s)", ["357f2116e34059daa6ecefa229e8b6a5", "NULL"]),
        ("SHA2(s, 100)", ["NULL", "NULL"]),
        ("CAST(TRUNCATE(d * 10, 0) AS STRING)", ["1.0", "1.0E8"]),
        ("CAST(TRUNCATE(-d / 3, 2) AS STRING)", ["-0.03", "-3333333.33"]),
        ("TRUNCATE(b, -3)", ["1700000000000", "0"]),
        ("SIGN(-d)", ["-1.0", "-1.0"]),
        ("ELEMENT(ARRAY_SLICE(ARRAY[i, 8], -1))", ["8", "8"]),
        ("ARRAY_POSITION(ARRAY[1, i, 7], 7)", ["2", "3"]),
        ("ARRAY_POSITION(ARRAY[1, i], CAST(NULL AS INT))", ["NULL", "NULL"]),
        ("ARRAY_CONTAINS(ARRAY[1, i], CAST(NULL AS INT))", ["false", "true"]),
        ("ARRAY_JOIN(ARRAY_SORT(ARRAY[s, 'b', 'a'], FALSE), ',', 'null')", ["b,a, Hello/World/x ", "b,a,null"]),
        ("ARRAY_JOIN(ARRAY_DISTINCT(ARRAY['a', s, 'a', s]), ',', '-')", ["a, Hello/World/x ", "a,-"]),
        ("CARDINALITY(ARRAY_UNION(ARRAY[1, 2], ARRAY[2, i]))", ["3", "3"]),
        ("ARRAY_MIN(ARRAY[i, 3])", ["3", "3"]),
        ("ARRAY_MAX(ARRAY_REMOVE(ARRAY[i, 3], 7))", ["3", "3"]),
        ("CARDINALITY(ARRAY_CONCAT(ARRAY[1], ARRAY[i], ARRAY[i]))", ["3", "3"]),
        ("ARRAY_JOIN(MAP_KEYS(MAP['a', i, 'b', 2]), ',')", ["a,b", "a,b"]),
        ("ARRAY_EXCEPT(ARRAY[1, 1, 2, i], ARRAY[2])", ["[1, 7]", "[1, ]"]),
        ("ARRAY_INTERSECT(ARRAY[i, 1, i, 2], ARRAY[2, i])", ["[7, 2]", "[, 2]"]),
        ("MAP_FROM_ARRAYS(ARRAY['x', 'y', 'x'], ARRAY[1, i, 3])", ["{x: 3, y: 7}", "{x: 3, y: }"]),
        ("MAP_UNION(MAP['a', 1, 'b', 2], MAP['b', i], MAP['c', 3])['b']", ["7", "NULL"]),
        ("ARRAY_JOIN(MAP_KEYS(MAP_UNION(MAP['a', 1, 'b', 2], MAP['b', i], MAP['c', 3])), ',')", ["c,b,a", "c,b,a"]),
        ("JSON_VALUE('{\"a\": {\"b\": \"x\"}}', '$.a.b')", ["x", "x"]),
        ("JSON_VALUE('{\"a\": [1, 2.50]}', 'lax $.a[1]')", ["2.50", "2.50"]),
        ("JSON_VALUE('{\"a\": [1, 2]}', '$.a[*]')", ["NULL", "NULL"]),
        ("JSON_QUERY('{\"a\": [{\"k\": 1}, {\"k\": [2]}]}', '$.a[*].k')", ["[1,[2]]", "[1,[2]]"]),
        (
            "JSON_QUERY('{\"z\": 1, \"a\": {\"y\": [true, null], \"b\": \"q\\\"\"}}', '$.a')",
            ["{\"b\":\"q\\\"\",\"y\":[true,null]}"; 2],
        ),
        ("JSON_EXISTS(s, '$')", ["false", "NULL"]),
        ("JSON_EXISTS('{\"a\": null}', '$.a')", ["true", "true"]),
        ("JSON_VALUE('{\"a\": 2.5}', '$.a' RETURNING DOUBLE) * 2", ["5.0", "5.0"]),
        ("JSON_VALUE('{\"a\": \"x\"}', '$.a' RETURNING INT)", ["NULL", "NULL"]),
        (
            "JSON_OBJECT('b' VALUE i, 'a' VALUE JSON_ARRAY(d, s))",
            ["{\"a\":[0.1,\" Hello/World/x \"],\"b\":7}", "{\"a\":[1.0E+7],\"b\":null}"],
        ),
        ("JSON_OBJECT('k' VALUE i ABSENT ON NULL)", ["{\"k\":7}", "{}"]),
        ("JSON_ARRAY(i NULL ON NULL)", ["[7]", "[null]"]),
        ("JSON_STRING(ts)", ["\"2024-01-01T00:01:05.123\"", "\"1970-01-01T00:00:00\""]),
        ("FROM_UNIXTIME(b / 1000, 'yyyy-MM-dd')", ["2023-11-14", "1970-01-01"]),
        ("PRINTF('%s:%05.1f|%-3d|%b', s, d, i, i)", [" Hello/World/x :000.1|7  |true", "null:10000000.0|null|false"]),
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
fn added_functions_refuse_bad_calls_by_name() {
    let cases = [
        ("TIMESTAMPDIFF(FORTNIGHT, ts, ts)", "TIMESTAMPDIFF does not support the unit FORTNIGHT"),
        ("TIMESTAMPDIFF(DAY, s, ts)", "TIMESTAMPDIFF takes a TIMESTAMP as argument 2, not STRING"),
        ("TIMESTAMPADD(DAY, d, ts)", "TIMESTAMPADD takes an integer count as argument 2, not DOUBLE"),
        ("UNIX_TIMESTAMP(s, 'a', 'b')", "UNIX_TIMESTAMP takes ([string [, format]]), not 3 argument(s)"),
        ("DAYOFWEEK(i)", "DAYOFWEEK takes a TIMESTAMP as argument 1, not INT"),
        ("LOCATE(s)", "LOCATE takes (substring, string [, start position]), not 1 argument(s)"),
        ("MD5(i)", "MD5 takes a STRING as argument 1, not INT"),
        ("TRUNCATE(s)", "TRUNCATE takes a number as argument 1, not STRING"),
        ("E(1)", "E takes no arguments, not 1 argument(s)"),
        ("ARRAY_CONTAINS(s, 'a')", "ARRAY_CONTAINS takes an ARRAY as argument 1, not STRING"),
        ("ARRAY_APPEND(ARRAY[ts], MAP['a', 1])", "ARRAY_APPEND cannot compare a MAP<STRING, BIGINT>"),
        ("ARRAY_JOIN(ARRAY[i], ',')", "ARRAY_JOIN takes an ARRAY<STRING> as argument 1, not ARRAY<INT>"),
        ("ARRAY_SORT(ARRAY[i], 1)", "ARRAY_SORT takes a BOOLEAN (ascending) as argument 2, not BIGINT"),
        ("MAP_KEYS(ARRAY[i])", "MAP_KEYS takes a MAP as argument 1, not ARRAY<INT>"),
        ("JSON_VALUE(i, '$.a')", "JSON_VALUE takes a STRING of JSON as argument 1, not INT"),
        ("PRINTF(i)", "PRINTF takes a STRING format as argument 1, not INT"),
        ("FROM_UNIXTIME(s)", "FROM_UNIXTIME takes an integer number of seconds as argument 1, not STRING"),
    ];
    let mut failures = Vec::new();
    for (sql, want) in cases {
        match plan_error(sql) {
            Some(e) if e.contains(want) => {}
            other => failures.push(format!("{sql}: expected an error with {want:?}, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn element_of_an_array_of_two_fails_with_a_reason() {
    let b = batch();
    let df = DFSchema::try_from_qualified_schema("t", &b.schema()).unwrap();
    let ast = Parser::new(&FlinkDialect).try_with_sql("ELEMENT(ARRAY[i, 1])").unwrap().parse_expr().unwrap();
    let e = ExprPlanner::new("UTC").plan(&ast, &df, Position::default()).unwrap();
    let err = physical(&e, &df).unwrap().evaluate(&b).unwrap_err().to_string();
    assert!(err.contains("ELEMENT takes an array of at most one element, not 2"), "{err}");
}

#[test]
fn printf_of_a_string_with_percent_d_fails_with_a_reason() {
    let b = batch();
    let df = DFSchema::try_from_qualified_schema("t", &b.schema()).unwrap();
    let ast = Parser::new(&FlinkDialect).try_with_sql("PRINTF('%d', s)").unwrap().parse_expr().unwrap();
    let e = ExprPlanner::new("UTC").plan(&ast, &df, Position::default()).unwrap();
    let err = physical(&e, &df).unwrap().evaluate(&b).unwrap_err().to_string();
    assert!(err.contains("PRINTF %d cannot format a STRING"), "{err}");
}

#[test]
fn map_from_arrays_of_two_lengths_fails_with_a_reason() {
    let b = batch();
    let df = DFSchema::try_from_qualified_schema("t", &b.schema()).unwrap();
    let ast = Parser::new(&FlinkDialect)
        .try_with_sql("MAP_FROM_ARRAYS(ARRAY['a', s], ARRAY[i])")
        .unwrap()
        .parse_expr()
        .unwrap();
    let e = ExprPlanner::new("UTC").plan(&ast, &df, Position::default()).unwrap();
    let err = physical(&e, &df).unwrap().evaluate(&b).unwrap_err().to_string();
    assert!(err.contains("MAP_FROM_ARRAYS takes arrays of one length, not 2 keys and 1 values"), "{err}");
}

#[test]
fn ltz_days_are_read_in_the_session_time_zone_and_months_in_utc() {
    // 2024-03-31 23:30 UTC is 2024-04-01 01:30 in Paris: a Monday, in April.
    let sql = |f: &str| format!("{f}(TO_TIMESTAMP_LTZ(1711927800000, 3))");
    assert_eq!(planned_type(&sql("DAYOFWEEK"), "Europe/Paris"), "BIGINT");
    let eval_tz = |sql: &str, tz: &str| {
        let b = batch();
        let df = DFSchema::try_from_qualified_schema("t", &b.schema()).unwrap();
        let ast = Parser::new(&FlinkDialect).try_with_sql(sql).unwrap().parse_expr().unwrap();
        let e = ExprPlanner::new(tz).plan(&ast, &df, Position::default()).unwrap();
        let a = physical(&e, &df).unwrap().evaluate(&b).unwrap().into_array(2).unwrap();
        array_value_to_string(&a, 0).unwrap()
    };
    assert_eq!(eval_tz(&sql("DAYOFWEEK"), "Europe/Paris"), "2");
    assert_eq!(eval_tz(&sql("DAYOFWEEK"), "UTC"), "1");
    let months = "TIMESTAMPDIFF(MONTH, TO_TIMESTAMP_LTZ(1709251200000, 3), TO_TIMESTAMP_LTZ(1711927800000, 3))";
    // From 2024-03-01 00:00 UTC: a month in Paris (01:00 to 01:30 on 04-01) but
    // none in UTC, where Flink counts the months of an instant.
    assert_eq!(eval_tz(months, "Europe/Paris"), "0");
    assert_eq!(
        eval_tz("CAST(TIMESTAMPADD(MONTH, 1, TO_TIMESTAMP_LTZ(1709251200000, 3)) AS STRING)", "Europe/Paris"),
        "2024-04-01 02:00:00.000"
    );
    assert_eq!(eval_tz("UNIX_TIMESTAMP('2024-03-31 02:30:00')", "Europe/Paris"), "1711848600");
    assert_eq!(eval_tz("UNIX_TIMESTAMP('1970-01-01 01:00:00')", "Europe/Paris"), "0");
}
