//! Data exchange between workers.
//!
//! Each worker listens on its data address. For an attempt, a worker opens one
//! TCP connection to each worker that runs a consumer of one of its
//! producers; the connection carries every channel between the two,
//! multiplexed by (consumer vertex, consumer subtask, channel). Frames are
//! `[u32 length][u8 tag][3 bytes padding][u32 vertex][u32 subtask][u32 channel][payload]`,
//! little-endian; a batch's payload is an Arrow IPC stream (schema and one
//! record batch), 16-byte aligned in the frame so that it decodes without a
//! copy. Watermarks, idleness, barriers and end of input travel in the same
//! stream, so they stay in order with the data.
//!
//! Flow control is the local runner's, stretched over the wire: the
//! producer's worker holds `execution.buffer-capacity` credits per channel;
//! the consumer returns a credit (a `Credit` frame on the same connection)
//! when it has processed a batch, not when it has received it. A slow
//! consumer therefore stops its producers after that many batches per
//! channel, and nothing buffers without bound.
//!
//! A connection begins with a `Hello` frame naming the coordinator
//! generation, the attempt and the sending worker; frames of any other
//! attempt are refused, so a zombie cannot feed the current attempt.

mod frame;
mod server;

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::runtime::Exchange;
use crate::runtime::channel::{Buffers, Credit, Envelope, Outbox, RemoteMsg};
use frame::{Frame, Hello, bad, encode, encode_hello, read};
use server::Inbound;

pub use server::DataServer;

/// Which attempt a connection belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptKey {
    pub generation: u64,
    pub attempt: u64,
}

/// The producer's credits of each channel on a link, by (consumer vertex,
/// consumer subtask, channel).
type LinkCredits = Mutex<HashMap<(u32, u32, u32), Arc<Credit>>>;

/// An outgoing connection to one peer worker.
struct Link {
    tx: Sender<RemoteMsg>,
    /// The producer's credits of each channel on this link.
    credits: Arc<LinkCredits>,
    stream: TcpStream,
}

/// The network side of one attempt on one worker: implements
/// [`Exchange`] for [`crate::runtime::deploy`].
pub struct AttemptExchange {
    key: AttemptKey,
    me: usize,
    workers: Vec<String>,
    placement: Vec<Vec<usize>>,
    inbound: Arc<Inbound>,
    current: Arc<(Mutex<Option<Arc<Inbound>>>, Condvar)>,
    links: Mutex<HashMap<usize, Link>>,
    /// Set when this worker closes the attempt's connections itself.
    closing: Arc<AtomicBool>,
    /// Fails the attempt: a connection to another worker broke.
    fail: FailHook,
}

/// Reports a broken connection; the worker fails the attempt.
pub type FailHook = Arc<dyn Fn(String) + Send + Sync>;

impl AttemptExchange {
    pub fn new(
        server: &DataServer,
        key: AttemptKey,
        me: usize,
        workers: Vec<String>,
        placement: Vec<Vec<usize>>,
        s3: sluice_storage::S3Options,
        fail: FailHook,
    ) -> AttemptExchange {
        let inbound = server.begin(key, s3, fail.clone());
        AttemptExchange {
            key,
            me,
            workers,
            placement,
            inbound,
            current: server.current.clone(),
            links: Mutex::new(HashMap::new()),
            closing: Arc::new(AtomicBool::new(false)),
            fail,
        }
    }

    /// Every local subtask is built: accept data from other workers.
    pub fn open(&self) {
        self.inbound.ready.store(true, Ordering::SeqCst);
        self.current.1.notify_all();
    }

    fn worker_of(&self, v: usize, i: usize) -> usize {
        self.placement.get(v).and_then(|p| p.get(i)).copied().unwrap_or(usize::MAX)
    }

    /// Whether subtask `i` of vertex `v` runs on this worker.
    pub fn is_here(&self, v: usize, i: usize) -> bool {
        self.worker_of(v, i) == self.me
    }

    /// This worker's subtasks have all ended: let the links send what is
    /// queued and close once drained.
    pub fn release(&self) {
        self.closing.store(true, Ordering::SeqCst);
        if let Ok(mut links) = self.links.lock() {
            links.clear();
        }
    }

