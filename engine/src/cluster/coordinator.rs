//! `sluice-engine coordinator`: runs a job on registered workers.
//!
//! It runs the same loop as the local runner ([`execute_with`]): attempts,
//! the restart strategy, the checkpoint coordinator, savepoints, the REST
//! API. An attempt waits until the registered workers have enough slots,
//! places the subtasks, sends each worker its part, and relays checkpoint
//! traffic. A lost worker (its connection closed, or no heartbeat within
//! `heartbeat.timeout`) fails the attempt; the next one starts from the
//! newest complete checkpoint on the remaining and replacement workers.

use std::collections::{BTreeMap, HashSet};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{
    BarrierWire, ConnectionLimit, DeploySpec, MetricSample, PROTOCOL, ToCoordinator, ToWorker, read_frame, write_frame,
};
use crate::checkpoint::coordinator::{Cluster, Coordinator, Ending};
use crate::checkpoint::store::Loaded;
use crate::checkpoint::{Barrier, CoordMsg, SubtaskSnapshot};
use crate::error::EngineError;
use crate::plan::JobGraph;
use crate::runtime::{
    AttemptEnd, AttemptError, Attempts, Claimed, JobState, JobStatus, RunOptions, attempt_result, execute_with,
    prepare_attempt, start,
};

/// How the coordinator is started, beyond the job and its configuration.
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    pub rpc_addr: String,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
}

/// What workers need to build the job: they compile it themselves.
#[derive(Debug, Clone)]
pub struct JobSource {
    pub job_id: String,
    pub file: String,
    pub text: String,
    /// The merged configuration: the file, `--set` and the flags.
    pub config: BTreeMap<String, String>,
}

impl JobSource {
    /// Identifies this deployment of the job: its text and configuration.
    pub fn fingerprint(&self) -> String {
        let mut h = crc32fast::Hasher::new();
        h.update(self.text.as_bytes());
        for (k, v) in &self.config {
            h.update(&[0]);
            h.update(k.as_bytes());
            h.update(&[1]);
            h.update(v.as_bytes());
        }
        format!("{:08x}-{}", h.finalize(), self.text.len())
    }
}

struct WorkerInfo {
    name: String,
    slots: usize,
    data_addr: String,
    writer: Arc<Mutex<TcpStream>>,
    alive: bool,
    last_seen: Instant,
}

enum Event {
    Registered,
    Lost(usize, String),
    Msg(usize, ToCoordinator),
}

/// The RPC endpoint: registered workers and their messages.
pub struct Rpc {
    pub addr: std::net::SocketAddr,
    workers: Arc<Mutex<Vec<WorkerInfo>>>,
    events: Receiver<Event>,
    heartbeat_timeout: Duration,
}

