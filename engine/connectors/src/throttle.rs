//! Wall-clock rate limiting for generated sources.
//!
//! A rate-limited generator stands for an upstream that produces at that rate
//! (a Kafka topic written at `rows-per-second`): row `k` exists from `k / rate`
//! seconds after the reader's first poll. What the reader has not yet taken of
//! the rows that exist is its lag ([`Throttle::behind`]): when backpressure
//! slows the reader, the lag grows, and the reader catches up at full speed
//! once it can, as it would on a backlog.
//!
//! The schedule outlives a restart: a snapshot records the rows the reader
//! is behind and the wall time (unix ms), and a restored reader starts its
//! schedule that many rows behind plus the rows its rate made due while the
//! job was down (`rate × (first poll − snapshot time)`), as an upstream that
//! kept producing would have them waiting. A bounded generator's lag is
//! capped by the rows it has left (by its reader).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest a reader sleeps inside one poll; past this it returns `Idle`.
const MAX_SLEEP: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(crate) struct Throttle {
    rows_per_second: f64,
    start: Option<Instant>,
    granted: u64,
    /// Rows already due at the start: a restored backlog.
    carried: u64,
    /// A restored schedule not yet started: the rows behind at the snapshot
    /// and its wall time (unix ms), turned into `carried` at the first poll.
    resume: Option<(u64, Option<u64>)>,
}

/// Now, in unix ms.
fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The rows a restored schedule is behind at `now_ms`: those it was behind
/// at the snapshot (`at_ms`) and those due since, at `rows_per_second`. No
/// snapshot time (an older snapshot): no downtime is counted. A clock behind
/// the snapshot's counts none either.
pub(crate) fn backlog(behind: u64, at_ms: Option<u64>, now_ms: u64, rows_per_second: f64) -> u64 {
    let down_ms = at_ms.map_or(0, |at| now_ms.saturating_sub(at));
    let during = (down_ms as f64 / 1000.0 * rows_per_second).floor() as u64;
    behind.saturating_add(during)
}

impl Throttle {
    pub(crate) fn new(rows_per_second: u64) -> Self {
        Throttle { rows_per_second: rows_per_second.max(1) as f64, start: None, granted: 0, carried: 0, resume: None }
    }

    /// A schedule restored from a snapshot taken at `at_ms` (unix ms; `None`
    /// when the snapshot did not record it), `behind` rows behind then.
    pub(crate) fn resumed(rows_per_second: u64, behind: u64, at_ms: Option<u64>) -> Self {
        Throttle { resume: Some((behind, at_ms)), ..Throttle::new(rows_per_second) }
    }

    /// Rows due `elapsed` after the start: the carried backlog, and row `k`
    /// (0-based) of the schedule at `k / rate` seconds.
    fn due(&self, elapsed: Duration) -> u64 {
        (elapsed.as_secs_f64() * self.rows_per_second).floor() as u64 + 1 + self.carried
    }

    /// Starts the schedule at `now_ms` (unix ms): a restored one carries its backlog.
    fn begin(&mut self, now_ms: u64) {
        if let Some((behind, at_ms)) = self.resume.take() {
            self.carried = backlog(behind, at_ms, now_ms, self.rows_per_second);
        }
    }

    /// What a snapshot at `now_ms` records: the rows behind now (before the
    /// first poll, a restored schedule's backlog so far).
    pub(crate) fn behind_for_snapshot(&self, now_ms: u64) -> u64 {
        match (self.start, self.resume) {
            (Some(s), _) => self.behind_at(s.elapsed()),
            (None, Some((behind, at_ms))) => backlog(behind, at_ms, now_ms, self.rows_per_second),
            (None, None) => 0,
        }
    }

    /// [`Throttle::behind_for_snapshot`] now.
    pub(crate) fn snapshot_now(&self) -> (u64, u64) {
        let now = wall_ms();
        (self.behind_for_snapshot(now), now)
    }

    /// How many rows (at most `max`) may be produced now. When none is due it
    /// sleeps until the next one is (at most 100 ms) and returns 0, "ahead of
    /// schedule, poll again": the caller reports that poll as idle, so the time
    /// a rate-limited source waits for its schedule never counts as busy.
    pub(crate) fn acquire(&mut self, max: usize) -> usize {
        let start = match self.start {
            Some(s) => s,
            None => {
                self.begin(wall_ms());
                *self.start.insert(Instant::now())
            }
        };
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
    /// its schedule. Before its first poll, 0, or a restored schedule's backlog.
    pub(crate) fn behind(&self) -> u64 {
        self.behind_for_snapshot(wall_ms())
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
    fn a_restored_schedule_is_behind_by_its_snapshot_backlog_and_the_rate_times_the_downtime() {
        let ms = Duration::from_millis;
        let at = 1_700_000_000_000;
        assert_eq!(backlog(300, Some(at), at + 2_500, 1000.0), 2800, "300 then 2.5 s at 1000/s");
        assert_eq!(backlog(300, None, at + 2_500, 1000.0), 300, "an older snapshot: no downtime counted");
        assert_eq!(backlog(300, Some(at), at - 5_000, 1000.0), 300, "a clock behind the snapshot's");
        // Snapshotted 300 rows behind; the first poll comes 2.5 s later.
        let mut t = Throttle::resumed(1000, 300, Some(at));
        assert_eq!(t.behind_for_snapshot(at + 1_000), 1300, "not started: the backlog so far");
        t.begin(at + 2_500);
        assert_eq!(t.behind_at(ms(0)), 2801, "the backlog and row 0 of the new schedule");
        // It catches up at full speed, a batch per poll, and the schedule goes on.
        assert_eq!(t.grant(ms(0), 2000), 2000);
        assert_eq!(t.behind_at(ms(100)), 901);
        assert_eq!(t.grant(ms(100), 10_000), 901);
        assert_eq!(t.behind_at(ms(100)), 0);
        assert_eq!(t.grant(ms(100), 10_000), 0, "on schedule again");
        // A fresh schedule carries nothing.
        let mut fresh = Throttle::new(1000);
        fresh.begin(at);
        assert_eq!(fresh.behind_at(ms(0)), 1);
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
