//! Buffer debloating, in the spirit of Flink's
//! `taskmanager.network.memory.buffer-debloat.*`: a producer sizes the batches it
//! sends on a channel so that what the channel holds in flight — its credits
//! times the rows per batch — takes the consumer about `target` to process. A
//! checkpoint barrier queued behind that data then waits about `target` per hop,
//! instead of `credits × execution.batch-size` rows, however slow the consumer is.
//!
//! Invariants:
//! - it changes only how a batch is cut, never the order or the content of the
//!   rows on a channel, so exactly-once is untouched;
//! - it acts only while the channel is backpressured (the producer waited for a
//!   credit within the last [`ACTIVE_FOR`]): then the rate at which credits come
//!   back is the consumer's capacity, since a credit returns after its batch was
//!   processed (see [`super::channel`]). Otherwise batches go whole;
//! - a batch is never cut below [`MIN_ROWS`].
//!
//! Measured entirely on the producer's side, from the credits it takes and gets
//! back, so a channel to another worker needs no new message.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The smallest batch a producer cuts.
pub const MIN_ROWS: usize = 8;
/// A channel counts as backpressured this long after its producer last waited.
pub const ACTIVE_FOR: Duration = Duration::from_secs(1);
/// Returns are gathered this long before they make a rate sample.
const SAMPLE_OVER: Duration = Duration::from_millis(200);

/// One channel's estimate, owned by its credit.
#[derive(Debug)]
pub struct Debloat {
    target: Duration,
    credits: usize,
    /// Rows of each batch sent and not yet returned, oldest first.
    in_flight: VecDeque<usize>,
    /// Rows returned since `sample_start`.
    sample_rows: u64,
    sample_start: Option<Instant>,
    /// The consumer's rows per second on this channel, smoothed.
    rate: Option<f64>,
    /// The producer is waiting for a credit.
    waiting: bool,
    /// When it last stopped waiting.
    last_wait: Option<Instant>,
}

impl Debloat {
    pub fn new(target: Duration, credits: usize) -> Debloat {
        Debloat {
            target,
            credits: credits.max(1),
            in_flight: VecDeque::new(),
            sample_rows: 0,
            sample_start: None,
            rate: None,
            waiting: false,
            last_wait: None,
        }
    }

    /// A batch of `rows` took a credit.
    pub fn sent(&mut self, rows: usize) {
        self.in_flight.push_back(rows);
    }

    /// The producer has no credit and starts to wait for one.
    pub fn wait_started(&mut self, now: Instant) {
        if !self.backpressured(now) {
            // A new episode: what came back before was the producer's pace, not the consumer's.
            self.sample_rows = 0;
            self.sample_start = Some(now);
        }
        self.waiting = true;
    }

    /// The producer got a credit after waiting.
    pub fn wait_ended(&mut self, now: Instant) {
        self.waiting = false;
        self.last_wait = Some(now);
    }

    /// The producer waits now, or stopped waiting less than [`ACTIVE_FOR`] ago.
    fn backpressured(&self, now: Instant) -> bool {
        self.waiting || self.last_wait.is_some_and(|w| now.saturating_duration_since(w) < ACTIVE_FOR)
    }

    /// `n` credits came back: the consumer processed the `n` oldest batches.
    pub fn returned(&mut self, n: usize, now: Instant) {
        let rows: usize = (0..n).filter_map(|_| self.in_flight.pop_front()).sum();
        if !self.backpressured(now) {
            return;
        }
        self.sample_rows += rows as u64;
        let start = *self.sample_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= SAMPLE_OVER && self.sample_rows > 0 {
            let sample = self.sample_rows as f64 / elapsed.as_secs_f64();
            self.rate = Some(self.rate.map_or(sample, |r| 0.5 * r + 0.5 * sample));
            self.sample_rows = 0;
            self.sample_start = Some(now);
        }
    }

    /// The most rows a batch sent now should have: `usize::MAX` while the
    /// channel is not backpressured or nothing is measured yet.
    pub fn max_rows(&self, now: Instant) -> usize {
        match self.rate {
            Some(rate) if self.backpressured(now) => {
                let rows = rate * self.target.as_secs_f64() / self.credits as f64;
                (rows as usize).max(MIN_ROWS)
            }
            _ => usize::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_slow_consumer_gets_batches_it_processes_within_the_target() {
        let t0 = Instant::now();
        let mut d = Debloat::new(Duration::from_secs(1), 8);
        assert_eq!(d.max_rows(t0), usize::MAX, "nothing measured: batches go whole");
        // The consumer takes 500 rows/s; the producer sends 8,192-row batches and
        // waits for each credit.
        for _ in 0..8 {
            d.sent(8192);
        }
        d.wait_started(t0);
        let mut now = t0;
        for _ in 0..3 {
            now += Duration::from_millis(16_384);
            d.returned(1, now);
            d.wait_ended(now);
            d.sent(8192);
            d.wait_started(now);
        }
        let rows = d.max_rows(now);
        // 500 rows/s × 1 s / 8 credits.
        assert!((55..=70).contains(&rows), "{rows}");
        // A second after the producer last waited, the channel is free again.
        d.returned(1, now + MS);
        d.wait_ended(now + MS);
        assert_eq!(d.max_rows(now + Duration::from_millis(1500)), usize::MAX);
    }

    #[test]
    fn a_fast_consumer_is_not_cut_and_a_tiny_rate_stops_at_the_minimum() {
        let t0 = Instant::now();
        let mut fast = Debloat::new(Duration::from_secs(1), 8);
        let mut now = t0;
        for _ in 0..300 {
            fast.sent(8192);
            fast.wait_started(now);
            now += MS;
            fast.returned(1, now);
            fast.wait_ended(now);
        }
        // 8,192 rows a millisecond: far more than a batch per credit.
        assert!(fast.max_rows(now) > 8192 * 100, "{}", fast.max_rows(now));
        let mut slow = Debloat::new(Duration::from_secs(1), 8);
        slow.sent(10);
        slow.wait_started(t0);
        let later = t0 + Duration::from_secs(10);
        slow.returned(1, later);
        slow.wait_ended(later);
        assert_eq!(slow.max_rows(later), MIN_ROWS, "1 row/s would be 0 rows per batch");
    }

    #[test]
    fn returns_outside_backpressure_are_the_producers_pace_and_are_not_measured() {
        let t0 = Instant::now();
        let mut d = Debloat::new(Duration::from_secs(1), 8);
        for i in 0..50u64 {
            d.sent(100);
            d.returned(1, t0 + Duration::from_millis(10 * i));
        }
        assert_eq!(d.max_rows(t0 + Duration::from_millis(500)), usize::MAX);
        assert!(d.rate.is_none());
    }
}
