//! Runs a job graph: one thread per subtask, connected by credit-based
//! channels (see [`channel`]).
//!
//! - [`supervisor`](self::execute_with): the attempts of a job, restarts, and
//!   where each attempt starts ([`start`]); the same loop runs a job in one
//!   process ([`LocalAttempts`]) and on workers (`cluster::coordinator`);
//! - [`deploy`]: one attempt's subtasks, built and wired, and their threads;
//! - `task`: the loop of one subtask.
//!
//! Watermarks: a subtask's watermark is the minimum over its input channels that
//! are neither idle nor ended; when every input has ended it is +∞, which fires
//! every window, and then operators finish and sinks make their output final.
//!
//! Checkpoints: see [`crate::checkpoint`]. With a checkpoint directory, output
//! is exactly-once: sinks make output visible only when a checkpoint covering
//! it completes, and a bounded job ends with a final checkpoint.
//!
//! Failure: the first error stops the attempt. With a restart strategy, the job
//! restarts from the newest complete checkpoint; otherwise it fails. A canceled
//! job stops without finishing its sinks, so no partial output becomes visible.

pub mod channel;
pub mod debloat;
pub mod deploy;
mod lazy;
mod outputs;
mod snapshot;
mod source_task;
pub mod start;
mod supervisor;
mod task;

use std::time::{Duration, Instant};

use crate::checkpoint::coordinator::CheckpointOptions;
use crate::checkpoint::store::Loaded;
pub use crate::job::{JobState, JobStatus};
pub use crate::operators::factory::{SinkSetup, vertex_metas};
pub use deploy::{Exchange, Task, Tasks, Wiring, deploy, spawn};
pub use start::Claimed;
pub use supervisor::{
    AttemptEnd, AttemptError, Attempts, LocalAttempts, attempt_result, execute, execute_with, log_ending,
    prepare_attempt, sink_setups,
};

pub use sluice_job::{RestartStrategy, Restore};

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub batch_size: usize,
    pub buffer_capacity: usize,
    /// Buffer debloating's target: how long the data in flight on a
    /// backpressured channel should take to process; `None`: off.
    pub debloat_target: Option<Duration>,
    /// 0 disables idleness.
    pub idle_timeout: Duration,
    /// How often sources send latency markers; 0: never.
    pub latency_interval: Duration,
    pub checkpoint: CheckpointOptions,
    pub restart: RestartStrategy,
    pub restore: Restore,
    pub allow_non_restored_state: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            batch_size: 8192,
            buffer_capacity: 8,
            debloat_target: Some(Duration::from_secs(1)),
            idle_timeout: Duration::ZERO,
            latency_interval: Duration::from_millis(100),
            checkpoint: CheckpointOptions::default(),
            restart: RestartStrategy::None,
            restore: Restore::None,
            allow_non_restored_state: false,
        }
    }
}

impl RunOptions {
    /// What each channel's producer side holds.
    pub fn buffers(&self) -> channel::Buffers {
        channel::Buffers { credits: self.buffer_capacity, debloat_target: self.debloat_target }
    }
}

/// Tells the user where the state comes from and how big it is.
pub(crate) fn restoring(state: &JobState, l: &Loaded, since: Instant) {
    state.update_activation(|a| {
        if a.restored_from.is_none() {
            a.restored_from = Some(l.location.clone());
            a.restore_bytes = l.read_bytes;
        }
    });
    crate::say!(
        "job `{}` restoring from {} ({} {}, {} files, {} bytes; opened in {} ms, each file verified where it is loaded)",
        state.job_id,
        l.location,
        match l.metadata.kind {
            crate::checkpoint::SnapshotKind::Checkpoint => "checkpoint",
            crate::checkpoint::SnapshotKind::Savepoint => "savepoint",
        },
        l.metadata.checkpoint_id,
        l.metadata.files.len(),
        l.metadata.total_size(),
        since.elapsed().as_millis()
    );
}

#[cfg(test)]
mod tests;
