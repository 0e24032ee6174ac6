//! Flink's `Row.toString()` of a row, as the print sink shows it:
//! `+I[1, abc, 2024-01-01T00:00:10, null]` — Java `toString` of each external
//! value (`LocalDateTime` for TIMESTAMP, `Instant` for TIMESTAMP_LTZ, the
//! decimal with its full scale), strings unquoted; ARRAY and MAP as
//! [`crate::nested`] shows them.

use arrow::record_batch::RecordBatch;

use crate::changelog;
use crate::columns::{Col, ColumnsError, columns};
use crate::nested::push_row_string;
use crate::number::{push_big_decimal, push_i64, push_java_double, push_java_float};
use crate::time::{push_instant, push_local_date, push_local_date_time};
use crate::types::ColType;

/// Writes batches as lines of `Row.toString()`, each after a fixed prefix.
pub struct RowStringEncoder {
    types: Vec<ColType>,
    prefix: Vec<u8>,
    scratch: String,
}

impl RowStringEncoder {
    /// `prefix` is written before each row (the print sink's identifier).
    pub fn new(types: Vec<ColType>, prefix: String) -> Self {
        RowStringEncoder { types, prefix: prefix.into_bytes(), scratch: String::new() }
    }

    /// Appends one line per row of `batch` to `out`; a batch of an updating
    /// stream (with a kind column, see [`crate::changelog`]) shows each row's
    /// kind (`-U[...]`), any other shows `+I[...]`.
    pub fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ColumnsError> {
        let (batch, kinds) = changelog::split(batch);
        let cols = columns(&batch, &self.types)?;
        for (row, kind) in kinds.iter().enumerate() {
            out.extend_from_slice(&self.prefix);
            out.extend_from_slice(kind.short().as_bytes());
            out.push(b'[');
            for (i, c) in cols.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                if c.is_null(row) {
                    out.extend_from_slice(b"null");
                    continue;
                }
                match c {
                    Col::Boolean(a) => out.extend_from_slice(if a.value(row) { b"true" } else { b"false" }),
                    Col::Int8(a) => push_i64(out, i64::from(a.value(row))),
                    Col::Int16(a) => push_i64(out, i64::from(a.value(row))),
                    Col::Int32(a) => push_i64(out, i64::from(a.value(row))),
                    Col::Int64(a) => push_i64(out, a.value(row)),
                    Col::Float32(a) => push_java_float(out, a.value(row), &mut self.scratch),
                    Col::Float64(a) => push_java_double(out, a.value(row), &mut self.scratch),
                    Col::Decimal(a, scale) => push_big_decimal(out, a.value(row), *scale),
                    Col::Utf8(a) => out.extend_from_slice(a.value(row).as_bytes()),
                    Col::Date(a) => push_local_date(out, a.value(row)),
                    Col::Timestamp(a) => push_local_date_time(out, a.value(row)),
                    Col::TimestampLtz(a) => push_instant(out, a.value(row)),
                    Col::Nested(a) => push_row_string(out, *a, row, &mut self.scratch),
                }
            }
            out.extend_from_slice(b"]\n");
        }
        Ok(())
    }
}
