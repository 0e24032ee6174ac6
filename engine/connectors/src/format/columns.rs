//! Typed access to the columns of a batch (for writers) and column builders
//! (for readers and generators).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Decimal128Array, Decimal128Builder, Float64Array, Float64Builder,
    Int32Array, Int32Builder, Int64Array, Int64Builder, StringArray, StringBuilder, TimestampMillisecondArray,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::ConnectorError;
use crate::types::ColType;

/// One column of a batch, downcast to its concrete array.
pub(crate) enum Col<'a> {
    Boolean(&'a BooleanArray),
    Int32(&'a Int32Array),
    Int64(&'a Int64Array),
    Float64(&'a Float64Array),
    Decimal(&'a Decimal128Array, i32),
    Utf8(&'a StringArray),
    Timestamp(&'a TimestampMillisecondArray),
    TimestampLtz(&'a TimestampMillisecondArray),
}

impl Col<'_> {
    #[inline]
    pub(crate) fn is_null(&self, row: usize) -> bool {
        match self {
            Col::Boolean(a) => a.is_null(row),
            Col::Int32(a) => a.is_null(row),
            Col::Int64(a) => a.is_null(row),
            Col::Float64(a) => a.is_null(row),
            Col::Decimal(a, _) => a.is_null(row),
            Col::Utf8(a) => a.is_null(row),
            Col::Timestamp(a) | Col::TimestampLtz(a) => a.is_null(row),
        }
    }
}

/// Downcasts every column of `batch` to the array type its `ColType` implies.
pub(crate) fn columns<'a>(
    table: &str,
    batch: &'a RecordBatch,
    types: &[ColType],
) -> Result<Vec<Col<'a>>, ConnectorError> {
    if batch.num_columns() != types.len() {
        return Err(ConnectorError::Arrow {
            table: table.to_string(),
            message: format!("a batch has {} columns but the table has {}", batch.num_columns(), types.len()),
        });
    }
    batch
        .columns()
        .iter()
        .zip(types)
        .enumerate()
        .map(|(i, (array, t))| {
            let any = array.as_any();
            let col = match t {
                ColType::Boolean => any.downcast_ref().map(Col::Boolean),
                ColType::Int32 => any.downcast_ref().map(Col::Int32),
                ColType::Int64 => any.downcast_ref().map(Col::Int64),
                ColType::Float64 => any.downcast_ref().map(Col::Float64),
                ColType::Decimal { scale, .. } => any.downcast_ref().map(|a| Col::Decimal(a, i32::from(*scale))),
                ColType::Utf8 => any.downcast_ref().map(Col::Utf8),
                ColType::Timestamp => any.downcast_ref().map(Col::Timestamp),
                ColType::TimestampLtz => any.downcast_ref().map(Col::TimestampLtz),
            };
            col.ok_or_else(|| ConnectorError::Arrow {
                table: table.to_string(),
                message: format!(
                    "column {} of a batch has Arrow type {} but the table declares {}",
                    i + 1,
                    array.data_type(),
                    t.sql_name()
                ),
            })
        })
        .collect()
}

/// A builder for one column of any supported type.
pub(crate) enum ColBuilder {
    Boolean(BooleanBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder),
    Utf8(StringBuilder),
    Timestamp(TimestampMillisecondBuilder),
}

impl ColBuilder {
    pub(crate) fn new(t: ColType) -> ColBuilder {
        match t {
            ColType::Boolean => ColBuilder::Boolean(BooleanBuilder::new()),
            ColType::Int32 => ColBuilder::Int32(Int32Builder::new()),
            ColType::Int64 => ColBuilder::Int64(Int64Builder::new()),
            ColType::Float64 => ColBuilder::Float64(Float64Builder::new()),
            ColType::Decimal { .. } => ColBuilder::Decimal(Decimal128Builder::new()),
            ColType::Utf8 => ColBuilder::Utf8(StringBuilder::new()),
            ColType::Timestamp | ColType::TimestampLtz => ColBuilder::Timestamp(TimestampMillisecondBuilder::new()),
        }
    }

    pub(crate) fn append_null(&mut self) {
        match self {
            ColBuilder::Boolean(b) => b.append_null(),
            ColBuilder::Int32(b) => b.append_null(),
            ColBuilder::Int64(b) => b.append_null(),
            ColBuilder::Float64(b) => b.append_null(),
            ColBuilder::Decimal(b) => b.append_null(),
            ColBuilder::Utf8(b) => b.append_null(),
            ColBuilder::Timestamp(b) => b.append_null(),
        }
    }

    fn finish(&mut self, data_type: &DataType) -> Result<ArrayRef, String> {
        Ok(match self {
            ColBuilder::Boolean(b) => Arc::new(b.finish()),
            ColBuilder::Int32(b) => Arc::new(b.finish()),
            ColBuilder::Int64(b) => Arc::new(b.finish()),
            ColBuilder::Float64(b) => Arc::new(b.finish()),
            ColBuilder::Decimal(b) => {
                let (p, s) = match data_type {
                    DataType::Decimal128(p, s) => (*p, *s),
                    _ => return Err(format!("decimal builder for a column of type {data_type}")),
                };
                Arc::new(b.finish().with_precision_and_scale(p, s).map_err(|e| e.to_string())?)
            }
            ColBuilder::Utf8(b) => Arc::new(b.finish()),
            ColBuilder::Timestamp(b) => Arc::new(b.finish().with_data_type(data_type.clone())),
        })
    }
}

/// Builders for all the columns of a schema, filled row by row.
pub(crate) struct RowBuilders {
    pub(crate) cols: Vec<ColBuilder>,
    rows: usize,
}

impl RowBuilders {
    pub(crate) fn new(types: &[ColType]) -> Self {
        RowBuilders { cols: types.iter().map(|t| ColBuilder::new(*t)).collect(), rows: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    /// Records that one more complete row was appended to every builder.
    pub(crate) fn row_done(&mut self) {
        self.rows += 1;
    }

    pub(crate) fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, String> {
        let arrays = self
            .cols
            .iter_mut()
            .zip(schema.fields())
            .map(|(b, f)| b.finish(f.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = std::mem::take(&mut self.rows);
        RecordBatch::try_new_with_options(schema.clone(), arrays, &RecordBatchOptions::new().with_row_count(Some(rows)))
            .map_err(|e| e.to_string())
    }
}

/// A converted value, ready to append to its column's builder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    Null,
    Boolean(bool),
    Int32(i32),
    Int64(i64),
    Float64(f64),
    Decimal(i128),
    Utf8(std::borrow::Cow<'a, str>),
    Timestamp(i64),
}

impl ColBuilder {
    /// Appends a value converted for this builder's type (a mismatch appends NULL;
    /// converters never produce one).
    pub(crate) fn append(&mut self, v: &Val<'_>) {
        match (self, v) {
            (ColBuilder::Boolean(b), Val::Boolean(x)) => b.append_value(*x),
            (ColBuilder::Int32(b), Val::Int32(x)) => b.append_value(*x),
            (ColBuilder::Int64(b), Val::Int64(x)) => b.append_value(*x),
            (ColBuilder::Float64(b), Val::Float64(x)) => b.append_value(*x),
            (ColBuilder::Decimal(b), Val::Decimal(x)) => b.append_value(*x),
            (ColBuilder::Utf8(b), Val::Utf8(x)) => b.append_value(x),
            (ColBuilder::Timestamp(b), Val::Timestamp(x)) => b.append_value(*x),
            (b, _) => b.append_null(),
        }
    }
}

/// Java's `Boolean.parseBoolean`: "true" in any case is true, anything else false.
pub(crate) fn java_parse_boolean(s: &str) -> bool {
    s.eq_ignore_ascii_case("true")
}

/// Java's `Double.parseDouble` (after trimming): decimal and exponent forms,
/// `NaN`, `[+-]Infinity`, and an optional `d`/`f` suffix.
pub(crate) fn java_parse_double(s: &str) -> Option<f64> {
    let s = s.trim();
    match s {
        "NaN" | "+NaN" | "-NaN" => return Some(f64::NAN),
        "Infinity" | "+Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let s = s.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(s);
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')) {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Parses a decimal number (`[+-]digits[.digits][e[+-]digits]`) and rescales it
/// to `scale` with HALF_UP rounding, as Flink's `DecimalData.fromBigDecimal`
/// does. `Ok(None)` means the value does not fit `precision` (Flink makes it
/// NULL).
pub(crate) fn parse_decimal(s: &str, precision: u8, scale: i8) -> Result<Option<i128>, String> {
    let bad = || format!("'{s}' is not a decimal number");
    let t = s.trim();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|c| c.is_ascii_digit())
        || !frac_part.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    // value = digits × 10^(exp - frac_len); we want unscaled = value × 10^scale.
    let shift = exp - frac_part.len() as i32 + i32::from(scale);
    let limit = 10i128.pow(u32::from(precision.min(38)));
    let mut unscaled: i128 = 0;
    let mut round_digit: u8 = 0; // first dropped digit, for HALF_UP
    let digits = int_part.bytes().chain(frac_part.bytes());
    let total = int_part.len() + frac_part.len();
    // Keep total + shift digits (when shift < 0 the last -shift digits are dropped).
    let keep = total as i64 + i64::from(shift.min(0));
    for (i, c) in digits.enumerate() {
        let d = c - b'0';
        if (i as i64) < keep {
            unscaled = match unscaled.checked_mul(10).and_then(|u| u.checked_add(i128::from(d))) {
                Some(u) if u < limit * 10 => u,
                _ => return Ok(None),
            };
        } else if i as i64 == keep {
            round_digit = d;
        }
    }
    for _ in 0..shift.max(0) {
        unscaled = match unscaled.checked_mul(10) {
            Some(u) if u < limit * 10 => u,
            _ => return Ok(None),
        };
    }
    if round_digit >= 5 {
        unscaled += 1;
    }
    if unscaled >= limit {
        return Ok(None);
    }
    Ok(Some(if neg { -unscaled } else { unscaled }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_and_round_half_up() {
        assert_eq!(parse_decimal("12.5", 10, 2), Ok(Some(1250)));
        assert_eq!(parse_decimal("1.005", 5, 2), Ok(Some(101)));
        assert_eq!(parse_decimal("-1.005", 5, 2), Ok(Some(-101)));
        assert_eq!(parse_decimal("1.004", 5, 2), Ok(Some(100)));
        assert_eq!(parse_decimal("1E+2", 5, 2), Ok(Some(10000)));
        assert_eq!(parse_decimal("1e-10", 20, 10), Ok(Some(1)));
        assert_eq!(parse_decimal(" 7 ", 3, 0), Ok(Some(7)));
        assert_eq!(parse_decimal(".5", 3, 1), Ok(Some(5)));
        assert_eq!(parse_decimal("123456.789", 5, 2), Ok(None));
        assert_eq!(parse_decimal("999.995", 5, 2), Ok(None));
        assert!(parse_decimal("abc", 5, 2).is_err());
        assert!(parse_decimal("", 5, 2).is_err());
    }

    #[test]
    fn doubles_parse_like_java() {
        assert_eq!(java_parse_double(" 1.5 "), Some(1.5));
        assert_eq!(java_parse_double("1e3"), Some(1000.0));
        assert_eq!(java_parse_double("2d"), Some(2.0));
        assert_eq!(java_parse_double("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(java_parse_double("NaN").is_some_and(f64::is_nan));
        assert_eq!(java_parse_double("inf"), None);
        assert_eq!(java_parse_double(""), None);
    }
}
