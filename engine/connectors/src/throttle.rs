//! Wall-clock rate limiting for generated sources.
//!
//! A rate-limited generator stands for an upstream that produces at that rate
//! (a Kafka topic written at `rows-per-second`): row `k` exists from `k / rate`
//! seconds after the reader's first poll. What the reader has not yet taken of
//! the rows that exist is its lag ([`Throttle::behind`]): when backpressure
//! slows the reader, the lag grows, and the reader catches up at full speed
//! once it can, as it would on a backlog.

use std::time::{Duration, Instant};

/// The longest a reader sleeps inside one poll; past this it returns `Idle`.
const MAX_SLEEP: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(crate) struct Throttle {
    rows_per_second: f64,
    start: Option<Instant>,
    granted: u64,
}

impl Throttle {
    pub(crate) fn new(rows_per_second: u64) -> Self {
        Throttle { rows_per_second: rows_per_second.max(1) as f64, start: None, granted: 0 }
    }

    /// Rows due `elapsed` after the start: row `k` (0-based) is due at `k / rate` seconds.
    fn due(&self, elapsed: Duration) -> u64 {
        (elapsed.as_secs_f64() * self.rows_per_second).floor() as u64 + 1
    }

    /// How many rows (at most `max`) may be produced now. When none is due it
    /// sleeps until the next one is (at most 100 ms) and returns 0, "ahead of
    /// schedule, poll again": the caller reports that poll as idle, so the time
    /// a rate-limited source waits for its schedule never counts as busy.
    pub(crate) fn acquire(&mut self, max: usize) -> usize {
        let start = *self.start.get_or_insert_with(Instant::now);
        let elapsed = start.elapsed();
        let n = self.grant(elapsed, max);
        if n == 0 {
            std::thread::sleep(self.until_next(elapsed).min(MAX_SLEEP));
        }
        n
    }

    /// Grants the rows due at `elapsed` and not yet granted, at most `max`.
    fn grant(&mut self, elapsed: Duration, max: usize) -> usize {
        let n = self.due(elapsed).saturating_sub(self.granted).min(max as u64);
        self.granted += n;
        n as usize
    }

    /// From `elapsed` to when the next row not yet granted is due.
    fn until_next(&self, elapsed: Duration) -> Duration {
        let next_due = self.granted as f64 / self.rows_per_second;
        Duration::from_secs_f64((next_due - elapsed.as_secs_f64()).max(0.0))
    }

    /// Rows due by now that have not been granted: how far the reader is behind
    /// its schedule. 0 before its first poll.
    pub(crate) fn behind(&self) -> u64 {
        self.start.map_or(0, |s| self.behind_at(s.elapsed()))
    }

    fn behind_at(&self, elapsed: Duration) -> u64 {
        self.due(elapsed).saturating_sub(self.granted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_roughly_the_rate() {
        let mut t = Throttle::new(1000);
        let start = Instant::now();
        let mut total = 0;
        while start.elapsed() < Duration::from_millis(300) {
            total += t.acquire(10_000);
        }
        // 300 ms at 1000 rows/s is about 300 rows; allow for a slow machine.
        assert!((250..=420).contains(&total), "granted {total}");
    }

    #[test]
    fn a_reader_held_back_falls_behind_by_the_rows_due_and_catches_up() {
        let ms = Duration::from_millis;
        let mut t = Throttle::new(1000);
        assert_eq!(t.behind_at(ms(0)), 1, "row 0 is due at once");
        assert_eq!(t.grant(ms(0), 100), 1);
        assert_eq!(t.behind_at(ms(0)), 0);
        assert_eq!(t.grant(ms(0), 100), 0, "ahead of schedule");
        assert_eq!(t.until_next(ms(0)), ms(1));
        // Held back for 2 s (backpressure): 2000 rows are due and not taken.
        assert_eq!(t.behind_at(ms(2000)), 2000);
        // It takes at most a batch per poll, and the lag shrinks by what it takes.
        assert_eq!(t.grant(ms(2000), 500), 500);
        assert_eq!(t.behind_at(ms(2000)), 1500);
        assert_eq!(t.grant(ms(2100), 10_000), 1600);
        assert_eq!(t.behind_at(ms(2100)), 0);
        assert_eq!(t.behind_at(ms(2150)), 50);
    }

    #[test]
    fn behind_is_zero_before_the_first_poll() {
        let mut t = Throttle::new(1_000_000_000);
        assert_eq!(t.behind(), 0);
        t.acquire(1);
        std::thread::sleep(Duration::from_millis(2));
        assert!(t.behind() > 1000, "{}", t.behind());
    }
}
