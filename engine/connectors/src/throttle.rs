//! Wall-clock rate limiting for generated sources.

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

    /// How many rows (at most `max`) may be produced now. Sleeps at most 100 ms
    /// waiting for the schedule; 0 means "ahead of schedule, poll again later".
    pub(crate) fn acquire(&mut self, max: usize) -> usize {
        let start = *self.start.get_or_insert_with(Instant::now);
        for attempt in 0..2 {
            let elapsed = start.elapsed().as_secs_f64();
            // Row k (0-based) is due at k / rate seconds.
            let due = (elapsed * self.rows_per_second).floor() as u64 + 1;
            if due > self.granted {
                let n = (due - self.granted).min(max as u64);
                self.granted += n;
                return n as usize;
            }
            if attempt == 1 {
                break;
            }
            let next_due = self.granted as f64 / self.rows_per_second;
            let wait = Duration::from_secs_f64((next_due - elapsed).max(0.0));
            std::thread::sleep(wait.min(MAX_SLEEP));
        }
        0
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
}
