//! Top-N over an append-only input: `ROW_NUMBER() OVER (PARTITION BY k ORDER
//! BY c)` filtered on the row number, with Flink 2.3's emission rules.
//!
//! Each partition key keeps a buffer: its rows by sort key, rows of equal keys
//! in arrival order (a later row ranks after earlier ones with the same key).
//! Rows are packed ([`PackedRow`], one block each, the state encoding), and
//! only rows that enter a buffer are packed; emitted rows are decoded straight
//! into the output's columns ([`Emitted`]), in batches of at most
//! [`OUTPUT_ROWS`] rows.
//! The decisions are pure functions of a buffer and a row ([`top_n`],
//! [`top1`]); the operator evaluates keys, keeps buffers in [`KeyedState`] and
//! builds the output batches.
//!
//! Emission (Flink's `AppendOnlyTopNFunction` and `FastTop1Function`):
//! - a row is buffered only if its sort key is smaller than the buffer's
//!   largest, or the buffer holds fewer rows than the range's end;
//! - without the row number (and a range starting at 1), a row entering the
//!   top N is a `+I`; the row it pushes out, a `-D` emitted just before;
//! - with the row number (or a range starting after 1), each row whose rank
//!   changes is retracted at its old rank (`-U`) and the row now at that rank
//!   follows (`+U`); the last shifted row still in range is a `+I` at its new
//!   rank; rows outside the range are not emitted; buffer entries after the
//!   one that reaches the range's end are dropped;
//! - a Top-1 (range 1..=1) keeps one row per key: the first row is a `+I`, a
//!   row with a strictly smaller sort key replaces it as `-U` old, `+U` new —
//!   or as a lone `+U` unless the order is one descending key
//!   ([`top1_update_before`]);
//! - over an updating input, see [`retract_top_n`]: the buffer keeps every row
//!   and the output is the change of the ranks in range.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion_physical_expr::PhysicalExpr;
use sluice_format::changelog::{self, RowKind};
use sluice_sql::plan::RankRange;

use super::calc::relax;
use super::packed::{Emitted, PackedRow};
use super::rows::{Direction, RowReader, SortKey, decode_key, encode_key, sort_keys};
use super::window::Keys;
use super::{StreamEvent, StreamOperator};
use crate::error::OpError;
use crate::state::StateView;
use crate::state::codec::{Reader, Writer};
use crate::state::keyed::{KeyedState, StateValue};
use crate::state::ttl::{Stamped, Ttl};

/// The rows of one partition key, by sort key; rows with equal keys in
/// arrival order. Rows are kept packed: one block each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buffer {
    entries: BTreeMap<SortKey, Vec<PackedRow>>,
    count: usize,
}

