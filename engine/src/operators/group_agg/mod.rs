//! The non-windowed aggregation (`GROUP BY` without a window TVF): an updating
//! result per key, as Flink's `GroupAggFunction` emits it without mini-batch.
//!
//! For each input row, in order, for the row's key:
//! - a retraction (`-U`, `-D`) of a key without state is ignored (its state
//!   expired, or it never reached this subtask);
//! - the first row of a key emits `+I[key, results]`;
//! - a later row emits `-U[key, previous results]` then `+U[key, results]`,
//!   unless the results did not change, when it emits nothing;
//! - when retractions bring a key's row count to zero, it emits
//!   `-D[key, previous results]` and drops the key's state.
//!
//! With `table.exec.state.ttl`, a key's state expires when it was not written
//! for the TTL (processing time, Flink's `OnCreateAndWrite` and
//! `NeverReturnExpired`): the key's next row is a first row again (`+I`), a
//! retraction for it is ignored, and an unchanged result is emitted anyway
//! (`-U`, `+U`), so that downstream state is refreshed as Flink does.
//!
//! State: one [`Group`] per key in [`KeyedState`], so a checkpoint's view is
//! taken in O(chunks) and a restore at another parallelism hands each subtask
//! the keys of its key groups.

pub(crate) mod accs;
mod packed;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use sluice_format::changelog::{self, RowKind};

use self::accs::Acc;
use self::packed::Accs;
use super::aggregate::{AggDef, AggInput};
use super::calc::relax;
use super::window::Keys;
use super::{StreamEvent, StreamOperator};
use crate::error::OpError;
use crate::state::StateView;
use crate::state::codec::{Reader, Writer};
use crate::state::keyed::{KeyedState, StateValue};
use crate::state::ttl::Ttl;
use crate::state::value::{Val, column_values, to_array};

/// One key's state: its row count (added minus retracted) and accumulators,
/// packed in one block ([`Accs`]), and, with a state TTL, when it was last
/// written (processing time, ms).
#[derive(Debug, Clone)]
pub struct Group<W: WriteTime = i64> {
    accs: Accs,
    written: W,
}

/// A group's write time: an `i64` (ms) with a state TTL, nothing (`()`)
/// without one, where it would be 8 bytes a key never read. Both encode the
/// same way (a time of 0 for `()`), so a snapshot restores with or without a
/// TTL.
pub trait WriteTime: Copy + Default + std::fmt::Debug + Send + Sync + 'static {
    fn get(self) -> i64;
    fn set(&mut self, now: i64);
}

impl WriteTime for i64 {
    fn get(self) -> i64 {
        self
    }
    fn set(&mut self, now: i64) {
        *self = now;
    }
}

impl WriteTime for () {
    fn get(self) -> i64 {
        0
    }
    fn set(&mut self, _: i64) {}
}

#[cfg(test)]
impl Group {
    pub(crate) fn for_test(rows: i64, accs: Vec<Acc>) -> Self {
        Group { accs: Accs::new(rows, accs), written: 0 }
    }
}

impl<W: WriteTime> StateValue for Group<W> {
    fn encode(&self, w: &mut Writer) {
        w.i64(self.accs.rows());
        w.i64(self.written.get());
        self.accs.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError> {
        let rows = r.i64()?;
        let mut written = W::default();
        written.set(r.i64()?);
        let n = r.u32()? as usize;
        Ok(Group { accs: Accs::decode(rows, n, r)?, written })
    }

    fn heap_size(&self) -> Option<usize> {
        Some(self.accs.heap_size())
    }
}

/// The operator; `W` is `i64` with a state TTL, `()` without (see
/// [`WriteTime`]).
pub struct GroupAggregate<W: WriteTime = i64> {
    keys: Arc<Keys>,
    aggs: Vec<AggDef>,
    /// Output: keys..., aggregates... (without the kind column).
    schema: SchemaRef,
    /// Per aggregate, whether it applies retractions (then MIN and MAX keep
    /// every value); Flink's MAX over an increasing column ignores them.
    retract: Vec<bool>,
    state: KeyedState<Group<W>>,
    /// `table.exec.state.ttl` (`Group::written` is the write time it reads).
    ttl: Ttl,
    /// The accumulators of a group of no rows, which a new key's group
    /// starts from, and where it is built.
    proto: Accs,
    scratch: Vec<u8>,
}

/// One emitted row: the input row whose key it has, its kind, and where its
/// results start in the batch's flat buffer of results.
struct Emitted {
    row: u32,
    kind: RowKind,
    at: usize,
}

impl GroupAggregate<i64> {
    /// State not written for the TTL expires (only groups that keep their
    /// write time can).
    pub fn with_ttl(mut self, ttl: Ttl) -> Self {
        self.ttl = ttl;
        self
    }
}

impl<W: WriteTime> GroupAggregate<W> {
    pub fn new(keys: Keys, aggs: Vec<AggDef>, schema: SchemaRef, retract: Vec<bool>) -> Self {
        let proto = Accs::new(0, Self::protos(&aggs, &retract));
        GroupAggregate {
            keys: Arc::new(keys),
            aggs,
            schema: relax(&schema),
            retract,
            state: KeyedState::default(),
            ttl: Ttl::default(),
            proto,
            scratch: Vec::new(),
        }
    }

