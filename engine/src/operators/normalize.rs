//! Changelog normalization of an upsert source (Flink's `ChangelogNormalize`
//! with `ProcTimeDeduplicateKeepLastRowFunction`): the source's rows are
//! upserts (`+I`, `+U`) and deletes (`-U`, `-D`, maybe with the key's fields
//! only, as a Kafka tombstone) by primary key; the output is a changelog of
//! full rows that downstream operators can retract.
//!
//! Per key, for each row in order:
//! - an upsert of a key without state emits `+I[row]`;
//! - an upsert of a key with state emits `-U[previous]` and `+U[row]`, or
//!   nothing when the row equals the previous one (and no state TTL is set);
//! - a delete of a key with state emits `-D[previous]` (the full previous row,
//!   not the tombstone) and drops the key; a delete of an unknown key is dropped.
//!
//! State: the last row per key in [`KeyedState`], so checkpoints are O(chunks)
//! to take and restore at any parallelism. With `table.exec.state.ttl`, a key
//! not written for the TTL is forgotten: its next upsert is a `+I` again.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use sluice_format::changelog::{self, RowKind};

use super::calc::relax;
use super::window::Keys;
use super::{StreamEvent, StreamOperator};
use crate::error::OpError;
use crate::state::StateView;
use crate::state::codec::{Reader, Writer};
use crate::state::keyed::{KeyedState, StateValue};
use crate::state::ttl::{Stamped, Ttl};
use crate::state::value::{Val, block, column_values, to_array};

/// The last row of a key.
#[derive(Debug, Clone, PartialEq)]
pub struct LastRow(Vec<Val>);

#[cfg(test)]
impl LastRow {
    pub(crate) fn for_test(cells: Vec<Val>) -> Self {
        LastRow(cells)
    }
}

impl StateValue for LastRow {
    fn encode(&self, w: &mut Writer) {
        w.u32(self.0.len() as u32);
        self.0.iter().for_each(|v| v.encode(w));
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError> {
        let n = r.u32()? as usize;
        Ok(LastRow((0..n).map(|_| Val::decode(r)).collect::<Result<_, _>>()?))
    }

    fn heap_size(&self) -> Option<usize> {
        let cells = block(self.0.capacity() * std::mem::size_of::<Val>());
        Some(cells + self.0.iter().map(Val::heap_size).sum::<usize>())
    }
}

pub struct ChangelogNormalize {
    keys: Arc<Keys>,
    /// The rows' columns, without the kind column.
    schema: SchemaRef,
    state: KeyedState<Stamped<LastRow>>,
    ttl: Ttl,
}

impl ChangelogNormalize {
    pub fn new(keys: Keys, schema: SchemaRef) -> Self {
        ChangelogNormalize {
            keys: Arc::new(keys),
            schema: relax(&schema),
            state: KeyedState::default(),
            ttl: Ttl::default(),
        }
    }

    pub fn with_ttl(mut self, ttl: Ttl) -> Self {
        self.ttl = ttl;
        self
    }

