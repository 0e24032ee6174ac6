//! Streaming operators. Each implements [`StreamOperator`]; a vertex chains several,
//! feeding the output events of one into the next.

pub mod aggregate;
pub mod calc;
pub mod dedup;
pub mod factory;
pub mod group_agg;
pub mod join;
pub mod normalize;
pub mod over;
pub mod packed;
pub mod panes;
pub mod policy;
pub mod rank;
pub mod rows;
pub mod session;
pub mod sessions;
pub mod sink;
pub mod sort;
pub mod unnest;
#[cfg(test)]
pub(crate) mod view_tests;
pub mod watermark;
pub mod window;
pub mod window_rank;
pub mod window_spill;

use arrow::array::{ArrayRef, AsArray, Int64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::error::OpError;

/// Reads an integer or timestamp column as i64 values; timestamps become epoch
/// milliseconds whatever their time zone.
pub fn epoch_millis(col: &ArrayRef) -> Result<Int64Array, OpError> {
    let col = match col.data_type() {
        DataType::Timestamp(_, Some(_)) => cast(col, &DataType::Timestamp(TimeUnit::Millisecond, None))?,
        _ => col.clone(),
    };
    Ok(cast(&col, &DataType::Int64)?.as_primitive::<Int64Type>().clone())
}

/// What flows between chained operators.
#[derive(Debug, Clone)]
pub enum StreamEvent {
    Batch(RecordBatch),
    /// StreamEvent time has reached this value (milliseconds); no record with a smaller
    /// or equal time attribute is expected, except late ones.
    Watermark(i64),
}

/// A streaming operator. The hooks other than `process_batch` default to
/// forwarding or doing nothing.
pub trait StreamOperator: Send {
    fn name(&self) -> String;

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError>;

    /// A batch from input `input` (in the order of the vertex's input edges)
    /// of the first operator of a vertex with several inputs; an operator that
    /// tells its inputs apart (a join: 0 left, 1 right) overrides it.
    fn process_batch_from(
        &mut self,
        input: usize,
        batch: RecordBatch,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), OpError> {
        let _ = input;
        self.process_batch(batch, out)
    }

    fn process_watermark(&mut self, watermark: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        out.push(StreamEvent::Watermark(watermark));
        Ok(())
    }

    /// Every input has ended; the final watermark has already been processed.
    fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        Ok(())
    }

    /// Records this operator dropped because they were late.
    fn late_records_dropped(&self) -> u64 {
        0
    }

    /// The layout of this operator's keyed state, compared on restore so that
    /// state is never read by an operator it was not written for; `None` for an
    /// operator without keyed state.
    fn state_layout(&self) -> Option<String> {
        None
    }

    /// Takes a view of the keyed state for a checkpoint, when the operator
    /// keeps any. Called on the task thread when a checkpoint barrier has been
    /// aligned, before it is forwarded; pending bundles are flushed first, as
    /// Flink does before a barrier. It must be cheap (no encoding, no copy of
    /// the state): the view is encoded and uploaded off the task thread, while
    /// the operator goes on processing.
    fn snapshot(&mut self) -> Result<Option<Box<dyn crate::state::StateView>>, OpError> {
        Ok(None)
    }

    /// Loads the state of the key groups this subtask owns, as encoded from
    /// [`StreamOperator::snapshot`]'s view by any subtask at any parallelism.
    fn restore(&mut self, _key_group: u32, _state: &[u8]) -> Result<(), OpError> {
        Ok(())
    }

    /// Gives the operator its subtask's metrics, once, before it runs (sinks
    /// record the event-time lag of what they write).
    fn observe(&mut self, _metrics: std::sync::Arc<crate::metrics::SubtaskMetrics>) {}

    /// Keys in the operator's keyed state, when it keeps any: for the state per key.
    fn state_keys(&self) -> Option<u64> {
        None
    }

    /// Of [`StreamOperator::state_keys`], those spilled to local disk by the
    /// disk state backend (0 on the heap backend), when the operator's state
    /// can spill.
    fn state_keys_on_disk(&self) -> Option<u64> {
        None
    }

    /// Whether a watermark may read or change this operator's keyed state
    /// (fire timers, clean up by event time). A lazily restored subtask (see
    /// `runtime::lazy`) restores all of its state before such an operator
    /// sees a watermark; operators without keyed state are never asked.
    fn watermark_reads_state(&self) -> bool {
        true
    }

    /// Whether the operator's state is intact: the disk state backend keeps
    /// its first I/O error here. Checked after every call that may touch
    /// state, before the call's output goes on.
    fn health(&self) -> Result<(), OpError> {
        Ok(())
    }

    /// Sources reading one split per batch: the next batch comes from split
    /// `split` of the splits `owned` (see `SourceReader::batch_split`); a split
    /// without records for `idle_timeout` (when not zero) is idle.
    fn source_split(&mut self, _split: u32, _owned: &[u32], _idle_timeout: std::time::Duration) {}

    /// Sources: no records came for the idle timeout. An operator that keeps
    /// per-split watermarks emits the watermark that the splits still active allow.
    fn source_idle(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        Ok(())
    }

    /// Sinks: the checkpoint barrier. Flushes output written since the last call
    /// into pending form and returns what [`StreamOperator::commit`] makes visible.
    fn pre_commit(&mut self, _checkpoint: u64) -> Result<Option<SinkSnapshot>, OpError> {
        Ok(None)
    }

    /// Sinks: a checkpoint that included these committables has completed.
    fn commit(&mut self, _committables: &[Vec<u8>]) -> Result<(), OpError> {
        Ok(())
    }
}