    /// The accumulators of a group of no rows.
    fn protos(aggs: &[AggDef], retract: &[bool]) -> Vec<Acc> {
        aggs.iter().zip(retract).map(|(d, r)| Acc::new(d, *r)).collect()
    }

    /// Removes expired keys, at most once per TTL.
    fn sweep(&mut self, now: i64) {
        if !self.ttl.sweep_due(now) {
            return;
        }
        let ttl = self.ttl;
        let expired = self.state.keys_where(|g| ttl.expired(g.written.get(), now));
        for k in expired {
            self.state.remove(&k);
        }
    }

    /// Applies one input row to its key's group; appends what to emit to
    /// `out`, each emitted row's results to `flat` (one value per aggregate).
    #[allow(clippy::too_many_arguments)]
    fn apply_row(
        &mut self,
        now: i64,
        key: &[u8],
        kind: RowKind,
        values: &[Option<&Val>],
        pass: &[bool],
        row: u32,
        out: &mut Vec<Emitted>,
        flat: &mut Vec<Val>,
    ) -> Result<(), OpError> {
        let sign = if kind.is_accumulate() { 1 } else { -1 };
        let (ttl, n) = (self.ttl, self.aggs.len());
        let retract = &self.retract;
        let applies = |i: usize| pass[i] && (sign > 0 || retract[i]);
        let mut slot = self.state.slot(key);
        if let Some(id) = slot
            && self.state.slot_mut(id).is_some_and(|g| ttl.expired(g.written.get(), now))
        {
            self.state.remove(key);
            slot = None;
        }
        let start = flat.len();
        let Some(id) = slot else {
            if sign < 0 {
                return Ok(());
            }
            let accs = Accs::first(&self.proto, &mut self.scratch, values, sign, applies)?;
            let mut written = W::default();
            written.set(now);
            let g = Group { accs, written };
            g.accs.results(&self.aggs, flat)?;
            self.state.insert(key, g);
            out.push(Emitted { row, kind: RowKind::Insert, at: start });
            return Ok(());
        };
        let Some(g) = self.state.slot_mut(id) else { return Ok(()) };
        // The previous results, then the new ones, at the end of `flat`.
        g.accs.results(&self.aggs, flat)?;
        g.accs.apply(values, sign, applies)?;
        g.accs.add_rows(sign);
        g.written.set(now);
        if g.accs.rows() <= 0 {
            self.state.remove(key);
            out.push(Emitted { row, kind: RowKind::Delete, at: start });
            return Ok(());
        }
        let at = flat.len();
        g.accs.results(&self.aggs, flat)?;
        if !ttl.enabled() && flat[start..at] == flat[at..at + n] {
            flat.truncate(start);
        } else {
            out.push(Emitted { row, kind: RowKind::UpdateBefore, at: start });
            out.push(Emitted { row, kind: RowKind::UpdateAfter, at });
        }
        Ok(())
    }

