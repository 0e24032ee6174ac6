//! `sluice-sandbox`: a Docker-free local cluster for developers and users.
//!
//! - `sluice-sandbox up [--dir DIR] [--nodes N]` starts etcd, the control
//!   plane, N `sluice-node` agents, the S3 server (MinIO, with a bucket
//!   `sluice`) and, with `SANDBOX_OPERATOR=process` (the default), the CRDs of
//!   `crds/` and the `sluice-operator` binary, all in the background under one
//!   supervisor (`SANDBOX_OPERATOR=helm` installs the chart `charts/sluice`
//!   instead: CRDs, RBAC and the operator as pods); waits until the nodes are Ready, writes `DIR/kubeconfig` and
//!   `DIR/env`, and prints the `export KUBECONFIG=…` line.
//! - `sluice-sandbox down [--dir DIR]` stops everything and checks that no
//!   process, network namespace or bridge is left.
//! - `sluice-sandbox run [--dir DIR] [--nodes N]` is `up` in the foreground.
//!
//! `DIR` defaults to `.sandbox` in the current directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use sluice_e2e::cluster::{Cluster, ClusterSpec, host_image_mappings};
use sluice_e2e::controlplane::ClusterNet;
use sluice_e2e::net;
use sluice_e2e::node::config::ImageMapping;
use sluice_e2e::process::{Proc, on_keeper_thread};
use sluice_e2e::s3::{S3Config, S3Server};

const NAME: &str = "sandbox";
const BRIDGE: &str = "sl-sandbox";
const OCTET: u8 = 250;
const S3_PORT: u16 = 9000;
const S3_BUCKET: &str = "sluice";
const FIELD_MANAGER: &str = "sluice-sandbox";
const OPERATOR_ARGS: [&str; 8] = [
    "--engine-access",
    "apiserver-proxy",
    "--http-addr",
    "127.0.0.1:9464",
    "--lease-namespace",
    "sluice-system",
    "--default-engine-image",
    "sluice/engine:0.1.0",
];

struct Args {
    cmd: String,
    dir: PathBuf,
    nodes: u8,
    /// Cluster name, bridge and /16 (`10.<octet>.0.0/16`): the defaults are
    /// the developer sandbox's; tests pass their own.
    name: String,
    bridge: String,
    octet: u8,
}

fn parse() -> Result<Args> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let cmd = a.first().cloned().unwrap_or_default();
    let flag = |n: &str| a.iter().position(|x| x == n).and_then(|i| a.get(i + 1)).cloned();
    let dir = PathBuf::from(flag("--dir").unwrap_or_else(|| ".sandbox".into()));
    let dir = if dir.is_absolute() { dir } else { std::env::current_dir()?.join(dir) };
    let nodes = flag("--nodes").map(|n| n.parse()).transpose()?.unwrap_or(1);
    let name = flag("--name").unwrap_or_else(|| NAME.into());
    let bridge = flag("--bridge").unwrap_or_else(|| BRIDGE.into());
    let octet = flag("--octet").map(|n| n.parse()).transpose()?.unwrap_or(OCTET);
    Ok(Args { cmd, dir, nodes, name, bridge, octet })
}

/// Local programs standing in for images: the Sluice binaries from the
/// working tree's target directory, plus `SLUICE_IMAGES` (a YAML list of
/// mappings) and the host-shell images.
fn images(repo: &Path) -> Result<Vec<ImageMapping>> {
    let mut v = Vec::new();
    if let Ok(f) = std::env::var("SLUICE_IMAGES") {
        let text = std::fs::read_to_string(&f).with_context(|| format!("reading SLUICE_IMAGES={f}"))?;
        let extra: Vec<ImageMapping> = serde_yaml::from_str(&text)?;
        v.extend(extra);
    }
    for (image, bin) in [("sluice/engine:*", "sluice-engine"), ("sluice/operator:*", "sluice-operator")] {
        let path = sluice_bin(repo, bin);
        v.push(ImageMapping {
            image: image.into(),
            entrypoint: vec![path.display().to_string()],
            cmd: vec![],
            path: vec![],
        });
        v.push(ImageMapping {
            image: format!("*/{image}"),
            entrypoint: vec![path.display().to_string()],
            cmd: vec![],
            path: vec![],
        });
    }
    let testhttp = std::env::current_exe()?.with_file_name("sluice-testhttp");
    v.push(ImageMapping {
        image: "sluice/testhttp:*".into(),
        entrypoint: vec![testhttp.display().to_string()],
        cmd: vec![],
        path: vec![],
    });
    v.extend(host_image_mappings());
    Ok(v)
}

