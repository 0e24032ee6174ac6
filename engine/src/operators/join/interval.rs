//! The event-time interval join, as Flink's `RowTimeIntervalJoin`
//! (`TimeIntervalJoin`): rows of two append-only inputs join when their keys
//! are equal and `lower <= l.ts - r.ts <= upper`; each side keeps its rows only
//! while a row of the other side could still match them, and the watermark
//! removes them.
//!
//! Invariants, with `W` the operator's watermark (the minimum of its inputs'):
//! - a left row at `t` is kept while `W < t - lower` (a right row that could
//!   still come, later than `W`, may match it), a right row at `t` while
//!   `W < t + upper`; it is removed once `W` passes that bound;
//! - an outer side's row that never matched is emitted null-padded when it is
//!   removed, or at once when it is not kept; nothing is ever retracted, so the
//!   output is append-only;
//! - the output watermark lags the input's by `max(-lower, upper)`, as Flink
//!   delays it, so that joined rows are not late downstream;
//! - a row with a null key or a null time matches nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use arrow::row::RowConverter;
use datafusion_physical_expr::PhysicalExpr;
use sluice_format::changelog::RowKind;
use sluice_sql::plan::{JoinKind, TimeInterval};

use super::{JoinDef, Output, Residual, encode_keys, residual_mask, row_converter, two_inputs};
use crate::error::OpError;
use crate::metrics::NO_WATERMARK;
use crate::operators::calc::relax;
use crate::operators::window::Keys;
use crate::operators::{StreamEvent, StreamOperator, epoch_millis};
use crate::state::StateView;
use crate::state::codec::{Reader, Writer};
use crate::state::keyed::{KeyedState, StateValue};

/// A kept row: its time, its encoded columns, whether it has matched.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TimedRow {
    time: i64,
    row: Box<[u8]>,
    matched: bool,
}

/// Both sides' kept rows under one key.
#[derive(Debug, Clone, Default)]
struct Timed {
    rows: [Vec<TimedRow>; 2],
}

