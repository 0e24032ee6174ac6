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

use std::sync::Arc;

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use datafusion_physical_expr::PhysicalExpr;

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
    pub trigger_intervals: Vec<i64>,
}

impl WatermarkAssigner {
    pub fn new(time_col: usize, expr: Arc<dyn PhysicalExpr>, trigger_intervals: Vec<i64>) -> Self {
        WatermarkAssigner { time_col, expr, current: NO_WATERMARK, emitted: NO_WATERMARK, trigger_intervals }
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
        self.trigger_intervals
            .iter()
            .any(|i| (self.emitted.saturating_add(1)).div_euclid(*i) < (self.current.saturating_add(1)).div_euclid(*i))
    }
}

impl StreamOperator for WatermarkAssigner {
    fn name(&self) -> String {
        format!("WatermarkAssigner({})", self.expr)
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let n = batch.num_rows();
        let wm = self.expr.evaluate(&batch)?.into_array(n)?;
        let wm = epoch_millis(&wm)?;
        let ts = epoch_millis(batch.column(self.time_col))?;
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
            if !wm.is_null(r) && wm.value(r) > self.current {
                self.current = wm.value(r);
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
