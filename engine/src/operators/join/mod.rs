//! The regular streaming join (INNER, LEFT, RIGHT, FULL OUTER on equality
//! keys plus a residual predicate), as Flink's `StreamingJoinOperator`, and
//! the semi and anti joins of IN and EXISTS subqueries, as Flink's
//! `StreamingSemiAntiJoinOperator` (whose output is the left rows alone).
//!
//! A two-input operator: the runtime says which input each batch comes from
//! ([`StreamOperator::process_batch_from`], 0 left, 1 right); both inputs are
//! hash-partitioned on their join keys, so the rows of one key meet in one
//! subtask. Per key, [`logic::Sides`] keeps both inputs' rows (row-encoded, with
//! multiplicity and, for outer sides, their match counts) in a [`KeyedState`],
//! so a checkpoint's view is O(chunks) and a restore at another parallelism
//! hands each subtask the keys it now owns. The decisions per input row are in
//! [`logic`] ([`semi`] for semi and anti joins); this module evaluates keys and the residual on Arrow batches and
//! assembles the output.
//!
//! Invariants:
//! - rows of a batch are processed in order, each seeing the state the rows
//!   before it left; a batch of one side never changes which rows the other
//!   side holds (only their match counts), so the residual is evaluated for
//!   the whole batch at once before the walk;
//! - a row whose key has a null matches nothing (SQL `=`) and is not kept;
//! - the output carries the `$row_kind` column exactly when the join's output
//!   is updating (an outer join, or an updating input);
//! - with `table.exec.state.ttl`, a stored row not written for that long is
//!   gone, as in Flink: it matches nothing more and nothing is retracted for
//!   it; the keys of a batch are cleaned before the batch, every key once per
//!   TTL.
//!
//! [`interval`] is the interval join, [`temporal`] the event-time temporal
//! join and [`window`] the window join; they share the output assembly.

pub mod interval;
pub mod logic;
pub mod semi;
pub mod temporal;
#[cfg(test)]
mod test_util;
pub mod window;
/// A join's input index (0 left, 1 right), refused if the vertex has more.
pub(super) fn two_inputs(input: usize) -> Result<usize, OpError> {
    if input > 1 {
        return Err(OpError::Other(format!("a join has two inputs, not input {input}")));
    }
    Ok(input)
}

#[cfg(test)]
mod tests;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, UInt32Array, new_null_array};
use arrow::compute::{concat, take};
use arrow::datatypes::{DataType, FieldRef, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow::row::{RowConverter, SortField};
use datafusion_physical_expr::PhysicalExpr;
use sluice_format::changelog::{self, RowKind};
use sluice_sql::plan::JoinKind;

use self::logic::{Emit, Entry, Outer, Sides};
use super::calc::relax;
use super::window::Keys;
use super::{StreamEvent, StreamOperator};
use crate::error::OpError;
use crate::state::StateView;
use crate::state::codec::{Reader, Writer};
use crate::state::keyed::{KeyedState, StateValue};
use crate::state::value::block;

/// What the join is built from (see `OpSpec::Join`).
pub struct JoinDef {
    pub kind: JoinKind,
    /// Key expressions over each input, `[left, right]`, of `key_types`.
    pub keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
    pub key_types: Vec<DataType>,
    /// Each input's columns (without a row kind column).
    pub inputs: [SchemaRef; 2],
    /// Over the output columns (left then right).
    pub residual: Option<Arc<dyn PhysicalExpr>>,
    /// The output columns.
    pub schema: SchemaRef,
    /// Whether the output carries row kinds.
    pub updating: bool,
    /// `table.exec.state.ttl` in ms (0: rows are kept until retracted).
    pub ttl: i64,
}

/// Processing time in epoch ms; tests pass their own.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn wall_clock() -> Clock {
    Arc::new(|| crate::job::now_ms() as i64)
}

pub struct Join {
    kind: JoinKind,
    keys: [Arc<Keys>; 2],
    rows: [RowConverter; 2],
    residual: Option<Arc<dyn PhysicalExpr>>,
    /// What the residual reads: the left columns, then the right ones.
    residual_schema: SchemaRef,
    schema: SchemaRef,
    updating: bool,
    /// The column types of both inputs, for the state layout.
    row_types: String,
    state: KeyedState<Sides>,
    /// The state TTL (ms, 0: none), the clock it is measured with, and when
    /// every key is next swept for expired rows (keys a batch touches are
    /// cleaned then).
    ttl: i64,
    clock: Clock,
    next_sweep: i64,
}