impl Rpc {
    pub fn start(opts: &CoordinatorOptions, generation: u64) -> Result<Rpc, EngineError> {
        let listener = TcpListener::bind(&opts.rpc_addr)
            .map_err(|e| EngineError::Config(format!("--rpc-addr {}: cannot listen: {e}", opts.rpc_addr)))?;
        let addr = listener.local_addr().map_err(|e| EngineError::Internal(e.to_string()))?;
        let workers: Arc<Mutex<Vec<WorkerInfo>>> = Arc::new(Mutex::new(Vec::new()));
        let (tx, events) = channel();
        let w = workers.clone();
        std::thread::Builder::new()
            .name("rpc-accept".into())
            .spawn(move || {
                let limit = ConnectionLimit::default();
                for stream in listener.incoming().flatten() {
                    let Some(admitted) = limit.admit("the RPC port") else { continue };
                    let (w, tx) = (w.clone(), tx.clone());
                    let _ = std::thread::Builder::new().name("rpc-worker".into()).spawn(move || {
                        let _admitted = admitted;
                        serve_worker(stream, generation, &w, &tx);
                    });
                }
            })
            .map_err(|e| EngineError::Internal(format!("cannot start a thread: {e}")))?;
        let w = workers.clone();
        let interval = opts.heartbeat_interval;
        std::thread::Builder::new()
            .name("rpc-heartbeat".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    let writers: Vec<_> = match w.lock() {
                        Ok(g) => g.iter().filter(|x| x.alive).map(|x| x.writer.clone()).collect(),
                        Err(_) => return,
                    };
                    for wr in writers {
                        if let Ok(mut s) = wr.lock() {
                            let _ = write_frame(&mut *s, &ToWorker::Heartbeat);
                        }
                    }
                }
            })
            .map_err(|e| EngineError::Internal(format!("cannot start a thread: {e}")))?;
        Ok(Rpc { addr, workers, events, heartbeat_timeout: opts.heartbeat_timeout })
    }

    /// Sends to worker `w`; false if it is gone.
    fn send(&self, w: usize, msg: &ToWorker) -> bool {
        let writer = match self.workers.lock() {
            Ok(g) => g.get(w).filter(|x| x.alive).map(|x| x.writer.clone()),
            Err(_) => None,
        };
        let Some(writer) = writer else { return false };
        writer.lock().map(|mut s| write_frame(&mut *s, msg).is_ok()).unwrap_or(false)
    }

    /// Live workers: index, slots, data address, name.
    fn alive(&self) -> Vec<(usize, usize, String, String)> {
        match self.workers.lock() {
            Ok(g) => g
                .iter()
                .enumerate()
                .filter(|(_, x)| x.alive)
                .map(|(i, x)| (i, x.slots, x.data_addr.clone(), x.name.clone()))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    fn name(&self, w: usize) -> String {
        self.workers.lock().ok().and_then(|g| g.get(w).map(|x| x.name.clone())).unwrap_or_else(|| format!("#{w}"))
    }

    /// Marks workers silent for longer than the heartbeat timeout as lost.
    fn expire(&self) {
        if let Ok(mut g) = self.workers.lock() {
            for (i, x) in g.iter_mut().enumerate() {
                if x.alive && x.last_seen.elapsed() > self.heartbeat_timeout {
                    tracing::warn!("worker {i} ({}) missed its heartbeats", x.name);
                    x.alive = false;
                    if let Ok(s) = x.writer.lock() {
                        let _ = s.shutdown(Shutdown::Both);
                    }
                }
            }
        }
    }

    /// Tells every live worker to exit.
    pub fn exit_all(&self, reason: &str) {
        for (w, ..) in self.alive() {
            self.send(w, &ToWorker::Exit { reason: reason.to_string() });
        }
    }
}

fn serve_worker(mut stream: TcpStream, generation: u64, workers: &Mutex<Vec<WorkerInfo>>, events: &Sender<Event>) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let (name, slots, data_addr, seen) = match read_frame::<ToCoordinator>(&mut stream) {
        Ok(ToCoordinator::Register { protocol, name, slots, data_addr, generation_seen }) => {
            if protocol != PROTOCOL {
                let reason = format!("protocol {protocol} is not this coordinator's {PROTOCOL}: run the same version");
                let _ = write_frame(&mut stream, &ToWorker::Refused { reason });
                return;
            }
            (name, slots, data_addr, generation_seen)
        }
        Ok(other) => {
            let reason = format!("the first message must be a registration, not {other:?}");
            let _ = write_frame(&mut stream, &ToWorker::Refused { reason });
            return;
        }
        Err(e) => {
            let reason = format!("unreadable registration ({e}); is this a Sluice worker of the same version?");
            let _ = write_frame(&mut stream, &ToWorker::Refused { reason });
            return;
        }
    };
    if seen > generation {
        // A newer coordinator exists: this one is a zombie.
        tracing::warn!("worker {name} has served generation {seen}; this coordinator is generation {generation}");
    }
    let _ = stream.set_read_timeout(None);
    let Ok(writer) = stream.try_clone() else { return };
    let writer = Arc::new(Mutex::new(writer));
    let index = match workers.lock() {
        Ok(mut g) => {
            g.push(WorkerInfo {
                name: name.clone(),
                slots,
                data_addr,
                writer: writer.clone(),
                alive: true,
                last_seen: Instant::now(),
            });
            g.len() - 1
        }
        Err(_) => return,
    };
    let ok = writer
        .lock()
        .map(|mut s| write_frame(&mut *s, &ToWorker::Registered { generation, worker: index }).is_ok())
        .unwrap_or(false);
    if !ok {
        mark_lost(workers, index);
        return;
    }
    eprintln!("sluice: worker {index} registered: {name}, {slots} slots");
    let _ = events.send(Event::Registered);
    loop {
        match read_frame::<ToCoordinator>(&mut stream) {
            Ok(m) => {
                if let Ok(mut g) = workers.lock()
                    && let Some(x) = g.get_mut(index)
                {
                    if !x.alive {
                        return; // expired: the attempt has moved on
                    }
                    x.last_seen = Instant::now();
                }
                if !matches!(m, ToCoordinator::Heartbeat) && events.send(Event::Msg(index, m)).is_err() {
                    return;
                }
            }
            Err(e) => {
                mark_lost(workers, index);
                let _ = events.send(Event::Lost(index, e.to_string()));
                return;
            }
        }
    }
}

