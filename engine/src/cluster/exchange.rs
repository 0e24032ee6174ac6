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

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use arrow::buffer::Buffer;
use arrow::ipc::reader::StreamDecoder;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::{BarrierWire, ConnectionLimit, MAX_FRAME, read_body};
use crate::error::EngineError;
use crate::runtime::Exchange;
use crate::runtime::channel::{Credit, Envelope, Msg, Outbox, RemoteMsg};

const HELLO: u8 = 0;
const BATCH: u8 = 1;
const WATERMARK: u8 = 2;
const IDLE: u8 = 3;
const END: u8 = 4;
const BARRIER: u8 = 5;
const CREDIT: u8 = 6;
const HEADER: usize = 16;
/// How long an incoming connection waits for its attempt to be set up here.
const ATTEMPT_WAIT: Duration = Duration::from_secs(60);

/// Which attempt a connection belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptKey {
    pub generation: u64,
    pub attempt: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Hello {
    key: AttemptKey,
    from: usize,
}

/// One decoded frame.
#[derive(Debug)]
enum Frame {
    Hello(Hello),
    Data { vertex: u32, subtask: u32, channel: u32, msg: Msg },
    Credit { vertex: u32, subtask: u32, channel: u32, n: u32 },
}

fn header(out: &mut Vec<u8>, tag: u8, vertex: u32, subtask: u32, channel: u32) {
    out.extend_from_slice(&[0u8; 4]); // length, filled in by `finish_frame`
    out.extend_from_slice(&[tag, 0, 0, 0]);
    out.extend_from_slice(&vertex.to_le_bytes());
    out.extend_from_slice(&subtask.to_le_bytes());
    out.extend_from_slice(&channel.to_le_bytes());
}

/// Appends one frame for `msg` to `out`.
fn encode(out: &mut Vec<u8>, vertex: u32, subtask: u32, channel: u32, msg: &Msg) -> Result<(), String> {
    let start = out.len();
    let tag = match msg {
        Msg::Batch(_) => BATCH,
        Msg::Watermark(_) => WATERMARK,
        Msg::Idle(_) => IDLE,
        Msg::End => END,
        Msg::Barrier(_) => BARRIER,
        Msg::Commit(_) => return Err("a commit is never sent between workers".into()),
    };
    header(out, tag, vertex, subtask, channel);
    match msg {
        Msg::Batch(b) => {
            let mut w = StreamWriter::try_new(&mut *out, &b.schema()).map_err(|e| e.to_string())?;
            w.write(b).map_err(|e| e.to_string())?;
            w.finish().map_err(|e| e.to_string())?;
        }
        Msg::Watermark(w) => out.extend_from_slice(&w.to_le_bytes()),
        Msg::Idle(i) => out.push(u8::from(*i)),
        Msg::Barrier(b) => {
            out.extend(serde_json::to_vec(&BarrierWire::of(b)).map_err(|e| e.to_string())?);
        }
        Msg::End | Msg::Commit(_) => {}
    }
    finish_frame(out, start);
    Ok(())
}