/// The repository whose binaries and CRDs the sandbox uses: the parent of its directory.
fn repo(a: &Args) -> PathBuf {
    a.dir.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// A Sluice binary of the working tree: `SLUICE_<NAME>_BIN`, else the newer of
/// `$CARGO_TARGET_DIR/{release,debug}/<bin>` (`<repo>/target` by default), else the debug path.
fn sluice_bin(repo: &Path, bin: &str) -> PathBuf {
    let env = format!("SLUICE_{}_BIN", bin.trim_start_matches("sluice-").to_uppercase());
    if let Some(p) = std::env::var_os(&env) {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo.join("target"));
    let debug = target.join("debug").join(bin);
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let release = target.join("release").join(bin);
    match (mtime(&release), mtime(&debug)) {
        (Some(r), Some(d)) if r > d => release,
        (Some(_), None) => release,
        _ => debug,
    }
}

/// How the sandbox runs the operator (`SANDBOX_OPERATOR`, default `process`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum OperatorMode {
    /// CRDs from `crds/` and the binary as a supervised host process.
    Process {
        bin: PathBuf,
        crds: Vec<PathBuf>,
    },
    /// `helm upgrade --install` of `charts/sluice`: the CRDs, the RBAC and the
    /// operator as pods (image `sluice/operator`, mapped to the binary).
    Helm {
        helm: PathBuf,
        chart: PathBuf,
    },
    None,
}

const HELM_RELEASE: &str = "sluice";
const HELM_NAMESPACE: &str = "sluice-system";

/// The operator binary of the working tree, which `process` runs and the `sluice/operator` image maps to.
fn operator_bin(a: &Args, mode: &str) -> Result<PathBuf> {
    let bin = sluice_bin(&repo(a), "sluice-operator");
    if !bin.is_file() {
        bail!(
            "SANDBOX_OPERATOR={mode}: the operator binary {} is missing; build it with \
             `cargo build -p sluice-operator` at the repository root (or set SLUICE_OPERATOR_BIN, \
             or SANDBOX_OPERATOR=none)",
            bin.display()
        );
    }
    Ok(bin)
}

/// The pinned `helm` of `scripts/helm.sh` (built with `go install` the first time), or `SLUICE_HELM_BIN`.
fn helm_bin(repo: &Path) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_HELM_BIN") {
        return Ok(PathBuf::from(p));
    }
    let script = repo.join("scripts/helm.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("install")
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {} install", script.display()))?;
    if !out.status.success() {
        bail!(
            "SANDBOX_OPERATOR=helm: {} install failed ({}); set SLUICE_HELM_BIN to a helm v3 binary",
            script.display(),
            out.status
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Installs (or upgrades) the chart and waits until the operator Deployment is available.
fn helm_install(helm: &Path, chart: &Path, kubeconfig: &Path, log: &Path) -> Result<Duration> {
    let t0 = Instant::now();
    let out = std::process::Command::new(helm)
        .args(["upgrade", "--install", HELM_RELEASE])
        .arg(chart)
        .args(["--namespace", HELM_NAMESPACE, "--create-namespace", "--wait", "--timeout", "5m"])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .with_context(|| format!("running {}", helm.display()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::write(log, &text);
    if !out.status.success() {
        bail!("helm upgrade --install {HELM_RELEASE} {} failed ({}):\n{text}", chart.display(), out.status);
    }
    Ok(t0.elapsed())
}

/// Checks `SANDBOX_OPERATOR` and what it needs, before anything starts.
fn operator_mode(a: &Args) -> Result<OperatorMode> {
    let mode = std::env::var("SANDBOX_OPERATOR").unwrap_or_else(|_| "process".into());
    match mode.as_str() {
        "none" => Ok(OperatorMode::None),
        "helm" => {
            let repo = repo(a);
            let chart = repo.join("charts/sluice");
            if !chart.join("Chart.yaml").is_file() {
                bail!("SANDBOX_OPERATOR=helm: no Helm chart at {} (Chart.yaml)", chart.display());
            }
            operator_bin(a, "helm")?;
            Ok(OperatorMode::Helm { helm: helm_bin(&repo)?, chart })
        }
        "process" => {
            let repo = repo(a);
            let bin = operator_bin(a, "process")?;
            let dir = repo.join("crds");
            let mut crds: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "yaml") && p.is_file())
                        .collect()
                })
                .unwrap_or_default();
            crds.sort();
            if crds.is_empty() {
                bail!(
                    "SANDBOX_OPERATOR=process: no CRDs in {} (*.yaml); they are generated by the operator's \
                     crdgen binary (`cargo run -p sluice-operator --bin crdgen` at the repository root), \
                     or set SANDBOX_OPERATOR=none",
                    dir.display()
                );
            }
            Ok(OperatorMode::Process { bin, crds })
        }
        other => bail!("SANDBOX_OPERATOR={other}: expected process, helm or none"),
    }
}

/// Applies every CRD of `files` (server-side apply, field manager
/// `sluice-sandbox`; a file may hold several documents) and waits until each
/// is Established. Returns their names.
async fn apply_crds(client: &kube::Client, files: &[PathBuf]) -> Result<Vec<String>> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, Patch, PatchParams};
    use serde::Deserialize;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let mut names = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = serde_json::Value::deserialize(doc).with_context(|| format!("parsing {}", f.display()))?;
            if v.is_null() {
                continue;
            }
            let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
            let name = v.pointer("/metadata/name").and_then(|k| k.as_str()).unwrap_or_default().to_string();
            if kind != "CustomResourceDefinition" || name.is_empty() {
                bail!("{}: expected CustomResourceDefinitions with a name, found kind '{kind}'", f.display());
            }
            api.patch(&name, &pp, &Patch::Apply(&v))
                .await
                .with_context(|| format!("applying {name} from {}", f.display()))?;
            names.push(name);
        }
    }
    for name in &names {
        sluice_e2e::testenv::wait_object(
            &api,
            name,
            Duration::from_secs(30),
            &format!("CRD {name} Established"),
            |c| {
                c.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
            },
        )
        .await?;
    }
    Ok(names)
}

