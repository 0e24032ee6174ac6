//! Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler as
//! local processes, with a generated PKI, and writes an admin kubeconfig.
//!
//! The API server's flags follow controller-runtime's envtest, plus RBAC
//! authorization and service-account signing keys. It binds to the cluster
//! bridge's gateway address, so that both the host and the pods reach it at
//! the same address (`kubernetes.default.svc` resolves to it).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use crate::certs::Pki;
use crate::net;
use crate::process::{Proc, free_port, wait_tcp};

/// The Kubernetes release the harness builds and runs.
pub const DEFAULT_K8S_VERSION: &str = "v1.34.4";

/// Where binaries and build artefacts are cached (`$SLUICE_CACHE`, default
/// `~/.cache/sluice`).
pub fn cache_dir() -> PathBuf {
    if let Some(c) = std::env::var_os("SLUICE_CACHE") {
        return PathBuf::from(c);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/sluice")
}

pub fn k8s_version() -> String {
    std::env::var("SLUICE_K8S_VERSION").unwrap_or_else(|_| DEFAULT_K8S_VERSION.to_string())
}

/// The directory holding the three binaries, building them first (once per
/// version, through `scripts/build-k8s.sh`) if they are not cached.
pub fn ensure_k8s_binaries(version: &str) -> Result<PathBuf> {
    let bin = cache_dir().join("k8s").join(version).join("bin");
    let ok = cache_dir().join("k8s").join(version).join("BUILD_OK");
    if ok.exists() {
        return Ok(bin);
    }
    let script = crate::repo_root().join("e2e/scripts/build-k8s.sh");
    eprintln!("sluice-e2e: building Kubernetes {version} into {} (once; takes a while)", bin.display());
    let status = std::process::Command::new("bash")
        .arg(&script)
        .arg(version)
        .env("SLUICE_CACHE", cache_dir())
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() || !ok.exists() {
        bail!("building Kubernetes {version} failed ({status}); see the output above");
    }
    Ok(bin)
}

/// Addressing of one cluster: a bridge and a /16 (`10.<octet>.0.0/16`). The
/// gateway `10.<octet>.0.1` is the API server; node `k` is `10.<octet>.k.1`
/// and its pods are `10.<octet>.k.2…254`.
#[derive(Debug, Clone)]
pub struct ClusterNet {
    pub bridge: String,
    pub octet: u8,
}

impl ClusterNet {
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.octet, 0, 1)
    }
    pub fn node_ip(&self, index: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.octet, index, 1)
    }
    pub const PREFIX: u8 = 16;
}

#[derive(Debug, Clone)]
pub struct ControlPlaneConfig {
    /// A short name, used for the cluster name and log lines.
    pub name: String,
    /// State directory (etcd data, PKI, logs, kubeconfig). Created if missing.
    pub dir: PathBuf,
    pub net: ClusterNet,
    pub k8s_version: String,
}

/// A running control plane. Dropping it stops every process.
pub struct ControlPlane {
    pub config: ControlPlaneConfig,
    pub pki: Pki,
    pub kubeconfig: PathBuf,
    pub api_url: String,
    pub api_port: u16,
    pub logs: PathBuf,
    pub startup: Duration,
    // Stopped in reverse order of start by `Drop`.
    procs: Vec<Proc>,
}

