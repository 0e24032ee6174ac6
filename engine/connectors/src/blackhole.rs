//! The `blackhole` sink: discards rows, counting them. `'sink.throttle'`
//! (rows per second per subtask) makes it a slow sink, to test backpressure;
//! with `'sink.throttle.shared' = 'true'` the rate is shared by every subtask of
//! the table in the process: a bottleneck that more subtasks cannot fix (the
//! autoscaler's tests), as long as they run in one worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;

use crate::{ConnectorError, SinkWriter};

/// Rows written and when the first was, by the subtasks that share a pace.
type Pace = Arc<Mutex<(u64, Option<Instant>)>>;

#[derive(Debug, Default)]
pub(crate) struct Blackhole {
    rows: u64,
    throttle: Option<u64>,
    start: Option<Instant>,
    /// The pace of every subtask of the table in this process, when shared.
    shared: Option<Pace>,
}

impl Blackhole {
    pub(crate) fn new(throttle: Option<u64>) -> Self {
        Blackhole { rows: 0, throttle, start: None, shared: None }
    }

    /// A sink whose `throttle` is shared by every subtask of `table` in this process.
    pub(crate) fn shared(table: &str, throttle: u64) -> Self {
        static PACES: OnceLock<Mutex<HashMap<String, Pace>>> = OnceLock::new();
        let pace = PACES
            .get_or_init(Default::default)
            .lock()
            .map(|mut m| m.entry(table.to_string()).or_default().clone())
            .unwrap_or_default();
        Blackhole { rows: 0, throttle: Some(throttle), start: None, shared: Some(pace) }
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
            let (rows, start) = match &self.shared {
                Some(pace) => match pace.lock() {
                    Ok(mut p) => {
                        p.0 += batch.num_rows() as u64;
                        (p.0, *p.1.get_or_insert_with(Instant::now))
                    }
                    Err(_) => (self.rows, *self.start.get_or_insert_with(Instant::now)),
                },
                None => (self.rows, *self.start.get_or_insert_with(Instant::now)),
            };
            let due = Duration::from_secs_f64(rows as f64 / rate as f64);
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

    #[test]
    fn a_shared_throttle_holds_all_subtasks_to_one_rate() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1; 50]))]).unwrap();
        let t = std::time::Instant::now();
        let subtasks: Vec<_> = (0..4)
            .map(|_| {
                let batch = batch.clone();
                std::thread::spawn(move || {
                    let mut b = Blackhole::shared("shared_test", 1000);
                    for _ in 0..2 {
                        b.write(&batch).unwrap();
                    }
                })
            })
            .collect();
        for s in subtasks {
            s.join().unwrap();
        }
        // 4 subtasks × 100 rows at 1000 rows/s for all of them: 400 ms, not 100.
        assert!(t.elapsed() >= Duration::from_millis(380), "{:?}", t.elapsed());
    }
}
