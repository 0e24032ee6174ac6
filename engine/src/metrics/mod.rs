//! Per-subtask metrics, as Flink names them: busy, backpressured and idle time,
//! records and bytes in and out, the current watermark, source lag, and late
//! records dropped; the thread's CPU time and the keys in its state, for the
//! cost per event; and at sinks, histograms of processing latency and event-time
//! lag. Counters are atomics written by the subtask's thread and read by the
//! REST server and the progress line.

pub mod cpu;
pub mod histogram;
pub mod history;

pub use histogram::{Counts, Histogram};

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

/// A watermark value meaning "none yet".
pub const NO_WATERMARK: i64 = i64::MIN;

#[derive(Debug)]
pub struct SubtaskMetrics {
    pub vertex: usize,
    pub subtask: usize,
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Nanoseconds spent processing.
    pub busy_ns: AtomicU64,
    /// Nanoseconds blocked because a downstream channel was full.
    pub backpressured_ns: AtomicU64,
    /// Nanoseconds waiting for input.
    pub idle_ns: AtomicU64,
    pub watermark: AtomicI64,
    /// Records waiting at a source, when known; `u64::MAX` when unknown.
    pub pending_records: AtomicU64,
    /// The splits of a source (every subtask's), when its reader knows them;
    /// `u64::MAX` when unknown.
    pub splits: AtomicU64,
    pub late_records_dropped: AtomicU64,
    pub skipped_records: AtomicU64,
    /// CPU time of the subtask's thread, in nanoseconds.
    pub cpu_ns: AtomicU64,
    /// Keys in the subtask's keyed state at its last checkpoint; `u64::MAX` when unknown.
    pub state_keys: AtomicU64,
    /// Of those, the keys spilled to disk (the disk state backend).
    pub state_keys_on_disk: AtomicU64,
    /// Bytes of the subtask's state in its last completed checkpoint (known to
    /// the coordinator only); `u64::MAX` when unknown.
    pub state_bytes: AtomicU64,
    /// At a sink: from a source's read of a record to the sink's write, by
    /// latency markers (as Flink's), in microseconds.
    pub processing_latency: Histogram,
    /// At a sink: processing time minus each record's event time, at emission.
    pub event_time_lag: Histogram,
    /// When the subtask first and last took records in (unix ms; 0: not yet).
    pub first_record_ms: AtomicU64,
    pub last_record_ms: AtomicU64,
}

impl SubtaskMetrics {
    pub fn new(vertex: usize, subtask: usize) -> Self {
        SubtaskMetrics {
            vertex,
            subtask,
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            backpressured_ns: AtomicU64::new(0),
            idle_ns: AtomicU64::new(0),
            watermark: AtomicI64::new(NO_WATERMARK),
            pending_records: AtomicU64::new(u64::MAX),
            splits: AtomicU64::new(u64::MAX),
            late_records_dropped: AtomicU64::new(0),
            skipped_records: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
            state_keys: AtomicU64::new(u64::MAX),
            state_keys_on_disk: AtomicU64::new(u64::MAX),
            state_bytes: AtomicU64::new(u64::MAX),
            processing_latency: Histogram::default(),
            event_time_lag: Histogram::default(),
            first_record_ms: AtomicU64::new(0),
            last_record_ms: AtomicU64::new(0),
        }
    }

    /// Counts `rows` records in, and when they came (a clock read per batch).
    pub fn took_in(&self, rows: u64) {
        if rows == 0 {
            return;
        }
        self.records_in.fetch_add(rows, Ordering::Relaxed);
        let now = crate::job::now_ms();
        self.saw_records_at(now, now);
    }

