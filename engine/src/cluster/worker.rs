//! `sluice-engine worker`: registers its slots with the coordinator, runs the
//! subtasks it is given, and exchanges data with the other workers.
//!
//! A worker may start before its coordinator: it retries the connection. If
//! the coordinator goes away (or stops answering heartbeats), the worker
//! cancels its subtasks without committing anything and registers again, with
//! the same coordinator address, which on Kubernetes is a Service that then
//! points at the replacement. A worker refuses a coordinator with a lower
//! generation than one it has served.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_storage::{S3Options, Storage};

use super::exchange::{AttemptExchange, AttemptKey, DataServer, FailHook};
use super::{DeploySpec, MetricSample, PROTOCOL, ToCoordinator, ToWorker, read_frame, resolve, write_frame};
use crate::checkpoint::coordinator::Cluster;
use crate::checkpoint::metadata::{FileEntry, Metadata, SectionKind};
use crate::checkpoint::{CoordMsg, store};
use crate::config::Config;
use crate::error::EngineError;
use crate::runtime::{JobState, JobStatus, Wiring, deploy, sink_setups, spawn};

/// How a worker is started.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The coordinator's RPC address, `host:port`.
    pub coordinator: String,
    pub slots: usize,
    /// Where the data server listens.
    pub data_addr: String,
    /// The host other workers use to reach this one (the pod IP).
    pub advertise: Option<String>,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
}

enum Event {
    Coordinator(ToWorker),
    CoordinatorLost(String),
    Task(u64, CoordMsg),
}

/// One attempt's subtasks on this worker.
struct Running {
    attempt: u64,
    key: AttemptKey,
    state: Arc<JobState>,
    wiring: Wiring,
    exchange: AttemptExchange,
    handles: Vec<std::thread::JoinHandle<()>>,
    s3: S3Options,
    remaining: usize,
    failure_reported: bool,
}

impl Running {
    /// Stops the subtasks without committing anything.
    fn cancel(&self) {
        self.state.cancel.store(true, Ordering::SeqCst);
        self.exchange.close();
    }

    fn join(self, server: &DataServer) {
        for h in self.handles {
            let _ = h.join();
        }
        server.end(self.key);
    }
}

/// Runs a worker until `shutdown` is set or the coordinator tells it to exit.
pub fn run(opts: &WorkerOptions, shutdown: &AtomicBool, ready: &AtomicBool) -> Result<(), EngineError> {
    if opts.slots == 0 {
        return Err(EngineError::Config("--slots must be at least 1".into()));
    }
    let server = DataServer::start(&opts.data_addr)?;
    let host = match &opts.advertise {
        Some(h) => h.clone(),
        None if server.addr.ip().is_unspecified() => match host_address() {
            Some(h) => {
                eprintln!("sluice: worker advertises {h}, its host name's address; set --advertise-addr to override");
                h
            }
            None => {
                eprintln!(
                    "sluice: worker advertises 127.0.0.1: its host name resolves to no other address; set --advertise-addr (the pod IP) so that other hosts can reach it"
                );
                "127.0.0.1".into()
            }
        },
        None => server.addr.ip().to_string(),
    };
    let data_addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{}", server.addr.port())
    } else {
        format!("{host}:{}", server.addr.port())
    };
    eprintln!("sluice: worker with {} slots, data exchange on {data_addr}", opts.slots);
    let mut generation_seen = 0u64;
    let mut waiting_since = Instant::now();
    let mut last_log = Instant::now() - Duration::from_secs(60);
    while !shutdown.load(Ordering::SeqCst) {
        let stream = match connect(opts, &data_addr, generation_seen) {
            Ok(Some((stream, generation, index))) => {
                generation_seen = generation;
                eprintln!(
                    "sluice: worker registered with coordinator {} (generation {generation}) as worker {index}",
                    opts.coordinator
                );
                stream
            }
            Ok(None) => {
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
            Err(Fatal(e)) => return Err(e),
            Err(Retry(why)) => {
                if last_log.elapsed() >= Duration::from_secs(5) {
                    eprintln!(
                        "sluice: worker waiting for coordinator {} ({why}; {} s)",
                        opts.coordinator,
                        waiting_since.elapsed().as_secs()
                    );
                    last_log = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(300));
                continue;
            }
        };
        let exit = session(opts, &server, stream, shutdown, ready)?;
        ready.store(false, Ordering::SeqCst);
        if exit {
            return Ok(());
        }
        waiting_since = Instant::now();
    }
    Ok(())
}

/// The address this host's name resolves to, if it is not a loopback
/// address: on Kubernetes, the pod IP.
fn host_address() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    let addrs = std::net::ToSocketAddrs::to_socket_addrs(&(name, 0)).ok()?;
    addrs.map(|a| a.ip()).find(|ip| !ip.is_loopback() && !ip.is_unspecified()).map(|ip| match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    })
}

enum ConnectError {
    Retry(String),
    Fatal(EngineError),
}
use ConnectError::{Fatal, Retry};

