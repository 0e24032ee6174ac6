//! Temporal sort: `ORDER BY` the event-time attribute ascending, then other
//! keys, in a streaming query (Flink's `RowTimeSortOperator`). One subtask
//! sorts every row.
//!
//! - A row waits until the watermark reaches its time; then the rows of each
//!   time are emitted, times ascending, and within one time by the other keys
//!   (stable: rows equal on every key keep their arrival order).
//! - A row whose time is not after the last time emitted is late and dropped,
//!   as is a row without a time.
//! - The output is append-only and keeps the time attribute: watermarks pass
//!   after the rows they release.
//!
//! State: the waiting rows, one value under the empty key in [`KeyedState`],
//! and the last time emitted.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::Array;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion_physical_expr::PhysicalExpr;
use sluice_format::changelog::RowKind;

use super::calc::relax;
use super::rows::{
    Direction, Emit, Row, SortKey, batch_rows, decode_key, decode_row, encode_key, encode_row, output_batch, sort_keys,
};
use super::window::Keys;
use super::{StreamEvent, StreamOperator, epoch_millis};
use crate::error::OpError;
use crate::metrics::NO_WATERMARK;
use crate::state::StateView;
use crate::state::codec::{Reader, Writer};
use crate::state::keyed::{KeyedState, StateValue};

/// The rows waiting for the watermark, by time; each with its other keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Waiting {
    rows: BTreeMap<i64, Vec<(SortKey, Row)>>,
    /// The last time emitted: rows at or before it are late.
    last_fired: i64,
}

