//! The `sluice.dev/v1alpha1` custom resources: `StreamJob` and `StreamSavepoint`.
//!
//! The schema, its defaults and its CEL rules are generated from these types by
//! `crdgen` into `crds/`. Defaults live in the schema, so the API server fills
//! them in and the operator never writes `spec` (the GitOps rule).
//!
//! - [`stream_job`]: the `StreamJob` spec;
//! - [`stream_job_status`]: its status, the operator's write-ahead log, which records
//!   specs as a [`DeployedSpec`] ([`deployed_spec`]);
//! - [`autoscaler`]: the autoscaler's settings and its record in status, whose metric
//!   history [`history`] writes column by column;
//! - [`data_policy`]: the data policy the engine enforces at the sources, and its record;
//! - [`stream_savepoint`]: the `StreamSavepoint` resource;
//! - [`duration`]: the duration fields' pattern and parser, the engine's own.

pub mod autoscaler;
pub mod data_policy;
pub mod deployed_spec;
pub mod duration;
pub mod history;
pub mod stream_job;
pub mod stream_job_status;
pub mod stream_savepoint;

pub use autoscaler::{
    AutoscalerMode, AutoscalerSpec, AutoscalerStatus, Decision, MetricSample, ScaleUp, VertexDecision, VertexSample,
};
pub use data_policy::{DataPolicySpec, DataPolicyStatus};
pub use deployed_spec::DeployedSpec;
pub use duration::parse_duration;
pub use stream_job::{
    BlueGreenSpec, CheckpointingSpec, ConfigMapKeyRef, DesiredState, LocalObjectRef, PodResources, S3Spec,
    SavepointsSpec, StrategyType, StreamJob, StreamJobSpec, UpgradeMode, UpgradeSpec, UpgradeStrategy,
};
pub use stream_job_status::{
    Color, CutoverRecord, CutoverReport, CutoverStep, PendingSavepoint, Phase, SavepointInfo, StreamJobStatus,
    UpgradeKind, UpgradeRecord, UpgradeStep,
};
pub use stream_savepoint::{SavepointPhase, StreamSavepoint, StreamSavepointSpec, StreamSavepointStatus};
