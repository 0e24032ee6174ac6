//! The reader of a `VALUES` clause: constant rows that the planner evaluated,
//! emitted once by subtask 0 in batches of at most the batch size.
//!
//! State: one split, the number of rows emitted, so a restore continues after
//! the last row emitted before the checkpoint and never repeats one.

use arrow::record_batch::RecordBatch;

use crate::{ConnectorError, SourceContext, SourceEvent, SourceReader, StateError};

pub struct ValuesReader {
    rows: RecordBatch,
    /// Rows emitted so far.
    at: usize,
    batch_size: usize,
}

impl ValuesReader {
    pub fn new(ctx: &SourceContext, rows: RecordBatch) -> Result<Self, ConnectorError> {
        // Only subtask 0 emits the rows; any other subtask has none.
        let rows = if ctx.subtask == 0 { rows } else { rows.slice(0, 0) };
        let mut at = 0;
        if let Some(splits) = &ctx.restored_splits {
            for s in splits {
                let bytes: [u8; 8] = s.as_slice().try_into().map_err(|_| ConnectorError::State {
                    table: ctx.table.clone(),
                    source: StateError::Truncated { what: "a VALUES split", len: s.len() },
                })?;
                at = at.max(u64::from_le_bytes(bytes) as usize);
            }
        }
        Ok(ValuesReader { at: at.min(rows.num_rows()), rows, batch_size: ctx.batch_size.max(1) })
    }
}

impl SourceReader for ValuesReader {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        if self.at >= self.rows.num_rows() {
            return Ok(SourceEvent::End);
        }
        let n = self.batch_size.min(self.rows.num_rows() - self.at);
        let batch = self.rows.slice(self.at, n);
        self.at += n;
        Ok(SourceEvent::Batch(batch))
    }

    fn has_work(&self) -> bool {
        self.at < self.rows.num_rows()
    }

    fn pending_records(&self) -> Option<u64> {
        Some((self.rows.num_rows() - self.at) as u64)
    }

    fn splits(&self) -> Option<u64> {
        Some(1)
    }

    fn snapshot(&self) -> Result<Vec<Vec<u8>>, ConnectorError> {
        Ok(vec![(self.at as u64).to_le_bytes().to_vec()])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    fn ctx(subtask: usize, restored_splits: Option<Vec<Vec<u8>>>) -> SourceContext {
        SourceContext {
            table: "VALUES@1:1".into(),
            options: BTreeMap::new(),
            schema: Arc::new(Schema::new(vec![Field::new("EXPR$0", DataType::Int64, false)])),
            subtask,
            parallelism: 2,
            batch_size: 2,
            local_time_zone: "UTC".into(),
            restored_splits,
            s3: crate::S3Options::default(),
        }
    }

    fn rows() -> RecordBatch {
        let c = ctx(0, None);
        RecordBatch::try_new(c.schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5]))]).unwrap()
    }

    /// Every value the reader emits until it ends.
    fn drain(r: &mut ValuesReader) -> Vec<i64> {
        let mut out = Vec::new();
        while let SourceEvent::Batch(b) = r.poll().unwrap() {
            out.extend(b.column(0).as_primitive::<Int64Type>().values().iter().copied());
        }
        out
    }

    #[test]
    fn subtask_0_emits_every_row_once_and_a_restore_continues_after_the_snapshot() {
        let mut r = ValuesReader::new(&ctx(0, None), rows()).unwrap();
        let SourceEvent::Batch(first) = r.poll().unwrap() else { panic!("no first batch") };
        assert_eq!(first.num_rows(), 2, "batches of at most the batch size");
        let snap = r.snapshot().unwrap();
        assert_eq!(drain(&mut r), [3, 4, 5]);
        let mut restored = ValuesReader::new(&ctx(0, Some(snap)), rows()).unwrap();
        assert_eq!(drain(&mut restored), [3, 4, 5]);
        let mut other = ValuesReader::new(&ctx(1, None), rows()).unwrap();
        assert!(!other.has_work());
        assert!(drain(&mut other).is_empty());
    }

    #[test]
    fn a_damaged_split_is_an_error_naming_the_table() {
        let Err(e) = ValuesReader::new(&ctx(0, Some(vec![vec![1, 2]])), rows()) else { panic!("accepted") };
        assert!(e.to_string().contains("VALUES@1:1"), "{e}");
    }
}