fn mark_lost(workers: &Mutex<Vec<WorkerInfo>>, index: usize) {
    if let Ok(mut g) = workers.lock()
        && let Some(x) = g.get_mut(index)
    {
        x.alive = false;
    }
}

/// Slot `k` holds subtask `k` of every vertex; slots are dealt to workers in
/// turn, so each worker gets an equal share. Returns, per vertex, the worker
/// of each subtask; `None` if the workers have too few slots.
pub fn place(parallelism: &[usize], workers: &[(usize, usize)]) -> Option<Vec<Vec<usize>>> {
    let needed = parallelism.iter().copied().max().unwrap_or(0);
    let mut free: Vec<(usize, usize)> = workers.to_vec();
    let mut slot_worker = Vec::with_capacity(needed);
    while slot_worker.len() < needed {
        let mut placed = false;
        for (w, f) in free.iter_mut() {
            if slot_worker.len() < needed && *f > 0 {
                *f -= 1;
                slot_worker.push(*w);
                placed = true;
            }
        }
        if !placed {
            return None;
        }
    }
    Some(parallelism.iter().map(|p| slot_worker[..*p].to_vec()).collect())
}

/// The coordinator's view of the workers running one attempt.
struct Remote<'a> {
    rpc: &'a Rpc,
    attempt: u64,
    workers: Vec<usize>,
    sinks: Vec<(usize, (usize, usize))>,
}

impl Cluster for Remote<'_> {
    fn trigger(&self, barrier: &Barrier) {
        let wire = BarrierWire::of(barrier);
        for w in &self.workers {
            self.rpc.send(*w, &ToWorker::Trigger { attempt: self.attempt, barrier: wire.clone() });
        }
    }

    fn resume(&self) {
        for w in &self.workers {
            self.rpc.send(*w, &ToWorker::Resume { attempt: self.attempt });
        }
    }

    fn commit(&self, id: u64) -> HashSet<(usize, usize)> {
        let reached: HashSet<usize> = self
            .workers
            .iter()
            .copied()
            .filter(|w| self.rpc.send(*w, &ToWorker::Commit { attempt: self.attempt, id }))
            .collect();
        self.sinks.iter().filter(|(w, _)| reached.contains(w)).map(|(_, s)| *s).collect()
    }
}

/// Runs attempts on the registered workers.
pub struct RemoteAttempts {
    pub rpc: Rpc,
    pub source: JobSource,
    pub generation: u64,
    attempt: u64,
}

impl RemoteAttempts {
    pub fn new(rpc: Rpc, source: JobSource, generation: u64) -> RemoteAttempts {
        RemoteAttempts { rpc, source, generation, attempt: 0 }
    }

    /// Waits until the live workers have `needed` slots; false if the job was canceled first.
    fn await_slots(&self, state: &JobState, needed: usize) -> bool {
        let started = Instant::now();
        let mut last_log: Option<Instant> = None;
        loop {
            self.rpc.expire();
            let alive = self.rpc.alive();
            let have: usize = alive.iter().map(|a| a.1).sum();
            if have >= needed {
                return true;
            }
            if state.cancel.load(Ordering::SeqCst) {
                return false;
            }
            if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                eprintln!(
                    "sluice: job `{}` waiting for workers: {have} of {needed} slots ({} workers registered, {} s)",
                    state.job_id,
                    alive.len(),
                    started.elapsed().as_secs()
                );
                last_log = Some(Instant::now());
            }
            // Registrations and losses only matter through `alive`; stale
            // messages of earlier attempts are dropped.
            let _ = self.rpc.events.recv_timeout(Duration::from_millis(100));
        }
    }
}

