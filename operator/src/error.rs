//! The operator's errors. User errors (bad SQL, a bad manifest) never get here:
//! they are reported in the status and in Events. These are the failures of a
//! reconcile, retried with back-off by the controller.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("engine: {0}")]
    Engine(#[from] crate::engine::EngineClientError),
    #[error("building the children of {job}: {message}")]
    Build { job: String, message: String },
    #[error("storage: {0}")]
    Storage(String),
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
