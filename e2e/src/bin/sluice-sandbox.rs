//! `sluice-sandbox`: a Docker-free local cluster for developers and users.
//!
//! - `sluice-sandbox up [--dir DIR] [--nodes N]` starts etcd, the control
//!   plane and N `sluice-node` agents in the background, waits until the
//!   nodes are Ready, writes `DIR/kubeconfig` and `DIR/env`, and prints the
//!   `export KUBECONFIG=…` line.
//! - `sluice-sandbox down [--dir DIR]` stops everything and checks that no
//!   process, network namespace or bridge is left.
//! - `sluice-sandbox run [--dir DIR] [--nodes N]` is `up` in the foreground.
//!
//! `DIR` defaults to `.sandbox` in the current directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sluice_e2e::cluster::{Cluster, ClusterSpec, host_image_mappings};
use sluice_e2e::controlplane::ClusterNet;
use sluice_e2e::net;
use sluice_e2e::node::config::ImageMapping;

const NAME: &str = "sandbox";
const BRIDGE: &str = "sl-sandbox";
const OCTET: u8 = 250;
const S3_PORT: u16 = 9000;

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
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo.join("target"));
    for (image, bin) in [("sluice/engine:*", "sluice-engine"), ("sluice/operator:*", "sluice-operator")] {
        let env = format!("SLUICE_{}_BIN", bin.trim_start_matches("sluice-").to_uppercase());
        let path = std::env::var_os(&env).map(PathBuf::from).unwrap_or_else(|| {
            let rel = target.join("release").join(bin);
            if rel.exists() { rel } else { target.join("debug").join(bin) }
        });
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

fn spec(a: &Args, nodes: u8) -> Result<ClusterSpec> {
    let dir = a.dir.as_path();
    let repo = dir.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
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
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let client = sluice_e2e::client_from_kubeconfig(&kubeconfig).await?;
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
    std::fs::write(
        a.dir.join("env"),
        format!(
            "# Written by sluice-sandbox up; source it.\n\
             export KUBECONFIG={}\n\
             export SLUICE_SANDBOX_DIR={}\n\
             export SLUICE_SANDBOX_BRIDGE_IP={gw}\n\
             # S3 as the host sees it (in-cluster: http://s3.sluice-system:{S3_PORT}).\n\
             export SLUICE_S3_ENDPOINT=http://{gw}:{S3_PORT}\n\
             export AWS_ACCESS_KEY_ID={key_id}\n\
             export AWS_SECRET_ACCESS_KEY={secret}\n\
             export AWS_REGION=us-east-1\n",
            kubeconfig.display(),
            a.dir.display(),
        ),
    )?;
    let msg = format!(
        "sandbox up in {:.1}s (control plane {:.1}s, nodes Ready {:.1}s later)\nexport KUBECONFIG={}\n",
        t0.elapsed().as_secs_f64(),
        cluster.control_plane.startup.as_secs_f64(),
        cluster.node_startup.as_secs_f64(),
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
                }
            }
        }
        anyhow::Ok(())
    })?;
    eprintln!("sandbox: stopping");
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

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let a = parse()?;
    match a.cmd.as_str() {
        "up" => up(&a),
        "run" => run_foreground(&a),
        "down" => down(&a),
        _ => bail!("usage: sluice-sandbox up|down|run [--dir DIR] [--nodes N] [--name N --bridge BR --octet O]"),
    }
}
