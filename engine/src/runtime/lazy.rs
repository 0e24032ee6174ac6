//! Lazy restore: a restored subtask processes records before all of its
//! keyed state is decoded.
//!
//! Decoding is most of a restore's time (seconds per GB), so a subtask whose
//! state can wait starts with every key group *pending*: its sections are held
//! as they were loaded, not yet given to the operators. A key group is
//! restored when records need it, and otherwise one at a time between
//! batches and whenever the input is idle.
//!
//! Invariants:
//! 1. **An operator never sees an event that may read a pending key group.**
//!    - A batch is split by the key group of each row, hashed from the keys of
//!      the input edge it came on, as its producer routed it. Rows of restored
//!      key groups are processed at once; rows of pending ones wait, per key
//!      group and in arrival order, until that key group is restored, which
//!      happens before anything else of it is processed.
//!    - Before a watermark that an operator may fire timers or clean state on
//!      ([`StreamOperator::watermark_reads_state`]), before a barrier (the
//!      snapshot must hold all state, and the barrier must follow the output of
//!      every record before it), and before the end of input, every pending
//!      key group is restored and its waiting rows are processed.
//!    - A watermark never overtakes waiting rows: before any watermark goes
//!      in, the key groups that rows wait for are restored and the rows
//!      processed, so no row becomes late by waiting.
//! 2. **Rows of one key group keep their order;** rows of different key
//!    groups may be processed in another order than they arrived. Keyed
//!    operators keep no state across keys, and Flink itself interleaves keys
//!    from parallel producers in any order.
//! 3. **A key group is restored once,** with every operator's sections of it,
//!    in the order an eager restore uses ([`KeyGroupState::restore`]).
//! 4. **Only a vertex whose every input is a hash edge restores lazily:**
//!    there the key group of each row is known before the operators see it.
//!    Other vertices restore eagerly, while the attempt is built.
//!
//! The decisions (which rows wait, which key group is restored next) are
//! methods of [`Lazy`] that tests drive without threads; the task loop only
//! calls them (see `task::run_operator`).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use arrow::array::UInt32Array;
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;

use crate::checkpoint::restore::{KeyGroupState, OwnedState};
use crate::error::OpError;
use crate::operators::StreamOperator;
use crate::plan::PhysExpr;

/// The log target of the lines that report a lazy restore's progress
/// (`SLUICE_LOG=warn,restore_progress=info`); `scripts/bench_restore.py` reads them.
pub const PROGRESS_TARGET: &str = "restore_progress";

/// How often progress is logged while key groups are pending.
const REPORT_EVERY: Duration = Duration::from_secs(2);

/// Restores a key group's state into the chain's operators; an eager
/// restore and a lazy one both use it. The error names the vertex, the
/// operator and its uid.
pub fn restore_group(
    ops: &mut [Box<dyn StreamOperator>],
    vertex: &str,
    uid: &str,
    key_group: u32,
    state: &KeyGroupState,
) -> Result<(), String> {
    state.restore(key_group, |op, bytes| {
        let target =
            ops.get_mut(op).ok_or_else(|| format!("`{vertex}` has no operator {op} for the snapshot's state"))?;
        target
            .restore(key_group, bytes)
            .map_err(|e| format!("operator `{}` (uid {uid}): cannot read its state: {e}", target.name()))
    })
}

/// Whether a watermark must wait until every key group is restored.
pub fn watermark_needs_state(ops: &[Box<dyn StreamOperator>]) -> bool {
    ops.iter().any(|o| o.state_layout().is_some() && o.watermark_reads_state())
}

/// Who is restoring, for messages.
pub struct Origin {
    /// The snapshot's location.
    pub location: String,
    pub vertex: String,
    pub uid: String,
    pub subtask: usize,
}

/// A subtask's key groups not restored yet, and the rows waiting for them.
pub struct Lazy {
    pending: BTreeMap<u32, KeyGroupState>,
    /// Rows waiting for a pending key group, with the input they came on.
    waiting: BTreeMap<u32, Vec<(usize, RecordBatch)>>,
    /// Key groups with waiting rows, oldest first: restored before the rest.
    wanted: VecDeque<u32>,
    /// Per vertex input, the keys its producer hashed.
    keys: Vec<Vec<PhysExpr>>,
    max_parallelism: usize,
    origin: Origin,
    total: usize,
    started: Instant,
    reported: Instant,
}

