//! Operator state as it is written to checkpoints: a small binary codec, and
//! keyed state split by key group so that a restore at another parallelism
//! hands each subtask exactly the key groups it now owns.
//!
//! Keyed state lives in copy-on-write columns ([`cow::CowVec`]), so that a
//! checkpoint takes a [`StateView`] of it on the task thread in O(chunks) and
//! encodes that view elsewhere (see the runtime's snapshot worker).

pub mod codec;
pub mod cow;
pub mod disk;
pub mod entries;
#[cfg(test)]
mod heap_tests;
pub mod key;
pub mod keyed;
#[cfg(test)]
mod keyed_tests;
pub mod keyed_view;
pub mod ttl;
pub mod value;
pub mod writers;

use crate::error::OpError;
use crate::operators::KeyGroupWriters;

/// A consistent view of an operator's keyed state at a checkpoint barrier,
/// taken on the task thread and encoded on the subtask's snapshot worker
/// while the operator goes on. Later updates never change what it encodes.
pub trait StateView: Send {
    /// Writes the state, one buffer per key group (of `max_parallelism`), in
    /// the operator's snapshot format. Between batches of keys it asks
    /// `go_on`, and stops with [`abandoned`] when nobody waits for the
    /// snapshot any more.
    fn encode(&self, max_parallelism: usize, out: &mut KeyGroupWriters, go_on: GoOn) -> Result<(), OpError>;

    /// The view as [`entries`], for state that can be checkpointed
    /// incrementally; `None` (the default) writes a full [`Self::encode`] at
    /// every checkpoint.
    fn entries(&self) -> Option<&dyn EntryView> {
        None
    }
}

/// A [`StateView`] whose records can be written as entries: all of them (a
/// base), or only what changed since the state's previous view.
pub trait EntryView {
    /// Every live record, as puts, one buffer per key group.
    fn encode_base(&self, max_parallelism: usize, out: &mut KeyGroupWriters, go_on: GoOn) -> Result<(), OpError>;

    /// Whether the view knows what changed since the previous view of the
    /// same state (not on the first view, nor after tracking overflowed).
    fn knows_changes(&self) -> bool;

    /// What changed since the previous view: deletes, then puts. Deletes that
    /// span key groups (a whole pane) go to every key group in `owned`, the
    /// key groups of the subtask.
    fn encode_changes(
        &self,
        max_parallelism: usize,
        owned: std::ops::Range<u32>,
        out: &mut KeyGroupWriters,
        go_on: GoOn,
    ) -> Result<(), OpError>;
}

/// Whether an encoding should go on (see [`StateView::encode`]).
pub type GoOn<'a> = &'a dyn Fn() -> bool;

/// The error of an encoding stopped by its `go_on`.
pub fn abandoned() -> OpError {
    OpError::Other("abandoned: a newer snapshot superseded it".into())
}
