//! Exactly-once checkpoints and savepoints.
//!
//! The protocol, in the style of Chandy and Lamport with aligned barriers:
//!
//! 1. The coordinator (in the process that runs the job) picks checkpoint id
//!    `n` and sends a barrier to every running source subtask. A source
//!    snapshots its splits between two polls, passes the barrier through its
//!    chain and sends it on every output channel.
//! 2. A subtask that receives barrier `n` on one input channel stops reading
//!    that channel (its messages are held, and their credits are not returned,
//!    so its producer is backpressured) until barrier `n` has arrived on every
//!    channel that has not ended. Then it takes a view of its operators' keyed
//!    state (copy-on-write, no encoding), forwards the barrier, and reads the
//!    held messages.
//! 3. Sinks pre-commit on the barrier: output since the last barrier becomes
//!    pending (invisible) and its committable goes into the snapshot, along with
//!    every earlier committable not yet committed.
//! 4. Each subtask's snapshot worker encodes the views per key group and
//!    writes the state file, asynchronously, one snapshot at a time in barrier
//!    order; the subtask goes on processing. The acknowledgement, sent once the
//!    file is written, carries its size, checksum and section index (see the
//!    runtime's `snapshot` module for the invariants).
//! 5. When every subtask has acknowledged (a finished subtask counts with its
//!    final state), the coordinator writes `_metadata`, last, and never over an
//!    existing one. Only then is the checkpoint complete. If no newer
//!    coordinator generation has been claimed since (see [`lineage`]), sinks
//!    are told to commit, which makes their pending output visible. A commit is
//!    idempotent, so a restore from a complete checkpoint commits its
//!    committables again without harm.
//! 6. A checkpoint that is not complete within the timeout, or whose state
//!    cannot be written, is aborted; the job goes on and the next one can
//!    succeed. Its pending output is committed by the next checkpoint.
//!
//! What commits:
//! - Checkpoints and a stop-with-savepoint commit; an intermediate savepoint
//!   does not (as in Flink since 1.15): its pending output is committed by the
//!   next checkpoint, and it is never a recovery point, so a failover to the
//!   previous checkpoint cannot write output that the savepoint made visible.
//! - A sink that finished commits its last output only with the first
//!   checkpoint after the last one it took part in: only that one holds its
//!   final state.
//! - A job that ends (it finished, or stopped with a savepoint) writes its
//!   terminal marker before the sinks' last commit.
//! - Once the job is being canceled (SIGTERM, `POST /v1/job/cancel`), no
//!   checkpoint completes.
//!
//! Invariants: output is visible only after the checkpoint that covers it is
//! complete; a snapshot without `_metadata` is never restored from; state is
//! matched to operators by vertex uid and checked against the operator's state
//! layout before it is loaded; a coordinator recovers only from its job's
//! current lineage (see [`lineage`]).

pub mod cache;
pub mod coordinator;
pub mod error;
pub mod lineage;
pub mod loaded;
pub mod metadata;
pub mod restore;
pub mod state_file;
pub mod store;

use std::sync::Arc;

use sluice_storage::Storage;

pub use metadata::{Metadata, SnapshotKind, SubtaskSnapshot};

/// What a barrier carries: the checkpoint id, and where its state goes.
#[derive(Debug)]
pub struct BarrierInfo {
    pub id: u64,
    pub kind: SnapshotKind,
    /// The subtasks may write only what changed since their last checkpoint
    /// (never for a savepoint, which is self-contained).
    pub incremental: bool,
    /// Stop the job once this savepoint is complete.
    pub stop: bool,
    /// Send a final watermark before the barrier, firing every window.
    pub drain: bool,
    /// The snapshot directory (`chk-<n>` or `savepoint-<id>`).
    pub dir: Storage,
}

pub type Barrier = Arc<BarrierInfo>;

/// Messages from subtasks to the coordinator.
#[derive(Debug)]
pub enum CoordMsg {
    /// A subtask's state for checkpoint `id` is written (or could not be).
    Ack {
        id: u64,
        vertex: usize,
        subtask: usize,
        /// The subtask's manifest entry and the entries of the state files it
        /// consists of (its own, and those of earlier checkpoints it refers
        /// to), or why it could not be written.
        result: Result<(metadata::SubtaskState, Vec<metadata::FileEntry>), String>,
        alignment_ms: u64,
        /// How long the subtask's thread paused to take its snapshot (µs).
        pause_us: u64,
    },
    /// A subtask has finished (its input ended); this is its state from now on.
    /// `last_checkpoint` is the last checkpoint it took part in: it counts for
    /// later checkpoints only, and acknowledges that one itself.
    Finished { vertex: usize, subtask: usize, snapshot: SubtaskSnapshot, last_checkpoint: u64 },
    /// A sink subtask committed everything up to checkpoint `id`.
    Committed { id: u64, vertex: usize, subtask: usize },
    /// A subtask's thread is ending.
    Exited { vertex: usize, subtask: usize },
}

/// Control messages to a source subtask.
#[derive(Debug)]
pub enum SourceControl {
    Trigger(Barrier),
    /// A stop-with-savepoint failed: go on reading.
    Resume,
    /// A sink chained to the source: checkpoint `id` is complete; commit.
    Commit(u64),
}