pub use crate::state::writers::KeyGroupWriters;

/// A sink subtask's part of a checkpoint.
#[derive(Debug, Clone, Default)]
pub struct SinkSnapshot {
    /// What the checkpoint's completion makes visible.
    pub committable: Vec<u8>,
    /// The writer's own small state (its part-file counter).
    pub state: Vec<u8>,
}

/// A chain of operators run on one thread.
pub struct Chain {
    pub ops: Vec<Box<dyn StreamOperator>>,
}

impl Chain {
    /// Pushes one event through the whole chain; returns the chain's output.
    pub fn push(&mut self, event: StreamEvent) -> Result<Vec<StreamEvent>, OpError> {
        self.push_from(0, event)
    }

    /// Pushes one event from input `input` of the vertex through the whole
    /// chain: the first operator learns the input, the others see their
    /// predecessor's output.
    pub fn push_from(&mut self, input: usize, event: StreamEvent) -> Result<Vec<StreamEvent>, OpError> {
        let mut current = vec![event];
        for (i, op) in self.ops.iter_mut().enumerate() {
            let mut next = Vec::with_capacity(current.len());
            for ev in current {
                match ev {
                    StreamEvent::Batch(b) if b.num_rows() == 0 => {}
                    StreamEvent::Batch(b) if i == 0 => op.process_batch_from(input, b, &mut next)?,
                    StreamEvent::Batch(b) => op.process_batch(b, &mut next)?,
                    StreamEvent::Watermark(w) => op.process_watermark(w, &mut next)?,
                }
            }
            op.health()?;
            current = next;
            if current.is_empty() {
                break;
            }
        }
        Ok(current)
    }

    /// [`StreamOperator::source_idle`] of each operator in order, passing what
    /// one emits to the rest.
    pub fn source_idle(&mut self) -> Result<Vec<StreamEvent>, OpError> {
        let mut carried: Vec<StreamEvent> = Vec::new();
        for op in self.ops.iter_mut() {
            let mut produced = Vec::new();
            for ev in carried.drain(..) {
                match ev {
                    StreamEvent::Batch(b) => op.process_batch(b, &mut produced)?,
                    StreamEvent::Watermark(w) => op.process_watermark(w, &mut produced)?,
                }
            }
            op.source_idle(&mut produced)?;
            op.health()?;
            carried = produced;
        }
        Ok(carried)
    }

    /// Finishes each operator in order, passing what one emits to the rest.
    pub fn finish(&mut self) -> Result<Vec<StreamEvent>, OpError> {
        let mut carried: Vec<StreamEvent> = Vec::new();
        for i in 0..self.ops.len() {
            let mut produced = Vec::new();
            for ev in carried.drain(..) {
                match ev {
                    StreamEvent::Batch(b) => self.ops[i].process_batch(b, &mut produced)?,
                    StreamEvent::Watermark(w) => self.ops[i].process_watermark(w, &mut produced)?,
                }
            }
            self.ops[i].finish(&mut produced)?;
            self.ops[i].health()?;
            carried = produced;
        }
        Ok(carried)
    }

    pub fn late_records_dropped(&self) -> u64 {
        self.ops.iter().map(|o| o.late_records_dropped()).sum()
    }

    /// Keys in the chain's keyed state; `None` when no operator keeps any.
    /// Tells every operator which split the next batch comes from.
    pub fn source_split(&mut self, split: u32, owned: &[u32], idle_timeout: std::time::Duration) {
        for op in &mut self.ops {
            op.source_split(split, owned, idle_timeout);
        }
    }

    pub fn state_keys(&self) -> Option<u64> {
        self.ops.iter().filter_map(|o| o.state_keys()).reduce(|a, b| a + b)
    }

    pub fn state_keys_on_disk(&self) -> Option<u64> {
        self.ops.iter().filter_map(|o| o.state_keys_on_disk()).reduce(|a, b| a + b)
    }
}
