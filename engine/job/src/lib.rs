//! A job as it will run: its SQL compiled, the options of the tables it reads
//! and writes checked by their connectors, and its Flink-style configuration
//! read into typed [`Settings`]. [`validate`] is the one validation path: the
//! `sluice-engine validate` command, the coordinator and the operator call it,
//! so a manifest the operator accepts is a job the engine runs.

mod config;
mod error;
mod openlineage;
mod policy;
mod restart;
mod settings;
mod validate;

pub use config::Config;
pub use config::parse_memory_size;
pub use error::JobError;
pub use openlineage::OpenLineageSettings;
pub use policy::{Secrets, data_policy, policy_file_json, unmasked_pii};
pub use restart::RestartStrategy;
pub use settings::{
    CheckpointSettings, DEFAULT_MANAGED_MEMORY, Restore, Settings, StateBackendKind, StateBackendSettings,
    VERTEX_PARALLELISM_OVERRIDES, parse_vertex_parallelism,
};
pub use validate::{
    ValidatedJob, compile, compile_configured, largest_table_parallelism, scanned_tables, table_parallelism, validate,
    validate_with,
};
