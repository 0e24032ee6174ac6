//! Column builders (for readers and generators), and typed access to the
//! columns of a batch (for writers; the view itself is `sluice-format`'s).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder, Int8Builder,
    Int16Builder, Int32Builder, Int64Builder, PrimitiveArray, PrimitiveBuilder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{ArrowPrimitiveType, DataType, Field, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::{BatchError, ConnectorError};
use sluice_format::types::ColType;

pub(crate) use sluice_format::columns::Col;

/// Downcasts every column of `batch` to the array type its `ColType` implies;
/// an error names the table.
pub(crate) fn columns<'a>(
    table: &str,
    batch: &'a RecordBatch,
    types: &[ColType],
) -> Result<Vec<Col<'a>>, ConnectorError> {
    sluice_format::columns::columns(batch, types)
        .map_err(|e| ConnectorError::Batch { table: table.to_string(), source: e.into() })
}

/// A builder for one column of any supported type.
pub(crate) enum ColBuilder {
    Boolean(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder),
    Utf8(StringBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMillisecondBuilder),
    /// An ARRAY or MAP column (the `json` format only).
    Nested(Box<super::json::nested::NestedBuilder>),
}

impl ColBuilder {
    /// A builder for a column of type `t`, whose Arrow type is `data_type`.
    pub(crate) fn new(t: ColType, data_type: &DataType) -> ColBuilder {
        match t {
            ColType::Boolean => ColBuilder::Boolean(BooleanBuilder::new()),
            ColType::Int8 => ColBuilder::Int8(Int8Builder::new()),
            ColType::Int16 => ColBuilder::Int16(Int16Builder::new()),
            ColType::Int32 => ColBuilder::Int32(Int32Builder::new()),
            ColType::Int64 => ColBuilder::Int64(Int64Builder::new()),
            ColType::Float32 => ColBuilder::Float32(Float32Builder::new()),
            ColType::Float64 => ColBuilder::Float64(Float64Builder::new()),
            ColType::Decimal { .. } => ColBuilder::Decimal(Decimal128Builder::new()),
            ColType::Utf8 => ColBuilder::Utf8(StringBuilder::new()),
            ColType::Date => ColBuilder::Date(Date32Builder::new()),
            ColType::Timestamp | ColType::TimestampLtz => ColBuilder::Timestamp(TimestampMillisecondBuilder::new()),
            ColType::Nested => match super::json::nested::NestedBuilder::new(data_type) {
                Some(b) => ColBuilder::Nested(Box::new(b)),
                // `ColType::Nested` is only given for supported nested types.
                None => ColBuilder::Utf8(StringBuilder::new()),
            },
        }
    }

    pub(crate) fn append_null(&mut self) {
        match self {
            ColBuilder::Boolean(b) => b.append_null(),
            ColBuilder::Int8(b) => b.append_null(),
            ColBuilder::Int16(b) => b.append_null(),
            ColBuilder::Int32(b) => b.append_null(),
            ColBuilder::Float32(b) => b.append_null(),
            ColBuilder::Int64(b) => b.append_null(),
            ColBuilder::Float64(b) => b.append_null(),
            ColBuilder::Decimal(b) => b.append_null(),
            ColBuilder::Utf8(b) => b.append_null(),
            ColBuilder::Date(b) => b.append_null(),
            ColBuilder::Timestamp(b) => b.append_null(),
            ColBuilder::Nested(b) => b.append_null(),
        }
    }

    /// The column so far; the builder starts the next one with room for as
    /// many values (and string bytes), since batches are alike: growing from
    /// empty by doubling cost a csv source a few % of its time in reallocation
    /// and page faults.
    pub(crate) fn finish(&mut self, data_type: &DataType) -> Result<ArrayRef, BatchError> {
        Ok(match self {
            ColBuilder::Boolean(b) => {
                let a = b.finish();
                *b = BooleanBuilder::with_capacity(a.len());
                Arc::new(a)
            }
            ColBuilder::Int8(b) => Arc::new(finish_primitive(b)),
            ColBuilder::Int16(b) => Arc::new(finish_primitive(b)),
            ColBuilder::Int32(b) => Arc::new(finish_primitive(b)),
            ColBuilder::Float32(b) => Arc::new(finish_primitive(b)),
            ColBuilder::Int64(b) => Arc::new(finish_primitive(b)),
            ColBuilder::Float64(b) => Arc::new(finish_primitive(b)),
            ColBuilder::Decimal(b) => {
                let (p, s) = match data_type {
                    DataType::Decimal128(p, s) => (*p, *s),
                    _ => return Err(BatchError::DecimalBuilder(data_type.clone())),
                };
                Arc::new(finish_primitive(b).with_precision_and_scale(p, s)?)
            }
            ColBuilder::Utf8(b) => {
                let bytes = b.values_slice().len();
                let a = b.finish();
                *b = StringBuilder::with_capacity(a.len(), bytes);
                Arc::new(a)
            }
            ColBuilder::Date(b) => Arc::new(finish_primitive(b)),
            ColBuilder::Timestamp(b) => Arc::new(finish_primitive(b).with_data_type(data_type.clone())),
            ColBuilder::Nested(b) => b.finish()?,
        })
    }
}