impl StateValue for Waiting {
    fn encode(&self, w: &mut Writer) {
        w.i64(self.last_fired);
        w.u32(self.rows.len() as u32);
        for (ts, rows) in &self.rows {
            w.i64(*ts);
            w.u32(rows.len() as u32);
            for (k, r) in rows {
                encode_key(k, w);
                encode_row(r, w);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError> {
        let last_fired = r.i64()?;
        let mut rows = BTreeMap::new();
        for _ in 0..r.u32()? {
            let ts = r.i64()?;
            let n = r.u32()? as usize;
            let at = (0..n).map(|_| Ok((decode_key(r)?, decode_row(r)?))).collect::<Result<Vec<_>, OpError>>()?;
            rows.insert(ts, at);
        }
        Ok(Waiting { rows, last_fired })
    }
}

impl Waiting {
    /// Buffers a row at `ts`; false if it is late.
    pub fn put(&mut self, ts: i64, key: SortKey, row: Row) -> bool {
        if ts <= self.last_fired {
            return false;
        }
        self.rows.entry(ts).or_default().push((key, row));
        true
    }

    /// Removes and returns the rows at or before `watermark`, in order.
    pub fn release(&mut self, watermark: i64) -> Vec<Row> {
        let later = match watermark.checked_add(1) {
            Some(next) => self.rows.split_off(&next),
            None => BTreeMap::new(),
        };
        let due = std::mem::replace(&mut self.rows, later);
        let mut out = Vec::new();
        for (ts, mut rows) in due {
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            out.extend(rows.into_iter().map(|(_, r)| r));
            self.last_fired = ts;
        }
        out
    }
}

pub struct TemporalSort {
    time_col: usize,
    /// The keys after the time attribute.
    order: Vec<Arc<dyn PhysicalExpr>>,
    dirs: Vec<Direction>,
    types: Vec<DataType>,
    schema: SchemaRef,
    keys: Arc<Keys>,
    state: KeyedState<Waiting>,
    late: u64,
}

impl TemporalSort {
    pub fn new(
        keys: Keys,
        time_col: usize,
        order: Vec<(Arc<dyn PhysicalExpr>, Direction)>,
        types: Vec<DataType>,
        schema: SchemaRef,
    ) -> Self {
        let (order, dirs) = order.into_iter().unzip();
        TemporalSort {
            time_col,
            order,
            dirs,
            types,
            schema: relax(&schema),
            keys: Arc::new(keys),
            state: KeyedState::default(),
            late: 0,
        }
    }

    fn waiting(&mut self) -> Result<&mut Waiting, OpError> {
        let slot = match self.state.slot(&[]) {
            Some(slot) => slot,
            None => self.state.insert(&[], Waiting { rows: BTreeMap::new(), last_fired: NO_WATERMARK }),
        };
        self.state.slot_mut(slot).ok_or_else(|| OpError::Other("temporal sort: its state has no rows".into()))
    }
}

impl StreamOperator for TemporalSort {
    fn name(&self) -> String {
        "TemporalSort".into()
    }

    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let rows = batch_rows(&batch, self.types.len())?;
        let ts = epoch_millis(batch.column(self.time_col))?;
        let keys = sort_keys(&batch, &self.order, &self.dirs)?;
        let mut late = 0;
        let waiting = self.waiting()?;
        for (i, (row, key)) in rows.into_iter().zip(keys).enumerate() {
            if ts.is_null(i) || !waiting.put(ts.value(i), key, row) {
                late += 1;
            }
        }
        self.late += late;
        Ok(())
    }

    fn process_watermark(&mut self, watermark: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let rows = self.waiting()?.release(watermark);
        if !rows.is_empty() {
            let emits: Vec<Emit> =
                rows.into_iter().map(|row| Emit { kind: RowKind::Insert, row, rank: None }).collect();
            out.push(StreamEvent::Batch(output_batch(&emits, &self.types, false, false, &self.schema)?));
        }
        out.push(StreamEvent::Watermark(watermark));
        Ok(())
    }

    fn late_records_dropped(&self) -> u64 {
        self.late
    }

    fn state_layout(&self) -> Option<String> {
        Some(format!("TemporalSort; order {:?}; columns {:?}", self.dirs, self.types))
    }

    fn state_keys(&self) -> Option<u64> {
        Some(self.state.peek(&[]).map_or(0, |w| w.rows.values().map(Vec::len).sum::<usize>() as u64))
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
mod tests {
    use super::*;
    use crate::operators::rows::SortPart;
    use crate::state::value::Val;

    fn put(w: &mut Waiting, ts: i64, k: i64) -> bool {
        let key: SortKey =
            vec![SortPart { val: Val::I64(k), dir: Direction { asc: false, nulls_first: false } }].into();
        w.put(ts, key, vec![Val::I64(ts), Val::I64(k)].into())
    }

    fn values(rows: &[Row]) -> Vec<(i64, i64)> {
        rows.iter()
            .map(|r| match (&r[0], &r[1]) {
                (Val::I64(a), Val::I64(b)) => (*a, *b),
                _ => (0, 0),
            })
            .collect()
    }

    #[test]
    fn rows_wait_for_the_watermark_and_come_out_by_time_then_key() {
        let mut w = Waiting { rows: BTreeMap::new(), last_fired: NO_WATERMARK };
        for (ts, k) in [(5, 1), (3, 1), (5, 7), (9, 2), (3, 4)] {
            assert!(put(&mut w, ts, k));
        }
        // ORDER BY ts, k DESC.
        assert_eq!(values(&w.release(5)), [(3, 4), (3, 1), (5, 7), (5, 1)]);
        assert!(!put(&mut w, 5, 0), "a row at the last time emitted is late");
        assert!(put(&mut w, 6, 0), "a row after it waits, even behind the watermark");
        assert_eq!(values(&w.release(6)), [(6, 0)]);
        assert_eq!(values(&w.release(i64::MAX)), [(9, 2)]);
    }

    #[test]
    fn the_waiting_rows_survive_encoding() {
        let mut w = Waiting { rows: BTreeMap::new(), last_fired: 2 };
        put(&mut w, 4, 1);
        put(&mut w, 4, 2);
        let mut buf = Writer::new();
        w.encode(&mut buf);
        assert_eq!(Waiting::decode(&mut Reader::new(&buf.buf)).ok(), Some(w));
    }
}
