//! Window TVFs: assignment of records to TUMBLE, HOP and CUMULATE windows, the
//! window aggregation over them, and the plain window TVF (no aggregation).
//!
//! Semantics follow Flink's window TVFs:
//! - windows are aligned to the epoch; for a TIMESTAMP_LTZ time attribute they
//!   are aligned in `table.local-time-zone`, and `window_start`/`window_end` are
//!   local TIMESTAMP(3) values while `window_time` is the LTZ instant `end - 1 ms`;
//! - a window fires when the watermark reaches `end - 1`;
//! - a record is dropped for a window that has already fired (`end - 1 <=
//!   watermark`), and counted as late when it is dropped for all its windows.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, TimestampMillisecondArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use chrono::{Offset, TimeZone};
use datafusion_physical_expr::PhysicalExpr;
use sluice_sql::plan::WindowKind;

use super::aggregate::{AggDef, GroupAccs};
use super::calc::relax;
use super::panes::{Pane, WindowView};
use super::window_spill::{MAX_RUNS, MIN_RUN_BYTES, merged_batches};
use super::{StreamEvent, StreamOperator, epoch_millis};
use crate::error::OpError;
use crate::metrics::NO_WATERMARK;
use crate::state::StateView;
use crate::state::codec::{Reader, Writer};
use crate::state::disk::DiskBackend;

/// The windows `[start, end)` that contain `ts`, for the non-merging kinds.
/// Session windows are assigned by merging; see [`super::session`].
pub fn assign(kind: &WindowKind, ts: i64, out: &mut Vec<(i64, i64)>) {
    out.clear();
    match *kind {
        WindowKind::Tumble { size, offset } => {
            let start = ts - (ts - offset).rem_euclid(size);
            out.push((start, start + size));
        }
        WindowKind::Hop { slide, size, offset } => {
            let last_start = ts - (ts - offset).rem_euclid(slide);
            let mut start = last_start;
            while start > ts - size {
                out.push((start, start + size));
                start -= slide;
            }
        }
        WindowKind::Cumulate { step, max_size, offset } => {
            let start = ts - (ts - offset).rem_euclid(max_size);
            let mut end = start + (ts - start) / step * step + step;
            while end <= start + max_size {
                out.push((start, end));
                end += step;
            }
        }
        WindowKind::Session { gap } => out.push((ts, ts + gap)),
    }
}

/// Converts between instants (UTC epoch ms, the watermark's domain) and the
/// local wall-clock values windows align to.
#[derive(Debug, Clone)]
pub struct TimeShift {
    tz: Option<arrow::array::timezone::Tz>,
}

impl TimeShift {
    pub fn new(time_zone: Option<&str>) -> Result<Self, OpError> {
        let tz = match time_zone {
            None => None,
            Some(z) if z.eq_ignore_ascii_case("UTC") || z == "+00:00" || z == "Z" => None,
            Some(z) => Some(z.parse().map_err(|e| OpError::Other(format!("time zone {z}: {e}")))?),
        };
        Ok(TimeShift { tz })
    }

    fn offset_ms(&self, utc: i64) -> i64 {
        match &self.tz {
            None => 0,
            Some(tz) => chrono::DateTime::from_timestamp_millis(utc)
                .map(|d| tz.offset_from_utc_datetime(&d.naive_utc()).fix().local_minus_utc() as i64 * 1000)
                .unwrap_or(0),
        }
    }

    pub fn to_local(&self, utc: i64) -> i64 {
        utc + self.offset_ms(utc)
    }

    /// The instant of local time `local`, using the offset in force at `near`.
    pub fn to_utc(&self, local: i64, near: i64) -> i64 {
        local - self.offset_ms(near)
    }
}

/// Assigns rows to the windows of a kind and applies the lateness rule; shared by
/// the window aggregation and the plain window TVF.
pub struct WindowAssigner {
    pub kind: WindowKind,
    pub shift: TimeShift,
    /// Rows dropped because every window they belong to had fired.
    pub late: u64,
    scratch: Vec<(i64, i64)>,
}

