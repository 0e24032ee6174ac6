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
}