    /// Widens the first and last record times to `first` and `last` (unix ms; 0: none).
    pub fn saw_records_at(&self, first: u64, last: u64) {
        if first != 0 {
            let _ = self
                .first_record_ms
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| (f == 0 || first < f).then_some(first));
        }
        if last != 0 {
            self.last_record_ms.fetch_max(last, Ordering::Relaxed);
        }
    }

    pub fn add(counter: &AtomicU64, v: u64) {
        counter.fetch_add(v, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Sample {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Sample {
            records_in: l(&self.records_in),
            records_out: l(&self.records_out),
            bytes_in: l(&self.bytes_in),
            bytes_out: l(&self.bytes_out),
            busy_ns: l(&self.busy_ns),
            backpressured_ns: l(&self.backpressured_ns),
            idle_ns: l(&self.idle_ns),
            watermark: self.watermark.load(Ordering::Relaxed),
            pending_records: known(l(&self.pending_records)),
            splits: known(l(&self.splits)),
            late_records_dropped: l(&self.late_records_dropped),
            skipped_records: l(&self.skipped_records),
            cpu_ns: l(&self.cpu_ns),
            state_keys: known(l(&self.state_keys)),
            state_keys_on_disk: known(l(&self.state_keys_on_disk)),
            state_bytes: known(l(&self.state_bytes)),
            first_record_ms: known_time(l(&self.first_record_ms)),
            last_record_ms: known_time(l(&self.last_record_ms)),
            at: Instant::now(),
        }
    }
}

/// A gauge that is `u64::MAX` when unknown.
fn known(v: u64) -> Option<u64> {
    (v != u64::MAX).then_some(v)
}

/// A time that is 0 when there is none.
fn known_time(v: u64) -> Option<u64> {
    (v != 0).then_some(v)
}

/// The value a gauge of [`known`] stores.
pub fn unknown_as_max(v: Option<u64>) -> u64 {
    v.unwrap_or(u64::MAX)
}

/// A point-in-time reading of one subtask's counters.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub records_in: u64,
    pub records_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub busy_ns: u64,
    pub backpressured_ns: u64,
    pub idle_ns: u64,
    pub watermark: i64,
    pub pending_records: Option<u64>,
    pub splits: Option<u64>,
    pub late_records_dropped: u64,
    pub skipped_records: u64,
    pub cpu_ns: u64,
    pub state_keys: Option<u64>,
    pub state_keys_on_disk: Option<u64>,
    pub state_bytes: Option<u64>,
    /// When the subtask first and last took records in (unix ms).
    pub first_record_ms: Option<u64>,
    pub last_record_ms: Option<u64>,
    pub at: Instant,
}

/// Rates between two samples of one subtask.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rates {
    pub busy_ms_per_second: f64,
    pub backpressured_ms_per_second: f64,
    pub idle_ms_per_second: f64,
    pub records_in_per_second: f64,
    pub records_out_per_second: f64,
    pub bytes_in_per_second: f64,
    pub bytes_out_per_second: f64,
    /// CPU seconds per second of the subtask's thread.
    pub cpu_per_second: f64,
}

impl Rates {
    pub fn between(a: &Sample, b: &Sample) -> Rates {
        let secs = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
        let d = |x: u64, y: u64| y.saturating_sub(x) as f64;
        let ms = |x: u64, y: u64| (d(x, y) / 1e6 / secs).min(1000.0);
        Rates {
            busy_ms_per_second: ms(a.busy_ns, b.busy_ns),
            backpressured_ms_per_second: ms(a.backpressured_ns, b.backpressured_ns),
            idle_ms_per_second: ms(a.idle_ns, b.idle_ns),
            records_in_per_second: d(a.records_in, b.records_in) / secs,
            records_out_per_second: d(a.records_out, b.records_out) / secs,
            bytes_in_per_second: d(a.bytes_in, b.bytes_in) / secs,
            bytes_out_per_second: d(a.bytes_out, b.bytes_out) / secs,
            cpu_per_second: d(a.cpu_ns, b.cpu_ns) / 1e9 / secs,
        }
    }
}

/// All subtasks' metrics of a job, by vertex.
#[derive(Debug, Default)]
pub struct JobMetrics {
    pub subtasks: Vec<Arc<SubtaskMetrics>>,
}
