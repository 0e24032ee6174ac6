//! The window join, as Flink's `WindowJoinOperator`: the rows of two windowed
//! append-only inputs (a window TVF or window aggregation on each side, with
//! the same windows) meet per join key and window, once the window has ended.
//!
//! Per join key, [`Windows`] keeps each side's rows (row-encoded, in arrival
//! order) by the instant their window ends, in a [`KeyedState`], so a
//! checkpoint restores at another parallelism.
//!
//! Invariants, with `W` the operator's watermark (the minimum of its inputs'):
//! - a row whose window has fired (`end - 1 <= W`) when it arrives is late: it
//!   is dropped and counted, as in Flink;
//! - a window fires when `W` reaches `end - 1`: its left rows are joined with
//!   its right rows (equal keys, the residual), the rows of an outer side that
//!   matched nothing are emitted null-padded, and the window's rows are
//!   removed; nothing is ever retracted, so the output is append-only;
//! - windows fire in order of their end, then of their key; the output
//!   watermark is `W`, forwarded after the rows it fired;
//! - a row whose key has a null matches nothing: it is kept only on an outer
//!   side, to be emitted null-padded when its window fires;
//! - `timers` holds exactly the (end, key) pairs in state; a restore rebuilds
//!   it from the state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow::row::RowConverter;
use datafusion_physical_expr::PhysicalExpr;
use sluice_format::changelog::RowKind;
use sluice_sql::plan::JoinKind;

use super::{JoinDef, Output, Residual, residual_mask, row_converter, two_inputs};
use crate::error::OpError;
use crate::metrics::NO_WATERMARK;
use crate::operators::calc::relax;
use crate::operators::window::{Keys, TimeShift};
use crate::operators::{StreamEvent, StreamOperator, epoch_millis};
use crate::state::StateView;
use crate::state::codec::{Reader, Writer};
use crate::state::keyed::{KeyedState, StateValue};

/// Both sides' rows of one window.
type Sides = [Vec<Box<[u8]>>; 2];

/// The rows of one join key, by the instant their window ends.
#[derive(Debug, Clone, Default, PartialEq)]
struct Windows {
    /// Whether the key has no null (its rows can match).
    matchable: bool,
    by_end: BTreeMap<i64, Sides>,
}

