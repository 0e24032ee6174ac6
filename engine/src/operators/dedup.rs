//! Deduplication on event time: one row per key, the first or the last by the
//! time attribute, with Flink 2.3's emission rules (the default, without
//! mini-batch).
//!
//! - Keeping the last row (Flink's `RowTimeDeduplicateFunction`): a row
//!   replaces the key's row when its time is at or after the kept row's; the
//!   first row is a `+I`, a replacement `-U` old, `+U` new, at once. Late rows
//!   are not dropped: they lose to the kept row by their time.
//! - Keeping the first row (Flink's `RowTimeDeduplicateKeepFirstRowFunction`):
//!   a row earlier than the watermark is dropped as late; the key's earliest
//!   row waits, and is emitted (`+I`, append-only) when the watermark reaches
//!   its time; after that the key emits nothing more. Rows waiting for the same
//!   watermark are emitted by time, then by key.
//!
//! On processing time (`ORDER BY` a `PROCTIME()` attribute), rows are ranked
//! by arrival (Flink's `ProcTimeDeduplicateKeepFirstRowFunction` and
//! `ProcTimeDeduplicateKeepLastRowFunction`): keep-first emits a key's first
//! row at once (`+I`, append-only) and ignores the rest; keep-last emits `+I`
//! for a key's first row and `-U` old, `+U` new for each later one. Nothing
//! waits for a watermark and nothing is late.
//!
//! Invariants: the timers (`waiting`) hold exactly the keys whose state is
//! `Waiting`, at that row's time; a restore rebuilds them from the state.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use sluice_format::changelog::{self, RowKind};

use super::calc::relax;
use super::packed::PackedRow;
use super::rows::{Emit, RowReader, Source, output_batch, output_from};
use super::window::Keys;
use super::{StreamEvent, StreamOperator, epoch_millis};
use crate::error::OpError;
use crate::metrics::NO_WATERMARK;
use crate::state::StateView;
use crate::state::codec::{Reader, Writer};
use crate::state::keyed::{KeyedState, StateValue};
use crate::state::ttl::{Stamped, Ttl};

/// The state of one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Kept {
    /// The row kept, with its time.
    Row { row: PackedRow, ts: i64 },
    /// Keep-first: the key's row has been emitted; later rows are ignored.
    Emitted,
}

impl StateValue for Kept {
    fn encode(&self, w: &mut Writer) {
        match self {
            Kept::Row { row, ts } => {
                w.u8(0);
                w.i64(*ts);
                row.encode(w);
            }
            Kept::Emitted => w.u8(1),
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError> {
        match r.u8()? {
            0 => {
                let ts = r.i64()?;
                Ok(Kept::Row { row: PackedRow::decode(r)?, ts })
            }
            1 => Ok(Kept::Emitted),
            t => Err(OpError::Other(format!("deduplication state has an unknown tag {t}"))),
        }
    }

    fn heap_size(&self) -> Option<usize> {
        Some(match self {
            Kept::Row { row, .. } => row.heap_size(),
            Kept::Emitted => 0,
        })
    }
}

/// Keep-last: what a row at `ts` does to what the key keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastDecision {
    /// The key's first row: `+I`.
    Insert,
    /// The row replaces the kept one: `-U` old, `+U` new.
    Replace,
    /// The kept row is later: nothing happens.
    Lose,
}

pub fn keep_last(prev: Option<&Kept>, ts: i64) -> LastDecision {
    match prev {
        Some(Kept::Row { ts: pts, .. }) if *pts > ts => LastDecision::Lose,
        Some(Kept::Row { .. }) => LastDecision::Replace,
        _ => LastDecision::Insert,
    }
}

/// Keep-first: what happens to a row at `ts` given the key's state and the
/// watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstDecision {
    Late,
    /// The key's row has been emitted, or waits with an earlier or equal time.
    Ignore,
    /// The row waits for the watermark, replacing the waiting row (if any)
    /// whose time is given.
    Wait {
        replaces: Option<i64>,
    },
}

pub fn keep_first(prev: Option<&Kept>, ts: i64, watermark: i64) -> FirstDecision {
    if ts < watermark {
        return FirstDecision::Late;
    }
    match prev {
        Some(Kept::Emitted) => FirstDecision::Ignore,
        Some(Kept::Row { ts: pts, .. }) if ts < *pts => FirstDecision::Wait { replaces: Some(*pts) },
        Some(Kept::Row { .. }) => FirstDecision::Ignore,
        None => FirstDecision::Wait { replaces: None },
    }
}