impl StateValue for Timed {
    fn encode(&self, w: &mut Writer) {
        for side in &self.rows {
            w.u32(side.len() as u32);
            for r in side {
                w.i64(r.time);
                w.bytes(&r.row);
                w.bool(r.matched);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError> {
        let mut t = Timed::default();
        for side in t.rows.iter_mut() {
            for _ in 0..r.u32()? {
                let time = r.i64()?;
                let row = r.bytes()?.into();
                side.push(TimedRow { time, row, matched: r.bool()? });
            }
        }
        Ok(t)
    }
}

pub struct IntervalJoin {
    kind: JoinKind,
    keys: [Arc<Keys>; 2],
    rows: [RowConverter; 2],
    times: [usize; 2],
    lower: i64,
    upper: i64,
    residual: Option<Arc<dyn PhysicalExpr>>,
    schema: arrow::datatypes::SchemaRef,
    row_types: String,
    state: KeyedState<Timed>,
    /// Keys with kept rows, by the watermark after which (strictly) some of
    /// them expire. Rebuilt from the state after a restore.
    timers: BTreeMap<i64, Vec<Box<[u8]>>>,
    timers_stale: bool,
    watermark: i64,
}

impl IntervalJoin {
    pub fn new(def: JoinDef, interval: TimeInterval) -> Result<Self, OpError> {
        let [lk, rk] = def.keys;
        Ok(IntervalJoin {
            kind: def.kind,
            keys: [Arc::new(Keys::new(lk, def.key_types.clone())?), Arc::new(Keys::new(rk, def.key_types)?)],
            rows: [row_converter(&def.inputs[0])?, row_converter(&def.inputs[1])?],
            times: [interval.left_time, interval.right_time],
            lower: interval.lower,
            upper: interval.upper,
            residual: def.residual,
            schema: relax(&def.schema),
            row_types: format!(
                "{:?} | {:?}",
                def.inputs[0].fields().iter().map(|f| f.data_type()).collect::<Vec<_>>(),
                def.inputs[1].fields().iter().map(|f| f.data_type()).collect::<Vec<_>>()
            ),
            state: KeyedState::default(),
            timers: BTreeMap::new(),
            timers_stale: false,
            watermark: NO_WATERMARK,
        })
    }

    fn outer(&self, side: usize) -> bool {
        if side == 0 { self.kind.left_outer() } else { self.kind.right_outer() }
    }

    /// The watermark after which a row of `side` at `time` can match nothing
    /// more: a left row at `t` matches right rows up to `t - lower`, a right
    /// row left rows up to `t + upper`.
    fn bound(&self, side: usize, time: i64) -> i64 {
        if side == 0 { time.saturating_sub(self.lower) } else { time.saturating_add(self.upper) }
    }

    /// The other side's times a row of `side` at `time` matches.
    fn range(&self, side: usize, time: i64) -> (i64, i64) {
        if side == 0 {
            (time.saturating_sub(self.upper), time.saturating_sub(self.lower))
        } else {
            (time.saturating_add(self.lower), time.saturating_add(self.upper))
        }
    }

    fn process(&mut self, side: usize, data: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        self.rebuild_timers();
        let other = 1 - side;
        let n = data.num_rows();
        let times = epoch_millis(data.column(self.times[side]))?;
        let keys = encode_keys(&self.keys[side], &data)?;
        self.state.pin(keys.iter().flatten().map(AsRef::as_ref));
        let rows = self.rows[side].convert_columns(data.columns())?;
        // Candidates: (input row, index of the other side's row), and for the
        // residual their rows.
        let (mut offsets, mut cands) = (vec![0usize], Vec::new());
        let (mut cand_rows, mut cand_bytes): (Vec<u32>, Vec<&[u8]>) = (Vec::new(), Vec::new());
        for (r, key) in keys.iter().enumerate() {
            if let (Some(key), false) = (key, times.is_null(r))
                && let Some(t) = self.state.peek(key)
            {
                let (lo, hi) = self.range(side, times.value(r));
                for (i, o) in t.rows[other].iter().enumerate() {
                    if o.time >= lo && o.time <= hi {
                        cands.push(i);
                        if self.residual.is_some() {
                            cand_rows.push(r as u32);
                            cand_bytes.push(&o.row);
                        }
                    }
                }
            }
            offsets.push(cands.len());
        }
        let Residual { mask, theirs } = match &self.residual {
            Some(res) if !cands.is_empty() => {
                residual_mask(res, &self.schema, side, &data, cand_rows, &cand_bytes, &self.rows[other])?
            }
            _ => Residual::all(cands.len()),
        };
        let mut o = Output::with_decoded(theirs);
        for r in 0..n {
            let mut matched = false;
            let key = keys[r].as_deref();
            if let Some(t) = key.and_then(|k| self.state.get_mut(k)) {
                for c in offsets[r]..offsets[r + 1] {
                    if !mask[c] {
                        continue;
                    }
                    if let Some(x) = t.rows[other].get_mut(cands[c]) {
                        x.matched = true;
                        o.push_candidate(r, RowKind::Insert, true, c, &x.row);
                        matched = true;
                    }
                }
            }
            let kept = match (key, times.is_null(r)) {
                (Some(k), false) if self.watermark < self.bound(side, times.value(r)) => Some(k),
                _ => None,
            };
            match kept {
                Some(k) => {
                    let time = times.value(r);
                    let row = TimedRow { time, row: rows.row(r).as_ref().into(), matched };
                    match self.state.get_mut(k) {
                        Some(t) => t.rows[side].push(row),
                        None => {
                            let mut t = Timed::default();
                            t.rows[side].push(row);
                            self.state.insert(k, t);
                        }
                    }
                    self.timers.entry(self.bound(side, time)).or_default().push(k.into());
                }
                None if !matched && self.outer(side) => o.push_row(r, RowKind::Insert, true, None),
                None => {}
            }
        }
        if !o.is_empty() {
            out.push(StreamEvent::Batch(o.assemble(&self.schema, &self.rows[other], side, &data, false)?));
        }
        Ok(())
    }

    /// Removes the rows that can match nothing more at watermark `w`, and
    /// emits the unmatched ones of an outer side null-padded.
    fn expire(&mut self, w: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        self.rebuild_timers();
        // Padded rows per side, as encoded rows.
        let mut padded: [Vec<Box<[u8]>>; 2] = [Vec::new(), Vec::new()];
        while let Some(entry) = self.timers.first_entry() {
            if *entry.key() >= w {
                break;
            }
            for key in entry.remove() {
                let Some(t) = self.state.get_mut(&key) else { continue };
                for (side, padded) in padded.iter_mut().enumerate() {
                    let bound = |time: i64| {
                        if side == 0 { time.saturating_sub(self.lower) } else { time.saturating_add(self.upper) }
                    };
                    let outer = if side == 0 { self.kind.left_outer() } else { self.kind.right_outer() };
                    t.rows[side].retain(|r| {
                        if bound(r.time) >= w {
                            return true;
                        }
                        if outer && !r.matched {
                            padded.push(r.row.clone());
                        }
                        false
                    });
                }
                if t.rows[0].is_empty() && t.rows[1].is_empty() {
                    self.state.remove(&key);
                }
            }
        }
        for (side, rows) in padded.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let parser = self.rows[side].parser();
            let cols = self.rows[side].convert_rows(rows.iter().map(|b| parser.parse(b)))?;
            let n = rows.len();
            let data = RecordBatch::try_new_with_options(
                Arc::new(arrow::datatypes::Schema::new(
                    cols.iter()
                        .enumerate()
                        .map(|(i, c)| arrow::datatypes::Field::new(format!("c{i}"), c.data_type().clone(), true))
                        .collect::<Vec<_>>(),
                )),
                cols,
                &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(n)),
            )?;
            let mut o = Output::default();
            for r in 0..n {
                o.push_row(r, RowKind::Insert, true, None);
            }
            out.push(StreamEvent::Batch(o.assemble(&self.schema, &self.rows[1 - side], side, &data, false)?));
        }
        Ok(())
    }

    /// After a restore, every key with kept rows gets its timers back.
    fn rebuild_timers(&mut self) {
        if !std::mem::take(&mut self.timers_stale) {
            return;
        }
        self.timers.clear();
        let mut timers: BTreeMap<i64, Vec<Box<[u8]>>> = BTreeMap::new();
        let mut kept: Vec<(usize, i64, Box<[u8]>)> = Vec::new();
        self.state.scan(|key, t| {
            for (side, rows) in t.rows.iter().enumerate() {
                kept.extend(rows.iter().map(|r| (side, r.time, Box::from(key))));
            }
        });
        for (side, time, key) in kept {
            timers.entry(self.bound(side, time)).or_default().push(key);
        }
        self.timers = timers;
    }
}

impl StreamOperator for IntervalJoin {
    fn name(&self) -> String {
        format!("IntervalJoin({}, [{}, {}] ms)", self.kind, self.lower, self.upper)
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

    fn process_watermark(&mut self, watermark: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if watermark <= self.watermark {
            return Ok(());
        }
        self.watermark = watermark;
        self.expire(watermark, out)?;
        let delay = (-self.lower).max(self.upper).max(0);
        let w = if watermark == i64::MAX { watermark } else { watermark.saturating_sub(delay) };
        out.push(StreamEvent::Watermark(w));
        Ok(())
    }

    fn state_layout(&self) -> Option<String> {
        Some(format!("{}; {}; rows {}", self.name(), self.keys[0].layout(), self.row_types))
    }

    fn state_keys(&self) -> Option<u64> {
        Some(self.state.len() as u64)
    }

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
mod tests {
    use arrow::array::{ArrayRef, Int64Array, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion_physical_expr::expressions::Column;

    use super::*;
    use crate::operators::KeyGroupWriters;
    use crate::operators::join::test_util::show;

    fn input(k: &str, ts: &str) -> arrow::datatypes::SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(k, DataType::Int64, true),
            Field::new(ts, DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]))
    }

