//! Test-support API: one cluster per test process, started on first use and
//! shared by every test in it (each test works in its own namespace).
//!
//! A test environment has its own directory (`$TMPDIR/sluice-e2e/<pid>`),
//! bridge (`sl-e<pid>`), pod /16 and node name (`e2e<pid>-node-1`), so it
//! never touches a running `.sandbox/`. It is stopped when the test process
//! exits (an `atexit` hook; the processes also get SIGTERM through
//! PR_SET_PDEATHSIG if the process dies), and the next test process sweeps
//! whatever a killed one left behind.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use crate::cluster::{Cluster, ClusterSpec, host_image_mappings};
use crate::controlplane::ClusterNet;
use crate::net;
use crate::node::config::ImageMapping;

/// What the tests need to know about the shared cluster.
#[derive(Debug, Clone)]
pub struct TestEnv {
    pub name: String,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub gateway: Ipv4Addr,
    pub node_name: String,
    pub node_ip: Ipv4Addr,
    /// Where each pod's container logs go: `<logs_dir>/<ns>_<pod>_<uid>/<container>/<n>.log`.
    pub logs_dir: PathBuf,
    pub control_plane_startup: Duration,
    pub cluster_startup: Duration,
}

/// Options for [`start_cluster`]; `node_bin` and the test workload binary come
/// from the test crate (`env!("CARGO_BIN_EXE_…")`).
#[derive(Debug, Clone)]
pub struct Options {
    pub node_bin: PathBuf,
    pub images: Vec<ImageMapping>,
    /// Distinguishes several clusters in one process (`""` for the shared one).
    pub suffix: String,
    pub backoff_initial_seconds: f64,
}

impl Options {
    /// Options for tests outside `e2e/` (the operator's, the engine's): builds
    /// `sluice-node` and `sluice-testhttp` with cargo into
    /// `$SLUICE_CACHE/target-e2e` (a no-op when up to date) and maps
    /// `sluice/testhttp:*` plus the given images.
    pub fn for_external_tests(images: Vec<ImageMapping>) -> Result<Options> {
        let manifest = crate::repo_root().join("e2e/Cargo.toml");
        let target = crate::controlplane::cache_dir().join("target-e2e");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--manifest-path"])
            .arg(&manifest)
            .args(["--bin", "sluice-node", "--bin", "sluice-testhttp"])
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .context("running cargo to build sluice-node")?;
        if !status.success() {
            bail!("building sluice-node failed ({status})");
        }
        let bin = target.join("debug");
        let mut all = images;
        all.push(ImageMapping {
            image: "sluice/testhttp:*".into(),
            entrypoint: vec![bin.join("sluice-testhttp").display().to_string()],
            cmd: Vec::new(),
            path: Vec::new(),
        });
        Ok(Options {
            node_bin: bin.join("sluice-node"),
            images: all,
            suffix: String::new(),
            backoff_initial_seconds: 1.0,
        })
    }
}

static SHARED: OnceLock<std::result::Result<TestEnv, String>> = OnceLock::new();
static RUNNING: Mutex<Vec<Cluster>> = Mutex::new(Vec::new());

extern "C" fn stop_all() {
    if let Ok(mut v) = RUNNING.lock() {
        for mut c in v.drain(..) {
            c.stop();
        }
    }
}

fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

fn root() -> PathBuf {
    std::env::temp_dir().join("sluice-e2e")
}

/// Removes namespaces, bridges and directories of test processes that died.
pub fn sweep_stale() {
    let Ok(rd) = std::fs::read_dir(root()) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("octet-") {
            let owner = std::fs::read_to_string(e.path()).ok().and_then(|p| p.trim().parse::<i32>().ok());
            if !owner.is_some_and(pid_alive) {
                let _ = std::fs::remove_file(e.path());
            }
            continue;
        }
        let pid: i32 = name.split('-').next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if pid == 0 || pid_alive(pid) {
            continue;
        }
        let suffix = name.split_once('-').map(|(_, s)| s.to_string()).unwrap_or_default();
        for ns in net::list_netns(&format!("sluice-e2e{pid}{suffix}-node-")) {
            net::delete_netns(&ns);
        }
        net::delete_link(&bridge_name(pid as u32, &suffix));
        let _ = std::fs::remove_dir_all(e.path());
    }
}

