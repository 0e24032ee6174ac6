//! One attempt's subtasks on a worker: built from the coordinator's deploy
//! spec, started, canceled and joined.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::time::Instant;

use sluice_storage::{S3Options, Storage};

use super::driver::SessionEvent;
use crate::checkpoint::cache::{FileCache, Use};
use crate::checkpoint::metadata::{FileEntry, Metadata, SectionKind};
use crate::checkpoint::store::{self, Loaded};
use crate::cluster::DeploySpec;
use crate::cluster::exchange::{AttemptExchange, AttemptKey, DataServer, FailHook};
use crate::config::Config;
use crate::error::EngineError;
use crate::plan::JobGraph;
use crate::runtime::{JobState, JobStatus, Wiring, deploy, sink_setups, spawn};

/// One attempt's subtasks on this worker.
pub(super) struct Running {
    pub(super) key: AttemptKey,
    pub(super) state: Arc<JobState>,
    pub(super) wiring: Wiring,
    pub(super) exchange: AttemptExchange,
    pub(super) handles: Vec<std::thread::JoinHandle<()>>,
    pub(super) s3: S3Options,
    /// How many subtasks run here.
    pub(super) subtasks: usize,
    /// The bytes of state read from storage for the restore (files a
    /// prefetch brought in before are not read again).
    pub(super) restore_read_bytes: u64,
}

impl Running {
    /// Stops the subtasks without committing anything.
    pub(super) fn cancel(&self) {
        self.state.cancel.store(true, Ordering::SeqCst);
        self.exchange.close();
    }

    pub(super) fn join(self, server: &DataServer) {
        for h in self.handles {
            let _ = h.join();
        }
        server.end(self.key);
    }
}

/// Whether a snapshot's state file holds something this worker restores: keyed
/// state in its subtasks' key groups, the committables and writer states of a
/// sink vertex it runs a subtask of, or any source's splits (every subtask of a
/// source or sink sees all of those, so a chained sink with state makes its
/// vertex's files needed by every worker that runs the vertex).
fn needed(graph: &crate::plan::JobGraph, spec: &DeploySpec, m: &Metadata, path: &str) -> bool {
    for vs in &m.vertices {
        let mut sections = vs.subtasks.iter().flat_map(|st| st.sections_in(path)).peekable();
        if sections.peek().is_none() {
            continue;
        }
        let Some(v) = graph.vertices.iter().find(|v| v.uid == vs.uid) else { return false };
        let local: Vec<usize> = (0..v.parallelism).filter(|i| spec.placement[v.id][*i] == spec.you).collect();
        return sections.any(|sec| match sec.kind {
            SectionKind::Keyed { key_group, .. } | SectionKind::Entries { key_group, .. } => {
                local.contains(&crate::keygroup::operator_index(key_group as usize, m.max_parallelism, v.parallelism))
            }
            // Every worker opens every source reader to know which subtasks start idle
            // (`deploy::open_readers`), also those of sources it runs no subtask of.
            SectionKind::Split => sec.len > 0,
            // Empty sections (a blackhole's writer state) need no file.
            _ => !local.is_empty() && sec.len > 0,
        });
    }
    false
}

/// Loads the files of snapshot `uri` that this worker's subtasks restore,
/// through the process's cache (`keep`: the bytes stay in it, for a prefetch).
fn load(spec: &DeploySpec, graph: &JobGraph, s3: &S3Options, uri: &str, keep: bool) -> Result<Loaded, EngineError> {
    let dir = Storage::open(store::snapshot_root(uri), s3).map_err(|e| EngineError::Storage(e.to_string()))?;
    let want = |m: &Metadata, f: &FileEntry| needed(graph, spec, m, &f.path);
    store::load_only_cached(&dir, want, Use { cache: FileCache::global(), keep })
        .map_err(|e| EngineError::Restore { location: dir.uri(), message: e.to_string() })
}

/// Reads the state files this worker would restore if `spec` were deployed,
/// and keeps them in the process's cache: a blue-green standby's workers then
/// read at activation only what the handoff savepoint adds.
pub(super) fn prefetch(spec: &DeploySpec) -> Result<u64, EngineError> {
    let Some(uri) = &spec.restore else { return Ok(0) };
    let config = Config { values: spec.config.clone() };
    let job = sluice_job::compile_configured(&spec.job_text, &spec.file, &config)?;
    let (graph, opts) = crate::local::prepare(&job, &config, &spec.job_id)?;
    let l = load(spec, &graph, &opts.checkpoint.s3, uri, true)?;
    Ok(l.read_bytes)
}

/// Builds and starts this worker's subtasks of an attempt.
pub(super) fn start(
    spec: &DeploySpec,
    server: &DataServer,
    events: &Sender<SessionEvent>,
) -> Result<Running, EngineError> {
    let config = Config { values: spec.config.clone() };
    let job = sluice_job::compile_configured(&spec.job_text, &spec.file, &config)?;
    let (graph, mut opts) = crate::local::prepare(&job, &config, &spec.job_id)?;
    opts.checkpoint.committer =
        sluice_connectors::Committer { deployment: spec.deployment_name.clone(), generation: spec.generation };
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
            let t = Instant::now();
            let l = load(spec, &graph, &s3, uri, false);
            FileCache::global().release();
            let l = l?;
            let (files, bytes) = l.in_memory();
            crate::say!(
                "worker restoring from {} ({files} of {} files, {bytes} bytes, {} of them read from storage, in {} ms)",
                l.location,
                l.metadata.files.len(),
                l.read_bytes,
                t.elapsed().as_millis()
            );
            Some(l)
        }
        None => None,
    };
    let restore_read_bytes = restore.as_ref().map_or(0, |l| l.read_bytes);
    let state = JobState::new(&spec.job_id, &spec.file, &graph);
    // Only the sinks of vertices with a subtask here: a worker loads the state files
    // of those alone (`needed`), and with per-vertex parallelism some run none of a sink's.
    let here = |v: &crate::plan::Vertex| spec.placement[v.id].contains(&spec.you);
    let setups = sink_setups(&graph, &state, &opts, restore.as_ref(), false, &here)?;
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
    let subtasks = d.tasks.len();
    state.set_status(JobStatus::Running);
    let handles = spawn(&graph, &state, &opts, d.tasks)?;
    let attempt = spec.attempt;
    let tx = events.clone();
    let coord_rx = d.coord_rx;
    std::thread::Builder::new()
        .name("tasks-out".into())
        .spawn(move || {
            for msg in coord_rx {
                if tx.send(SessionEvent::Task(attempt, msg)).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| EngineError::Internal(format!("cannot start a thread: {e}")))?;
    Ok(Running { key, state, wiring: d.wiring, exchange, handles, s3, subtasks, restore_read_bytes })
}
