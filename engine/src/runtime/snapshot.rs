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
//!   time, in barrier order. So an acknowledgement never overtakes an earlier
//!   one of the same subtask, at most one upload per subtask holds its
//!   bandwidth, and state of checkpoint `n` is never written after that of
//!   `n + 1` has been acknowledged (what incremental checkpoints, which refer
//!   to earlier files, rely on). A subtask whose input ended encodes its final
//!   state itself (it has nothing left to process) and sends `Finished`
//!   directly, before `Exited`, as before: the coordinator counts it only for
//!   checkpoints after its last one, whose acknowledgement may come later.
//! - **Bounded lag.** A periodic checkpoint is abandoned, and acknowledged as
//!   failed, once a newer barrier (a checkpoint, or a savepoint that took
//!   precedence) has reached the subtask: before its upload starts if it is
//!   queued, between batches of keys if it is being encoded, before the write
//!   if it is encoded. The coordinator runs one snapshot at a time, so it has
//!   given up on the older one already; finishing it would only pin memory and
//!   hold up the newer one. Savepoints are never abandoned.
//!
//! The decisions ([`plan`]) are pure; the thread only follows them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

use sluice_storage::Storage;

use crate::checkpoint::metadata::{FileEntry, SectionKind, SubtaskState};
use crate::checkpoint::{CoordMsg, SnapshotKind, SubtaskSnapshot, store};
use crate::error::OpError;
use crate::operators::KeyGroupWriters;
use crate::state::{GoOn, StateView, abandoned};

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
    pub fn encode(self, max_parallelism: usize, go_on: GoOn) -> Result<SubtaskSnapshot, OpError> {
        let mut snap = SubtaskSnapshot::default();
        for (operator, view) in self.keyed {
            let mut w = KeyGroupWriters::new();
            view.encode(max_parallelism, &mut w, go_on)?;
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
}

/// What the worker does with its queue.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Queued jobs to abandon, by position, each with the checkpoint that supersedes it.
    pub abandon: Vec<(usize, u64)>,
}

/// Which queued jobs (oldest first) to abandon before the next upload: each
/// periodic checkpoint with a newer barrier queued behind it.
pub fn plan(queue: &[JobKind]) -> Plan {
    let newest = queue.iter().map(|k| match k {
        JobKind::Checkpoint(id) | JobKind::Savepoint(id) => *id,
    });
    let newest = newest.max();
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

/// Whether the job goes on, given the newest barrier the subtask has seen: a
/// periodic checkpoint stops once a newer barrier has come.
pub fn goes_on(job: JobKind, newest_barrier: u64) -> bool {
    match job {
        JobKind::Checkpoint(id) => newest_barrier <= id,
        JobKind::Savepoint(_) => true,
    }
}

/// One snapshot for the worker.
pub struct Job {
    pub id: u64,
    pub kind: SnapshotKind,
    /// The snapshot directory.
    pub dir: Storage,
    pub taken: Taken,
    pub alignment_ms: u64,
}

impl Job {
    fn kind(&self) -> JobKind {
        match self.kind {
            SnapshotKind::Checkpoint => JobKind::Checkpoint(self.id),
            SnapshotKind::Savepoint => JobKind::Savepoint(self.id),
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
    /// The newest barrier submitted, for [`goes_on`].
    newest: Arc<AtomicU64>,
}

impl SnapshotWorker {
    /// Queues a job, starting the thread if needed. If it cannot start, the
    /// job is done here, on the caller's thread, so nothing is lost.
    pub fn submit(&mut self, who: &Subtask, job: Job) {
        self.newest.fetch_max(job.id, Ordering::SeqCst);
        if self.tx.is_none() {
            let (tx, rx) = channel();
            let (w, newest) = (who.clone(), self.newest.clone());
            let name = format!("snapshot-{}-{}", who.vertex, who.subtask);
            match std::thread::Builder::new().name(name).spawn(move || run(&w, rx, &newest)) {
                Ok(_) => self.tx = Some(tx),
                Err(e) => tracing::warn!("cannot start a snapshot thread ({e}); snapshotting on the task thread"),
            }
        }
        match &self.tx {
            Some(tx) => {
                if let Err(e) = tx.send(job) {
                    self.tx = None;
                    do_job(who, e.0, &self.newest);
                }
            }
            None => do_job(who, job, &self.newest),
        }
    }
}

fn run(who: &Subtask, rx: Receiver<Job>, newest: &AtomicU64) {
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
            if let Some(Job { id, alignment_ms, .. }) = queue.remove(i) {
                let why = format!("superseded by snapshot {newer} before its upload started");
                let _ = who.coord.send(ack(who, id, Err(why), alignment_ms));
            }
        }
        if let Some(job) = queue.pop_front() {
            do_job(who, job, newest);
        }
    }
}

fn ack(who: &Subtask, id: u64, result: Written, alignment_ms: u64) -> CoordMsg {
    CoordMsg::Ack { id, vertex: who.vertex, subtask: who.subtask, result, alignment_ms }
}

/// Encodes and writes one job, then reports it.
fn do_job(who: &Subtask, job: Job, newest: &AtomicU64) {
    let kind = job.kind();
    let Job { id, dir, taken, alignment_ms, .. } = job;
    let started = Instant::now();
    let result = write(who, &dir, taken, &|| goes_on(kind, newest.load(Ordering::SeqCst)));
    tracing::debug!(
        "checkpoint {id}: vertex {} subtask {}: encoded and written off the task thread in {} ms",
        who.vertex,
        who.subtask,
        started.elapsed().as_millis()
    );
    let _ = who.coord.send(ack(who, id, result, alignment_ms));
}

fn write(who: &Subtask, dir: &Storage, taken: Taken, go_on: GoOn) -> Written {
    // Before keyed state is encoded: where a test holds a snapshot.
    if !taken.keyed.is_empty()
        && let Some(e) = crate::failpoint::hit_in("snapshot.encode", &who.scope)
    {
        return Err(e);
    }
    let snap = taken.encode(who.max_parallelism, go_on).map_err(|e| format!("cannot encode the state: {e}"))?;
    if !go_on() {
        return Err(abandoned().to_string());
    }
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
    fn a_checkpoint_being_written_stops_once_a_newer_barrier_came() {
        assert!(goes_on(Checkpoint(3), 3));
        assert!(!goes_on(Checkpoint(3), 4));
        assert!(goes_on(Savepoint(3), 9), "a savepoint is never abandoned");
    }

    #[test]
    fn a_savepoint_that_took_precedence_supersedes_the_checkpoint_queued_before_it() {
        assert_eq!(plan(&[Checkpoint(3), Savepoint(4)]).abandon, [(0, 4)]);
    }

    #[test]
    fn savepoints_are_never_abandoned() {
        assert_eq!(plan(&[Savepoint(3), Checkpoint(4)]).abandon, []);
        assert_eq!(plan(&[Checkpoint(2), Savepoint(3), Checkpoint(4)]).abandon, [(0, 4)]);
    }
}
