//! What the REST server remembers of a job's recent past, so that the web UI
//! draws minutes of figures the moment it opens: a ring of points, one a
//! second, and the sinks' latency histograms over the last minute, from which
//! percentiles of a recent window are taken.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Counts;

/// A bounded queue that forgets its oldest items.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    cap: usize,
    items: VecDeque<T>,
}

impl<T: Clone> Ring<T> {
    pub fn new(cap: usize) -> Ring<T> {
        Ring { cap: cap.max(1), items: VecDeque::with_capacity(cap.max(1)) }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    /// Oldest first.
    pub fn to_vec(&self) -> Vec<T> {
        self.items.iter().cloned().collect()
    }
}

/// One reading of every sink's histograms: per vertex, (processing latency,
/// event-time lag), merged over its subtasks; `None` at vertices without a sink.
pub type SinkReading = Vec<Option<(Counts, Counts)>>;

/// Cumulative sink histograms read every second over the last [`LatencyWindow::span`].
#[derive(Debug)]
pub struct LatencyWindow {
    span: Duration,
    readings: VecDeque<(Instant, SinkReading)>,
}

impl LatencyWindow {
    pub fn new(span: Duration) -> LatencyWindow {
        LatencyWindow { span, readings: VecDeque::new() }
    }

    /// Adds a reading taken at `at`, forgetting those older than the span
    /// (the oldest one within it is kept as the window's base).
    pub fn push(&mut self, at: Instant, reading: SinkReading) {
        self.readings.push_back((at, reading));
        while self.readings.len() > 2 && self.readings.get(1).is_some_and(|(t, _)| at.duration_since(*t) >= self.span) {
            self.readings.pop_front();
        }
    }

    /// What vertex `v`'s sink counted over the last `within` (at most the span):
    /// the newest reading minus the oldest one at most `within` old.
    pub fn recent(&self, v: usize, within: Duration) -> Option<(Counts, Counts)> {
        let (now, newest) = self.readings.back()?;
        let (newest_p, newest_e) = newest.get(v)?.as_ref()?;
        let base = self.readings.iter().find(|(t, _)| now.duration_since(*t) <= within).map(|(_, r)| r);
        match base.and_then(|r| r.get(v)).and_then(|x| x.as_ref()) {
            Some((p, e)) => Some((newest_p.since(p), newest_e.since(e))),
            None => Some((newest_p.clone(), newest_e.clone())),
        }
    }

    /// Since the start: the newest reading.
    pub fn total(&self, v: usize) -> Option<(Counts, Counts)> {
        self.readings.back()?.1.get(v)?.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(values_ms: &[u64]) -> SinkReading {
        let mut c = Counts::default();
        for v in values_ms {
            c.add(v * 1000);
        }
        vec![None, Some((c, Counts::default()))]
    }

    #[test]
    fn a_ring_keeps_the_newest_items() {
        let mut r = Ring::new(3);
        for i in 0..5 {
            r.push(i);
        }
        assert_eq!(r.to_vec(), vec![2, 3, 4]);
    }

    #[test]
    fn the_window_reports_what_grew_within_it() {
        let t0 = Instant::now();
        let mut w = LatencyWindow::new(Duration::from_secs(60));
        w.push(t0, reading(&[1000; 10]));
        w.push(t0 + Duration::from_secs(30), reading(&[1000; 10]));
        // Ten more values of 10 ms, 61 s after the start: the first reading leaves the window.
        let mut later: Vec<u64> = vec![1000; 10];
        later.extend([10; 10]);
        w.push(t0 + Duration::from_secs(61), reading(&later));
        let (p, _) = w.recent(1, Duration::from_secs(60)).unwrap();
        assert_eq!(p.total(), 10, "only what was counted within the last minute");
        assert!(p.quantile_ms(0.99).unwrap() < 20.0);
        assert_eq!(w.total(1).unwrap().0.total(), 20);
        assert!(w.recent(0, Duration::from_secs(10)).is_none(), "no sink at vertex 0");
        // Within 10 s there is no older reading than the newest: nothing grew.
        assert_eq!(w.recent(1, Duration::from_secs(10)).unwrap().0.total(), 0);
    }
}
