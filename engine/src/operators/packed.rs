//! Rows kept packed in their state encoding, and output batches built from
//! them.
//!
//! A [`PackedRow`] is the bytes [`encode_row`] writes for a row, in one block:
//! packing a row from a batch ([`RowReader::pack`]) takes one allocation,
//! where a [`Row`] of values takes one per string as well, and a checkpoint
//! copies the bytes as they are. Two packed rows of one operator's columns are
//! equal exactly when their values are (the encoding of a value is unique).
//!
//! [`Emitted`] collects the rows an operator emits from packed rows (their
//! kinds, row numbers and bytes, copied one after another, no block per row)
//! and decodes them into an output batch in one pass over the bytes, each
//! value appended to its column's builder without becoming a [`Val`] first.
//!
//! [`encode_row`]: super::rows::encode_row
//! [`RowReader::pack`]: super::rows::RowReader::pack

use std::sync::Arc;

use arrow::array::NullBufferBuilder;
use arrow::array::{
    ArrayRef, BooleanBuilder, Decimal128Builder, Float64Builder, Int64Array, Int64Builder, StringArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use sluice_format::changelog::{self, RowKind};

use super::rows::{Row, decode_row};
use crate::error::OpError;
use crate::state::codec::{Reader, Writer};
use crate::state::value::{Val, block, finish_i64, to_array};

/// A row in its state encoding ([`encode_row`](super::rows::encode_row)), in
/// one block.
#[derive(Clone, PartialEq, Eq)]
pub struct PackedRow(Box<[u8]>);

impl PackedRow {
    /// The row whose encoding `bytes` are (written by a column reader).
    pub(super) fn from_encoding(bytes: &[u8]) -> Self {
        PackedRow(bytes.into())
    }

    /// A row of values packed (tests; operators pack from a batch with
    /// [`RowReader::pack`](super::rows::RowReader::pack)).
    #[cfg(test)]
    pub fn pack(row: &[Val]) -> Self {
        let mut w = Writer::new();
        w.u32(row.len() as u32);
        row.iter().for_each(|v| v.encode(&mut w));
        PackedRow(w.buf.into())
    }

    pub fn unpack(&self) -> Result<Row, OpError> {
        decode_row(&mut Reader::new(&self.0))
    }

    /// Appends the row's values to `out`, which holds rows of `width`
    /// values (no block of its own for the row).
    pub fn unpack_into(&self, width: usize, out: &mut Vec<Val>) -> Result<(), OpError> {
        let mut r = Reader::new(&self.0);
        check_width(r.u32()? as usize, width)?;
        for _ in 0..width {
            out.push(Val::decode(&mut r)?);
        }
        Ok(())
    }

    pub fn encode(&self, w: &mut Writer) {
        w.raw(&self.0);
    }

    /// Reads a row that [`encode_row`](super::rows::encode_row) (or
    /// [`PackedRow::encode`]) wrote, checking it whole.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, OpError> {
        let (_, bytes) = r.span(decode_row)?;
        Ok(PackedRow(bytes.into()))
    }

    /// The heap bytes it takes.
    pub fn heap_size(&self) -> usize {
        block(self.0.len())
    }
}

impl std::fmt::Debug for PackedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.unpack() {
            Ok(row) => row.fmt(f),
            Err(e) => write!(f, "<{e}>"),
        }
    }
}

fn check_width(n: usize, width: usize) -> Result<(), OpError> {
    if n != width {
        return Err(OpError::Other(format!("a kept row of {n} values where {width} were expected")));
    }
    Ok(())
}

/// Rows emitted from packed rows, in order: each one's kind, row number (for
/// a Top-N that outputs it) and values, decoded into the output's column
/// builders as it is pushed (the row's bytes are read once, and not kept).
pub struct Emitted {
    types: Vec<DataType>,
    kinds: Vec<RowKind>,
    ranks: Vec<Option<u64>>,
    cols: Vec<Builder>,
    /// The first row that did not decode as `types` (a corrupt or foreign
    /// row), reported by [`Emitted::batch`].
    error: Option<OpError>,
    #[cfg(test)]
    rows: Vec<super::rows::Emit>,
}

impl Emitted {
    /// Rows of columns `types`, with room for about `hint` rows (the last
    /// batch's, say) of `hint_text` string bytes.
    pub fn new(types: &[DataType], hint: usize, hint_text: usize) -> Self {
        let strings = types.iter().filter(|t| **t == DataType::Utf8).count().max(1);
        Emitted {
            types: types.to_vec(),
            kinds: Vec::with_capacity(hint),
            ranks: Vec::with_capacity(hint),
            cols: types.iter().map(|t| Builder::new(t, hint, hint_text / strings)).collect(),
            error: None,
            #[cfg(test)]
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, kind: RowKind, row: &PackedRow, rank: Option<u64>) {
        if self.error.is_some() {
            return;
        }
        let mut r = Reader::new(&row.0);
        let decoded = r
            .u32()
            .and_then(|n| check_width(n as usize, self.types.len()))
            .and_then(|()| self.cols.iter_mut().zip(&self.types).try_for_each(|(b, t)| b.append(&mut r, t)));
        if let Err(e) = decoded {
            self.error = Some(e);
            return;
        }
        self.kinds.push(kind);
        self.ranks.push(rank);
        #[cfg(test)]
        self.rows.push(super::rows::Emit { kind, row: row.unpack().expect("a row that decoded"), rank });
    }

    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.error.is_none()
    }

