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
//! - [`kafka`]: an Apache Kafka broker (via `scripts/kafka.sh`) for the
//!   sandbox (`SANDBOX_KAFKA=1`).

pub mod certs;
pub mod cluster;
pub mod controlplane;
pub mod kafka;
pub mod net;
pub mod node;
pub mod process;
pub mod s3;
pub mod testenv;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The repository this crate lives in. Test binaries find it from the
/// `CARGO_MANIFEST_DIR` that cargo sets when it runs them (any crate of the
/// repository), not from the path baked in at compile time: cargo reuses a
/// cached build in a clone at another path when the sources are unchanged, and
/// that path may be gone. Binaries run outside cargo fall back to the
/// compile-time path.
pub fn repo_root() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fallback = built.parent().unwrap_or(built).to_path_buf();
    let Some(start) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else { return fallback };
    start
        .ancestors()
        .find(|d| d.join("e2e/Cargo.toml").is_file() && d.join("scripts").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or(fallback)
}

/// A kube-rs client for a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client> {
    let kc =
        kube::config::Kubeconfig::read_from(path).with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .context("loading kubeconfig")?;
    kube::Client::try_from(cfg).context("building kube client")
}
