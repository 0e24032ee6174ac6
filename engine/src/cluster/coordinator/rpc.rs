//! The RPC endpoint of the coordinator: it accepts worker registrations,
//! reads their messages, and sends heartbeats. What a worker's state is
//! lives in the [`Registry`]; this is the sockets and threads around it.

use std::collections::HashSet;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::CoordinatorOptions;
use super::registry::{LiveWorker, Registry, admit};
use crate::cluster::{ConnectionLimit, ToCoordinator, ToWorker, read_frame, write_frame};
use crate::error::EngineError;

/// A worker's connection, shared by its reader, the heartbeat and the attempts.
type Conn = Arc<Mutex<TcpStream>>;

/// What the RPC endpoint reports about the workers.
pub(super) enum WorkerEvent {
    /// A worker registered.
    Registered,
    /// Worker `index`'s connection ended, and why.
    Lost(usize, String),
    /// A frame from worker `index` (not a heartbeat).
    Message(usize, ToCoordinator),
}

/// The RPC endpoint: registered workers and their messages.
pub struct Rpc {
    pub addr: std::net::SocketAddr,
    workers: Arc<Mutex<Registry<Conn>>>,
    pub(super) events: Receiver<WorkerEvent>,
    heartbeat_timeout: Duration,
    /// The generation workers are told at registration: a standby coordinator
    /// learns its own only when it is activated.
    generation: Arc<AtomicU64>,
}

impl Rpc {
    pub fn start(opts: &CoordinatorOptions, generation: u64) -> Result<Rpc, EngineError> {
        let listener = TcpListener::bind(&opts.rpc_addr)
            .map_err(|e| EngineError::Config(format!("--rpc-addr {}: cannot listen: {e}", opts.rpc_addr)))?;
        let addr = listener.local_addr().map_err(|e| EngineError::Internal(e.to_string()))?;
        let workers: Arc<Mutex<Registry<Conn>>> = Arc::default();
        let (tx, events) = channel();
        let w = workers.clone();
        let generation = Arc::new(AtomicU64::new(generation));
        let current = generation.clone();
        std::thread::Builder::new()
            .name("rpc-accept".into())
            .spawn(move || {
                let limit = ConnectionLimit::default();
                for stream in listener.incoming().flatten() {
                    let Some(admitted) = limit.admit("the RPC port") else { continue };
                    let (w, tx) = (w.clone(), tx.clone());
                    let generation = current.load(Ordering::SeqCst);
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
                    let writers = match w.lock() {
                        Ok(g) => g.conns(),
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
        Ok(Rpc { addr, workers, events, heartbeat_timeout: opts.heartbeat_timeout, generation })
    }

    /// The generation that workers registering from now on are told.
    pub fn set_generation(&self, g: u64) {
        self.generation.store(g, Ordering::SeqCst);
    }

    /// The slots of the live workers, and how many workers there are.
    pub(super) fn slots(&self) -> (usize, usize) {
        let alive = self.alive();
        (alive.iter().map(|w| w.slots).sum(), alive.len())
    }

    /// Sends to worker `w`; false if it is gone.
    pub(super) fn send(&self, w: usize, msg: &ToWorker) -> bool {
        let Some(writer) = self.workers.lock().ok().and_then(|g| g.conn(w)) else { return false };
        writer.lock().map(|mut s| write_frame(&mut *s, msg).is_ok()).unwrap_or(false)
    }

    /// The live workers.
    pub(super) fn alive(&self) -> Vec<LiveWorker> {
        self.workers.lock().map(|g| g.alive()).unwrap_or_default()
    }

    /// The indexes of the live workers.
    pub(super) fn alive_indexes(&self) -> HashSet<usize> {
        self.workers.lock().map(|g| g.alive_indexes()).unwrap_or_default()
    }

    pub(super) fn name(&self, w: usize) -> String {
        self.workers.lock().map(|g| g.name(w)).unwrap_or_else(|_| format!("#{w}"))
    }

    /// Marks workers silent for longer than the heartbeat timeout as lost,
    /// and closes their connections.
    pub(super) fn expire(&self) {
        let expired = match self.workers.lock() {
            Ok(mut g) => g.expire(Instant::now(), self.heartbeat_timeout),
            Err(_) => return,
        };
        for conn in expired {
            if let Ok(s) = conn.lock() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Tells every live worker to exit.
    pub fn exit_all(&self, reason: &str) {
        for w in self.alive() {
            self.send(w.index, &ToWorker::Exit { reason: reason.to_string() });
        }
    }
}

fn serve_worker(mut stream: TcpStream, generation: u64, workers: &Mutex<Registry<Conn>>, events: &Sender<WorkerEvent>) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let registration = match admit(read_frame::<ToCoordinator>(&mut stream).map_err(|e| e.to_string())) {
        Ok(r) => r,
        Err(reason) => {
            let peer = stream.peer_addr().map_or_else(|_| "an unknown peer".into(), |a| a.to_string());
            tracing::warn!("refused a connection from {peer} on the RPC port: {reason}");
            let _ = write_frame(&mut stream, &ToWorker::Refused { reason });
            return;
        }
    };
    let (name, slots, seen) = (registration.name.clone(), registration.slots, registration.generation_seen);
    if seen > generation {
        // A newer coordinator exists: this one is a zombie.
        tracing::warn!("worker {name} has served generation {seen}; this coordinator is generation {generation}");
    }
    let _ = stream.set_read_timeout(None);
    let Ok(writer) = stream.try_clone() else { return };
    let writer = Arc::new(Mutex::new(writer));
    let index = match workers.lock() {
        Ok(mut g) => g.register(registration, writer.clone(), Instant::now()),
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
    crate::say!("worker {index} registered: {name}, {slots} slots");
    let _ = events.send(WorkerEvent::Registered);
    loop {
        match read_frame::<ToCoordinator>(&mut stream) {
            Ok(m) => {
                if let Ok(mut g) = workers.lock()
                    && !g.heard(index, Instant::now())
                {
                    return; // expired: the attempt has moved on
                }
                if !matches!(m, ToCoordinator::Heartbeat) && events.send(WorkerEvent::Message(index, m)).is_err() {
                    return;
                }
            }
            Err(e) => {
                mark_lost(workers, index);
                let _ = events.send(WorkerEvent::Lost(index, e.to_string()));
                return;
            }
        }
    }
}

fn mark_lost(workers: &Mutex<Registry<Conn>>, index: usize) {
    if let Ok(mut g) = workers.lock() {
        g.lost(index);
    }
}
