//! The `blackhole` sink: discards rows, counting them.

use arrow::record_batch::RecordBatch;

use crate::{ConnectorError, SinkWriter};

#[derive(Debug, Default)]
pub(crate) struct Blackhole {
    rows: u64,
}

impl Blackhole {
    #[cfg(test)]
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }
}

impl SinkWriter for Blackhole {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn pre_commit(&mut self, _checkpoint_id: u64) -> Result<Vec<u8>, ConnectorError> {
        Ok(Vec::new())
    }

    fn commit(&mut self, _committables: &[Vec<u8>]) -> Result<(), ConnectorError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn counts_and_discards() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
        let mut b = Blackhole::default();
        b.write(&batch).unwrap();
        b.write(&batch).unwrap();
        b.finish().unwrap();
        assert_eq!(b.rows(), 6);
    }
}