impl StateValue for Windows {
    fn encode(&self, w: &mut Writer) {
        w.bool(self.matchable);
        w.u32(self.by_end.len() as u32);
        for (end, sides) in &self.by_end {
            w.i64(*end);
            for rows in sides {
                w.u32(rows.len() as u32);
                for r in rows {
                    w.bytes(r);
                }
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError> {
        let mut w = Windows { matchable: r.bool()?, by_end: BTreeMap::new() };
        for _ in 0..r.u32()? {
            let end = r.i64()?;
            let mut sides = Sides::default();
            for rows in sides.iter_mut() {
                for _ in 0..r.u32()? {
                    rows.push(r.bytes()?.into());
                }
            }
            w.by_end.insert(end, sides);
        }
        Ok(w)
    }
}

pub struct WindowJoin {
    kind: JoinKind,
    keys: [Arc<Keys>; 2],
    rows: [RowConverter; 2],
    /// Each input's `window_end` column (local time, shifted by `shift`).
    ends: [usize; 2],
    shift: TimeShift,
    residual: Option<Arc<dyn PhysicalExpr>>,
    inputs: [SchemaRef; 2],
    schema: SchemaRef,
    row_types: String,
    state: KeyedState<Windows>,
    timers: BTreeSet<(i64, Arc<[u8]>)>,
    timers_stale: bool,
    watermark: i64,
    late: u64,
}

impl WindowJoin {
    pub fn new(def: JoinDef, ends: [usize; 2], shift: TimeShift) -> Result<Self, OpError> {
        let [lk, rk] = def.keys;
        Ok(WindowJoin {
            kind: def.kind,
            keys: [Arc::new(Keys::new(lk, def.key_types.clone())?), Arc::new(Keys::new(rk, def.key_types)?)],
            rows: [row_converter(&def.inputs[0])?, row_converter(&def.inputs[1])?],
            ends,
            shift,
            residual: def.residual,
            row_types: format!(
                "{:?} | {:?}",
                def.inputs[0].fields().iter().map(|f| f.data_type()).collect::<Vec<_>>(),
                def.inputs[1].fields().iter().map(|f| f.data_type()).collect::<Vec<_>>()
            ),
            inputs: [relax(&def.inputs[0]), relax(&def.inputs[1])],
            schema: relax(&def.schema),
            state: KeyedState::default(),
            timers: BTreeSet::new(),
            timers_stale: false,
            watermark: NO_WATERMARK,
            late: 0,
        })
    }

    fn outer(&self, side: usize) -> bool {
        if side == 0 { self.kind.left_outer() } else { self.kind.right_outer() }
    }

    fn process(&mut self, side: usize, data: RecordBatch) -> Result<(), OpError> {
        self.rebuild_timers();
        let ends = epoch_millis(data.column(self.ends[side]))?;
        let keys = encoded_keys(&self.keys[side], &data)?;
        let rows = self.rows[side].convert_columns(data.columns())?;
        for (r, (key, matchable)) in keys.iter().enumerate() {
            if ends.is_null(r) {
                self.late += 1;
                continue;
            }
            let local = ends.value(r);
            let end = self.shift.to_utc(local, local);
            if end.saturating_sub(1) <= self.watermark {
                self.late += 1;
                continue;
            }
            // A row that can match nothing is kept only to be padded.
            if !matchable && !self.outer(side) {
                continue;
            }
            let row: Box<[u8]> = rows.row(r).as_ref().into();
            let w = match self.state.get_mut(key) {
                Some(w) => w,
                None => {
                    self.state.insert(key, Windows { matchable: *matchable, by_end: BTreeMap::new() });
                    self.state.get_mut(key).ok_or_else(|| OpError::Other("window join: key not stored".into()))?
                }
            };
            let sides = w.by_end.entry(end).or_default();
            if sides[0].is_empty() && sides[1].is_empty() {
                self.timers.insert((end, Arc::from(key.as_ref())));
            }
            sides[side].push(row);
        }
        Ok(())
    }

    /// Fires every window whose end - 1 the watermark `w` has reached.
    fn fire(&mut self, w: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        self.rebuild_timers();
        // The fired windows, in order: whether their rows can match, and their rows.
        let mut fired: Vec<(bool, Sides)> = Vec::new();
        while let Some((end, _)) = self.timers.first() {
            if end.saturating_sub(1) > w {
                break;
            }
            let Some((end, key)) = self.timers.pop_first() else { break };
            let Some(windows) = self.state.get_mut(&key) else { continue };
            if let Some(sides) = windows.by_end.remove(&end) {
                fired.push((windows.matchable, sides));
            }
            if windows.by_end.is_empty() {
                self.state.remove(&key);
            }
        }
        if fired.is_empty() {
            return Ok(());
        }
        // All fired left rows as one batch; each window's left rows are a
        // range of it.
        let lefts: Vec<&[u8]> = fired.iter().flat_map(|(_, s)| s[0].iter().map(|r| r.as_ref())).collect();
        let left = decode(&self.rows[0], &self.inputs[0], &lefts)?;
        // Candidate pairs (left index, right row) of windows whose rows can match.
        let (mut pair_left, mut pair_right): (Vec<u32>, Vec<&[u8]>) = (Vec::new(), Vec::new());
        let mut first = 0usize;
        for (matchable, sides) in &fired {
            if *matchable {
                for l in 0..sides[0].len() {
                    for r in &sides[1] {
                        pair_left.push((first + l) as u32);
                        pair_right.push(r);
                    }
                }
            }
            first += sides[0].len();
        }
        let Residual { mask, theirs } = match &self.residual {
            Some(res) if !pair_left.is_empty() => {
                residual_mask(res, &self.schema, 0, &left, pair_left, &pair_right, &self.rows[1])?
            }
            _ => Residual::all(pair_left.len()),
        };
        let mut o = Output::with_decoded(theirs);
        let (mut first, mut pair) = (0usize, 0usize);
        for (matchable, sides) in &fired {
            let (nl, nr) = (sides[0].len(), sides[1].len());
            // matches[l * nr + r]: left row l matches right row r.
            let matches: &[bool] = if *matchable && nl * nr > 0 { &mask[pair..pair + nl * nr] } else { &[] };
            let hit = |l: usize, r: usize| matches.get(l * nr + r).copied().unwrap_or(false);
            if self.kind == JoinKind::Right {
                // Flink's right outer join walks the right rows.
                for (r, right) in sides[1].iter().enumerate() {
                    let mut matched = false;
                    for l in 0..nl {
                        if hit(l, r) {
                            o.push_candidate(first + l, RowKind::Insert, true, pair + l * nr + r, right);
                            matched = true;
                        }
                    }
                    if !matched {
                        o.push_row(0, RowKind::Insert, false, Some(right));
                    }
                }
            } else {
                let mut right_matched = vec![false; nr];
                for l in 0..nl {
                    let mut matched = false;
                    for (r, right) in sides[1].iter().enumerate() {
                        if hit(l, r) {
                            o.push_candidate(first + l, RowKind::Insert, true, pair + l * nr + r, right);
                            matched = true;
                            right_matched[r] = true;
                        }
                    }
                    if !matched && self.kind.left_outer() {
                        o.push_row(first + l, RowKind::Insert, true, None);
                    }
                }
                if self.kind.right_outer() {
                    for (right, _) in sides[1].iter().zip(&right_matched).filter(|(_, m)| !**m) {
                        o.push_row(0, RowKind::Insert, false, Some(right));
                    }
                }
            }
            if !matches.is_empty() {
                pair += nl * nr;
            }
            first += nl;
        }
        if !o.is_empty() {
            out.push(StreamEvent::Batch(o.assemble(&self.schema, &self.rows[1], 0, &left, false)?));
        }
        Ok(())
    }

    /// After a restore, every (window end, key) in state gets its timer back.
    fn rebuild_timers(&mut self) {
        if !std::mem::take(&mut self.timers_stale) {
            return;
        }
        let mut timers = BTreeSet::new();
        self.state.scan(|key, w| timers.extend(w.by_end.keys().map(|end| (*end, Arc::from(key)))));
        self.timers = timers;
    }
}

/// A row's encoded join key (nulls included: it decides the key group) and
/// whether it has no null.
type RowKey = (Box<[u8]>, bool);

/// Each row's [`RowKey`]. Without key columns, every row has the empty key.
fn encoded_keys(keys: &Keys, data: &RecordBatch) -> Result<Vec<RowKey>, OpError> {
    let n = data.num_rows();
    let Some(converter) = &keys.converter else { return Ok(vec![(Box::default(), true); n]) };
    let cols: Vec<ArrayRef> =
        keys.exprs.iter().map(|e| e.evaluate(data).and_then(|v| v.into_array(n))).collect::<Result<_, _>>()?;
    let encoded = converter.convert_columns(&cols)?;
    Ok((0..n).map(|r| (encoded.row(r).as_ref().into(), !cols.iter().any(|c| c.is_null(r)))).collect())
}

/// Encoded rows decoded into a batch of `schema`.
fn decode(converter: &RowConverter, schema: &SchemaRef, rows: &[&[u8]]) -> Result<RecordBatch, OpError> {
    let parser = converter.parser();
    let cols = converter.convert_rows(rows.iter().map(|b| parser.parse(b)))?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )?)
}

impl StreamOperator for WindowJoin {
    fn name(&self) -> String {
        format!("WindowJoin({})", self.kind)
    }

    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        self.process(0, batch)
    }

