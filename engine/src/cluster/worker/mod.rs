//! `sluice-engine worker`: registers its slots with the coordinator, runs the
//! subtasks it is given, and exchanges data with the other workers.
//!
//! A worker may start before its coordinator: it retries the connection. If
//! the coordinator goes away (or stops answering heartbeats), the worker
//! cancels its subtasks without committing anything and registers again, with
//! the same coordinator address, which on Kubernetes is a Service that then
//! points at the replacement. A worker refuses a coordinator with a lower
//! generation than one it has served.

mod driver;
mod session;
mod subtasks;

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::exchange::DataServer;
use super::{PROTOCOL, ToCoordinator, ToWorker, read_frame, resolve, write_frame};
use crate::error::EngineError;

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
                crate::say!("worker advertises {h}, its host name's address; set --advertise-addr to override");
                h
            }
            None => {
                crate::say!(
                    "worker advertises 127.0.0.1: its host name resolves to no other address; set --advertise-addr (the pod IP) so that other hosts can reach it"
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
    crate::say!("worker with {} slots, data exchange on {data_addr}", opts.slots);
    let mut generation_seen = 0u64;
    let mut waiting_since = Instant::now();
    let mut last_log = Instant::now() - Duration::from_secs(60);
    while !shutdown.load(Ordering::SeqCst) {
        let stream = match connect(opts, &data_addr, generation_seen) {
            Ok(Some((stream, generation, index))) => {
                generation_seen = generation;
                crate::say!(
                    "worker registered with coordinator {} (generation {generation}) as worker {index}",
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
                    crate::say!(
                        "worker waiting for coordinator {} ({why}; {} s)",
                        opts.coordinator,
                        waiting_since.elapsed().as_secs()
                    );
                    last_log = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(300));
                continue;
            }
        };
        let exit = driver::session(opts, &server, stream, shutdown, ready)?;
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
        secret: crate::cluster::secret(),
    };
    write_frame(&mut stream, &register).map_err(|e| Retry(e.to_string()))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| Retry(e.to_string()))?;
    let reply: ToWorker = read_frame(&mut stream).map_err(|e| Retry(format!("no registration reply: {e}")))?;
    stream.set_read_timeout(None).map_err(|e| Retry(e.to_string()))?;
    match reply {
        ToWorker::Registered { generation, worker } => {
            if generation < generation_seen {
                crate::say!(
                    "worker refuses coordinator generation {generation}: generation {generation_seen} has taken over"
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
