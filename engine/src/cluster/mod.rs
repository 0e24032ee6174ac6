//! Running a job across processes: one coordinator and any number of workers.
//!
//! - [`coordinator`] plans the job, waits for workers to register, places
//!   subtasks in their slots, drives checkpoints and serves the REST API. It
//!   runs the same checkpoint coordinator and restart strategy as the local
//!   runner; only the subtasks are elsewhere.
//! - [`worker`] runs the subtasks it is given, and exchanges data with the
//!   other workers ([`exchange`]).
//!
//! Control traffic is a typed protocol over one TCP connection per worker:
//! length-prefixed JSON frames of [`ToCoordinator`] and [`ToWorker`]. Both
//! ends are the same binary, and the first frame carries [`PROTOCOL`], so a
//! mismatch is refused with a clear message. (gRPC would need `protoc` or a
//! code generator at build time and adds HTTP/2 for what is one long-lived,
//! ordered, bidirectional stream per worker; the data plane needs its own
//! framing over TCP anyway.)
//!
//! Data traffic: see [`exchange`].
//!
//! Placement: a job needs as many slots as its highest vertex parallelism.
//! Slot `k` holds subtask `k` of every vertex, as Flink's slot sharing does,
//! so forward edges stay inside a worker; slots are spread over workers so
//! that each gets an equal share.
//!
//! Fencing: each coordinator claims the next generation number under the
//! job's checkpoint directory with a conditional write, and checks it after
//! every `_metadata` is durable and before anything is committed, so a zombie
//! coordinator can never commit output that its successor does not see
//! ([`crate::checkpoint::lineage`]). Workers refuse a coordinator older than
//! one they have seen.
//!
//! Admission: with a cluster secret (`--cluster-secret-file`, the same file on
//! the coordinator and its workers; the operator mounts the coordinator's token
//! Secret), a worker's registration and every data connection carry it, and
//! the coordinator and the receiving worker refuse any that does not match
//! (compared in constant time), with the reason. So a worker of another job
//! cannot register by mistake, and nothing without the secret can join.

pub mod coordinator;
pub mod exchange;
pub mod worker;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::checkpoint::metadata::{FileEntry, SectionKind, SubtaskState};
use crate::checkpoint::{BarrierInfo, SnapshotKind};
use crate::metrics::{Counts, SubtaskMetrics};

/// This process's cluster secret, set once at start ([`set_secret`]).
static SECRET: OnceLock<String> = OnceLock::new();

