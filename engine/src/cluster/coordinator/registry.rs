//! The registered workers, as the coordinator knows them: which are alive,
//! and when each was last heard from. It holds each worker's connection as
//! an opaque handle `C`, so that it is testable without sockets.
//!
//! Invariants: a worker's index is its place in the order of registration
//! and is never reused; a worker that is lost or expired stays lost (it
//! registers again under a new index); a worker that has been silent for
//! longer than `heartbeat.timeout` is expired, and its connection is handed
//! back to be shut down.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::cluster::{PROTOCOL, ToCoordinator};

/// What a worker says about itself when it registers.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Registration {
    pub name: String,
    pub slots: usize,
    pub data_addr: String,
    /// The newest coordinator generation the worker has served.
    pub generation_seen: u64,
}

/// Checks a worker's first frame (or why it could not be read): its
/// registration, or the reason to refuse it.
pub(super) fn admit(first: Result<ToCoordinator, String>) -> Result<Registration, String> {
    match first {
        Ok(ToCoordinator::Register { protocol, name, slots, data_addr, generation_seen, secret }) => {
            if protocol != PROTOCOL {
                return Err(format!("protocol {protocol} is not this coordinator's {PROTOCOL}: run the same version"));
            }
            if !crate::cluster::admits(secret.as_deref()) {
                return Err(format!(
                    "worker {name} does not hold this job's cluster secret: start it with the coordinator's --cluster-secret-file (a worker of another job cannot register)"
                ));
            }
            Ok(Registration { name, slots, data_addr, generation_seen })
        }
        Ok(other) => Err(format!("the first message must be a registration, not {other:?}")),
        Err(e) => Err(format!("unreadable registration ({e}); is this a Sluice worker of the same version?")),
    }
}

/// A live worker, as placement needs it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LiveWorker {
    pub index: usize,
    pub slots: usize,
    pub data_addr: String,
    pub name: String,
}

struct Entry<C> {
    registration: Registration,
    conn: C,
    alive: bool,
    last_seen: Instant,
}

/// Every worker that registered with this coordinator.
pub(super) struct Registry<C> {
    workers: Vec<Entry<C>>,
}

impl<C> Default for Registry<C> {
    fn default() -> Self {
        Registry { workers: Vec::new() }
    }
}

impl<C: Clone> Registry<C> {
    /// Adds a worker; returns its index.
    pub(super) fn register(&mut self, registration: Registration, conn: C, now: Instant) -> usize {
        self.workers.push(Entry { registration, conn, alive: true, last_seen: now });
        self.workers.len() - 1
    }

    /// Worker `w` sent a frame. False if it had already been expired: the
    /// attempt has moved on without it, and its frames no longer count.
    pub(super) fn heard(&mut self, w: usize, now: Instant) -> bool {
        match self.workers.get_mut(w) {
            Some(x) if !x.alive => false,
            Some(x) => {
                x.last_seen = now;
                true
            }
            None => true,
        }
    }

    /// Worker `w`'s connection broke.
    pub(super) fn lost(&mut self, w: usize) {
        if let Some(x) = self.workers.get_mut(w) {
            x.alive = false;
        }
    }

    /// Marks the workers silent for longer than `timeout` as lost; returns
    /// their connections, to be shut down.
    pub(super) fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<C> {
        let mut expired = Vec::new();
        for (i, x) in self.workers.iter_mut().enumerate() {
            if x.alive && now.saturating_duration_since(x.last_seen) > timeout {
                tracing::warn!("worker {i} ({}) missed its heartbeats", x.registration.name);
                x.alive = false;
                expired.push(x.conn.clone());
            }
        }
        expired
    }

    /// The live workers, in the order they registered.
    pub(super) fn alive(&self) -> Vec<LiveWorker> {
        let live = self.workers.iter().enumerate().filter(|(_, x)| x.alive);
        live.map(|(index, x)| LiveWorker {
            index,
            slots: x.registration.slots,
            data_addr: x.registration.data_addr.clone(),
            name: x.registration.name.clone(),
        })
        .collect()
    }