    /// The string bytes pushed so far (a hint for the next batch's).
    pub fn text_bytes(&self) -> usize {
        self.cols.iter().map(|c| if let Builder::Str { values, .. } = c { values.len() } else { 0 }).sum()
    }

    /// The output batch: the rows' columns typed as `types`, the row number
    /// when `with_rank`, and the kind column when `updating`.
    pub fn batch(self, with_rank: bool, updating: bool, schema: &SchemaRef) -> Result<RecordBatch, OpError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let n = self.len();
        let mut cols =
            self.cols.into_iter().zip(&self.types).map(|(b, t)| b.finish(t)).collect::<Result<Vec<_>, _>>()?;
        if with_rank {
            cols.push(Arc::new(Int64Array::from_iter_values(self.ranks.iter().map(|r| r.unwrap_or(0) as i64))));
        }
        let opts = RecordBatchOptions::new().with_row_count(Some(n));
        let batch = RecordBatch::try_new_with_options(schema.clone(), cols, &opts)?;
        if updating { Ok(changelog::attach(&batch, &self.kinds)?) } else { Ok(batch) }
    }

    /// The rows as values (tests).
    #[cfg(test)]
    pub fn rows(&self) -> &[super::rows::Emit] {
        &self.rows
    }
}

/// One output column being built from encoded values, as
/// [`to_array`] builds it from values.
enum Builder {
    Bool(BooleanBuilder),
    F64(Float64Builder),
    I128(Decimal128Builder),
    /// Strings as bytes and offsets: checked as UTF-8 once, at the end, not
    /// value by value.
    Str {
        values: Vec<u8>,
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
    },
    I64(Int64Builder),
    /// Nulls, lists and maps: as values, then [`to_array`].
    Vals(Vec<Val>),
}

impl Builder {
    fn new(t: &DataType, rows: usize, text: usize) -> Self {
        match t {
            DataType::Boolean => Builder::Bool(BooleanBuilder::with_capacity(rows)),
            DataType::Float32 | DataType::Float64 => Builder::F64(Float64Builder::with_capacity(rows)),
            DataType::Decimal128(..) => Builder::I128(Decimal128Builder::with_capacity(rows)),
            DataType::Utf8 => {
                let mut offsets = Vec::with_capacity(rows + 1);
                offsets.push(0);
                Builder::Str { values: Vec::with_capacity(text), offsets, nulls: NullBufferBuilder::new(rows) }
            }
            DataType::Null | DataType::List(_) | DataType::Map(..) => Builder::Vals(Vec::with_capacity(rows)),
            _ => Builder::I64(Int64Builder::with_capacity(rows)),
        }
    }

    /// Appends the next encoded value (a tag, then the value).
    fn append(&mut self, r: &mut Reader<'_>, t: &DataType) -> Result<(), OpError> {
        if let Builder::Vals(vals) = self {
            vals.push(Val::decode(r)?);
            return Ok(());
        }
        let tag = r.u8()?;
        match (self, tag) {
            (Builder::Bool(b), 0) => b.append_null(),
            (Builder::F64(b), 0) => b.append_null(),
            (Builder::I128(b), 0) => b.append_null(),
            (Builder::I64(b), 0) => b.append_null(),
            (Builder::Str { values, offsets, nulls }, 0) => {
                offsets.push(values.len() as i32);
                nulls.append_null();
            }
            (Builder::Bool(b), 1) => b.append_value(r.bool()?),
            (Builder::I64(b), 2) => b.append_value(r.i64()?),
            (Builder::F64(b), 3) => b.append_value(r.f64()?),
            (Builder::I128(b), 4) => b.append_value(r.i128()?),
            (Builder::Str { values, offsets, nulls }, 5) => {
                values.extend_from_slice(r.bytes()?);
                let end = i32::try_from(values.len())
                    .map_err(|_| OpError::Other("an output string column over 2 GiB".into()))?;
                offsets.push(end);
                nulls.append_non_null();
            }
            (_, tag) => return Err(OpError::Other(format!("a kept value with tag {tag} is not a {t}"))),
        }
        Ok(())
    }

