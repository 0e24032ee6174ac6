//! Rows as the changelog operators that keep whole rows hold them: a row of
//! [`Val`]s, sort keys ordered as an `ORDER BY` asks, and the conversions
//! from an input batch (to values, or packed: [`super::packed`]) and back to
//! an output batch with row kinds.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion_physical_expr::PhysicalExpr;
use sluice_format::changelog::{self, RowKind};

use super::packed::PackedRow;
use crate::error::OpError;
use crate::state::codec::{Reader, Writer};
use crate::state::value::{ColumnReader, Val, column_values, to_array};

/// One row's values; shared, as state and output hold the same rows.
pub type Row = Arc<[Val]>;

/// The rows of a batch.
pub fn batch_rows(batch: &RecordBatch, width: usize) -> Result<Vec<Row>, OpError> {
    let mut cols: Vec<std::vec::IntoIter<Val>> =
        batch.columns().iter().take(width).map(|c| column_values(c).map(Vec::into_iter)).collect::<Result<_, _>>()?;
    // Each value moves into its row: one allocation per row, no copies.
    Ok((0..batch.num_rows()).map(|_| cols.iter_mut().map(|c| c.next().unwrap_or(Val::Null)).collect()).collect())
}

/// Rows of a batch's first `width` columns read one at a time, for operators
/// that keep few of the rows they see (only those are converted): each
/// column is prepared once per batch.
pub struct RowReader {
    cols: Vec<ColumnReader>,
}

impl RowReader {
    pub fn new(batch: &RecordBatch, width: usize) -> Result<Self, OpError> {
        let cols = batch.columns().iter().take(width).map(ColumnReader::new).collect::<Result<_, _>>()?;
        Ok(RowReader { cols })
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> Result<Row, OpError> {
        // Collected straight into the row's one allocation (a `Vec` first
        // would be a second one, and a copy).
        let mut failed = None;
        let row: Row = self
            .cols
            .iter()
            .map(|c| {
                c.value(i).unwrap_or_else(|e| {
                    failed = Some(e);
                    Val::Null
                })
            })
            .collect();
        failed.map_or(Ok(row), Err)
    }

    /// Row `i` packed: encoded into `scratch`, then copied into the row's one
    /// block.
    pub fn pack(&self, i: usize, scratch: &mut Writer) -> Result<PackedRow, OpError> {
        scratch.buf.clear();
        scratch.u32(self.cols.len() as u32);
        for c in &self.cols {
            c.encode(i, scratch)?;
        }
        Ok(PackedRow::from_encoding(&scratch.buf))
    }
}

/// Where an output row comes from: row `i` of the input batch, taken as it
/// is, or the next row of values kept in state.
pub enum Source {
    Input(u32),
    Kept,
}

/// [`output_batch`] for operators that emit input rows as well as rows from
/// state (deduplication's `+I` and `+U`): the input rows are taken from the
/// batch's columns by index, and only the rows from state are converted.
/// `kept` holds those rows' values, row after row, in the order of the
/// [`Source::Kept`] entries. The kind column is attached when `updating`.
pub fn output_from(
    batch: &RecordBatch,
    rows: &[(RowKind, Source)],
    kept: &[Val],
    types: &[DataType],
    updating: bool,
    schema: &SchemaRef,
) -> Result<RecordBatch, OpError> {
    let width = types.len();
    let mut at_kept = 0;
    let indices: Vec<(usize, usize)> = rows
        .iter()
        .map(|(_, s)| match s {
            Source::Input(i) => (0, *i as usize),
            Source::Kept => {
                at_kept += 1;
                (1, at_kept - 1)
            }
        })
        .collect();
    if kept.len() != at_kept * width {
        return Err(OpError::Other(format!("{} kept values for {at_kept} rows of {width} columns", kept.len())));
    }
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(width);
    for (c, t) in types.iter().enumerate() {
        let input = batch.column(c);
        let input = if input.data_type() == t { input.clone() } else { arrow::compute::cast(input, t)? };
        let from_state = to_array(t, kept.iter().skip(c).step_by(width.max(1)))?;
        cols.push(arrow::compute::interleave(&[input.as_ref(), from_state.as_ref()], &indices)?);
    }
    let opts = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    let out = RecordBatch::try_new_with_options(schema.clone(), cols, &opts)?;
    if !updating {
        return Ok(out);
    }
    let kinds: Vec<RowKind> = rows.iter().map(|(k, _)| *k).collect();
    Ok(changelog::attach(&out, &kinds)?)
}

pub fn encode_row(row: &Row, w: &mut Writer) {
    w.u32(row.len() as u32);
    row.iter().for_each(|v| v.encode(w));
}

pub fn decode_row(r: &mut Reader<'_>) -> Result<Row, OpError> {
    let n = r.u32()? as usize;
    let vals = (0..n).map(|_| Val::decode(r)).collect::<Result<Vec<_>, _>>()?;
    Ok(vals.into())
}

/// How one `ORDER BY` item orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Direction {
    pub asc: bool,
    pub nulls_first: bool,
}

/// One item of a sort key with its direction, so that keys order themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortPart {
    pub val: Val,
    pub dir: Direction,
}

impl Ord for SortPart {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.val.is_null(), other.val.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if self.dir.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if self.dir.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, false) => {
                let o = self.val.cmp(&other.val);
                if self.dir.asc { o } else { o.reverse() }
            }
        }
    }
}

