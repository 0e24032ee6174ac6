//! The Sluice engine: runs a Flink-SQL job, compiled by `sluice-sql`, as a graph
//! of vertices whose subtasks exchange Arrow record batches over bounded
//! channels.
//!
//! - [`plan`] turns the SQL front end's logical plan into a job graph: vertices of
//!   chained operators, with forward, hash (key group) and rebalance edges.
//! - [`operators`] are the streaming operators: calc, watermark assignment, window
//!   assignment and window aggregation, and sinks.
//! - [`runtime`] runs the graph: one thread per subtask, credit-based channels,
//!   watermark alignment, barrier alignment and end-of-input, and restarts.
//! - [`checkpoint`] is the exactly-once protocol: the coordinator, the snapshot
//!   format and its storage (`file://` or `s3://`), restore and rescaling;
//!   [`state`] encodes operator state by key group.
//! - [`metrics`] and [`rest`] expose per-subtask metrics and the REST API.

pub mod checkpoint;
pub mod cluster;
pub mod console;
/// A job's Flink-style configuration (from `sluice-job`, the one validation path).
pub mod config {
    pub use sluice_job::Config;
}
pub mod error;
pub use sluice_api::failpoint;
pub mod job;
pub mod keygroup;
pub mod local;
pub mod metrics;
pub mod openlineage;
pub mod operators;
pub mod plan;
pub mod rest;
pub mod runtime;
pub mod state;

pub use error::EngineError;
