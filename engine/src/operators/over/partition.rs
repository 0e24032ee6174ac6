//! The state of one partition of an OVER aggregation and what its timers do,
//! pure: Flink's `RowTime{Rows,Range}{Bounded,Unbounded}PrecedingFunction`
//! per key, without threads or clocks.
//!
//! - A row waits in `pending` under its time until the watermark reaches a
//!   timer at that time; then the rows of that time are processed in arrival
//!   order, and each is emitted with the aggregates of its frame.
//! - Late rows: an unbounded frame drops a row at or before the watermark; a
//!   bounded one drops a row at or before the last timer its partition fired
//!   (0 before any, so rows at or before the epoch are dropped, as in Flink).
//! - A bounded frame keeps the processed rows still in it (`frame`, oldest
//!   first) and retracts them from the accumulators as they leave: ROWS keeps
//!   the last n + 1 rows; RANGE keeps rows within the interval of the current
//!   time, and all rows of one time are peers that get the same result.
//! - A RANGE bounded partition also keeps Flink's cleanup timer: its state
//!   is dropped once the watermark passes its last row's time plus 1.5 times
//!   the interval (which resets its lateness), and a stale cleanup timer that
//!   fires counts as a fired timer for lateness.
//!
//! - With `table.exec.state.ttl`, `touched` is when a row last came or a
//!   timer last fired (processing time); the operator decides expiry.
//!
//! Invariant: `timers` holds every timer of the partition (the time of each
//! `pending` entry, and cleanup timers), which the operator mirrors in its
//! global timer queue.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use sluice_sql::plan::OverFrame;

use crate::error::OpError;
use crate::operators::aggregate::AggDef;
use crate::operators::group_agg::accs::Acc;
use crate::operators::rows::{Row, decode_row, encode_row};
use crate::state::codec::{Reader, Writer};
use crate::state::keyed::StateValue;
use crate::state::value::Val;

/// One aggregate's input from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// The row does not pass the aggregate's FILTER.
    Skip,
    /// `COUNT(*)`: a row without a value.
    Star,
    Val(Val),
}

/// A row with its aggregates' inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub row: Row,
    pub args: Arc<[Arg]>,
}

/// What one partition keeps.
#[derive(Debug, Clone)]
pub struct Partition {
    /// Rows not yet processed, by time, in arrival order.
    pending: BTreeMap<i64, Vec<Entry>>,
    /// Bounded frames: processed rows still in the frame, oldest first.
    frame: VecDeque<(i64, Entry)>,
    accs: Vec<Acc>,
    /// The time of the last timer fired (Flink's `lastTriggeringTs`).
    last_fired: Option<i64>,
    /// RANGE bounded: the cleanup time (Flink's `cleanupTsState`).
    cleanup: Option<i64>,
    timers: BTreeSet<i64>,
    /// When a row last came or a timer last fired (processing time, ms).
    pub touched: i64,
}

/// What firing a timer did to the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    Kept,
    /// The cleanup timer fired: the partition's state is to be removed.
    Cleared,
}

impl Partition {
    pub fn new(aggs: &[AggDef], frame: &OverFrame) -> Self {
        // Only a bounded frame retracts (Flink's unbounded OVER keeps plain MIN/MAX).
        let retract = frame.preceding.is_some();
        Partition {
            pending: BTreeMap::new(),
            frame: VecDeque::new(),
            accs: aggs.iter().map(|d| Acc::new(d, retract)).collect(),
            last_fired: None,
            cleanup: None,
            timers: BTreeSet::new(),
            touched: 0,
        }
    }