impl Attempts for RemoteAttempts {
    /// Workers restore keyed state; the coordinator needs only the manifest
    /// and the sinks' sections.
    fn restores_keyed_state(&self) -> bool {
        false
    }

    fn run(
        &mut self,
        graph: &JobGraph,
        state: &Arc<JobState>,
        opts: &RunOptions,
        restore: Option<&Loaded>,
        coord: &mut Coordinator,
    ) -> Result<AttemptEnd, AttemptError> {
        let parallelism: Vec<usize> = graph.vertices.iter().map(|v| v.parallelism).collect();
        let needed = parallelism.iter().copied().max().unwrap_or(1);
        if !self.await_slots(state, needed) {
            return attempt_result(state, None);
        }
        let (metas, _) = prepare_attempt(graph, state, opts, restore).map_err(AttemptError::Setup)?;
        coord.set_vertices(metas);
        let alive = self.rpc.alive();
        let slots: Vec<(usize, usize)> = alive.iter().map(|a| (a.0, a.1)).collect();
        let placement = place(&parallelism, &slots)
            .ok_or_else(|| AttemptError::Run(EngineError::Cluster("the workers left before deployment".into())))?;
        self.attempt += 1;
        let attempt = self.attempt;
        let mut addrs = vec![String::new(); alive.iter().map(|a| a.0 + 1).max().unwrap_or(0)];
        for a in &alive {
            addrs[a.0] = a.2.clone();
        }
        let mut remaining: BTreeMap<usize, usize> = BTreeMap::new();
        for p in &placement {
            for w in p {
                *remaining.entry(*w).or_default() += 1;
            }
        }
        let total: usize = remaining.values().sum();
        let sinks = graph
            .vertices
            .iter()
            .filter(|v| matches!(v.ops.last(), Some(crate::plan::OpSpec::Sink { .. })))
            .flat_map(|v| (0..v.parallelism).map(move |i| (v.id, i)))
            .map(|(v, i)| (placement[v][i], (v, i)))
            .collect();
        let remote = Remote { rpc: &self.rpc, attempt, workers: remaining.keys().copied().collect(), sinks };
        let layout = remaining.iter().map(|(w, n)| format!("{} ({n})", self.rpc.name(*w))).collect::<Vec<_>>();
        eprintln!("sluice: job `{}` attempt {attempt}: {total} subtasks on {}", state.job_id, layout.join(", "));
        for w in remaining.keys() {
            let spec = DeploySpec {
                generation: self.generation,
                attempt,
                job_id: self.source.job_id.clone(),
                file: self.source.file.clone(),
                job_text: self.source.text.clone(),
                config: self.source.config.clone(),
                restore: restore.map(|l| l.location.clone()),
                workers: addrs.clone(),
                placement: placement.clone(),
                you: *w,
            };
            if !self.rpc.send(*w, &ToWorker::Deploy(Box::new(spec))) {
                state.fail(format!("worker {} was lost during deployment", self.rpc.name(*w)));
            }
        }
        coord.reset_attempt(&remote);
        let mut deployed: HashSet<usize> = HashSet::new();
        let mut last_samples: BTreeMap<(usize, usize), MetricSample> = BTreeMap::new();
        let mut ending: Option<Ending> = None;
        let mut setup_failure: Option<String> = None;
        let mut cancel_sent: Option<Instant> = None;
        // Subtasks still running, per worker.
        while remaining.values().any(|n| *n > 0) {
            let event = match self.rpc.events.recv_timeout(Duration::from_millis(10)) {
                Ok(e) => Some(e),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    state.fail("the RPC server stopped".into());
                    break;
                }
            };
            match event {
                Some(Event::Msg(w, m)) => {
                    let msg = match m {
                        ToCoordinator::Deployed { attempt: a } if a == attempt => {
                            deployed.insert(w);
                            if deployed.len() == remaining.len() && !state.cancel.load(Ordering::SeqCst) {
                                state.set_status(JobStatus::Running);
                            }
                            None
                        }
                        ToCoordinator::Failed { attempt: a, message } if a == attempt => {
                            let why = format!("worker {}: {message}", self.rpc.name(w));
                            if !deployed.contains(&w) {
                                // Its subtasks never started.
                                remaining.insert(w, 0);
                                setup_failure.get_or_insert(why.clone());
                            }
                            state.fail(why);
                            None
                        }
                        ToCoordinator::Ack { attempt: a, id, vertex, subtask, result, alignment_ms }
                            if a == attempt =>
                        {
                            Some(CoordMsg::Ack { id, vertex, subtask, result, alignment_ms })
                        }
                        ToCoordinator::Finished { attempt: a, vertex, subtask, sections, last_checkpoint }
                            if a == attempt =>
                        {
                            Some(CoordMsg::Finished {
                                vertex,
                                subtask,
                                snapshot: SubtaskSnapshot { sections },
                                last_checkpoint,
                            })
                        }
                        ToCoordinator::Committed { attempt: a, id, vertex, subtask } if a == attempt => {
                            Some(CoordMsg::Committed { id, vertex, subtask })
                        }
                        ToCoordinator::Exited { attempt: a, .. } if a == attempt => {
                            if let Some(n) = remaining.get_mut(&w) {
                                *n = n.saturating_sub(1);
                            }
                            None
                        }
                        ToCoordinator::Metrics { attempt: a, samples } if a == attempt => {
                            for s in samples {
                                if let Some(m) =
                                    state.subtasks.iter().find(|m| m.vertex == s.vertex && m.subtask == s.subtask)
                                {
                                    s.apply(m, last_samples.get(&(s.vertex, s.subtask)));
                                }
                                last_samples.insert((s.vertex, s.subtask), s);
                            }
                            None
                        }
                        _ => None, // a message of an earlier attempt
                    };
                    if let Some(msg) = msg
                        && let Some(e) = coord.on_message(msg, &remote)
                    {
                        ending = Some(e);
                        // The job is complete: stop every subtask.
                        state.cancel.store(true, Ordering::SeqCst);
                    }
                }
                Some(Event::Lost(w, why)) => {
                    if remaining.get_mut(&w).map(std::mem::take).unwrap_or(0) > 0 {
                        state.fail(format!("worker {} was lost: {why}", self.rpc.name(w)));
                    } else {
                        eprintln!("sluice: worker {} left: {why}", self.rpc.name(w));
                    }
                }
                Some(Event::Registered) | None => {}
            }
            self.rpc.expire();
            if state.cancel.load(Ordering::SeqCst) {
                match cancel_sent {
                    None => {
                        for w in remaining.keys() {
                            self.rpc.send(*w, &ToWorker::Cancel { attempt });
                        }
                        cancel_sent = Some(Instant::now());
                    }
                    Some(t) if t.elapsed() > Duration::from_secs(30) => {
                        eprintln!(
                            "sluice: job `{}`: {} subtasks did not stop within 30 s of being canceled; going on without them",
                            state.job_id,
                            remaining.values().sum::<usize>()
                        );
                        break;
                    }
                    Some(_) => {}
                }
                // Workers that died after the cancel still count as stopped.
                let alive: HashSet<usize> = self.rpc.alive().into_iter().map(|a| a.0).collect();
                for (w, n) in remaining.iter_mut() {
                    if !alive.contains(w) {
                        *n = 0;
                    }
                }
            } else {
                coord.tick(&remote);
            }
        }
        coord.reset_attempt(&Remote { rpc: &self.rpc, attempt, workers: Vec::new(), sinks: Vec::new() });
        if let Some(why) = coord.fenced() {
            return Err(AttemptError::Fatal(EngineError::Fenced(why)));
        }
        if let Some(why) = setup_failure
            && ending.is_none()
        {
            return Err(AttemptError::Setup(EngineError::Cluster(why)));
        }
        attempt_result(state, ending)
    }
}

