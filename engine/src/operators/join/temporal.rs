//! The event-time temporal join (`JOIN r FOR SYSTEM_TIME AS OF l.ts`, INNER
//! or LEFT), as Flink's `TemporalRowTimeJoinOperator`: each left row waits
//! until the watermark passes its time, then joins the version of its key
//! valid at that time — the right row with the greatest time at or before it.
//!
//! Per key, in a [`KeyedState`] (so a restore at another parallelism hands each
//! subtask its keys), [`Versions`] keeps the left rows not yet emitted in
//! arrival order, the right rows by their time (one per time: a later row at
//! the same time replaces it) and the key's one timer.
//!
//! Invariants, with `W` the operator's watermark (the minimum of its inputs'):
//! - a key's timer is the smallest time of the rows that came since it last
//!   fired (then the smallest time of its waiting left rows); it fires when
//!   `W` reaches it, as Flink's one timer per key;
//! - when it fires, the waiting left rows at or before `W` are emitted in
//!   their arrival order, each once: joined with its version when that version
//!   is an insert or update and the residual holds, else null-padded by a LEFT
//!   join; a `-D` version means the key had no row from then on. The output
//!   carries each left row's kind and is append-only for an append-only left
//!   input. A left row that came after `W` passed its time waits for the next
//!   watermark, as in Flink (its version may have been cleaned by then);
//! - the right input is read as upserts: a `-U` changes nothing (Flink asks
//!   its versioned input for updates without their before-images);
//! - versions older than the latest one at or before `W` are dropped when the
//!   timer fires: no left row still to come can need them; the latest is kept;
//! - the key is the row-encoded join key, nulls included (Flink keys the
//!   state so); a row whose time is null is dropped;
//! - a key with nothing left (no waiting left row, no version) is removed;
//! - with `table.exec.state.ttl`, a key neither given a row nor fired for the
//!   TTL (processing time) loses all its state, its waiting left rows and its
//!   latest version included, as Flink's cleanup timer clears it: a later
//!   left row finds no version. Flink's timer fires between one and one and a
//!   half TTLs after; Sluice expires at one TTL, when the key is next touched
//!   or by a sweep of the whole state once per TTL.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow::row::RowConverter;
use datafusion_physical_expr::PhysicalExpr;
use sluice_format::changelog::{self, RowKind};
use sluice_sql::plan::{JoinKind, TemporalTimes};

use super::{JoinDef, Output, residual_mask, row_converter, two_inputs};
use crate::error::OpError;
use crate::metrics::NO_WATERMARK;
use crate::operators::calc::relax;
use crate::operators::window::Keys;
use crate::operators::{StreamEvent, StreamOperator, epoch_millis};
use crate::state::StateView;
use crate::state::codec::{Reader, Writer};
use crate::state::keyed::{KeyedState, StateValue};
use crate::state::ttl::Ttl;

/// A left row waiting for the watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Waiting {
    time: i64,
    kind: RowKind,
    row: Box<[u8]>,
}

/// A version of the right input: its row and whether it is a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    deleted: bool,
    row: Box<[u8]>,
}

/// One key's state.
#[derive(Debug, Clone, Default)]
struct Versions {
    left: Vec<Waiting>,
    right: BTreeMap<i64, Version>,
    timer: Option<i64>,
    /// When a row last came or the timer last fired (processing time, ms),
    /// for the state TTL.
    touched: i64,
}

impl Versions {
    /// Flink's `registerSmallestTimer`: the timer moves only earlier.
    fn register(&mut self, time: i64) -> Option<(Option<i64>, i64)> {
        match self.timer {
            Some(t) if t <= time => None,
            old => {
                self.timer = Some(time);
                Some((old, time))
            }
        }
    }
}