    /// Each accumulator's layout, compared on restore.
    pub fn layout(&self) -> Vec<&'static str> {
        self.accs.iter().map(Acc::layout).collect()
    }

    pub fn timers(&self) -> impl Iterator<Item = i64> + '_ {
        self.timers.iter().copied()
    }

    /// Whether rows wait for the watermark.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether a row at `ts` is late for this partition (`None`: a new one).
    pub fn is_late(part: Option<&Partition>, frame: &OverFrame, ts: i64, watermark: i64) -> bool {
        match frame.preceding {
            None => ts <= watermark,
            Some(_) => ts <= part.and_then(|p| p.last_fired).unwrap_or(0),
        }
    }

    /// Buffers a row that is not late; returns the timers it registers.
    pub fn add(&mut self, frame: &OverFrame, ts: i64, entry: Entry) -> Vec<i64> {
        let mut new = Vec::new();
        self.pending.entry(ts).or_default().push(entry);
        if self.timers.insert(ts) {
            new.push(ts);
        }
        if let (false, Some(offset)) = (frame.rows, frame.preceding) {
            let min = ts.saturating_add(offset).saturating_add(1);
            let max = ts.saturating_add(offset.saturating_add(offset / 2)).saturating_add(1);
            if self.cleanup.is_none_or(|c| c < min) {
                self.cleanup = Some(max);
                if self.timers.insert(max) {
                    new.push(max);
                }
            }
        }
        new
    }

    /// Fires the timer at `t`: the rows at `t`, each with its frame's
    /// aggregates appended, go to `out`.
    pub fn fire(&mut self, frame: &OverFrame, defs: &[AggDef], t: i64, out: &mut Vec<Row>) -> Result<Fired, OpError> {
        self.timers.remove(&t);
        if !frame.rows && frame.preceding.is_some() && self.cleanup.is_some_and(|c| c <= t) {
            return Ok(Fired::Cleared);
        }
        if let Some(rows) = self.pending.remove(&t) {
            match (frame.rows, frame.preceding) {
                (true, None) => {
                    for e in rows {
                        apply(&mut self.accs, &e, 1)?;
                        out.push(with_results(&e, &self.accs, defs));
                    }
                }
                (false, None) => {
                    for e in &rows {
                        apply(&mut self.accs, e, 1)?;
                    }
                    out.extend(rows.iter().map(|e| with_results(e, &self.accs, defs)));
                }
                (true, Some(preceding)) => {
                    // The current row and `preceding` rows before it.
                    let size = usize::try_from(preceding).unwrap_or(usize::MAX).saturating_add(1);
                    for e in rows {
                        if self.frame.len() >= size
                            && let Some((_, old)) = self.frame.pop_front()
                        {
                            apply(&mut self.accs, &old, -1)?;
                        }
                        apply(&mut self.accs, &e, 1)?;
                        out.push(with_results(&e, &self.accs, defs));
                        self.frame.push_back((t, e));
                    }
                }
                (false, Some(range)) => {
                    while let Some((ts, _)) = self.frame.front()
                        && t.saturating_sub(*ts) > range
                    {
                        if let Some((_, old)) = self.frame.pop_front() {
                            apply(&mut self.accs, &old, -1)?;
                        }
                    }
                    for e in &rows {
                        apply(&mut self.accs, e, 1)?;
                    }
                    out.extend(rows.iter().map(|e| with_results(e, &self.accs, defs)));
                    self.frame.extend(rows.into_iter().map(|e| (t, e)));
                }
            }
        }
        self.last_fired = Some(t);
        Ok(Fired::Kept)
    }
}

fn apply(accs: &mut [Acc], e: &Entry, sign: i64) -> Result<(), OpError> {
    for (acc, arg) in accs.iter_mut().zip(e.args.iter()) {
        match arg {
            Arg::Skip => {}
            Arg::Star => acc.apply(None, sign)?,
            Arg::Val(v) => acc.apply(Some(v), sign)?,
        }
    }
    Ok(())
}

fn with_results(e: &Entry, accs: &[Acc], defs: &[AggDef]) -> Row {
    e.row.iter().cloned().chain(accs.iter().zip(defs).map(|(a, d)| a.result(d))).collect::<Vec<_>>().into()
}

fn encode_entry(e: &Entry, w: &mut Writer) {
    encode_row(&e.row, w);
    w.u32(e.args.len() as u32);
    for a in e.args.iter() {
        match a {
            Arg::Skip => w.u8(0),
            Arg::Star => w.u8(1),
            Arg::Val(v) => {
                w.u8(2);
                v.encode(w);
            }
        }
    }
}