/// The operator as a host process, restarted by the supervisor when it exits.
struct Operator {
    bin: PathBuf,
    envs: Vec<(String, String)>,
    log: PathBuf,
    proc: Proc,
}

impl Operator {
    fn spawn(bin: &Path, envs: &[(String, String)], log: &Path) -> Result<Proc> {
        let (bin, envs, log) = (bin.to_path_buf(), envs.to_vec(), log.to_path_buf());
        let args: Vec<String> = OPERATOR_ARGS.iter().map(|s| s.to_string()).collect();
        on_keeper_thread(move || Proc::spawn("sluice-operator", &bin, &args, &envs, &log, Signal::SIGTERM))?
    }

    /// `s3` is the S3 endpoint as the host sees it: the operator runs on the host, where
    /// the jobs' in-cluster endpoint (`s3.sluice-system`) does not resolve.
    fn start(bin: &Path, kubeconfig: &Path, s3: &str, log: &Path) -> Result<Operator> {
        let envs = vec![
            ("KUBECONFIG".to_string(), kubeconfig.display().to_string()),
            ("RUST_LOG".to_string(), "info".to_string()),
            ("SLUICE_S3_ENDPOINT".to_string(), s3.to_string()),
        ];
        let proc = Operator::spawn(bin, &envs, log)?;
        Ok(Operator { bin: bin.to_path_buf(), envs, log: log.to_path_buf(), proc })
    }

    /// Restarts the operator if it exited (checked on the supervisor's 5 s tick, like the node agents).
    fn restart_if_dead(&mut self) {
        let Some(st) = self.proc.exited() else { return };
        eprintln!("sandbox: sluice-operator exited ({st}); restarting it (log {})", self.log.display());
        match Operator::spawn(&self.bin, &self.envs, &self.log) {
            Ok(p) => self.proc = p,
            Err(e) => eprintln!("sandbox: restarting sluice-operator: {e:#}"),
        }
    }
}

fn spec(a: &Args, nodes: u8) -> Result<ClusterSpec> {
    let dir = a.dir.as_path();
    let repo = repo(a);
    Ok(ClusterSpec {
        name: a.name.clone(),
        dir: dir.to_path_buf(),
        net: ClusterNet { bridge: a.bridge.clone(), octet: a.octet },
        nodes,
        node_bin: std::env::current_exe()?.with_file_name("sluice-node"),
        images: images(&repo)?,
        backoff_initial_seconds: 10.0,
    })
}

fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

fn read_pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("sandbox.pid")).ok()?.trim().parse().ok()
}

