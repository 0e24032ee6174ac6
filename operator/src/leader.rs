//! Leader election on a `coordination.k8s.io/v1` Lease: one replica reconciles,
//! the others wait. The protocol and its timings are client-go's leaderelection:
//!
//! - A candidate takes the Lease when it is free, released, or not renewed for
//!   `leaseDuration` — measured on the candidate's own monotonic clock from when it
//!   *observed* the current record, never by comparing its clock with the holder's.
//! - The leader renews every `retryPeriod`. Every API call of a renewal has a
//!   deadline, and leadership is valid only until `renewDeadline` after the start of
//!   the last successful renewal: once that has passed, [`Leadership::check`] fails
//!   (every write of a reconcile asks it first) and the process exits.
//! - `renewDeadline < leaseDuration`: a leader stops acting at least
//!   `leaseDuration - renewDeadline` before any other candidate may take the Lease,
//!   even if it was paused (SIGSTOP, a long GC-like stall) or its renewal hung —
//!   the monotonic clock keeps running while the process does not.
//! - Updates carry the Lease's resourceVersion, so two candidates never both win.

use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::time::Instant;

use crate::error::Error;

/// The timings of leader election, as client-go's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// How long a Lease that is not renewed stays held (written into the Lease).
    pub lease_duration: Duration,
    /// How long a leader may go without a successful renewal before it stops acting.
    pub renew_deadline: Duration,
    /// How often a leader renews and a candidate retries.
    pub retry_period: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Timings that break the protocol's ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTimings {
    #[error("the renew deadline ({renew_deadline:?}) must be shorter than the lease duration ({lease_duration:?})")]
    RenewDeadline { renew_deadline: Duration, lease_duration: Duration },
    #[error(
        "the retry period ({retry_period:?}) must be positive and shorter than the renew deadline ({renew_deadline:?})"
    )]
    RetryPeriod { retry_period: Duration, renew_deadline: Duration },
}

impl Timings {
    /// Checks the ordering that makes the protocol safe.
    pub fn validate(&self) -> Result<(), InvalidTimings> {
        if self.renew_deadline >= self.lease_duration {
            return Err(InvalidTimings::RenewDeadline {
                renew_deadline: self.renew_deadline,
                lease_duration: self.lease_duration,
            });
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return Err(InvalidTimings::RetryPeriod {
                retry_period: self.retry_period,
                renew_deadline: self.renew_deadline,
            });
        }
        Ok(())
    }
}

/// What a leader does next, given when its last successful renewal started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Renew after this long; the renewal's calls must end by `deadline`.
    After { wait: Duration, deadline: Instant },
    /// The renew deadline has passed: leadership is lost, stop acting.
    Lost,
}

/// The renew-deadline decision. Leadership was won or last renewed by a renewal that
/// *began* at `renewed` (the Lease's renewTime it wrote is no earlier, so no other
/// candidate can take over before `renewed + leaseDuration`); the last attempt, which
/// may have failed, began at `attempted`.
pub fn next_renewal(renewed: Instant, attempted: Instant, now: Instant, t: &Timings) -> Renewal {
    let deadline = renewed + t.renew_deadline;
    if now >= deadline {
        return Renewal::Lost;
    }
    let wait = (attempted + t.retry_period).saturating_duration_since(now).min(deadline - now);
    Renewal::After { wait, deadline }
}

/// Whether a Lease held by someone else may be taken: it was released, or the record
/// observed first at `observed` (on this candidate's clock) has not changed for its
/// `leaseDurationSeconds`.
pub fn expired(holder: &str, lease_seconds: Option<i32>, observed: Instant, now: Instant) -> bool {
    if holder.is_empty() {
        return true;
    }
    let duration = Duration::from_secs(u64::try_from(lease_seconds.unwrap_or(15)).unwrap_or(15));
    now.saturating_duration_since(observed) >= duration
}

/// Whether this process may act as the leader right now: shared by the election
/// loop, which extends it on each renewal, and every reconcile, which asks it before
/// each write.
#[derive(Debug)]
pub struct Leadership {
    /// Until when leadership is valid; `None` when it is not held at all.
    until: Mutex<Option<Instant>>,
    /// Without leader election: always leading.
    always: bool,
}

impl Leadership {
    /// Leadership that must be won and renewed.
    pub fn elected() -> Leadership {
        Leadership { until: Mutex::new(None), always: false }
    }

    /// No leader election (`--leader-election false`): this process always acts.
    pub fn always() -> Leadership {
        Leadership { until: Mutex::new(None), always: true }
    }

    /// Extends leadership to `until` (never shortens it).
    pub fn renewed(&self, until: Instant) {
        if let Ok(mut u) = self.until.lock() {
            *u = Some(u.map_or(until, |old| old.max(until)));
        }
    }

