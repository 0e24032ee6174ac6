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
//!
//! With buffer debloating (see [`super::debloat`]) a producer's credits also
//! measure how fast the consumer takes a backpressured channel's batches, and
//! the producer cuts what it sends so that the data in flight takes the
//! consumer about the debloat target to process.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;

use super::debloat::Debloat;
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
    state: Mutex<CreditState>,
    cv: Condvar,
    /// Set on the consumer's side of a channel from another worker.
    hook: Option<ReleaseHook>,
}

struct CreditState {
    available: usize,
    closed: bool,
    /// On a producer's side, with buffer debloating: how to cut its batches.
    debloat: Option<Debloat>,
}

/// What a producer's channels hold: credits per channel, and the time the data
/// in flight should take the consumer (`None`: no debloating).
#[derive(Debug, Clone, Copy)]
pub struct Buffers {
    pub credits: usize,
    pub debloat_target: Option<Duration>,
}

impl Credit {
    pub fn new(credits: usize) -> Arc<Credit> {
        Credit::with(Buffers { credits, debloat_target: None })
    }

    /// A producer's credits, which cut its batches when debloating is on.
    pub fn with(b: Buffers) -> Arc<Credit> {
        let credits = b.credits.max(1);
        let debloat = b.debloat_target.map(|t| Debloat::new(t, credits));
        Arc::new(Credit {
            state: Mutex::new(CreditState { available: credits, closed: false, debloat }),
            cv: Condvar::new(),
            hook: None,
        })
    }

    /// The consumer's side of a channel whose producer is on another worker:
    /// releasing returns the credit over the network.
    pub fn remote(hook: ReleaseHook) -> Arc<Credit> {
        Arc::new(Credit {
            state: Mutex::new(CreditState { available: 0, closed: false, debloat: None }),
            cv: Condvar::new(),
            hook: Some(hook),
        })
    }

    /// Takes one credit for a batch of `rows`, waiting while there is none.
    fn acquire(&self, metrics: &SubtaskMetrics, rows: usize) -> Result<(), Disconnected> {
        let mut g = self.state.lock().map_err(|_| Disconnected)?;
        if g.available == 0 && !g.closed {
            let t = Instant::now();
            if let Some(d) = g.debloat.as_mut() {
                d.wait_started(t);
            }
            // Counted every 100 ms while it lasts, so that a rate over the
            // last second sees a producer blocked for longer.
            let mut counted = t;
            while g.available == 0 && !g.closed {
                g = self.cv.wait_timeout(g, Duration::from_millis(100)).map_err(|_| Disconnected)?.0;
                let now = Instant::now();
                SubtaskMetrics::add(&metrics.backpressured_ns, (now - counted).as_nanos() as u64);
                counted = now;
            }
            if let Some(d) = g.debloat.as_mut() {
                d.wait_ended(Instant::now());
            }
        }
        if g.closed {
            return Err(Disconnected);
        }
        g.available -= 1;
        if let Some(d) = g.debloat.as_mut() {
            d.sent(rows);
        }
        Ok(())
    }

