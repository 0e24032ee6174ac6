//! Sluice's front end for the Flink SQL dialect.
//!
//! [`compile`] turns a job script (CREATE TABLE, CREATE VIEW, SET, INSERT INTO)
//! into a [`logical::Job`]: a streaming logical plan per sink whose expressions
//! are DataFusion expressions, ready to be lowered to physical expressions and
//! run by the engine's operators. The crate does no I/O and starts nothing, so
//! the operator links it to validate SQL.

pub mod catalog;
pub mod dialect;
pub mod error;
mod explain;
pub mod expr;
pub mod functions;
pub mod lineage;
pub mod logical;
pub mod map_value;
pub mod monotonicity;
pub mod parser;
mod planner;
pub mod policy;
pub mod types;

/// The logical plan under its former name, for the crates that import
/// `sluice_sql::plan::…`.
pub use logical as plan;

pub use error::{Position, SqlError};
pub use logical::Job;
pub use planner::{COLUMN_PRUNING, UPDATING_SINKS, compile, compile_with_policy, flink_insert_only};