    /// Gives leadership up at once.
    pub fn drop_now(&self) {
        if let Ok(mut u) = self.until.lock() {
            *u = None;
        }
    }

    pub fn is_leading(&self) -> bool {
        self.always || self.until.lock().ok().and_then(|u| *u).is_some_and(|u| Instant::now() < u)
    }

    /// `Ok` while this process may act as the leader; `what` names the refused step.
    pub fn check(&self, what: &str) -> Result<(), Error> {
        if self.is_leading() {
            return Ok(());
        }
        Err(Error::NotLeader(what.to_string()))
    }
}

pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timings: Timings,
    /// The Lease record last seen held by another candidate, and when it was first seen.
    observed: Mutex<Option<(String, Instant)>>,
}

pub enum Attempt {
    Acquired,
    HeldBy(String),
}

impl Elector {
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str, timings: Timings) -> Elector {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            timings,
            observed: Mutex::new(None),
        }
    }

    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    fn spec(&self, transitions: i32, acquire: Option<MicroTime>) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(i32::try_from(self.timings.lease_duration.as_secs()).unwrap_or(15)),
            acquire_time: Some(acquire.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One attempt to acquire or renew the Lease; each API call must answer by `deadline`.
    pub async fn try_acquire(&self, deadline: Instant) -> Result<Attempt, Error> {
        let timed = |what: &str| Error::LeaseTimeout(format!("{what} of Lease {} did not answer in time", self.name));
        let lease =
            tokio::time::timeout_at(deadline, self.api.get_opt(&self.name)).await.map_err(|_| timed("get"))??;
        let Some(mut lease) = lease else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                spec: Some(self.spec(0, None)),
            };
            let created = tokio::time::timeout_at(deadline, self.api.create(&PostParams::default(), &lease))
                .await
                .map_err(|_| timed("create"))?;
            return match created {
                Ok(_) => Ok(Attempt::Acquired),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::HeldBy("another candidate".into())),
                Err(e) => Err(e.into()),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.identity;
        if !mine {
            // The record as this candidate sees it; a change restarts its lease-duration clock.
            let record = format!(
                "{holder}/{}/{}",
                spec.renew_time.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
                lease.metadata.resource_version.clone().unwrap_or_default()
            );
            let now = Instant::now();
            let observed = match self.observed.lock() {
                Ok(mut o) => match o.as_ref() {
                    Some((r, at)) if *r == record => *at,
                    _ => {
                        *o = Some((record, now));
                        now
                    }
                },
                Err(_) => now,
            };
            if !expired(&holder, spec.lease_duration_seconds, observed, now) {
                return Ok(Attempt::HeldBy(holder));
            }
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let acquire = if mine { spec.acquire_time.clone() } else { None };
        lease.spec = Some(self.spec(transitions, acquire));
        let replaced = tokio::time::timeout_at(deadline, self.api.replace(&self.name, &PostParams::default(), &lease))
            .await
            .map_err(|_| timed("update"))?;
        match replaced {
            Ok(_) => Ok(Attempt::Acquired),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::HeldBy("another candidate (conflict)".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Keeps the Lease renewed while `leadership` holds, which `renewed` (the start of
    /// the renewal that won or last renewed it) began. Returns why leadership was lost;
    /// by then [`Leadership::check`] already fails.
    pub async fn hold(&self, leadership: &Leadership, mut renewed: Instant) -> String {
        let mut attempted = renewed;
        loop {
            let deadline = match next_renewal(renewed, attempted, Instant::now(), &self.timings) {
                Renewal::Lost => {
                    leadership.drop_now();
                    return format!(
                        "the Lease could not be renewed within the renew deadline ({:?})",
                        self.timings.renew_deadline
                    );
                }
                Renewal::After { wait, deadline } => {
                    tokio::time::sleep(wait).await;
                    deadline
                }
            };
            let start = Instant::now();
            if start >= deadline {
                continue;
            }
            attempted = start;
            match self.try_acquire(deadline).await {
                Ok(Attempt::Acquired) => {
                    renewed = start;
                    leadership.renewed(start + self.timings.renew_deadline);
                }
                Ok(Attempt::HeldBy(h)) => {
                    leadership.drop_now();
                    return format!("the Lease was taken over by {h}");
                }
                Err(err) => tracing::warn!(error = %err, "cannot renew the Lease; retrying until the renew deadline"),
            }
        }
    }

    /// Gives the Lease up, so that a standby takes over at once.
    pub async fn release(&self) {
        let deadline = Instant::now() + self.timings.retry_period;
        if let Ok(Ok(Some(mut lease))) = tokio::time::timeout_at(deadline, self.api.get_opt(&self.name)).await
            && let Some(spec) = lease.spec.as_mut()
            && spec.holder_identity.as_deref() == Some(self.identity.as_str())
        {
            spec.holder_identity = None;
            spec.renew_time = None;
            let _ =
                tokio::time::timeout_at(deadline, self.api.replace(&self.name, &PostParams::default(), &lease)).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn client_go_timings_are_the_default_and_valid() {
        let t = Timings::default();
        assert_eq!(
            (t.lease_duration, t.renew_deadline, t.retry_period),
            (Duration::from_secs(15), Duration::from_secs(10), Duration::from_secs(2))
        );
        t.validate().unwrap();
        let bad = Timings { renew_deadline: Duration::from_secs(15), ..t };
        let e = bad.validate().unwrap_err();
        assert!(matches!(e, InvalidTimings::RenewDeadline { .. }), "{e:?}");
        assert!(e.to_string().contains("shorter than the lease duration (15s)"), "{e}");
        let bad = Timings { retry_period: Duration::from_secs(10), ..t };
        assert!(matches!(bad.validate(), Err(InvalidTimings::RetryPeriod { .. })));
    }

    #[test]
    fn a_leader_renews_every_retry_period_and_is_lost_at_the_renew_deadline() {
        let t = Timings::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // Just renewed: again after the retry period, and the calls must end by t0 + 10 s.
        assert_eq!(next_renewal(t0, t0, t0, &t), Renewal::After { wait: s(2), deadline: t0 + s(10) });
        // Renewals failing since: retried every retry period, never waiting past the deadline.
        assert_eq!(next_renewal(t0, t0 + s(4), t0 + s(5), &t), Renewal::After { wait: s(1), deadline: t0 + s(10) });
        assert_eq!(
            next_renewal(t0, t0 + s(9), t0 + Duration::from_millis(9_500), &t),
            Renewal::After { wait: Duration::from_millis(500), deadline: t0 + s(10) }
        );
        // At the deadline (a hung call is cut off there), and after a pause past the lease duration: lost.
        assert_eq!(next_renewal(t0, t0 + s(8), t0 + s(10), &t), Renewal::Lost);
        assert_eq!(next_renewal(t0, t0, t0 + s(40), &t), Renewal::Lost);
        // Lost strictly before any other candidate may take the Lease (observed no earlier than t0).
        assert!(t.renew_deadline < t.lease_duration);
        assert!(!expired("a", Some(15), t0, t0 + s(10)));
    }

    #[test]
    fn a_lease_expires_by_the_candidates_own_clock() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert!(expired("", Some(15), t0, t0), "released");
        assert!(!expired("a", Some(15), t0, t0 + s(14)));
        assert!(expired("a", Some(15), t0, t0 + s(15)));
        assert!(expired("a", Some(5), t0, t0 + s(5)));
    }

    /// A renewal whose API calls never answer: leadership ends at the renew deadline,
    /// before the Lease could expire for anyone else.
    #[tokio::test(start_paused = true)]
    async fn a_hung_renewal_drops_leadership_at_the_renew_deadline() {
        let hung = tower::service_fn(|_: http::Request<kube::client::Body>| {
            std::future::pending::<Result<http::Response<kube::client::Body>, std::convert::Infallible>>()
        });
        let t = Timings::default();
        let e = Elector::new(kube::Client::new(hung, "default"), "default", "lease", "me", t);
        let leadership = Leadership::elected();
        let t0 = Instant::now();
        leadership.renewed(t0 + t.renew_deadline);
        let why = e.hold(&leadership, t0).await;
        assert!(why.contains("renew deadline"), "{why}");
        assert!(!leadership.is_leading());
        assert!(matches!(leadership.check("apply"), Err(Error::NotLeader(_))));
        assert_eq!(Instant::now() - t0, t.renew_deadline);
        assert!(Instant::now() - t0 < t.lease_duration);
    }

    #[test]
    fn leadership_holds_until_its_deadline_and_can_be_dropped() {
        let l = Leadership::elected();
        assert!(!l.is_leading());
        assert!(matches!(l.check("apply"), Err(Error::NotLeader(w)) if w == "apply"));
        l.renewed(Instant::now() + Duration::from_secs(60));
        assert!(l.is_leading());
        // A late renewal never shortens it.
        l.renewed(Instant::now());
        assert!(l.is_leading());
        l.drop_now();
        assert!(!l.is_leading());
        l.renewed(Instant::now());
        assert!(!l.is_leading(), "a deadline in the past is not leadership");
        assert!(Leadership::always().is_leading());
    }
}
