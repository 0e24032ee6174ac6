//! Typed access to the columns of a batch, for writers of text.

use std::fmt;

use arrow::array::{
    Array, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array,
    Int64Array, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

use crate::types::ColType;

/// One column of a batch, downcast to its concrete array.
pub enum Col<'a> {
    Boolean(&'a BooleanArray),
    Int8(&'a Int8Array),
    Int16(&'a Int16Array),
    Int32(&'a Int32Array),
    Int64(&'a Int64Array),
    Float32(&'a Float32Array),
    Float64(&'a Float64Array),
    Decimal(&'a Decimal128Array, i32),
    Utf8(&'a StringArray),
    Date(&'a Date32Array),
    Timestamp(&'a TimestampMillisecondArray),
    TimestampLtz(&'a TimestampMillisecondArray),
    /// An ARRAY or MAP column (a `ListArray` or `MapArray`).
    Nested(&'a dyn Array),
}

impl Col<'_> {
    /// Whether the value at `row` is NULL.
    #[inline]
    pub fn is_null(&self, row: usize) -> bool {
        match self {
            Col::Boolean(a) => a.is_null(row),
            Col::Int8(a) => a.is_null(row),
            Col::Int16(a) => a.is_null(row),
            Col::Int32(a) => a.is_null(row),
            Col::Int64(a) => a.is_null(row),
            Col::Float32(a) => a.is_null(row),
            Col::Float64(a) => a.is_null(row),
            Col::Decimal(a, _) => a.is_null(row),
            Col::Utf8(a) => a.is_null(row),
            Col::Date(a) => a.is_null(row),
            Col::Timestamp(a) | Col::TimestampLtz(a) => a.is_null(row),
            Col::Nested(a) => a.is_null(row),
        }
    }
}

/// A batch that does not have the columns its table declares. The engine
/// builds every batch against the table's schema, so this is a bug; the
/// caller adds the table's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnsError {
    /// The batch has `batch` columns, the table `table`.
    Count { batch: usize, table: usize },
    /// Column `column` (1-based) has another Arrow type than the table declares.
    Type { column: usize, arrow: DataType, declared: ColType },
}

impl fmt::Display for ColumnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnsError::Count { batch, table } => {
                write!(f, "a batch has {batch} columns but the table has {table}")
            }
            ColumnsError::Type { column, arrow, declared } => write!(
                f,
                "column {column} of a batch has Arrow type {arrow} but the table declares {}",
                declared.sql_name()
            ),
        }
    }
}

impl std::error::Error for ColumnsError {}

/// Downcasts every column of `batch` to the array type its `ColType` implies.
pub fn columns<'a>(batch: &'a RecordBatch, types: &[ColType]) -> Result<Vec<Col<'a>>, ColumnsError> {
    if batch.num_columns() != types.len() {
        return Err(ColumnsError::Count { batch: batch.num_columns(), table: types.len() });
    }
    batch
        .columns()
        .iter()
        .zip(types)
        .enumerate()
        .map(|(i, (array, t))| {
            col_as(array.as_ref(), *t).ok_or_else(|| ColumnsError::Type {
                column: i + 1,
                arrow: array.data_type().clone(),
                declared: *t,
            })
        })
        .collect()
}

/// `array` as a column of type `t`, if it is one.
pub fn col_as(array: &dyn Array, t: ColType) -> Option<Col<'_>> {
    let any = array.as_any();
    match t {
        ColType::Boolean => any.downcast_ref().map(Col::Boolean),
        ColType::Int8 => any.downcast_ref().map(Col::Int8),
        ColType::Int16 => any.downcast_ref().map(Col::Int16),
        ColType::Int32 => any.downcast_ref().map(Col::Int32),
        ColType::Int64 => any.downcast_ref().map(Col::Int64),
        ColType::Float32 => any.downcast_ref().map(Col::Float32),
        ColType::Float64 => any.downcast_ref().map(Col::Float64),
        ColType::Decimal { scale, .. } => any.downcast_ref().map(|a| Col::Decimal(a, i32::from(scale))),
        ColType::Utf8 => any.downcast_ref().map(Col::Utf8),
        ColType::Date => any.downcast_ref().map(Col::Date),
        ColType::Timestamp => any.downcast_ref().map(Col::Timestamp),
        ColType::TimestampLtz => any.downcast_ref().map(Col::TimestampLtz),
        ColType::Nested => {
            (ColType::from_arrow(array.data_type()) == Some(ColType::Nested)).then_some(Col::Nested(array))
        }
    }
}

/// `array` as a column of its own type, if Sluice supports it.
pub fn col_of(array: &dyn Array) -> Option<Col<'_>> {
    col_as(array, ColType::from_arrow(array.data_type())?)
}