    /// Closes every connection of the attempt; producers waiting for credit
    /// fail instead of hanging.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.inbound.close();
        if let Ok(mut links) = self.links.lock() {
            for (_, link) in links.drain() {
                let _ = link.stream.shutdown(Shutdown::Both);
                if let Ok(c) = link.credits.lock() {
                    for credit in c.values() {
                        credit.close();
                    }
                }
            }
        }
    }

    fn connect(&self, peer: usize) -> Result<Link, EngineError> {
        let addr = self.workers.get(peer).ok_or_else(|| EngineError::Internal(format!("no worker {peer}")))?;
        let cluster =
            |e: std::io::Error| EngineError::Cluster(format!("cannot connect to worker {peer} at {addr}: {e}"));
        let sock = super::resolve(addr).map_err(cluster)?;
        let stream = TcpStream::connect_timeout(&sock, Duration::from_secs(10)).map_err(cluster)?;
        stream.set_nodelay(true).map_err(cluster)?;
        let mut hello = Vec::new();
        let me = Hello { key: self.key, from: self.me, secret: crate::cluster::secret() };
        encode_hello(&mut hello, &me).map_err(EngineError::Internal)?;
        let mut w = stream.try_clone().map_err(cluster)?;
        w.write_all(&hello).map_err(cluster)?;
        let credits: Arc<LinkCredits> = Arc::new(Mutex::new(HashMap::new()));
        let (tx, rx) = channel::<RemoteMsg>();
        let name = format!("worker {peer} at {addr}");
        let c2 = credits.clone();
        let n2 = name.clone();
        std::thread::Builder::new()
            .name(format!("data-out-{peer}"))
            .spawn(move || {
                if let Err(e) = write_link(w, rx) {
                    tracing::debug!("data link to {n2} ended: {e}");
                }
                close_all(&c2);
            })
            .map_err(|e| EngineError::Cluster(format!("cannot start a thread: {e}")))?;
        let c3 = credits.clone();
        let closing = self.closing.clone();
        let fail = self.fail.clone();
        let mut r = BufReader::new(stream.try_clone().map_err(cluster)?);
        std::thread::Builder::new()
            .name(format!("data-credit-{peer}"))
            .spawn(move || {
                let s3 = sluice_storage::S3Options::default();
                loop {
                    match read(&mut r, &s3) {
                        Ok(Frame::Credit { vertex, subtask, channel, n }) => {
                            let c = c3.lock().ok().and_then(|m| m.get(&(vertex, subtask, channel)).cloned());
                            if let Some(c) = c {
                                c.release_n(n as usize);
                            }
                        }
                        Ok(_) => {
                            fail(format!("unexpected frame from {name}"));
                            break;
                        }
                        // The end of the stream is normal once the peer's
                        // consumers are done; a dead peer is the
                        // coordinator's to notice. Garbage is not.
                        Err(e) => {
                            if e.kind() != std::io::ErrorKind::UnexpectedEof && !closing.load(Ordering::SeqCst) {
                                fail(format!("the data connection to {name} failed: {e}"));
                            }
                            break;
                        }
                    }
                }
                // The peer is gone: producers blocked on its credits fail.
                close_all(&c3);
            })
            .map_err(|e| EngineError::Cluster(format!("cannot start a thread: {e}")))?;
        Ok(Link { tx, credits, stream })
    }
}

fn close_all(credits: &LinkCredits) {
    if let Ok(c) = credits.lock() {
        for credit in c.values() {
            credit.close();
        }
    }
}

/// Encodes messages into the connection, flushing whenever the queue is empty.
fn write_link(stream: TcpStream, rx: Receiver<RemoteMsg>) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, stream);
    let mut buf = Vec::with_capacity(1 << 16);
    let mut next = rx.recv().ok();
    while let Some(m) = next {
        buf.clear();
        encode(&mut buf, m.vertex, m.subtask, m.channel, &m.msg).map_err(bad)?;
        w.write_all(&buf)?;
        next = match rx.try_recv() {
            Ok(m) => Some(m),
            Err(TryRecvError::Empty) => {
                w.flush()?;
                rx.recv().ok()
            }
            Err(TryRecvError::Disconnected) => None,
        };
    }
    w.flush()?;
    // Every producer on this link is done: the peer sees the end of the stream.
    w.get_ref().shutdown(Shutdown::Write)
}

