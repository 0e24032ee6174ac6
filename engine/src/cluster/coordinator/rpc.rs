//! The RPC endpoint of the coordinator: it accepts worker registrations,
//! reads their messages, and sends heartbeats.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::CoordinatorOptions;
use crate::cluster::{ConnectionLimit, PROTOCOL, ToCoordinator, ToWorker, read_frame, write_frame};
use crate::error::EngineError;

struct WorkerInfo {
    name: String,
    slots: usize,
    data_addr: String,
    writer: Arc<Mutex<TcpStream>>,
    alive: bool,
    last_seen: Instant,
}

pub(super) enum Event {
    Registered,
    Lost(usize, String),
    Msg(usize, ToCoordinator),
}

/// The RPC endpoint: registered workers and their messages.
pub struct Rpc {
    pub addr: std::net::SocketAddr,
    workers: Arc<Mutex<Vec<WorkerInfo>>>,
    pub(super) events: Receiver<Event>,
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
    pub(super) fn send(&self, w: usize, msg: &ToWorker) -> bool {
        let writer = match self.workers.lock() {
            Ok(g) => g.get(w).filter(|x| x.alive).map(|x| x.writer.clone()),
            Err(_) => None,
        };
        let Some(writer) = writer else { return false };
        writer.lock().map(|mut s| write_frame(&mut *s, msg).is_ok()).unwrap_or(false)
    }

    /// Live workers: index, slots, data address, name.
    pub(super) fn alive(&self) -> Vec<(usize, usize, String, String)> {
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

    pub(super) fn name(&self, w: usize) -> String {
        self.workers.lock().ok().and_then(|g| g.get(w).map(|x| x.name.clone())).unwrap_or_else(|| format!("#{w}"))
    }

    /// Marks workers silent for longer than the heartbeat timeout as lost.
    pub(super) fn expire(&self) {
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
