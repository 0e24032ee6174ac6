//! Flink SQL types and their Arrow representation.
//!
//! | Flink | Arrow |
//! | --- | --- |
//! | BOOLEAN | Boolean |
//! | TINYINT | Int8 |
//! | SMALLINT | Int16 |
//! | INT, INTEGER | Int32 |
//! | BIGINT | Int64 |
//! | FLOAT | Float32 |
//! | DOUBLE | Float64 |
//! | DECIMAL(p, s) | Decimal128(p, s) |
//! | STRING, VARCHAR(n), CHAR(n) | Utf8 |
//! | DATE | Date32 |
//! | TIMESTAMP(p), p <= 3 | Timestamp(Millisecond, None) |
//! | TIMESTAMP_LTZ(p), TIMESTAMP(p) WITH LOCAL TIME ZONE, p <= 3 | Timestamp(Millisecond, Some(local time zone)) |
//! | ARRAY<T> | List(element: T, nullable) |
//! | MAP<K, V> | Map(entries: Struct(key: K not null, value: V nullable), unsorted) |

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use sqlparser::ast::{ArrayElemTypeDef, DataType as SqlType, ExactNumberInfo, TimezoneInfo};

use crate::error::TypeError;

/// The types Sluice supports, as the README lists them.
pub const SUPPORTED_TYPES: &str = "BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, DECIMAL(p,s), STRING, VARCHAR(n), DATE, TIMESTAMP(3), TIMESTAMP_LTZ(3), ARRAY<T>, MAP<K, V>";

/// The Arrow type of `ARRAY<element>`.
pub fn array_of(element: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("element", element, true)))
}

/// The Arrow type of `MAP<key, value>`.
pub fn map_of(key: DataType, value: DataType) -> DataType {
    let entries = Fields::from(vec![Field::new("key", key, false), Field::new("value", value, true)]);
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
}

/// The key and value fields of a MAP type.
pub fn map_entries(t: &DataType) -> Option<(&Field, &Field)> {
    match t {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => Some((&kv[0], &kv[1])),
            _ => None,
        },
        _ => None,
    }
}

/// Maps a SQL type to its Arrow type. `tz` is the session's `table.local-time-zone`,
/// which TIMESTAMP_LTZ values carry so that functions see local time.
pub fn to_arrow(t: &SqlType, tz: &str) -> Result<DataType, TypeError> {
    let ts_precision = |p: &Option<u64>| -> Result<(), TypeError> {
        match p {
            None | Some(0..=3) => Ok(()),
            Some(p) => Err(TypeError::TimestampPrecision { precision: *p }),
        }
    };
    Ok(match t {
        SqlType::Boolean | SqlType::Bool => DataType::Boolean,
        SqlType::TinyInt(None) => DataType::Int8,
        SqlType::SmallInt(None) => DataType::Int16,
        SqlType::Int(_) | SqlType::Integer(_) => DataType::Int32,
        SqlType::BigInt(_) => DataType::Int64,
        // Flink's FLOAT takes no precision, and Flink 2.3 refuses REAL
        // ("Type is not supported: REAL").
        SqlType::Float(ExactNumberInfo::None) => DataType::Float32,
        SqlType::Double(_) | SqlType::DoublePrecision | SqlType::Float64 => DataType::Float64,
        SqlType::Decimal(info) | SqlType::Numeric(info) | SqlType::Dec(info) => {
            let (p, s) = match info {
                ExactNumberInfo::None => (10, 0),
                ExactNumberInfo::Precision(p) => (*p, 0),
                ExactNumberInfo::PrecisionAndScale(p, s) => (*p, u64::try_from(*s).unwrap_or(0)),
            };
            if !(1..=38).contains(&p) || s > p {
                return Err(TypeError::DecimalRange { precision: p, scale: s });
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
        SqlType::Date => DataType::Date32,
        SqlType::Timestamp(p, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            ts_precision(p)?;
            DataType::Timestamp(TimeUnit::Millisecond, None)
        }
        SqlType::Custom(name, modifiers) if name.to_string().eq_ignore_ascii_case("TIMESTAMP_LTZ") => {
            let p = modifiers.first().map(|m| m.parse::<u64>()).transpose().map_err(TypeError::LtzPrecision)?;
            ts_precision(&p)?;
            DataType::Timestamp(TimeUnit::Millisecond, Some(tz.into()))
        }
        SqlType::Array(ArrayElemTypeDef::AngleBracket(element)) => array_of(to_arrow(element, tz)?),
        SqlType::Map(key, value) => map_of(to_arrow(key, tz)?, to_arrow(value, tz)?),
        other => {
            return Err(TypeError::Unsupported { name: other.to_string() });
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
        DataType::List(f) | DataType::LargeList(f) => format!("ARRAY<{}>", flink_name(f.data_type())),
        t @ DataType::Map(_, _) => match map_entries(t) {
            Some((k, v)) => format!("MAP<{}, {}>", flink_name(k.data_type()), flink_name(v.data_type())),
            None => format!("{t}"),
        },
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
        // An ARRAY of another element type or field name (`ARRAY[...]`'s).
        (List(a), List(b)) => is_assignable(a.data_type(), b.data_type()),
        (a @ Map(_, _), b @ Map(_, _)) => match (map_entries(a), map_entries(b)) {
            (Some((ak, av)), Some((bk, bv))) => {
                is_assignable(ak.data_type(), bk.data_type()) && is_assignable(av.data_type(), bv.data_type())
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::error::Error;

    use sqlparser::ast::{Ident, ObjectName};

    use super::*;

    #[test]
    fn an_unreadable_ltz_precision_keeps_its_cause() {
        let t = SqlType::Custom(ObjectName::from(vec![Ident::new("TIMESTAMP_LTZ")]), vec!["p".into()]);
        let e = to_arrow(&t, "UTC").unwrap_err();
        assert!(matches!(e, TypeError::LtzPrecision(_)), "{e:?}");
        assert_eq!(e.source().map(|s| s.to_string()).as_deref(), Some("invalid digit found in string"));
    }

    #[test]
    fn arrays_and_maps_nest() {
        let mut p = sqlparser::parser::Parser::new(&crate::dialect::FlinkDialect)
            .try_with_sql("MAP<STRING, ARRAY<INT>>")
            .unwrap();
        let t = to_arrow(&p.parse_data_type().unwrap(), "UTC").unwrap();
        assert_eq!(t, map_of(DataType::Utf8, array_of(DataType::Int32)));
        assert_eq!(flink_name(&t), "MAP<STRING, ARRAY<INT>>");
    }

    #[test]
    fn type_errors_carry_their_values() {
        let t = SqlType::Timestamp(Some(6), TimezoneInfo::None);
        assert_eq!(to_arrow(&t, "UTC"), Err(TypeError::TimestampPrecision { precision: 6 }));
        let t = SqlType::Decimal(ExactNumberInfo::PrecisionAndScale(40, 2));
        assert_eq!(to_arrow(&t, "UTC"), Err(TypeError::DecimalRange { precision: 40, scale: 2 }));
    }
}
