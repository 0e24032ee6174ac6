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
use sluice_e2e::kafka::{KafkaConfig, KafkaServer};
use sluice_e2e::net;
use sluice_e2e::node::config::ImageMapping;
use sluice_e2e::s3::{S3Config, S3Server};

mod operator;
use operator::{HELM_NAMESPACE, HELM_RELEASE, Operator, OperatorMode, apply_crds, helm_install, operator_mode};

const NAME: &str = "sandbox";
const BRIDGE: &str = "sl-sandbox";
const OCTET: u8 = 250;
const S3_PORT: u16 = 9000;
const S3_BUCKET: &str = "sluice";
/// The Kafka broker's listener on the bridge gateway (`SANDBOX_KAFKA=1`), and its controller's on loopback.
const KAFKA_PORT: u16 = 9092;
const KAFKA_CONTROLLER_PORT: u16 = 9093;
pub(crate) const FIELD_MANAGER: &str = "sluice-sandbox";
pub(crate) const OPERATOR_ARGS: [&str; 8] = [
    "--engine-access",
    "apiserver-proxy",
    "--http-addr",
    "127.0.0.1:9464",
    "--lease-namespace",
    "sluice-system",
    "--default-engine-image",
    "sluice/engine:0.1.0",
];

pub(crate) struct Args {
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
pub(crate) fn repo(a: &Args) -> PathBuf {
    a.dir.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// A Sluice binary of the working tree: `SLUICE_<NAME>_BIN`, else the newer of
/// `$CARGO_TARGET_DIR/{release,debug}/<bin>` (`<repo>/target` by default), else the debug path.
pub(crate) fn sluice_bin(repo: &Path, bin: &str) -> PathBuf {
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
    // With SANDBOX_KAFKA=1, a Kafka broker on the host at the bridge gateway, which pods
    // reach as kafka.sluice-system:9092 (it advertises the gateway's address). A topic that a
    // producer names is created with 4 partitions.
    let kafka = match std::env::var("SANDBOX_KAFKA").as_deref() {
        Ok("1") | Ok("true") => {
            let _ = std::fs::remove_dir_all(a.dir.join("kafka"));
            let k = KafkaServer::start(KafkaConfig {
                addr: std::net::SocketAddr::from((gw, KAFKA_PORT)),
                controller_port: KAFKA_CONTROLLER_PORT,
                dir: a.dir.join("kafka"),
                log: logs.join("kafka.log"),
                // The examples' jobs write their topics into being.
                auto_create: Some(4),
                death_signal: Signal::SIGTERM,
            })
            .context("starting the Kafka broker (SANDBOX_KAFKA=1)")?;
            rt.block_on(sluice_e2e::cluster::expose_host_service(&client, "sluice-system", "kafka", gw, KAFKA_PORT))
                .context("creating the kafka Service")?;
            Some(k)
        }
        _ => None,
    };
    let kafka_msg = match &kafka {
        Some(k) => format!(
            "Kafka: {} (in-cluster kafka.sluice-system:{KAFKA_PORT}), ready in {:.1}s, log {}\n",
            k.bootstrap(),
            k.startup.as_secs_f64(),
            k.log().display()
        ),
        None => "Kafka: none (SANDBOX_KAFKA=1 starts a broker)\n".to_string(),
    };
    let kafka_env = match &kafka {
        Some(k) => format!(
            "# Kafka as the host sees it (in-cluster: kafka.sluice-system:{KAFKA_PORT}).\nexport SLUICE_KAFKA_BOOTSTRAP={}\n",
            k.bootstrap()
        ),
        None => String::new(),
    };
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
             export AWS_REGION=us-east-1\n\
             {kafka_env}",
            kubeconfig.display(),
            a.dir.display(),
        ),
    )?;
    let msg = format!(
        "sandbox up in {:.1}s (control plane {:.1}s, nodes Ready {:.1}s later)\n\
         S3: http://{gw}:{S3_PORT} (in-cluster http://s3.sluice-system:{S3_PORT}), bucket {S3_BUCKET}, \
         ready in {:.1}s, log {}\n\
         {kafka_msg}\
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
