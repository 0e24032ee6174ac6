//! OpenLineage run events: a job that sets `openlineage.transport.url` (or runs
//! under an operator whose chart sets `openlineage.url`) tells a lineage
//! backend, such as Marquez, when each run starts, recovers and ends, with the
//! datasets it reads and writes and each output column's lineage.
//!
//! Invariants:
//! 1. Lineage never affects the job. Events are queued in a bounded buffer
//!    (`openlineage.transport.buffer-size`) and sent by their own thread; when
//!    the buffer is full the new event is dropped and counted
//!    (`sluice_openlineage_events_dropped_total`). The job never waits on the
//!    endpoint, except for at most `openlineage.transport.timeoutInMillis` at the
//!    end of the process, to deliver the run's last events.
//! 2. Events are delivered in order: the oldest is retried (exponential backoff,
//!    200 ms to 30 s) until the endpoint takes it, before any later one. An
//!    event the endpoint refuses (4xx other than 408 and 429) is dropped and
//!    logged: sending it again cannot succeed.
//! 3. A run has one `START` and at most one ending (`COMPLETE`, `ABORT` or
//!    `FAIL`), with `RUNNING` for each recovery in between ([`watch::Tracker`]).
//!    A coordinator restarted for its deployment (a pod restart) continues its
//!    predecessor's run under the same run id and says `RUNNING`; one stopped by
//!    SIGTERM ends nothing. An upgrade or a blue-green cutover stops the old job
//!    with a savepoint (`COMPLETE`) and starts the new one (`START`, a new run).
//! 4. The datasets and column lineage come from the compiled plan
//!    ([`datasets::of`]), so they are what runs; masked input fields carry the
//!    data policy's action.
//!
//! The decisions are pure ([`watch`], [`event`], [`datasets`], and
//! [`transport::Outbox`]); this module is the thread around them.

pub mod datasets;
pub mod event;
pub mod transport;
pub mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sluice_job::OpenLineageSettings;

use self::datasets::Datasets;
use self::event::{Moment, RunFacts, run_event, run_id};
use self::transport::{Delivery, Http, Outbox};
use self::watch::Tracker;
use crate::error::EngineError;
use crate::job::{JobState, JobStatus, now_ms, rfc3339};

/// What a job's events say, prepared before it runs.
#[derive(Debug, Clone)]
pub struct Lineage {
    pub settings: OpenLineageSettings,
    pub datasets: Datasets,
}

impl Lineage {
    /// Where `job` sends its events under `overrides` (its own `SET`s are the lowest
    /// layer) and this process's `OPENLINEAGE_*` variables; `None` when it sends none.
    pub fn of(job: &sluice_sql::Job, overrides: &sluice_job::Config) -> Result<Option<Lineage>, EngineError> {
        let mut config = sluice_job::Config { values: job.settings.clone() };
        config.values.extend(overrides.values.clone());
        let settings = OpenLineageSettings::resolve(&config, |var| std::env::var(var).ok())?;
        Ok(settings.map(|settings| Lineage { settings, datasets: datasets::of(job) }))
    }
}

/// The thread that sends a job's run events; [`Watcher::finish`] delivers the last ones.
pub struct Watcher {
    state: Arc<JobState>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Waits until the events of the run so far are delivered, or the transport's
    /// timeout passes; then stops.
    pub fn finish(mut self) {
        self.state.unsubscribe();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.state.unsubscribe();
    }
}

/// Runs `body` (the job) while `state`'s run events are sent, if `lineage` says
/// where; then delivers the last ones ([`Watcher::finish`]).
pub fn watching<T>(
    lineage: Option<Lineage>,
    state: &Arc<JobState>,
    shutdown: Option<Arc<AtomicBool>>,
    body: impl FnOnce() -> T,
) -> T {
    let watcher = watch(lineage, state, shutdown);
    let out = body();
    if let Some(w) = watcher {
        w.finish();
    }
    out
}

/// Starts sending `state`'s run events, if `lineage` says where. `shutdown` is
/// set when the process stops without ending the run (SIGTERM on a coordinator).
pub fn watch(lineage: Option<Lineage>, state: &Arc<JobState>, shutdown: Option<Arc<AtomicBool>>) -> Option<Watcher> {
    let lineage = lineage?;
    let http = match Http::new(&lineage.settings.endpoint, lineage.settings.timeout) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("job `{}`: no OpenLineage events: {e}", state.job_id);
            return None;
        }
    };
    let statuses = state.subscribe();
    let st = state.clone();
    crate::say!("job `{}`: OpenLineage run events go to {}", state.job_id, lineage.settings.endpoint);
    let thread = std::thread::Builder::new()
        .name("openlineage".into())
        .spawn(move || Sender::new(lineage, st, http, shutdown).run(&statuses))
        .map_err(|e| tracing::warn!("cannot start the OpenLineage thread: {e}"))
        .ok()?;
    Some(Watcher { state: state.clone(), thread: Some(thread) })
}