/// Connects and registers. `Ok(None)`: a stale coordinator answered.
fn connect(
    opts: &WorkerOptions,
    data_addr: &str,
    generation_seen: u64,
) -> Result<Option<(TcpStream, u64, usize)>, ConnectError> {
    let addr = resolve(&opts.coordinator).map_err(|e| Retry(e.to_string()))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| Retry(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let register = ToCoordinator::Register {
        protocol: PROTOCOL,
        name: data_addr.to_string(),
        slots: opts.slots,
        data_addr: data_addr.to_string(),
        generation_seen,
    };
    write_frame(&mut stream, &register).map_err(|e| Retry(e.to_string()))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| Retry(e.to_string()))?;
    let reply: ToWorker = read_frame(&mut stream).map_err(|e| Retry(format!("no registration reply: {e}")))?;
    stream.set_read_timeout(None).map_err(|e| Retry(e.to_string()))?;
    match reply {
        ToWorker::Registered { generation, worker } => {
            if generation < generation_seen {
                eprintln!(
                    "sluice: worker refuses coordinator generation {generation}: generation {generation_seen} has taken over"
                );
                return Ok(None);
            }
            Ok(Some((stream, generation, worker)))
        }
        ToWorker::Refused { reason } => {
            Err(Fatal(EngineError::Cluster(format!("coordinator {} refused this worker: {reason}", opts.coordinator))))
        }
        other => Err(Retry(format!("unexpected first message {other:?}"))),
    }
}

/// Serves one coordinator connection; `Ok(true)` when told to exit.
fn session(
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

/// Whether a snapshot's state file holds something this worker's subtasks
/// restore: keyed state in their key groups, or the splits, committables and
/// writer states of a vertex they belong to (every subtask of a source or sink
/// sees all of those, so a chained sink with state makes its vertex's files
/// needed everywhere).
fn needed(graph: &crate::plan::JobGraph, spec: &DeploySpec, m: &Metadata, path: &str) -> bool {
    for vs in &m.vertices {
        let Some(st) = vs.subtasks.iter().find(|st| st.file.as_deref() == Some(path)) else { continue };
        let Some(v) = graph.vertices.iter().find(|v| v.uid == vs.uid) else { return false };
        let local: Vec<usize> = (0..v.parallelism).filter(|i| spec.placement[v.id][*i] == spec.you).collect();
        return !local.is_empty()
            && st.sections.iter().any(|sec| match sec.kind {
                SectionKind::Keyed { key_group, .. } => local.contains(&crate::keygroup::operator_index(
                    key_group as usize,
                    m.max_parallelism,
                    v.parallelism,
                )),
                // Empty sections (a blackhole's writer state) need no file.
                _ => sec.len > 0,
            });
    }
    false
}

/// Builds and starts this worker's subtasks of an attempt.
fn start(spec: &DeploySpec, server: &DataServer, events: &Sender<Event>) -> Result<Running, EngineError> {
    let job = crate::local::compile_text(&spec.job_text, &spec.file)?;
    let config = Config { values: spec.config.clone() };
    let (graph, opts) = crate::local::prepare(&job, &config, &spec.job_id)?;
    let shape: Vec<usize> = graph.vertices.iter().map(|v| v.parallelism).collect();
    let placed: Vec<usize> = spec.placement.iter().map(Vec::len).collect();
    if shape != placed {
        return Err(EngineError::Cluster(format!(
            "the coordinator placed {placed:?} subtasks per vertex, but the job here has {shape:?}; are the coordinator and worker the same version?"
        )));
    }
    let s3 = opts.checkpoint.s3.clone();
    let restore = match &spec.restore {
        Some(uri) => {
            let dir = Storage::open(store::snapshot_root(uri), &s3).map_err(|e| EngineError::Storage(e.to_string()))?;
            let t = Instant::now();
            let want = |m: &Metadata, f: &FileEntry| needed(&graph, spec, m, &f.path);
            let l = store::load_only(&dir, want)
                .map_err(|message| EngineError::Restore { location: dir.uri(), message })?;
            let bytes: usize = l.files.values().map(Vec::len).sum();
            eprintln!(
                "sluice: worker restoring from {} ({} of {} files, {bytes} bytes, read and verified in {} ms)",
                l.location,
                l.files.len(),
                l.metadata.files.len(),
                t.elapsed().as_millis()
            );
            Some(l)
        }
        None => None,
    };
    let state = JobState::new(&spec.job_id, &spec.file, &graph);
    let setups = sink_setups(&graph, &state, &opts, restore.as_ref(), false)?;
    let key = AttemptKey { generation: spec.generation, attempt: spec.attempt };
    let st = state.clone();
    let fail: FailHook = Arc::new(move |why| st.fail(why));
    let exchange =
        AttemptExchange::new(server, key, spec.you, spec.workers.clone(), spec.placement.clone(), s3.clone(), fail);
    let d = match deploy(&graph, &state, &opts, restore.as_ref(), &setups, Some(&exchange)) {
        Ok(d) => d,
        Err(e) => {
            exchange.close();
            return Err(e);
        }
    };
    exchange.open();
    let remaining = d.tasks.len();
    state.set_status(JobStatus::Running);
    let handles = spawn(&graph, &state, &opts, d.tasks)?;
    let attempt = spec.attempt;
    let tx = events.clone();
    let coord_rx = d.coord_rx;
    std::thread::Builder::new()
        .name("tasks-out".into())
        .spawn(move || {
            for msg in coord_rx {
                if tx.send(Event::Task(attempt, msg)).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| EngineError::Internal(format!("cannot start a thread: {e}")))?;
    Ok(Running { attempt, key, state, wiring: d.wiring, exchange, handles, s3, remaining, failure_reported: false })
}