/// Runs a job as its coordinator until it ends (or, with `stay`, until
/// `shutdown`). `shutdown` (SIGTERM) cancels the job without committing and
/// without marking it terminal, so a new coordinator resumes it.
pub fn run(
    source: JobSource,
    graph: &JobGraph,
    opts: RunOptions,
    copts: &CoordinatorOptions,
    state: Arc<JobState>,
    stay: bool,
    shutdown: Arc<AtomicBool>,
) -> Result<(), EngineError> {
    // A coordinator is a restart of its deployment when the deployment ran
    // before (see `lineage::decide`); the first one starts as its flags say.
    let setup = || -> Result<(Option<Claimed>, Rpc), EngineError> {
        let claimed = match &opts.checkpoint.job_dir {
            Some(dir) => Some(Claimed::claim(dir, &source.fingerprint(), true)?),
            None => None,
        };
        let generation = claimed.as_ref().map_or(1, |c| c.fence.generation);
        let rpc = Rpc::start(copts, generation)?;
        eprintln!("sluice: job `{}` coordinator (generation {generation}) RPC on {}", source.job_id, rpc.addr);
        Ok((claimed, rpc))
    };
    let (claimed, rpc) = match setup() {
        Ok(x) => x,
        Err(e) => {
            let e = start::failed(&state, e);
            stay_until(&state, stay, &shutdown);
            return Err(e);
        }
    };
    let generation = claimed.as_ref().map_or(1, |c| c.fence.generation);
    let st = state.clone();
    let sd = shutdown.clone();
    std::thread::Builder::new()
        .name("shutdown-watch".into())
        .spawn(move || {
            while !sd.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!(
                "sluice: coordinator stopping (SIGTERM): the job is canceled without committing; a new coordinator resumes it from its newest checkpoint"
            );
            st.request_cancel();
        })
        .map_err(|e| EngineError::Internal(format!("cannot start a thread: {e}")))?;
    let mut attempts = RemoteAttempts::new(rpc, source, generation);
    let result = execute_with(graph, &state, &opts, &mut attempts, claimed);
    let by_signal = shutdown.load(Ordering::SeqCst);
    if !stay && !by_signal && state.status() == JobStatus::Finished {
        attempts.rpc.exit_all("the job finished");
    }
    stay_until(&state, stay, &shutdown);
    result
}

