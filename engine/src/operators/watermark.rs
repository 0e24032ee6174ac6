//! Watermark assignment at the sources.
//!
//! The watermark is the maximum, over the records seen so far, of the table's
//! `WATERMARK FOR ts AS <expr>` expression, and it advances after each record, as
//! in Flink with a per-record watermark interval. Emitting one watermark per batch
//! would make lateness depend on the batch size, so the assigner splits a batch
//! just before any record whose time attribute is at or below the current
//! watermark (the only records that can be late) and emits the watermark there.
//! In-order input therefore costs one watermark per batch, and the output never
//! depends on how input is batched.
//!
//! The assigner also emits the watermark right after the first record and after
//! each record that moves it onto or past a slice end - 1 of a downstream window
//! (`trigger_intervals`): Flink's window aggregation groups partial aggregates
//! into bundles ending at exactly those watermarks, which decides the rounding
//! of floating-point sums.
//!
//! Per-split watermarks (Flink's per-partition watermarks): when the source
//! reads one split per batch and says which (`source_split`), the assigner
//! keeps the expression's maximum per split, and the watermark is the minimum
//! over the splits the reader owns, a split without records yet included. A
//! split without records for `table.exec.source.idle-timeout` (when set) does
//! not hold the watermark back until it has records again. Lateness is always
//! judged against the watermark emitted downstream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, Int64Array};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion_common::ScalarValue;
use datafusion_expr::Operator;
use datafusion_physical_expr::PhysicalExpr;
use datafusion_physical_expr::expressions::{BinaryExpr, Column, Literal};

use super::{StreamEvent, StreamOperator, epoch_millis};
use crate::error::OpError;
use crate::metrics::NO_WATERMARK;

pub struct WatermarkAssigner {
    pub time_col: usize,
    pub expr: Arc<dyn PhysicalExpr>,
    /// The watermark before the next record.
    pub current: i64,
    /// The last watermark emitted downstream.
    pub emitted: i64,
    /// Slice lengths of the job's window aggregations.
    pub trigger_intervals: Vec<(i64, i64)>,
    /// Per-split watermarks, once the source names its splits.
    pub splits: Option<SplitWatermarks>,
    /// `expr` as the time column minus this many milliseconds, when it is that.
    lag: Option<i64>,
}

/// The watermark of each split of a source subtask and the split of the batch at hand.
#[derive(Debug, Default)]
pub struct SplitWatermarks {
    /// Per split: the maximum of the expression so far, and when it last had a record
    /// (or was first named).
    marks: HashMap<u32, (i64, Instant)>,
    owned: Vec<u32>,
    active: u32,
    idle_timeout: Duration,
}

/// The watermark expression as `time_col - lag` milliseconds, when it is that:
/// the column itself, or minus an interval of a fixed length (`ts - INTERVAL '5'
/// SECOND`, the usual bounded out-of-orderness; not months or days, whose
/// length depends on the date). The assigner then subtracts per row instead of
/// evaluating the expression, whose interval arithmetic goes through calendar
/// dates: 4 % of a csv source's time in Nexmark q18.
fn fixed_lag(expr: &dyn PhysicalExpr, time_col: usize) -> Option<i64> {
    let is_time = |e: &dyn PhysicalExpr| e.downcast_ref::<Column>().is_some_and(|c| c.index() == time_col);
    if is_time(expr) {
        return Some(0);
    }
    let b = expr.downcast_ref::<BinaryExpr>()?;
    if *b.op() != Operator::Minus || !is_time(b.left().as_ref()) {
        return None;
    }
    match b.right().downcast_ref::<Literal>()?.value() {
        ScalarValue::IntervalMonthDayNano(Some(v))
            if v.months == 0 && v.days == 0 && v.nanoseconds % 1_000_000 == 0 =>
        {
            Some(v.nanoseconds / 1_000_000)
        }
        ScalarValue::IntervalDayTime(Some(v)) if v.days == 0 => Some(i64::from(v.milliseconds)),
        _ => None,
    }
}

impl SplitWatermarks {
    /// The minimum over owned splits that are not idle; the active one never is.
    fn min(&self, now: Instant) -> i64 {
        let mut min = None::<i64>;
        for s in &self.owned {
            let (w, last) = self.marks.get(s).copied().unwrap_or((NO_WATERMARK, now));
            let idle =
                !self.idle_timeout.is_zero() && *s != self.active && now.duration_since(last) >= self.idle_timeout;
            if !idle {
                min = Some(min.map_or(w, |m| m.min(w)));
            }
        }
        min.unwrap_or(NO_WATERMARK)
    }
}

impl WatermarkAssigner {
    pub fn new(time_col: usize, expr: Arc<dyn PhysicalExpr>, trigger_intervals: Vec<(i64, i64)>) -> Self {
        WatermarkAssigner {
            time_col,
            current: NO_WATERMARK,
            emitted: NO_WATERMARK,
            lag: fixed_lag(expr.as_ref(), time_col),
            expr,
            trigger_intervals,
            splits: None,
        }
    }