impl WindowAssigner {
    pub fn new(kind: WindowKind, shift: TimeShift) -> Self {
        WindowAssigner { kind, shift, late: 0, scratch: Vec::new() }
    }

    /// Calls `f(row, start, end, end_instant)` for each row and each of its windows
    /// that has not fired at `watermark`. `start` and `end` are local values.
    pub fn for_each_open(&mut self, ts: &Int64Array, watermark: i64, mut f: impl FnMut(u32, i64, i64, i64)) {
        for r in 0..ts.len() {
            if ts.is_null(r) {
                self.late += 1;
                continue;
            }
            let utc = ts.value(r);
            assign(&self.kind, self.shift.to_local(utc), &mut self.scratch);
            let mut accepted = false;
            for &(start, end) in &self.scratch {
                let end_utc = self.shift.to_utc(end, utc);
                if end_utc - 1 > watermark {
                    accepted = true;
                    f(r as u32, start, end, end_utc);
                }
            }
            if !accepted {
                self.late += 1;
            }
        }
    }
}

/// Builds the three window columns.
pub fn window_columns(starts: Vec<i64>, ends: Vec<i64>, times: Vec<i64>, time_type: &DataType) -> Vec<ArrayRef> {
    let tz = match time_type {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    };
    let mut wt = TimestampMillisecondArray::from(times);
    if let Some(tz) = tz {
        wt = wt.with_timezone(tz);
    }
    vec![
        Arc::new(TimestampMillisecondArray::from(starts)),
        Arc::new(TimestampMillisecondArray::from(ends)),
        Arc::new(wt),
    ]
}

/// Key columns → row-encoded keys, for hashing into state.
pub struct Keys {
    pub exprs: Vec<Arc<dyn PhysicalExpr>>,
    pub converter: Option<RowConverter>,
    types: Vec<DataType>,
}

impl Keys {
    pub fn new(exprs: Vec<Arc<dyn PhysicalExpr>>, types: Vec<DataType>) -> Result<Self, OpError> {
        let converter = if exprs.is_empty() {
            None
        } else {
            Some(RowConverter::new(types.iter().cloned().map(SortField::new).collect())?)
        };
        Ok(Keys { exprs, converter, types })
    }

    pub fn encode(&self, batch: &RecordBatch) -> Result<Option<arrow::row::Rows>, OpError> {
        match &self.converter {
            None => Ok(None),
            Some(c) => {
                let n = batch.num_rows();
                let cols: Vec<ArrayRef> = self
                    .exprs
                    .iter()
                    .map(|e| e.evaluate(batch).and_then(|v| v.into_array(n)))
                    .collect::<Result<_, _>>()?;
                Ok(Some(c.convert_columns(&cols)?))
            }
        }
    }

    /// The key group of each stored key: the hash of the decoded key columns,
    /// the same hash the keyed exchange routes by. Without keys, group 0.
    pub fn key_groups(&self, keys: &[&[u8]], max_parallelism: usize) -> Result<Vec<u32>, OpError> {
        if self.converter.is_none() || keys.is_empty() {
            return Ok(vec![0; keys.len()]);
        }
        let cols = self.decode(keys)?;
        let hashes = crate::keygroup::hash_rows(&cols, keys.len()).map_err(OpError::Other)?;
        Ok(hashes.into_iter().map(|h| crate::keygroup::key_group(h, max_parallelism) as u32).collect())
    }

    /// A description of the key types, for state compatibility checks.
    pub fn layout(&self) -> String {
        match &self.converter {
            None => "no keys".into(),
            Some(_) => format!("keys {:?}", self.types),
        }
    }