/// Reads the cluster secret from `path` (surrounding whitespace ignored) and keeps
/// it for the rest of the process.
pub fn set_secret(path: &std::path::Path) -> Result<(), crate::error::EngineError> {
    let bad = |m: String| crate::error::EngineError::Config(format!("--cluster-secret-file {}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(bad("the file is empty".into()));
    }
    if SECRET.get().is_some_and(|s| s != secret) {
        return Err(bad("a different secret is set already".into()));
    }
    let _ = SECRET.set(secret.to_string());
    Ok(())
}

/// The secret this process sends, if it has one.
pub(crate) fn secret() -> Option<String> {
    SECRET.get().cloned()
}

/// Whether a peer's `given` secret admits it: always without a secret here.
pub(crate) fn admits(given: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    match SECRET.get() {
        None => true,
        Some(want) => bool::from(given.unwrap_or("").as_bytes().ct_eq(want.as_bytes())),
    }
}

/// The version of the coordinator–worker protocol (2: workers report a
/// finished prefetch, [`ToCoordinator::Prefetched`]).
pub const PROTOCOL: u32 = 2;

/// The largest frame either side accepts, on control and data connections.
/// The biggest real frames are record batches (`execution.batch-size` rows)
/// and a finished subtask's final state. Frames are read as their bytes
/// arrive, so a bogus length costs no memory up front.
const MAX_FRAME: usize = 256 << 20;

/// Reading starts with at most this much room; the buffer grows as bytes arrive.
const FRAME_CHUNK: usize = 1 << 20;

/// Connections one listening port serves at once; more are closed at once.
/// A job needs one control connection per worker and, per worker, one data
/// connection from every other worker.
const MAX_CONNECTIONS: usize = 512;

/// Counts the open connections of one listening port.
#[derive(Clone, Default)]
struct ConnectionLimit(std::sync::Arc<std::sync::atomic::AtomicUsize>);

/// An admitted connection; dropping it frees its place.
struct Admitted(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl ConnectionLimit {
    fn admit(&self, port: &str) -> Option<Admitted> {
        use std::sync::atomic::Ordering;
        let open = self.0.fetch_add(1, Ordering::SeqCst);
        if open >= MAX_CONNECTIONS {
            self.0.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("{port}: {open} connections are open; refusing another");
            return None;
        }
        Some(Admitted(self.0.clone()))
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Reads `len` bytes of a frame body as they arrive.
fn read_body(r: &mut impl Read, len: usize) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(len.min(FRAME_CHUNK));
    r.take(len as u64).read_to_end(&mut body)?;
    if body.len() != len {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the connection ended inside a frame"));
    }
    Ok(body)
}

/// Messages from a worker to the coordinator.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ToCoordinator {
    Register {
        protocol: u32,
        /// A name for logs: the advertised data address.
        name: String,
        slots: usize,
        /// Where other workers reach this one's data exchange.
        data_addr: String,
        /// The newest coordinator generation this worker has served.
        generation_seen: u64,
        /// The job's cluster secret, if the worker has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    Heartbeat,
    /// Every subtask of the attempt is running.
    Deployed {
        attempt: u64,
        /// The bytes of state this worker read from storage to restore them.
        #[serde(default)]
        restore_read_bytes: u64,
    },
    /// Setting up or running the attempt failed.
    Failed {
        attempt: u64,
        message: String,
    },
    Ack {
        attempt: u64,
        id: u64,
        vertex: usize,
        subtask: usize,
        result: Result<(SubtaskState, Vec<FileEntry>), String>,
        alignment_ms: u64,
        #[serde(default)]
        pause_us: u64,
    },
    Finished {
        attempt: u64,
        vertex: usize,
        subtask: usize,
        sections: Vec<(SectionKind, Vec<u8>)>,
        last_checkpoint: u64,
    },
    Committed {
        attempt: u64,
        id: u64,
        vertex: usize,
        subtask: usize,
    },
    Exited {
        attempt: u64,
        vertex: usize,
        subtask: usize,
    },
    Metrics {
        attempt: u64,
        samples: Vec<MetricSample>,
    },
    /// A [`ToWorker::Prefetch`] of `location` is over: `read_bytes` were read
    /// into the cache, or it failed (`error`; a restore then reads from storage).
    Prefetched {
        location: String,
        read_bytes: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// Messages from the coordinator to a worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ToWorker {
    Registered {
        generation: u64,
        worker: usize,
    },
    /// Registration refused: the message says why.
    Refused {
        reason: String,
    },
    Heartbeat,
    Deploy(Box<DeploySpec>),
    /// A standby's workers read, ahead of an activation, the state files they
    /// would restore from `restore` with this placement (nothing runs).
    Prefetch(Box<DeploySpec>),
    Trigger {
        attempt: u64,
        barrier: BarrierWire,
    },
    Commit {
        attempt: u64,
        id: u64,
    },
    Resume {
        attempt: u64,
    },
    Cancel {
        attempt: u64,
    },
    /// The job is over: exit.
    Exit {
        reason: String,
    },
}

/// What a worker needs to run its part of an attempt. It compiles the job
/// itself, from the same text and configuration, so that every process has
/// the same graph.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploySpec {
    pub generation: u64,
    pub attempt: u64,
    pub job_id: String,
    /// The job file's name, for errors.
    pub file: String,
    pub job_text: String,
    pub config: BTreeMap<String, String>,
    /// The snapshot to restore from.
    pub restore: Option<String>,
    /// The data address of each worker, by worker index.
    pub workers: Vec<String>,
    /// For each vertex, the worker index of each subtask.
    pub placement: Vec<Vec<usize>>,
    /// The index of the worker this spec is for.
    pub you: usize,
    /// The coordinator's `--deployment-name`, which sink commit logs record.
    #[serde(default)]
    pub deployment_name: String,
}

/// A barrier as it crosses the network: the snapshot directory by URI.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BarrierWire {
    pub id: u64,
    pub kind: SnapshotKind,
    #[serde(default)]
    pub incremental: bool,
    pub stop: bool,
    pub drain: bool,
    pub dir: String,
}

impl BarrierWire {
    pub fn of(b: &BarrierInfo) -> BarrierWire {
        BarrierWire {
            id: b.id,
            kind: b.kind,
            incremental: b.incremental,
            stop: b.stop,
            drain: b.drain,
            dir: b.dir.uri(),
        }
    }

    pub fn open(&self, s3: &sluice_storage::S3Options) -> Result<BarrierInfo, String> {
        let dir = sluice_storage::Storage::open(&self.dir, s3).map_err(|e| format!("{}: {e}", self.dir))?;
        Ok(BarrierInfo {
            id: self.id,
            kind: self.kind,
            incremental: self.incremental,
            stop: self.stop,
            drain: self.drain,
            dir,
        })
    }
}

/// One subtask's counters, as a worker reports them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSample {
    pub vertex: usize,
    pub subtask: usize,
    /// records in, records out, bytes in, bytes out, busy ns, backpressured ns,
    /// idle ns, late records dropped, skipped records.
    pub counters: [u64; 9],
    pub watermark: i64,
    pub pending_records: u64,
    /// `u64::MAX` when unknown, as from a worker that does not report it.
    #[serde(default = "unknown")]
    pub splits: u64,
    /// The subtask thread's CPU time, in nanoseconds.
    #[serde(default)]
    pub cpu_ns: u64,
    #[serde(default = "unknown")]
    pub state_keys: u64,
    #[serde(default = "unknown")]
    pub state_keys_on_disk: u64,
    /// When the subtask first and last took records in (unix ms; 0: not yet).
    #[serde(default)]
    pub first_record_ms: u64,
    #[serde(default)]
    pub last_record_ms: u64,
    /// At a sink that has counted any: its (processing latency, event-time lag) histograms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<(Counts, Counts)>,
}

fn unknown() -> u64 {
    u64::MAX
}

impl MetricSample {
    pub fn of(m: &SubtaskMetrics) -> MetricSample {
        use std::sync::atomic::Ordering::Relaxed;
        MetricSample {
            vertex: m.vertex,
            subtask: m.subtask,
            counters: [
                m.records_in.load(Relaxed),
                m.records_out.load(Relaxed),
                m.bytes_in.load(Relaxed),
                m.bytes_out.load(Relaxed),
                m.busy_ns.load(Relaxed),
                m.backpressured_ns.load(Relaxed),
                m.idle_ns.load(Relaxed),
                m.late_records_dropped.load(Relaxed),
                m.skipped_records.load(Relaxed),
            ],
            watermark: m.watermark.load(Relaxed),
            pending_records: m.pending_records.load(Relaxed),
            splits: m.splits.load(Relaxed),
            cpu_ns: m.cpu_ns.load(Relaxed),
            state_keys: m.state_keys.load(Relaxed),
            state_keys_on_disk: m.state_keys_on_disk.load(Relaxed),
            first_record_ms: m.first_record_ms.load(Relaxed),
            last_record_ms: m.last_record_ms.load(Relaxed),
            latency: {
                let (p, e) = (m.processing_latency.read(), m.event_time_lag.read());
                (p.total() + e.total() > 0).then_some((p, e))
            },
        }
    }

    /// Adds the growth since `last` to the coordinator's counters of the subtask.
    pub fn apply(&self, m: &SubtaskMetrics, last: Option<&MetricSample>) {
        use std::sync::atomic::Ordering::Relaxed;
        let targets = [
            &m.records_in,
            &m.records_out,
            &m.bytes_in,
            &m.bytes_out,
            &m.busy_ns,
            &m.backpressured_ns,
            &m.idle_ns,
            &m.late_records_dropped,
            &m.skipped_records,
        ];
        for (k, t) in targets.iter().enumerate() {
            let before = last.map_or(0, |l| l.counters[k]);
            t.fetch_add(self.counters[k].saturating_sub(before), Relaxed);
        }
        m.cpu_ns.fetch_add(self.cpu_ns.saturating_sub(last.map_or(0, |l| l.cpu_ns)), Relaxed);
        if let Some((p, e)) = &self.latency {
            let before = last.and_then(|l| l.latency.as_ref());
            m.processing_latency.add_growth(p, before.map(|b| &b.0));
            m.event_time_lag.add_growth(e, before.map(|b| &b.1));
        }
        m.watermark.store(self.watermark, Relaxed);
        m.pending_records.store(self.pending_records, Relaxed);
        m.splits.store(self.splits, Relaxed);
        m.state_keys.store(self.state_keys, Relaxed);
        m.state_keys_on_disk.store(self.state_keys_on_disk, Relaxed);
        m.saw_records_at(self.first_record_ms, self.last_record_ms);
    }
}

/// Writes one length-prefixed JSON frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    w.write_all(&(body.len() as u32).to_le_bytes())?;
    w.write_all(&body)?;
    w.flush()
}

