//! The operator's errors: the failures of a reconcile, retried with back-off by the
//! controller, and [`InvalidSpec`], the user's error (bad SQL, a bad manifest), which a
//! reconcile never returns: it is reported in the status (condition `Stalled`, reason
//! `InvalidSpec`) and in an Event, and the job keeps running its last valid spec.

use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec cannot be deployed as written.
    #[error(transparent)]
    InvalidSpec(#[from] InvalidSpec),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("engine: {0}")]
    Engine(#[from] crate::engine::EngineClientError),
    #[error("building the children of {job}: {source}")]
    Build {
        job: String,
        #[source]
        source: crate::resources::BuildError,
    },
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("internal error: {0}")]
    Internal(String),
    /// This process is not (or no longer) the leader: nothing more is written.
    #[error("not the leader: {0} refused")]
    NotLeader(String),
    #[error("leader election: {0}")]
    LeaseTimeout(String),
    /// A status write planned from a resourceVersion that is no longer current.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl Error {
    /// The `error` label of `sluice_operator_reconcile_errors_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::InvalidSpec(_) => "invalid_spec",
            Error::Kube(_) => "kube",
            Error::Engine(_) => "engine",
            Error::Build { .. } => "build",
            Error::Storage(_) => "storage",
            Error::Internal(_) => "internal",
            Error::NotLeader(_) => "not_leader",
            Error::LeaseTimeout(_) => "lease",
            Error::Conflict(_) => "conflict",
        }
    }
}

/// Why a StreamJob's spec cannot be deployed. The message is what the status and the
/// Event say: it names the field, the SQL's file, line and column, the table and its
/// option, or the configuration key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvalidSpec {
    #[error("invalid spec: set spec.sql or spec.sqlConfigMapRef")]
    NoSql,
    #[error("invalid spec: sqlConfigMapRef: ConfigMap {namespace}/{name} not found")]
    ConfigMapNotFound { namespace: String, name: String },
    #[error("invalid spec: sqlConfigMapRef: ConfigMap {namespace}/{name} has no key '{key}'")]
    ConfigMapKeyMissing { namespace: String, name: String, key: String },
    #[error(
        "invalid spec: spec.image is not set and the operator has no default engine image \
         (--default-engine-image; the Helm value engine.image)"
    )]
    NoImage,
    #[error(
        "invalid spec: dataPolicy: the hmac key {}: create it, or fix keySecretRef",
        if *found { format!("Secret {namespace}/{name} has no key '{key}'") } else { format!("Secret {namespace}/{name} (key '{key}') does not exist") }
    )]
    PolicySecret { namespace: String, name: String, key: String, found: bool },
    #[error(
        "invalid spec: the namespace requires every column tagged pii to be masked (label sluice.dev/require-data-policy=true), but the job writes unmasked: {0}; add a rule to spec.dataPolicy.columns"
    )]
    UnmaskedPii(String),
    #[error(
        "invalid spec: podTemplate widens the engine pods' privileges beyond Pod Security \"restricted\": {0}; remove these fields, or have the namespace's administrator label it sluice.dev/allow-privileged-pod-template=true"
    )]
    PrivilegedPodTemplate(String),
    #[error("invalid spec: {field}: '{value}' is not a duration such as 30s, 5m or 1h")]
    Duration { field: &'static str, value: String },
    /// The engine's validation refuses the job: its SQL (with the line and column), a
    /// table's connector option, or a key of the engine configuration.
    #[error("invalid spec: {0}")]
    Job(#[source] Arc<sluice_job::JobError>),
}
