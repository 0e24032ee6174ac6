//! The checkpoint coordinator: triggers checkpoints and savepoints, collects
//! acknowledgements, writes `_metadata`, tells sinks to commit, enforces the
//! timeout and the retention, and ends a job that finished or stopped with a
//! savepoint. It runs on the thread that drives one attempt of the job and
//! talks to subtasks through [`Cluster`], so its decisions are testable
//! without threads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sluice_storage::{S3Options, Storage};

use super::error::SnapshotError;
use super::lineage::Fence;
use super::metadata::{FileEntry, Metadata, OperatorState, SnapshotKind, SubtaskSnapshot, SubtaskState};
use super::store;
use super::{Barrier, BarrierInfo, CoordMsg};
use crate::job::{JobState, SavepointRequest, SavepointStatus, SnapshotStatus, checkpoint_started};
use sluice_api::rest::CheckpointAck;

mod complete;

/// Checkpointing settings of a run.
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    /// `<checkpoint-dir>/<job-id>`; `None` disables checkpoints (savepoints
    /// still work when a target directory is given).
    pub job_dir: Option<Storage>,
    pub interval: Option<Duration>,
    pub timeout: Duration,
    pub retained: usize,
    /// The default target of savepoints.
    pub savepoint_dir: Option<String>,
    /// Checkpoints write only the keyed state that changed since the last one.
    pub incremental: bool,
    pub s3: S3Options,
    /// Which deployment and generation commit sink output (sink commit logs).
    pub committer: sluice_connectors::Committer,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        CheckpointOptions {
            job_dir: None,
            interval: None,
            timeout: Duration::from_secs(600),
            retained: 3,
            savepoint_dir: None,
            incremental: true,
            s3: S3Options::default(),
            committer: sluice_connectors::Committer::default(),
        }
    }
}

impl CheckpointOptions {
    /// Output is exactly-once when checkpoints are stored: sinks commit only
    /// what a complete checkpoint covers, also at the end of a bounded job.
    pub fn exactly_once(&self) -> bool {
        self.job_dir.is_some()
    }
}

/// What the coordinator needs from the running subtasks of one attempt.
pub trait Cluster {
    /// Sends the barrier to every running source subtask.
    fn trigger(&self, barrier: &Barrier);
    /// Tells stopped sources to go on after a failed stop-with-savepoint.
    fn resume(&self);
    /// Tells every sink subtask to commit up to `id`; returns those reached.
    fn commit(&self, id: u64) -> HashSet<(usize, usize)>;
}

/// A stateful vertex as the coordinator describes it in `_metadata`.
#[derive(Debug, Clone)]
pub struct VertexMeta {
    pub uid: String,
    pub name: String,
    pub parallelism: usize,
    pub operators: Vec<OperatorState>,
}

/// How an attempt ends, when the coordinator ends it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// A bounded job finished and its final checkpoint is committed.
    Finished { location: String },
    /// A stop-with-savepoint completed and the sinks committed.
    Stopped { location: String },
}

struct Pending {
    barrier: Barrier,
    started: Instant,
    trigger_time: SystemTime,
    acks: HashMap<(usize, usize), SubtaskState>,
    files: Vec<FileEntry>,
    alignment_ms: u64,
    savepoint: Option<String>,
    /// The final checkpoint of a finished bounded job.
    is_final: bool,
}

struct AwaitCommit {
    id: u64,
    waiting: HashSet<(usize, usize)>,
    ending: Ending,
}

pub struct CheckpointCoordinator {
    opts: CheckpointOptions,
    job: Arc<JobState>,
    max_parallelism: usize,
    vertices: Vec<VertexMeta>,
    subtasks: Vec<(usize, usize)>,
    next_id: u64,
    next_periodic: Option<Instant>,
    pending: Option<Pending>,
    /// Finished subtasks: their final state and the last checkpoint they acknowledged.
    finished: HashMap<(usize, usize), (SubtaskSnapshot, u64)>,
    await_commit: Option<AwaitCommit>,
    /// The newest snapshot of this run that output was committed for: a
    /// checkpoint or a stop-with-savepoint (intermediate savepoints commit
    /// nothing and are not recovery points, as in Flink since 1.15).
    pub latest: Option<Storage>,
    /// This coordinator's generation: it reserves checkpoint directories and
    /// is checked after `_metadata` is durable, before anything is committed.
    pub fence: Option<Fence>,
    /// Why this coordinator stopped completing checkpoints: a newer one took over.
    fenced: Option<String>,
}

