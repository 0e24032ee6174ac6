//! SESSION window aggregation.
//!
//! Per key (the `PARTITION BY` columns), each record opens the window
//! `[ts, ts + gap)`; windows that intersect, boundaries included, as Flink's
//! `TimeWindow.intersects`, merge into one session. A session fires when the
//! watermark reaches its `end - 1`. A record whose merged session would already
//! have fired is late and dropped.

use arrow::array::Array;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use std::sync::Arc;

use super::aggregate::{AggDef, GroupAccs};
use super::calc::relax;
use super::sessions::{Fired, Session, SessionView, Sessions};
use super::window::{Keys, TimeShift, window_columns};
use super::{StreamEvent, StreamOperator, epoch_millis};
use crate::error::OpError;
use crate::metrics::NO_WATERMARK;
use crate::state::StateView;
use crate::state::codec::Reader;

pub struct SessionAggregate {
    gap: i64,
    time_col: usize,
    time_type: DataType,
    shift: TimeShift,
    /// Shared with the snapshot views, which compute key groups from keys.
    keys: Arc<Keys>,
    aggs: Vec<AggDef>,
    schema: SchemaRef,
    sessions: Sessions,
    accs: GroupAccs,
    free: Vec<u32>,
    watermark: i64,
    min_end_utc: i64,
    late: u64,
}

impl SessionAggregate {
    pub fn new(
        gap: i64,
        time_col: usize,
        time_type: DataType,
        shift: TimeShift,
        keys: Keys,
        aggs: Vec<AggDef>,
        schema: SchemaRef,
    ) -> Result<Self, OpError> {
        let accs = GroupAccs::new(&aggs)?;
        Ok(SessionAggregate {
            gap,
            time_col,
            time_type,
            shift,
            keys: Arc::new(keys),
            aggs,
            schema: relax(&schema),
            sessions: Sessions::default(),
            accs,
            free: Vec::new(),
            watermark: NO_WATERMARK,
            min_end_utc: i64::MAX,
            late: 0,
        })
    }

    fn new_group(&mut self) -> u32 {
        match self.free.pop() {
            Some(g) => g,
            None => self.accs.add_group(),
        }
    }
}