impl StateValue for Sides {
    fn encode(&self, w: &mut Writer) {
        for side in &self.rows {
            w.u32(side.len() as u32);
            for e in side {
                w.bytes(&e.row);
                w.u32(e.count);
                w.u32(e.assoc);
                w.i64(e.written);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError> {
        let mut sides = Sides::default();
        for side in sides.rows.iter_mut() {
            let n = r.u32()?;
            for _ in 0..n {
                let row = r.bytes()?.into();
                let (count, assoc) = (r.u32()?, r.u32()?);
                side.push(Entry { row, count, assoc, written: r.i64()? });
            }
        }
        Ok(sides)
    }

    fn heap_size(&self) -> Option<usize> {
        let side = |s: &Vec<Entry>| {
            block(s.capacity() * std::mem::size_of::<Entry>()) + s.iter().map(|e| block(e.row.len())).sum::<usize>()
        };
        Some(self.rows.iter().map(side).sum())
    }
}

/// Per input row, the indices of the other side's rows it matches; with a
/// residual, also each match's candidate position in `theirs`, the candidate
/// rows the residual decoded.
struct Matches {
    offsets: Vec<usize>,
    indices: Vec<usize>,
    candidates: Vec<u32>,
    theirs: Vec<ArrayRef>,
}

impl Matches {
    fn new() -> Self {
        Matches { offsets: vec![0], indices: Vec::new(), candidates: Vec::new(), theirs: Vec::new() }
    }

    fn of(&self, r: usize) -> &[usize] {
        &self.indices[self.offsets[r]..self.offsets[r + 1]]
    }

    /// The candidate position of input row `r`'s match with the other side's
    /// row `index`, if the residual decoded it. `cursor` (reset per row)
    /// makes emits in match order O(1) each.
    fn candidate(&self, r: usize, index: usize, cursor: &mut usize) -> Option<usize> {
        if self.candidates.is_empty() {
            return None;
        }
        let (of, start) = (self.of(r), self.offsets[r]);
        let n = of.len();
        (0..n).map(|k| (*cursor + k) % n).find(|&k| of[k] == index).map(|k| {
            *cursor = k;
            self.candidates[start + k] as usize
        })
    }
}

/// The output being assembled: per row its kind, the input row (or null
/// padding) and the other side's row (copied bytes, a candidate the residual
/// already decoded, or null padding).
#[derive(Default)]
pub(super) struct Output {
    kinds: Vec<RowKind>,
    input: Vec<Option<u32>>,
    other: Vec<Option<OtherRow>>,
    other_rows: Vec<u8>,
    other_ends: Vec<usize>,
    /// The other side's candidate rows as the residual decoded them, which
    /// [`Output::push_decoded`] refers to: a matched row is decoded once.
    decoded: Option<Vec<ArrayRef>>,
}

/// Where an output row's other-side row is.
#[derive(Debug, Clone, Copy)]
enum OtherRow {
    /// Its bytes, the `n`th copied into the output.
    Copied(u32),
    /// Row `n` of the decoded candidates.
    Decoded(u32),
}

/// Whether each candidate pair satisfies a join's residual, and the other
/// side's candidate rows decoded (its columns), which the output takes the
/// matched rows from instead of decoding them again.
pub(super) struct Residual {
    pub mask: Vec<bool>,
    pub theirs: Vec<ArrayRef>,
}

impl Residual {
    /// Every candidate passes (no residual); nothing is decoded.
    pub(super) fn all(n: usize) -> Self {
        Residual { mask: vec![true; n], theirs: Vec::new() }
    }
}

impl Join {
    pub fn new(def: JoinDef) -> Result<Self, OpError> {
        let converter = row_converter;
        let [lk, rk] = def.keys;
        Ok(Join {
            kind: def.kind,
            keys: [Arc::new(Keys::new(lk, def.key_types.clone())?), Arc::new(Keys::new(rk, def.key_types)?)],
            rows: [converter(&def.inputs[0])?, converter(&def.inputs[1])?],
            residual: def.residual,
            residual_schema: if def.kind.left_only() {
                let fields: Vec<_> = def.inputs.iter().flat_map(|s| s.fields().iter().cloned()).collect();
                relax(&Arc::new(arrow::datatypes::Schema::new(fields)))
            } else {
                relax(&def.schema)
            },
            schema: relax(&def.schema),
            updating: def.updating,
            row_types: format!(
                "{:?} | {:?}",
                def.inputs[0].fields().iter().map(|f| f.data_type()).collect::<Vec<_>>(),
                def.inputs[1].fields().iter().map(|f| f.data_type()).collect::<Vec<_>>()
            ),
            state: KeyedState::default(),
            ttl: def.ttl,
            clock: wall_clock(),
            next_sweep: i64::MIN,
        })
    }

    /// The join measuring its state TTL with `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn outer(&self, side: usize) -> bool {
        keeps_matches(self.kind, side)
    }
}

/// Whether `side` of a `kind` join keeps its rows' match counts: an outer
/// side, or the left side of a semi or anti join.
fn keeps_matches(kind: JoinKind, side: usize) -> bool {
    if side == 0 { kind.left_outer() || kind.left_only() } else { kind.right_outer() }
}

/// The decisions of a `kind` join for one input row of `side` (see
/// [`logic::process`] and [`semi`]).
#[allow(clippy::too_many_arguments)]
fn decide(
    join: JoinKind,
    side: usize,
    mine: &mut Vec<Entry>,
    theirs: &mut [Entry],
    kind: RowKind,
    row: &[u8],
    matched: &[usize],
    store: bool,
    merge: bool,
    now: i64,
    out: &mut Vec<Emit>,
) {
    let anti = join == JoinKind::Anti;
    match (join.left_only(), side) {
        (true, 0) => semi::process_left(mine, theirs, anti, kind, row, matched, store, merge, now, out),
        (true, _) => semi::process_right(mine, theirs, anti, kind, row, matched, store, merge, now, out),
        (false, _) => {
            let outer = Outer { input: keeps_matches(join, side), other: keeps_matches(join, 1 - side) };
            logic::process(mine, theirs, outer, kind, row, matched, store, merge, now, out)
        }
    }
}

impl Join {
    /// Drops rows whose TTL has passed: under the keys of this batch, and,
    /// once per TTL, under every key (so that keys never seen again are
    /// removed too).
    fn expire(&mut self, keys: &[Option<Box<[u8]>>], now: i64) {
        if self.ttl <= 0 {
            return;
        }
        if now >= self.next_sweep {
            self.next_sweep = now.saturating_add(self.ttl);
            let ttl = self.ttl;
            self.state.retain_mut(|sides| {
                logic::expire(sides, ttl, now);
                !sides.is_empty()
            });
            return;
        }
        for key in keys.iter().flatten() {
            if let Some(sides) = self.state.get_mut(key) {
                logic::expire(sides, self.ttl, now);
                if sides.is_empty() {
                    self.state.remove(key);
                }
            }
        }
    }

    /// The other side's rows each input row matches: every row under its key,
    /// less those the residual rejects.
    fn matches(&self, side: usize, data: &RecordBatch, keys: &[Option<Box<[u8]>>]) -> Result<Matches, OpError> {
        let other = 1 - side;
        let mut m = Matches::new();
        // Candidates: (input row, other row index, other row bytes).
        let (mut rows, mut cand_rows) = (Vec::new(), Vec::new());
        for key in keys {
            if let Some(sides) = key.as_deref().and_then(|k| self.state.peek(k)) {
                for (i, e) in sides.rows[other].iter().enumerate() {
                    m.indices.push(i);
                    if self.residual.is_some() {
                        rows.push(m.offsets.len() as u32 - 1);
                        cand_rows.push(e.row.as_ref());
                    }
                }
            }
            m.offsets.push(m.indices.len());
        }
        let Some(residual) = &self.residual else { return Ok(m) };
        if m.indices.is_empty() {
            return Ok(m);
        }
        let Residual { mask, theirs } =
            residual_mask(residual, &self.residual_schema, side, data, rows, &cand_rows, &self.rows[other])?;
        let mut kept = Matches::new();
        kept.theirs = theirs;
        for r in 0..keys.len() {
            let range = m.offsets[r]..m.offsets[r + 1];
            for (c, (&i, &ok)) in range.clone().zip(m.indices[range.clone()].iter().zip(&mask[range])) {
                if ok {
                    kept.indices.push(i);
                    kept.candidates.push(c as u32);
                }
            }
            kept.offsets.push(kept.indices.len());
        }
        Ok(kept)
    }

    fn process(&mut self, side: usize, batch: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let merge = changelog::has_kinds(&batch);
        let (data, kinds) = changelog::split(&batch);
        let keys = encode_keys(&self.keys[side], &data)?;
        let rows = self.rows[side].convert_columns(data.columns())?;
        let now = (self.clock)();
        self.expire(&keys, now);
        self.state.pin(keys.iter().flatten().map(AsRef::as_ref));
        let mut matches = self.matches(side, &data, &keys)?;
        let keeps_unmatched = self.outer(side);
        let mut o = Output::with_decoded(std::mem::take(&mut matches.theirs));
        let mut emits = Vec::new();
        for (r, key) in keys.iter().enumerate() {
            emits.clear();
            let row = rows.row(r);
            match key {
                None => decide(
                    self.kind,
                    side,
                    &mut Vec::new(),
                    &mut [],
                    kinds[r],
                    row.as_ref(),
                    &[],
                    false,
                    merge,
                    now,
                    &mut emits,
                ),
                Some(key) => {
                    let id = match self.state.slot(key) {
                        Some(id) => id,
                        // Nothing under this key: a retraction emits nothing.
                        None if !kinds[r].is_accumulate() && !keeps_unmatched => continue,
                        None => self.state.insert(key, Sides::default()),
                    };
                    let Some(sides) = self.state.slot_mut(id) else { continue };
                    let [left, right] = &mut sides.rows;
                    let (mine, theirs) = if side == 0 { (left, right) } else { (right, left) };
                    decide(
                        self.kind,
                        side,
                        mine,
                        theirs,
                        kinds[r],
                        row.as_ref(),
                        matches.of(r),
                        true,
                        merge,
                        now,
                        &mut emits,
                    );
                    let mut cursor = 0;
                    for e in &emits {
                        let row = e.other.and_then(|i| theirs.get(i).map(|x| (i, x.row.as_ref())));
                        match row.and_then(|(i, row)| Some((matches.candidate(r, i, &mut cursor)?, row))) {
                            Some((c, row)) => o.push_candidate(r, e.kind, e.input, c, row),
                            None => o.push_row(r, e.kind, e.input, row.map(|(_, row)| row)),
                        }
                    }
                    if sides.is_empty() {
                        self.state.remove(key);
                    }
                    continue;
                }
            }
            for e in &emits {
                o.push_row(r, e.kind, e.input, None);
            }
        }
        if o.kinds.is_empty() {
            return Ok(());
        }
        let batch = if self.kind.left_only() {
            o.assemble_left(&self.schema, &self.rows[0], side, &data, self.updating)?
        } else {
            o.assemble(&self.schema, &self.rows[1 - side], side, &data, self.updating)?
        };
        out.push(StreamEvent::Batch(batch));
        Ok(())
    }
}

impl Output {
    /// An output row: its kind, whether input row `r` is in it (else null
    /// padding), and the other side's row (else null padding).
    pub(super) fn push_row(&mut self, r: usize, kind: RowKind, input: bool, other: Option<&[u8]>) {
        self.kinds.push(kind);
        self.input.push(input.then_some(r as u32));
        match other {
            Some(row) => {
                self.other.push(Some(OtherRow::Copied(self.other_ends.len() as u32)));
                self.other_rows.extend_from_slice(row);
                self.other_ends.push(self.other_rows.len());
            }
            None => self.other.push(None),
        }
    }

    /// The output taking the other side's matched rows from the candidates
    /// the residual decoded (`theirs`; nothing without a residual).
    pub(super) fn with_decoded(theirs: Vec<ArrayRef>) -> Self {
        Output { decoded: (!theirs.is_empty()).then_some(theirs), ..Output::default() }
    }

    /// An output row whose other side's row is candidate `c` of the residual's
    /// evaluation, or the bytes `row` when there was none.
    pub(super) fn push_candidate(&mut self, r: usize, kind: RowKind, input: bool, c: usize, row: &[u8]) {
        if self.decoded.is_some() {
            self.kinds.push(kind);
            self.input.push(input.then_some(r as u32));
            self.other.push(Some(OtherRow::Decoded(c as u32)));
        } else {
            self.push_row(r, kind, input, Some(row));
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The output batch (`schema`: left columns, then right ones) of rows of
    /// input `side` (`data`) and of the other side (decoded with `other`),
    /// with the kind column when `updating`.
    pub(super) fn assemble(
        self,
        schema: &SchemaRef,
        other: &RowConverter,
        side: usize,
        data: &RecordBatch,
        updating: bool,
    ) -> Result<RecordBatch, OpError> {
        let n = self.kinds.len();
        let fields = schema.fields();
        let other_fields =
            if side == 0 { &fields[data.num_columns()..] } else { &fields[..fields.len() - data.num_columns()] };
        let theirs = self.other_columns(other, other_fields)?;
        let input_idx = UInt32Array::from(self.input);
        let mine: Vec<ArrayRef> = data.columns().iter().map(|c| take(c, &input_idx, None)).collect::<Result<_, _>>()?;
        let cols = if side == 0 { [mine, theirs].concat() } else { [theirs, mine].concat() };
        let batch = RecordBatch::try_new_with_options(
            schema.clone(),
            cols,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )?;
        if updating { Ok(changelog::attach(&batch, &self.kinds)?) } else { Ok(batch) }
    }
}

impl Output {
    /// The other side's columns (`fields`) of the output rows: copied rows
    /// decoded with `converter`, decoded candidates taken as they are, null
    /// padding.
    fn other_columns(&self, converter: &RowConverter, fields: &[FieldRef]) -> Result<Vec<ArrayRef>, OpError> {
        let n = self.kinds.len();
        let uses_decoded = self.other.iter().any(|o| matches!(o, Some(OtherRow::Decoded(_))));
        let decoded = self.decoded.as_deref().filter(|_| uses_decoded);
        let copied = if self.other_ends.is_empty() { None } else { Some(self.copied_columns(converter)?) };
        // Decoded candidates first, then the copied rows.
        let base = decoded.and_then(|d| d.first()).map_or(0, |c| c.len() as u32);
        let sources: Vec<ArrayRef> = match (decoded, copied) {
            (None, None) => return Ok(fields.iter().map(|f| new_null_array(f.data_type(), n)).collect()),
            (Some(d), None) => d.to_vec(),
            (None, Some(c)) => c,
            (Some(d), Some(c)) => {
                d.iter().zip(&c).map(|(a, b)| concat(&[a.as_ref(), b.as_ref()])).collect::<Result<_, _>>()?
            }
        };
        let idx: UInt32Array = self
            .other
            .iter()
            .map(|o| {
                o.map(|o| match o {
                    OtherRow::Decoded(c) => c,
                    OtherRow::Copied(j) => base + j,
                })
            })
            .collect();
        Ok(sources.iter().map(|c| take(c, &idx, None)).collect::<Result<_, _>>()?)
    }

    /// The other side's rows copied into the output, decoded with `converter`,
    /// in the order they were pushed.
    fn copied_columns(&self, converter: &RowConverter) -> Result<Vec<ArrayRef>, OpError> {
        let parser = converter.parser();
        let mut start = 0;
        let rows = &self.other_rows;
        let slices = self.other_ends.iter().map(|&end| {
            let s = &rows[start..end];
            start = end;
            parser.parse(s)
        });
        Ok(converter.convert_rows(slices)?)
    }

    /// The output batch of a semi or anti join: the left rows alone, those
    /// of the input (`data`, `side` 0) or of the left side's state (decoded
    /// with `left`), with the kind column when `updating`.
    fn assemble_left(
        self,
        schema: &SchemaRef,
        left: &RowConverter,
        side: usize,
        data: &RecordBatch,
        updating: bool,
    ) -> Result<RecordBatch, OpError> {
        let n = self.kinds.len();
        let cols: Vec<ArrayRef> = if side == 0 {
            let idx = UInt32Array::from(self.input);
            data.columns().iter().map(|c| take(c, &idx, None)).collect::<Result<_, _>>()?
        } else {
            let fields = &schema.fields()[..];
            self.other_columns(left, fields)?
        };
        let batch = RecordBatch::try_new_with_options(
            schema.clone(),
            cols,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )?;
        if updating { Ok(changelog::attach(&batch, &self.kinds)?) } else { Ok(batch) }
    }
}

/// A row converter for all columns of `schema`.
pub(super) fn row_converter(schema: &SchemaRef) -> Result<RowConverter, OpError> {
    Ok(RowConverter::new(schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect())?)
}

/// Each row's encoded key, or `None` when a key column is null (SQL `=`
/// matches nothing then). Without key columns, every row has the empty key.
pub(super) fn encode_keys(keys: &Keys, data: &RecordBatch) -> Result<Vec<Option<Box<[u8]>>>, OpError> {
    let n = data.num_rows();
    let Some(converter) = &keys.converter else { return Ok(vec![Some(Box::default()); n]) };
    let cols: Vec<ArrayRef> =
        keys.exprs.iter().map(|e| e.evaluate(data).and_then(|v| v.into_array(n))).collect::<Result<_, _>>()?;
    let encoded = converter.convert_columns(&cols)?;
    Ok((0..n).map(|r| (!cols.iter().any(|c| c.is_null(r))).then(|| encoded.row(r).as_ref().into())).collect())
}

/// Whether each candidate pair satisfies the residual: input row `rows[i]` of
/// `side` (in `data`) with the other side's row `others[i]` (decoded with
/// `other`), over the output `schema`.
pub(super) fn residual_mask(
    residual: &Arc<dyn PhysicalExpr>,
    schema: &SchemaRef,
    side: usize,
    data: &RecordBatch,
    rows: Vec<u32>,
    others: &[&[u8]],
    other: &RowConverter,
) -> Result<Residual, OpError> {
    let idx = UInt32Array::from(rows);
    let mine: Vec<ArrayRef> = data.columns().iter().map(|c| take(c, &idx, None)).collect::<Result<_, _>>()?;
    let parser = other.parser();
    let theirs = other.convert_rows(others.iter().map(|b| parser.parse(b)))?;
    let cols = if side == 0 { [mine, theirs.clone()].concat() } else { [theirs.clone(), mine].concat() };
    let n = idx.len();
    let batch =
        RecordBatch::try_new_with_options(schema.clone(), cols, &RecordBatchOptions::new().with_row_count(Some(n)))?;
    let mask = residual.evaluate(&batch)?.into_array(n)?;
    let mask = mask.as_boolean_opt().ok_or_else(|| OpError::Other("join condition is not boolean".into()))?;
    Ok(Residual { mask: (0..n).map(|i| mask.is_valid(i) && mask.value(i)).collect(), theirs })
}

impl StreamOperator for Join {
    fn name(&self) -> String {
        format!("Join({})", self.kind)
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        self.process(0, batch, out)
    }

    fn process_batch_from(
        &mut self,
        input: usize,
        batch: RecordBatch,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), OpError> {
        self.process(two_inputs(input)?, batch, out)
    }

    fn state_layout(&self) -> Option<String> {
        Some(format!("{}; {}; rows {}; with write times", self.name(), self.keys[0].layout(), self.row_types))
    }

    fn state_keys(&self) -> Option<u64> {
        Some(self.state.len() as u64)
    }

    fn state_keys_on_disk(&self) -> Option<u64> {
        Some(self.state.spilled() as u64)
    }

    /// One record per key: both sides' rows (see [`Sides`]'s encoding).
    /// Watermarks only pass through: the state is not event-time based.
    fn watermark_reads_state(&self) -> bool {
        false
    }

    fn health(&self) -> Result<(), OpError> {
        self.state.health()
    }

    fn snapshot(&mut self) -> Result<Option<Box<dyn StateView>>, OpError> {
        Ok(Some(Box::new(self.state.view(self.keys[0].clone()))))
    }

    fn restore(&mut self, _key_group: u32, state: &[u8]) -> Result<(), OpError> {
        self.state.restore(state)
    }
}
