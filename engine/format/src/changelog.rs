//! Row kinds of an updating stream, as Flink's `RowKind`, and how a batch
//! carries them.
//!
//! Invariants:
//! - a batch of an append-only relation has exactly the relation's columns, and
//!   every row is an insert;
//! - a batch of an updating relation has the relation's columns and then one
//!   trailing, non-null Int8 column named [`ROW_KIND_COLUMN`] holding each row's
//!   [`RowKind`] byte (Flink's values: 0 `+I`, 1 `-U`, 2 `+U`, 3 `-D`);
//! - a `-U` is always immediately followed, in the same stream, by the `+U`
//!   that replaces it when the producer emits both (retract mode).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int8Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

/// The name of the trailing column with each row's kind.
pub const ROW_KIND_COLUMN: &str = "$row_kind";

/// The kind of change a row is, with Flink's byte values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum RowKind {
    Insert = 0,
    UpdateBefore = 1,
    UpdateAfter = 2,
    Delete = 3,
}

impl RowKind {
    /// Flink's short string: `+I`, `-U`, `+U`, `-D`.
    pub fn short(self) -> &'static str {
        match self {
            RowKind::Insert => "+I",
            RowKind::UpdateBefore => "-U",
            RowKind::UpdateAfter => "+U",
            RowKind::Delete => "-D",
        }
    }

    pub fn from_byte(b: i8) -> Option<RowKind> {
        Some(match b {
            0 => RowKind::Insert,
            1 => RowKind::UpdateBefore,
            2 => RowKind::UpdateAfter,
            3 => RowKind::Delete,
            _ => return None,
        })
    }

    /// Whether the row adds to the relation (`+I`, `+U`) rather than
    /// retracting from it (`-U`, `-D`).
    pub fn is_accumulate(self) -> bool {
        matches!(self, RowKind::Insert | RowKind::UpdateAfter)
    }
}

/// Whether a batch carries row kinds (its last column is [`ROW_KIND_COLUMN`]).
pub fn has_kinds(batch: &RecordBatch) -> bool {
    batch.schema().fields().last().is_some_and(|f| f.name() == ROW_KIND_COLUMN)
}

/// The row kinds of a batch: its trailing kind column, or all inserts for a
/// batch without one.
pub fn kinds(batch: &RecordBatch) -> Vec<RowKind> {
    if has_kinds(batch) {
        let col = batch.column(batch.num_columns() - 1);
        if let Some(a) = col.as_any().downcast_ref::<Int8Array>() {
            return a.values().iter().map(|b| RowKind::from_byte(*b).unwrap_or(RowKind::Insert)).collect();
        }
    }
    vec![RowKind::Insert; batch.num_rows()]
}

/// Splits a batch into its data columns and its row kinds.
pub fn split(batch: &RecordBatch) -> (RecordBatch, Vec<RowKind>) {
    if !has_kinds(batch) {
        return (batch.clone(), vec![RowKind::Insert; batch.num_rows()]);
    }
    let kinds = kinds(batch);
    let n = batch.num_columns() - 1;
    let data = batch.project(&(0..n).collect::<Vec<_>>()).unwrap_or_else(|_| batch.clone());
    (data, kinds)
}

/// The field of the kind column.
pub fn kind_field() -> Field {
    Field::new(ROW_KIND_COLUMN, DataType::Int8, false)
}

/// A batch's data columns with a kind column appended.
pub fn attach(data: &RecordBatch, kinds: &[RowKind]) -> Result<RecordBatch, ArrowError> {
    let mut fields: Vec<Arc<Field>> = data.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(kind_field()));
    let mut columns: Vec<ArrayRef> = data.columns().to_vec();
    columns.push(kind_array(kinds));
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new_with_metadata(fields, data.schema().metadata().clone())),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(data.num_rows())),
    )
}

pub fn kind_array(kinds: &[RowKind]) -> ArrayRef {
    Arc::new(Int8Array::from(kinds.iter().map(|k| *k as i8).collect::<Vec<_>>()))
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;

    use super::*;

    #[test]
    fn kinds_round_trip_through_a_batch() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let data = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3, 4]))]).unwrap();
        assert!(!has_kinds(&data));
        assert_eq!(kinds(&data), vec![RowKind::Insert; 4]);
        let ks = [RowKind::Insert, RowKind::UpdateBefore, RowKind::UpdateAfter, RowKind::Delete];
        let b = attach(&data, &ks).unwrap();
        assert!(has_kinds(&b));
        let (d, k) = split(&b);
        assert_eq!(d, data);
        assert_eq!(k, ks);
        assert_eq!(ks.iter().map(|k| k.short()).collect::<Vec<_>>(), ["+I", "-U", "+U", "-D"]);
    }
}