    fn finish(self, t: &DataType) -> Result<ArrayRef, OpError> {
        Ok(match self {
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::F64(mut b) => cast(&(Arc::new(b.finish()) as ArrayRef), t)?,
            Builder::I128(mut b) => {
                let DataType::Decimal128(p, s) = t else {
                    return Err(OpError::Other(format!("decimal values for a {t} column")));
                };
                Arc::new(b.finish().with_precision_and_scale(*p, *s)?)
            }
            Builder::Str { values, offsets, mut nulls } => {
                Arc::new(StringArray::try_new(OffsetBuffer::new(offsets.into()), values.into(), nulls.finish())?)
            }
            Builder::I64(mut b) => finish_i64(Arc::new(b.finish()), t)?,
            Builder::Vals(vals) => to_array(t, vals.iter())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        Array, BooleanArray, Decimal128Array, Float32Array, Int32Array, StringArray, TimestampMillisecondArray,
    };
    use arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::operators::rows::{Emit, RowReader, output_batch};

    /// A batch of three rows with a column of every kind a changelog operator
    /// keeps, NULLs included.
    fn every_kind() -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(1), None, Some(-3)])),
            Arc::new(Int32Array::from(vec![None, Some(7), Some(8)])),
            Arc::new(StringArray::from(vec![Some("a long string of text"), Some(""), None])),
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            Arc::new(Float32Array::from(vec![Some(0.5), Some(-1.0), None])),
            Arc::new(
                Decimal128Array::from(vec![Some(i128::MAX), None, Some(-12345)])
                    .with_precision_and_scale(38, 2)
                    .unwrap(),
            ),
            Arc::new(
                TimestampMillisecondArray::from(vec![Some(1_700_000_000_000), None, Some(0)]).with_timezone("UTC"),
            ),
        ];
        let fields: Vec<Field> =
            cols.iter().enumerate().map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true)).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
    }

    /// A row packed straight from a batch holds the bytes its values encode
    /// to, for every kind of column and NULLs; it unpacks to the values, and
    /// reads back from a checkpoint as the same row.
    #[test]
    fn packed_rows_are_their_values_encoding() {
        let batch = every_kind();
        let reader = RowReader::new(&batch, batch.num_columns()).unwrap();
        let mut scratch = Writer::new();
        for i in 0..batch.num_rows() {
            let row = reader.row(i).unwrap();
            let packed = reader.pack(i, &mut scratch).unwrap();
            assert_eq!(packed, PackedRow::pack(&row), "row {i}");
            assert_eq!(packed.unpack().unwrap(), row, "row {i}");
            let mut w = Writer::new();
            packed.encode(&mut w);
            w.u8(9);
            let mut r = Reader::new(&w.buf);
            assert_eq!(PackedRow::decode(&mut r).unwrap(), packed, "row {i}");
            assert_eq!(r.u8().unwrap(), 9, "decode reads the row and no further");
            assert!(PackedRow::decode(&mut Reader::new(&w.buf[..w.buf.len() - 3])).is_err(), "a cut row");
        }
    }

    /// Rows emitted from packed rows make the batch that the same rows as
    /// values make, for every kind of column, NULLs, and the row number and
    /// kind columns.
    #[test]
    fn emitted_rows_make_the_batch_their_values_make() {
        let batch = every_kind();
        let types: Vec<DataType> = batch.columns().iter().map(|c| c.data_type().clone()).collect();
        let mut fields: Vec<Field> =
            types.iter().enumerate().map(|(i, t)| Field::new(format!("c{i}"), t.clone(), true)).collect();
        fields.push(Field::new("rn", DataType::Int64, true));
        let schema = Arc::new(Schema::new(fields));
        let reader = RowReader::new(&batch, types.len()).unwrap();
        let mut scratch = Writer::new();
        let (mut packed, mut values) = (Emitted::new(&types, 0, 0), Vec::new());
        let mut again = Emitted::new(&types, 4, 100);
        for (k, i) in
            [(RowKind::Insert, 0), (RowKind::UpdateBefore, 2), (RowKind::UpdateAfter, 1), (RowKind::Delete, 0)]
        {
            let rank = Some(i as u64 + 1);
            packed.push(k, &reader.pack(i, &mut scratch).unwrap(), rank);
            again.push(k, &reader.pack(i, &mut scratch).unwrap(), rank);
            values.push(Emit { kind: k, row: reader.row(i).unwrap(), rank });
        }
        assert_eq!(packed.rows(), values);
        let narrow = Arc::new(schema.project(&[0, 1, 2, 3, 4, 5, 6]).unwrap());
        for (emitted, with_rank, updating) in [(packed, true, true), (again, false, false)] {
            let schema = if with_rank { schema.clone() } else { narrow.clone() };
            let got = emitted.batch(with_rank, updating, &schema).unwrap();
            let want = output_batch(&values, &types, with_rank, updating, &schema).unwrap();
            assert_eq!(got, want, "with_rank={with_rank} updating={updating}");
            assert_eq!(got.column(2).data_type(), &DataType::Utf8);
            assert!(got.column(0).is_null(2), "input row 1, a NULL, is the third row out");
        }
        // A row of another width, and a value of another type, are errors.
        let mut wrong = Emitted::new(&types, 0, 0);
        wrong.push(RowKind::Insert, &PackedRow::pack(&[Val::I64(1)]), None);
        assert!(!wrong.is_empty(), "the error is for batch() to report");
        assert_eq!(wrong.len(), 0);
        assert!(wrong.batch(false, false, &narrow).is_err());
        let mut wrong = Emitted::new(&[DataType::Int64], 0, 0);
        wrong.push(RowKind::Insert, &PackedRow::pack(&[Val::Str("x".into())]), None);
        assert!(wrong.batch(false, false, &narrow).is_err());
    }
}
