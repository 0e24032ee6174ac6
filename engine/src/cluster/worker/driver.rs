//! The driver of a worker's coordinator session: it owns the connection,
//! the heartbeat and reader threads and the running subtasks, feeds their
//! events to the [`Session`] state machine and carries out its steps.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::WorkerOptions;
use super::session::{Observe, Session, Step};
use super::subtasks::{Running, start};
use crate::checkpoint::CoordMsg;
use crate::checkpoint::coordinator::Cluster;
use crate::cluster::exchange::DataServer;
use crate::cluster::{MetricSample, ToCoordinator, ToWorker, read_frame, write_frame};
use crate::error::EngineError;

/// What the session loop waits for.
pub(super) enum SessionEvent {
    /// A frame from the coordinator.
    Coordinator(ToWorker),
    /// The connection to the coordinator ended.
    CoordinatorLost(String),
    /// A message of a subtask of an attempt, for the coordinator.
    Task(u64, CoordMsg),
}

/// Serves one coordinator connection; `Ok(true)` when told to exit.
pub(super) fn session(
    opts: &WorkerOptions,
    server: &DataServer,
    stream: TcpStream,
    shutdown: &AtomicBool,
    ready: &AtomicBool,
) -> Result<bool, EngineError> {
    let (events_tx, events) = channel::<SessionEvent>();
    let mut reader = stream.try_clone().map_err(|e| EngineError::Cluster(e.to_string()))?;
    // However the session ends, the connection closes: a coordinator that
    // went silent (rather than away) must see this worker leave.
    let _close = CloseOnDrop(stream.try_clone().map_err(|e| EngineError::Cluster(e.to_string()))?);
    let tx = events_tx.clone();
    std::thread::Builder::new()
        .name("coordinator-in".into())
        .spawn(move || {
            loop {
                match read_frame::<ToWorker>(&mut reader) {
                    Ok(m) => {
                        if tx.send(SessionEvent::Coordinator(m)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(SessionEvent::CoordinatorLost(e.to_string()));
                        return;
                    }
                }
            }
        })
        .map_err(|e| EngineError::Internal(format!("cannot start a thread: {e}")))?;
    let writer = Arc::new(Mutex::new(stream));
    // Heartbeats from their own thread, so that a long deployment (loading a
    // large snapshot) does not look like a dead worker.
    let beating = Arc::new(AtomicBool::new(true));
    let _stop_beating = StopOnDrop(beating.clone());
    {
        let (writer, beating, interval) = (writer.clone(), beating.clone(), opts.heartbeat_interval);
        std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || {
                while beating.load(Ordering::SeqCst) {
                    let ok = writer.lock().map(|mut w| write_frame(&mut *w, &ToCoordinator::Heartbeat).is_ok());
                    if !ok.unwrap_or(false) {
                        return;
                    }
                    std::thread::sleep(interval);
                }
            })
            .map_err(|e| EngineError::Internal(format!("cannot start a thread: {e}")))?;
    }
    let mut session = Session::new(&opts.coordinator, opts.heartbeat_timeout, Instant::now());
    let mut driver = Driver { server, events: events_tx, writer, ready, running: None };
    loop {
        let steps = if shutdown.load(Ordering::SeqCst) {
            session.on_shutdown()
        } else {
            match events.recv_timeout(Duration::from_millis(20)) {
                Ok(SessionEvent::Coordinator(m)) => session.on_coordinator(m, Instant::now()),
                Ok(SessionEvent::CoordinatorLost(why)) => session.on_coordinator_lost(&why),
                Ok(SessionEvent::Task(attempt, msg)) => session.on_task(attempt, msg, driver.observe()),
                Err(RecvTimeoutError::Timeout) => Vec::new(),
                Err(RecvTimeoutError::Disconnected) => session.on_coordinator_lost("connection closed"),
            }
        };
        if let Some(exit) = driver.carry_out(&mut session, steps) {
            return Ok(exit);
        }
        let steps = session.on_tick(Instant::now(), driver.observe());
        if let Some(exit) = driver.carry_out(&mut session, steps) {
            return Ok(exit);
        }
    }
}

/// Carries out the session's steps on the connection and the subtasks.
struct Driver<'a> {
    server: &'a DataServer,
    /// Where the running subtasks' messages go.
    events: Sender<SessionEvent>,
    writer: Arc<Mutex<TcpStream>>,
    /// The readiness probe: an attempt is deployed here.
    ready: &'a AtomicBool,
    running: Option<Running>,
}