fn bridge_name(pid: u32, suffix: &str) -> String {
    format!("sl-e{pid}{suffix}").chars().take(15).collect()
}

/// A /16 (`10.<octet>.0.0/16`, octet 200–249) that no interface uses and no
/// other live test process has reserved. The reservation is a file
/// `$TMPDIR/sluice-e2e/octet-<o>` holding the owner's pid, created with
/// O_EXCL, so clusters started at the same moment (in this process or
/// another) never share one. It is reclaimed once its owner has exited.
pub fn free_octet() -> Result<u8> {
    let out = std::process::Command::new("ip").args(["-4", "-o", "addr"]).output()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    std::fs::create_dir_all(root())?;
    let me = std::process::id();
    let start = 200 + (me % 50) as u8;
    for o in (0..50u8).map(|i| 200 + (start - 200 + i) % 50) {
        if text.contains(&format!(" 10.{o}.")) {
            continue;
        }
        let lock = root().join(format!("octet-{o}"));
        if let Ok(owner) = std::fs::read_to_string(&lock) {
            match owner.trim().parse::<i32>() {
                // Ours (another cluster of this process) or a live process's.
                Ok(pid) if pid_alive(pid) => continue,
                _ => {
                    let _ = std::fs::remove_file(&lock);
                }
            }
        }
        let created = std::fs::OpenOptions::new().write(true).create_new(true).open(&lock);
        if let Ok(mut f) = created {
            use std::io::Write;
            f.write_all(me.to_string().as_bytes())?;
            return Ok(o);
        }
    }
    Err(anyhow!("no free 10.x.0.0/16 between 10.200 and 10.249 for a test cluster"))
}

/// Starts a cluster for this test process (not shared). It is stopped at exit,
/// or by [`stop_cluster`].
pub fn start_cluster(opts: &Options) -> Result<TestEnv> {
    sweep_stale();
    let pid = std::process::id();
    let name = format!("e2e{pid}{}", opts.suffix);
    let dir = root().join(format!("{pid}-{}", opts.suffix));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut images = opts.images.clone();
    images.extend(host_image_mappings());
    let spec = ClusterSpec {
        name: name.clone(),
        dir: dir.clone(),
        net: ClusterNet { bridge: bridge_name(pid, &opts.suffix), octet: free_octet()? },
        nodes: 1,
        node_bin: opts.node_bin.clone(),
        images,
        backoff_initial_seconds: opts.backoff_initial_seconds,
    };
    let t0 = Instant::now();
    // Start from a thread that never exits: PR_SET_PDEATHSIG fires when the
    // *thread* that forked a child dies.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new().name(format!("sluice-e2e-{name}")).spawn(move || {
        let r = Cluster::start(spec);
        let _ = tx.send(r.map(|c| {
            let env = TestEnv {
                name: c.spec.name.clone(),
                dir: c.spec.dir.clone(),
                kubeconfig: c.kubeconfig().to_path_buf(),
                gateway: c.spec.net.gateway(),
                node_name: c.spec.node_name(1),
                node_ip: c.spec.net.node_ip(1),
                logs_dir: c.spec.dir.join("nodes").join(c.spec.node_name(1)).join("logs"),
                control_plane_startup: c.control_plane.startup,
                cluster_startup: Duration::ZERO,
            };
            if let Ok(mut v) = RUNNING.lock() {
                v.push(c);
            }
            env
        }));
        loop {
            std::thread::park();
        }
    })?;
    let mut env = rx.recv().context("cluster thread died")??;
    env.cluster_startup = t0.elapsed();
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        // SAFETY: registering a plain extern "C" function.
        unsafe {
            nix::libc::atexit(stop_all);
        }
    });
    eprintln!(
        "sluice-e2e: cluster {} up in {:.1}s (control plane {:.1}s); KUBECONFIG={}",
        env.name,
        env.cluster_startup.as_secs_f64(),
        env.control_plane_startup.as_secs_f64(),
        env.kubeconfig.display()
    );
    Ok(env)
}

