//! Wall-clock rate limiting for generated sources.
//!
//! A rate-limited generator stands for an upstream that produces at that rate
//! (a Kafka topic written at `rows-per-second`): the rows due at schedule time
//! `t` are the integral of the [`Rate`] from the schedule's start to `t`, so
//! row `k` of a constant rate exists from `k / rate` seconds on. What the
//! reader has not yet taken of the rows that exist is its lag
//! ([`Throttle::behind`]): when backpressure slows the reader, the lag grows,
//! and the reader catches up at full speed once it can, as it would on a
//! backlog.
//!
//! The schedule outlives a restart: a snapshot records the rows the reader
//! is behind, the wall time (unix ms) and the schedule's origin (the unix ms
//! of the source's first start). A restored reader keeps the origin, so a
//! rate that changes by schedule time ([`Rate::schedule`]) goes on where it
//! was however often the job is restored or rescaled, and it starts that many
//! rows behind plus the rows its rate made due while the job was down (the
//! integral of the rate from the snapshot to the first poll), as an upstream
//! that kept producing would have them waiting. A bounded generator's lag is
//! capped by the rows it has left (by its reader).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest a reader sleeps inside one poll; past this it returns `Idle`.
const MAX_SLEEP: Duration = Duration::from_millis(100);

/// Rows per second by schedule time: steps `(from, rate)` in seconds, the
/// first from the start, each holding until the next and the last for ever.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rate {
    steps: Vec<(f64, f64)>,
}

impl Rate {
    pub(crate) fn constant(rows_per_second: u64) -> Rate {
        Rate { steps: vec![(0.0, rows_per_second.max(1) as f64)] }
    }

    /// Steps of `(from, rows per second)`, as the option parser checked them:
    /// the first from 0, times increasing, rates at least 1.
    pub(crate) fn schedule(steps: &[(Duration, u64)]) -> Rate {
        let mut steps: Vec<(f64, f64)> = steps.iter().map(|(at, r)| (at.as_secs_f64(), (*r).max(1) as f64)).collect();
        if steps.is_empty() {
            steps.push((0.0, 1.0));
        }
        Rate { steps }
    }

    /// The same schedule with each step's rate mapped (a subtask's share).
    pub(crate) fn map(&self, f: impl Fn(u64) -> u64) -> Rate {
        Rate { steps: self.steps.iter().map(|&(at, r)| (at, f(r as u64).max(1) as f64)).collect() }
    }

    /// Rows per second at schedule time `t` (seconds).
    pub(crate) fn at(&self, t: f64) -> f64 {
        self.steps.iter().rev().find(|(from, _)| *from <= t).or(self.steps.first()).map_or(1.0, |s| s.1)
    }

    /// The rows due from schedule time `from` over `len` seconds: the integral
    /// of the rate (the first step also holds before 0). A step that covers
    /// the whole span counts exactly `len × rate`, with no rounding of `from + len`.
    pub(crate) fn rows(&self, from: f64, len: f64) -> f64 {
        if len <= 0.0 {
            return 0.0;
        }
        let to = from + len;
        let mut rows = 0.0;
        for (k, &(start, rate)) in self.steps.iter().enumerate() {
            let start = if k == 0 { f64::NEG_INFINITY } else { start };
            let end = self.steps.get(k + 1).map_or(f64::INFINITY, |s| s.0);
            if start <= from && to <= end {
                return len * rate;
            }
            let span = to.min(end) - from.max(start);
            if span > 0.0 {
                rows += span * rate;
            }
        }
        rows
    }
}