impl Buffer {
    pub(crate) fn put(&mut self, key: SortKey, row: PackedRow) {
        self.entries.entry(key).or_default().push(row);
        self.count += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn first_key(&self) -> Option<&SortKey> {
        self.entries.keys().next()
    }

    /// Removes the row that ranks last.
    pub(crate) fn pop_last(&mut self) -> Option<PackedRow> {
        let mut last = self.entries.last_entry()?;
        let row = last.get_mut().pop();
        if last.get().is_empty() {
            last.remove();
        }
        if row.is_some() {
            self.count -= 1;
        }
        row
    }

    /// The rows in rank order.
    pub fn rows(&self) -> impl Iterator<Item = &PackedRow> {
        self.entries.values().flatten()
    }
}

impl StateValue for Buffer {
    fn encode(&self, w: &mut Writer) {
        w.u32(self.entries.len() as u32);
        for (k, rows) in &self.entries {
            encode_key(k, w);
            w.u32(rows.len() as u32);
            rows.iter().for_each(|r| r.encode(w));
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError> {
        let mut b = Buffer::default();
        for _ in 0..r.u32()? {
            let key = decode_key(r)?;
            let n = r.u32()? as usize;
            let rows = (0..n).map(|_| PackedRow::decode(r)).collect::<Result<Vec<_>, _>>()?;
            b.count += rows.len();
            b.entries.insert(key, rows);
        }
        Ok(b)
    }
}

/// Whether a row with sort key `key` enters a Top-N's buffer (Flink's
/// `checkSortKeyInBufferRange`): a smaller key than the largest buffered, or
/// room for one more row.
pub fn fits(buf: &Buffer, key: &SortKey, range: RankRange) -> bool {
    match buf.entries.last_key_value() {
        None => true,
        Some((worst, _)) => key < worst || buf.count < range.end as usize,
    }
}

/// Whether a row with sort key `key` replaces a Top-1's row.
pub fn improves(buf: &Buffer, key: &SortKey) -> bool {
    buf.first_key().is_none_or(|best| key < best)
}

/// What a Top-N does with one row, given its partition's buffer.
pub fn top_n(buf: &mut Buffer, key: SortKey, row: PackedRow, range: RankRange, output_rank: bool, out: &mut Emitted) {
    let end = range.end as usize;
    if !fits(buf, &key, range) {
        return;
    }
    if output_rank || range.start > 1 {
        buf.put(key.clone(), row);
        with_row_numbers(buf, &key, range, output_rank, out);
    } else {
        without_row_numbers(buf, key, row, end, out);
    }
}

/// The ranks a row just put under `key` (the last of its key's rows) moved.
fn with_row_numbers(buf: &mut Buffer, key: &SortKey, range: RankRange, output_rank: bool, out: &mut Emitted) {
    let end = range.end;
    let in_range = |rank: u64| rank >= range.start && rank <= end;
    let mut emit = |kind: RowKind, row: &PackedRow, rank: u64| {
        if in_range(rank) {
            out.push(kind, row, output_rank.then_some(rank));
        }
    };
    let mut rank = 0u64;
    let mut found = false;
    let mut current: Option<&PackedRow> = None;
    let mut visited = 0usize;
    for (k, rows) in buf.entries.iter() {
        if rank > end {
            break;
        }
        visited += 1;
        if !found && k == key {
            rank += rows.len() as u64;
            current = rows.last();
            found = true;
        } else if found {
            for prev in rows {
                if rank > end {
                    break;
                }
                if let Some(cur) = current {
                    emit(RowKind::UpdateBefore, prev, rank);
                    emit(RowKind::UpdateAfter, cur, rank);
                }
                current = Some(prev);
                rank += 1;
            }
        } else {
            rank += rows.len() as u64;
        }
    }
    if rank <= end
        && let Some(cur) = current
    {
        emit(RowKind::Insert, cur, rank);
    }
    // Entries after the last one visited are out of the range for good.
    let stale: Vec<SortKey> = buf.entries.keys().skip(visited).cloned().collect();
    for k in stale {
        if let Some(rows) = buf.entries.remove(&k) {
            buf.count -= rows.len();
        }
    }
}

/// A row that fits enters the top `end`: when the buffer is full, the row
/// that ranks last leaves first (`fits`: the new row ranks before it).
fn without_row_numbers(buf: &mut Buffer, key: SortKey, row: PackedRow, end: usize, out: &mut Emitted) {
    if buf.count >= end
        && let Some(last) = buf.pop_last()
    {
        if last == row {
            buf.put(key, row);
            return;
        }
        out.push(RowKind::Delete, &last, None);
    }
    out.push(RowKind::Insert, &row, None);
    buf.put(key, row);
}

/// Whether an append-only Top-1 retracts the row it replaces (`-U` before
/// `+U`). Flink 2.3 (since 2.1) takes a Top-1 whose row number is not output
/// (an `rn = 1` filter turns the selected row number into the constant 1) for
/// a deduplication: `FlinkChangelogModeInferenceProgram` declares it
/// insert-only unless `RankUtil.keepLastDeduplicateRow` holds — exactly one
/// ORDER BY key, descending (mini-batch is off: Sluice has none). An insert-only
/// rank runs `FastTop1Function` without update-before, which prints a lone
/// `+U` for each better row (Nexmark q9: `ORDER BY price DESC, dateTime`).
pub fn top1_update_before(dirs: &[Direction]) -> bool {
    matches!(dirs, [d] if !d.asc)
}

/// What a Top-1 does with one row: the buffer holds at most one row; the row
/// replaced is retracted (`-U`) only if `update_before`.
pub fn top1(buf: &mut Buffer, key: SortKey, row: PackedRow, output_rank: bool, update_before: bool, out: &mut Emitted) {
    let rank = output_rank.then_some(1);
    match buf.entries.first_key_value().and_then(|(k, rows)| rows.first().map(|r| (k, r))) {
        None => out.push(RowKind::Insert, &row, rank),
        Some((prev_key, prev_row)) if key < *prev_key => {
            if update_before {
                out.push(RowKind::UpdateBefore, prev_row, rank);
            }
            out.push(RowKind::UpdateAfter, &row, rank);
            *buf = Buffer::default();
        }
        Some(_) => return,
    }
    buf.put(key, row);
}

/// What a Top-N over an updating input does with one row (Flink's
/// `RetractableTopNFunction`): the buffer keeps every row of the partition; an
/// accumulate (`+I`, `+U`) adds the row, a retraction (`-U`, `-D`) removes one
/// equal row. The output is the change of the ranks in range: per rank, in
/// order, `-U` old and `+U` new, `+I` for a rank newly filled and `-D` for one
/// emptied; without the row number (and a range from 1), the rows that left
/// (`-D`) and then those that entered (`+I`).
pub fn retract_top_n(
    buf: &mut Buffer,
    key: SortKey,
    row: PackedRow,
    kind: RowKind,
    range: RankRange,
    output_rank: bool,
    out: &mut Emitted,
) {
    let end = range.end as usize;
    let before: Vec<PackedRow> = buf.rows().take(end).cloned().collect();
    if kind.is_accumulate() {
        buf.put(key, row);
    } else {
        let Some(rows) = buf.entries.get_mut(&key) else { return };
        let Some(i) = rows.iter().position(|r| *r == row) else { return };
        rows.remove(i);
        if rows.is_empty() {
            buf.entries.remove(&key);
        }
        buf.count -= 1;
    }
    let after: Vec<&PackedRow> = buf.rows().take(end).collect();
    if output_rank || range.start > 1 {
        for r in range.start..=range.end {
            let i = (r - 1) as usize;
            let rank = output_rank.then_some(r);
            match (before.get(i), after.get(i)) {
                (Some(b), Some(a)) if b != *a => {
                    out.push(RowKind::UpdateBefore, b, rank);
                    out.push(RowKind::UpdateAfter, a, rank);
                }
                (None, Some(a)) => out.push(RowKind::Insert, a, rank),
                (Some(b), None) => out.push(RowKind::Delete, b, rank),
                _ => {}
            }
            if i >= before.len() && i >= after.len() {
                break;
            }
        }
    } else {
        let mut added = after;
        for b in &before {
            match added.iter().position(|a| *a == b) {
                Some(i) => {
                    added.remove(i);
                }
                None => out.push(RowKind::Delete, b, None),
            }
        }
        added.into_iter().for_each(|row| out.push(RowKind::Insert, row, None));
    }
}

/// The Top-N operator of one subtask.
pub struct TopN {
    keys: Arc<Keys>,
    order: Vec<Arc<dyn PhysicalExpr>>,
    dirs: Vec<Direction>,
    range: RankRange,
    output_rank: bool,
    /// The input's column types (the output's, before the row number).
    types: Vec<DataType>,
    /// The output schema without the kind column.
    schema: SchemaRef,
    state: KeyedState<Stamped<Buffer>>,
    ttl: Ttl,
    /// The last output batch's rows and string bytes: the next one's builders
    /// start that large.
    hint: (usize, usize),
}

impl TopN {
    pub fn new(
        keys: Keys,
        order: Vec<(Arc<dyn PhysicalExpr>, Direction)>,
        range: RankRange,
        output_rank: bool,
        types: Vec<DataType>,
        schema: SchemaRef,
    ) -> Self {
        let (order, dirs) = order.into_iter().unzip();
        TopN {
            keys: Arc::new(keys),
            order,
            dirs,
            range,
            output_rank,
            types,
            schema: relax(&schema),
            state: KeyedState::default(),
            ttl: Ttl::default(),
            hint: (0, 0),
        }
    }

    /// A partition not written for the TTL starts over, as in Flink: its rows
    /// are forgotten, not retracted.
    pub fn with_ttl(mut self, ttl: Ttl) -> Self {
        self.ttl = ttl;
        self
    }

    fn top1(&self) -> bool {
        self.range == RankRange { start: 1, end: 1 }
    }

    /// Emitted rows as an output batch, if any.
    fn emit(&mut self, emits: Emitted, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if !emits.is_empty() {
            self.hint = (emits.len(), emits.text_bytes());
            out.push(StreamEvent::Batch(emits.batch(self.output_rank, true, &self.schema)?));
        }
        Ok(())
    }
}

/// An output batch is flushed once it holds this many rows (the default
/// `execution.batch-size`): a row that enters a Top-N moves up to N ranks, so
/// one input batch can make many times its rows.
const OUTPUT_ROWS: usize = 8192;

impl StreamOperator for TopN {
    fn name(&self) -> String {
        format!("TopN({}{})", self.range, if self.output_rank { ", row number" } else { "" })
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        // An updating input carries row kinds; its buffers keep every row.
        let kinds = changelog::has_kinds(&batch).then(|| changelog::kinds(&batch));
        // Over an append-only input most rows do not enter the buffers once
        // they are full: only the rows that do are packed.
        let width = self.types.len();
        let sort = sort_keys(&batch, &self.order, &self.dirs)?;
        let keys = self.keys.encode(&batch)?;
        let mut emits = Emitted::new(&self.types, self.hint.0, self.hint.1);
        let mut reader: Option<RowReader> = None;
        let mut scratch = Writer::new();
        let top1 = self.top1();
        let update_before = top1_update_before(&self.dirs);
        let now = self.ttl.now();
        self.ttl.sweep(&mut self.state, now);
        for (i, key) in sort.into_iter().enumerate() {
            let pk: &[u8] = match &keys {
                Some(k) => k.row(i).data(),
                None => &[],
            };
            self.ttl.take_expired(&mut self.state, pk, now);
            // One lookup per row: a row that does not enter the buffer only reads it.
            let id = match self.state.slot(pk) {
                Some(id) => id,
                None => self.state.insert(pk, Stamped { written: now, value: Buffer::default() }),
            };
            if kinds.is_none() {
                let Some(buf) = self.state.value(id).map(|s| &s.value) else { continue };
                if (top1 && !improves(buf, &key)) || (!top1 && !fits(buf, &key, self.range)) {
                    continue;
                }
            }
            let row = match &reader {
                Some(r) => r.pack(i, &mut scratch)?,
                None => reader.insert(RowReader::new(&batch, width)?).pack(i, &mut scratch)?,
            };
            let Some(stamped) = self.state.slot_mut(id) else { continue };
            stamped.written = now;
            let buf = &mut stamped.value;
            if let Some(kinds) = &kinds {
                retract_top_n(buf, key, row, kinds[i], self.range, self.output_rank, &mut emits);
            } else if top1 {
                self::top1(buf, key, row, self.output_rank, update_before, &mut emits);
            } else {
                top_n(buf, key, row, self.range, self.output_rank, &mut emits);
            }
            if buf.count == 0 {
                self.state.remove(pk);
            }
            if emits.len() >= OUTPUT_ROWS {
                let next = Emitted::new(&self.types, self.hint.0, self.hint.1);
                self.emit(std::mem::replace(&mut emits, next), out)?;
            }
        }
        self.emit(emits, out)
    }

    fn state_layout(&self) -> Option<String> {
        Some(format!("{}; {}; order {:?}; columns {:?}", self.name(), self.keys.layout(), self.dirs, self.types))
    }

    fn state_keys(&self) -> Option<u64> {
        Some(self.state.len() as u64)
    }

    fn state_keys_on_disk(&self) -> Option<u64> {
        Some(self.state.spilled() as u64)
    }

    /// Watermarks only pass through: the state is not event-time based.
    fn watermark_reads_state(&self) -> bool {
        false
    }

    fn health(&self) -> Result<(), OpError> {
        self.state.health()
    }

    fn snapshot(&mut self) -> Result<Option<Box<dyn StateView>>, OpError> {
        Ok(Some(Box::new(self.state.view(self.keys.clone()))))
    }

    fn restore(&mut self, _key_group: u32, state: &[u8]) -> Result<(), OpError> {
        self.state.restore(state)
    }
}

#[cfg(test)]
mod tests;
