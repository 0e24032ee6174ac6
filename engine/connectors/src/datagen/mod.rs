//! The `datagen` source, with Flink's options.
//!
//! - `rows-per-second` (default 10000): the total rate, split evenly across subtasks.
//! - `rows-per-second.schedule` (Sluice's own): a rate that changes by schedule
//!   time, as `'0s:1750, 2min:700'` (1750 rows/s, from 2 minutes on 700),
//!   instead of `rows-per-second`. Schedule time counts from the source's
//!   first start and goes on across restores, rescales and downtime: it is
//!   in the checkpoint (see Lag below), so a rescale mid-schedule does not
//!   start it over. A test's stand-in for a load that changes at run time
//!   without a change of the job's SQL.
//! - `number-of-rows`: the total, split across subtasks as Flink does (the
//!   first `n % p` subtasks make one more); unbounded when absent, unless a
//!   sequence field bounds it.
//! - `fields.<f>.kind`: `random` (default) or `sequence`.
//! - random: `.min`/`.max` (numeric types; defaults: the type's range, and
//!   for DOUBLE and DECIMAL Flink's `Double.MIN_VALUE`..`Double.MAX_VALUE`),
//!   `.length` (STRING, default 100) and `.var-len`, `.max-past` (timestamps,
//!   default 0: now), `.null-rate`. Random strings are lower-case hex, as
//!   Flink's `nextHexString`.
//! - sequence: `.start` and `.end` (required, inclusive). As Flink's
//!   `SequenceGenerator`, subtask `i` of `p` emits `start + i`, `start + i + p`,
//!   …; the source ends when a sequence ends.
//! - `seed` (Sluice's own): makes random values deterministic. Values are a
//!   pure function of (seed, column, global row number), where subtask `i`
//!   makes global rows `i, i + p, i + 2p, …`; so a seeded table holds the same
//!   rows at any parallelism and batch size (timestamps, which are relative to
//!   the wall clock, excepted).
//!
//! Checkpoints: the splits of datagen are the strides of the global row
//! stream. A fresh subtask `i` of `p` owns split `i` of stride `p`; its state
//! is (split, stride, rows produced, row limit of the split). After a restore
//! at parallelism `q`, the splits are divided so that each of the `q` subtasks
//! owns an equal share of the stream (see the `state::stride` module), and a
//! subtask merges its splits' rows in global order, so that a seeded table
//! holds the same rows, each once, however often it is rescaled, up or down.
//! The rate stays `rows-per-second` split evenly across the new subtasks.
//!
//! Lag: the rate stands for an upstream producing at `rows-per-second` (or
//! its schedule), so the reader's lag is the rows behind that schedule (the
//! integral of the rate, less the rows made), capped by the rows left (see
//! the `throttle` module). The schedule is in the checkpoint: each subtask
//! writes the rows it is behind, the snapshot's wall time and the schedule's
//! origin with its splits, and a restored source starts that far behind plus
//! the rows its rate made due while the job was down; each new subtask takes
//! its share of the restored backlog as it takes its share of the rate.
//!
//! Generation is column-wise into plain vectors, with no per-row allocation.
//!
//! [`options`] turns the table's options into each column's generator,
//! [`generator`] makes a column's values; the reader, which owns the splits
//! and builds the batches, is here.

mod generator;
mod options;
#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::ArrayRef;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

pub(crate) use options::DatagenConfig;
use options::{FieldGen, share};

use crate::rng::seed_of;
use crate::state::{
    Behind, Dec, Enc, StateError, StrideSplit, TAG_DATAGEN, merge_plan, merged_batch, next_with_rows, total_remaining,
};
use crate::throttle::Throttle;
use crate::{BatchError, ConnectorError, SourceContext, SourceEvent, SourceReader};

/// One subtask's reader of a datagen table.
pub(crate) struct DatagenReader {
    table: String,
    schema: SchemaRef,
    fields: Vec<FieldGen>,
    /// Per column: the seeds of its value and null streams.
    seeds: Vec<(u64, u64)>,
    /// The strides of the global row stream this subtask makes: on a fresh
    /// start one, split `i` of stride `p`; after a restore, those it owns.
    splits: Vec<StrideSplit>,
    /// The split the next batch comes from (round robin).
    cursor: usize,
    /// Whether the table is bounded (a reader without splits then ends).
    bounded: bool,
    batch_size: usize,
    /// `execution.batch-size`: what [`SourceReader::set_batch_size`] never exceeds.
    max_batch: usize,
    throttle: Throttle,
    hex: Vec<u8>,
}