impl Driver<'_> {
    fn observe(&self) -> Option<&dyn Observe> {
        self.running.as_ref().map(|r| r as &dyn Observe)
    }

    /// Carries out `steps` in order; `Some(exit)` when the session ends.
    fn carry_out(&mut self, session: &mut Session, steps: Vec<Step>) -> Option<bool> {
        for step in steps {
            let more = match step {
                Step::Send(frame) => {
                    // A broken connection shows as a lost coordinator.
                    if let Ok(mut w) = self.writer.lock() {
                        let _ = write_frame(&mut *w, &frame);
                    }
                    Vec::new()
                }
                Step::StopAttempt => {
                    self.stop();
                    Vec::new()
                }
                Step::Deploy(spec) => {
                    let started = match start(&spec, self.server, &self.events) {
                        Ok(r) => {
                            let started = (r.subtasks, r.restore_read_bytes);
                            self.running = Some(r);
                            Ok(started)
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    self.ready.store(self.running.is_some(), Ordering::SeqCst);
                    session.on_deployed(&spec, started)
                }
                Step::Prefetch(spec) => {
                    let name = format!("prefetch-{}", spec.job_id);
                    let writer = self.writer.clone();
                    let run = move || {
                        let location = spec.restore.clone().unwrap_or_default();
                        let t = Instant::now();
                        let (read_bytes, error) = match super::subtasks::prefetch(&spec) {
                            Ok(bytes) => {
                                crate::say!(
                                    "worker prefetched {bytes} bytes of {location} for job `{}` in {} ms",
                                    spec.job_id,
                                    t.elapsed().as_millis()
                                );
                                (bytes, None)
                            }
                            Err(e) => {
                                crate::say!("worker cannot prefetch the state of job `{}`: {e}", spec.job_id);
                                (0, Some(e.to_string()))
                            }
                        };
                        // The standby waits for this before it reports ready.
                        crate::failpoint::hit("prefetch.done");
                        if let Ok(mut w) = writer.lock() {
                            let _ = write_frame(&mut *w, &ToCoordinator::Prefetched { location, read_bytes, error });
                        }
                    };
                    if let Err(e) = std::thread::Builder::new().name(name).spawn(run) {
                        tracing::warn!("cannot start a prefetch thread: {e}");
                    }
                    Vec::new()
                }
                Step::Trigger { attempt, barrier } => match &self.running {
                    Some(r) => match barrier.open(&r.s3) {
                        Ok(b) => {
                            r.wiring.trigger(&Arc::new(b));
                            Vec::new()
                        }
                        Err(e) => session.on_trigger_failed(attempt, e),
                    },
                    None => Vec::new(),
                },
                Step::Commit(id) => {
                    if let Some(r) = &self.running {
                        r.wiring.commit(id);
                    }
                    Vec::new()
                }
                Step::Resume => {
                    if let Some(r) = &self.running {
                        r.wiring.resume();
                    }
                    Vec::new()
                }
                Step::Cancel => {
                    if let Some(r) = &self.running {
                        r.cancel();
                    }
                    Vec::new()
                }
                Step::CloseExchange => {
                    if let Some(r) = &self.running {
                        r.exchange.close();
                    }
                    Vec::new()
                }
                Step::Release => {
                    if let Some(r) = self.running.take() {
                        // Let queued messages to other workers drain; the
                        // connections close when the next attempt starts.
                        r.exchange.release();
                        r.join(self.server);
                    }
                    Vec::new()
                }
                Step::End { exit } => {
                    self.stop();
                    return Some(exit);
                }
            };
            self.ready.store(self.running.is_some(), Ordering::SeqCst);
            if let Some(exit) = self.carry_out(session, more) {
                return Some(exit);
            }
        }
        None
    }

    /// Stops the running attempt's subtasks without committing, and joins them.
    fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.cancel();
            r.join(self.server);
        }
    }
}

impl Observe for Running {
    fn failure(&self) -> Option<String> {
        self.state.error()
    }

    fn stopping(&self) -> bool {
        self.state.cancel.load(Ordering::SeqCst)
    }

    fn samples(&self, only: Option<(usize, usize)>) -> Vec<MetricSample> {
        let wanted = |v: usize, i: usize| match only {
            Some(one) => one == (v, i),
            None => self.exchange.is_here(v, i),
        };
        self.state.subtasks.iter().filter(|m| wanted(m.vertex, m.subtask)).map(|m| MetricSample::of(m)).collect()
    }
}

/// Shuts the connection down when dropped.
struct CloseOnDrop(TcpStream);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// Clears the flag when dropped: stops the heartbeat thread with the session.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}
