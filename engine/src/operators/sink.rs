//! The sink operator: hands batches to a connector's writer.

use arrow::record_batch::RecordBatch;
use sluice_connectors::SinkWriter;

use super::{Event, Operator};
use crate::error::OpError;

pub struct Sink {
    pub table: String,
    pub writer: Box<dyn SinkWriter>,
}

impl Operator for Sink {
    fn name(&self) -> String {
        format!("Sink({})", self.table)
    }

    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<Event>) -> Result<(), OpError> {
        self.writer.write(&batch)?;
        Ok(())
    }

    fn process_watermark(&mut self, _watermark: i64, _out: &mut Vec<Event>) -> Result<(), OpError> {
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<Event>) -> Result<(), OpError> {
        self.writer.finish()?;
        Ok(())
    }
}
