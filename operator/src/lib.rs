//! The Sluice operator: it runs `StreamJob`s on Kubernetes and snapshots them with `StreamSavepoint`s.
//!
//! The StreamJob controller's pipeline is observe → validate → plan → apply → status
//! ([`controllers::streamjob`]), next to the StreamSavepoint controller
//! ([`controllers::streamsavepoint`]); both share a [`context::Context`]. Child objects come
//! from pure builders ([`resources`]); the engine is reached through its REST contract
//! ([`engine`]). The [`autoscaler`] is pure: the controller feeds it samples of the
//! engine's metrics and deploys what it writes to status.

pub mod autoscaler;
pub mod context;
pub mod controllers;
pub mod engine;
pub mod error;
pub mod leader;
pub mod metrics;
pub mod resources;
pub mod storage;
pub mod trigger_id;

/// The custom resources, from their own crate (so that `crdgen` builds without the operator).
pub use sluice_crd as crd;
