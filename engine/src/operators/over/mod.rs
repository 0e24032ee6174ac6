//! The OVER aggregation on event time (Flink's `OverAggregate` with its
//! `RowTime*PrecedingFunction`s): each input row, once the watermark passes
//! its time, is emitted with the aggregates of its frame within its partition.
//! Append-only in and out; the output is the input's columns, then the
//! aggregates, so the time attribute passes through.
//!
//! The per-partition semantics (buffering, lateness, frames, retraction,
//! cleanup) are in [`partition`]. This operator routes rows to their
//! partition's state and fires timers in time order when the watermark
//! advances, before forwarding it.
//!
//! With `table.exec.state.ttl`, a partition neither given a row nor fired for
//! the TTL (processing time) is forgotten, as Flink's cleanup timer clears
//! it, unless rows still wait for the watermark: its aggregates start over,
//! and a ROWS bounded frame forgets its last fired timer (so its lateness).
//! A RANGE bounded frame keeps no TTL: Flink's
//! `RowTimeRangeBoundedPrecedingFunction` takes none and cleans by event time
//! only. Flink's timer fires between one and one and a half TTLs after; Sluice
//! expires at one TTL, when the partition is next touched or by a sweep of
//! the whole state once per TTL.
//!
//! Invariants:
//! - `timers` holds exactly the (time, key) of every timer of every partition
//!   in `state`; a restore rebuilds it from the partitions;
//! - state is one [`Partition`] per key in [`KeyedState`], so a checkpoint
//!   writes it by key group and a restore at another parallelism hands each
//!   subtask its keys.

pub mod partition;

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::Array;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use sluice_format::changelog::{self, RowKind};
use sluice_sql::plan::OverFrame;

use self::partition::{Arg, Entry, Fired, Partition};
use super::aggregate::{AggDef, AggInput};
use super::calc::relax;
use super::rows::{Emit, Row, batch_rows, output_batch};
use super::window::Keys;
use super::{StreamEvent, StreamOperator, epoch_millis};
use crate::error::OpError;
use crate::metrics::NO_WATERMARK;
use crate::state::StateView;
use crate::state::codec::Reader;
use crate::state::keyed::{KeyedState, StateValue};
use crate::state::ttl::Ttl;
use crate::state::value::column_values;

pub struct OverAggregate {
    keys: Arc<Keys>,
    time_col: usize,
    frame: OverFrame,
    aggs: Vec<AggDef>,
    /// The input's column types.
    types: Vec<DataType>,
    /// The output's: the input's, then the aggregates'.
    out_types: Vec<DataType>,
    schema: SchemaRef,
    state: KeyedState<Partition>,
    timers: BTreeSet<(i64, Arc<[u8]>)>,
    watermark: i64,
    late: u64,
    ttl: Ttl,
}

impl OverAggregate {
    pub fn new(
        keys: Keys,
        time_col: usize,
        frame: OverFrame,
        aggs: Vec<AggDef>,
        types: Vec<DataType>,
        schema: SchemaRef,
    ) -> Self {
        let out_types = types.iter().cloned().chain(aggs.iter().map(|a| a.output_type.clone())).collect();
        OverAggregate {
            keys: Arc::new(keys),
            time_col,
            frame,
            aggs,
            types,
            out_types,
            schema: relax(&schema),
            state: KeyedState::default(),
            timers: BTreeSet::new(),
            watermark: NO_WATERMARK,
            late: 0,
            ttl: Ttl::default(),
        }
    }

    /// `table.exec.state.ttl`; ignored by a RANGE bounded frame, as in Flink.
    pub fn with_ttl(mut self, ttl: Ttl) -> Self {
        if self.frame.rows || self.frame.preceding.is_none() {
            self.ttl = ttl;
        }
        self
    }

    /// Once per TTL, forgets every expired partition. Having no rows waiting,
    /// it has no timers either.
    fn sweep(&mut self, now: i64) {
        if !self.ttl.sweep_due(now) {
            return;
        }
        let ttl = self.ttl;
        let expired = self.state.keys_where(|p| ttl.expired(p.touched, now) && !p.has_pending());
        for key in expired {
            self.state.remove(&key);
        }
    }

