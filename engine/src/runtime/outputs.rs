//! A subtask's outputs: routing batches to the subtasks of each output edge
//! (forward, rebalance, or by key group), broadcasting watermarks, barriers
//! and other control messages, and passing latency markers on.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;

use super::channel::{Disconnected, Msg, Target};
use crate::error::OpError;
use crate::keygroup;
use crate::metrics::SubtaskMetrics;
use crate::operators::StreamEvent;
use crate::plan::{Partitioning, PhysExpr};

/// The downstream side of one output edge of a subtask.
pub struct OutEdge {
    pub partitioning: Partitioning,
    pub targets: Vec<Target>,
    pub next: usize,
    pub max_parallelism: usize,
}

pub struct Outputs {
    pub edges: Vec<OutEdge>,
    pub metrics: Arc<SubtaskMetrics>,
    /// Round robin of latency markers over each edge's targets.
    pub next_marker: usize,
}

/// Now, in microseconds since the epoch: the clock of latency markers.
pub(super) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl Outputs {
    /// The most rows a batch should have on every output channel (buffer
    /// debloating; `usize::MAX` when no channel is backpressured).
    pub(super) fn max_rows(&self) -> usize {
        self.edges.iter().flat_map(|e| &e.targets).map(|t| t.credit.max_rows()).min().unwrap_or(usize::MAX)
    }

    /// A latency marker stamped `read_us`: a subtask that ends in a sink
    /// records its age; any other sends it on to one subtask of each output
    /// edge, in turn, as Flink forwards markers to a random channel.
    pub(super) fn pass_marker(&mut self, read_us: u64, is_sink: bool) -> Result<(), Disconnected> {
        if is_sink {
            self.metrics.processing_latency.record(now_us().saturating_sub(read_us));
        }
        self.next_marker = self.next_marker.wrapping_add(1);
        for e in &self.edges {
            if let Some(t) = e.targets.get(self.next_marker % e.targets.len().max(1)) {
                t.send_control(Msg::Latency(read_us))?;
            }
        }
        Ok(())
    }

    pub fn broadcast(&self, make: impl Fn() -> Msg) -> Result<(), Disconnected> {
        for e in &self.edges {
            for t in &e.targets {
                t.send_control(make())?;
            }
        }
        Ok(())
    }

    pub(super) fn emit(&mut self, ev: StreamEvent) -> Result<Result<(), Disconnected>, OpError> {
        match ev {
            StreamEvent::Watermark(w) => {
                self.metrics.watermark.store(w, Ordering::Relaxed);
                Ok(self.broadcast(|| Msg::Watermark(w)))
            }
            StreamEvent::Batch(b) => {
                SubtaskMetrics::add(&self.metrics.records_out, b.num_rows() as u64);
                SubtaskMetrics::add(&self.metrics.bytes_out, b.get_array_memory_size() as u64);
                for i in 0..self.edges.len() {
                    let routed = route(&mut self.edges[i], &b)?;
                    for (t, batch) in routed {
                        if let Err(d) = self.edges[i].targets[t].send_batch(batch, &self.metrics) {
                            return Ok(Err(d));
                        }
                    }
                }
                Ok(Ok(()))
            }
        }
    }
}

/// Splits a batch among an edge's targets.
fn route(e: &mut OutEdge, b: &RecordBatch) -> Result<Vec<(usize, RecordBatch)>, OpError> {
    let n = e.targets.len();
    Ok(match &e.partitioning {
        Partitioning::Forward | Partitioning::Global => vec![(0, b.clone())],
        Partitioning::Rebalance => {
            let t = e.next % n;
            e.next = e.next.wrapping_add(1);
            vec![(t, b.clone())]
        }
        Partitioning::Hash { keys, .. } => {
            if n == 1 {
                return Ok(vec![(0, b.clone())]);
            }
            let mut idx: Vec<Vec<u32>> = vec![Vec::new(); n];
            for (r, kg) in key_groups(keys, b, e.max_parallelism)?.into_iter().enumerate() {
                idx[keygroup::operator_index(kg as usize, e.max_parallelism, n)].push(r as u32);
            }
            let mut out = Vec::new();
            for (t, rows) in idx.into_iter().enumerate() {
                if !rows.is_empty() {
                    out.push((t, take_record_batch(b, &UInt32Array::from(rows))?));
                }
            }
            out
        }
    })
}

/// The key group of each row of `b`, hashed from the `keys` of a hash edge:
/// where the producer routes the row, and which of the consumer's key groups
/// holds its state.
pub(super) fn key_groups(keys: &[PhysExpr], b: &RecordBatch, max_parallelism: usize) -> Result<Vec<u32>, OpError> {
    let rows = b.num_rows();
    let cols: Vec<ArrayRef> =
        keys.iter().map(|k| k.evaluate(b).and_then(|v| v.into_array(rows))).collect::<Result<_, _>>()?;
    let hashes = keygroup::hash_rows(&cols, rows).map_err(OpError::Other)?;
    Ok(hashes.into_iter().map(|h| keygroup::key_group(h, max_parallelism) as u32).collect())
}
