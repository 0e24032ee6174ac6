//! Window Top-N: the rows of each (window, partition key) ranked once, when
//! the watermark reaches the window's end - 1, as Flink's window rank
//! (`WindowRankProcessor` over a `TopNRecordsCombiner`): append-only output.
//!
//! - A row whose window has fired (`end - 1 <= watermark`) is late and dropped.
//! - A window keeps the best `end` rows by sort key, rows with equal keys in
//!   arrival order; for a window deduplication keeping the last row
//!   (`later_wins_ties`), a later row with an equal key replaces the kept one.
//! - When the window fires, its rows are emitted as `+I` with their ranks in
//!   the range, windows by end, then keys in key order.
//!
//! Invariant: `windows` holds exactly the state's keys, each at its window's
//! end instant; a restore rebuilds it from the state.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion_physical_expr::PhysicalExpr;
use sluice_format::changelog::RowKind;
use sluice_sql::plan::RankRange;

use super::calc::relax;
use super::packed::{Emitted, PackedRow};
use super::rank::Buffer;
use super::rows::{Direction, RowReader, SortKey, sort_keys};
use super::window::{Keys, TimeShift};
use super::{StreamEvent, StreamOperator, epoch_millis};
use crate::error::OpError;
use crate::metrics::NO_WATERMARK;
use crate::state::StateView;
use crate::state::codec::{Reader, Writer};
use crate::state::keyed::{KeyedState, StateValue};

/// The rows of one (window, key) and the window's end instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowRows {
    end: i64,
    rows: Buffer,
}

impl StateValue for WindowRows {
    fn encode(&self, w: &mut Writer) {
        w.i64(self.end);
        self.rows.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError> {
        Ok(WindowRows { end: r.i64()?, rows: Buffer::decode(r)? })
    }
}

/// Adds a row to a window's rows, keeping the best `keep`.
pub fn add(buf: &mut Buffer, key: SortKey, row: PackedRow, keep: usize, later_wins_ties: bool) {
    if later_wins_ties && buf.first_key().is_some_and(|k| *k == key) {
        *buf = Buffer::default();
    }
    buf.put(key, row);
    while buf.len() > keep {
        buf.pop_last();
    }
}

/// The rows a fired window emits: those whose rank is in range.
pub fn fire(buf: &Buffer, range: RankRange, output_rank: bool, out: &mut Emitted) {
    for (i, row) in buf.rows().enumerate() {
        let rank = i as u64 + 1;
        if rank > range.end {
            break;
        }
        if rank >= range.start {
            out.push(RowKind::Insert, row, output_rank.then_some(rank));
        }
    }
}

pub struct WindowTopN {
    keys: Arc<Keys>,
    order: Vec<Arc<dyn PhysicalExpr>>,
    dirs: Vec<Direction>,
    range: RankRange,
    output_rank: bool,
    end_col: usize,
    shift: TimeShift,
    later_wins_ties: bool,
    types: Vec<DataType>,
    schema: SchemaRef,
    state: KeyedState<WindowRows>,
    /// (window end instant, key) of every key in state.
    windows: BTreeSet<(i64, Arc<[u8]>)>,
    watermark: i64,
    late: u64,
}

/// What a [`WindowTopN`] ranks by and keeps.
pub struct WindowTopNSpec {
    pub order: Vec<(Arc<dyn PhysicalExpr>, Direction)>,
    pub range: RankRange,
    pub output_rank: bool,
    pub end_col: usize,
    pub shift: TimeShift,
    pub later_wins_ties: bool,
    pub types: Vec<DataType>,
    pub schema: SchemaRef,
}

impl WindowTopN {
    pub fn new(keys: Keys, spec: WindowTopNSpec) -> Self {
        let (order, dirs) = spec.order.into_iter().unzip();
        WindowTopN {
            keys: Arc::new(keys),
            order,
            dirs,
            range: spec.range,
            output_rank: spec.output_rank,
            end_col: spec.end_col,
            shift: spec.shift,
            later_wins_ties: spec.later_wins_ties,
            types: spec.types,
            schema: relax(&spec.schema),
            state: KeyedState::default(),
            windows: BTreeSet::new(),
            watermark: NO_WATERMARK,
            late: 0,
        }
    }
}

impl StreamOperator for WindowTopN {
    fn name(&self) -> String {
        format!("WindowTopN({}{})", self.range, if self.output_rank { ", row number" } else { "" })
    }

    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let rows = RowReader::new(&batch, self.types.len())?;
        let mut scratch = Writer::new();
        let sort = sort_keys(&batch, &self.order, &self.dirs)?;
        let keys = self.keys.encode(&batch)?;
        let ends = epoch_millis(batch.column(self.end_col))?;
        for (i, key) in sort.into_iter().enumerate() {
            if arrow::array::Array::is_null(&ends, i) {
                self.late += 1;
                continue;
            }
            let local_end = ends.value(i);
            let end = self.shift.to_utc(local_end, local_end);
            if end - 1 <= self.watermark {
                self.late += 1;
                continue;
            }
            let pk: &[u8] = match &keys {
                Some(k) => k.row(i).data(),
                None => &[],
            };
            if self.state.get(pk).is_none() {
                self.state.insert(pk, WindowRows { end, rows: Buffer::default() });
                self.windows.insert((end, Arc::from(pk)));
            }
            if let Some(w) = self.state.get_mut(pk) {
                add(&mut w.rows, key, rows.pack(i, &mut scratch)?, self.range.end as usize, self.later_wins_ties);
            }
        }
        Ok(())
    }

