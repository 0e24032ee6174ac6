//! A real Apache Kafka broker for the sandbox: Kafka 4.4 in KRaft mode, one
//! combined broker and controller, installed from Maven Central and run by
//! `scripts/kafka.sh` on the system's Java 17 (as `make test` runs it).
//!
//! The broker listens on, and advertises, an address the pods reach (the
//! bridge gateway): Kafka clients connect to the bootstrap address and then
//! to the address the broker advertises, so both must be reachable from
//! inside the cluster and from the host.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use crate::process::{Proc, on_keeper_thread};

/// How long a started broker may take to report itself started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// `scripts/kafka.sh` of the repository this crate lives in.
pub fn script() -> PathBuf {
    crate::repo_root().join("scripts/kafka.sh")
}

/// Fetches Kafka into `$SLUICE_CACHE` if it is not there yet (about 45 MB
/// from Maven Central, the first time).
pub fn install() -> Result<()> {
    crate::process::install_script(&script()).map(|_| ())
}

/// Where and how to run the broker.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// The broker's listener, which it also advertises.
    pub addr: SocketAddr,
    /// The controller's port, on 127.0.0.1.
    pub controller_port: u16,
    /// The data directory; the broker's own log is `server.log` in it.
    pub dir: PathBuf,
    /// The script's and the JVM's output.
    pub log: PathBuf,
    /// Topics that a producer names are created with this many partitions
    /// (`--auto-create`); `None`: topics must be created first.
    pub auto_create: Option<u32>,
    /// Sent to the broker when this process exits (PR_SET_PDEATHSIG).
    pub death_signal: Signal,
}

/// A running broker. Dropping it stops it (SIGTERM, then SIGKILL).
#[derive(Debug)]
pub struct KafkaServer {
    pub config: KafkaConfig,
    /// The time from spawning the broker to its "Kafka Server started".
    pub startup: Duration,
    proc: Proc,
}

impl KafkaServer {
    /// Installs Kafka if needed, starts the broker and waits until it has started.
    pub fn start(config: KafkaConfig) -> Result<KafkaServer> {
        install()?;
        std::fs::create_dir_all(&config.dir).with_context(|| format!("creating {}", config.dir.display()))?;
        let mut args = vec![
            script().display().to_string(),
            "run".into(),
            "--host".into(),
            config.addr.ip().to_string(),
            "--port".into(),
            config.addr.port().to_string(),
            "--controller-port".into(),
            config.controller_port.to_string(),
            "--dir".into(),
            config.dir.display().to_string(),
        ];
        if let Some(n) = config.auto_create {
            args.extend(["--auto-create".to_string(), n.to_string()]);
        }
        let envs = vec![("SLUICE_CACHE".to_string(), crate::controlplane::cache_dir().display().to_string())];
        let (log, signal) = (config.log.clone(), config.death_signal);
        let t0 = Instant::now();
        // The script execs Java, so the child is the broker itself.
        let mut proc = on_keeper_thread(move || Proc::spawn("kafka", Path::new("bash"), &args, &envs, &log, signal))??;
        let server_log = config.dir.join("server.log");
        loop {
            if started(&server_log) && TcpStream::connect_timeout(&config.addr, Duration::from_secs(1)).is_ok() {
                return Ok(KafkaServer { config, startup: t0.elapsed(), proc });
            }
            if let Some(st) = proc.exited() {
                bail!(
                    "the Kafka broker exited ({st}) while starting; logs {} and {}:\n{}",
                    proc.log.display(),
                    server_log.display(),
                    proc.log_tail(30)
                );
            }
            if t0.elapsed() > READY_TIMEOUT {
                bail!(
                    "the Kafka broker on {} did not start within {READY_TIMEOUT:?}; see {}",
                    config.addr,
                    server_log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `host:port`, for `properties.bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.config.addr.to_string()
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The broker's own log.
    pub fn log(&self) -> PathBuf {
        self.config.dir.join("server.log")
    }
}

/// Whether the broker's log says it has started.
fn started(server_log: &Path) -> bool {
    std::fs::read_to_string(server_log).is_ok_and(|l| l.contains("Kafka Server started"))
}
