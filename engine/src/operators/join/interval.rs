//! The event-time interval join, as Flink's `RowTimeIntervalJoin`
//! (`TimeIntervalJoin`): rows of two append-only inputs join when their keys
//! are equal and `lower <= l.ts - r.ts <= upper`; each side keeps its rows
//! while a row of the other side could still match them, and cleanup timers
//! remove them, as Flink's do.
//!
//! With `W` the operator's watermark (0 before the first), a row of a side
//! reaching `reach` into the other's times (left: `-lower`, right: `upper`):
//! - a row at `t` looks at the other side's kept rows of its key only while
//!   the end of its range (`t - lower` for a left row, `t + upper` for a
//!   right one) is after that side's expiration time; the look joins every
//!   kept row in its range, then expires those at or before
//!   `W - reach(other) - 1` (the expiration time from then on);
//! - the row is kept while `W` is before the end of its range; otherwise an
//!   outer side's row that matched nothing is emitted null-padded at once;
//! - the first kept row of a key and side registers a cleanup timer at
//!   `t + reach + (reach(left) + reach(right)) / 2 + 1`; when `W` reaches it,
//!   the side's rows at or before `W - reach - 1` go (an outer side's
//!   unmatched ones null-padded), and the timer is registered again for the
//!   earliest row left. So a row stays a while after its bound, and a late
//!   row of the other side may still join it then, exactly as in Flink;
//! - nothing is ever retracted, so the output is append-only; the output
//!   watermark lags the input's by `max(-lower, upper)`, as Flink delays it;
//! - a row with a null key or a null time matches nothing.
//!
//! The expiration times are per subtask and not in checkpoints (as in
//! Flink); after a restore the timers are registered again from each key's
//! earliest kept row.

use std::collections::{BTreeMap, HashMap, HashSet};
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

