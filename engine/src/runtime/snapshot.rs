//! Asynchronous snapshots: the task thread takes views, a worker encodes and
//! uploads them.
//!
//! At an aligned barrier the task thread takes, for each operator, a
//! [`StateView`] of its keyed state (shared copy-on-write chunks, see
//! [`crate::state::cow`]), and the small sections that must be taken there: a
//! source's splits, a sink's pre-commit. It hands them to its subtask's
//! snapshot worker, forwards the barrier and goes on. The worker, one thread
//! per subtask started at its first snapshot, encodes the views into key-group
//! sections, writes the state file and only then acknowledges the checkpoint.
//!
//! Invariants:
//! - **Consistency.** A view holds the state at its barrier: it is taken
//!   before the barrier is forwarded and before the next record, and later
//!   updates copy the chunks they write instead of changing the view's.
//! - **Durability before acknowledgement.** An `Ack` with a result of `Ok` is
//!   sent only after the state file is written, so a checkpoint whose
//!   `_metadata` exists covers only durable state (exactly-once is
//!   unchanged: the coordinator completes a checkpoint on every subtask's ack).
//! - **The format does not change.** The worker writes the same sections, in
//!   the same order (keyed, per operator, then splits, committables and sink
//!   state), with the same checksums, so restore at any parallelism reads it
//!   as before.
//! - **A failure fails the checkpoint, not the job.** An error while encoding
//!   or writing is sent as that checkpoint's `Ack` with `Err`; the coordinator
//!   aborts the checkpoint and the job goes on.
//! - **Order.** A subtask's snapshots are written and acknowledged one at a
//!   time, in barrier order, and its final snapshot (`Finished`) is sent after
//!   every earlier acknowledgement. So an acknowledgement never overtakes an
//!   earlier one of the same subtask, at most one upload per subtask holds its
//!   bandwidth, and state of checkpoint `n` is never written after that of
//!   `n + 1` has been acknowledged (what incremental checkpoints, which refer
//!   to earlier files, rely on).
//! - **Bounded lag.** A queued periodic checkpoint with a newer periodic
//!   checkpoint queued behind it is abandoned before its upload starts, and
//!   acknowledged as failed: the coordinator runs one checkpoint at a time, so
//!   it has given up on the older one already, and its view would only pin
//!   memory. Savepoints and final snapshots are never abandoned.
//!
//! The decisions ([`plan`]) are pure; the thread only follows them.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

use sluice_storage::Storage;

use crate::checkpoint::metadata::{FileEntry, SectionKind, SubtaskState};
use crate::checkpoint::{CoordMsg, SnapshotKind, SubtaskSnapshot, store};
use crate::error::OpError;
use crate::operators::KeyGroupWriters;
use crate::state::StateView;

/// A subtask's snapshot as the task thread takes it at a barrier.
#[derive(Default)]
pub struct Taken {
    /// Views of keyed state, by the operator's position in the chain.
    pub keyed: Vec<(usize, Box<dyn StateView>)>,
    /// Sections taken on the task thread: splits, committables, sink state.
    pub sections: Vec<(SectionKind, Vec<u8>)>,
}

impl Taken {
    /// Encodes the views: the snapshot as it is written.
    pub fn encode(self, max_parallelism: usize) -> Result<SubtaskSnapshot, OpError> {
        let mut snap = SubtaskSnapshot::default();
        for (operator, view) in self.keyed {
            let mut w = KeyGroupWriters::new();
            view.encode(max_parallelism, &mut w)?;
            snap.add_keyed(operator, w);
        }
        snap.sections.extend(self.sections);
        Ok(snap)
    }
}

/// A written state file's manifest entries, or why it could not be written.
type Written = Result<(SubtaskState, Option<FileEntry>), String>;

/// What a job is, for [`plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Checkpoint(u64),
    Savepoint(u64),
    Final,
}

/// What the worker does with its queue.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Queued jobs to abandon, by position, each with the checkpoint that supersedes it.
    pub abandon: Vec<(usize, u64)>,
}

/// Which queued jobs (oldest first) to abandon before the next upload: each
/// periodic checkpoint with a newer periodic checkpoint queued behind it.
pub fn plan(queue: &[JobKind]) -> Plan {
    let newest = queue.iter().rev().find_map(|k| match k {
        JobKind::Checkpoint(id) => Some(*id),
        _ => None,
    });
    let abandon = queue
        .iter()
        .enumerate()
        .filter_map(|(i, k)| match (k, newest) {
            (JobKind::Checkpoint(id), Some(n)) if *id < n => Some((i, n)),
            _ => None,
        })
        .collect();
    Plan { abandon }
}

/// One snapshot for the worker.
pub enum Job {
    Barrier {
        id: u64,
        kind: SnapshotKind,
        dir: Storage,
        taken: Taken,
        alignment_ms: u64,
    },
    /// The subtask's input ended: its final state, encoded by the task thread
    /// (which has nothing left to process, and fails the job if it cannot),
    /// reported as `Finished` after every earlier acknowledgement.
    Final {
        snapshot: SubtaskSnapshot,
        last_checkpoint: u64,
    },
}