impl PartialOrd for SortPart {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A row's sort key: smaller keys rank first. A key of one part, the
/// common `ORDER BY x`, is held inline: an operator makes a key for every
/// row it reads.
#[derive(Debug, Clone)]
pub enum SortKey {
    One(SortPart),
    Many(Box<[SortPart]>),
}

impl SortKey {
    pub fn parts(&self) -> &[SortPart] {
        match self {
            SortKey::One(p) => std::slice::from_ref(p),
            SortKey::Many(ps) => ps,
        }
    }
}

impl From<Vec<SortPart>> for SortKey {
    fn from(mut parts: Vec<SortPart>) -> Self {
        match parts.pop() {
            Some(p) if parts.is_empty() => SortKey::One(p),
            Some(p) => {
                parts.push(p);
                SortKey::Many(parts.into())
            }
            None => SortKey::Many(Box::new([])),
        }
    }
}

impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for SortKey {}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(other.parts())
    }
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

pub fn encode_key(key: &SortKey, w: &mut Writer) {
    let parts = key.parts();
    w.u32(parts.len() as u32);
    for p in parts {
        p.val.encode(w);
        w.bool(p.dir.asc);
        w.bool(p.dir.nulls_first);
    }
}

pub fn decode_key(r: &mut Reader<'_>) -> Result<SortKey, OpError> {
    let n = r.u32()? as usize;
    let parts = (0..n)
        .map(|_| Ok(SortPart { val: Val::decode(r)?, dir: Direction { asc: r.bool()?, nulls_first: r.bool()? } }))
        .collect::<Result<Vec<_>, OpError>>()?;
    Ok(parts.into())
}

/// The sort keys of a batch's rows.
pub fn sort_keys(
    batch: &RecordBatch,
    exprs: &[Arc<dyn PhysicalExpr>],
    dirs: &[Direction],
) -> Result<Vec<SortKey>, OpError> {
    let n = batch.num_rows();
    let mut cols: Vec<std::vec::IntoIter<Val>> = exprs
        .iter()
        .map(|e| {
            let a = e.evaluate(batch).and_then(|v| v.into_array(n)).map_err(OpError::from)?;
            column_values(&a).map(Vec::into_iter)
        })
        .collect::<Result<_, _>>()?;
    // Each value moves into its key.
    let part =
        |c: &mut std::vec::IntoIter<Val>, dir: &Direction| SortPart { val: c.next().unwrap_or(Val::Null), dir: *dir };
    Ok((0..n)
        .map(|_| match (cols.as_mut_slice(), dirs) {
            ([c], [d]) => SortKey::One(part(c, d)),
            (cols, dirs) => SortKey::Many(cols.iter_mut().zip(dirs).map(|(c, d)| part(c, d)).collect()),
        })
        .collect())
}

/// One output row: its kind, its values and, for a Top-N that outputs it, its
/// row number.
#[derive(Debug, Clone, PartialEq)]
pub struct Emit {
    pub kind: RowKind,
    pub row: Row,
    pub rank: Option<u64>,
}

/// Builds an output batch: the rows' columns typed as `types`, the row number
/// when `with_rank`, and the kind column when `updating`.
pub fn output_batch(
    emits: &[Emit],
    types: &[DataType],
    with_rank: bool,
    updating: bool,
    schema: &SchemaRef,
) -> Result<RecordBatch, OpError> {
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(types.len() + 2);
    for (i, t) in types.iter().enumerate() {
        cols.push(to_array(t, emits.iter().map(|e| &e.row[i]))?);
    }
    if with_rank {
        cols.push(Arc::new(Int64Array::from_iter_values(emits.iter().map(|e| e.rank.unwrap_or(0) as i64))));
    }
    let opts = RecordBatchOptions::new().with_row_count(Some(emits.len()));
    let batch = RecordBatch::try_new_with_options(schema.clone(), cols, &opts)?;
    if updating {
        let kinds: Vec<RowKind> = emits.iter().map(|e| e.kind).collect();
        Ok(changelog::attach(&batch, &kinds)?)
    } else {
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(v: Option<i64>, asc: bool, nulls_first: bool) -> SortPart {
        SortPart { val: v.map_or(Val::Null, Val::I64), dir: Direction { asc, nulls_first } }
    }

    #[test]
    fn sort_parts_order_as_their_direction_says() {
        // (a, b, asc, nulls_first, a < b)
        let cases = [
            (Some(1), Some(2), true, true, true),
            (Some(1), Some(2), false, false, false),
            (None, Some(2), true, true, true),
            (None, Some(2), false, false, false),
            (None, Some(2), true, false, false),
            (None, Some(2), false, true, true),
        ];
        for (a, b, asc, nf, less) in cases {
            assert_eq!(part(a, asc, nf) < part(b, asc, nf), less, "{a:?} {b:?} asc={asc} nulls_first={nf}");
        }
    }

    #[test]
    fn keys_and_rows_round_trip_through_the_codec() {
        let key: SortKey = vec![part(Some(3), false, false), part(None, true, true)].into();
        let row: Row = vec![Val::I64(1), Val::Str("a".into()), Val::Null].into();
        let mut w = Writer::new();
        encode_key(&key, &mut w);
        encode_row(&row, &mut w);
        let mut r = Reader::new(&w.buf);
        assert_eq!(decode_key(&mut r).unwrap(), key);
        assert_eq!(decode_row(&mut r).unwrap(), row);
        assert!(r.is_empty());
    }
}