pub struct Deduplicate {
    keys: Arc<Keys>,
    time_col: usize,
    keep_last: bool,
    /// Ranked by arrival, not by `time_col`.
    proctime: bool,
    types: Vec<DataType>,
    schema: SchemaRef,
    state: KeyedState<Stamped<Kept>>,
    ttl: Ttl,
    /// Keep-first: (time, key) of each waiting row.
    waiting: BTreeSet<(i64, Arc<[u8]>)>,
    watermark: i64,
    late: u64,
}

impl Deduplicate {
    pub fn new(keys: Keys, time_col: usize, keep_last: bool, types: Vec<DataType>, schema: SchemaRef) -> Self {
        Deduplicate {
            keys: Arc::new(keys),
            time_col,
            keep_last,
            proctime: false,
            types,
            schema: relax(&schema),
            state: KeyedState::default(),
            ttl: Ttl::default(),
            waiting: BTreeSet::new(),
            watermark: NO_WATERMARK,
            late: 0,
        }
    }

    /// Ranks rows by arrival: `time_col` is a processing-time attribute.
    pub fn on_processing_time(mut self, proctime: bool) -> Self {
        self.proctime = proctime;
        self
    }

    /// A key not written for the TTL starts over, as in Flink: its next row
    /// is a first row again (`+I`).
    pub fn with_ttl(mut self, ttl: Ttl) -> Self {
        self.ttl = ttl;
        self
    }

    /// Forgets expired keys, with their waiting rows.
    fn expire(&mut self, now: i64) {
        for (key, kept) in self.ttl.sweep(&mut self.state, now) {
            if let Kept::Row { ts, .. } = kept {
                self.waiting.remove(&(ts, Arc::from(key.as_slice())));
            }
        }
    }
}

impl StreamOperator for Deduplicate {
    fn name(&self) -> String {
        format!(
            "Deduplicate(keep {} row{})",
            if self.keep_last { "last" } else { "first" },
            if self.proctime { ", processing time" } else { "" }
        )
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if changelog::has_kinds(&batch) {
            return Err(OpError::Other("deduplication over an updating input is not supported".into()));
        }
        // Rows are converted only when they are kept; emitted input rows are
        // taken from the batch as they are (`output_from`).
        let rows = RowReader::new(&batch, self.types.len())?;
        let ts = epoch_millis(batch.column(self.time_col))?;
        let keys = self.keys.encode(&batch)?;
        let mut emits: Vec<(RowKind, Source)> = Vec::new();
        let mut scratch = Writer::new();
        let mut kept_values = Vec::new();
        let now = self.ttl.now();
        self.expire(now);
        for i in 0..batch.num_rows() {
            let key: &[u8] = match &keys {
                Some(k) => k.row(i).data(),
                None => &[],
            };
            if let Some(Kept::Row { ts, .. }) = self.ttl.take_expired(&mut self.state, key, now) {
                self.waiting.remove(&(ts, Arc::from(key)));
            }
            // One lookup per row: its slot, read, then written through.
            let slot = self.state.slot(key);
            let kept = slot.and_then(|id| self.state.value(id)).map(|s| &s.value);
            // Processing time: every row arrives after the kept one, so
            // keep-last replaces it and keep-first keeps it.
            let t = match (self.proctime, arrow::array::Array::is_null(&ts, i)) {
                (true, _) => 0,
                (false, true) => {
                    self.late += 1;
                    continue;
                }
                (false, false) => ts.value(i),
            };
            if self.keep_last {
                match keep_last(kept, t) {
                    LastDecision::Lose => continue,
                    LastDecision::Insert => emits.push((RowKind::Insert, Source::Input(i as u32))),
                    LastDecision::Replace => {
                        if let Some(Kept::Row { row, .. }) = kept {
                            row.unpack_into(self.types.len(), &mut kept_values)?;
                            emits.push((RowKind::UpdateBefore, Source::Kept));
                        }
                        emits.push((RowKind::UpdateAfter, Source::Input(i as u32)));
                    }
                }
                let value = Kept::Row { row: rows.pack(i, &mut scratch)?, ts: t };
                self.state.put(slot, key, Stamped { written: now, value });
                continue;
            }
            if self.proctime {
                if kept.is_none() {
                    emits.push((RowKind::Insert, Source::Input(i as u32)));
                    self.state.put(slot, key, Stamped { written: now, value: Kept::Emitted });
                }
                continue;
            }
            match keep_first(kept, t, self.watermark) {
                FirstDecision::Late => self.late += 1,
                FirstDecision::Ignore => {}
                FirstDecision::Wait { replaces } => {
                    let k: Arc<[u8]> = Arc::from(key);
                    if let Some(old) = replaces {
                        self.waiting.remove(&(old, k.clone()));
                    }
                    self.waiting.insert((t, k));
                    let value = Kept::Row { row: rows.pack(i, &mut scratch)?, ts: t };
                    self.state.put(slot, key, Stamped { written: now, value });
                }
            }
        }
        if !emits.is_empty() {
            // Only keep-last updates; keep-first on processing time appends.
            out.push(StreamEvent::Batch(output_from(
                &batch,
                &emits,
                &kept_values,
                &self.types,
                self.keep_last,
                &self.schema,
            )?));
        }
        Ok(())
    }