    /// Decodes stored keys back into columns.
    pub fn decode(&self, keys: &[&[u8]]) -> Result<Vec<ArrayRef>, OpError> {
        match &self.converter {
            None => Ok(vec![]),
            Some(c) => {
                let parser = c.parser();
                Ok(c.convert_rows(keys.iter().map(|k| parser.parse(k)))?)
            }
        }
    }
}

pub struct WindowAggregate {
    assigner: WindowAssigner,
    time_col: usize,
    time_type: DataType,
    /// Shared with the snapshot views, which compute key groups from keys.
    keys: Arc<Keys>,
    aggs: Vec<AggDef>,
    schema: SchemaRef,
    panes: BTreeMap<i64, Pane>,
    /// Panes fired since the last snapshot view, once one was taken (what an
    /// incremental checkpoint deletes).
    fired: Option<Vec<i64>>,
    watermark: i64,
    /// Bundles end when the watermark reaches this value (see [`trigger_interval`]).
    next_trigger: i64,
    /// The earliest pane end that rows of the current bundle went to (MAX
    /// when none): like Flink's local window buffer, a bundle ends at a
    /// trigger only when one of the windows it holds rows of fires.
    bundle_min_end: i64,
    /// A window-attached aggregation: each row's window is in these
    /// `window_start` and `window_end` columns (local times) instead of being
    /// assigned from `time_col`.
    attached: Option<[usize; 2]>,
    /// On the disk state backend: what this operator holds on the heap, as
    /// the backend counts it, and where its panes spill (see
    /// [`super::window_spill`]).
    spill: Option<PaneSpill>,
}

struct PaneSpill {
    backend: Arc<DiskBackend>,
    /// Heap bytes last published to the backend.
    published: usize,
    /// Estimated heap bytes of a group in memory (0 before one was measured).
    per_group: usize,
}

impl Drop for PaneSpill {
    fn drop(&mut self) {
        self.backend.unpublish(self.published);
    }
}

/// The slice length and offset of a window kind: Flink's window aggregation
/// ends a bundle of partial aggregates when the watermark reaches a slice end - 1.
pub fn trigger_interval(kind: &WindowKind) -> Option<(i64, i64)> {
    match *kind {
        WindowKind::Tumble { size, offset } => Some((size, offset)),
        WindowKind::Hop { slide, offset, .. } => Some((slide, offset)),
        WindowKind::Cumulate { step, offset, .. } => Some((step, offset)),
        WindowKind::Session { .. } => None,
    }
}

impl WindowAggregate {
    pub fn new(
        kind: WindowKind,
        time_col: usize,
        time_type: DataType,
        shift: TimeShift,
        keys: Keys,
        aggs: Vec<AggDef>,
        schema: SchemaRef,
    ) -> Self {
        WindowAggregate {
            assigner: WindowAssigner::new(kind, shift),
            time_col,
            time_type,
            keys: Arc::new(keys),
            aggs,
            schema: relax(&schema),
            panes: BTreeMap::new(),
            fired: None,
            watermark: NO_WATERMARK,
            next_trigger: i64::MIN,
            bundle_min_end: i64::MAX,
            attached: None,
            spill: crate::state::disk::current().map(|backend| PaneSpill { backend, published: 0, per_group: 0 }),
        }
    }

