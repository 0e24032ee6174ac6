//! One coordinator connection of a worker: its messages, heartbeats, and
//! the subtasks it deploys.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::WorkerOptions;
use super::subtasks::{Running, start};
use crate::checkpoint::CoordMsg;
use crate::checkpoint::coordinator::Cluster;
use crate::cluster::exchange::DataServer;
use crate::cluster::{MetricSample, ToCoordinator, ToWorker, read_frame, write_frame};
use crate::error::EngineError;

pub(super) enum Event {
    Coordinator(ToWorker),
    CoordinatorLost(String),
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
    let (events_tx, events) = channel::<Event>();
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
                        if tx.send(Event::Coordinator(m)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Event::CoordinatorLost(e.to_string()));
                        return;
                    }
                }
            }
        })
        .map_err(|e| EngineError::Internal(format!("cannot start a thread: {e}")))?;
    let writer = Arc::new(Mutex::new(stream));
    let send = |m: &ToCoordinator| -> bool {
        match writer.lock() {
            Ok(mut w) => write_frame(&mut *w, m).is_ok(),
            Err(_) => false,
        }
    };
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
    let mut running: Option<Running> = None;
    let mut last_heard = Instant::now();
    let mut last_metrics = Instant::now();
    let end_session = |running: &mut Option<Running>| {
        if let Some(r) = running.take() {
            r.cancel();
            r.join(server);
        }
    };
    loop {
        if shutdown.load(Ordering::SeqCst) {
            eprintln!("sluice: worker stopping: its subtasks are canceled, nothing more is committed");
            end_session(&mut running);
            return Ok(true);
        }
        let event = match events.recv_timeout(Duration::from_millis(20)) {
            Ok(e) => Some(e),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Event::CoordinatorLost("connection closed".into())),
        };
        match event {
            Some(Event::Coordinator(m)) => {
                last_heard = Instant::now();
                match m {
                    ToWorker::Deploy(spec) => {
                        end_session(&mut running);
                        ready.store(false, Ordering::SeqCst);
                        let attempt = spec.attempt;
                        match start(&spec, server, &events_tx) {
                            Ok(r) => {
                                eprintln!(
                                    "sluice: worker running {} subtasks of job `{}` (attempt {attempt})",
                                    r.remaining, spec.job_id
                                );
                                running = Some(r);
                                ready.store(true, Ordering::SeqCst);
                                send(&ToCoordinator::Deployed { attempt });
                            }
                            Err(e) => {
                                eprintln!("sluice: worker cannot deploy attempt {attempt}: {e}");
                                send(&ToCoordinator::Failed { attempt, message: e.to_string() });
                            }
                        }
                    }
                    ToWorker::Trigger { attempt, barrier } => {
                        if let Some(r) = running.as_ref().filter(|r| r.attempt == attempt) {
                            match barrier.open(&r.s3) {
                                Ok(b) => r.wiring.trigger(&Arc::new(b)),
                                Err(e) => {
                                    send(&ToCoordinator::Failed {
                                        attempt,
                                        message: format!("checkpoint storage: {e}"),
                                    });
                                }
                            }
                        }
                    }
                    ToWorker::Commit { attempt, id } => {
                        if let Some(r) = running.as_ref().filter(|r| r.attempt == attempt) {
                            r.wiring.commit(id);
                        }
                    }
                    ToWorker::Resume { attempt } => {
                        if let Some(r) = running.as_ref().filter(|r| r.attempt == attempt) {
                            r.wiring.resume();
                        }
                    }
                    ToWorker::Cancel { attempt } => {
                        if let Some(r) = running.as_ref().filter(|r| r.attempt == attempt) {
                            r.cancel();
                        }
                    }
                    ToWorker::Exit { reason } => {
                        eprintln!("sluice: worker exiting: {reason}");
                        end_session(&mut running);
                        return Ok(true);
                    }
                    ToWorker::Heartbeat | ToWorker::Registered { .. } | ToWorker::Refused { .. } => {}
                }
            }
            Some(Event::CoordinatorLost(why)) => {
                eprintln!("sluice: worker lost coordinator {} ({why}); canceling its subtasks", opts.coordinator);
                end_session(&mut running);
                return Ok(false);
            }
            Some(Event::Task(attempt, msg)) => {
                let Some(r) = running.as_mut().filter(|r| r.attempt == attempt) else { continue };
                let out = match msg {
                    CoordMsg::Ack { id, vertex, subtask, result, alignment_ms } => {
                        ToCoordinator::Ack { attempt, id, vertex, subtask, result, alignment_ms }
                    }
                    CoordMsg::Finished { vertex, subtask, snapshot, last_checkpoint } => ToCoordinator::Finished {
                        attempt,
                        vertex,
                        subtask,
                        sections: snapshot.sections,
                        last_checkpoint,
                    },
                    CoordMsg::Committed { id, vertex, subtask } => {
                        ToCoordinator::Committed { attempt, id, vertex, subtask }
                    }
                    CoordMsg::Exited { vertex, subtask } => {
                        if let Some(e) = r.state.error()
                            && !r.failure_reported
                        {
                            r.failure_reported = true;
                            send(&ToCoordinator::Failed { attempt, message: e });
                        }
                        let samples = r
                            .state
                            .subtasks
                            .iter()
                            .filter(|m| m.vertex == vertex && m.subtask == subtask)
                            .map(|m| MetricSample::of(m))
                            .collect();
                        send(&ToCoordinator::Metrics { attempt, samples });
                        r.remaining = r.remaining.saturating_sub(1);
                        ToCoordinator::Exited { attempt, vertex, subtask }
                    }
                };
                send(&out);
                if r.remaining == 0
                    && let Some(r) = running.take()
                {
                    // Let queued messages to other workers drain; the
                    // connections close when the next attempt starts.
                    r.exchange.release();
                    r.join(server);
                    ready.store(false, Ordering::SeqCst);
                }
            }
            None => {}
        }
        // A failed subtask stops the others; waiting producers must not hang
        // on credits from other workers.
        if let Some(r) = &running
            && r.state.cancel.load(Ordering::SeqCst)
        {
            r.exchange.close();
        }
        if last_heard.elapsed() > opts.heartbeat_timeout {
            eprintln!(
                "sluice: worker heard nothing from coordinator {} for {} ms (heartbeat.timeout); canceling its subtasks",
                opts.coordinator,
                opts.heartbeat_timeout.as_millis()
            );
            end_session(&mut running);
            return Ok(false);
        }
        if last_metrics.elapsed() >= Duration::from_millis(500)
            && let Some(r) = &running
        {
            last_metrics = Instant::now();
            let samples = r.state.subtasks.iter().filter(|m| r.exchange.is_here(m.vertex, m.subtask));
            let samples: Vec<MetricSample> = samples.map(|m| MetricSample::of(m)).collect();
            send(&ToCoordinator::Metrics { attempt: r.attempt, samples });
        }
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