/// A key's encoded bytes and a side (0 left, 1 right).
type KeySide = (Box<[u8]>, usize);

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
    /// The cleanup timers, by the watermark at which they fire: the key and
    /// the side whose kept rows are then cleaned. Rebuilt from the state
    /// after a restore.
    timers: BTreeMap<i64, Vec<KeySide>>,
    /// The pending timer of each key and side with kept rows; an entry of
    /// `timers` that is not pending is stale.
    pending: HashMap<KeySide, i64>,
    timers_stale: bool,
    /// Per side, the time up to which its kept rows are expired (Flink's
    /// `leftExpirationTime` and `rightExpirationTime`: per subtask, not in
    /// checkpoints, 0 at the start).
    expired: [i64; 2],
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
            pending: HashMap::new(),
            timers_stale: false,
            expired: [0, 0],
            watermark: NO_WATERMARK,
        })
    }

    fn outer(&self, side: usize) -> bool {
        if side == 0 { self.kind.left_outer() } else { self.kind.right_outer() }
    }

    /// How far a row of `side` reaches into the other side's times (Flink's
    /// `leftRelativeSize` = -lower, `rightRelativeSize` = upper).
    fn reach(&self, side: usize) -> i64 {
        if side == 0 { self.lower.saturating_neg() } else { self.upper }
    }

    /// The other side's times a row of `side` at `time` matches; the upper
    /// end is also the watermark below which the row is kept.
    fn range(&self, side: usize, time: i64) -> (i64, i64) {
        if side == 0 {
            (time.saturating_sub(self.upper), time.saturating_sub(self.lower))
        } else {
            (time.saturating_add(self.lower), time.saturating_add(self.upper))
        }
    }

    /// The operator's time: its watermark, 0 before the first.
    fn now(&self) -> i64 {
        self.watermark.max(0)
    }

    /// Kept rows of `side` at or before this time are expired at time `now`.
    fn expiration(&self, now: i64, side: usize) -> i64 {
        if now == i64::MAX { i64::MAX } else { now.saturating_sub(self.reach(side)).saturating_sub(1) }
    }

    /// Registers the cleanup timer of `key`'s rows of `side` for its row at
    /// `time`: half the interval's width after the row's bound.
    fn register(&mut self, key: &[u8], side: usize, time: i64) {
        let slack = self.reach(0).saturating_add(self.reach(1)) / 2;
        let at = time.saturating_add(self.reach(side)).saturating_add(slack.max(0)).saturating_add(1);
        self.pending.insert((key.into(), side), at);
        self.timers.entry(at).or_default().push((key.into(), side));
    }

    fn process(&mut self, side: usize, data: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        self.rebuild_timers();
        let other = 1 - side;
        let n = data.num_rows();
        let times = epoch_millis(data.column(self.times[side]))?;
        let keys = encode_keys(&self.keys[side], &data)?;
        self.state.pin(keys.iter().flatten().map(AsRef::as_ref));
        let rows = self.rows[side].convert_columns(data.columns())?;
        let now = self.now();
        let expire_to = self.expiration(now, other);
        // Which rows look at the other side's kept rows, and which of those
        // they match (the residual decides in one go): a row looks only while
        // its range's end passes the other side's expiration time, and that
        // look expires the key's rows at or before `expire_to` (they leave at
        // the end of the batch; rows after it no longer see them).
        let mut expired = self.expired[other];
        let mut looked: HashSet<&[u8]> = HashSet::new();
        let (mut offsets, mut cands) = (vec![0usize], Vec::new());
        let (mut cand_rows, mut cand_bytes): (Vec<u32>, Vec<&[u8]>) = (Vec::new(), Vec::new());
        for (r, key) in keys.iter().enumerate() {
            if let (Some(key), false) = (key, times.is_null(r)) {
                let (lo, hi) = self.range(side, times.value(r));
                if expired < hi {
                    expired = expire_to;
                    let gone = !looked.insert(key.as_ref());
                    if let Some(t) = self.state.peek(key) {
                        for (i, o) in t.rows[other].iter().enumerate() {
                            if o.time >= lo && o.time <= hi && !(gone && o.time <= expire_to) {
                                cands.push(i);
                                if self.residual.is_some() {
                                    cand_rows.push(r as u32);
                                    cand_bytes.push(&o.row);
                                }
                            }
                        }
                    }
                }
            }
            offsets.push(cands.len());
        }
        self.expired[other] = expired;
        let Residual { mask, theirs } = match &self.residual {
            Some(res) if !cands.is_empty() => {
                residual_mask(res, &self.schema, side, &data, cand_rows, &cand_bytes, &self.rows[other])?
            }
            _ => Residual::all(cands.len()),
        };
        let looked: Vec<Box<[u8]>> = looked.into_iter().map(Box::from).collect();
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
                (Some(k), false) if now < self.range(side, times.value(r)).1 => Some(k),
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
                    if !self.pending.contains_key(&(Box::from(k), side)) {
                        self.register(k, side, time);
                    }
                }
                None if !matched && self.outer(side) => o.push_row(r, RowKind::Insert, true, None),
                None => {}
            }
        }
        if !o.is_empty() {
            out.push(StreamEvent::Batch(o.assemble(&self.schema, &self.rows[other], side, &data, false)?));
        }
        let mut padded = Vec::new();
        for key in &looked {
            self.drop_expired(key, other, expire_to, &mut padded);
        }
        self.emit_padded(other, padded, out)
    }

    /// Removes `key`'s rows of `side` at or before `to`, collecting the
    /// unmatched ones of an outer side in `padded`; the key leaves the state
    /// when it keeps no rows.
    fn drop_expired(&mut self, key: &[u8], side: usize, to: i64, padded: &mut Vec<Box<[u8]>>) {
        let outer = self.outer(side);
        let Some(t) = self.state.get_mut(key) else { return };
        t.rows[side].retain(|r| {
            if r.time > to {
                return true;
            }
            if outer && !r.matched {
                padded.push(r.row.clone());
            }
            false
        });
        if t.rows[0].is_empty() && t.rows[1].is_empty() {
            self.state.remove(key);
        }
    }

    /// Fires the cleanup timers due at watermark `w` (Flink's `onTimer`): each
    /// expires its key's rows of its side, emits the unmatched ones of an
    /// outer side null-padded, and is registered again for the earliest row
    /// left.
    fn expire(&mut self, w: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        self.rebuild_timers();
        let now = self.now();
        let mut padded: [Vec<Box<[u8]>>; 2] = [Vec::new(), Vec::new()];
        while let Some(entry) = self.timers.first_entry() {
            if *entry.key() > w {
                break;
            }
            let (at, due) = entry.remove_entry();
            for (key, side) in due {
                if self.pending.get(&(key.clone(), side)) != Some(&at) {
                    continue;
                }
                self.pending.remove(&(key.clone(), side));
                let to = self.expiration(now, side);
                self.expired[side] = to;
                self.drop_expired(&key, side, to, &mut padded[side]);
                let earliest = self.state.peek(&key).and_then(|t| t.rows[side].iter().map(|r| r.time).min());
                match earliest {
                    Some(e) if e > 0 => self.register(&key, side, e),
                    // Flink drops what is left when no row after time 0 is.
                    Some(_) => self.drop_expired(&key, side, i64::MAX, &mut Vec::new()),
                    None => {}
                }
            }
        }
        for (side, rows) in padded.into_iter().enumerate() {
            self.emit_padded(side, rows, out)?;
        }
        Ok(())
    }

    /// Rows of `side` null-padded on the other side, as one batch.
    fn emit_padded(&self, side: usize, rows: Vec<Box<[u8]>>, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if rows.is_empty() {
            return Ok(());
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
        Ok(())
    }

    /// After a restore, every key and side with kept rows gets a timer for its
    /// earliest row (Flink keeps its timers in checkpoints; the first firing
    /// after a restore may come at another watermark).
    fn rebuild_timers(&mut self) {
        if !std::mem::take(&mut self.timers_stale) {
            return;
        }
        self.timers.clear();
        self.pending.clear();
        let mut earliest: Vec<(Box<[u8]>, usize, i64)> = Vec::new();
        self.state.scan(|key, t| {
            for (side, rows) in t.rows.iter().enumerate() {
                if let Some(e) = rows.iter().map(|r| r.time).min() {
                    earliest.push((Box::from(key), side, e));
                }
            }
        });
        for (key, side, time) in earliest {
            self.register(&key, side, time);
        }
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

    fn state_keys_on_disk(&self) -> Option<u64> {
        Some(self.state.spilled() as u64)
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
    fn rows_join_within_the_bounds_and_expire_when_their_timer_fires() {
        // l.ts - r.ts in [-10, 5]: a left row reaches 10 ms, a right row 5 ms;
        // a cleanup timer fires (5 + 10) / 2 + 1 ms after a row's bound.
        let mut j = join(JoinKind::Left, -10, 5);
        assert_eq!(feed(&mut j, 0, &[(1, 100), (2, 100)]), Vec::<String>::new());
        // Right rows at 95 (100 - 95 = 5: in), 111 (-11: out), 110 (-10: in), key 3: none.
        assert_eq!(feed(&mut j, 1, &[(1, 95), (1, 111), (1, 110), (3, 100)]), ["[1, 100, 1, 95]", "[1, 100, 1, 110]"]);
        // Key 1's right rows: timer at 95 + 5 + 7 + 1 = 108, which expires
        // those at or before 110 - 5 - 1 = 104 (the row at 95). The output
        // watermark lags by 10.
        assert_eq!(watermark(&mut j, 110), ["W100"]);
        // The left rows' timer (100 + 10 + 7 + 1 = 118) is not due: the
        // unmatched left row of key 2 is not padded yet, as in Flink.
        assert_eq!(watermark(&mut j, 111), ["W101"]);
        // A late left row still joins the kept right rows in its range, and
        // is not kept; one too late to look at them (its range ends at 60,
        // before what has expired) is padded at once.
        assert_eq!(
            feed(&mut j, 0, &[(1, 101), (4, 50)]),
            ["[1, 101, 1, 111]", "[1, 101, 1, 110]", "[4, 50, null, null]"]
        );
        assert_eq!(j.state_keys(), Some(3));
        // At 118 the left rows expire (those at or before 118 - 10 - 1): key
        // 2's unmatched one is padded; key 3's right row went at 113.
        assert_eq!(watermark(&mut j, 118), ["[2, 100, null, null]", "W108"]);
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