/// Reads one length-prefixed JSON frame.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "frame of {len} bytes is larger than the limit of {MAX_FRAME}; is this a Sluice engine of the same version?"
            ),
        ));
    }
    let body = read_body(r, len)?;
    serde_json::from_slice(&body).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Resolves `host:port` (a Service name, a pod IP or a literal address).
pub fn resolve(addr: &str) -> std::io::Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, format!("`{addr}` does not resolve to an address"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_frame_length_is_refused_and_a_short_frame_costs_only_its_bytes() {
        let mut bogus = Vec::from(((MAX_FRAME + 1) as u32).to_le_bytes());
        bogus.extend_from_slice(b"{}");
        let e = read_frame::<serde_json::Value>(&mut bogus.as_slice()).unwrap_err();
        assert!(e.to_string().contains("larger than the limit"), "{e}");
        // A length of 200 MiB with 2 bytes behind it: an EOF, not a 200 MiB buffer.
        let mut short = Vec::from((200u32 << 20).to_le_bytes());
        short.extend_from_slice(b"{}");
        let e = read_frame::<serde_json::Value>(&mut short.as_slice()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    }

    #[test]
    fn a_port_admits_a_bounded_number_of_connections() {
        let limit = ConnectionLimit::default();
        let open: Vec<Admitted> = (0..MAX_CONNECTIONS).map_while(|_| limit.admit("test")).collect();
        assert_eq!(open.len(), MAX_CONNECTIONS);
        assert!(limit.admit("test").is_none());
        drop(open);
        assert!(limit.admit("test").is_some());
    }
}