impl CheckpointCoordinator {
    /// `first_id`: the id of the first checkpoint (after the restored one).
    pub fn new(
        opts: CheckpointOptions,
        job: Arc<JobState>,
        max_parallelism: usize,
        vertices: Vec<VertexMeta>,
        first_id: u64,
    ) -> CheckpointCoordinator {
        let mut c = CheckpointCoordinator {
            next_periodic: opts.interval.map(|i| Instant::now() + i),
            opts,
            job,
            max_parallelism,
            vertices: Vec::new(),
            subtasks: Vec::new(),
            next_id: first_id.max(1),
            pending: None,
            finished: HashMap::new(),
            await_commit: None,
            latest: None,
            fence: None,
            fenced: None,
        };
        c.set_vertices(vertices);
        c
    }

    /// The vertices of the job, with their stateful operators.
    pub fn set_vertices(&mut self, vertices: Vec<VertexMeta>) {
        self.subtasks =
            vertices.iter().enumerate().flat_map(|(v, m)| (0..m.parallelism).map(move |s| (v, s))).collect();
        self.vertices = vertices;
    }

    /// Why this coordinator was fenced off, if it was.
    pub fn fenced(&self) -> Option<String> {
        self.fenced.clone()
    }

    /// Starts a new attempt: the subtasks are new, nothing is in flight.
    pub fn reset_attempt(&mut self, cluster: &dyn Cluster) {
        if let Some(p) = self.pending.take() {
            self.fail(p, "the job restarted".into(), true, cluster);
        }
        self.finished.clear();
        self.await_commit = None;
        self.next_periodic = self.opts.interval.map(|i| Instant::now() + i);
    }

    pub fn on_message(&mut self, msg: CoordMsg, cluster: &dyn Cluster) -> Option<Ending> {
        match msg {
            CoordMsg::Ack { id, vertex, subtask, result, alignment_ms, pause_us } => {
                let Some(p) = self.pending.as_mut().filter(|p| p.barrier.id == id) else {
                    return None; // a late ack of an aborted checkpoint
                };
                match result {
                    Ok((state, files)) => {
                        p.alignment_ms = p.alignment_ms.max(alignment_ms);
                        p.files.extend(files);
                        let ack = CheckpointAck {
                            vertex,
                            subtask,
                            ack_ms: p.started.elapsed().as_millis() as u64,
                            alignment_ms,
                            pause_us,
                            state_bytes: state.sections.iter().map(|s| s.len).sum(),
                        };
                        self.job.update_checkpoint(id, |r| r.acks.push(ack));
                        p.acks.insert((vertex, subtask), state);
                    }
                    Err(e) => {
                        let name = self.vertices.get(vertex).map(|v| v.name.clone()).unwrap_or_default();
                        if let Some(p) = self.pending.take() {
                            self.fail(p, format!("{name} (subtask {subtask}): {e}"), true, cluster);
                        }
                        return None;
                    }
                }
                self.try_complete(cluster)
            }
            CoordMsg::Finished { vertex, subtask, snapshot, last_checkpoint } => {
                self.finished.insert((vertex, subtask), (snapshot, last_checkpoint));
                if self.pending.is_some() {
                    return self.try_complete(cluster);
                }
                self.maybe_final(cluster);
                None
            }
            CoordMsg::Committed { id, vertex, subtask } => {
                if let Some(a) = self.await_commit.as_mut()
                    && id >= a.id
                {
                    a.waiting.remove(&(vertex, subtask));
                    if a.waiting.is_empty() {
                        return self.await_commit.take().map(|a| a.ending);
                    }
                }
                None
            }
            CoordMsg::Exited { .. } => None,
        }
    }