impl StreamOperator for SessionAggregate {
    fn name(&self) -> String {
        format!("SessionAggregate(gap={}ms)", self.gap)
    }

    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let ts = epoch_millis(batch.column(self.time_col))?;
        let keys = self.keys.encode(&batch)?;
        let inputs: Vec<_> = self.aggs.iter().map(|a| a.evaluate(&batch)).collect::<Result<_, _>>()?;
        let (mut rows, mut gids) = (Vec::new(), Vec::new());
        for r in 0..batch.num_rows() {
            if ts.is_null(r) {
                self.late += 1;
                continue;
            }
            let utc = ts.value(r);
            let start = self.shift.to_local(utc);
            let end = start + self.gap;
            let key: &[u8] = match &keys {
                Some(k) => k.row(r).data(),
                None => &[],
            };
            let slot = self.sessions.find(key);
            let list = slot.map(|s| self.sessions.list(s));
            let overlapping: Vec<usize> = list
                .map(|l| {
                    l.iter().enumerate().filter(|(_, s)| s.start <= end && s.end >= start).map(|(i, _)| i).collect()
                })
                .unwrap_or_default();
            let (mut m_start, mut m_end) = (start, end);
            if let Some(l) = list {
                for &i in &overlapping {
                    m_start = m_start.min(l[i].start);
                    m_end = m_end.max(l[i].end);
                }
            }
            let m_end_utc = self.shift.to_utc(m_end, utc);
            if m_end_utc - 1 <= self.watermark {
                self.late += 1;
                continue;
            }
            let gid = if overlapping.is_empty() {
                let g = self.new_group();
                self.sessions.add(key, [Session { start, end, end_utc: m_end_utc, gid: g }]);
                g
            } else {
                if overlapping.len() > 1 {
                    // Pending updates must land before groups are merged.
                    self.accs.update(&inputs, &rows, &gids)?;
                    rows.clear();
                    gids.clear();
                }
                let l = slot
                    .and_then(|s| self.sessions.list_mut(s))
                    .ok_or_else(|| OpError::Other("session state lost".into()))?;
                let keep = overlapping[0];
                let target = l[keep].gid;
                for &i in overlapping[1..].iter().rev() {
                    let s = l.remove(i);
                    self.accs.merge(target, s.gid)?;
                    self.free.push(s.gid);
                }
                l[keep] = Session { start: m_start, end: m_end, end_utc: m_end_utc, gid: target };
                target
            };
            self.min_end_utc = self.min_end_utc.min(m_end_utc);
            rows.push(r as u32);
            gids.push(gid);
        }
        self.accs.update(&inputs, &rows, &gids)?;
        Ok(())
    }

    fn process_watermark(&mut self, watermark: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if watermark > self.watermark {
            self.watermark = watermark;
            if self.min_end_utc - 1 <= watermark {
                let mut fired: Vec<Fired> = Vec::new();
                self.min_end_utc = self.sessions.fire(watermark, &mut fired);
                fired.sort_by_key(|(e, s, _)| (*e, s.gid));
                if !fired.is_empty() {
                    let n = fired.len();
                    let ids: Vec<u32> = fired.iter().map(|(_, s, _)| s.gid).collect();
                    let key_bytes: Vec<&[u8]> = fired.iter().map(|(_, _, k)| k.as_ref()).collect();
                    let mut cols = window_columns(
                        fired.iter().map(|(_, s, _)| s.start).collect(),
                        fired.iter().map(|(_, s, _)| s.end).collect(),
                        fired.iter().map(|(_, s, _)| s.end_utc - 1).collect(),
                        &self.time_type,
                    );
                    cols.extend(self.keys.decode(&key_bytes)?);
                    cols.extend(self.accs.emit(&self.aggs, &ids)?);
                    debug_assert_eq!(cols[0].len(), n);
                    out.push(StreamEvent::Batch(RecordBatch::try_new(self.schema.clone(), cols)?));
                    for g in ids {
                        self.accs.reset(g);
                        self.free.push(g);
                    }
                }
            }
        }
        out.push(StreamEvent::Watermark(watermark));
        Ok(())
    }

    fn late_records_dropped(&self) -> u64 {
        self.late
    }

    fn state_layout(&self) -> Option<String> {
        Some(format!("{}; {}; aggregates [{}]", self.name(), self.keys.layout(), self.accs.layout()))
    }

    /// Entry per key: the key, then its sessions with their accumulators.
    fn state_keys(&self) -> Option<u64> {
        Some(self.sessions.len() as u64)
    }

    /// A view of every key's sessions and their accumulators (see
    /// [`super::sessions`]); written by [`SessionView`]'s `encode`.
    fn snapshot(&mut self) -> Result<Option<Box<dyn StateView>>, OpError> {
        let (slots, changes) = self.sessions.share();
        let view = SessionView { slots, accs: self.accs.share(), keys: self.keys.clone(), changes };
        Ok(Some(Box::new(view)))
    }

    fn restore(&mut self, _key_group: u32, state: &[u8]) -> Result<(), OpError> {
        let mut r = Reader::new(state);
        while !r.is_empty() {
            let key = r.bytes()?;
            let n = r.u32()?;
            let mut list = Vec::new();
            for _ in 0..n {
                let (start, end, end_utc) = (r.i64()?, r.i64()?, r.i64()?);
                let gid = self.accs.decode_group(&mut r)?;
                self.min_end_utc = self.min_end_utc.min(end_utc);
                list.push(Session { start, end, end_utc, gid });
            }
            self.sessions.add(key, list);
        }
        Ok(())
    }
}