impl Job {
    fn kind(&self) -> JobKind {
        match self {
            Job::Barrier { id, kind: SnapshotKind::Checkpoint, .. } => JobKind::Checkpoint(*id),
            Job::Barrier { id, .. } => JobKind::Savepoint(*id),
            Job::Final { .. } => JobKind::Final,
        }
    }
}

/// Who the worker writes and reports for.
#[derive(Clone)]
pub struct Subtask {
    pub vertex: usize,
    pub subtask: usize,
    pub uid: String,
    pub max_parallelism: usize,
    pub coord: Sender<CoordMsg>,
    /// The scope of the worker's fault points (`snapshot.encode`,
    /// `snapshot.upload`): the job id.
    pub scope: String,
}

/// A subtask's snapshot worker; its thread starts with the first job and
/// ends when the subtask drops this and the queue is done.
#[derive(Default)]
pub struct SnapshotWorker {
    tx: Option<Sender<Job>>,
}

impl SnapshotWorker {
    /// Queues a job, starting the thread if needed. If it cannot start, the
    /// job is done here, on the caller's thread, so nothing is lost.
    pub fn submit(&mut self, who: &Subtask, job: Job) {
        if self.tx.is_none() {
            let (tx, rx) = channel();
            let w = who.clone();
            let name = format!("snapshot-{}-{}", who.vertex, who.subtask);
            match std::thread::Builder::new().name(name).spawn(move || run(&w, rx)) {
                Ok(_) => self.tx = Some(tx),
                Err(e) => tracing::warn!("cannot start a snapshot thread ({e}); snapshotting on the task thread"),
            }
        }
        match &self.tx {
            Some(tx) => {
                if let Err(e) = tx.send(job) {
                    self.tx = None;
                    do_job(who, e.0);
                }
            }
            None => do_job(who, job),
        }
    }
}

fn run(who: &Subtask, rx: Receiver<Job>) {
    let mut queue: VecDeque<Job> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match rx.recv() {
                Ok(j) => queue.push_back(j),
                Err(_) => return,
            }
        }
        queue.extend(rx.try_iter());
        let kinds: Vec<JobKind> = queue.iter().map(Job::kind).collect();
        for (i, newer) in plan(&kinds).abandon.into_iter().rev() {
            if let Some(Job::Barrier { id, alignment_ms, .. }) = queue.remove(i) {
                let why = format!("superseded by checkpoint {newer} before its upload started (uploads are behind)");
                let _ = who.coord.send(ack(who, id, Err(why), alignment_ms));
            }
        }
        if let Some(job) = queue.pop_front() {
            do_job(who, job);
        }
    }
}

fn ack(who: &Subtask, id: u64, result: Written, alignment_ms: u64) -> CoordMsg {
    CoordMsg::Ack { id, vertex: who.vertex, subtask: who.subtask, result, alignment_ms }
}

/// Encodes and writes one job, then reports it.
fn do_job(who: &Subtask, job: Job) {
    match job {
        Job::Barrier { id, dir, taken, alignment_ms, .. } => {
            let started = Instant::now();
            let result = write(who, &dir, taken);
            tracing::debug!(
                "checkpoint {id}: vertex {} subtask {}: encoded and written off the task thread in {} ms",
                who.vertex,
                who.subtask,
                started.elapsed().as_millis()
            );
            let _ = who.coord.send(ack(who, id, result, alignment_ms));
        }
        Job::Final { snapshot, last_checkpoint } => {
            let msg = CoordMsg::Finished { vertex: who.vertex, subtask: who.subtask, snapshot, last_checkpoint };
            let _ = who.coord.send(msg);
        }
    }
}

fn write(who: &Subtask, dir: &Storage, taken: Taken) -> Written {
    // Before keyed state is encoded: where a test holds a snapshot.
    if !taken.keyed.is_empty()
        && let Some(e) = crate::failpoint::hit_in("snapshot.encode", &who.scope)
    {
        return Err(e);
    }
    let snap = taken.encode(who.max_parallelism).map_err(|e| format!("cannot encode the state: {e}"))?;
    if let Some(e) = crate::failpoint::hit_in("snapshot.upload", &who.scope) {
        return Err(e);
    }
    store::write_subtask(dir, &who.uid, who.subtask, &snap).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::JobKind::*;
    use super::*;

    #[test]
    fn an_older_checkpoint_queued_behind_a_slow_upload_is_abandoned() {
        assert_eq!(plan(&[Checkpoint(3)]).abandon, []);
        assert_eq!(plan(&[Checkpoint(3), Checkpoint(4)]).abandon, [(0, 4)]);
        assert_eq!(plan(&[Checkpoint(3), Checkpoint(4), Checkpoint(6)]).abandon, [(0, 6), (1, 6)]);
    }

    #[test]
    fn savepoints_and_final_snapshots_are_never_abandoned() {
        assert_eq!(plan(&[Savepoint(3), Checkpoint(4)]).abandon, []);
        assert_eq!(plan(&[Checkpoint(3), Savepoint(4)]).abandon, [], "a savepoint does not supersede a checkpoint");
        assert_eq!(plan(&[Checkpoint(3), Final]).abandon, [], "the final state does not supersede a checkpoint");
        assert_eq!(plan(&[Checkpoint(2), Savepoint(3), Checkpoint(4), Final]).abandon, [(0, 4)]);
    }
}