    /// On the disk backend: publishes the heap bytes of the groups in memory
    /// and, while the heap is over its budget, spills the pane with the most
    /// of them, if they take a 16th of the budget and [`MIN_RUN_BYTES`] or
    /// more: a smaller pane is not worth a run (a file, and a merge when it
    /// fires).
    fn make_room(&mut self) -> Result<(), OpError> {
        let Some(s) = &mut self.spill else { return Ok(()) };
        if self.keys.converter.is_none() {
            return Ok(());
        }
        // One group measured per call, the newest of the largest pane: its
        // key and index entry, and its accumulators' columns and blocks at
        // about twice their encoding (a moving average).
        if let Some(p) = self.panes.values().max_by_key(|p| p.keys().len())
            && let Some(g) = p.keys().len().checked_sub(1)
        {
            let mut w = Writer::new();
            p.accs.encode_group(g as u32, &mut w);
            let measured = 48 + 2 * w.buf.len();
            s.per_group = if s.per_group == 0 { measured } else { (s.per_group * 7 + measured) / 8 };
        }
        let in_memory = |panes: &BTreeMap<i64, Pane>| panes.values().map(|p| p.keys().len()).sum::<usize>();
        s.backend.publish(&mut s.published, in_memory(&self.panes) * s.per_group);
        while s.backend.over_budget() {
            let Some(pane) = self.panes.values_mut().max_by_key(|p| p.keys().len()) else { break };
            if pane.keys().len() * s.per_group < (s.backend.heap_budget() / 16).max(MIN_RUN_BYTES) {
                break;
            }
            pane.spill(s.backend.file("window-run"), GroupAccs::with_bundles(&self.aggs, true)?)?;
            if pane.runs().len() > MAX_RUNS {
                pane.compact(s.backend.file("window-run"), &self.aggs)?;
            }
            s.backend.set(&mut s.published, in_memory(&self.panes) * s.per_group);
        }
        Ok(())
    }

    /// Fires a pane that spilled: its runs and groups in memory merged, in
    /// batches of [`super::window_spill::MERGE_BATCH`] keys.
    fn fire_spilled(&self, mut pane: Pane, end_utc: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        pane.accs.fold();
        let memory = pane.sorted_groups();
        merged_batches(
            pane.runs(),
            &memory,
            |g, w| pane.accs.encode_group(g, w),
            &self.aggs,
            |m| {
                let ids: Vec<u32> = m.groups.iter().map(|(_, g)| *g).collect();
                out.push(StreamEvent::Batch(self.fired(&pane, end_utc, &m.keys(), &m.accs, &ids)?));
                Ok(())
            },
        )
    }

    /// Aggregates the windows the rows carry in these columns (Flink's
    /// window-attached aggregation, over a window join for instance): a row
    /// whose window has fired is late.
    pub fn attached(mut self, columns: Option<[usize; 2]>) -> Self {
        self.attached = columns;
        self
    }

    /// Each row's window, from its `window_start` and `window_end` columns,
    /// as `(end instant, start local, end local, row)`, but for late rows.
    fn attached_windows(
        &mut self,
        batch: &RecordBatch,
        [start, end]: [usize; 2],
    ) -> Result<Vec<(i64, i64, i64, u32)>, OpError> {
        let (starts, ends) = (epoch_millis(batch.column(start))?, epoch_millis(batch.column(end))?);
        let mut pairs = Vec::with_capacity(batch.num_rows());
        for r in 0..batch.num_rows() {
            if starts.is_null(r) || ends.is_null(r) {
                self.assigner.late += 1;
                continue;
            }
            let (s, e) = (starts.value(r), ends.value(r));
            let end_utc = self.assigner.shift.to_utc(e, e);
            if end_utc - 1 > self.watermark {
                pairs.push((end_utc, s, e, r as u32));
            } else {
                self.assigner.late += 1;
            }
        }
        Ok(pairs)
    }

    fn fire(&mut self, watermark: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        while let Some(entry) = self.panes.first_entry() {
            let end_utc = *entry.key();
            if end_utc - 1 > watermark {
                break;
            }
            let pane = entry.remove();
            if let Some(f) = &mut self.fired {
                f.push(end_utc);
            }
            if !pane.runs().is_empty() {
                self.fire_spilled(pane, end_utc, out)?;
                continue;
            }
            // Group ids are the keys' positions.
            let groups: Vec<(&[u8], u32)> = if self.keys.converter.is_none() {
                vec![(&[][..], 0)]
            } else {
                pane.keys().iter().enumerate().map(|(g, k)| (k.as_ref(), g as u32)).collect()
            };
            let ids: Vec<u32> = groups.iter().map(|(_, g)| *g).collect();
            let key_bytes: Vec<&[u8]> = groups.iter().map(|(k, _)| *k).collect();
            out.push(StreamEvent::Batch(self.fired(&pane, end_utc, &key_bytes, &pane.accs, &ids)?));
        }
        Ok(())
    }