    fn process_batch_from(
        &mut self,
        input: usize,
        batch: RecordBatch,
        _out: &mut Vec<StreamEvent>,
    ) -> Result<(), OpError> {
        self.process(two_inputs(input)?, batch)
    }

    fn process_watermark(&mut self, watermark: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.fire(watermark, out)?;
        }
        out.push(StreamEvent::Watermark(watermark));
        Ok(())
    }

    fn late_records_dropped(&self) -> u64 {
        self.late
    }

    fn state_layout(&self) -> Option<String> {
        Some(format!("{}; {}; rows {}; by window end", self.name(), self.keys[0].layout(), self.row_types))
    }

    fn state_keys(&self) -> Option<u64> {
        Some(self.state.len() as u64)
    }

    fn state_keys_on_disk(&self) -> Option<u64> {
        Some(self.state.spilled() as u64)
    }

    /// One record per key: its windows' rows (see [`Windows`]'s encoding).
    fn health(&self) -> Result<(), OpError> {
        self.state.health()
    }

    fn snapshot(&mut self) -> Result<Option<Box<dyn StateView>>, OpError> {
        Ok(Some(Box::new(self.state.view(self.keys[0].clone()))))
    }

    fn restore(&mut self, _key_group: u32, state: &[u8]) -> Result<(), OpError> {
        self.timers_stale = true;
        self.state.restore(state)
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