    fn process_watermark(&mut self, watermark: i64, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if watermark > self.watermark {
            self.watermark = watermark;
            let mut emits = Emitted::new(&self.types, 0, 0);
            while let Some((end, _)) = self.windows.first() {
                if end - 1 > watermark {
                    break;
                }
                let Some((_, key)) = self.windows.pop_first() else { break };
                if let Some(w) = self.state.remove(&key) {
                    fire(&w.rows, self.range, self.output_rank, &mut emits);
                }
            }
            if !emits.is_empty() {
                out.push(StreamEvent::Batch(emits.batch(self.output_rank, false, &self.schema)?));
            }
        }
        out.push(StreamEvent::Watermark(watermark));
        Ok(())
    }

    fn late_records_dropped(&self) -> u64 {
        self.late
    }

    fn state_layout(&self) -> Option<String> {
        Some(format!("{}; {}; order {:?}; columns {:?}", self.name(), self.keys.layout(), self.dirs, self.types))
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

    fn restore(&mut self, _key_group: u32, state: &[u8]) -> Result<(), OpError> {
        let mut r = Reader::new(state);
        while !r.is_empty() {
            let key = r.bytes()?.to_vec();
            let value = WindowRows::decode(&mut r)?;
            self.windows.insert((value.end, Arc::from(key.as_slice())));
            self.state.insert(&key, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::rows::SortPart;
    use crate::state::value::Val;

    fn row(name: &str, v: i64, asc: bool) -> (SortKey, PackedRow) {
        (
            vec![SortPart { val: Val::I64(v), dir: Direction { asc, nulls_first: asc } }].into(),
            PackedRow::pack(&[Val::Str(name.into())]),
        )
    }

    fn names(emits: &Emitted) -> Vec<String> {
        emits
            .rows()
            .iter()
            .map(|e| match (&e.row[0], e.rank) {
                (Val::Str(s), Some(r)) => format!("{r}:{s}"),
                (Val::Str(s), None) => s.to_string(),
                _ => "?".into(),
            })
            .collect()
    }

    #[test]
    fn a_window_keeps_its_best_rows_with_ties_in_arrival_order() {
        // (rows (name, v), keep, later wins ties, range, with rank, emitted)
        type Case<'a> = (&'a [(&'a str, i64)], usize, bool, RankRange, bool, &'a [&'a str]);
        let cases: [Case; 4] = [
            (
                &[("a", 3), ("b", 5), ("c", 5), ("d", 1)],
                2,
                false,
                RankRange { start: 1, end: 2 },
                true,
                &["1:b", "2:c"],
            ),
            (&[("a", 3), ("b", 5), ("c", 5), ("d", 9)], 3, false, RankRange { start: 2, end: 3 }, false, &["b", "c"]),
            (&[("a", 5), ("b", 5)], 1, false, RankRange { start: 1, end: 1 }, false, &["a"]),
            (&[("a", 5), ("b", 5), ("c", 4)], 1, true, RankRange { start: 1, end: 1 }, false, &["b"]),
        ];
        for (input, keep, later, range, with_rank, want) in cases {
            let mut buf = Buffer::default();
            for (n, v) in input {
                let (k, r) = row(n, *v, false);
                add(&mut buf, k, r, keep, later);
            }
            let mut out = Emitted::new(&[DataType::Utf8], 0, 0);
            fire(&buf, range, with_rank, &mut out);
            assert_eq!(names(&out), want, "{input:?} keep={keep} later_wins_ties={later}");
        }
    }
}