impl Lazy {
    /// `None` when there is nothing to restore.
    pub fn new(owned: OwnedState, keys: Vec<Vec<PhysExpr>>, max_parallelism: usize, origin: Origin) -> Option<Lazy> {
        if owned.is_empty() {
            return None;
        }
        let bytes: u64 = owned.values().map(KeyGroupState::bytes).sum();
        tracing::info!(
            target: PROGRESS_TARGET,
            "`{}` subtask {}: {} key groups ({bytes} bytes of state) restore lazily, from {}",
            origin.vertex,
            origin.subtask,
            owned.len(),
            origin.location
        );
        let now = Instant::now();
        Some(Lazy {
            total: owned.len(),
            pending: owned,
            waiting: BTreeMap::new(),
            wanted: VecDeque::new(),
            keys,
            max_parallelism,
            origin,
            started: now,
            reported: now,
        })
    }

    /// Takes a batch from `input`: returns the rows that can be processed
    /// now, in their order, and keeps the rows of pending key groups waiting.
    pub fn admit(&mut self, input: usize, batch: RecordBatch) -> Result<Option<RecordBatch>, OpError> {
        let keys = self.keys.get(input).ok_or_else(|| OpError::Other(format!("no keys for input {input}")))?;
        let groups = super::outputs::key_groups(keys, &batch, self.max_parallelism)?;
        let (now, wait) = split(&groups, |kg| self.pending.contains_key(&kg));
        if wait.is_empty() {
            return Ok(Some(batch));
        }
        for (kg, rows) in wait {
            let rows = take_record_batch(&batch, &UInt32Array::from(rows))?;
            let queue = self.waiting.entry(kg).or_default();
            if queue.is_empty() {
                self.wanted.push_back(kg);
            }
            queue.push((input, rows));
        }
        if now.is_empty() {
            return Ok(None);
        }
        if now.len() == batch.num_rows() {
            return Ok(Some(batch));
        }
        Ok(Some(take_record_batch(&batch, &UInt32Array::from(now))?))
    }

    /// The key group to restore next: the one whose rows have waited
    /// longest, else the first pending one.
    pub fn next(&self) -> Option<u32> {
        self.wanted.front().copied().or_else(|| self.pending.keys().next().copied())
    }

    /// Restores the next key group into `ops` and returns the rows that
    /// waited for it, to be processed next; `None` when nothing is pending.
    pub fn restore_next(
        &mut self,
        ops: &mut [Box<dyn StreamOperator>],
    ) -> Result<Option<Vec<(usize, RecordBatch)>>, OpError> {
        let Some(kg) = self.next() else { return Ok(None) };
        if self.wanted.front() == Some(&kg) {
            self.wanted.pop_front();
        }
        if let Some(state) = self.pending.remove(&kg) {
            let o = &self.origin;
            if let Some(e) = crate::failpoint::hit_in("restore.key-group", &o.location) {
                return Err(OpError::Other(e));
            }
            restore_group(ops, &o.vertex, &o.uid, kg, &state)
                .map_err(|m| OpError::Other(format!("cannot restore from {}: {m}", o.location)))?;
        }
        self.report();
        Ok(Some(self.waiting.remove(&kg).unwrap_or_default()))
    }

    /// Whether rows wait for a pending key group.
    pub fn has_waiting(&self) -> bool {
        !self.wanted.is_empty()
    }

    /// Whether every key group is restored (no rows can be waiting then).
    pub fn done(&self) -> bool {
        self.pending.is_empty()
    }

    fn report(&mut self) {
        let o = &self.origin;
        if self.pending.is_empty() {
            tracing::info!(
                target: PROGRESS_TARGET,
                "`{}` subtask {}: every key group restored, {} ms after it started",
                o.vertex,
                o.subtask,
                self.started.elapsed().as_millis()
            );
        } else if self.reported.elapsed() >= REPORT_EVERY {
            self.reported = Instant::now();
            tracing::info!(
                target: PROGRESS_TARGET,
                "`{}` subtask {}: {} of {} key groups restored",
                o.vertex,
                o.subtask,
                self.total - self.pending.len(),
                self.total
            );
        }
    }
}

/// Splits rows by their key groups: the indices of rows to process now, and
/// per pending key group the indices of rows that wait for it, in order.
fn split(groups: &[u32], pending: impl Fn(u32) -> bool) -> (Vec<u32>, BTreeMap<u32, Vec<u32>>) {
    let mut now = Vec::with_capacity(groups.len());
    let mut wait: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (row, kg) in groups.iter().enumerate() {
        if pending(*kg) {
            wait.entry(*kg).or_default().push(row as u32);
        } else {
            now.push(row as u32);
        }
    }
    (now, wait)
}

#[cfg(test)]
#[path = "lazy_tests.rs"]
mod tests;