impl DatagenReader {
    pub(crate) fn new(ctx: &SourceContext, cfg: DatagenConfig) -> Result<Self, ConnectorError> {
        let p = ctx.parallelism.max(1);
        let restored = match &ctx.restored_splits {
            None => None,
            Some(blobs) => Some(
                blobs
                    .iter()
                    .map(|b| decode_split(b))
                    .collect::<Result<Vec<_>, StateError>>()
                    .map_err(|source| ConnectorError::State { table: ctx.table.clone(), source })?,
            ),
        };
        let behind = restored.as_ref().map(|r: &Vec<(StrideSplit, Behind)>| Behind::restored(r.iter().map(|(_, b)| b)));
        let restored = restored.map(|r| r.into_iter().map(|(s, _)| s).collect());
        let splits = StrideSplit::assign(restored, ctx.subtask, p, |i, p| cfg.rows_for(i, p));
        let base_seed = cfg.seed.unwrap_or_else(|| {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
            // Without a seed, subtasks must differ: mix in the subtask.
            seed_of(&[now, ctx.subtask as u64])
        });
        let seeds =
            (0..cfg.fields.len() as u64).map(|c| (seed_of(&[base_seed, c, 1]), seed_of(&[base_seed, c, 2]))).collect();
        let rate = cfg.rate.map(|r| share(r, ctx.subtask, p));
        Ok(DatagenReader {
            table: ctx.table.clone(),
            schema: ctx.schema.clone(),
            bounded: cfg.rows_for(0, 1).is_some(),
            fields: cfg.fields,
            seeds,
            splits,
            cursor: 0,
            batch_size: ctx.batch_size.max(1),
            max_batch: ctx.batch_size.max(1),
            throttle: match behind {
                // This subtask's share of the backlog, as of the rate.
                Some(b) => Throttle::resumed(rate, share(b.rows, ctx.subtask, p), b.at_ms, b.origin_ms),
                None => Throttle::new(rate),
            },
            hex: Vec::new(),
        })
    }

    /// Generates the next `n` rows of split `split`.
    fn generate(&mut self, split: usize, n: usize) -> Result<RecordBatch, ConnectorError> {
        let Some(&sp) = self.splits.get(split) else {
            return Err(ConnectorError::Batch { table: self.table.clone(), source: BatchError::NoSplit(split) });
        };
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.fields.len());
        for (f, &seeds) in self.fields.iter().zip(&self.seeds) {
            arrays.push(generator::column(&self.table, f, seeds, &sp, n, now_ms, &mut self.hex)?);
        }
        if let Some(s) = self.splits.get_mut(split) {
            s.produced += n as u64;
        }
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )
        .map_err(|e| ConnectorError::Batch { table: self.table.clone(), source: e.into() })
    }
}

fn decode_split(blob: &[u8]) -> Result<(StrideSplit, Behind), StateError> {
    let mut d = Dec::new(blob, TAG_DATAGEN)?;
    let s = StrideSplit::decode(&mut d)?;
    d.end()?;
    Ok(s)
}

/// What a generator's snapshot writes with split `i`: the rows behind its
/// schedule (capped by the rows left) with the first split, 0 with the
/// others, and the time and the schedule's origin with all; nothing without
/// a throttle.
pub(crate) fn schedule_of(splits: &[StrideSplit], throttle: Option<&Throttle>) -> impl Fn(usize) -> Behind {
    let (rows, at_ms, origin_ms) = match throttle {
        Some(t) => {
            let (rows, now, origin) = t.snapshot_now();
            (total_remaining(splits).map_or(rows, |r| r.min(rows)), Some(now), origin)
        }
        None => (0, None, None),
    };
    move |i| Behind { rows: if i == 0 { rows } else { 0 }, at_ms, origin_ms }
}

impl DatagenReader {
    /// `n` rows from several splits, in global order (see [`merge_plan`]).
    fn merged(&mut self, n: usize) -> Result<SourceEvent, ConnectorError> {
        let plan = merge_plan(&self.splits, n);
        let table = self.table.clone();
        merged_batch(plan, &table, |split, rows| self.generate(split, rows))
    }
}

impl SourceReader for DatagenReader {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        // The next split with rows left, in turn from the cursor.
        let len = self.splits.len();
        let Some(split) = next_with_rows(&self.splits, self.cursor) else {
            return Ok(if self.bounded { SourceEvent::End } else { SourceEvent::Idle });
        };
        let remaining = if len > 1 { total_remaining(&self.splits) } else { self.splits[split].remaining() };
        let want = remaining.map_or(self.batch_size, |r| r.min(self.batch_size as u64) as usize);
        let n = self.throttle.acquire(want);
        if n == 0 {
            return Ok(SourceEvent::Idle);
        }
        self.cursor = (split + 1) % len;
        if len == 1 {
            return Ok(SourceEvent::Batch(self.generate(split, n)?));
        }
        self.merged(n)
    }

    fn has_work(&self) -> bool {
        self.splits.iter().any(|s| s.remaining() != Some(0))
    }

    /// The rows behind the rate's schedule (see [`Throttle`]), capped by the
    /// rows left when bounded.
    fn pending_records(&self) -> Option<u64> {
        let behind = self.throttle.behind();
        Some(total_remaining(&self.splits).map_or(behind, |r| r.min(behind)))
    }

    fn set_batch_size(&mut self, rows: usize) {
        self.batch_size = rows.clamp(1, self.max_batch);
    }

    /// Every split, the first with the rows this subtask is behind its
    /// schedule (capped by the rows left), all with the snapshot's time.
    fn snapshot(&self) -> Result<Vec<Vec<u8>>, ConnectorError> {
        let behind = schedule_of(&self.splits, Some(&self.throttle));
        Ok(self.splits.iter().enumerate().map(|(i, s)| s.encode(Enc::new(TAG_DATAGEN), behind(i))).collect())
    }
}