    /// Each aggregate's input for each row of a batch.
    fn args(&self, batch: &RecordBatch) -> Result<Vec<Vec<Arg>>, OpError> {
        let n = batch.num_rows();
        let mut per_row: Vec<Vec<Arg>> = (0..n).map(|_| Vec::with_capacity(self.aggs.len())).collect();
        for a in &self.aggs {
            let AggInput { values, filter } = a.evaluate(batch)?;
            let values = values.map(|v| column_values(&v)).transpose()?;
            for (r, args) in per_row.iter_mut().enumerate() {
                let pass = filter.as_ref().is_none_or(|f| f.is_valid(r) && f.value(r));
                args.push(match (&values, pass) {
                    (_, false) => Arg::Skip,
                    (None, true) => Arg::Star,
                    (Some(v), true) => Arg::Val(v[r].clone()),
                });
            }
        }
        Ok(per_row)
    }
}

impl StreamOperator for OverAggregate {
    fn name(&self) -> String {
        format!("OverAggregate({})", self.frame)
    }

    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if changelog::has_kinds(&batch) {
            return Err(OpError::Other("an OVER aggregation over an updating input is not supported".into()));
        }
        let rows = batch_rows(&batch, self.types.len())?;
        let ts = epoch_millis(batch.column(self.time_col))?;
        let keys = self.keys.encode(&batch)?;
        let args = self.args(&batch)?;
        let now = self.ttl.now();
        self.sweep(now);
        for (i, (row, args)) in rows.into_iter().zip(args).enumerate() {
            let key: &[u8] = match &keys {
                Some(k) => k.row(i).data(),
                None => &[],
            };
            let ttl = self.ttl;
            if self.state.get(key).is_some_and(|p| ttl.expired(p.touched, now) && !p.has_pending()) {
                self.state.remove(key);
            }
            if ts.is_null(i) || Partition::is_late(self.state.get(key), &self.frame, ts.value(i), self.watermark) {
                // A late row still keeps its partition alive, as in Flink.
                if let Some(p) = self.state.get_mut(key) {
                    p.touched = now;
                }
                self.late += 1;
                continue;
            }
            let t = ts.value(i);
            let entry = Entry { row, args: args.into() };
            let new = match self.state.get_mut(key) {
                Some(p) => {
                    p.touched = now;
                    p.add(&self.frame, t, entry)
                }
                None => {
                    let mut p = Partition::new(&self.aggs, &self.frame);
                    p.touched = now;
                    let new = p.add(&self.frame, t, entry);
                    self.state.insert(key, p);
                    new
                }
            };
            if !new.is_empty() {
                let k: Arc<[u8]> = Arc::from(key);
                self.timers.extend(new.into_iter().map(|t| (t, k.clone())));
            }
        }
        Ok(())
    }

    fn process_watermark(&mut self, watermark: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if watermark > self.watermark {
            self.watermark = watermark;
            let now = self.ttl.now();
            self.sweep(now);
            let mut rows: Vec<Row> = Vec::new();
            while let Some((t, _)) = self.timers.first()
                && *t <= watermark
            {
                let Some((t, key)) = self.timers.pop_first() else { break };
                let Some(p) = self.state.get_mut(&key) else { continue };
                p.touched = now;
                if p.fire(&self.frame, &self.aggs, t, &mut rows)? == Fired::Cleared
                    && let Some(p) = self.state.remove(&key)
                {
                    for t in p.timers() {
                        self.timers.remove(&(t, key.clone()));
                    }
                }
            }
            if !rows.is_empty() {
                let emits: Vec<Emit> =
                    rows.into_iter().map(|row| Emit { kind: RowKind::Insert, row, rank: None }).collect();
                out.push(StreamEvent::Batch(output_batch(&emits, &self.out_types, false, false, &self.schema)?));
            }
        }
        out.push(StreamEvent::Watermark(watermark));
        Ok(())
    }

    fn late_records_dropped(&self) -> u64 {
        self.late
    }

    fn state_layout(&self) -> Option<String> {
        let accs: Vec<&str> = Partition::new(&self.aggs, &self.frame).layout();
        Some(format!(
            // `touched`: each partition's last touch (for the state TTL).
            "{}; {}; aggregates [{}]; columns {:?}; touched",
            self.name(),
            self.keys.layout(),
            accs.join(", "),
            self.types
        ))
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
        Ok(Some(Box::new(self.state.view(self.keys.clone()))))
    }

    /// The records [`KeyedState`]'s view wrote: a key, then its partition;
    /// the partition's timers come back with it.
    fn restore(&mut self, _key_group: u32, state: &[u8]) -> Result<(), OpError> {
        let mut r = Reader::new(state);
        while !r.is_empty() {
            let key: Arc<[u8]> = Arc::from(r.bytes()?);
            let p = Partition::decode(&mut r)?;
            self.timers.extend(p.timers().map(|t| (t, key.clone())));
            self.state.insert(&key, p);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
