//! A latency histogram that subtask threads write without locks: fixed
//! buckets on a 1-1.25-1.5-2-2.5-3-4-5-6-8 scale per decade, from 100 µs to
//! 800 s (larger values are counted, and reported as 800 s), in atomics. Workers ship the cumulative counts to the
//! coordinator like every other counter; the REST server takes quantiles from
//! the difference of two readings, and Prometheus gets a subset of the bounds
//! (1-2-5 per decade) as a standard histogram.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Steps of one decade, in tenths: 1, 1.25, 1.5, ... 8.
const STEPS: [u64; 10] = [100, 125, 150, 200, 250, 300, 400, 500, 600, 800];
/// Decades covered: bounds from 10^2 µs (100 µs) to 8 × 10^8 µs (800 s).
const DECADES: u32 = 7;
/// Finite buckets; one more counts everything above the last bound.
pub const FINITE: usize = STEPS.len() * DECADES as usize;
pub const BUCKETS: usize = FINITE + 1;

/// The upper bound of bucket `i`, in microseconds (`u64::MAX` for the last).
pub fn upper_us(i: usize) -> u64 {
    if i >= FINITE {
        return u64::MAX;
    }
    // 10^(decade + 2) × step / 100.
    10u64.pow((i / STEPS.len()) as u32) * STEPS[i % STEPS.len()]
}

/// The bucket a value falls into: the first whose upper bound is at least `us`.
pub fn bucket_of(us: u64) -> usize {
    // At most 70 comparisons, in a binary search over monotone bounds.
    let (mut lo, mut hi) = (0usize, FINITE);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if upper_us(mid) >= us { hi = mid } else { lo = mid + 1 }
    }
    lo
}

/// Whether `n` is 1, 2 or 5 times a power of ten.
fn is_1_2_5(n: u64) -> bool {
    let decade = 10u64.pow(n.ilog10());
    n.is_multiple_of(decade) && matches!(n / decade, 1 | 2 | 5)
}

/// Cumulative counts and the sum of the values (µs).
#[derive(Debug)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: std::array::from_fn(|_| AtomicU64::new(0)), sum_us: AtomicU64::new(0) }
    }
}

impl Histogram {
    pub fn record(&self, us: u64) {
        self.counts[bucket_of(us)].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Adds a batch of values counted locally first (one atomic add per bucket used).
    pub fn record_all(&self, local: &Counts) {
        for (i, n) in local.counts.iter().enumerate() {
            if *n > 0 {
                self.counts[i].fetch_add(*n, Relaxed);
            }
        }
        self.sum_us.fetch_add(local.sum_us, Relaxed);
    }

    pub fn read(&self) -> Counts {
        Counts { counts: self.counts.iter().map(|c| c.load(Relaxed)).collect(), sum_us: self.sum_us.load(Relaxed) }
    }

    /// Adds what a worker counted since its previous report (`before`).
    pub fn add_growth(&self, now: &Counts, before: Option<&Counts>) {
        for (i, c) in self.counts.iter().enumerate() {
            let was = before.and_then(|b| b.counts.get(i)).copied().unwrap_or(0);
            c.fetch_add(now.counts.get(i).copied().unwrap_or(0).saturating_sub(was), Relaxed);
        }
        self.sum_us.fetch_add(now.sum_us.saturating_sub(before.map_or(0, |b| b.sum_us)), Relaxed);
    }
}

/// A reading of a [`Histogram`], or a local tally: plain numbers, mergeable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub counts: Vec<u64>,
    pub sum_us: u64,
}

impl Default for Counts {
    fn default() -> Self {
        Counts { counts: vec![0; BUCKETS], sum_us: 0 }
    }
}