fn finish_frame(out: &mut [u8], start: usize) {
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

fn encode_hello(out: &mut Vec<u8>, hello: &Hello) -> Result<(), String> {
    let start = out.len();
    header(out, HELLO, 0, 0, 0);
    out.extend(serde_json::to_vec(hello).map_err(|e| e.to_string())?);
    finish_frame(out, start);
    Ok(())
}

fn encode_credit(out: &mut Vec<u8>, vertex: u32, subtask: u32, channel: u32, n: u32) {
    let start = out.len();
    header(out, CREDIT, vertex, subtask, channel);
    out.extend_from_slice(&n.to_le_bytes());
    finish_frame(out, start);
}

fn bad(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// Reads one frame; barriers are opened with the worker's S3 settings.
fn read(r: &mut impl Read, s3: &sluice_storage::S3Options) -> std::io::Result<Frame> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if !(HEADER..=MAX_FRAME).contains(&len) {
        return Err(bad(format!("bad frame length {len}")));
    }
    // The payload starts 16 bytes into the body, so a batch stays aligned.
    // The buffer grows as the bytes arrive, not zeroed first: batches are large.
    let body = read_body(r, len)?;
    let word = |o: usize| u32::from_le_bytes([body[o], body[o + 1], body[o + 2], body[o + 3]]);
    let (tag, vertex, subtask, channel) = (body[0], word(4), word(8), word(12));
    let payload = &body[HEADER..];
    let data = |msg| Ok(Frame::Data { vertex, subtask, channel, msg });
    match tag {
        HELLO => Ok(Frame::Hello(serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?)),
        BATCH => {
            let buffer = Buffer::from_vec(body).slice(HEADER);
            data(Msg::Batch(decode_batch(buffer).map_err(bad)?))
        }
        WATERMARK => {
            let b: [u8; 8] = payload.try_into().map_err(|_| bad("bad watermark frame"))?;
            data(Msg::Watermark(i64::from_le_bytes(b)))
        }
        IDLE => data(Msg::Idle(payload.first().copied().unwrap_or(0) != 0)),
        END => data(Msg::End),
        BARRIER => {
            let w: BarrierWire = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
            data(Msg::Barrier(Arc::new(w.open(s3).map_err(bad)?)))
        }
        CREDIT => {
            let b: [u8; 4] = payload.try_into().map_err(|_| bad("bad credit frame"))?;
            Ok(Frame::Credit { vertex, subtask, channel, n: u32::from_le_bytes(b) })
        }
        t => Err(bad(format!("unknown frame type {t}"))),
    }
}

fn decode_batch(mut buffer: Buffer) -> Result<RecordBatch, String> {
    let mut decoder = StreamDecoder::new();
    while !buffer.is_empty() {
        if let Some(batch) = decoder.decode(&mut buffer).map_err(|e| e.to_string())? {
            return Ok(batch);
        }
    }
    Err("a batch frame holds no record batch".into())
}

/// The receiving side of the current attempt on this worker.
pub struct Inbound {
    key: AttemptKey,
    /// For barriers: the attempt's S3 settings.
    s3: sluice_storage::S3Options,
    /// Fails the attempt when a connection delivers garbage.
    fail: FailHook,
    /// The input queue of each local consumer subtask.
    queues: Mutex<HashMap<(u32, u32), Sender<Envelope>>>,
    /// Where credits for each peer worker go: the writer of its connection.
    credit_out: Mutex<HashMap<usize, Sender<Vec<u8>>>>,
    streams: Mutex<Vec<TcpStream>>,
    /// Every local consumer's queue is registered: frames can be routed.
    ready: AtomicBool,
    closed: AtomicBool,
}

impl Inbound {
    fn send_credit(&self, peer: usize, vertex: u32, subtask: u32, channel: u32) {
        let Ok(out) = self.credit_out.lock() else { return };
        if let Some(tx) = out.get(&peer) {
            let mut frame = Vec::with_capacity(24);
            encode_credit(&mut frame, vertex, subtask, channel, 1);
            let _ = tx.send(frame);
        }
    }

    fn close(&self) {
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
    current: Arc<(Mutex<Option<Arc<Inbound>>>, Condvar)>,
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
    let Frame::Hello(hello) = read(&mut reader, &sluice_storage::S3Options::default())? else {
        return Err(bad("a data connection must start with a hello"));
    };
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
        encode_hello(&mut hello, &Hello { key: self.key, from: self.me }).map_err(EngineError::Internal)?;
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

    fn outbox(&self, v: usize, i: usize, ch: u32, capacity: usize) -> Result<(Outbox, Arc<Credit>), EngineError> {
        let peer = self.worker_of(v, i);
        let mut links = self.links.lock().map_err(|_| EngineError::Internal("poisoned link table".into()))?;
        let link = match links.entry(peer) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(self.connect(peer)?),
        };
        let credit = Credit::new(capacity);
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
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(n: i64) -> RecordBatch {
        let schema =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from((0..n).collect::<Vec<_>>())),
                Arc::new(StringArray::from((0..n).map(|i| format!("row {i}")).collect::<Vec<_>>())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn frames_round_trip() {
        let s3 = sluice_storage::S3Options::default();
        let mut buf = Vec::new();
        let b = batch(100).slice(10, 50);
        encode(&mut buf, 3, 1, 7, &Msg::Batch(b.clone())).unwrap();
        encode(&mut buf, 3, 1, 7, &Msg::Watermark(-5)).unwrap();
        encode(&mut buf, 3, 1, 7, &Msg::Idle(true)).unwrap();
        encode(&mut buf, 3, 1, 7, &Msg::End).unwrap();
        encode_credit(&mut buf, 3, 1, 7, 2);
        let mut r = std::io::Cursor::new(buf);
        match read(&mut r, &s3).unwrap() {
            Frame::Data { vertex: 3, subtask: 1, channel: 7, msg: Msg::Batch(got) } => assert_eq!(got, b),
            f => panic!("{f:?}"),
        }
        assert!(matches!(read(&mut r, &s3).unwrap(), Frame::Data { msg: Msg::Watermark(-5), .. }));
        assert!(matches!(read(&mut r, &s3).unwrap(), Frame::Data { msg: Msg::Idle(true), .. }));
        assert!(matches!(read(&mut r, &s3).unwrap(), Frame::Data { msg: Msg::End, .. }));
        assert!(matches!(read(&mut r, &s3).unwrap(), Frame::Credit { n: 2, .. }));
        assert!(read(&mut r, &s3).is_err());
    }

    #[test]
    fn a_corrupt_frame_is_an_error_not_a_panic() {
        let s3 = sluice_storage::S3Options::default();
        for bytes in [vec![1, 0, 0, 0, 9], vec![255, 255, 255, 255], vec![20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]] {
            assert!(read(&mut std::io::Cursor::new(bytes), &s3).is_err());
        }
        let mut buf = Vec::new();
        header(&mut buf, BATCH, 0, 0, 0);
        buf.extend_from_slice(b"not arrow");
        finish_frame(&mut buf, 0);
        assert!(read(&mut std::io::Cursor::new(buf), &s3).is_err());
    }

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
        let (outbox, pcredit) = producer.outbox(1, 0, 0, 2).unwrap();
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
