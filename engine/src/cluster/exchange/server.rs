//! The receiving side of the data exchange: a worker's data server routes
//! the frames of its peers into the current attempt's input queues.

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::frame::{Frame, bad, encode_credit, read};
use super::{AttemptKey, FailHook};
use crate::cluster::ConnectionLimit;
use crate::error::EngineError;
use crate::runtime::channel::Envelope;

/// How long an incoming connection waits for its attempt to be set up here.
const ATTEMPT_WAIT: Duration = Duration::from_secs(60);

/// The receiving side of the current attempt on this worker.
pub struct Inbound {
    key: AttemptKey,
    /// For barriers: the attempt's S3 settings.
    s3: sluice_storage::S3Options,
    /// Fails the attempt when a connection delivers garbage.
    fail: FailHook,
    /// The input queue of each local consumer subtask.
    pub(super) queues: Mutex<HashMap<(u32, u32), Sender<Envelope>>>,
    /// Where credits for each peer worker go: the writer of its connection.
    credit_out: Mutex<HashMap<usize, Sender<Vec<u8>>>>,
    streams: Mutex<Vec<TcpStream>>,
    /// Every local consumer's queue is registered: frames can be routed.
    pub(super) ready: AtomicBool,
    pub(super) closed: AtomicBool,
}