    /// The output batch of the emitted rows: their keys taken from the input.
    fn output(&self, data: &RecordBatch, emitted: &[Emitted], flat: &[Val]) -> Result<RecordBatch, OpError> {
        let n = data.num_rows();
        let rows = UInt32Array::from_iter_values(emitted.iter().map(|e| e.row));
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for e in &self.keys.exprs {
            let k = e.evaluate(data)?.into_array(n)?;
            cols.push(take(&k, &rows, None)?);
        }
        for (i, field) in self.schema.fields().iter().enumerate().skip(cols.len()) {
            let j = i - self.keys.exprs.len();
            let col = to_array(field.data_type(), emitted.iter().map(|e| &flat[e.at + j]))?;
            cols.push(col);
        }
        // Key expressions may be typed more loosely than the planned schema.
        let cols = cols
            .into_iter()
            .zip(self.schema.fields())
            .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c) } else { arrow::compute::cast(&c, f.data_type()) })
            .collect::<Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new_with_options(
            self.schema.clone(),
            cols,
            &RecordBatchOptions::new().with_row_count(Some(emitted.len())),
        )?;
        let kinds: Vec<RowKind> = emitted.iter().map(|e| e.kind).collect();
        Ok(changelog::attach(&batch, &kinds)?)
    }
}

/// An aggregate's argument over a batch (none for `COUNT(*)`), and whether each
/// row passes its FILTER (none without one).
type AggColumn = (Option<Vec<Val>>, Option<Vec<bool>>);

/// Each aggregate's values over a batch, and whether each row passes its FILTER.
fn evaluate(aggs: &[AggDef], data: &RecordBatch) -> Result<Vec<AggColumn>, OpError> {
    aggs.iter()
        .map(|a| {
            let AggInput { values, filter } = a.evaluate(data)?;
            let values = values.map(|v| column_values(&v)).transpose()?;
            let filter = filter.map(|f| (0..f.len()).map(|i| f.is_valid(i) && f.value(i)).collect());
            Ok((values, filter))
        })
        .collect()
}

impl<W: WriteTime> StreamOperator for GroupAggregate<W> {
    fn name(&self) -> String {
        "GroupAggregate".into()
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let now = self.ttl.now();
        self.sweep(now);
        let (data, kinds) = changelog::split(&batch);
        let keys = self.keys.encode(&data)?;
        let inputs = evaluate(&self.aggs, &data)?;
        let mut emitted = Vec::new();
        let mut flat = Vec::new();
        let mut values: Vec<Option<&Val>> = Vec::with_capacity(inputs.len());
        let mut pass: Vec<bool> = Vec::with_capacity(inputs.len());
        for (r, kind) in kinds.iter().enumerate() {
            values.clear();
            pass.clear();
            for (v, f) in &inputs {
                values.push(v.as_ref().map(|v| &v[r]));
                pass.push(f.as_ref().is_none_or(|f| f[r]));
            }
            let key = keys.as_ref().map(|k| k.row(r));
            let key: &[u8] = key.as_ref().map(|k| k.as_ref()).unwrap_or(&[]);
            self.apply_row(now, key, *kind, &values, &pass, r as u32, &mut emitted, &mut flat)?;
        }
        if !emitted.is_empty() {
            out.push(StreamEvent::Batch(self.output(&data, &emitted, &flat)?));
        }
        Ok(())
    }

    fn state_layout(&self) -> Option<String> {
        let accs: Vec<&str> = Self::protos(&self.aggs, &self.retract).iter().map(Acc::layout).collect();
        Some(format!("GroupAggregate; {}; aggregates [{}]; ttl", self.keys.layout(), accs.join(", ")))
    }

    fn state_keys(&self) -> Option<u64> {
        Some(self.state.len() as u64)
    }

    fn state_keys_on_disk(&self) -> Option<u64> {
        Some(self.state.spilled() as u64)
    }

    /// Watermarks only pass through: the state is not event-time based.
    fn watermark_reads_state(&self) -> bool {
        false
    }

    fn health(&self) -> Result<(), OpError> {
        self.state.health()
    }

    fn snapshot(&mut self) -> Result<Option<Box<dyn StateView>>, OpError> {
        Ok(Some(Box::new(self.state.view(self.keys.clone()))))
    }

    fn restore(&mut self, _key_group: u32, state: &[u8]) -> Result<(), OpError> {
        self.state.restore(state)
    }
}

#[cfg(test)]
mod tests;