/// A primitive builder's column; the builder keeps room for as many values.
fn finish_primitive<T: ArrowPrimitiveType>(b: &mut PrimitiveBuilder<T>) -> PrimitiveArray<T> {
    let a = b.finish();
    *b = PrimitiveBuilder::with_capacity(a.len());
    a
}

/// Builders for all the columns of a schema, filled row by row.
pub(crate) struct RowBuilders {
    pub(crate) cols: Vec<ColBuilder>,
    rows: usize,
}

impl RowBuilders {
    pub(crate) fn new(fields: &[Arc<Field>], types: &[ColType]) -> Self {
        let cols = types.iter().zip(fields).map(|(t, f)| ColBuilder::new(*t, f.data_type())).collect();
        RowBuilders { cols, rows: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    /// Appends a row of NULLs.
    pub(crate) fn append_null_row(&mut self) {
        self.cols.iter_mut().for_each(ColBuilder::append_null);
        self.rows += 1;
    }

    /// Records that one more complete row was appended to every builder.
    pub(crate) fn row_done(&mut self) {
        self.rows += 1;
    }

    pub(crate) fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, BatchError> {
        let arrays = self
            .cols
            .iter_mut()
            .zip(schema.fields())
            .map(|(b, f)| b.finish(f.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = std::mem::take(&mut self.rows);
        RecordBatch::try_new_with_options(schema.clone(), arrays, &RecordBatchOptions::new().with_row_count(Some(rows)))
            .map_err(BatchError::from)
    }
}

/// A converted value, ready to append to its column's builder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    Null,
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Decimal(i128),
    Utf8(std::borrow::Cow<'a, str>),
    /// Days since 1970-01-01.
    Date(i32),
    Timestamp(i64),
}

impl Val<'_> {
    /// The value without a borrow (a string is copied).
    pub(crate) fn into_owned(self) -> Val<'static> {
        match self {
            Val::Null => Val::Null,
            Val::Boolean(x) => Val::Boolean(x),
            Val::Int8(x) => Val::Int8(x),
            Val::Int16(x) => Val::Int16(x),
            Val::Int32(x) => Val::Int32(x),
            Val::Int64(x) => Val::Int64(x),
            Val::Float32(x) => Val::Float32(x),
            Val::Float64(x) => Val::Float64(x),
            Val::Decimal(x) => Val::Decimal(x),
            Val::Utf8(s) => Val::Utf8(std::borrow::Cow::Owned(s.into_owned())),
            Val::Date(x) => Val::Date(x),
            Val::Timestamp(x) => Val::Timestamp(x),
        }
    }
}

impl ColBuilder {
    /// Appends a value converted for this builder's type (a mismatch appends NULL;
    /// converters never produce one).
    pub(crate) fn append(&mut self, v: &Val<'_>) {
        match (self, v) {
            (ColBuilder::Boolean(b), Val::Boolean(x)) => b.append_value(*x),
            (ColBuilder::Int8(b), Val::Int8(x)) => b.append_value(*x),
            (ColBuilder::Int16(b), Val::Int16(x)) => b.append_value(*x),
            (ColBuilder::Int32(b), Val::Int32(x)) => b.append_value(*x),
            (ColBuilder::Float32(b), Val::Float32(x)) => b.append_value(*x),
            (ColBuilder::Int64(b), Val::Int64(x)) => b.append_value(*x),
            (ColBuilder::Float64(b), Val::Float64(x)) => b.append_value(*x),
            (ColBuilder::Decimal(b), Val::Decimal(x)) => b.append_value(*x),
            (ColBuilder::Utf8(b), Val::Utf8(x)) => b.append_value(x),
            (ColBuilder::Date(b), Val::Date(x)) => b.append_value(*x),
            (ColBuilder::Timestamp(b), Val::Timestamp(x)) => b.append_value(*x),
            (b, _) => b.append_null(),
        }
    }
}
