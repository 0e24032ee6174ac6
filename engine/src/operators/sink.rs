//! The sink operator: hands batches to a connector's writer.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use sluice_connectors::SinkWriter;
use sluice_format::changelog;

use super::{SinkSnapshot, StreamEvent, StreamOperator, epoch_millis};
use crate::error::OpError;
use crate::metrics::{Counts, SubtaskMetrics};

pub struct Sink {
    pub table: String,
    pub writer: Box<dyn SinkWriter>,
    /// With checkpointing, output becomes visible only through pre-commit and
    /// commit, also at the end of a bounded job (its final checkpoint).
    pub exactly_once: bool,
    /// The input column with each record's event time, and what to add (ms).
    pub event_time: Option<(usize, i64)>,
    pub metrics: Option<Arc<SubtaskMetrics>>,
    /// An append-only sink: a kind column reaching it is dropped. Only a
    /// relation Flink plans as insert-only although its rows carry kinds
    /// (`sluice_sql::flink_insert_only`) gets here with one: Flink writes
    /// every row, `+U` rows too.
    pub rows_only: bool,
}

impl Sink {
    /// Counts processing time minus event time for each row about to be
    /// written, in one pass, then adds the tally to the histogram.
    fn record_event_time_lag(&self, batch: &RecordBatch) {
        let (Some((col, offset)), Some(m)) = (self.event_time, &self.metrics) else { return };
        let Some(Ok(times)) = batch.columns().get(col).map(epoch_millis) else { return };
        let now_ms = crate::job::now_ms() as i64;
        let mut tally = Counts::default();
        for t in times.iter().flatten() {
            let lag_ms = now_ms.saturating_sub(t.saturating_add(offset)).max(0);
            tally.add((lag_ms as u64).saturating_mul(1000));
        }
        m.event_time_lag.record_all(&tally);
    }
}

impl StreamOperator for Sink {
    fn name(&self) -> String {
        format!("Sink({})", self.table)
    }

    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<StreamEvent>) -> Result<(), OpError> {
        let batch = if self.rows_only && changelog::has_kinds(&batch) { changelog::split(&batch).0 } else { batch };
        self.writer.write(&batch)?;
        self.record_event_time_lag(&batch);
        Ok(())
    }

    fn observe(&mut self, metrics: Arc<SubtaskMetrics>) {
        self.metrics = Some(metrics);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use sluice_connectors::ConnectorError;

    use super::*;

    struct Discard;
    impl SinkWriter for Discard {
        fn write(&mut self, _batch: &RecordBatch) -> Result<(), ConnectorError> {
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

    #[test]
    fn each_written_row_counts_its_event_time_lag() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("v", DataType::Int64, false),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let now = crate::job::now_ms() as i64;
        // Four rows 5 s old, one 60 s old, one without a time (not counted).
        let ts = TimestampMillisecondArray::from(vec![
            Some(now - 5_000),
            Some(now - 5_000),
            Some(now - 5_000),
            Some(now - 5_000),
            Some(now - 60_000),
            None,
        ]);
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1; 6])), Arc::new(ts)]).unwrap();
        let metrics = Arc::new(SubtaskMetrics::new(0, 0));
        let mut sink = Sink {
            table: "t".into(),
            writer: Box::new(Discard),
            exactly_once: false,
            event_time: Some((1, -1)),
            metrics: None,
            rows_only: false,
        };
        sink.observe(metrics.clone());
        sink.process_batch(batch, &mut Vec::new()).unwrap();
        let lag = metrics.event_time_lag.read();
        assert_eq!(lag.total(), 5);
        let p50 = lag.quantile_ms(0.5).unwrap();
        assert!((4_000.0..=6_500.0).contains(&p50), "p50 {p50}");
        assert!(lag.quantile_ms(1.0).unwrap() >= 50_000.0, "{lag:?}");
        assert_eq!(metrics.processing_latency.read().total(), 0);
    }
}
