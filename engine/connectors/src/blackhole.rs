//! The `blackhole` sink: discards rows, counting them. `'sink.throttle'`
//! (rows per second per subtask) makes it a slow sink, to test backpressure;
//! with `'sink.throttle.shared' = 'true'` the rate is shared by every subtask of
//! the table in the process: a bottleneck that more subtasks cannot fix (the
//! autoscaler's tests), as long as they run in one worker.
//!
//! A throttled sink is a server with a fixed cost per row: each row takes
//! `1 / throttle` seconds after the rows before it are done, and idle time
//! is not saved up for later. So its busy time (the sleep is inside the
//! write) is proportional to its load: a subtask at a fifth of its capacity
//! is a fifth busy, as a real sink with a per-row cost would be, which the
//! autoscaler reads to size it down as well as up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;

use crate::{ConnectorError, SinkWriter};

/// When the subtasks that share a pace are done with the rows given so far.
type Pace = Arc<Mutex<Option<Instant>>>;

#[derive(Debug, Default)]
pub(crate) struct Blackhole {
    rows: u64,
    throttle: Option<u64>,
    /// When this subtask is done with the rows written so far.
    free_at: Option<Instant>,
    /// The pace of every subtask of the table in this process, when shared.
    shared: Option<Pace>,
}

impl Blackhole {
    pub(crate) fn new(throttle: Option<u64>) -> Self {
        Blackhole { rows: 0, throttle, free_at: None, shared: None }
    }

    /// A sink whose `throttle` is shared by every subtask of `table` in this process.
    pub(crate) fn shared(table: &str, throttle: u64) -> Self {
        static PACES: OnceLock<Mutex<HashMap<String, Pace>>> = OnceLock::new();
        let pace = PACES
            .get_or_init(Default::default)
            .lock()
            .map(|mut m| m.entry(table.to_string()).or_default().clone())
            .unwrap_or_default();
        Blackhole { rows: 0, throttle: Some(throttle), free_at: None, shared: Some(pace) }
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
            // This batch is done `rows / rate` after now or after the rows
            // before it are (shared: every subtask's), whichever is later.
            let cost = Duration::from_secs_f64(batch.num_rows() as f64 / rate.max(1) as f64);
            let now = Instant::now();
            let take = |free_at: &mut Option<Instant>| {
                let done = free_at.map_or(now, |f| f.max(now)) + cost;
                *free_at = Some(done);
                done
            };
            let done = match self.shared.as_ref().map(|p| p.lock()) {
                Some(Ok(mut pace)) => take(&mut pace),
                _ => take(&mut self.free_at),
            };
            std::thread::sleep(done.saturating_duration_since(Instant::now()));
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

    #[test]
    fn a_throttled_sink_is_busy_in_proportion_to_its_load() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1; 20]))]).unwrap();
        let mut b = Blackhole::new(Some(1000));
        // Idle for a while: no credit is saved up; each batch of 20 still takes 20 ms.
        b.write(&batch).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        for _ in 0..3 {
            let t = std::time::Instant::now();
            b.write(&batch).unwrap();
            assert!(t.elapsed() >= Duration::from_millis(19), "{:?}", t.elapsed());
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}