    /// The output rows of a firing pane: groups `ids` of `accs`, whose keys
    /// are `keys`.
    fn fired(
        &self,
        pane: &Pane,
        end_utc: i64,
        keys: &[&[u8]],
        accs: &GroupAccs,
        ids: &[u32],
    ) -> Result<RecordBatch, OpError> {
        let n = ids.len();
        let mut cols = window_columns(vec![pane.start; n], vec![pane.end; n], vec![end_utc - 1; n], &self.time_type);
        cols.extend(self.keys.decode(keys)?);
        cols.extend(accs.emit(&self.aggs, ids)?);
        Ok(RecordBatch::try_new(self.schema.clone(), cols)?)
    }
}

impl StreamOperator for WindowAggregate {
    fn name(&self) -> String {
        format!("WindowAggregate({})", self.assigner.kind)
    }

    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        // (end instant, start local, end local, row)
        let mut pairs: Vec<(i64, i64, i64, u32)> = match self.attached {
            Some(columns) => self.attached_windows(&batch, columns)?,
            None => {
                let ts = epoch_millis(batch.column(self.time_col))?;
                let mut pairs = Vec::with_capacity(batch.num_rows());
                self.assigner
                    .for_each_open(&ts, self.watermark, |r, start, end, end_utc| pairs.push((end_utc, start, end, r)));
                pairs
            }
        };
        if pairs.is_empty() {
            return Ok(());
        }
        pairs.sort_by_key(|p| p.0);
        let keys = self.keys.encode(&batch)?;
        let inputs: Vec<_> = self.aggs.iter().map(|a| a.evaluate(&batch)).collect::<Result<_, _>>()?;
        let mut i = 0;
        let mut rows = Vec::new();
        let mut gids = Vec::new();
        while i < pairs.len() {
            let (end_utc, start, end, _) = pairs[i];
            let pane = match self.panes.entry(end_utc) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let mut accs = GroupAccs::with_bundles(&self.aggs, true)?;
                    if keys.is_none() {
                        accs.add_group();
                    }
                    v.insert(Pane::new(start, end, accs))
                }
            };
            rows.clear();
            gids.clear();
            while i < pairs.len() && pairs[i].0 == end_utc {
                let r = pairs[i].3;
                let gid = match &keys {
                    None => 0,
                    Some(k) => pane.group(k.row(r as usize).as_ref()),
                };
                rows.push(r);
                gids.push(gid);
                i += 1;
            }
            pane.accs.update(&inputs, &rows, &gids)?;
            self.bundle_min_end = self.bundle_min_end.min(end_utc);
        }
        self.make_room()
    }

    fn process_watermark(&mut self, watermark: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if watermark > self.watermark {
            self.watermark = watermark;
            if watermark >= self.next_trigger {
                if self.bundle_min_end - 1 <= watermark {
                    for pane in self.panes.values_mut() {
                        pane.accs.fold();
                    }
                    self.bundle_min_end = i64::MAX;
                }
                self.next_trigger = match trigger_interval(&self.assigner.kind) {
                    Some((i, offset)) if watermark < i64::MAX - i => {
                        watermark - (watermark - offset).rem_euclid(i) + i - 1
                    }
                    _ => i64::MAX,
                };
            }
            self.fire(watermark, out)?;
        }
        out.push(StreamEvent::Watermark(watermark));
        Ok(())
    }

    fn late_records_dropped(&self) -> u64 {
        self.assigner.late
    }

    fn state_layout(&self) -> Option<String> {
        let accs = GroupAccs::with_bundles(&self.aggs, true).map(|a| a.layout()).unwrap_or_default();
        Some(format!("{}; {}; aggregates [{accs}]", self.name(), self.keys.layout()))
    }

    /// Entry per (window, key): end instant, start, end, key, accumulators.
    /// Entries of (key, window): what a checkpoint writes one record for.
    fn state_keys(&self) -> Option<u64> {
        let in_memory = |p: &Pane| if self.keys.converter.is_none() { 1 } else { p.keys().len() as u64 };
        Some(self.panes.values().map(|p| in_memory(p) + p.groups_on_disk()).sum())
    }

    /// Groups in the panes' runs, on the disk backend (a key spilled twice
    /// counts twice until its pane fires); 0 on the heap backend.
    fn state_keys_on_disk(&self) -> Option<u64> {
        Some(self.panes.values().map(Pane::groups_on_disk).sum())
    }

    /// A view of every pane (see [`super::panes`]); written by
    /// [`WindowView`]'s `encode`, one entry per (window, key).
    fn snapshot(&mut self) -> Result<Option<Box<dyn StateView>>, OpError> {
        for pane in self.panes.values_mut() {
            pane.accs.fold();
        }
        self.bundle_min_end = i64::MAX;
        let fired = self.fired.replace(Vec::new());
        Ok(Some(Box::new(WindowView::take(self.panes.iter_mut(), self.keys.clone(), fired, &self.aggs))))
    }

    fn restore(&mut self, _key_group: u32, state: &[u8]) -> Result<(), OpError> {
        let mut r = Reader::new(state);
        while !r.is_empty() {
            let end_utc = r.i64()?;
            let start = r.i64()?;
            let end = r.i64()?;
            let key = r.bytes()?;
            let pane = match self.panes.entry(end_utc) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(Pane::new(start, end, GroupAccs::with_bundles(&self.aggs, true)?))
                }
            };
            pane.restore_group(self.keys.converter.is_some().then_some(key), &mut r)?;
        }
        self.make_room()
    }
}

