//! The sink operator: hands batches to a connector's writer.

use arrow::record_batch::RecordBatch;
use sluice_connectors::SinkWriter;

use super::{SinkSnapshot, StreamEvent, StreamOperator};
use crate::error::OpError;

pub struct Sink {
    pub table: String,
    pub writer: Box<dyn SinkWriter>,
    /// With checkpointing, output becomes visible only through pre-commit and
    /// commit, also at the end of a bounded job (its final checkpoint).
    pub exactly_once: bool,
}

impl StreamOperator for Sink {
    fn name(&self) -> String {
        format!("Sink({})", self.table)
    }

    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        self.writer.write(&batch)?;
        Ok(())
    }

    fn process_watermark(&mut self, _watermark: i64, _out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        if !self.exactly_once {
            self.writer.finish()?;
        }
        Ok(())
    }

    fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<SinkSnapshot>, OpError> {
        let committable = self.writer.pre_commit(checkpoint)?;
        Ok(Some(SinkSnapshot { committable, state: self.writer.snapshot_state()? }))
    }

    fn commit(&mut self, committables: &[Vec<u8>]) -> Result<(), OpError> {
        self.writer.commit(committables)?;
        Ok(())
    }
}