    /// Periodic checkpoints, savepoint requests and the timeout.
    pub fn tick(&mut self, cluster: &dyn Cluster) {
        if let Some(p) = &self.pending {
            if savepoint_preempts(&p.barrier, p.is_final)
                && !self.job.status().is_terminal()
                && let Some(req) = self.job.next_savepoint_request()
            {
                if let Some(p) = self.pending.take() {
                    let why =
                        format!("aborted: savepoint `{}` takes precedence over a periodic checkpoint", req.trigger_id);
                    self.fail(p, why, true, cluster);
                }
                self.trigger_savepoint(req, cluster);
                return;
            }
            if p.started.elapsed() > self.opts.timeout {
                let timeout = self.opts.timeout;
                if let Some(p) = self.pending.take() {
                    self.fail(
                        p,
                        format!("timed out after {} ms (execution.checkpointing.timeout)", timeout.as_millis()),
                        true,
                        cluster,
                    );
                }
            }
            return;
        }
        if self.await_commit.is_some() || self.job.status().is_terminal() {
            return;
        }
        if let Some(req) = self.job.next_savepoint_request() {
            self.trigger_savepoint(req, cluster);
            return;
        }
        if let (Some(at), Some(dir)) = (self.next_periodic, self.opts.job_dir.clone())
            && Instant::now() >= at
        {
            self.next_periodic = self.opts.interval.map(|i| Instant::now() + i);
            match self.checkpoint_barrier(&dir) {
                Ok(barrier) => self.start(barrier, None, false, cluster),
                Err((id, e)) => {
                    tracing::warn!("job `{}`: checkpoint {id} failed: {e}; the job goes on", self.job.job_id);
                    let mut r =
                        checkpoint_started(id, SnapshotKind::Checkpoint, dir.child(&store::checkpoint_dir(id)).uri());
                    r.status = SnapshotStatus::Failed;
                    r.failure = Some(e);
                    self.job.record_checkpoint(r);
                }
            }
        }
    }