/// A window TVF without aggregation: each row once per window, with the window
/// columns appended. Rows are dropped for windows that have fired.
pub struct WindowAssign {
    assigner: WindowAssigner,
    time_col: usize,
    time_type: DataType,
    schema: SchemaRef,
    watermark: i64,
}

impl WindowAssign {
    pub fn new(kind: WindowKind, time_col: usize, time_type: DataType, shift: TimeShift, schema: SchemaRef) -> Self {
        WindowAssign {
            assigner: WindowAssigner::new(kind, shift),
            time_col,
            time_type,
            schema: relax(&schema),
            watermark: NO_WATERMARK,
        }
    }
}

impl StreamOperator for WindowAssign {
    fn name(&self) -> String {
        format!("WindowAssign({})", self.assigner.kind)
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let ts = epoch_millis(batch.column(self.time_col))?;
        let (mut idx, mut starts, mut ends, mut times) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        self.assigner.for_each_open(&ts, self.watermark, |r, start, end, end_utc| {
            idx.push(r);
            starts.push(start);
            ends.push(end);
            times.push(end_utc - 1);
        });
        if idx.is_empty() {
            return Ok(());
        }
        let indices = UInt32Array::from(idx);
        let mut cols: Vec<ArrayRef> =
            batch.columns().iter().map(|c| take(c, &indices, None)).collect::<Result<_, _>>()?;
        cols.extend(window_columns(starts, ends, times, &self.time_type));
        out.push(StreamEvent::Batch(RecordBatch::try_new(self.schema.clone(), cols)?));
        Ok(())
    }

    fn process_watermark(&mut self, watermark: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        self.watermark = self.watermark.max(watermark);
        out.push(StreamEvent::Watermark(watermark));
        Ok(())
    }

    fn late_records_dropped(&self) -> u64 {
        self.assigner.late
    }
}

#[cfg(test)]
#[path = "window_attached_tests.rs"]
mod attached_tests;

#[cfg(test)]
#[path = "window_bundle_tests.rs"]
mod bundle_tests;

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