    /// The expression's value for each row, in epoch milliseconds.
    fn watermarks(&self, batch: &RecordBatch, ts: &Int64Array) -> Result<Int64Array, OpError> {
        let millis = matches!(batch.column(self.time_col).data_type(), DataType::Timestamp(TimeUnit::Millisecond, _));
        if let Some(lag) = self.lag.filter(|_| millis) {
            // An overflow falls through to the expression, which reports it.
            if let Ok(wm) = ts.try_unary::<_, Int64Type, _>(|v| v.checked_sub(lag).ok_or(())) {
                return Ok(wm);
            }
        }
        epoch_millis(&self.expr.evaluate(batch)?.into_array(batch.num_rows())?)
    }

    /// Whether moving from the emitted watermark to the current one reaches a
    /// bundle boundary downstream.
    fn crosses_trigger(&self) -> bool {
        if self.current <= self.emitted || self.trigger_intervals.is_empty() {
            return false;
        }
        if self.emitted == NO_WATERMARK {
            return true;
        }
        let slice = |w: i64, (i, offset): (i64, i64)| w.saturating_add(1).saturating_sub(offset).div_euclid(i);
        self.trigger_intervals.iter().any(|t| slice(self.emitted, *t) < slice(self.current, *t))
    }
}

impl StreamOperator for WatermarkAssigner {
    fn name(&self) -> String {
        format!("WatermarkAssigner({})", self.expr)
    }

    fn source_split(&mut self, split: u32, owned: &[u32], idle_timeout: Duration) {
        let sp = self.splits.get_or_insert_with(SplitWatermarks::default);
        let now = Instant::now();
        if sp.owned != owned {
            sp.owned = owned.to_vec();
            for s in owned {
                sp.marks.entry(*s).or_insert((NO_WATERMARK, now));
            }
        }
        sp.active = split;
        sp.idle_timeout = idle_timeout;
    }

    fn source_idle(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if let Some(sp) = &self.splits {
            self.current = self.current.max(sp.min(Instant::now()));
        }
        if self.current > self.emitted {
            out.push(StreamEvent::Watermark(self.current));
            self.emitted = self.current;
        }
        Ok(())
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let n = batch.num_rows();
        let ts = epoch_millis(batch.column(self.time_col))?;
        let wm = self.watermarks(&batch, &ts)?;
        let now = Instant::now();
        if let Some(sp) = &self.splits {
            // A split may have gone idle since the last batch.
            self.current = self.current.max(sp.min(now));
        }
        let mut seg_start = 0;
        for r in 0..n {
            if !ts.is_null(r) && ts.value(r) <= self.current && self.current > self.emitted {
                if r > seg_start {
                    out.push(StreamEvent::Batch(batch.slice(seg_start, r - seg_start)));
                }
                out.push(StreamEvent::Watermark(self.current));
                self.emitted = self.current;
                seg_start = r;
            }
            let candidate = if wm.is_null(r) { None } else { Some(wm.value(r)) };
            let candidate = match (&mut self.splits, candidate) {
                (None, c) => c,
                (Some(sp), c) => {
                    let mark = sp.marks.entry(sp.active).or_insert((NO_WATERMARK, now));
                    mark.1 = now;
                    match c {
                        Some(c) if c > mark.0 => {
                            mark.0 = c;
                            Some(sp.min(now))
                        }
                        _ => None,
                    }
                }
            };
            if let Some(c) = candidate
                && c > self.current
            {
                self.current = c;
                if self.crosses_trigger() {
                    out.push(StreamEvent::Batch(batch.slice(seg_start, r + 1 - seg_start)));
                    out.push(StreamEvent::Watermark(self.current));
                    self.emitted = self.current;
                    seg_start = r + 1;
                }
            }
        }
        if seg_start < n {
            out.push(StreamEvent::Batch(if seg_start == 0 { batch } else { batch.slice(seg_start, n - seg_start) }));
        }
        if self.current > self.emitted {
            out.push(StreamEvent::Watermark(self.current));
            self.emitted = self.current;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::TimestampMillisecondArray;
    use arrow::datatypes::{Field, IntervalMonthDayNano, Schema};

    use super::*;

    fn minus(interval: IntervalMonthDayNano) -> Arc<dyn PhysicalExpr> {
        let lit = Arc::new(Literal::new(ScalarValue::IntervalMonthDayNano(Some(interval))));
        Arc::new(BinaryExpr::new(Arc::new(Column::new("ts", 0)), Operator::Minus, lit))
    }

    #[test]
    fn a_fixed_lag_gives_the_watermarks_the_expression_gives() {
        let four_s = minus(IntervalMonthDayNano::new(0, 0, 4_000_000_000));
        assert_eq!(fixed_lag(four_s.as_ref(), 0), Some(4_000));
        assert_eq!(fixed_lag(four_s.as_ref(), 1), None, "another column");
        assert_eq!(fixed_lag(&Column::new("ts", 0), 0), Some(0));
        // A day or a month is not a fixed number of milliseconds in every time zone.
        assert_eq!(fixed_lag(minus(IntervalMonthDayNano::new(0, 1, 0)).as_ref(), 0), None);
        assert_eq!(fixed_lag(minus(IntervalMonthDayNano::new(1, 0, 0)).as_ref(), 0), None);
        assert_eq!(fixed_lag(minus(IntervalMonthDayNano::new(0, 0, 1_500)).as_ref(), 0), None);
        // Out of order, with late rows: the same rows and watermarks either way.
        let times = [10_000, 3_000, 12_000, 7_000, 30_000, 1_000, 40_000];
        let run = |lag: Option<i64>| {
            let mut a = WatermarkAssigner::new(0, four_s.clone(), vec![(5_000, 0)]);
            assert_eq!(a.lag, Some(4_000));
            a.lag = lag;
            let mut out = Vec::new();
            a.process_batch(batch(&times), &mut out).unwrap();
            let events: Vec<(usize, i64)> = out
                .iter()
                .map(|e| match e {
                    StreamEvent::Batch(b) => (b.num_rows(), 0),
                    StreamEvent::Watermark(w) => (0, *w),
                })
                .collect();
            (events, a.current)
        };
        let fast = run(Some(4_000));
        assert_eq!(fast, run(None));
        assert_eq!(fast.1, 36_000);
    }

    fn batch(ts: &[i64]) -> RecordBatch {
        let schema =
            Arc::new(Schema::new(vec![Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), false)]));
        RecordBatch::try_new(schema, vec![Arc::new(TimestampMillisecondArray::from(ts.to_vec()))]).unwrap()
    }