    /// `lower <= l.ts - r.ts <= upper`, keys on the first columns.
    fn join(kind: JoinKind, lower: i64, upper: i64) -> IntervalJoin {
        let (l, r) = (input("k", "lt"), input("k2", "rt"));
        let out = Arc::new(Schema::new([l.fields().to_vec(), r.fields().to_vec()].concat()));
        IntervalJoin::new(
            JoinDef {
                kind,
                keys: [vec![Arc::new(Column::new("k", 0))], vec![Arc::new(Column::new("k2", 0))]],
                key_types: vec![DataType::Int64],
                inputs: [l, r],
                residual: None,
                schema: out,
                updating: false,
                ttl: 0,
            },
            TimeInterval { left_time: 1, right_time: 1, lower, upper },
        )
        .unwrap()
    }

    fn batch(side: usize, rows: &[(i64, i64)]) -> RecordBatch {
        let schema = if side == 0 { input("k", "lt") } else { input("k2", "rt") };
        let k: ArrayRef = Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()));
        let t: ArrayRef = Arc::new(TimestampMillisecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()));
        RecordBatch::try_new(schema, vec![k, t]).unwrap()
    }

    fn feed(j: &mut IntervalJoin, side: usize, rows: &[(i64, i64)]) -> Vec<String> {
        let mut out = Vec::new();
        j.process_batch_from(side, batch(side, rows), &mut out).unwrap();
        show(out)
    }

    fn watermark(j: &mut IntervalJoin, w: i64) -> Vec<String> {
        let mut out = Vec::new();
        j.process_watermark(w, &mut out).unwrap();
        show(out)
    }

    #[test]
    fn rows_join_within_the_bounds_and_expire_with_the_watermark() {
        // l.ts - r.ts in [-10, 5]
        let mut j = join(JoinKind::Left, -10, 5);
        assert_eq!(feed(&mut j, 0, &[(1, 100), (2, 100)]), Vec::<String>::new());
        // Right rows at 95 (100 - 95 = 5: in), 111 (-11: out), 110 (-10: in), key 3: none.
        assert_eq!(feed(&mut j, 1, &[(1, 95), (1, 111), (1, 110), (3, 100)]), ["[1, 100, 1, 95]", "[1, 100, 1, 110]"]);
        // The left rows are kept until the watermark passes 100 + 10: the
        // unmatched one is then emitted padded; the output watermark lags by 10.
        assert_eq!(watermark(&mut j, 110), ["W100"]);
        assert_eq!(watermark(&mut j, 111), ["[2, 100, null, null]", "W101"]);
        // A left row too late to be kept joins what is kept, else is padded at once.
        assert_eq!(
            feed(&mut j, 0, &[(1, 101), (4, 50)]),
            ["[1, 101, 1, 111]", "[1, 101, 1, 110]", "[4, 50, null, null]"]
        );
        assert_eq!(j.state_keys(), Some(1), "only key 1's right rows are kept");
    }

    #[test]
    fn kept_rows_and_their_timers_survive_a_restore() {
        let mut j = join(JoinKind::Full, 0, 0);
        feed(&mut j, 0, &[(1, 10), (2, 20)]);
        feed(&mut j, 1, &[(1, 10)]);
        let mut groups = KeyGroupWriters::new();
        j.snapshot().unwrap().unwrap().encode(128, &mut groups, &|| true).unwrap();
        let mut back = join(JoinKind::Full, 0, 0);
        for (kg, w) in &groups {
            back.restore(*kg, &w.buf).unwrap();
        }
        assert_eq!(feed(&mut back, 1, &[(2, 20), (2, 21)]), ["[2, 20, 2, 20]"]);
        assert_eq!(watermark(&mut back, i64::MAX), ["[null, null, 2, 21]", &format!("W{}", i64::MAX)]);
        assert_eq!(back.state_keys(), Some(0));
    }
}
