//! The `StreamSavepoint` resource: a one-off savepoint of a StreamJob.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::{LocalObjectRef, S3Spec};

/// A one-off savepoint of a StreamJob.
// kube's printcolumn(...) lists repeat `type_ = "string"`, which this lint misreads.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "StreamSavepoint",
    namespaced,
    shortname = "ssp",
    status = "StreamSavepointStatus",
    derive = "PartialEq",
    doc = "A savepoint of a StreamJob",
    printcolumn(name = "Job", type_ = "string", json_path = ".spec.jobRef.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Location", type_ = "string", json_path = ".status.location"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct StreamSavepointSpec {
    /// The StreamJob in this namespace.
    #[x_kube(validation = Rule::new("self == oldSelf").message("jobRef is immutable"))]
    pub job_ref: LocalObjectRef,
    /// Defaults to the job's `savepoints.directory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// Delete the savepoint data when this object is deleted.
    #[serde(default)]
    pub dispose_on_delete: bool,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
pub enum SavepointPhase {
    #[default]
    Pending,
    InProgress,
    Completed,
    Failed,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamSavepointStatus {
    #[serde(default)]
    pub phase: SavepointPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub attempts: i32,
    /// The directory the savepoint was taken into: `disposeOnDelete` deletes only under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// The job's S3 settings (no secret values) when the savepoint completed, so that
    /// `disposeOnDelete` still works after the StreamJob is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Spec>,
}