#[derive(Debug)]
pub(crate) struct Throttle {
    rate: Rate,
    /// The schedule's origin (unix ms): the source's first start, restored.
    origin_ms: Option<u64>,
    /// Schedule time (s) at `start`.
    offset: f64,
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

/// Schedule time (s) at unix ms `at` of a schedule started at `origin_ms`.
fn schedule_time(at: u64, origin_ms: u64) -> f64 {
    (at as f64 - origin_ms as f64) / 1000.0
}

/// The rows a restored schedule is behind at `now_ms`: those it was behind
/// at the snapshot (`at_ms`) and those `rate` made due since, its schedule
/// started at `origin_ms`. No snapshot time (an older snapshot): no downtime
/// is counted. A clock behind the snapshot's counts none either.
pub(crate) fn backlog(behind: u64, at_ms: Option<u64>, now_ms: u64, rate: &Rate, origin_ms: u64) -> u64 {
    let during =
        at_ms.map_or(0.0, |at| rate.rows(schedule_time(at, origin_ms), now_ms.saturating_sub(at) as f64 / 1000.0));
    behind.saturating_add(during.floor() as u64)
}

impl Throttle {
    pub(crate) fn new(rate: Rate) -> Self {
        Throttle { rate, origin_ms: None, offset: 0.0, start: None, granted: 0, carried: 0, resume: None }
    }

    /// A schedule restored from a snapshot taken at `at_ms` (unix ms; `None`
    /// when the snapshot did not record it), `behind` rows behind then, of a
    /// schedule that started at `origin_ms` (`None` from a snapshot before
    /// origins were recorded: the schedule counts from the snapshot, or from
    /// the first poll without one).
    pub(crate) fn resumed(rate: Rate, behind: u64, at_ms: Option<u64>, origin_ms: Option<u64>) -> Self {
        Throttle { resume: Some((behind, at_ms)), origin_ms: origin_ms.or(at_ms), ..Throttle::new(rate) }
    }

    /// Rows due `elapsed` after the start: the carried backlog, and the rows
    /// of the schedule since the start, the first of them at once.
    fn due(&self, elapsed: Duration) -> u64 {
        self.rate.rows(self.offset, elapsed.as_secs_f64()).floor() as u64 + 1 + self.carried
    }

    /// Starts the schedule at `now_ms` (unix ms): a restored one carries its backlog.
    fn begin(&mut self, now_ms: u64) {
        let origin = *self.origin_ms.get_or_insert(now_ms);
        self.offset = schedule_time(now_ms, origin).max(0.0);
        if let Some((behind, at_ms)) = self.resume.take() {
            self.carried = backlog(behind, at_ms, now_ms, &self.rate, origin);
        }
    }

    /// What a snapshot at `now_ms` records: the rows behind now (before the
    /// first poll, a restored schedule's backlog so far).
    pub(crate) fn behind_for_snapshot(&self, now_ms: u64) -> u64 {
        match (self.start, self.resume) {
            (Some(s), _) => self.behind_at(s.elapsed()),
            (None, Some((behind, at_ms))) => {
                backlog(behind, at_ms, now_ms, &self.rate, self.origin_ms.unwrap_or(now_ms))
            }
            (None, None) => 0,
        }
    }

