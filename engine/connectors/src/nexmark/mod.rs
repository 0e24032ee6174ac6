//! The `nexmark` source: deterministic generators of the Nexmark benchmark's
//! person, auction and bid streams, after nexmark-flink's `NexmarkGenerator`
//! (itself from Apache Beam).
//!
//! The global event stream repeats a pattern of 50 events: 1 person, 3
//! auctions, 46 bids. Event `n` happens at `base-time + n / event-rate`
//! (10 000 events per second of event time by default). Ids are dense and
//! start at 1000; a bid's auction is one of the last "hot" auctions with
//! probability 1/2 (else a random recent auction), its bidder a hot person
//! with probability 3/4, and so on, as in the reference generator.
//!
//! Each event's fields come from a PRNG seeded with (seed, event number), so
//! an event is the same whichever subtask makes it and whatever the batch
//! size: the three tables of one seed describe one consistent stream, and a
//! table holds the same rows at any parallelism. Subtask `i` of `p` makes the
//! `i`-th, `(i+p)`-th, … event of its table's kind, so subtasks advance
//! through event time together.
//!
//! Checkpoints: a split is one stride of the table's events, state (kind,
//! split, stride, events produced, event limit of the split). A fresh subtask
//! `i` of `p` owns split `i` of stride `p`; after a restore at parallelism
//! `q`, the splits are divided so that each of the `q` subtasks owns an equal
//! share of the stream (see the `state::stride` module), and a subtask merges
//! its splits' events in global order. With `events-per-second`, the
//! splits also carry the schedule, so that a restored source's lag includes
//! the events due while the job was down (as datagen's).
//!
//! Options: `nexmark.table` (`bid`, `auction` or `person`, required),
//! `number-of-events` (total events of all three kinds; bounded if set),
//! `events-per-second` (wall-clock throttle of the whole stream, default
//! none), `seed` (default 0), `nexmark.event-rate` (events per second of event
//! time; default `events-per-second`, else 10000), `nexmark.base-time` (the
//! first event's time, epoch millis or `yyyy-MM-dd HH:mm:ss`, default
//! 2024-01-01 00:00:00 UTC).
//!
//! [`model`] holds the kinds of events and their tables, [`config`] the
//! options, [`generator`] the making of each event's fields; the reader,
//! which owns the splits and builds the batches, is here.

mod config;
mod generator;
mod model;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

pub(crate) use config::NexmarkConfig;
use generator::{Buffers, EventGenerator, StrCol};
use model::{ColKind, Kind, TOTAL_PROPORTION};

use crate::datagen::schedule_of;
use crate::state::{
    Behind, Dec, Enc, StateError, StrideSplit, TAG_NEXMARK, merge_plan, merged_batch, next_with_rows, total_remaining,
};
use crate::throttle::{Rate, Throttle};
use crate::{BatchError, ConnectorError, SourceContext, SourceEvent, SourceReader};

/// One subtask's reader of a nexmark table.
pub(crate) struct NexmarkReader {
    table: String,
    schema: SchemaRef,
    cfg: NexmarkConfig,
    /// The strides of this kind's events this subtask makes: on a fresh start
    /// one, split `i` of stride `p`; after a restore, those it owns.
    splits: Vec<StrideSplit>,
    /// The split the next batch comes from (round robin).
    cursor: usize,
    batch_size: usize,
    /// `execution.batch-size`: what [`SourceReader::set_batch_size`] never exceeds.
    max_batch: usize,
    throttle: Option<Throttle>,
    events: EventGenerator,
}

impl NexmarkReader {
    pub(crate) fn new(ctx: &SourceContext, cfg: NexmarkConfig) -> Result<Self, ConnectorError> {
        let p = ctx.parallelism.max(1) as u64;
        let restored = match &ctx.restored_splits {
            None => None,
            Some(blobs) => Some(
                blobs
                    .iter()
                    .map(|b| decode_split(b, cfg.kind))
                    .collect::<Result<Vec<_>, StateError>>()
                    .map_err(|source| ConnectorError::State { table: ctx.table.clone(), source })?,
            ),
        };
        let behind = restored.as_ref().map(|r: &Vec<(StrideSplit, Behind)>| Behind::restored(r.iter().map(|(_, b)| b)));
        let restored = restored.map(|r| r.into_iter().map(|(s, _)| s).collect());
        let splits = StrideSplit::assign(restored, ctx.subtask, p as usize, |i, p| {
            cfg.number_of_events.map(|n| {
                let total = cfg.kind.count_in(n);
                total / p as u64 + u64::from(total % p as u64 > i as u64)
            })
        });
        // The throttle limits the whole stream; this subtask's share of it is
        // its share of this kind's events.
        let (_, count) = cfg.kind.slot();
        let throttle = cfg.events_per_second.map(|eps| {
            let kind_rate = (eps as f64 * count as f64 / TOTAL_PROPORTION as f64 / p as f64).max(1.0);
            let rate = kind_rate.round() as u64;
            match behind {
                // This subtask's share of the restored backlog (see the `throttle` module).
                Some(b) => {
                    let share = b.rows / p + u64::from(b.rows % p > ctx.subtask as u64);
                    Throttle::resumed(Rate::constant(rate), share, b.at_ms, b.origin_ms)
                }
                None => Throttle::new(Rate::constant(rate)),
            }
        });
        let events = EventGenerator::new(cfg.seed, cfg.base_time, cfg.inter_event_delay_us);
        Ok(NexmarkReader {
            table: ctx.table.clone(),
            schema: ctx.schema.clone(),
            cfg,
            splits,
            cursor: 0,
            batch_size: ctx.batch_size.max(1),
            max_batch: ctx.batch_size.max(1),
            throttle,
            events,
        })
    }