fn run_foreground(a: &Args) -> Result<()> {
    if let Some(pid) = read_pid(&a.dir)
        && pid_alive(pid)
        && pid != std::process::id() as i32
    {
        bail!("a sandbox is already running (pid {pid}); run `sluice-sandbox down` first");
    }
    let operator_mode = operator_mode(a)?;
    std::fs::create_dir_all(&a.dir)?;
    let _ = std::fs::remove_file(a.dir.join("ready"));
    std::fs::write(a.dir.join("sandbox.pid"), std::process::id().to_string())?;
    let t0 = Instant::now();
    let cluster = Cluster::start(spec(a, a.nodes)?)?;
    let kubeconfig = cluster.kubeconfig().to_path_buf();
    let gw = cluster.spec.net.gateway();
    // The S3-compatible server listens on the host at the bridge gateway;
    // pods reach it as http://s3.sluice-system:9000.
    let key_id = std::env::var("SANDBOX_S3_ACCESS_KEY_ID").unwrap_or_else(|_| "sluice".into());
    let secret = std::env::var("SANDBOX_S3_SECRET_ACCESS_KEY").unwrap_or_else(|_| "sluice-sandbox-secret".into());
    let logs = cluster.control_plane.logs.clone();
    // A fresh store for a fresh cluster (etcd starts empty too); the data of
    // the previous run stays in `<dir>/s3` until then.
    let _ = std::fs::remove_dir_all(a.dir.join("s3"));
    let mut s3 = S3Server::start(S3Config {
        addr: std::net::SocketAddr::from((gw, S3_PORT)),
        dir: a.dir.join("s3"),
        access_key: key_id.clone(),
        secret_key: secret.clone(),
        log: logs.join("s3.log"),
        death_signal: Signal::SIGTERM,
    })
    .context("starting the S3 server")?;
    s3.create_bucket(S3_BUCKET)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = rt.block_on(sluice_e2e::client_from_kubeconfig(&kubeconfig))?;
    rt.block_on(async {
        sluice_e2e::cluster::expose_host_service(&client, "sluice-system", "s3", gw, S3_PORT).await?;
        for ns in ["default", "sluice-system"] {
            sluice_e2e::cluster::apply_secret(
                &client,
                ns,
                "s3-creds",
                &[("AWS_ACCESS_KEY_ID", key_id.as_str()), ("AWS_SECRET_ACCESS_KEY", secret.as_str())],
            )
            .await?;
        }
        anyhow::Ok(())
    })
    .context("creating the s3 Service and the s3-creds Secrets")?;
    let mut operator = None;
    let mut operator_msg = "operator: none (SANDBOX_OPERATOR=none)\n".to_string();
    if let OperatorMode::Process { bin, crds } = &operator_mode {
        let names = rt.block_on(apply_crds(&client, crds)).context("applying crds/")?;
        let op = Operator::start(bin, &kubeconfig, &format!("http://{gw}:{S3_PORT}"), &logs.join("operator.log"))?;
        operator_msg = format!(
            "CRDs applied and Established: {}\noperator: {} (pid {}), log {}\n",
            names.join(", "),
            bin.display(),
            op.proc.pid(),
            op.log.display()
        );
        operator = Some(op);
    }
    if let OperatorMode::Helm { helm, chart } = &operator_mode {
        let log = logs.join("helm.log");
        let took = helm_install(helm, chart, &kubeconfig, &log)?;
        operator_msg = format!(
            "operator: Helm release {HELM_RELEASE} of {} in {HELM_NAMESPACE} (CRDs, RBAC, 2 operator pods), \
             ready in {:.1}s; helm is {}\n",
            chart.display(),
            took.as_secs_f64(),
            helm.display()
        );
    }
    drop(rt);
    std::fs::write(
        a.dir.join("env"),
        format!(
            "# Written by sluice-sandbox up; source it.\n\
             export KUBECONFIG={}\n\
             export SLUICE_SANDBOX_DIR={}\n\
             export SLUICE_SANDBOX_BRIDGE_IP={gw}\n\
             # S3 as the host sees it (in-cluster: http://s3.sluice-system:{S3_PORT}).\n\
             export SLUICE_S3_ENDPOINT=http://{gw}:{S3_PORT}\n\
             export SLUICE_S3_BUCKET={S3_BUCKET}\n\
             export AWS_ACCESS_KEY_ID={key_id}\n\
             export AWS_SECRET_ACCESS_KEY={secret}\n\
             export AWS_REGION=us-east-1\n",
            kubeconfig.display(),
            a.dir.display(),
        ),
    )?;
    let msg = format!(
        "sandbox up in {:.1}s (control plane {:.1}s, nodes Ready {:.1}s later)\n\
         S3: http://{gw}:{S3_PORT} (in-cluster http://s3.sluice-system:{S3_PORT}), bucket {S3_BUCKET}, \
         ready in {:.1}s, log {}\n\
         {operator_msg}\
         export KUBECONFIG={}\n",
        t0.elapsed().as_secs_f64(),
        cluster.control_plane.startup.as_secs_f64(),
        cluster.node_startup.as_secs_f64(),
        s3.startup.as_secs_f64(),
        s3.log().display(),
        kubeconfig.display()
    );
    std::fs::write(a.dir.join("ready"), &msg)?;
    print!("{msg}");
    // Wait for SIGTERM/SIGINT, then stop everything (Drop).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut cluster = cluster;
    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut t = signal(SignalKind::terminate())?;
        let mut i = signal(SignalKind::interrupt())?;
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = t.recv() => break,
                _ = i.recv() => break,
                _ = tick.tick() => {
                    let dead = cluster.dead();
                    if !dead.is_empty() {
                        eprintln!("sandbox: process died: {}", dead.join(", "));
                    }
                    for n in cluster.restart_dead_nodes() {
                        eprintln!("sandbox: restarted node agent {n}");
                    }
                    if let Some(st) = s3.exited() {
                        eprintln!("sandbox: the S3 server exited ({st}); restarting it (log {})", s3.log().display());
                        if let Err(e) = s3.restart() {
                            eprintln!("sandbox: restarting the S3 server: {e:#}");
                        }
                    }
                    if let Some(op) = operator.as_mut() {
                        op.restart_if_dead();
                    }
                }
            }
        }
        anyhow::Ok(())
    })?;
    eprintln!("sandbox: stopping");
    // The operator first (it talks to the API server), then S3, then the cluster.
    if let Some(mut op) = operator.take() {
        op.proc.stop(Duration::from_secs(10));
    }
    s3.stop();
    cluster.stop();
    let _ = std::fs::remove_file(a.dir.join("ready"));
    let _ = std::fs::remove_file(a.dir.join("sandbox.pid"));
    Ok(())
}