impl Exchange for AttemptExchange {
    fn is_local(&self, v: usize, i: usize) -> bool {
        self.is_here(v, i)
    }

    fn outbox(&self, v: usize, i: usize, ch: u32, buffers: Buffers) -> Result<(Outbox, Arc<Credit>), EngineError> {
        let peer = self.worker_of(v, i);
        let mut links = self.links.lock().map_err(|_| EngineError::Internal("poisoned link table".into()))?;
        let link = match links.entry(peer) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(self.connect(peer)?),
        };
        let credit = Credit::with(buffers);
        if let Ok(mut c) = link.credits.lock() {
            c.insert((v as u32, i as u32, ch), credit.clone());
        }
        Ok((Outbox::Remote { link: link.tx.clone(), vertex: v as u32, subtask: i as u32 }, credit))
    }

    fn inbound(&self, v: usize, i: usize, ch: u32, from: (usize, usize)) -> Arc<Credit> {
        let peer = self.worker_of(from.0, from.1);
        let inbound = self.inbound.clone();
        Credit::remote(Box::new(move || inbound.send_credit(peer, v as u32, i as u32, ch)))
    }

    fn register(&self, v: usize, i: usize, tx: Sender<Envelope>) {
        if let Ok(mut q) = self.inbound.queues.lock() {
            q.insert((v as u32, i as u32), tx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::frame::tests::batch;
    use super::*;
    use crate::runtime::channel::Msg;

    /// Two "workers" in one process: a producer blocked on credits resumes
    /// only when the remote consumer has processed batches.
    #[test]
    fn credits_cross_the_connection() {
        let s3 = sluice_storage::S3Options::default();
        let server = DataServer::start("127.0.0.1:0").unwrap();
        let key = AttemptKey { generation: 1, attempt: 1 };
        let workers = vec!["127.0.0.1:1".to_string(), server.addr.to_string()];
        // Vertex 0 (producer) on worker 0, vertex 1 (consumer) on worker 1.
        let placement = vec![vec![0], vec![1]];
        let fail: FailHook = Arc::new(|e| panic!("{e}"));
        let consumer =
            AttemptExchange::new(&server, key, 1, workers.clone(), placement.clone(), s3.clone(), fail.clone());
        let (qtx, qrx) = channel();
        consumer.register(1, 0, qtx);
        let ccredit = consumer.inbound(1, 0, 0, (0, 0));
        consumer.open();
        let other = DataServer::start("127.0.0.1:0").unwrap();
        let producer = AttemptExchange::new(&other, key, 0, workers, placement, s3, fail);
        let (outbox, pcredit) =
            producer.outbox(1, 0, 0, crate::runtime::channel::Buffers { credits: 2, debloat_target: None }).unwrap();
        let target = crate::runtime::channel::Target { tx: outbox, channel: 0, credit: pcredit };
        let metrics = Arc::new(crate::metrics::SubtaskMetrics::new(0, 0));
        let t2 = target.clone();
        let m2 = metrics.clone();
        let h = std::thread::spawn(move || {
            for i in 0..5 {
                t2.send_batch(batch(10 + i), &m2).unwrap();
            }
            t2.send_control(Msg::End).unwrap();
        });
        let mut got = 0;
        loop {
            let env = qrx.recv_timeout(Duration::from_secs(10)).unwrap();
            match env.msg {
                Msg::Batch(b) => {
                    assert_eq!(b.num_rows() as i64, 10 + got);
                    got += 1;
                    // Two batches are in flight before the first credit returns.
                    std::thread::sleep(Duration::from_millis(20));
                    ccredit.release();
                }
                Msg::End => break,
                _ => {}
            }
        }
        h.join().unwrap();
        assert_eq!(got, 5);
        assert!(metrics.backpressured_ns.load(Ordering::Relaxed) > 0);
        producer.close();
        consumer.close();
    }
}
