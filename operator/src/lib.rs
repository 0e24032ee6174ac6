//! The Sluice operator: it runs `StreamJob`s on Kubernetes and snapshots them with `StreamSavepoint`s.
//!
//! The reconcile pipeline is observe → validate → plan → apply → status
//! ([`reconcile`]); child objects come from pure builders ([`resources`]); the
//! engine is reached through its REST contract ([`engine`]).

pub mod engine;
pub mod error;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod resources;
pub mod savepoint;
pub mod storage;
pub mod trigger_id;

/// The custom resources, from their own crate (so that `crdgen` builds without the operator).
pub use sluice_crd as crd;