impl StateValue for Versions {
    fn encode(&self, w: &mut Writer) {
        w.u32(self.left.len() as u32);
        for l in &self.left {
            w.i64(l.time);
            w.u8(l.kind as i8 as u8);
            w.bytes(&l.row);
        }
        w.u32(self.right.len() as u32);
        for (time, v) in &self.right {
            w.i64(*time);
            w.bool(v.deleted);
            w.bytes(&v.row);
        }
        w.opt(&self.timer, |w, t| w.i64(*t));
        w.i64(self.touched);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError> {
        let mut v = Versions::default();
        for _ in 0..r.u32()? {
            let time = r.i64()?;
            let kind = RowKind::from_byte(r.u8()? as i8)
                .ok_or_else(|| OpError::Other("temporal join state: a bad row kind".into()))?;
            v.left.push(Waiting { time, kind, row: r.bytes()?.into() });
        }
        for _ in 0..r.u32()? {
            let time = r.i64()?;
            let deleted = r.bool()?;
            v.right.insert(time, Version { deleted, row: r.bytes()?.into() });
        }
        v.timer = r.opt(|r| r.i64())?;
        v.touched = r.i64()?;
        Ok(v)
    }
}

pub struct TemporalJoin {
    left_outer: bool,
    keys: [Arc<Keys>; 2],
    rows: [RowConverter; 2],
    times: [usize; 2],
    residual: Option<Arc<dyn PhysicalExpr>>,
    schema: arrow::datatypes::SchemaRef,
    updating: bool,
    row_types: String,
    state: KeyedState<Versions>,
    /// Every key's timer, in firing order. Rebuilt from the state after a
    /// restore.
    timers: BTreeSet<(i64, Box<[u8]>)>,
    timers_stale: bool,
    watermark: i64,
    ttl: Ttl,
}

/// A left row being emitted, and its version when one joins it.
struct Emit {
    kind: RowKind,
    row: Box<[u8]>,
    version: Option<Box<[u8]>>,
}

impl TemporalJoin {
    pub fn new(def: JoinDef, times: TemporalTimes) -> Result<Self, OpError> {
        if !matches!(def.kind, JoinKind::Inner | JoinKind::Left) {
            return Err(OpError::Other(format!("a temporal join is INNER or LEFT, not {}", def.kind)));
        }
        let [lk, rk] = def.keys;
        Ok(TemporalJoin {
            left_outer: def.kind == JoinKind::Left,
            keys: [Arc::new(Keys::new(lk, def.key_types.clone())?), Arc::new(Keys::new(rk, def.key_types)?)],
            rows: [row_converter(&def.inputs[0])?, row_converter(&def.inputs[1])?],
            times: [times.left_time, times.right_time],
            residual: def.residual,
            schema: relax(&def.schema),
            updating: def.updating,
            row_types: format!(
                "{:?} | {:?}",
                def.inputs[0].fields().iter().map(|f| f.data_type()).collect::<Vec<_>>(),
                def.inputs[1].fields().iter().map(|f| f.data_type()).collect::<Vec<_>>()
            ),
            state: KeyedState::default(),
            timers: BTreeSet::new(),
            timers_stale: false,
            watermark: NO_WATERMARK,
            ttl: Ttl::new(Duration::from_millis(u64::try_from(def.ttl).unwrap_or(0))),
        })
    }

    /// The state TTL measured with another clock (tests).
    pub fn with_ttl(mut self, ttl: Ttl) -> Self {
        self.ttl = ttl;
        self
    }

    /// Removes `key`'s state and its timer.
    fn forget(&mut self, key: &[u8]) {
        if let Some(v) = self.state.remove(key)
            && let Some(t) = v.timer
        {
            self.timers.remove(&(t, Box::from(key)));
        }
    }

    /// Whether `key`'s state has expired at `now`.
    fn expired(&mut self, key: &[u8], now: i64) -> bool {
        let ttl = self.ttl;
        self.state.get(key).is_some_and(|v| ttl.expired(v.touched, now))
    }

    /// Once per TTL, forgets every key that expired.
    fn sweep(&mut self, now: i64) {
        if !self.ttl.sweep_due(now) {
            return;
        }
        let ttl = self.ttl;
        let expired = self.state.keys_where(|v| ttl.expired(v.touched, now));
        for key in expired {
            self.forget(&key);
        }
    }

    /// Each row's encoded key, nulls included.
    fn encode_keys(&self, side: usize, data: &RecordBatch) -> Result<Vec<Box<[u8]>>, OpError> {
        let n = data.num_rows();
        let keys = &self.keys[side];
        let Some(converter) = &keys.converter else { return Ok(vec![Box::default(); n]) };
        let cols: Vec<ArrayRef> =
            keys.exprs.iter().map(|e| e.evaluate(data).and_then(|v| v.into_array(n))).collect::<Result<_, _>>()?;
        let encoded = converter.convert_columns(&cols)?;
        Ok((0..n).map(|r| encoded.row(r).as_ref().into()).collect())
    }

    fn process(&mut self, side: usize, batch: RecordBatch) -> Result<(), OpError> {
        self.rebuild_timers();
        let now = self.ttl.now();
        self.sweep(now);
        let (data, kinds) = changelog::split(&batch);
        let times = epoch_millis(data.column(self.times[side]))?;
        let keys = self.encode_keys(side, &data)?;
        let rows = self.rows[side].convert_columns(data.columns())?;
        for (r, key) in keys.into_iter().enumerate() {
            if times.is_null(r) || (side == 1 && kinds[r] == RowKind::UpdateBefore) {
                continue;
            }
            let time = times.value(r);
            let row: Box<[u8]> = rows.row(r).as_ref().into();
            if self.expired(&key, now) {
                self.forget(&key);
            }
            if self.state.get(&key).is_none() {
                self.state.insert(&key, Versions::default());
            }
            let Some(v) = self.state.get_mut(&key) else { continue };
            v.touched = now;
            if side == 0 {
                v.left.push(Waiting { time, kind: kinds[r], row });
            } else {
                v.right.insert(time, Version { deleted: !kinds[r].is_accumulate(), row });
            }
            if let Some((old, new)) = v.register(time) {
                if let Some(old) = old {
                    self.timers.remove(&(old, key.clone()));
                }
                self.timers.insert((new, key));
            }
        }
        Ok(())
    }