    /// The most rows a batch sent now should have ([`Debloat::max_rows`]).
    pub fn max_rows(&self) -> usize {
        self.state
            .lock()
            .ok()
            .and_then(|g| g.debloat.as_ref().map(|d| d.max_rows(Instant::now())))
            .unwrap_or(usize::MAX)
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
            g.available += n;
            if let Some(d) = g.debloat.as_mut() {
                d.returned(n, Instant::now());
            }
            self.cv.notify_one();
        }
    }

    /// The consumer is gone: wake and fail every waiting producer.
    pub fn close(&self) {
        if let Ok(mut g) = self.state.lock() {
            g.closed = true;
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
    /// Sends a batch, cut into parts of at most the credit's [`Credit::max_rows`]
    /// (buffer debloating; whole otherwise), each part taking a credit.
    pub fn send_batch(&self, batch: RecordBatch, metrics: &SubtaskMetrics) -> Result<(), Disconnected> {
        let rows = batch.num_rows();
        if rows <= self.credit.max_rows() {
            self.credit.acquire(metrics, rows)?;
            return self.send(Msg::Batch(batch));
        }
        let mut offset = 0;
        while offset < rows {
            // Measured again for each part: the consumer's pace may change.
            let part = self.credit.max_rows().clamp(1, rows - offset);
            self.credit.acquire(metrics, part)?;
            self.send(Msg::Batch(batch.slice(offset, part)))?;
            offset += part;
        }
        Ok(())
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

    /// A long wait for credit counts as backpressure while it lasts, not only
    /// when it ends: a rate over the last second must see a producer that has
    /// been blocked for several (with debloating off, a batch of 8,192 rows
    /// waits seconds for a slow sink).
    #[test]
    fn a_wait_for_credit_counts_as_backpressure_while_it_lasts() {
        let (tx, rx) = std::sync::mpsc::channel();
        let credit = Credit::new(1);
        let target = Target { tx: Outbox::Local(tx), channel: 0, credit: credit.clone() };
        let metrics = Arc::new(SubtaskMetrics::new(0, 0));
        let batch = RecordBatch::new_empty(Arc::new(arrow::datatypes::Schema::empty()));
        let m2 = metrics.clone();
        let producer = std::thread::spawn(move || {
            for _ in 0..2 {
                target.send_batch(batch.clone(), &m2).unwrap();
            }
        });
        // From the first batch's arrival on, the producer waits for a credit
        // for the second (however late its thread started).
        rx.recv().unwrap();
        let waiting = Instant::now();
        std::thread::sleep(Duration::from_millis(450));
        let blocked = metrics.backpressured_ns.load(std::sync::atomic::Ordering::Relaxed);
        let waited = waiting.elapsed().as_nanos() as u64;
        assert!(!producer.is_finished(), "the second batch waits for a credit");
        // Counted at least every 100 ms; 100 ms more of slack for a busy machine.
        assert!(blocked + 200_000_000 >= waited, "{blocked} ns of backpressure counted after {waited} ns blocked");
        credit.release();
        producer.join().unwrap();
    }

    #[test]
    fn a_debloated_channel_cuts_batches_for_a_slow_consumer_and_keeps_every_row_in_order() {
        use arrow::array::{Array, Int64Array};
        let (tx, rx) = std::sync::mpsc::channel();
        // 2 credits, 100 ms of data in flight at most.
        let credit = Credit::with(Buffers { credits: 2, debloat_target: Some(Duration::from_millis(100)) });
        let target = Target { tx: Outbox::Local(tx), channel: 0, credit: credit.clone() };
        let metrics = Arc::new(SubtaskMetrics::new(0, 0));
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
            "id",
            arrow::datatypes::DataType::Int64,
            false,
        )]));
        let producer = std::thread::spawn(move || {
            for b in 0..4i64 {
                let ids = Int64Array::from_iter_values(b * 400..(b + 1) * 400);
                let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(ids)]).unwrap();
                target.send_batch(batch, &metrics).unwrap();
            }
        });
        // The consumer takes 1 row a millisecond and returns each credit after the batch.
        let (mut sizes, mut ids) = (Vec::new(), Vec::new());
        while ids.len() < 1600 {
            let Ok(env) = rx.recv_timeout(Duration::from_secs(10)) else { panic!("rows lost: {sizes:?}") };
            let Msg::Batch(b) = env.msg else { continue };
            std::thread::sleep(Duration::from_millis(b.num_rows() as u64));
            sizes.push(b.num_rows());
            let col = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            ids.extend(col.values().iter().copied());
            credit.release();
        }
        producer.join().unwrap();
        assert_eq!(ids, (0..1600).collect::<Vec<i64>>(), "rows out of order or repeated");
        // 1,000 rows/s × 100 ms / 2 credits: later parts are cut to about 50 rows.
        assert_eq!(sizes[0], 400, "the first batches go whole: {sizes:?}");
        assert!(sizes.iter().any(|n| *n <= 100), "never cut for the slow consumer: {sizes:?}");
    }
}
