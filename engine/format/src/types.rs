//! The column types whose text forms this crate knows (those connectors read
//! and write), and their Arrow forms.

use arrow::datatypes::{DataType, Field, TimeUnit};

/// A column type Sluice supports, as the engine maps SQL types to Arrow:
/// BOOLEAN→Boolean, TINYINT→Int8, SMALLINT→Int16, INT→Int32, BIGINT→Int64,
/// FLOAT→Float32, DOUBLE→Float64,
/// DECIMAL(p,s)→Decimal128(p,s), STRING/VARCHAR→Utf8, DATE→Date32,
/// TIMESTAMP(3)→Timestamp(ms), TIMESTAMP_LTZ(3)→Timestamp(ms, tz);
/// ARRAY<T>→List(T) and MAP<K, V>→Map(K, V) of those are [`ColType::Nested`],
/// which only connectors that say so accept ([`column_types_nested`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    Utf8,
    Date,
    Timestamp,
    TimestampLtz,
    /// An ARRAY or MAP column, whose element types are supported types
    /// (nested ones included); writers read its Arrow type.
    Nested,
}

/// The types of [`ColType`], as error messages list them.
pub const SUPPORTED_TYPES: &str = "BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, DECIMAL(p, s), STRING/VARCHAR, DATE, TIMESTAMP(3) and TIMESTAMP_LTZ(3)";

impl ColType {
    /// The column type of an Arrow type, if Sluice supports it.
    pub fn from_arrow(dt: &DataType) -> Option<ColType> {
        Some(match dt {
            DataType::Boolean => ColType::Boolean,
            DataType::Int8 => ColType::Int8,
            DataType::Int16 => ColType::Int16,
            DataType::Int32 => ColType::Int32,
            DataType::Int64 => ColType::Int64,
            DataType::Float32 => ColType::Float32,
            DataType::Float64 => ColType::Float64,
            DataType::Decimal128(p, s) => ColType::Decimal { precision: *p, scale: *s },
            DataType::Utf8 => ColType::Utf8,
            DataType::Date32 => ColType::Date,
            DataType::Timestamp(TimeUnit::Millisecond, None) => ColType::Timestamp,
            DataType::Timestamp(TimeUnit::Millisecond, Some(_)) => ColType::TimestampLtz,
            DataType::List(f) => {
                ColType::from_arrow(f.data_type())?;
                ColType::Nested
            }
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => {
                    ColType::from_arrow(kv[0].data_type())?;
                    ColType::from_arrow(kv[1].data_type())?;
                    ColType::Nested
                }
                _ => return None,
            },
            _ => return None,
        })
    }

    /// The type's SQL name, for messages.
    pub fn sql_name(self) -> String {
        match self {
            ColType::Boolean => "BOOLEAN".into(),
            ColType::Int8 => "TINYINT".into(),
            ColType::Int16 => "SMALLINT".into(),
            ColType::Int32 => "INT".into(),
            ColType::Int64 => "BIGINT".into(),
            ColType::Float32 => "FLOAT".into(),
            ColType::Float64 => "DOUBLE".into(),
            ColType::Decimal { precision, scale } => format!("DECIMAL({precision}, {scale})"),
            ColType::Utf8 => "STRING".into(),
            ColType::Date => "DATE".into(),
            ColType::Timestamp => "TIMESTAMP(3)".into(),
            ColType::TimestampLtz => "TIMESTAMP_LTZ(3)".into(),
            ColType::Nested => "ARRAY or MAP".into(),
        }
    }
}

/// The SQL-ish name of an Arrow type, for messages about unsupported columns.
pub fn describe_arrow(dt: &DataType) -> String {
    match dt {
        DataType::List(f) => return format!("ARRAY<{}>", describe_arrow(f.data_type())),
        DataType::Map(entries, _) => {
            if let DataType::Struct(kv) = entries.data_type()
                && kv.len() == 2
            {
                return format!("MAP<{}, {}>", describe_arrow(kv[0].data_type()), describe_arrow(kv[1].data_type()));
            }
        }
        _ => {}
    }
    match ColType::from_arrow(dt) {
        Some(t) => t.sql_name(),
        None => match dt {
            DataType::Timestamp(unit, _) => format!("TIMESTAMP with unit {unit:?}"),
            DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTES".into(),
            other => format!("{other}"),
        },
    }
}

/// A column whose type a connector cannot read or write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedType {
    pub column: String,
    /// The column's type as [`describe_arrow`] names it.
    pub sql_type: String,
    pub connector: String,
}

impl std::fmt::Display for UnsupportedType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "column `{}` has type {}, which connector '{}' does not support; supported types are {SUPPORTED_TYPES}{}",
            self.column,
            self.sql_type,
            self.connector,
            if self.sql_type.starts_with("ARRAY") || self.sql_type.starts_with("MAP") {
                ", and ARRAY<T> and MAP<K, V> of them only in the 'json' format and the 'print' connector"
            } else {
                ""
            }
        )
    }
}

impl std::error::Error for UnsupportedType {}

/// The column types of a schema, or an error naming the first column whose
/// type the connector cannot handle (an ARRAY or MAP column among them).
pub fn column_types(fields: &[std::sync::Arc<Field>], connector: &str) -> Result<Vec<ColType>, UnsupportedType> {
    types_of(fields, connector, false)
}

/// [`column_types`] for a connector or format that also reads or writes
/// ARRAY and MAP columns (`json`, `print`).
pub fn column_types_nested(fields: &[std::sync::Arc<Field>], connector: &str) -> Result<Vec<ColType>, UnsupportedType> {
    types_of(fields, connector, true)
}

fn types_of(fields: &[std::sync::Arc<Field>], connector: &str, nested: bool) -> Result<Vec<ColType>, UnsupportedType> {
    fields
        .iter()
        .map(|f| {
            ColType::from_arrow(f.data_type()).filter(|t| nested || *t != ColType::Nested).ok_or_else(|| {
                UnsupportedType {
                    column: f.name().clone(),
                    sql_type: describe_arrow(f.data_type()),
                    connector: connector.to_string(),
                }
            })
        })
        .collect()
}
