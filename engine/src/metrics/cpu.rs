//! CPU time of a subtask's thread, for the cost per event: the thread reads its
//! own clock (`CLOCK_THREAD_CPUTIME_ID`) at most every 100 ms and adds what it
//! used to its counter, so the reading costs nothing measurable per record.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How often a thread folds its CPU time into its counter.
const EVERY: Duration = Duration::from_millis(100);

/// The CPU time the calling thread has used, in nanoseconds; `None` where the
/// clock cannot be read.
pub fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64))
}

/// One thread's CPU clock, folded into a shared counter.
pub struct CpuClock {
    last_ns: u64,
    last_at: Instant,
}

impl Default for CpuClock {
    fn default() -> Self {
        CpuClock::start()
    }
}

impl CpuClock {
    /// Starts counting from now, on the calling thread.
    pub fn start() -> CpuClock {
        CpuClock { last_ns: thread_cpu_ns().unwrap_or(0), last_at: Instant::now() }
    }

    /// Adds the CPU time used since the last fold, if [`EVERY`] has passed.
    pub fn maybe_fold(&mut self, into: &AtomicU64) {
        if self.last_at.elapsed() >= EVERY {
            self.fold(into);
        }
    }

    /// Adds the CPU time used since the last fold.
    pub fn fold(&mut self, into: &AtomicU64) {
        if let Some(now) = thread_cpu_ns() {
            into.fetch_add(now.saturating_sub(self.last_ns), Relaxed);
            self.last_ns = now;
        }
        self.last_at = Instant::now();
    }
}

/// A subtask thread's clock, folded into its metrics now and then and once
/// more when the loop ends, whichever way it ends.
pub struct SubtaskCpu {
    clock: CpuClock,
    metrics: std::sync::Arc<super::SubtaskMetrics>,
}

impl SubtaskCpu {
    pub fn start(metrics: std::sync::Arc<super::SubtaskMetrics>) -> SubtaskCpu {
        SubtaskCpu { clock: CpuClock::start(), metrics }
    }

    pub fn tick(&mut self) {
        self.clock.maybe_fold(&self.metrics.cpu_ns);
    }
}

impl Drop for SubtaskCpu {
    fn drop(&mut self) {
        self.clock.fold(&self.metrics.cpu_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spins until this thread has run `cpu` (by its own clock), or 10 s pass: on a
    /// loaded machine the thread may get a small share of a core.
    fn spin_for_cpu(cpu: Duration) {
        let (start, t) = (thread_cpu_ns().unwrap(), Instant::now());
        let mut x = 0u64;
        while thread_cpu_ns().unwrap() - start < cpu.as_nanos() as u64 && t.elapsed() < Duration::from_secs(10) {
            for _ in 0..10_000 {
                x = x.wrapping_mul(31).wrapping_add(7);
            }
        }
        std::hint::black_box(x);
    }

    #[test]
    fn a_busy_thread_counts_its_cpu_time_and_a_sleeping_one_does_not() {
        let spent = AtomicU64::new(0);
        let mut clock = CpuClock::start();
        let t = Instant::now();
        spin_for_cpu(Duration::from_millis(60));
        clock.fold(&spent);
        let busy = spent.load(Relaxed);
        assert!(busy >= 60_000_000, "busy loop counted {busy} ns");
        assert!(busy <= t.elapsed().as_nanos() as u64, "more CPU time ({busy} ns) than time passed");
        std::thread::sleep(Duration::from_millis(150));
        clock.fold(&spent);
        let slept = spent.load(Relaxed) - busy;
        assert!(slept < 20_000_000, "a sleep counted {slept} ns of CPU time");
    }

    #[test]
    fn each_thread_has_its_own_clock() {
        let before = thread_cpu_ns().unwrap();
        let other = std::thread::spawn(|| {
            spin_for_cpu(Duration::from_millis(60));
            thread_cpu_ns().unwrap()
        })
        .join()
        .unwrap();
        assert!(other >= 60_000_000, "the spinning thread counted {other} ns");
        assert!(thread_cpu_ns().unwrap() - before < 20_000_000, "this thread was charged for the other's work");
    }
}
