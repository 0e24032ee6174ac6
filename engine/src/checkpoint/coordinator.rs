//! The checkpoint coordinator: triggers checkpoints and savepoints, collects
//! acknowledgements, writes `_metadata`, tells sinks to commit, enforces the
//! timeout and the retention, and ends a job that finished or stopped with a
//! savepoint. It runs on the thread that drives one attempt of the job and
//! talks to subtasks through [`Cluster`], so its decisions are testable
//! without threads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use sluice_storage::{S3Options, Storage};

use super::lineage::{Fence, OWNER};
use super::metadata::{
    FORMAT_VERSION, FileEntry, Metadata, OperatorState, SnapshotKind, SubtaskSnapshot, SubtaskState, VertexState,
};
use super::store::{self, Terminal};
use super::{Barrier, BarrierInfo, CoordMsg};
use crate::runtime::job::rfc3339;
use crate::runtime::{CheckpointRecord, JobState, SavepointRequest, SavepointStatus};

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
    pub s3: S3Options,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        CheckpointOptions {
            job_dir: None,
            interval: None,
            timeout: Duration::from_secs(600),
            retained: 3,
            savepoint_dir: None,
            s3: S3Options::default(),
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

pub struct Coordinator {
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

impl Coordinator {
    /// `first_id`: the id of the first checkpoint (after the restored one).
    pub fn new(
        opts: CheckpointOptions,
        job: Arc<JobState>,
        max_parallelism: usize,
        vertices: Vec<VertexMeta>,
        first_id: u64,
    ) -> Coordinator {
        let mut c = Coordinator {
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
            CoordMsg::Ack { id, vertex, subtask, result, alignment_ms } => {
                let Some(p) = self.pending.as_mut().filter(|p| p.barrier.id == id) else {
                    return None; // a late ack of an aborted checkpoint
                };
                match result {
                    Ok((state, file)) => {
                        p.alignment_ms = p.alignment_ms.max(alignment_ms);
                        p.files.extend(file);
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
                    let mut r = CheckpointRecord::started(
                        id,
                        SnapshotKind::Checkpoint,
                        dir.child(&store::checkpoint_dir(id)).uri(),
                    );
                    r.status = "FAILED".into();
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
        let dir = match Storage::open(&target, &self.opts.s3) {
            Ok(s) => s.child(&store::savepoint_dir(&req.trigger_id)),
            Err(e) => {
                self.job.set_savepoint(&req.trigger_id, SavepointStatus::failed(&e.to_string()));
                return;
            }
        };
        // A savepoint of this trigger id completed before (a restarted coordinator
        // was asked again): it is the answer; writing into it would damage it.
        if dir.exists(store::METADATA).unwrap_or(false) {
            tracing::info!("job `{}`: savepoint {} already exists at {}", self.job.job_id, req.trigger_id, dir.uri());
            self.job.set_savepoint(&req.trigger_id, SavepointStatus::completed(&dir.uri()));
            return;
        }
        self.trigger_savepoint_to(req, dir, cluster);
    }

    fn trigger_savepoint_to(&mut self, req: SavepointRequest, dir: Storage, cluster: &dyn Cluster) {
        let id = self.take_id();
        let barrier =
            Arc::new(BarrierInfo { id, kind: SnapshotKind::Savepoint, stop: req.stop, drain: req.drain, dir });
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
        self.job.record_checkpoint(CheckpointRecord::started(barrier.id, barrier.kind, barrier.dir.uri()));
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

    fn try_complete(&mut self, cluster: &dyn Cluster) -> Option<Ending> {
        let p = self.pending.as_ref()?;
        let id = p.barrier.id;
        let done = self
            .subtasks
            .iter()
            .all(|k| p.acks.contains_key(k) || self.finished.get(k).is_some_and(|(_, last)| *last < id));
        if !done {
            return None;
        }
        let p = self.pending.take()?;
        if self.job.user_cancel.load(Ordering::SeqCst) {
            self.fail(
                p,
                "the job is being canceled (SIGTERM or POST /v1/job/cancel); nothing more is committed".into(),
                true,
                cluster,
            );
            return None;
        }
        if let Some(e) = crate::failpoint::hit("checkpoint.before-metadata") {
            self.fail(p, e, true, cluster);
            return None;
        }
        let metadata = match self.complete(&p) {
            Ok(m) => m,
            Err(e) => {
                self.fail(p, e, true, cluster);
                return None;
            }
        };
        // `_metadata` is durable: a newer generation that starts from now on sees
        // this snapshot. Commit only if none started before (lineage invariant 1).
        // If one did, the snapshot stays: that generation may have restored it.
        match self.fence.as_ref().map(Fence::check) {
            Some(Ok(Some(why))) => {
                tracing::error!("job `{}`: {why}", self.job.job_id);
                self.fenced = Some(why.clone());
                self.fail(p, why.clone(), false, cluster);
                self.job.fail(why);
                return None;
            }
            Some(Err(e)) => {
                self.fail(p, format!("cannot verify this coordinator's generation: {e}"), false, cluster);
                return None;
            }
            Some(Ok(None)) | None => {}
        }
        crate::failpoint::hit("checkpoint.before-commit");
        let location = p.barrier.dir.uri();
        let duration = p.started.elapsed().as_millis() as u64;
        self.job.update_checkpoint(p.barrier.id, |r| {
            r.status = "COMPLETED".into();
            r.duration_ms = duration;
            r.size_bytes = metadata.total_size();
            r.alignment_ms = p.alignment_ms;
        });
        tracing::info!(
            "job `{}`: {:?} {} complete in {duration} ms ({} bytes, alignment {} ms)",
            self.job.job_id,
            p.barrier.kind,
            p.barrier.id,
            metadata.total_size(),
            p.alignment_ms
        );
        if let Some(t) = &p.savepoint {
            self.job.set_savepoint(t, SavepointStatus::completed(&location));
        }
        if p.barrier.kind == SnapshotKind::Checkpoint
            && let Some(job_dir) = &self.opts.job_dir
            && let Err(e) = store::retain(job_dir, self.opts.retained, p.barrier.id)
        {
            tracing::warn!("job `{}`: cannot delete old checkpoints: {e}", self.job.job_id);
        }
        let ending = if p.barrier.stop {
            Some(Ending::Stopped { location: location.clone() })
        } else if p.is_final {
            Some(Ending::Finished { location: location.clone() })
        } else {
            None
        };
        // Output is committed by checkpoints and by a stop-with-savepoint only.
        if !commits(&p.barrier) {
            return None;
        }
        if let Some(ending) = &ending
            && let Err(e) = self.write_terminal(ending)
        {
            // Without the marker a restart could resume past this snapshot: commit nothing.
            self.job.fail(format!("cannot write the terminal marker: {e}"));
            return None;
        }
        self.latest = Some(p.barrier.dir.clone());
        let reached = cluster.commit(p.barrier.id);
        if let Some(e) = crate::failpoint::hit("checkpoint.committed") {
            self.job.fail(e);
        }
        if let Some(ending) = ending {
            if reached.is_empty() {
                return Some(ending);
            }
            self.await_commit = Some(AwaitCommit { id: p.barrier.id, waiting: reached, ending });
        }
        // Subtasks that finished while this checkpoint was in flight.
        self.maybe_final(cluster);
        None
    }

    /// Writes the state of finished subtasks and `_metadata`.
    fn complete(&self, p: &Pending) -> Result<Metadata, String> {
        let dir = &p.barrier.dir;
        let mut files = p.files.clone();
        let mut by_vertex: BTreeMap<usize, Vec<SubtaskState>> = BTreeMap::new();
        for &(v, s) in &self.subtasks {
            let state = match p.acks.get(&(v, s)) {
                Some(st) => st.clone(),
                None => {
                    let snap = self.finished.get(&(v, s)).map(|f| &f.0).cloned().unwrap_or_default();
                    let (state, file) =
                        store::write_subtask(dir, &self.vertices[v].uid, s, &snap).map_err(|e| e.to_string())?;
                    files.extend(file);
                    state
                }
            };
            by_vertex.entry(v).or_default().push(state);
        }
        let vertices = self
            .vertices
            .iter()
            .enumerate()
            .map(|(i, v)| VertexState {
                uid: v.uid.clone(),
                name: v.name.clone(),
                parallelism: v.parallelism,
                operators: v.operators.clone(),
                subtasks: by_vertex.remove(&i).unwrap_or_default(),
            })
            .collect();
        let metadata = Metadata {
            format_version: FORMAT_VERSION,
            generation: self.fence.as_ref().map_or(0, |f| f.generation),
            job_id: self.job.job_id.clone(),
            checkpoint_id: p.barrier.id,
            kind: p.barrier.kind,
            max_parallelism: self.max_parallelism,
            timestamp: rfc3339(p.trigger_time),
            vertices,
            files,
        };
        store::write_metadata(dir, &metadata).map_err(|e| e.to_string())?;
        Ok(metadata)
    }

    /// Marks a checkpoint failed. With `clean_up`, its files go (but not the
    /// directory's reservation, so that no other generation reuses the id
    /// while late uploads of this one may still arrive).
    fn fail(&mut self, p: Pending, reason: String, clean_up: bool, cluster: &dyn Cluster) {
        tracing::warn!(
            "job `{}`: {:?} {} failed: {reason}; the job goes on",
            self.job.job_id,
            p.barrier.kind,
            p.barrier.id
        );
        let duration = p.started.elapsed().as_millis() as u64;
        self.job.update_checkpoint(p.barrier.id, |r| {
            r.status = "FAILED".into();
            r.duration_ms = duration;
            r.failure = Some(reason.clone());
        });
        if let Some(t) = &p.savepoint {
            self.job.set_savepoint(t, SavepointStatus::failed(&reason));
        }
        if p.barrier.stop {
            cluster.resume();
        }
        if !clean_up {
            return;
        }
        // Best effort: the storage may be what failed.
        let dir = &p.barrier.dir;
        let removed = dir
            .list("")
            .and_then(|objects| objects.iter().filter(|o| o.path != OWNER).try_for_each(|o| dir.delete(&o.path)));
        if let Err(e) = removed {
            tracing::debug!("cannot clean up {}: {e}", dir.uri());
        }
    }

    /// Writes the terminal marker before the last commit, so that a restart of
    /// this deployment stays terminal instead of resuming past the snapshot.
    fn write_terminal(&self, ending: &Ending) -> Result<(), String> {
        let Some(job_dir) = &self.opts.job_dir else { return Ok(()) };
        let (reason, location) = match ending {
            Ending::Finished { location } => ("FINISHED", location),
            Ending::Stopped { location } => ("STOPPED", location),
        };
        let t = Terminal {
            reason: reason.into(),
            location: location.clone(),
            time: rfc3339(SystemTime::now()),
            generation: self.fence.as_ref().map_or(0, |f| f.generation),
        };
        store::write_terminal(job_dir, &t).map_err(|e| e.to_string())
    }
}

/// Whether completing this snapshot commits output: a checkpoint or a
/// stop-with-savepoint does. An intermediate savepoint does not, as in Flink
/// since 1.15 (FLINK-25191): it is not a recovery point, so output committed
/// by it would be written again by a restore of the previous checkpoint.
pub fn commits(barrier: &BarrierInfo) -> bool {
    barrier.kind == SnapshotKind::Checkpoint || barrier.stop
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::checkpoint::metadata::SectionKind;
    use crate::plan::JobGraph;

    /// Records what the coordinator asks of the subtasks.
    #[derive(Default)]
    struct Fake {
        triggered: RefCell<Vec<u64>>,
        resumed: RefCell<usize>,
        committed: RefCell<Vec<u64>>,
        sinks: HashSet<(usize, usize)>,
    }

    impl Cluster for Fake {
        fn trigger(&self, barrier: &Barrier) {
            self.triggered.borrow_mut().push(barrier.id);
        }
        fn resume(&self) {
            *self.resumed.borrow_mut() += 1;
        }
        fn commit(&self, id: u64) -> HashSet<(usize, usize)> {
            self.committed.borrow_mut().push(id);
            self.sinks.clone()
        }
    }

    /// Two vertices: a source (2 subtasks) and a sink (1 subtask).
    fn coordinator(job_dir: &Storage, interval: Option<Duration>) -> Coordinator {
        let g = JobGraph { vertices: vec![], edges: vec![], max_parallelism: 128, local_time_zone: "UTC".into() };
        let job = JobState::new("j", "j.sql", &g);
        let opts = CheckpointOptions { job_dir: Some(job_dir.clone()), interval, ..CheckpointOptions::default() };
        let v = |uid: &str, p| VertexMeta { uid: uid.into(), name: uid.into(), parallelism: p, operators: vec![] };
        Coordinator::new(opts, job, 128, vec![v("src", 2), v("sink", 1)], 1)
    }

    fn ack(id: u64, vertex: usize, subtask: usize) -> CoordMsg {
        CoordMsg::Ack {
            id,
            vertex,
            subtask,
            result: Ok((SubtaskState { subtask, file: None, sections: vec![] }, None)),
            alignment_ms: 3,
        }
    }

    fn finished(vertex: usize, subtask: usize, last_checkpoint: u64) -> CoordMsg {
        let mut snapshot = SubtaskSnapshot::default();
        snapshot.sections.push((SectionKind::Split, vec![1, 2, 3]));
        CoordMsg::Finished { vertex, subtask, snapshot, last_checkpoint }
    }

    #[test]
    fn a_checkpoint_completes_on_the_last_ack_and_then_sinks_commit() {
        let dir = Storage::in_memory().child("j");
        let mut c = coordinator(&dir, Some(Duration::ZERO));
        let fake = Fake::default();
        c.reset_attempt(&fake);
        c.tick(&fake);
        assert_eq!(*fake.triggered.borrow(), vec![1]);
        c.tick(&fake); // one checkpoint at a time
        assert_eq!(*fake.triggered.borrow(), vec![1]);
        assert_eq!(c.on_message(ack(1, 0, 0), &fake), None);
        assert_eq!(c.on_message(ack(1, 0, 1), &fake), None);
        assert!(fake.committed.borrow().is_empty(), "committed before every subtask acknowledged");
        assert!(!dir.child("chk-1").exists("_metadata").unwrap());
        assert_eq!(c.on_message(ack(1, 1, 0), &fake), None);
        assert!(dir.child("chk-1").exists("_metadata").unwrap());
        assert_eq!(*fake.committed.borrow(), vec![1]);
        let r = c.job.last_completed_checkpoint().unwrap();
        assert_eq!((r.id, r.alignment_ms, r.status.as_str()), (1, 3, "COMPLETED"));
    }

    #[test]
    fn a_checkpoint_past_its_timeout_is_aborted_and_the_next_one_starts() {
        let dir = Storage::in_memory().child("j");
        let mut c = coordinator(&dir, Some(Duration::ZERO));
        c.opts.timeout = Duration::from_millis(1);
        let fake = Fake::default();
        c.reset_attempt(&fake);
        c.tick(&fake);
        std::thread::sleep(Duration::from_millis(5));
        c.tick(&fake); // aborts checkpoint 1
        let history = c.job.checkpoints();
        assert_eq!(history[0].status, "FAILED");
        assert!(history[0].failure.as_deref().is_some_and(|f| f.contains("execution.checkpointing.timeout")));
        c.tick(&fake);
        assert_eq!(*fake.triggered.borrow(), vec![1, 2]);
        // The aborted checkpoint's acks no longer count.
        for (v, s) in [(0, 0), (0, 1), (1, 0)] {
            assert_eq!(c.on_message(ack(1, v, s), &fake), None);
        }
        assert!(fake.committed.borrow().is_empty());
    }

    #[test]
    fn a_failed_ack_aborts_and_resumes_a_stop_with_savepoint() {
        let dir = Storage::in_memory().child("j");
        let mut c = coordinator(&dir, None);
        let fake = Fake::default();
        c.reset_attempt(&fake);
        c.job.request_savepoint(Some("t".into()), None, true, false).unwrap();
        // The in-memory store has no URI: trigger into a directory of it directly.
        let req = c.job.next_savepoint_request().unwrap();
        c.trigger_savepoint_to(req, dir.child("sp"), &fake);
        assert_eq!(fake.triggered.borrow().len(), 1);
        let id = fake.triggered.borrow()[0];
        let failed =
            CoordMsg::Ack { id, vertex: 0, subtask: 1, result: Err("s3://b/x: unreachable".into()), alignment_ms: 0 };
        assert_eq!(c.on_message(failed, &fake), None);
        assert_eq!(*fake.resumed.borrow(), 1, "sources were not resumed");
        assert_eq!(c.job.savepoint("t").unwrap().status, "FAILED");
        assert!(fake.committed.borrow().is_empty());
        // A late ack of the aborted checkpoint changes nothing.
        assert_eq!(c.on_message(ack(id, 0, 0), &fake), None);
        assert!(c.pending.is_none());
    }

    #[test]
    fn a_finished_subtask_counts_only_for_checkpoints_after_its_last_one() {
        let dir = Storage::in_memory().child("j");
        let mut c = coordinator(&dir, Some(Duration::ZERO));
        let fake = Fake { sinks: [(1, 0)].into(), ..Fake::default() };
        c.reset_attempt(&fake);
        c.tick(&fake); // checkpoint 1
        // Source 0 took part in checkpoint 1, then finished: its ack is still due.
        assert_eq!(c.on_message(finished(0, 0, 1), &fake), None);
        assert_eq!(c.on_message(ack(1, 0, 1), &fake), None);
        assert_eq!(c.on_message(ack(1, 1, 0), &fake), None);
        assert!(fake.committed.borrow().is_empty(), "completed without source 0's ack");
        assert_eq!(c.on_message(ack(1, 0, 0), &fake), None);
        assert_eq!(*fake.committed.borrow(), vec![1]);
        // Everything finishes: a final checkpoint, then the job ends once the sink committed.
        assert_eq!(c.on_message(finished(0, 1, 1), &fake), None);
        assert_eq!(c.on_message(finished(1, 0, 1), &fake), None);
        assert_eq!(*fake.committed.borrow(), vec![1, 2]);
        assert!(dir.child("chk-2").exists("_metadata").unwrap());
        let end = c.on_message(CoordMsg::Committed { id: 2, vertex: 1, subtask: 0 }, &fake);
        assert_eq!(end, Some(Ending::Finished { location: dir.child("chk-2").uri() }));
        assert!(store::read_terminal(&dir).unwrap().is_some_and(|t| t.reason == "FINISHED"));
    }

    #[test]
    fn an_intermediate_savepoint_commits_nothing_and_a_stop_savepoint_commits_after_the_terminal_marker() {
        let dir = Storage::in_memory().child("j");
        let mut c = coordinator(&dir, None);
        let fake = Fake { sinks: [(1, 0)].into(), ..Fake::default() };
        c.reset_attempt(&fake);
        c.job.request_savepoint(Some("sp".into()), None, false, false).unwrap();
        let req = c.job.next_savepoint_request().unwrap();
        c.trigger_savepoint_to(req, dir.child("sp"), &fake);
        for (v, s) in [(0, 0), (0, 1), (1, 0)] {
            assert_eq!(c.on_message(ack(1, v, s), &fake), None);
        }
        assert_eq!(c.job.savepoint("sp").unwrap().status, "COMPLETED");
        assert!(fake.committed.borrow().is_empty(), "an intermediate savepoint committed output");
        assert!(c.latest.is_none(), "an intermediate savepoint became a recovery point");
        c.job.request_savepoint(Some("stop".into()), None, true, false).unwrap();
        let req = c.job.next_savepoint_request().unwrap();
        c.trigger_savepoint_to(req, dir.child("stop"), &fake);
        for (v, s) in [(0, 0), (0, 1), (1, 0)] {
            assert_eq!(c.on_message(ack(2, v, s), &fake), None);
        }
        assert_eq!(*fake.committed.borrow(), vec![2]);
        // The marker is written before the sinks commit.
        assert!(store::read_terminal(&dir).unwrap().is_some_and(|t| t.reason == "STOPPED"));
        let end = c.on_message(CoordMsg::Committed { id: 2, vertex: 1, subtask: 0 }, &fake);
        assert_eq!(end, Some(Ending::Stopped { location: dir.child("stop").uri() }));
    }

    #[test]
    fn a_coordinator_superseded_while_completing_keeps_the_snapshot_and_commits_nothing() {
        let dir = Storage::in_memory().child("j");
        let mut c = coordinator(&dir, Some(Duration::ZERO));
        let (fence, _) = crate::checkpoint::lineage::claim(&dir, "a").unwrap();
        c.fence = Some(fence);
        let fake = Fake { sinks: [(1, 0)].into(), ..Fake::default() };
        c.reset_attempt(&fake);
        c.tick(&fake);
        assert!(dir.child("chk-1").exists(OWNER).unwrap(), "the checkpoint directory was not reserved");
        assert_eq!(c.on_message(ack(1, 0, 0), &fake), None);
        assert_eq!(c.on_message(ack(1, 0, 1), &fake), None);
        // A new coordinator claims generation 2 before the last acknowledgement.
        crate::checkpoint::lineage::claim(&dir, "a").unwrap();
        assert_eq!(c.on_message(ack(1, 1, 0), &fake), None);
        assert!(fake.committed.borrow().is_empty(), "a superseded coordinator committed");
        assert!(c.fenced().is_some_and(|w| w.contains("superseded by generation 2")));
        // The snapshot stays: the new coordinator may have restored it.
        assert!(dir.child("chk-1").exists("_metadata").unwrap());
        // Ids reserved by another generation are skipped.
        let (other, _) = crate::checkpoint::lineage::claim(&dir, "b").unwrap();
        assert!(other.reserve(2).unwrap());
        let mut d = coordinator(&dir, Some(Duration::ZERO));
        d.fence = Some(crate::checkpoint::lineage::claim(&dir, "c").unwrap().0);
        d.next_id = 2;
        d.reset_attempt(&fake);
        d.tick(&fake);
        assert_eq!(fake.triggered.borrow().last(), Some(&3));
    }
}
