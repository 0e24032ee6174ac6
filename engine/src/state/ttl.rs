//! Flink's state TTL (`table.exec.state.ttl`) for keyed state: processing
//! time, the timestamp updated on create and write (`OnCreateAndWrite`), and
//! expired state never returned (`NeverReturnExpired`).
//!
//! Invariants:
//! - a value carries the processing time it was last written ([`Stamped`]);
//!   an operator that reads a key first asks [`Ttl::take_expired`], so an
//!   expired value is never used, as if the key were new;
//! - keys that are never touched again are removed by [`Ttl::sweep`], which
//!   walks the whole state at most once per TTL, so the state is bounded by
//!   the keys written within about two TTLs;
//! - a zero TTL keeps state forever and costs nothing.

use std::time::Duration;

use super::codec::{Reader, Writer};
use super::keyed::{KeyedState, StateValue};
use crate::error::OpError;

/// A value and the processing time (epoch ms) it was last written.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped<V> {
    pub written: i64,
    pub value: V,
}

impl<V: StateValue> StateValue for Stamped<V> {
    fn encode(&self, w: &mut Writer) {
        w.i64(self.written);
        self.value.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError> {
        let written = r.i64()?;
        Ok(Stamped { written, value: V::decode(r)? })
    }

    fn heap_size(&self) -> Option<usize> {
        self.value.heap_size()
    }
}

/// Processing time in epoch ms; tests pass a fixed one.
pub type Clock = fn() -> i64;

fn wall_clock() -> i64 {
    crate::job::now_ms() as i64
}

/// The TTL of one operator's keyed state.
#[derive(Debug, Clone, Copy)]
pub struct Ttl {
    /// In ms; 0: state never expires.
    ms: i64,
    clock: Clock,
    /// When the whole state is next swept.
    next_sweep: i64,
}

impl Default for Ttl {
    fn default() -> Self {
        Ttl { ms: 0, clock: wall_clock, next_sweep: 0 }
    }
}

impl Ttl {
    pub fn new(ttl: Duration) -> Self {
        Ttl { ms: ttl.as_millis().min(i64::MAX as u128) as i64, ..Ttl::default() }
    }

    /// The same TTL measured with another clock (tests).
    pub fn with_clock(self, clock: Clock) -> Self {
        Ttl { clock, ..self }
    }

    pub fn enabled(&self) -> bool {
        self.ms > 0
    }

    /// The processing time now; 0 without a TTL (nothing reads it then).
    pub fn now(&self) -> i64 {
        if self.enabled() { (self.clock)() } else { 0 }
    }

    pub fn expired(&self, written: i64, now: i64) -> bool {
        self.enabled() && now.saturating_sub(written) >= self.ms
    }

    /// Removes `key` if its value has expired at `now`; returns that value.
    pub fn take_expired<V: StateValue>(&self, state: &mut KeyedState<Stamped<V>>, key: &[u8], now: i64) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        if state.get(key).is_some_and(|s| self.expired(s.written, now)) {
            return state.remove(key).map(|s| s.value);
        }
        None
    }

    /// Whether a sweep of the whole state is due at `now` (at most once per
    /// TTL); if so, the next one is a TTL later.
    pub fn sweep_due(&mut self, now: i64) -> bool {
        if !self.enabled() || now < self.next_sweep {
            return false;
        }
        self.next_sweep = now.saturating_add(self.ms);
        true
    }

    /// Removes every expired key, at most once per TTL; returns the keys
    /// removed, with their values.
    pub fn sweep<V: StateValue>(&mut self, state: &mut KeyedState<Stamped<V>>, now: i64) -> Vec<(Vec<u8>, V)> {
        if !self.sweep_due(now) {
            return Vec::new();
        }
        let expired = state.keys_where(|s| self.expired(s.written, now));
        expired.into_iter().filter_map(|k| state.remove(&k).map(|s| (k.into_vec(), s.value))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expire_a_ttl_after_their_last_write_and_sweeps_run_once_per_ttl() {
        let mut ttl = Ttl::new(Duration::from_millis(100)).with_clock(|| 0);
        let mut state: KeyedState<Stamped<i64>> = KeyedState::default();
        state.insert(b"a", Stamped { written: 0, value: 1 });
        state.insert(b"b", Stamped { written: 50, value: 2 });
        assert_eq!(ttl.take_expired(&mut state, b"a", 99), None);
        assert_eq!(ttl.take_expired(&mut state, b"a", 100), Some(1), "100 ms after the write, the value is gone");
        assert!(state.get(b"a").is_none());
        state.insert(b"a", Stamped { written: 150, value: 3 });
        // The first sweep finds nothing expired; the next may run a TTL later.
        assert!(ttl.sweep(&mut state, 120).is_empty());
        assert!(ttl.sweep(&mut state, 200).is_empty(), "swept at 120: the next sweep is due at 220");
        assert_eq!(ttl.sweep(&mut state, 220), vec![(b"b".to_vec(), 2)]);
        assert_eq!(state.len(), 1);
    }

    #[test]
    fn without_a_ttl_nothing_expires() {
        let mut ttl = Ttl::default().with_clock(|| i64::MAX);
        let mut state: KeyedState<Stamped<i64>> = KeyedState::default();
        state.insert(b"a", Stamped { written: 0, value: 1 });
        assert_eq!(ttl.now(), 0);
        assert_eq!(ttl.take_expired(&mut state, b"a", i64::MAX), None);
        assert!(ttl.sweep(&mut state, i64::MAX).is_empty());
        assert_eq!(state.len(), 1);
    }

    #[test]
    fn a_stamped_value_round_trips() {
        let s = Stamped { written: 42, value: 7i64 };
        let mut w = Writer::new();
        s.encode(&mut w);
        assert_eq!(Stamped::<i64>::decode(&mut Reader::new(&w.buf)).ok(), Some(s));
    }
}