/// With `--on-finish stay`, keeps the process (and its REST API) up in the
/// job's final state until SIGTERM.
fn stay_until(state: &JobState, stay: bool, shutdown: &AtomicBool) {
    if !stay || shutdown.load(Ordering::SeqCst) {
        return;
    }
    match state.error() {
        Some(e) if state.status() == JobStatus::Failed => eprintln!(
            "sluice: job `{}` FAILED: {e}\nsluice: the coordinator stays up (--on-finish stay) until SIGTERM",
            state.job_id
        ),
        _ => eprintln!(
            "sluice: job `{}` is {:?}; the coordinator stays up (--on-finish stay) until SIGTERM",
            state.job_id,
            state.status()
        ),
    }
    while !shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_dealt_to_workers_in_turn() {
        // Two workers of two slots, parallelism 3: slots 0 and 2 on worker 0.
        assert_eq!(place(&[3, 2], &[(0, 2), (1, 2)]), Some(vec![vec![0, 1, 0], vec![0, 1]]));
        // Three workers of one slot each.
        assert_eq!(place(&[3], &[(4, 1), (7, 1), (9, 1)]), Some(vec![vec![4, 7, 9]]));
        // One worker with enough slots holds everything.
        assert_eq!(place(&[2, 1], &[(0, 4)]), Some(vec![vec![0, 0], vec![0]]));
        // Too few slots.
        assert_eq!(place(&[3], &[(0, 1), (1, 1)]), None);
    }

    #[test]
    fn the_fingerprint_changes_with_the_text_and_the_configuration() {
        let a = JobSource { job_id: "j".into(), file: "f".into(), text: "SELECT 1".into(), config: BTreeMap::new() };
        let mut b = a.clone();
        b.config.insert("parallelism.default".into(), "2".into());
        let mut c = a.clone();
        c.text = "SELECT 2".into();
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}
