//! Sluice's Docker-free local Kubernetes.
//!
//! - [`controlplane`]: etcd (from `etcd-bin-vendored`) plus kube-apiserver,
//!   kube-controller-manager and kube-scheduler built from the
//!   `k8s.io/kubernetes` Go module and cached under `$SLUICE_CACHE/k8s/<version>`.
//! - [`node`]: the `sluice-node` agent, which registers a Node and runs each
//!   pod's containers as local processes in per-pod network and mount namespaces.
//! - [`cluster`]: control plane + nodes together, used by `sluice-sandbox`
//!   (`make sandbox-up`) and by the tests (test-support API).
//! - [`s3`]: MinIO (via `scripts/s3-server.sh`) and a minimal SigV4 client,
//!   for the sandbox's S3 and [`testenv::TestEnv::start_s3`].

pub mod certs;
pub mod cluster;
pub mod controlplane;
pub mod net;
pub mod node;
pub mod process;
pub mod s3;
pub mod testenv;

use std::path::Path;

use anyhow::{Context, Result};

/// A kube-rs client for a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client> {
    let kc =
        kube::config::Kubeconfig::read_from(path).with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .context("loading kubeconfig")?;
    kube::Client::try_from(cfg).context("building kube client")
}