    /// [`Throttle::behind_for_snapshot`] now, the time, and the schedule's
    /// origin (`None` before a fresh schedule's first poll).
    pub(crate) fn snapshot_now(&self) -> (u64, u64, Option<u64>) {
        let now = wall_ms();
        (self.behind_for_snapshot(now), now, self.origin_ms)
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

    /// From `elapsed` to when the next row not yet granted is due, at the
    /// rate of the moment (a step of the rate inside the wait makes it
    /// inexact, which the caller's next poll corrects).
    fn until_next(&self, elapsed: Duration) -> Duration {
        let e = elapsed.as_secs_f64();
        let short = self.granted.saturating_sub(self.carried) as f64 - self.rate.rows(self.offset, e);
        Duration::from_secs_f64((short / self.rate.at(self.offset + e)).max(0.0))
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
        let mut t = Throttle::new(Rate::constant(1000));
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
        let mut t = Throttle::new(Rate::constant(1000));
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
        assert_eq!(backlog(300, Some(at), at + 2_500, &Rate::constant(1000), at), 2800, "300 then 2.5 s at 1000/s");
        assert_eq!(
            backlog(300, None, at + 2_500, &Rate::constant(1000), at),
            300,
            "an older snapshot: no downtime counted"
        );
        assert_eq!(backlog(300, Some(at), at - 5_000, &Rate::constant(1000), at), 300, "a clock behind the snapshot's");
        // Snapshotted 300 rows behind; the first poll comes 2.5 s later.
        let mut t = Throttle::resumed(Rate::constant(1000), 300, Some(at), Some(at - 60_000));
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
        let mut fresh = Throttle::new(Rate::constant(1000));
        fresh.begin(at);
        assert_eq!(fresh.behind_at(ms(0)), 1);
    }

    #[test]
    fn a_schedule_makes_due_the_integral_of_its_rate() {
        let s = Rate::schedule(&[(Duration::ZERO, 1750), (Duration::from_secs(60), 300)]);
        assert_eq!((s.at(0.0), s.at(59.9), s.at(60.0), s.at(1e6)), (1750.0, 1750.0, 300.0, 300.0));
        assert_eq!(s.rows(0.0, 60.0), 105_000.0);
        assert_eq!(s.rows(0.0, 70.0), 108_000.0, "60 s at 1750, then 10 s at 300");
        assert_eq!(s.rows(50.0, 20.0), 20_500.0, "across the step");
        assert_eq!(s.rows(61.0, 2.0), 600.0);
        assert_eq!(s.rows(-5.0, 10.0), 17_500.0, "the first step also holds before the start");
        assert_eq!(s.rows(10.0, 0.0), 0.0);
        assert_eq!(s.rows(10.0, -3.0), 0.0);
        // A subtask's share maps every step, and never to 0.
        let half = s.map(|r| r / 2);
        assert_eq!(half.rows(0.0, 70.0), 60.0 * 875.0 + 10.0 * 150.0);
        assert_eq!(s.map(|_| 0).at(0.0), 1.0);
        // A constant rate counts exactly `len × rate` from any start.
        let c = Rate::constant(3);
        assert_eq!(c.rows(1e9 + 0.1, 0.2), 0.2 * 3.0);
    }

    #[test]
    fn a_scheduled_throttle_falls_behind_by_the_rows_of_the_schedule() {
        let ms = Duration::from_millis;
        let s = Rate::schedule(&[(Duration::ZERO, 1000), (Duration::from_secs(10), 100)]);
        let origin = 1_700_000_000_000;
        let mut t = Throttle::new(s.clone());
        t.begin(origin);
        assert_eq!(t.grant(ms(0), 10), 1);
        // Held back for 12 s: 10 s at 1000/s and 2 s at 100/s are due.
        assert_eq!(t.behind_at(ms(12_000)), 10_200);
        assert_eq!(t.grant(ms(12_000), 100_000), 10_200);
        assert_eq!(t.grant(ms(12_005), 100_000), 0, "on schedule, at 100/s now");
        assert_eq!(t.until_next(ms(12_005)), ms(5));
        // Restored mid-schedule (a rescale): the origin is kept, so the rate does
        // not start over. Snapshotted at 8 s 500 rows behind, the first poll at 13 s:
        // 2 s at 1000/s and 3 s at 100/s more are due.
        let mut r = Throttle::resumed(s, 500, Some(origin + 8_000), Some(origin));
        assert_eq!(r.behind_for_snapshot(origin + 13_000), 2_800);
        r.begin(origin + 13_000);
        assert_eq!(r.behind_at(ms(0)), 2_801);
        assert_eq!(r.behind_at(ms(1_000)), 2_901, "at 100/s, the rate of schedule time 14 s");
        assert_eq!(r.snapshot_now().2, Some(origin));
    }

    #[test]
    fn behind_is_zero_before_the_first_poll() {
        let mut t = Throttle::new(Rate::constant(1_000_000_000));
        assert_eq!(t.behind(), 0);
        t.acquire(1);
        std::thread::sleep(Duration::from_millis(2));
        assert!(t.behind() > 1000, "{}", t.behind());
    }
}