impl Inbound {
    pub(super) fn send_credit(&self, peer: usize, vertex: u32, subtask: u32, channel: u32) {
        let Ok(out) = self.credit_out.lock() else { return };
        if let Some(tx) = out.get(&peer) {
            let mut frame = Vec::with_capacity(24);
            encode_credit(&mut frame, vertex, subtask, channel, 1);
            let _ = tx.send(frame);
        }
    }

    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut q) = self.queues.lock() {
            q.clear();
        }
        if let Ok(mut c) = self.credit_out.lock() {
            c.clear();
        }
        if let Ok(s) = self.streams.lock() {
            for s in s.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// A worker's data server: accepts connections from other workers and routes
/// their frames into the current attempt's input queues.
pub struct DataServer {
    pub addr: std::net::SocketAddr,
    pub(super) current: Arc<(Mutex<Option<Arc<Inbound>>>, Condvar)>,
}

impl DataServer {
    pub fn start(bind: &str) -> Result<DataServer, EngineError> {
        let listener = TcpListener::bind(bind)
            .map_err(|e| EngineError::Cluster(format!("cannot listen for data on {bind}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| EngineError::Cluster(e.to_string()))?;
        let current: Arc<(Mutex<Option<Arc<Inbound>>>, Condvar)> = Arc::new((Mutex::new(None), Condvar::new()));
        let cur = current.clone();
        std::thread::Builder::new()
            .name("data-accept".into())
            .spawn(move || {
                let limit = ConnectionLimit::default();
                for stream in listener.incoming().flatten() {
                    let Some(admitted) = limit.admit("the data port") else { continue };
                    let cur = cur.clone();
                    let _ = std::thread::Builder::new().name("data-in".into()).spawn(move || {
                        let _admitted = admitted;
                        if let Err(e) = serve_inbound(stream, &cur) {
                            tracing::debug!("data connection ended: {e}");
                        }
                    });
                }
            })
            .map_err(|e| EngineError::Cluster(format!("cannot start the data server: {e}")))?;
        Ok(DataServer { addr, current })
    }

    /// Sets up the receiving side of an attempt, replacing the previous one.
    pub fn begin(&self, key: AttemptKey, s3: sluice_storage::S3Options, fail: FailHook) -> Arc<Inbound> {
        let inbound = Arc::new(Inbound {
            key,
            s3,
            fail,
            queues: Mutex::new(HashMap::new()),
            credit_out: Mutex::new(HashMap::new()),
            streams: Mutex::new(Vec::new()),
            ready: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let (lock, cv) = &*self.current;
        if let Ok(mut g) = lock.lock() {
            if let Some(old) = g.take() {
                old.close();
            }
            *g = Some(inbound.clone());
        }
        cv.notify_all();
        inbound
    }

    /// Ends the receiving side of the attempt `key`, if it is current.
    pub fn end(&self, key: AttemptKey) {
        let (lock, cv) = &*self.current;
        if let Ok(mut g) = lock.lock()
            && g.as_ref().is_some_and(|i| i.key == key)
            && let Some(old) = g.take()
        {
            old.close();
        }
        cv.notify_all();
    }
}

fn serve_inbound(stream: TcpStream, current: &(Mutex<Option<Arc<Inbound>>>, Condvar)) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(1 << 20, stream.try_clone()?);
    let peer = stream.peer_addr().map_or_else(|_| "an unknown peer".into(), |a| a.to_string());
    let hello = match read(&mut reader, &sluice_storage::S3Options::default()) {
        Ok(Frame::Hello(hello)) => hello,
        first => {
            let why = first.err().map_or_else(|| "it did not start with a hello".to_string(), |e| e.to_string());
            tracing::warn!("refused a data connection from {peer}: {why}");
            return Err(bad(why));
        }
    };
    if !crate::cluster::admits(hello.secret.as_deref()) {
        let why = format!(
            "refused a data connection claiming to be worker {}: it does not hold this job's cluster secret",
            hello.from
        );
        tracing::warn!("{why}");
        return Err(bad(why));
    }
    // Wait for this worker to set up the same attempt.
    let inbound = {
        let (lock, cv) = current;
        let deadline = Instant::now() + ATTEMPT_WAIT;
        let mut g = lock.lock().map_err(|_| bad("poisoned"))?;
        loop {
            if let Some(i) = g.as_ref().filter(|i| i.key == hello.key && i.ready.load(Ordering::SeqCst)) {
                break i.clone();
            }
            let newer = g
                .as_ref()
                .is_some_and(|i| (i.key.generation, i.key.attempt) > (hello.key.generation, hello.key.attempt));
            if newer || Instant::now() >= deadline {
                return Err(bad(format!("refusing data of attempt {:?}: not the current attempt", hello.key)));
            }
            g = cv.wait_timeout(g, Duration::from_millis(100)).map_err(|_| bad("poisoned"))?.0;
        }
    };
    if let Ok(mut s) = inbound.streams.lock() {
        s.push(stream.try_clone()?);
    }
    let result = route_inbound(&inbound, &stream, hello.from, &mut reader);
    if let Err(e) = &result
        && e.kind() != std::io::ErrorKind::UnexpectedEof
        && !inbound.closed.load(Ordering::SeqCst)
    {
        (inbound.fail)(format!("data from worker {} failed: {e}", hello.from));
    }
    result
}

/// Routes one connection's frames into the local input queues; credits go
/// back on the same connection.
fn route_inbound(
    inbound: &Arc<Inbound>,
    stream: &TcpStream,
    from: usize,
    reader: &mut impl Read,
) -> std::io::Result<()> {
    // Credits go back on the same connection, from their own thread.
    let (credit_tx, credit_rx) = channel::<Vec<u8>>();
    if let Ok(mut c) = inbound.credit_out.lock() {
        c.insert(from, credit_tx);
    }
    let mut writer = stream.try_clone()?;
    let _ = std::thread::Builder::new().name("data-credits".into()).spawn(move || {
        while let Ok(frame) = credit_rx.recv() {
            let mut buf = frame;
            while let Ok(more) = credit_rx.try_recv() {
                buf.extend(more);
            }
            if writer.write_all(&buf).is_err() {
                break;
            }
        }
    });
    // Every queue is registered before the attempt accepts connections: look
    // each one up once per connection, not once per frame.
    let mut queues: HashMap<(u32, u32), Sender<Envelope>> = HashMap::new();
    loop {
        if inbound.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        match read(reader, &inbound.s3)? {
            Frame::Data { vertex, subtask, channel, msg } => {
                let key = (vertex, subtask);
                if !queues.contains_key(&key)
                    && let Some(tx) = inbound.queues.lock().ok().and_then(|q| q.get(&key).cloned())
                {
                    queues.insert(key, tx);
                }
                match queues.get(&key) {
                    Some(tx) => {
                        if tx.send(Envelope { channel, msg }).is_err() {
                            return Ok(()); // the consumer is gone: the attempt is ending
                        }
                    }
                    None if inbound.closed.load(Ordering::SeqCst) => return Ok(()),
                    None => return Err(bad(format!("no subtask {subtask} of vertex {vertex} runs here"))),
                }
            }
            Frame::Hello(_) | Frame::Credit { .. } => return Err(bad("unexpected frame on a data connection")),
        }
    }
}