    /// Generates the next `count` events of split `split`.
    fn generate(&mut self, split: usize, count: usize) -> Result<RecordBatch, ConnectorError> {
        let Some(&sp) = self.splits.get(split) else {
            return Err(ConnectorError::Batch { table: self.table.clone(), source: BatchError::NoSplit(split) });
        };
        let cols = self.cfg.kind.columns();
        let mut slots = vec![None; cols.len()];
        let (mut n_int, mut n_str) = (0, 0);
        for &g in &self.cfg.projection {
            if slots[g].is_none() {
                let is_str = cols[g].1 == ColKind::Utf8;
                slots[g] = Some((is_str, if is_str { n_str } else { n_int }));
                if is_str {
                    n_str += 1;
                } else {
                    n_int += 1;
                }
            }
        }
        let mut b = Buffers {
            ints: (0..n_int).map(|_| Vec::with_capacity(count)).collect(),
            strs: (0..n_str).map(|_| StrCol::with_capacity(count, count * 64)).collect(),
            slots,
        };
        let kind = self.cfg.kind;
        for j in 0..count as u64 {
            let k = sp.global(sp.produced + j);
            let n = kind.event_number(k);
            self.events.event(kind, &mut b, n);
        }
        let table = &self.table;
        let mut finished_strs: Vec<Option<ArrayRef>> = std::mem::take(&mut b.strs)
            .into_iter()
            .map(|s| {
                s.finish()
                    .map(|a| Some(Arc::new(a) as ArrayRef))
                    .map_err(|source| ConnectorError::Batch { table: table.clone(), source })
            })
            .collect::<Result<_, _>>()?;
        let mut finished_ints: Vec<Option<Vec<i64>>> = b.ints.into_iter().map(Some).collect();
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.cfg.projection.len());
        let mut done: Vec<Option<ArrayRef>> = vec![None; cols.len()];
        for (f, &g) in self.schema.fields().iter().zip(&self.cfg.projection) {
            if let Some(a) = &done[g] {
                arrays.push(a.clone());
                continue;
            }
            let array: ArrayRef = match b.slots[g] {
                Some((true, s)) => {
                    finished_strs[s].take().unwrap_or_else(|| Arc::new(StringArray::from(Vec::<&str>::new())))
                }
                Some((false, s)) => {
                    let v = finished_ints[s].take().unwrap_or_default();
                    if cols[g].1 == ColKind::Timestamp {
                        Arc::new(TimestampMillisecondArray::from(v).with_data_type(f.data_type().clone()))
                    } else {
                        Arc::new(Int64Array::from(v))
                    }
                }
                None => continue,
            };
            done[g] = Some(array.clone());
            arrays.push(array);
        }
        if let Some(s) = self.splits.get_mut(split) {
            s.produced += count as u64;
        }
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(count)),
        )
        .map_err(|e| ConnectorError::Batch { table: self.table.clone(), source: e.into() })
    }
}

fn kind_code(kind: Kind) -> u8 {
    match kind {
        Kind::Person => 0,
        Kind::Auction => 1,
        Kind::Bid => 2,
    }
}

fn decode_split(blob: &[u8], kind: Kind) -> Result<(StrideSplit, Behind), StateError> {
    let mut d = Dec::new(blob, TAG_NEXMARK)?;
    let code = d.u8()?;
    if code != kind_code(kind) {
        return Err(StateError::OtherNexmarkTable { table: kind.name(), code });
    }
    let s = StrideSplit::decode(&mut d)?;
    d.end()?;
    Ok(s)
}

impl NexmarkReader {
    /// `n` rows from several splits, in global order (see [`merge_plan`]).
    fn merged(&mut self, n: usize) -> Result<SourceEvent, ConnectorError> {
        let plan = merge_plan(&self.splits, n);
        let table = self.table.clone();
        merged_batch(plan, &table, |split, rows| self.generate(split, rows))
    }
}

impl SourceReader for NexmarkReader {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        // The next split with events left, in turn from the cursor.
        let len = self.splits.len();
        let Some(split) = next_with_rows(&self.splits, self.cursor) else {
            let bounded = self.cfg.number_of_events.is_some();
            return Ok(if bounded { SourceEvent::End } else { SourceEvent::Idle });
        };
        let remaining = if len > 1 { total_remaining(&self.splits) } else { self.splits[split].remaining() };
        let want = remaining.map_or(self.batch_size, |r| r.min(self.batch_size as u64) as usize);
        let n = match &mut self.throttle {
            Some(t) => t.acquire(want),
            None => want,
        };
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

    /// With `events-per-second`, the events behind its schedule (see
    /// [`Throttle`]), capped by the events left when bounded; without it, the
    /// events left, and unknown when unbounded.
    fn pending_records(&self) -> Option<u64> {
        let remaining = total_remaining(&self.splits);
        match &self.throttle {
            Some(t) => Some(remaining.map_or(t.behind(), |r| r.min(t.behind()))),
            None => remaining,
        }
    }

    fn set_batch_size(&mut self, rows: usize) {
        self.batch_size = rows.clamp(1, self.max_batch);
    }

    fn snapshot(&self) -> Result<Vec<Vec<u8>>, ConnectorError> {
        let code = kind_code(self.cfg.kind);
        let behind = schedule_of(&self.splits, self.throttle.as_ref());
        Ok(self.splits.iter().enumerate().map(|(i, s)| s.encode(Enc::new(TAG_NEXMARK).u8(code), behind(i))).collect())
    }
}