    /// Fires the timers the watermark `w` reached: emits their keys' left
    /// rows at or before `w` and drops the versions no left row can need.
    fn fire(&mut self, w: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        self.rebuild_timers();
        let now = self.ttl.now();
        self.sweep(now);
        let mut emits = Vec::new();
        while let Some(first) = self.timers.first() {
            if first.0 > w {
                break;
            }
            let Some((_, key)) = self.timers.pop_first() else { break };
            if self.expired(&key, now) {
                self.forget(&key);
                continue;
            }
            let Some(v) = self.state.get_mut(&key) else { continue };
            v.timer = None;
            v.touched = now;
            let (due, waiting): (Vec<Waiting>, Vec<Waiting>) =
                std::mem::take(&mut v.left).into_iter().partition(|l| l.time <= w);
            for l in due {
                let version = v.right.range(..=l.time).next_back().map(|(_, x)| x);
                let version = version.filter(|x| !x.deleted).map(|x| x.row.clone());
                emits.push(Emit { kind: l.kind, row: l.row, version });
            }
            // Keep the latest version at or before `w`, and every later one.
            if let Some(&keep) = v.right.range(..=w).next_back().map(|(t, _)| t) {
                v.right = v.right.split_off(&keep);
            }
            v.left = waiting;
            if let Some(next) = v.left.iter().map(|l| l.time).min() {
                v.timer = Some(next);
                self.timers.insert((next, key));
            } else if v.right.is_empty() {
                self.state.remove(&key);
            }
        }
        self.emit(emits, out)
    }

    /// The output of fired left rows, in order: joined when their version
    /// passes the residual, else padded by a LEFT join.
    fn emit(&self, emits: Vec<Emit>, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if emits.is_empty() {
            return Ok(());
        }
        let parser = self.rows[0].parser();
        let cols = self.rows[0].convert_rows(emits.iter().map(|e| parser.parse(&e.row)))?;
        let n = emits.len();
        let left_schema = Arc::new(arrow::datatypes::Schema::new(
            self.schema.fields()[..cols.len()].iter().map(|f| f.as_ref().clone()).collect::<Vec<_>>(),
        ));
        let left =
            RecordBatch::try_new_with_options(left_schema, cols, &RecordBatchOptions::new().with_row_count(Some(n)))?;
        let candidates: Vec<u32> = (0..n as u32).filter(|r| emits[*r as usize].version.is_some()).collect();
        // Per emitted row, whether it passes the residual, and its candidate position.
        let mut pass = vec![(true, 0usize); n];
        let mut theirs = Vec::new();
        if let Some(residual) = &self.residual
            && !candidates.is_empty()
        {
            let versions: Vec<&[u8]> =
                candidates.iter().filter_map(|r| emits[*r as usize].version.as_deref()).collect();
            let res = residual_mask(residual, &self.schema, 0, &left, candidates.clone(), &versions, &self.rows[1])?;
            for (c, (r, ok)) in candidates.iter().zip(res.mask).enumerate() {
                pass[*r as usize] = (ok, c);
            }
            theirs = res.theirs;
        }
        let mut o = Output::with_decoded(theirs);
        for (r, e) in emits.iter().enumerate() {
            match &e.version {
                Some(v) if pass[r].0 => o.push_candidate(r, e.kind, true, pass[r].1, v),
                _ if self.left_outer => o.push_row(r, e.kind, true, None),
                _ => {}
            }
        }
        if !o.is_empty() {
            out.push(StreamEvent::Batch(o.assemble(&self.schema, &self.rows[1], 0, &left, self.updating)?));
        }
        Ok(())
    }

    /// After a restore, every key's timer is back in the index.
    fn rebuild_timers(&mut self) {
        if !std::mem::take(&mut self.timers_stale) {
            return;
        }
        let mut timers = BTreeSet::new();
        self.state.scan(|k, v| {
            if let Some(t) = v.timer {
                timers.insert((t, Box::from(k)));
            }
        });
        self.timers = timers;
    }
}

impl StreamOperator for TemporalJoin {
    fn name(&self) -> String {
        format!("TemporalJoin({})", if self.left_outer { "LEFT" } else { "INNER" })
    }

    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        self.process(0, batch)
    }

    fn process_batch_from(
        &mut self,
        input: usize,
        batch: RecordBatch,
        _out: &mut Vec<StreamEvent>,
    ) -> Result<(), OpError> {
        self.process(two_inputs(input)?, batch)
    }

    fn process_watermark(&mut self, watermark: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if watermark <= self.watermark {
            return Ok(());
        }
        self.watermark = watermark;
        self.fire(watermark, out)?;
        out.push(StreamEvent::Watermark(watermark));
        Ok(())
    }

    fn state_layout(&self) -> Option<String> {
        // `touched`: each key's last touch (for the state TTL) is in its state.
        Some(format!("{}; {}; rows {}; touched", self.name(), self.keys[0].layout(), self.row_types))
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
#[path = "temporal_tests.rs"]
mod tests;