struct Sender {
    lineage: Lineage,
    state: Arc<JobState>,
    http: Http,
    shutdown: Option<Arc<AtomicBool>>,
    outbox: Outbox,
    tracker: Tracker,
    run: Option<RunFacts>,
    /// The endpoint failed last time: logged once per outage.
    failing: bool,
}

impl Sender {
    fn new(lineage: Lineage, state: Arc<JobState>, http: Http, shutdown: Option<Arc<AtomicBool>>) -> Sender {
        let outbox = Outbox::new(lineage.settings.buffer);
        Sender { lineage, state, http, shutdown, outbox, tracker: Tracker::default(), run: None, failing: false }
    }

    fn run(mut self, statuses: &Receiver<JobStatus>) {
        let mut wait = Duration::ZERO;
        loop {
            let next = if self.outbox.is_empty() {
                statuses.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                statuses.recv_timeout(wait)
            };
            match next {
                Ok(status) => {
                    self.on_status(status);
                    wait = Duration::ZERO;
                }
                Err(RecvTimeoutError::Timeout) => wait = self.deliver_head(),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // The job is over: deliver what is left, within the transport's timeout.
        let deadline = Instant::now() + self.lineage.settings.timeout;
        while !self.outbox.is_empty() && Instant::now() < deadline {
            let wait = self.deliver_head();
            std::thread::sleep(wait.min(deadline.saturating_duration_since(Instant::now())));
        }
        if !self.outbox.is_empty() {
            tracing::warn!(
                "job `{}`: {} OpenLineage events not delivered to {} before the process ended",
                self.state.job_id,
                self.outbox.len(),
                self.lineage.settings.endpoint
            );
        }
    }

    fn on_status(&mut self, status: JobStatus) {
        let identity = self.state.run_identity();
        let shutdown = self.shutdown.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
        let step = self.tracker.on_status(status, identity.as_ref().is_some_and(|i| i.resumed), shutdown);
        if step.new_run || self.run.is_none() {
            let s = &self.lineage.settings;
            self.run = Some(RunFacts {
                run_id: run_id(identity.as_ref(), now_ms()),
                job_namespace: s.namespace.clone(),
                job_name: s.name.clone().unwrap_or_else(|| self.state.job_id.clone()),
                job_id: self.state.job_id.clone(),
                data_policy: self.state.data_policy.clone(),
            });
        }
        let Some(run) = &self.run else { return };
        let time = rfc3339(std::time::SystemTime::now());
        let error = self.state.error();
        for kind in step.events {
            let restarts = self.state.restarts.load(Ordering::SeqCst);
            let at = Moment { kind, time: &time, status, restarts, error: error.as_deref() };
            let event = run_event(run, &at, &self.lineage.datasets).to_string();
            if !self.outbox.push(event) {
                self.state.lineage.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "job `{}`: OpenLineage {} event dropped: {} events wait for {} already",
                    self.state.job_id,
                    kind.as_str(),
                    self.outbox.len(),
                    self.lineage.settings.endpoint
                );
            }
        }
    }

    /// One delivery of the oldest event; returns how long to wait before the next one.
    fn deliver_head(&mut self) -> Duration {
        let Some(head) = self.outbox.head() else { return Duration::ZERO };
        let d = self.http.send(head);
        let job = &self.state.job_id;
        let url = &self.lineage.settings.endpoint;
        match &d {
            Delivery::Sent => {
                self.state.lineage.sent.fetch_add(1, Ordering::Relaxed);
                if std::mem::take(&mut self.failing) {
                    tracing::info!("job `{job}`: OpenLineage endpoint {url} reachable again");
                }
            }
            Delivery::Retry(e) => {
                self.state.lineage.failed_attempts.fetch_add(1, Ordering::Relaxed);
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::warn!("job `{job}`: OpenLineage endpoint {url} failed ({e}); events are kept and retried");
                }
            }
            Delivery::Refused(e) => {
                self.state.lineage.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("job `{job}`: OpenLineage endpoint {url} refused an event ({e}); it is dropped");
            }
        }
        self.outbox.record(&d)
    }
}
