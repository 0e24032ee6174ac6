//! Sluice's front end for the Flink SQL dialect.
//!
//! [`compile`] turns a job script (CREATE TABLE, CREATE VIEW, SET, INSERT INTO)
//! into a [`plan::Job`]: a streaming logical plan per sink whose expressions are
//! DataFusion expressions, ready to be lowered to physical expressions and run by
//! the engine's operators. The crate does no I/O and starts nothing, so the
//! operator links it to validate SQL.

pub mod dialect;
pub mod error;
pub mod expr;
pub mod functions;
pub mod parser;
pub mod types;

pub use error::{Position, SqlError};
pub mod catalog;
pub mod plan;

pub use plan::{Job, compile};
