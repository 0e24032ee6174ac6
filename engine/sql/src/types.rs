//! Flink SQL types and their Arrow representation.
//!
//! | Flink | Arrow |
//! | --- | --- |
//! | BOOLEAN | Boolean |
//! | INT, INTEGER | Int32 |
//! | BIGINT | Int64 |
//! | DOUBLE | Float64 |
//! | DECIMAL(p, s) | Decimal128(p, s) |
//! | STRING, VARCHAR(n), CHAR(n) | Utf8 |
//! | TIMESTAMP(p), p <= 3 | Timestamp(Millisecond, None) |
//! | TIMESTAMP_LTZ(p), p <= 3 | Timestamp(Millisecond, Some(local time zone)) |

use arrow::datatypes::{DataType, TimeUnit};
use sqlparser::ast::{DataType as SqlType, ExactNumberInfo, TimezoneInfo};

/// The types Sluice supports, as the README lists them.
pub const SUPPORTED_TYPES: &str =
    "BOOLEAN, INT, BIGINT, DOUBLE, DECIMAL(p,s), STRING, VARCHAR(n), TIMESTAMP(3), TIMESTAMP_LTZ(3)";

/// Maps a SQL type to its Arrow type. `tz` is the session's `table.local-time-zone`,
/// which TIMESTAMP_LTZ values carry so that functions see local time.
pub fn to_arrow(t: &SqlType, tz: &str) -> Result<DataType, String> {
    let ts_precision = |p: &Option<u64>| -> Result<(), String> {
        match p {
            None | Some(0..=3) => Ok(()),
            Some(p) => Err(format!(
                "TIMESTAMP({p}) is not supported: Sluice keeps timestamps in milliseconds; use TIMESTAMP(3)"
            )),
        }
    };
    Ok(match t {
        SqlType::Boolean | SqlType::Bool => DataType::Boolean,
        SqlType::Int(_) | SqlType::Integer(_) => DataType::Int32,
        SqlType::BigInt(_) => DataType::Int64,
        SqlType::Double(_) | SqlType::DoublePrecision | SqlType::Float64 => DataType::Float64,
        SqlType::Decimal(info) | SqlType::Numeric(info) | SqlType::Dec(info) => {
            let (p, s) = match info {
                ExactNumberInfo::None => (10, 0),
                ExactNumberInfo::Precision(p) => (*p, 0),
                ExactNumberInfo::PrecisionAndScale(p, s) => (*p, u64::try_from(*s).unwrap_or(0)),
            };
            if !(1..=38).contains(&p) || s > p {
                return Err(format!(
                    "DECIMAL({p}, {s}) is out of range: precision is 1..38 and scale at most the precision"
                ));
            }
            DataType::Decimal128(p as u8, s as i8)
        }
        SqlType::String(_)
        | SqlType::Varchar(_)
        | SqlType::CharVarying(_)
        | SqlType::CharacterVarying(_)
        | SqlType::Char(_)
        | SqlType::Character(_)
        | SqlType::Text => DataType::Utf8,
        SqlType::Timestamp(p, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            ts_precision(p)?;
            DataType::Timestamp(TimeUnit::Millisecond, None)
        }
        SqlType::Custom(name, modifiers) if name.to_string().eq_ignore_ascii_case("TIMESTAMP_LTZ") => {
            let p = modifiers
                .first()
                .map(|m| m.parse::<u64>())
                .transpose()
                .map_err(|_| "TIMESTAMP_LTZ takes a precision, as in TIMESTAMP_LTZ(3)".to_string())?;
            ts_precision(&p)?;
            DataType::Timestamp(TimeUnit::Millisecond, Some(tz.into()))
        }
        other => {
            return Err(format!("type {other} is not supported; supported types are {SUPPORTED_TYPES}"));
        }
    })
}

/// The Flink name of an Arrow type, for messages and `explain`.
pub fn flink_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP(3)".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP_LTZ(3)".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Null => "NULL".into(),
        other => format!("{other}"),
    }
}

/// Whether Flink can assign a value of type `from` to a column of type `to`
/// implicitly (INSERT INTO). Numeric widening, decimal, string and timestamp
/// conversions are allowed; the engine inserts a cast.
pub fn is_assignable(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    if from == to || matches!(from, Null) {
        return true;
    }
    let numeric = |t: &DataType| matches!(t, Int8 | Int16 | Int32 | Int64 | Float32 | Float64 | Decimal128(_, _));
    match (from, to) {
        (a, b) if numeric(a) && numeric(b) => true,
        (Timestamp(_, _), Timestamp(_, _)) => true,
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => true,
        _ => false,
    }
}