/// Stops a cluster started by [`start_cluster`] (nodes, then control plane,
/// then the bridge) and returns the pids that were running.
pub fn stop_cluster(name: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let taken: Vec<Cluster> = match RUNNING.lock() {
        Ok(mut v) => {
            let (mine, rest): (Vec<_>, Vec<_>) = v.drain(..).partition(|c| c.spec.name == name);
            *v = rest;
            mine
        }
        Err(_) => Vec::new(),
    };
    for mut c in taken {
        pids.extend(c.node_pids());
        pids.extend(c.control_plane.pids());
        c.stop();
    }
    pids
}

/// The cluster shared by every test of this process.
pub fn shared(opts: &Options) -> Result<TestEnv> {
    SHARED
        .get_or_init(|| start_cluster(opts).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!("starting the test cluster: {e}"))
}

impl TestEnv {
    pub async fn client(&self) -> Result<kube::Client> {
        crate::client_from_kubeconfig(&self.kubeconfig).await
    }

    /// Creates a fresh namespace `<prefix>-<n>` and waits for its `default`
    /// ServiceAccount (pods are refused until it exists).
    pub async fn namespace(&self, client: &kube::Client, prefix: &str) -> Result<String> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("{prefix}-{n}");
        let api: Api<Namespace> = Api::all(client.clone());
        let ns =
            Namespace { metadata: ObjectMeta { name: Some(name.clone()), ..Default::default() }, ..Default::default() };
        api.create(&PostParams::default(), &ns).await?;
        let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        wait_for(Duration::from_secs(30), "default serviceaccount", || async {
            Ok(sa.get_opt("default").await?.map(|_| ()))
        })
        .await?;
        Ok(name)
    }

    /// The log file of a container's current (or `n`-th) run.
    pub fn log_file(&self, pod: &Pod, container: &str, n: u32) -> PathBuf {
        let md = &pod.metadata;
        self.logs_dir
            .join(format!(
                "{}_{}_{}",
                md.namespace.clone().unwrap_or_default(),
                md.name.clone().unwrap_or_default(),
                md.uid.clone().unwrap_or_default()
            ))
            .join(container)
            .join(format!("{n}.log"))
    }
}

/// An S3-compatible server (MinIO) for a test, reachable from the host at
/// [`TestS3::endpoint`] and from pods as the Service `s3` of its namespace
/// ([`TestS3::cluster_endpoint`]), with the Secret `s3-creds`
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`) next to it. Dropping it
/// stops the server; it is killed (PR_SET_PDEATHSIG) if the test process
/// exits first. Its data and log stay in the cluster's directory
/// (`<dir>/s3-<port>/`, `<dir>/logs/s3-<port>.log`) until the next sweep.
#[derive(Debug)]
pub struct TestS3 {
    /// The namespace holding the Service `s3` and the Secret `s3-creds`.
    pub namespace: String,
    /// The server's port, on the cluster's gateway; the Service has port == targetPort == this.
    pub port: u16,
    /// As the host (the test) sees it: `http://<gateway>:<port>`.
    pub endpoint: String,
    /// As pods see it: `http://s3.<namespace>:<port>`.
    pub cluster_endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `us-east-1`.
    pub region: String,
    pub server: crate::s3::S3Server,
}

impl TestS3 {
    /// Creates a bucket (an existing one is fine).
    pub fn create_bucket(&self, bucket: &str) -> Result<()> {
        self.server.create_bucket(bucket)
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }
}