    /// What one input row emits, given its key's state.
    fn apply(&mut self, now: i64, key: &[u8], kind: RowKind, row: LastRow, out: &mut Vec<(RowKind, LastRow)>) {
        self.ttl.take_expired(&mut self.state, key, now);
        if kind.is_accumulate() {
            let slot = self.state.slot(key);
            match slot.and_then(|id| self.state.value(id)).map(|s| &s.value) {
                None => out.push((RowKind::Insert, row.clone())),
                // With a TTL, Flink emits an unchanged row anyway.
                Some(prev) if *prev == row && !self.ttl.enabled() => return,
                Some(prev) => {
                    out.push((RowKind::UpdateBefore, prev.clone()));
                    out.push((RowKind::UpdateAfter, row.clone()));
                }
            }
            self.state.put(slot, key, Stamped { written: now, value: row });
        } else if let Some(prev) = self.state.remove(key) {
            out.push((RowKind::Delete, prev.value));
        }
    }
}

impl StreamOperator for ChangelogNormalize {
    fn name(&self) -> String {
        "ChangelogNormalize".into()
    }

    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let (data, kinds) = changelog::split(&batch);
        let keys = self.keys.encode(&data)?;
        let columns: Vec<Vec<Val>> = data.columns().iter().map(column_values).collect::<Result<_, _>>()?;
        let mut emitted = Vec::new();
        let now = self.ttl.now();
        self.ttl.sweep(&mut self.state, now);
        for (r, kind) in kinds.iter().enumerate() {
            let key = keys.as_ref().map(|k| k.row(r));
            let key: &[u8] = key.as_ref().map(|k| k.as_ref()).unwrap_or(&[]);
            let row = LastRow(columns.iter().map(|c| c[r].clone()).collect());
            self.apply(now, key, *kind, row, &mut emitted);
        }
        if emitted.is_empty() {
            return Ok(());
        }
        let cols: Vec<ArrayRef> = self
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| to_array(f.data_type(), emitted.iter().map(|(_, r)| &r.0[i])))
            .collect::<Result<_, _>>()?;
        let rows = RecordBatch::try_new_with_options(
            self.schema.clone(),
            cols,
            &RecordBatchOptions::new().with_row_count(Some(emitted.len())),
        )?;
        let kinds: Vec<RowKind> = emitted.iter().map(|(k, _)| *k).collect();
        out.push(StreamEvent::Batch(changelog::attach(&rows, &kinds)?));
        Ok(())
    }

    fn state_layout(&self) -> Option<String> {
        let types: Vec<String> = self.schema.fields().iter().map(|f| f.data_type().to_string()).collect();
        Some(format!("ChangelogNormalize; {}; rows [{}]", self.keys.layout(), types.join(", ")))
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
mod tests {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion_physical_expr::expressions::Column;

    use super::*;

    fn run(op: &mut ChangelogNormalize, rows: &[(RowKind, &str, Option<i64>)]) -> Vec<String> {
        let schema =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("v", DataType::Int64, true)]));
        let data = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
                Arc::new(Int64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
            ],
        )
        .unwrap();
        let kinds: Vec<RowKind> = rows.iter().map(|r| r.0).collect();
        let mut out = Vec::new();
        op.process_batch(changelog::attach(&data, &kinds).unwrap(), &mut out).unwrap();
        let mut lines = Vec::new();
        for ev in out {
            let StreamEvent::Batch(b) = ev else { continue };
            let (d, ks) = changelog::split(&b);
            let k = column_values(d.column(0)).unwrap();
            let v = column_values(d.column(1)).unwrap();
            for (i, kind) in ks.iter().enumerate() {
                lines.push(format!("{}[{:?}, {:?}]", kind.short(), k[i], v[i]));
            }
        }
        lines
    }

    fn operator() -> ChangelogNormalize {
        let keys = Keys::new(vec![Arc::new(Column::new("k", 0))], vec![DataType::Utf8]).unwrap();
        let schema =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("v", DataType::Int64, true)]));
        ChangelogNormalize::new(keys, schema)
    }

    #[test]
    fn with_a_ttl_unchanged_rows_are_emitted_and_expired_keys_start_over() {
        use std::sync::atomic::{AtomicI64, Ordering};
        static NOW: AtomicI64 = AtomicI64::new(0);
        let ttl = Ttl::new(std::time::Duration::from_millis(1000)).with_clock(|| NOW.load(Ordering::Relaxed));
        let mut op = operator().with_ttl(ttl);
        let u = RowKind::UpdateAfter;
        assert_eq!(
            run(&mut op, &[(u, "a", Some(1)), (u, "a", Some(1))]),
            ["+I[Str(\"a\"), I64(1)]", "-U[Str(\"a\"), I64(1)]", "+U[Str(\"a\"), I64(1)]"]
        );
        NOW.store(1000, Ordering::Relaxed);
        assert_eq!(run(&mut op, &[(u, "a", Some(2))]), ["+I[Str(\"a\"), I64(2)]"]);
    }

    #[test]
    fn upserts_and_tombstones_become_a_changelog_of_full_rows() {
        let mut op = operator();
        let (u, d) = (RowKind::UpdateAfter, RowKind::Delete);
        let lines =
            run(&mut op, &[(u, "a", Some(1)), (u, "a", Some(1)), (u, "a", Some(2)), (d, "a", None), (d, "b", None)]);
        assert_eq!(
            lines,
            ["+I[Str(\"a\"), I64(1)]", "-U[Str(\"a\"), I64(1)]", "+U[Str(\"a\"), I64(2)]", "-D[Str(\"a\"), I64(2)]",]
        );
        assert_eq!(op.state_keys(), Some(0));
    }
}
