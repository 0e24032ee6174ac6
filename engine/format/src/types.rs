//! The column types whose text forms this crate knows (those connectors read
//! and write), and their Arrow forms.

use arrow::datatypes::{DataType, Field, TimeUnit};

/// A column type Sluice supports, as the engine maps SQL types to Arrow:
/// BOOLEAN→Boolean, INT→Int32, BIGINT→Int64, DOUBLE→Float64,
/// DECIMAL(p,s)→Decimal128(p,s), STRING/VARCHAR→Utf8,
/// TIMESTAMP(3)→Timestamp(ms), TIMESTAMP_LTZ(3)→Timestamp(ms, tz).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Boolean,
    Int32,
    Int64,
    Float64,
    Decimal { precision: u8, scale: i8 },
    Utf8,
    Timestamp,
    TimestampLtz,
}

/// The types of [`ColType`], as error messages list them.
pub const SUPPORTED_TYPES: &str =
    "BOOLEAN, INT, BIGINT, DOUBLE, DECIMAL(p, s), STRING/VARCHAR, TIMESTAMP(3) and TIMESTAMP_LTZ(3)";

impl ColType {
    /// The column type of an Arrow type, if Sluice supports it.
    pub fn from_arrow(dt: &DataType) -> Option<ColType> {
        Some(match dt {
            DataType::Boolean => ColType::Boolean,
            DataType::Int32 => ColType::Int32,
            DataType::Int64 => ColType::Int64,
            DataType::Float64 => ColType::Float64,
            DataType::Decimal128(p, s) => ColType::Decimal { precision: *p, scale: *s },
            DataType::Utf8 => ColType::Utf8,
            DataType::Timestamp(TimeUnit::Millisecond, None) => ColType::Timestamp,
            DataType::Timestamp(TimeUnit::Millisecond, Some(_)) => ColType::TimestampLtz,
            _ => return None,
        })
    }

    /// The type's SQL name, for messages.
    pub fn sql_name(self) -> String {
        match self {
            ColType::Boolean => "BOOLEAN".into(),
            ColType::Int32 => "INT".into(),
            ColType::Int64 => "BIGINT".into(),
            ColType::Float64 => "DOUBLE".into(),
            ColType::Decimal { precision, scale } => format!("DECIMAL({precision}, {scale})"),
            ColType::Utf8 => "STRING".into(),
            ColType::Timestamp => "TIMESTAMP(3)".into(),
            ColType::TimestampLtz => "TIMESTAMP_LTZ(3)".into(),
        }
    }
}

/// The SQL-ish name of an Arrow type, for messages about unsupported columns.
pub fn describe_arrow(dt: &DataType) -> String {
    match ColType::from_arrow(dt) {
        Some(t) => t.sql_name(),
        None => match dt {
            DataType::Int8 => "TINYINT".into(),
            DataType::Int16 => "SMALLINT".into(),
            DataType::Float32 => "FLOAT".into(),
            DataType::Date32 => "DATE".into(),
            DataType::Timestamp(unit, _) => format!("TIMESTAMP with unit {unit:?}"),
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
            "column `{}` has type {}, which connector '{}' does not support; supported types are {SUPPORTED_TYPES}",
            self.column, self.sql_type, self.connector
        )
    }
}

impl std::error::Error for UnsupportedType {}

/// The column types of a schema, or an error naming the first column whose
/// type the connector cannot handle.
pub fn column_types(fields: &[std::sync::Arc<Field>], connector: &str) -> Result<Vec<ColType>, UnsupportedType> {
    fields
        .iter()
        .map(|f| {
            ColType::from_arrow(f.data_type()).ok_or_else(|| UnsupportedType {
                column: f.name().clone(),
                sql_type: describe_arrow(f.data_type()),
                connector: connector.to_string(),
            })
        })
        .collect()
}