    fn process_watermark(&mut self, watermark: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if watermark > self.watermark {
            self.watermark = watermark;
            let mut emits = Vec::new();
            let now = self.ttl.now();
            while let Some(first) = self.waiting.first() {
                if first.0 > watermark {
                    break;
                }
                let Some((_, key)) = self.waiting.pop_first() else { break };
                // An expired row is never returned: its key starts over.
                if self.ttl.take_expired(&mut self.state, &key, now).is_some() {
                    continue;
                }
                if let Some(Kept::Row { row, .. }) = self.state.get(&key).map(|s| &s.value) {
                    emits.push(Emit { kind: RowKind::Insert, row: row.unpack()?, rank: None });
                }
                self.state.insert(&key, Stamped { written: now, value: Kept::Emitted });
            }
            if !emits.is_empty() {
                out.push(StreamEvent::Batch(output_batch(&emits, &self.types, false, false, &self.schema)?));
            }
        }
        out.push(StreamEvent::Watermark(watermark));
        Ok(())
    }

    fn late_records_dropped(&self) -> u64 {
        self.late
    }

    fn state_layout(&self) -> Option<String> {
        Some(format!("{}; {}; columns {:?}", self.name(), self.keys.layout(), self.types))
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

    /// The records [`KeyedState`]'s view wrote: a key, then its state; the
    /// waiting rows' timers come back with them.
    fn restore(&mut self, _key_group: u32, state: &[u8]) -> Result<(), OpError> {
        let mut r = Reader::new(state);
        while !r.is_empty() {
            let key = r.bytes()?.to_vec();
            let value = Stamped::<Kept>::decode(&mut r)?;
            if let (false, false, Kept::Row { ts, .. }) = (self.keep_last, self.proctime, &value.value) {
                self.waiting.insert((*ts, Arc::from(key.as_slice())));
            }
            self.state.insert(&key, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use arrow::array::{AsArray, Int64Array, StringArray};
    use arrow::datatypes::{Field, Int64Type, Schema};
    use datafusion_physical_expr::expressions::Column;

    use super::*;
    use crate::state::value::Val;

    /// Deduplication of (k STRING, ts BIGINT) on k, by ts, with a 1 s TTL
    /// measured with `clock`.
    fn operator(keep_last: bool, clock: fn() -> i64) -> Deduplicate {
        let keys = Keys::new(vec![Arc::new(Column::new("k", 0))], vec![DataType::Utf8]).unwrap();
        let schema =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("ts", DataType::Int64, true)]));
        Deduplicate::new(keys, 1, keep_last, vec![DataType::Utf8, DataType::Int64], schema)
            .with_ttl(Ttl::new(std::time::Duration::from_millis(1000)).with_clock(clock))
    }

    /// Feeds rows (key, time), then a watermark; returns what was emitted, as
    /// `+I[a, 1]` lines.
    fn run(op: &mut Deduplicate, rows: &[(&str, i64)], watermark: i64) -> Vec<String> {
        let schema =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("ts", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        op.process_batch(batch, &mut out).unwrap();
        op.process_watermark(watermark, &mut out).unwrap();
        let mut lines = Vec::new();
        for ev in out {
            let StreamEvent::Batch(b) = ev else { continue };
            let (data, kinds) = changelog::split(&b);
            let (k, ts) = (data.column(0).as_string::<i32>(), data.column(1).as_primitive::<Int64Type>());
            lines
                .extend((0..data.num_rows()).map(|r| format!("{}[{}, {}]", kinds[r].short(), k.value(r), ts.value(r))));
        }
        lines
    }

    #[test]
    fn keep_last_forgets_a_key_not_written_for_the_ttl() {
        static NOW: AtomicI64 = AtomicI64::new(0);
        let mut op = operator(true, || NOW.load(Ordering::Relaxed));
        assert_eq!(run(&mut op, &[("a", 1), ("b", 1)], 0), ["+I[a, 1]", "+I[b, 1]"]);
        NOW.store(600, Ordering::Relaxed);
        assert_eq!(run(&mut op, &[("a", 2)], 0), ["-U[a, 1]", "+U[a, 2]"]);
        // At 1,200 ms `b` (written at 0) has expired, `a` (written at 600) has not.
        NOW.store(1200, Ordering::Relaxed);
        assert_eq!(run(&mut op, &[("a", 3), ("b", 0)], 0), ["-U[a, 2]", "+U[a, 3]", "+I[b, 0]"]);
        // A key never touched again is swept.
        NOW.store(5000, Ordering::Relaxed);
        run(&mut op, &[], 0);
        assert_eq!(op.state.len(), 0);
    }

    #[test]
    fn keep_first_emits_a_first_row_again_after_the_ttl() {
        static NOW: AtomicI64 = AtomicI64::new(0);
        let mut op = operator(false, || NOW.load(Ordering::Relaxed));
        assert_eq!(run(&mut op, &[("a", 10), ("a", 5)], 20), ["+I[a, 5]"]);
        NOW.store(900, Ordering::Relaxed);
        assert!(run(&mut op, &[("a", 30)], 40).is_empty(), "within the TTL the key has had its row");
        NOW.store(1000, Ordering::Relaxed);
        assert_eq!(run(&mut op, &[("a", 50)], 60), ["+I[a, 50]"]);
        // A waiting row whose state expires before the watermark reaches it is
        // never emitted, and its timer goes with it.
        assert!(run(&mut op, &[("b", 100)], 60).is_empty());
        NOW.store(2000, Ordering::Relaxed);
        assert!(run(&mut op, &[], 200).is_empty());
        assert!(op.waiting.is_empty());
    }

    fn row(n: i64) -> PackedRow {
        PackedRow::pack(&[Val::I64(n)])
    }

    #[test]
    fn keep_last_replaces_on_equal_or_later_times() {
        let kept = Kept::Row { row: row(1), ts: 10 };
        let cases = [
            (None, 5, LastDecision::Insert),
            (Some(&Kept::Emitted), 5, LastDecision::Insert),
            (Some(&kept), 10, LastDecision::Replace),
            (Some(&kept), 11, LastDecision::Replace),
            (Some(&kept), 9, LastDecision::Lose),
        ];
        for (prev, ts, want) in cases {
            assert_eq!(keep_last(prev, ts), want, "{prev:?} {ts}");
        }
    }

    #[test]
    fn keep_first_waits_for_the_earliest_row_and_drops_late_ones() {
        let waiting = Kept::Row { row: row(1), ts: 10 };
        let cases = [
            (None, 10, 5, FirstDecision::Wait { replaces: None }),
            (None, 4, 5, FirstDecision::Late),
            (None, 5, 5, FirstDecision::Wait { replaces: None }),
            (Some(&waiting), 9, 5, FirstDecision::Wait { replaces: Some(10) }),
            (Some(&waiting), 10, 5, FirstDecision::Ignore),
            (Some(&waiting), 12, 5, FirstDecision::Ignore),
            (Some(&Kept::Emitted), 12, 5, FirstDecision::Ignore),
        ];
        for (prev, ts, wm, want) in cases {
            assert_eq!(keep_first(prev, ts, wm), want, "{prev:?} ts={ts} watermark={wm}");
        }
    }
}
