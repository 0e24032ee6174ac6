//! The `blackhole` sink: discards rows, counting them. `'sink.throttle'`
//! (rows per second per subtask) makes it a slow sink, to test backpressure.

use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;

use crate::{ConnectorError, SinkWriter};

#[derive(Debug, Default)]
pub(crate) struct Blackhole {
    rows: u64,
    throttle: Option<u64>,
    start: Option<Instant>,
}

impl Blackhole {
    pub(crate) fn new(throttle: Option<u64>) -> Self {
        Blackhole { rows: 0, throttle, start: None }
    }

    #[cfg(test)]
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }
}

impl SinkWriter for Blackhole {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        self.rows += batch.num_rows() as u64;
        if let Some(rate) = self.throttle {
            // Row k is done at k / rate seconds: sleep until this batch is.
            let start = *self.start.get_or_insert_with(Instant::now);
            let due = Duration::from_secs_f64(self.rows as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
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

    #[test]
    fn a_throttled_sink_takes_its_time() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1; 50]))]).unwrap();
        let mut b = Blackhole::new(Some(1000));
        let t = std::time::Instant::now();
        for _ in 0..4 {
            b.write(&batch).unwrap();
        }
        // 200 rows at 1000 rows/s.
        assert!(t.elapsed() >= Duration::from_millis(190), "{:?}", t.elapsed());
    }
}
