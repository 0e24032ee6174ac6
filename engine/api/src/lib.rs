//! The contracts between Sluice's engine and its operator, in one place so
//! that the two sides cannot drift:
//!
//! - [`rest`]: the bodies of the engine's REST API (`engine/openapi.json` is
//!   the document; the engine's contract test checks the server against it);
//! - [`layout`]: the names of every object a job keeps under its checkpoint
//!   and savepoint directories;
//! - [`duration`]: durations as Flink writes them, for configuration keys and
//!   the CRD fields that become them;
//! - [`hash`]: FNV-1a, for ids that must not change between releases;
//! - [`policy`]: a job's data policy (masking and row rules), as the operator
//!   hands it to the engine;
//! - [`failpoint`]: the fault points that tests set in either process through
//!   `SLUICE_FAILPOINTS`;
//! - [`columns`]: how metadata columns are marked in the schemas that
//!   connectors get.
//!
//! The crate has no dependencies beyond serde; its only I/O is a fault point's
//! `pause`, which tests alone set.

pub mod columns;
pub mod duration;
pub mod failpoint;
pub mod hash;
pub mod layout;
pub mod policy;
pub mod rest;