    /// The indexes of the live workers.
    pub(super) fn alive_indexes(&self) -> HashSet<usize> {
        self.workers.iter().enumerate().filter(|(_, x)| x.alive).map(|(i, _)| i).collect()
    }

    /// The connection of worker `w`, if it is alive.
    pub(super) fn conn(&self, w: usize) -> Option<C> {
        self.workers.get(w).filter(|x| x.alive).map(|x| x.conn.clone())
    }

    /// The connections of the live workers.
    pub(super) fn conns(&self) -> Vec<C> {
        self.workers.iter().filter(|x| x.alive).map(|x| x.conn.clone()).collect()
    }

    /// Worker `w`'s name for messages.
    pub(super) fn name(&self, w: usize) -> String {
        self.workers.get(w).map(|x| x.registration.name.clone()).unwrap_or_else(|| format!("#{w}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(name: &str, slots: usize) -> Registration {
        Registration { name: name.into(), slots, data_addr: format!("{name}:7000"), generation_seen: 0 }
    }

    #[test]
    fn a_silent_worker_expires_after_the_heartbeat_timeout_and_its_frames_stop_counting() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(10);
        let mut r = Registry::default();
        let a = r.register(worker("a", 2), "conn a", t0);
        let b = r.register(worker("b", 1), "conn b", t0);
        assert!(r.expire(t0 + timeout, timeout).is_empty(), "expired at the timeout, not after it");
        // `b` is heard from at 6 s; `a` is silent.
        assert!(r.heard(b, t0 + Duration::from_secs(6)));
        assert_eq!(r.expire(t0 + Duration::from_secs(11), timeout), ["conn a"]);
        assert_eq!(r.alive().iter().map(|w| w.index).collect::<Vec<_>>(), [b]);
        assert_eq!(r.alive_indexes(), HashSet::from([b]));
        assert_eq!(r.conn(a), None);
        assert!(!r.heard(a, t0 + Duration::from_secs(12)), "an expired worker came back");
        assert!(r.expire(t0 + Duration::from_secs(12), timeout).is_empty(), "expired twice");
        assert_eq!(r.expire(t0 + Duration::from_secs(17), timeout), ["conn b"]);
        assert!(r.alive().is_empty() && r.conns().is_empty());
        assert_eq!(r.name(a), "a");
    }

    #[test]
    fn a_lost_worker_stays_lost_and_a_new_registration_gets_a_new_index() {
        let t0 = Instant::now();
        let mut r = Registry::default();
        let a = r.register(worker("a", 2), 1, t0);
        r.lost(a);
        let again = r.register(worker("a", 2), 2, t0);
        assert_ne!(a, again);
        let live = r.alive();
        assert_eq!(live, [LiveWorker { index: again, slots: 2, data_addr: "a:7000".into(), name: "a".into() }]);
        assert_eq!((r.conn(a), r.conn(again)), (None, Some(2)));
    }

    #[test]
    fn a_registration_of_another_protocol_or_anything_else_is_refused_with_the_reason() {
        let register = |protocol| ToCoordinator::Register {
            protocol,
            name: "w".into(),
            slots: 1,
            data_addr: "w:7000".into(),
            generation_seen: 3,
            secret: None,
        };
        let ok = admit(Ok(register(PROTOCOL))).unwrap();
        assert_eq!((ok.slots, ok.generation_seen), (1, 3));
        let e = admit(Ok(register(999))).unwrap_err();
        assert!(e.starts_with("protocol 999 is not this coordinator's"), "{e}");
        let e = admit(Ok(ToCoordinator::Heartbeat)).unwrap_err();
        assert!(e.contains("must be a registration, not Heartbeat"), "{e}");
        let e = admit(Err("frame of 300 bytes".into())).unwrap_err();
        assert!(e.starts_with("unreadable registration (frame of 300 bytes)"), "{e}");
    }
}