    /// The barrier of the next checkpoint, into `<job_dir>/chk-<id>`, a
    /// directory reserved for this generation (see [`super::lineage`]).
    fn checkpoint_barrier(&mut self, job_dir: &Storage) -> Result<Barrier, (u64, String)> {
        let mut id = self.take_id();
        if let Some(fence) = self.fence.clone() {
            let mut taken = 0;
            loop {
                match fence.reserve(id) {
                    Ok(true) => break,
                    // Another generation holds this id (it started at the same time, or it is a zombie).
                    Ok(false) if taken < 100 => {
                        taken += 1;
                        id = self.take_id();
                    }
                    Ok(false) => {
                        return Err((id, format!("checkpoint ids up to {id} are reserved by other coordinators")));
                    }
                    Err(e) => return Err((id, format!("cannot reserve its directory: {e}"))),
                }
            }
        }
        Ok(Arc::new(BarrierInfo {
            id,
            kind: SnapshotKind::Checkpoint,
            incremental: self.opts.incremental,
            stop: false,
            drain: false,
            dir: job_dir.child(&store::checkpoint_dir(id)),
        }))
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn trigger_savepoint(&mut self, req: SavepointRequest, cluster: &dyn Cluster) {
        let target = match req.target_directory.clone().or_else(|| self.opts.savepoint_dir.clone()) {
            Some(t) => t,
            None => {
                self.job.set_savepoint(
                    &req.trigger_id,
                    SavepointStatus::failed("no targetDirectory and no --savepoint-dir"),
                );
                return;
            }
        };
        match Storage::open(&target, &self.opts.s3) {
            Ok(base) => self.trigger_savepoint_into(req, base, cluster),
            Err(e) => self.job.set_savepoint(&req.trigger_id, SavepointStatus::failed(&e.to_string())),
        }
    }

    /// Takes the savepoint into `savepoint-<triggerId>` under `base`.
    fn trigger_savepoint_into(&mut self, req: SavepointRequest, base: Storage, cluster: &dyn Cluster) {
        let dir = base.child(&store::savepoint_dir(&req.trigger_id));
        // A savepoint of this trigger id completed before (a restarted coordinator
        // was asked again): it is the answer; writing into it would damage it.
        match existing_savepoint(&dir) {
            Ok(None) => {}
            Ok(Some(job)) if job == self.job.job_id => {
                tracing::info!("job `{}`: savepoint {} already exists at {}", job, req.trigger_id, dir.uri());
                self.job.set_savepoint(&req.trigger_id, SavepointStatus::completed(&dir.uri()));
                return;
            }
            Ok(Some(other)) => {
                let why = format!(
                    "{} already holds a savepoint of job `{other}`; use another triggerId or targetDirectory",
                    dir.uri()
                );
                self.job.set_savepoint(&req.trigger_id, SavepointStatus::failed(&why));
                return;
            }
            Err(e) => {
                self.job.set_savepoint(&req.trigger_id, SavepointStatus::failed(&e.to_string()));
                return;
            }
        }
        self.trigger_savepoint_to(req, dir, cluster);
    }

    fn trigger_savepoint_to(&mut self, req: SavepointRequest, dir: Storage, cluster: &dyn Cluster) {
        let id = self.take_id();
        let barrier = Arc::new(BarrierInfo {
            id,
            kind: SnapshotKind::Savepoint,
            // Written on the subtasks' checkpoint chains, copying their files.
            incremental: self.opts.incremental,
            stop: req.stop,
            drain: req.drain,
            dir,
        });
        self.start(barrier, Some(req.trigger_id), false, cluster);
    }

    fn start(&mut self, barrier: Barrier, savepoint: Option<String>, is_final: bool, cluster: &dyn Cluster) {
        tracing::info!(
            "job `{}`: triggering {:?} {} to {}",
            self.job.job_id,
            barrier.kind,
            barrier.id,
            barrier.dir.uri()
        );
        self.job.record_checkpoint(checkpoint_started(barrier.id, barrier.kind, barrier.dir.uri()));
        self.pending = Some(Pending {
            barrier: barrier.clone(),
            started: Instant::now(),
            trigger_time: SystemTime::now(),
            acks: HashMap::new(),
            files: Vec::new(),
            alignment_ms: 0,
            savepoint,
            is_final,
        });
        if !is_final {
            cluster.trigger(&barrier);
        }
    }

    /// After every subtask finished, a bounded job takes a final checkpoint so
    /// that its last output is committed exactly once.
    fn maybe_final(&mut self, cluster: &dyn Cluster) {
        if self.finished.len() < self.subtasks.len() || self.pending.is_some() || self.await_commit.is_some() {
            return;
        }
        let Some(dir) = self.opts.job_dir.clone() else { return };
        let barrier = match self.checkpoint_barrier(&dir) {
            Ok(b) => b,
            Err((_, e)) => {
                // The attempt restarts and finishes again.
                self.job.fail(format!("cannot start the final checkpoint: {e}"));
                return;
            }
        };
        self.start(barrier, None, true, cluster);
        // Nothing to wait for: every subtask's state is its final one.
        let _ = self.try_complete(cluster);
    }
}

/// The job id of the complete savepoint in `dir`, if there is one.
fn existing_savepoint(dir: &Storage) -> Result<Option<String>, SnapshotError> {
    match dir.get(store::METADATA) {
        Ok(raw) => serde_json::from_slice::<Metadata>(&raw).map(|m| Some(m.job_id)).map_err(|source| {
            SnapshotError::Unreadable {
                uri: format!("{}/{}", dir.uri(), store::METADATA),
                what: "unreadable manifest",
                source,
            }
        }),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether a savepoint request aborts the snapshot in flight instead of
/// waiting behind it: a savepoint takes precedence over a periodic checkpoint
/// (an upgrade or a stop should not wait up to a checkpoint's duration), never
/// over another savepoint or a bounded job's final checkpoint. The aborted
/// checkpoint's pending output is committed by the next checkpoint, as after
/// any failed one; its subtasks' queued uploads are abandoned (see the
/// runtime's snapshot worker).
pub fn savepoint_preempts(in_flight: &BarrierInfo, is_final: bool) -> bool {
    in_flight.kind == SnapshotKind::Checkpoint && !is_final
}

/// Whether completing this snapshot commits output: a checkpoint or a
/// stop-with-savepoint does. An intermediate savepoint does not, as in Flink
/// since 1.15 (FLINK-25191): it is not a recovery point, so output committed
/// by it would be written again by a restore of the previous checkpoint.
pub fn commits(barrier: &BarrierInfo) -> bool {
    barrier.kind == SnapshotKind::Checkpoint || barrier.stop
}

#[cfg(test)]
mod tests;