fn decode_entry(r: &mut Reader<'_>) -> Result<Entry, OpError> {
    let row = decode_row(r)?;
    let n = r.u32()? as usize;
    let mut args = Vec::with_capacity(n.min(1 << 10));
    for _ in 0..n {
        args.push(match r.u8()? {
            0 => Arg::Skip,
            1 => Arg::Star,
            2 => Arg::Val(Val::decode(r)?),
            t => return Err(OpError::Other(format!("OVER aggregation state holds an unknown argument tag {t}"))),
        });
    }
    Ok(Entry { row, args: args.into() })
}

impl StateValue for Partition {
    fn encode(&self, w: &mut Writer) {
        w.u32(self.pending.len() as u32);
        for (ts, rows) in &self.pending {
            w.i64(*ts);
            w.u32(rows.len() as u32);
            rows.iter().for_each(|e| encode_entry(e, w));
        }
        w.u32(self.frame.len() as u32);
        for (ts, e) in &self.frame {
            w.i64(*ts);
            encode_entry(e, w);
        }
        w.u32(self.accs.len() as u32);
        self.accs.iter().for_each(|a| a.encode(w));
        w.opt(&self.last_fired, |w, v| w.i64(*v));
        w.opt(&self.cleanup, |w, v| w.i64(*v));
        w.u32(self.timers.len() as u32);
        self.timers.iter().for_each(|t| w.i64(*t));
        w.i64(self.touched);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError> {
        let mut pending = BTreeMap::new();
        for _ in 0..r.u32()? {
            let ts = r.i64()?;
            let n = r.u32()? as usize;
            let rows = (0..n).map(|_| decode_entry(r)).collect::<Result<Vec<_>, _>>()?;
            pending.insert(ts, rows);
        }
        let mut frame = VecDeque::new();
        for _ in 0..r.u32()? {
            let ts = r.i64()?;
            frame.push_back((ts, decode_entry(r)?));
        }
        let n = r.u32()? as usize;
        let accs = (0..n).map(|_| Acc::decode(r)).collect::<Result<_, _>>()?;
        let last_fired = r.opt(|r| r.i64())?;
        let cleanup = r.opt(|r| r.i64())?;
        let mut timers = BTreeSet::new();
        for _ in 0..r.u32()? {
            timers.insert(r.i64()?);
        }
        let touched = r.i64()?;
        Ok(Partition { pending, frame, accs, last_fired, cleanup, timers, touched })
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::DataType;
    use sluice_sql::plan::AggFunc;

    use super::*;

    fn defs() -> Vec<AggDef> {
        let d = |func, out: DataType| AggDef {
            func,
            arg: None,
            filter: None,
            distinct: false,
            input_type: Some(DataType::Int64),
            output_type: out,
            separator: None,
        };
        vec![d(AggFunc::Count, DataType::Int64), d(AggFunc::Sum, DataType::Int64), d(AggFunc::Max, DataType::Int64)]
    }

    fn entry(id: i64, v: i64) -> Entry {
        Entry {
            row: vec![Val::I64(id)].into(),
            args: vec![Arg::Star, Arg::Val(Val::I64(v)), Arg::Val(Val::I64(v))].into(),
        }
    }

    /// Adds rows (time, id, value), fires every timer up to `wm`; returns
    /// (id, count, sum, max) per emitted row.
    fn run(frame: OverFrame, rows: &[(i64, i64, i64)], wm: i64) -> Vec<[i64; 4]> {
        let defs = defs();
        let mut p = Partition::new(&defs, &frame);
        for (ts, id, v) in rows {
            if !Partition::is_late(Some(&p), &frame, *ts, i64::MIN) {
                p.add(&frame, *ts, entry(*id, *v));
            }
        }
        let mut out = Vec::new();
        let timers: Vec<i64> = p.timers().filter(|t| *t <= wm).collect();
        for t in timers {
            p.fire(&frame, &defs, t, &mut out).unwrap();
        }
        let int = |v: &Val| match v {
            Val::I64(x) => *x,
            _ => -1,
        };
        out.iter().map(|r| [int(&r[0]), int(&r[1]), int(&r[2]), int(&r[3])]).collect()
    }

    #[test]
    fn rows_frames_count_rows_in_arrival_order() {
        let rows = [(10, 1, 5), (20, 2, 7), (20, 3, 1), (30, 4, 2)];
        let bounded = run(OverFrame { rows: true, preceding: Some(1) }, &rows, 100);
        assert_eq!(bounded, vec![[1, 1, 5, 5], [2, 2, 12, 7], [3, 2, 8, 7], [4, 2, 3, 2]]);
        let unbounded = run(OverFrame { rows: true, preceding: None }, &rows, 100);
        assert_eq!(unbounded, vec![[1, 1, 5, 5], [2, 2, 12, 7], [3, 3, 13, 7], [4, 4, 15, 7]]);
    }

    #[test]
    fn range_frames_give_peers_the_same_result_and_retract_old_rows() {
        let rows = [(10, 1, 5), (20, 2, 7), (20, 3, 1), (35, 4, 2)];
        let bounded = run(OverFrame { rows: false, preceding: Some(15) }, &rows, 100);
        // At 35 the row at 10 (35 - 10 > 15) has left; those at 20 stay.
        assert_eq!(bounded, vec![[1, 1, 5, 5], [2, 3, 13, 7], [3, 3, 13, 7], [4, 3, 10, 7]]);
        let unbounded = run(OverFrame { rows: false, preceding: None }, &rows, 100);
        assert_eq!(unbounded, vec![[1, 1, 5, 5], [2, 3, 13, 7], [3, 3, 13, 7], [4, 4, 15, 7]]);
    }

    #[test]
    fn rows_wait_for_the_watermark_and_late_ones_depend_on_the_frame() {
        let bounded = OverFrame { rows: true, preceding: Some(3) };
        let defs = defs();
        let mut p = Partition::new(&defs, &bounded);
        p.add(&bounded, 10, entry(1, 1));
        p.add(&bounded, 30, entry(2, 1));
        let mut out = Vec::new();
        p.fire(&bounded, &defs, 10, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        // Behind the watermark (25) but after the last fired timer: kept.
        assert!(!Partition::is_late(Some(&p), &bounded, 20, 25));
        assert!(Partition::is_late(Some(&p), &bounded, 10, 25));
        // Before any timer, rows at or before the epoch are late.
        assert!(Partition::is_late(None, &bounded, 0, i64::MIN));
        let unbounded = OverFrame { rows: false, preceding: None };
        assert!(Partition::is_late(None, &unbounded, 25, 25));
        assert!(!Partition::is_late(None, &unbounded, 26, 25));
    }

    #[test]
    fn range_cleanup_drops_the_state_after_one_and_a_half_intervals() {
        let frame = OverFrame { rows: false, preceding: Some(10) };
        let defs = defs();
        let mut p = Partition::new(&defs, &frame);
        assert_eq!(p.add(&frame, 100, entry(1, 1)), vec![100, 116]);
        // Within 1 interval of the cleanup's minimum: no new cleanup timer.
        assert_eq!(p.add(&frame, 104, entry(2, 1)), vec![104]);
        assert_eq!(p.add(&frame, 106, entry(3, 1)), vec![106, 122]);
        let mut out = Vec::new();
        for t in [100, 104, 106] {
            assert_eq!(p.fire(&frame, &defs, t, &mut out).unwrap(), Fired::Kept);
        }
        // The stale cleanup timer counts as fired for lateness.
        assert_eq!(p.fire(&frame, &defs, 116, &mut out).unwrap(), Fired::Kept);
        assert!(Partition::is_late(Some(&p), &frame, 110, 0));
        assert_eq!(p.fire(&frame, &defs, 122, &mut out).unwrap(), Fired::Cleared);
    }

    #[test]
    fn partitions_round_trip_through_the_codec() {
        let frame = OverFrame { rows: false, preceding: Some(10) };
        let defs = defs();
        let mut p = Partition::new(&defs, &frame);
        p.add(&frame, 100, entry(1, 4));
        p.add(&frame, 105, entry(2, 9));
        let mut out = Vec::new();
        p.fire(&frame, &defs, 100, &mut out).unwrap();
        let mut w = Writer::new();
        p.encode(&mut w);
        let mut back = Partition::decode(&mut Reader::new(&w.buf)).unwrap();
        assert_eq!(back.timers().collect::<Vec<_>>(), p.timers().collect::<Vec<_>>());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        p.fire(&frame, &defs, 105, &mut a).unwrap();
        back.fire(&frame, &defs, 105, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(b[0][1..], [Val::I64(2), Val::I64(13), Val::I64(9)]);
    }
}
