//! Channels between subtasks, with credit-based flow control.
//!
//! Every subtask has one input queue; each upstream channel into it has its
//! own credit counter of `execution.buffer-capacity` batches. A producer takes
//! a credit before it sends a batch and blocks, counting backpressured time,
//! while there is none. The consumer returns the credit when it has processed
//! the batch, not when it dequeues it: a channel held during barrier alignment
//! therefore stops its producer after at most that many batches, and memory
//! stays bounded. Control messages (watermarks, barriers, end of input,
//! commits) take no credit, so they can never deadlock behind data.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;

use crate::checkpoint::Barrier;
use crate::metrics::SubtaskMetrics;

#[derive(Debug)]
pub enum Msg {
    Batch(RecordBatch),
    Watermark(i64),
    Idle(bool),
    End,
    Barrier(Barrier),
    /// From the coordinator to a sink: checkpoint `id` is complete; commit.
    Commit(u64),
    /// A latency marker: when a source read the batch before it (microseconds
    /// since the epoch). It waits in the same queues as records but passes
    /// operators at once; the first sink it reaches records its age.
    Latency(u64),
}

pub struct Envelope {
    pub channel: u32,
    pub msg: Msg,
}

/// The channel number of messages from the coordinator.
pub const CONTROL: u32 = u32::MAX;

/// Raised when a consumer has gone away (the job is stopping).
#[derive(Debug)]
pub struct Disconnected;

/// What releasing a credit does on the consumer's side of a network channel:
/// send the credit back to the producer's worker.
pub type ReleaseHook = Box<dyn Fn() + Send + Sync>;

pub struct Credit {
    state: Mutex<(usize, bool)>,
    cv: Condvar,
    /// Set on the consumer's side of a channel from another worker.
    hook: Option<ReleaseHook>,
}

impl Credit {
    pub fn new(credits: usize) -> Arc<Credit> {
        Arc::new(Credit { state: Mutex::new((credits.max(1), false)), cv: Condvar::new(), hook: None })
    }

    /// The consumer's side of a channel whose producer is on another worker:
    /// releasing returns the credit over the network.
    pub fn remote(hook: ReleaseHook) -> Arc<Credit> {
        Arc::new(Credit { state: Mutex::new((0, false)), cv: Condvar::new(), hook: Some(hook) })
    }

    /// Takes one credit, waiting while there is none.
    fn acquire(&self, metrics: &SubtaskMetrics) -> Result<(), Disconnected> {
        let mut g = self.state.lock().map_err(|_| Disconnected)?;
        if g.0 == 0 && !g.1 {
            let t = Instant::now();
            while g.0 == 0 && !g.1 {
                g = self.cv.wait_timeout(g, Duration::from_millis(100)).map_err(|_| Disconnected)?.0;
            }
            SubtaskMetrics::add(&metrics.backpressured_ns, t.elapsed().as_nanos() as u64);
        }
        if g.1 {
            return Err(Disconnected);
        }
        g.0 -= 1;
        Ok(())
    }

    pub fn release(&self) {
        self.release_n(1);
    }

    pub fn release_n(&self, n: usize) {
        if let Some(hook) = &self.hook {
            for _ in 0..n {
                hook();
            }
            return;
        }
        if let Ok(mut g) = self.state.lock() {
            g.0 += n;
            self.cv.notify_one();
        }
    }

    /// The consumer is gone: wake and fail every waiting producer.
    pub fn close(&self) {
        if let Ok(mut g) = self.state.lock() {
            g.1 = true;
            self.cv.notify_all();
        }
    }
}

/// A message for a consumer subtask on another worker.
pub struct RemoteMsg {
    pub vertex: u32,
    pub subtask: u32,
    pub channel: u32,
    pub msg: Msg,
}

/// Where a producer's messages for one consumer go.
#[derive(Clone)]
pub enum Outbox {
    /// The consumer's input queue, in this process.
    Local(Sender<Envelope>),
    /// The link to the consumer's worker.
    Remote { link: Sender<RemoteMsg>, vertex: u32, subtask: u32 },
}

/// One downstream channel of a producer.
#[derive(Clone)]
pub struct Target {
    pub tx: Outbox,
    pub channel: u32,
    pub credit: Arc<Credit>,
}

impl Target {
    pub fn send_batch(&self, batch: RecordBatch, metrics: &SubtaskMetrics) -> Result<(), Disconnected> {
        self.credit.acquire(metrics)?;
        self.send(Msg::Batch(batch))
    }

    pub fn send_control(&self, msg: Msg) -> Result<(), Disconnected> {
        self.send(msg)
    }

    fn send(&self, msg: Msg) -> Result<(), Disconnected> {
        match &self.tx {
            Outbox::Local(tx) => tx.send(Envelope { channel: self.channel, msg }).map_err(|_| Disconnected),
            Outbox::Remote { link, vertex, subtask } => link
                .send(RemoteMsg { vertex: *vertex, subtask: *subtask, channel: self.channel, msg })
                .map_err(|_| Disconnected),
        }
    }
}

/// Closes a consumer's credits when its thread ends, however it ends.
pub struct CloseOnDrop(pub Vec<Arc<Credit>>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        for c in &self.0 {
            c.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_producer_without_credit_waits_until_one_is_returned() {
        let (tx, rx) = std::sync::mpsc::channel();
        let credit = Credit::new(2);
        let target = Target { tx: Outbox::Local(tx), channel: 0, credit: credit.clone() };
        let metrics = Arc::new(SubtaskMetrics::new(0, 0));
        let batch = RecordBatch::new_empty(Arc::new(arrow::datatypes::Schema::empty()));
        let (t2, m2, b2) = (target.clone(), metrics.clone(), batch.clone());
        let producer = std::thread::spawn(move || {
            for _ in 0..3 {
                t2.send_batch(b2.clone(), &m2).unwrap();
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        // Two batches are queued; the third waits for a credit.
        assert_eq!(rx.try_iter().count(), 2);
        assert!(!producer.is_finished());
        credit.release();
        producer.join().unwrap();
        assert_eq!(rx.try_iter().count(), 1);
        assert!(metrics.backpressured_ns.load(std::sync::atomic::Ordering::Relaxed) > 0);
        // A closed consumer fails a waiting producer instead of hanging it.
        credit.close();
        assert!(target.send_batch(batch, &metrics).is_err());
    }
}
