//! Operator state as it is written to checkpoints: a small binary codec, and
//! keyed state split by key group so that a restore at another parallelism
//! hands each subtask exactly the key groups it now owns.

pub mod codec;