    /// The rows and watermarks that one batch of `split` produces.
    fn push(a: &mut WatermarkAssigner, split: u32, owned: &[u32], idle: Duration, ts: &[i64]) -> (usize, Vec<i64>) {
        a.source_split(split, owned, idle);
        let mut out = Vec::new();
        a.process_batch(batch(ts), &mut out).unwrap();
        let rows = out.iter().map(|e| if let StreamEvent::Batch(b) = e { b.num_rows() } else { 0 }).sum();
        let marks =
            out.iter().filter_map(|e| if let StreamEvent::Watermark(w) = e { Some(*w) } else { None }).collect();
        (rows, marks)
    }

    #[test]
    fn each_split_has_its_watermark_and_the_slowest_one_holds_it_back() {
        let mut a = WatermarkAssigner::new(0, Arc::new(Column::new("ts", 0)), Vec::new());
        let owned = [0, 1];
        // Split 0 runs ahead; split 1 has no records yet and holds the watermark back.
        assert_eq!(push(&mut a, 0, &owned, Duration::ZERO, &[10_000, 20_000]), (2, vec![]));
        // Split 1's records are behind split 0's but not late: the watermark is the minimum.
        assert_eq!(push(&mut a, 1, &owned, Duration::ZERO, &[1_000, 2_000]), (2, vec![2_000]));
        // A record of split 1 at or below the emitted watermark passes on, late for the windows.
        assert_eq!(push(&mut a, 1, &owned, Duration::ZERO, &[1_500, 15_000]).1, vec![15_000]);
        // Without splits the same input would have made split 1's first records late.
        let mut whole = WatermarkAssigner::new(0, Arc::new(Column::new("ts", 0)), Vec::new());
        let mut out = Vec::new();
        whole.process_batch(batch(&[10_000, 20_000]), &mut out).unwrap();
        assert_eq!(whole.current, 20_000);
    }

    #[test]
    fn an_idle_split_stops_holding_the_watermark_back() {
        let mut a = WatermarkAssigner::new(0, Arc::new(Column::new("ts", 0)), Vec::new());
        let owned = [0, 1];
        let idle = Duration::from_millis(30);
        assert_eq!(push(&mut a, 0, &owned, idle, &[5_000]).1, Vec::<i64>::new());
        std::thread::sleep(Duration::from_millis(60));
        // Split 1 never had a record for longer than the idle timeout: split 0 alone counts.
        assert_eq!(push(&mut a, 0, &owned, idle, &[6_000]).1, vec![6_000]);
        // When split 1 has records again, it counts again (its records are late if behind).
        assert_eq!(push(&mut a, 1, &owned, idle, &[7_000]).1, Vec::<i64>::new());
        assert_eq!(push(&mut a, 1, &owned, idle, &[9_000]).1, Vec::<i64>::new());
        assert_eq!(push(&mut a, 0, &owned, idle, &[8_000]).1, vec![8_000]);
    }

    #[test]
    fn a_source_without_records_emits_what_its_active_splits_allow() {
        let mut a = WatermarkAssigner::new(0, Arc::new(Column::new("ts", 0)), Vec::new());
        let idle = Duration::from_millis(30);
        // Split 1 has no record yet: it holds the watermark back.
        assert_eq!(push(&mut a, 0, &[0, 1], idle, &[5_000]).1, Vec::<i64>::new());
        let mut out = Vec::new();
        a.source_idle(&mut out).unwrap();
        assert!(out.is_empty(), "split 1 is not idle yet");
        std::thread::sleep(Duration::from_millis(60));
        // No batch comes, but split 1 has been idle long enough: split 0's watermark goes out.
        a.source_idle(&mut out).unwrap();
        assert!(matches!(out[..], [StreamEvent::Watermark(5_000)]), "{out:?}");
    }
}