fn up(a: &Args) -> Result<()> {
    if let Some(pid) = read_pid(&a.dir)
        && pid_alive(pid)
    {
        println!("sandbox already running (pid {pid})\nexport KUBECONFIG={}", a.dir.join("kubeconfig").display());
        return Ok(());
    }
    // Fail fast, before anything starts (`run` checks again).
    operator_mode(a)?;
    std::fs::create_dir_all(a.dir.join("logs"))?;
    let _ = std::fs::remove_file(a.dir.join("ready"));
    let log = a.dir.join("logs/sandbox.log");
    let out = std::fs::File::create(&log)?;
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(["run", "--dir", &a.dir.display().to_string(), "--nodes", &a.nodes.to_string()])
        .args(["--name", &a.name, "--bridge", &a.bridge, "--octet", &a.octet.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        if let Ok(msg) = std::fs::read_to_string(a.dir.join("ready")) {
            print!("{msg}");
            return Ok(());
        }
        if let Some(st) = child.try_wait()? {
            bail!("sandbox failed to start ({st}); log {}:\n{}", log.display(), sluice_e2e::process::tail(&log, 40));
        }
        if Instant::now() > deadline {
            bail!("sandbox did not come up; see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn down(a: &Args) -> Result<()> {
    if let Some(pid) = read_pid(&a.dir)
        && pid_alive(pid)
    {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(90);
        while pid_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        if pid_alive(pid) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
    // Whatever a crashed sandbox left behind.
    let s = spec(a, a.nodes.max(8))?;
    let mut left = Vec::new();
    for k in 1..=s.nodes {
        for ns in net::list_netns(&format!("sluice-{}-", s.node_name(k))) {
            net::delete_netns(&ns);
            left.push(ns);
        }
    }
    if net::link_exists(&a.bridge) {
        net::delete_link(&a.bridge);
        left.push(a.bridge.clone());
    }
    let _ = std::fs::remove_file(a.dir.join("sandbox.pid"));
    let _ = std::fs::remove_file(a.dir.join("ready"));
    if left.is_empty() {
        println!("sandbox down");
    } else {
        println!("sandbox down (cleaned up leftovers: {})", left.join(", "));
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let r = parse().and_then(|a| match a.cmd.as_str() {
        "up" => up(&a),
        "run" => run_foreground(&a),
        "down" => down(&a),
        _ => bail!("usage: sluice-sandbox up|down|run [--dir DIR] [--nodes N] [--name N --bridge BR --octet O]"),
    });
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-sandbox: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