impl ControlPlane {
    pub fn start(config: ControlPlaneConfig) -> Result<ControlPlane> {
        let t0 = Instant::now();
        let bin = ensure_k8s_binaries(&config.k8s_version)?;
        let t_start = Instant::now();
        let dir = &config.dir;
        std::fs::create_dir_all(dir)?;
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;

        let gw = config.net.gateway();
        net::ensure_bridge(&config.net.bridge, gw, ClusterNet::PREFIX)?;

        let pki =
            Pki::generate(&dir.join("pki"), &[IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4(gw), "10.96.0.1".parse()?])?;

        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let etcd_port = free_port(lo)?;
        let etcd_peer = free_port(lo)?;
        // 443, so that `kubernetes.default.svc` (no kube-proxy: it resolves straight to
        // this address) works with the default port. Each cluster has its own gateway.
        let api_port = 443;
        let api_url = format!("https://{gw}:{api_port}");

        let mut procs = Vec::new();

        // etcd
        let etcd_bin = etcd_bin_vendored::etcd_bin_path().map_err(|e| anyhow::anyhow!("{e}"))?.to_path_buf();
        let etcd_dir = dir.join("etcd");
        let _ = std::fs::remove_dir_all(&etcd_dir);
        let client = format!("http://127.0.0.1:{etcd_port}");
        let peer = format!("http://127.0.0.1:{etcd_peer}");
        let mut etcd = Proc::spawn(
            "etcd",
            &etcd_bin,
            &[
                format!("--name={}", config.name),
                format!("--data-dir={}", etcd_dir.display()),
                format!("--listen-client-urls={client}"),
                format!("--advertise-client-urls={client}"),
                format!("--listen-peer-urls={peer}"),
                format!("--initial-advertise-peer-urls={peer}"),
                format!("--initial-cluster={}={peer}", config.name),
                "--unsafe-no-fsync=true".into(),
                "--log-level=warn".into(),
                "--quota-backend-bytes=4294967296".into(),
            ],
            &[],
            &logs.join("etcd.log"),
            Signal::SIGTERM,
        )?;
        wait_tcp(SocketAddr::new(lo, etcd_port), Duration::from_secs(20), &mut etcd)?;
        procs.push(etcd);

        // kube-apiserver
        let p = |x: &Path| x.display().to_string();
        let mut apiserver = Proc::spawn(
            "kube-apiserver",
            &bin.join("kube-apiserver"),
            &[
                format!("--etcd-servers={client}"),
                format!("--cert-dir={}", p(&pki.dir)),
                format!("--tls-cert-file={}", p(&pki.apiserver_cert)),
                format!("--tls-private-key-file={}", p(&pki.apiserver_key)),
                format!("--client-ca-file={}", p(&pki.ca_cert)),
                format!("--bind-address={gw}"),
                format!("--advertise-address={gw}"),
                format!("--secure-port={api_port}"),
                "--service-cluster-ip-range=10.96.0.0/16".into(),
                "--allow-privileged=true".into(),
                "--authorization-mode=RBAC".into(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", p(&pki.sa_pub)),
                format!("--service-account-signing-key-file={}", p(&pki.sa_key)),
                format!("--kubelet-client-certificate={}", p(&pki.admin_cert)),
                format!("--kubelet-client-key={}", p(&pki.admin_key)),
                "--kubelet-preferred-address-types=InternalIP".into(),
                // No kube-proxy: ClusterIPs route nowhere, so admission and
                // conversion webhooks and aggregated APIs are dialled at an
                // endpoint's pod IP and target port instead.
                "--enable-aggregator-routing=true".into(),
                "--profiling=false".into(),
                "--event-ttl=1h".into(),
                "--v=1".into(),
            ],
            &[],
            &logs.join("kube-apiserver.log"),
            Signal::SIGTERM,
        )?;
        wait_tcp(SocketAddr::new(IpAddr::V4(gw), api_port), Duration::from_secs(60), &mut apiserver)?;
        procs.push(apiserver);

        let kubeconfig = dir.join("kubeconfig");
        write_kubeconfig(&kubeconfig, &config.name, &api_url, &pki)?;

        wait_ready(&kubeconfig, &mut procs, Duration::from_secs(90))?;

        let kcm = Proc::spawn(
            "kube-controller-manager",
            &bin.join("kube-controller-manager"),
            &[
                format!("--kubeconfig={}", p(&kubeconfig)),
                format!("--authentication-kubeconfig={}", p(&kubeconfig)),
                format!("--authorization-kubeconfig={}", p(&kubeconfig)),
                "--controllers=*".into(),
                "--leader-elect=false".into(),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", free_port(lo)?),
                format!("--cluster-name={}", config.name),
                format!("--root-ca-file={}", p(&pki.ca_cert)),
                format!("--service-account-private-key-file={}", p(&pki.sa_key)),
                format!("--cluster-signing-cert-file={}", p(&pki.ca_cert)),
                format!("--cluster-signing-key-file={}", p(&pki.ca_key)),
                "--use-service-account-credentials=false".into(),
                "--allocate-node-cidrs=false".into(),
                "--profiling=false".into(),
                "--v=1".into(),
            ],
            &[],
            &logs.join("kube-controller-manager.log"),
            Signal::SIGTERM,
        )?;
        procs.push(kcm);
        let sched = Proc::spawn(
            "kube-scheduler",
            &bin.join("kube-scheduler"),
            &[
                format!("--kubeconfig={}", p(&kubeconfig)),
                format!("--authentication-kubeconfig={}", p(&kubeconfig)),
                format!("--authorization-kubeconfig={}", p(&kubeconfig)),
                "--leader-elect=false".into(),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", free_port(lo)?),
                "--profiling=false".into(),
                "--v=1".into(),
            ],
            &[],
            &logs.join("kube-scheduler.log"),
            Signal::SIGTERM,
        )?;
        procs.push(sched);

        let startup = t_start.elapsed();
        tracing::info!(
            "control plane {} up in {:?} (incl. binary check {:?}); kubeconfig {}",
            config.name,
            startup,
            t0.elapsed(),
            kubeconfig.display()
        );
        Ok(ControlPlane { config, pki, kubeconfig, api_url, api_port, logs, startup, procs })
    }

    /// Names of processes that have died (a healthy control plane has none).
    pub fn dead(&mut self) -> Vec<String> {
        self.procs.iter_mut().filter_map(|p| p.exited().map(|s| format!("{} ({s})", p.name))).collect()
    }

    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.pid()).collect()
    }

    pub fn stop(&mut self) {
        while let Some(mut p) = self.procs.pop() {
            p.stop(Duration::from_secs(10));
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_ready(kubeconfig: &Path, procs: &mut [Proc], timeout: Duration) -> Result<()> {
    // A plain blocking probe with curl-free Rust: use a throwaway runtime.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let deadline = Instant::now() + timeout;
    let client = rt.block_on(crate::client_from_kubeconfig(kubeconfig))?;
    loop {
        let req = http::Request::get("/readyz").body(Vec::new()).context("building /readyz request")?;
        match rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), client.request_text(req)).await }) {
            Ok(Ok(body)) if body.trim() == "ok" => return Ok(()),
            _ => {}
        }
        for p in procs.iter_mut() {
            if let Some(st) = p.exited() {
                bail!("{} exited ({st}); log {}:\n{}", p.name, p.log.display(), p.log_tail(40));
            }
        }
        if Instant::now() > deadline {
            bail!("kube-apiserver not ready within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes an admin kubeconfig (absolute paths to the PEM files) that both
/// kubectl and kube-rs accept.
pub fn write_kubeconfig(path: &Path, name: &str, server: &str, pki: &Pki) -> Result<()> {
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {name}-admin
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}-admin
    namespace: default
current-context: {name}
",
        ca = pki.ca_cert.display(),
        cert = pki.admin_cert.display(),
        key = pki.admin_key.display(),
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