impl Counts {
    pub fn add(&mut self, us: u64) {
        self.counts[bucket_of(us)] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds another reading (of another subtask).
    pub fn merge(&mut self, other: &Counts) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    /// What was counted between an earlier reading and this one.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            counts: self.counts.iter().zip(&earlier.counts).map(|(a, b)| a.saturating_sub(*b)).collect(),
            sum_us: self.sum_us.saturating_sub(earlier.sum_us),
        }
    }

    /// The `q` quantile (0 < q ≤ 1) in milliseconds, interpolated linearly
    /// within its bucket as Prometheus's `histogram_quantile` does; `None`
    /// without values. Values above the last bound report that bound.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut seen = 0u64;
        for (i, n) in self.counts.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            if (seen + n) as f64 >= rank {
                let lower = if i == 0 { 0 } else { upper_us(i - 1) } as f64;
                if i >= FINITE {
                    return Some(lower / 1000.0);
                }
                let upper = upper_us(i) as f64;
                let within = (rank - seen as f64) / *n as f64;
                return Some((lower + (upper - lower) * within) / 1000.0);
            }
            seen += n;
        }
        None
    }

    /// Prometheus buckets: `(le in seconds, cumulative count)` at the 1-2-5
    /// bounds from 1 ms to 100 s, then `+Inf`.
    pub fn prometheus_buckets(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut cumulative = 0u64;
        for (i, n) in self.counts.iter().enumerate() {
            cumulative += n;
            let upper = upper_us(i);
            if i < FINITE && (1_000..=100_000_000).contains(&upper) && is_1_2_5(upper) {
                out.push((format!("{}", upper as f64 / 1e6), cumulative));
            }
        }
        out.push(("+Inf".into(), cumulative));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_rise_and_buckets_hold_their_values() {
        assert_eq!((upper_us(0), upper_us(9), upper_us(10), upper_us(FINITE - 1)), (100, 800, 1000, 800_000_000));
        for i in 1..FINITE {
            assert!(upper_us(i) > upper_us(i - 1));
        }
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(100), 0);
        assert_eq!(bucket_of(101), 1);
        assert_eq!(bucket_of(2_000_000), 43); // 2 s is a bound: 10^4 × 200 µs
        assert_eq!(upper_us(43), 2_000_000);
        assert_eq!(bucket_of(u64::MAX), FINITE);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket() {
        let mut c = Counts::default();
        assert_eq!(c.quantile_ms(0.5), None);
        // 1,000 values spread evenly over 1..=1000 ms.
        for ms in 1..=1000u64 {
            c.add(ms * 1000);
        }
        let p50 = c.quantile_ms(0.5).unwrap();
        let p99 = c.quantile_ms(0.99).unwrap();
        // Buckets are at most 25 % wide, so the estimates are within that of the truth.
        assert!((400.0..=625.0).contains(&p50), "p50 {p50}");
        assert!((800.0..=1000.0).contains(&p99), "p99 {p99}");
        assert!(c.quantile_ms(0.999).unwrap() >= p99);
        let h = Histogram::default();
        h.record_all(&c);
        assert_eq!(h.read(), c);
        assert_eq!(h.read().sum_us, (1..=1000u64).sum::<u64>() * 1000);
    }

    #[test]
    fn readings_merge_and_subtract() {
        let h = Histogram::default();
        h.record(5_000);
        let first = h.read();
        h.record(50_000);
        h.record(50_000);
        let growth = h.read().since(&first);
        assert_eq!(growth.total(), 2);
        assert_eq!(growth.quantile_ms(1.0).unwrap().round(), 50.0);
        let mut merged = first.clone();
        merged.merge(&growth);
        assert_eq!(merged, h.read());
        // The coordinator adds only what grew since the worker's previous report.
        let coord = Histogram::default();
        coord.add_growth(&first, None);
        coord.add_growth(&h.read(), Some(&first));
        assert_eq!(coord.read(), h.read());
    }

    #[test]
    fn prometheus_buckets_are_cumulative_at_1_2_5_bounds() {
        let mut c = Counts::default();
        c.add(1_500); // 1.5 ms
        c.add(3_000_000); // 3 s
        c.add(u64::MAX / 4); // beyond every bound
        let b = c.prometheus_buckets();
        let les: Vec<&str> = b.iter().map(|(le, _)| le.as_str()).collect();
        assert_eq!(les.first(), Some(&"0.001"));
        assert!(les.contains(&"2") && les.contains(&"0.005") && les.contains(&"100"), "{les:?}");
        assert_eq!(b.len(), 3 * 5 + 1 + 1, "1-2-5 over 5 decades, 100, +Inf: {les:?}");
        let at = |le: &str| b.iter().find(|(l, _)| l == le).unwrap().1;
        assert_eq!((at("0.001"), at("0.002"), at("2"), at("5"), at("+Inf")), (0, 1, 1, 2, 3));
    }
}