impl TestEnv {
    /// Starts MinIO on this cluster's gateway address and a free port (building
    /// it first if `$SLUICE_CACHE/bin` has none: minutes, once), creates
    /// `buckets`, and exposes it in `ns` as the Service `s3` with the Secret
    /// `s3-creds`. The namespace is created if missing.
    pub async fn start_s3(&self, client: &kube::Client, ns: &str, buckets: &[&str]) -> Result<TestS3> {
        let gateway = self.gateway;
        let dir = self.dir.clone();
        let buckets: Vec<String> = buckets.iter().map(|b| b.to_string()).collect();
        let server = tokio::task::spawn_blocking(move || -> Result<crate::s3::S3Server> {
            let port = crate::process::free_port(std::net::IpAddr::V4(gateway))?;
            let server = crate::s3::S3Server::start(crate::s3::S3Config {
                addr: std::net::SocketAddr::from((gateway, port)),
                dir: dir.join(format!("s3-{port}")),
                access_key: "sluice-test".into(),
                secret_key: "sluice-test-secret".into(),
                log: dir.join("logs").join(format!("s3-{port}.log")),
                death_signal: nix::sys::signal::Signal::SIGKILL,
            })?;
            for b in &buckets {
                server.create_bucket(b)?;
            }
            Ok(server)
        })
        .await
        .context("starting the S3 server")??;
        let port = server.config.addr.port();
        let s3 = TestS3 {
            namespace: ns.to_string(),
            port,
            endpoint: server.endpoint(),
            cluster_endpoint: format!("http://s3.{ns}:{port}"),
            access_key_id: server.config.access_key.clone(),
            secret_access_key: server.config.secret_key.clone(),
            region: crate::s3::REGION.to_string(),
            server,
        };
        crate::cluster::expose_host_service(client, ns, "s3", gateway, port).await?;
        crate::cluster::apply_secret(
            client,
            ns,
            "s3-creds",
            &[
                ("AWS_ACCESS_KEY_ID", s3.access_key_id.as_str()),
                ("AWS_SECRET_ACCESS_KEY", s3.secret_access_key.as_str()),
            ],
        )
        .await?;
        eprintln!(
            "sluice-e2e: S3 for {ns} at {} ({}), ready in {:.1}s; log {}",
            s3.endpoint,
            s3.cluster_endpoint,
            s3.server.startup.as_secs_f64(),
            s3.server.log().display()
        );
        Ok(s3)
    }
}

/// Polls `f` until it returns `Some`, or fails after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what} (last error: {last_err:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `pred` holds for the named object.
pub async fn wait_object<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&K) -> bool,
) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let deadline = Instant::now() + timeout;
    let mut last: Option<K> = None;
    let mut last_err = None;
    loop {
        match api.get_opt(name).await {
            Ok(Some(o)) => {
                if pred(&o) {
                    return Ok(o);
                }
                last = Some(o);
            }
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}; last error {last_err:?}; last seen: {last:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A plain HTTP/1.1 GET from the host to a pod address; returns (status, body).
pub async fn http_get(ip: Ipv4Addr, port: u16, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect((ip, port))).await??;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((code, body))
}

/// The pod's IP, once it has one.
pub fn pod_ip(p: &Pod) -> Option<Ipv4Addr> {
    p.status.as_ref()?.pod_ip.as_deref()?.parse().ok()
}

pub fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The host pid of a container (its `containerID` is `sluice://<pid>`).
pub fn container_pid(p: &Pod, container: &str) -> Option<i32> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == container)?
        .container_id
        .as_deref()?
        .strip_prefix("sluice://")?
        .parse()
        .ok()
}

pub fn process_alive(pid: i32) -> bool {
    // A zombie still answers kill(0); look at /proc state instead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.split(") ").nth(1).is_some_and(|rest| rest.starts_with('Z')),
        Err(_) => false,
    }
}
