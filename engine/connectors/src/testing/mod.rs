//! Test support: a real Apache Kafka broker (4.4, KRaft, one node that is also its own
//! controller; installed from Maven Central and run on Java 17 by `scripts/kafka.sh`) on free
//! loopback ports, with its data in a temporary directory, and a synchronous client to create
//! topics, produce and read back (the [`client`] helpers on [`KafkaBroker`]).
//!
//! Enabled by the `testing` feature, for this crate's tests and other crates' dev-dependencies.
//! [`shared`] starts one broker per test process on first use, and the tests of a binary share it
//! with topic names from [`unique_topic`]; [`KafkaBroker::start`] starts a private one (for
//! restarts). The first start in a fresh cache fetches Kafka (about 45 MB, well under a minute);
//! concurrent installs are serialized by the script's lock file. Every broker is started with
//! this process as its parent, and the script kills it and deletes its directory once this
//! process is gone, so a crashed or killed test run (or the never-dropped [`shared`] broker)
//! leaves nothing running.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test support: failing loudly is the point.

pub mod client;

use std::hash::BuildHasher;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

pub use client::{Message, Record, unique_topic};

/// How long a started broker may take to answer a metadata request (it takes ~5 s on 2 cores).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How many lines of the log a failure message quotes.
const LOG_TAIL_LINES: usize = 60;
/// How long [`KafkaBroker::stop`] waits for a controlled shutdown (it takes ~0.5 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How many times [`KafkaBroker::start`] picks new ports when one was taken meanwhile.
const START_ATTEMPTS: u32 = 3;

/// A running Kafka broker. Dropping it kills the broker and deletes its data.
///
/// Its settings are those of one node: internal topics with one replica and one partition, no
/// automatic topic creation, no initial rebalance delay (`scripts/kafka.sh` writes them).
pub struct KafkaBroker {
    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub bootstrap: String,
    port: u16,
    controller_port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// `scripts/kafka.sh` of the repository.
fn script() -> PathBuf {
    sluice_storage::testing::repo_script("kafka.sh")
}

/// Runs `scripts/kafka.sh install` (a no-op once installed).
pub fn install() {
    sluice_storage::testing::install_script("kafka.sh");
}

/// Two distinct free loopback ports below the kernel's ephemeral range. A port from `bind(0)`
/// comes from that range, and after it is released a client connection (of this process's
/// tests, or the readiness check of a broker starting in parallel) can take it as its local port
/// before the broker binds it; a restart on the same ports would race the same way.
fn free_ports() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low);
    assert!(high > low + 1_000, "the ephemeral port range starts at {high}: no room below it for the broker's ports");
    let hasher = std::collections::hash_map::RandomState::new();
    let pick = |attempt: u32, n: u32| low + (hasher.hash_one((attempt, n)) % u64::from(high - low)) as u16;
    (0..1_000)
        .map(|attempt| (pick(attempt, 0), pick(attempt, 1)))
        .find(|&(a, b)| {
            a != b
                && TcpListener::bind((Ipv4Addr::LOCALHOST, a)).is_ok()
                && TcpListener::bind((Ipv4Addr::LOCALHOST, b)).is_ok()
        })
        .unwrap_or_else(|| panic!("no two free loopback ports between {low} and {high}"))
}

/// The broker every test of this process shares, started on first use. Tests must use their own
/// topics ([`unique_topic`]). It is never dropped: the script's watchdog kills it when the
/// process exits. If it cannot start, every test that asks for it fails with the first error.
pub fn shared() -> &'static KafkaBroker {
    static BROKER: OnceLock<Result<KafkaBroker, String>> = OnceLock::new();
    let started = BROKER.get_or_init(|| {
        std::panic::catch_unwind(KafkaBroker::start).map_err(|payload| {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    match started {
        Ok(broker) => broker,
        Err(e) => panic!("the shared Kafka broker did not start: {e}"),
    }
}

impl KafkaBroker {
    /// Installs Kafka if needed and starts a broker on free ports with an empty data directory;
    /// returns once it answers a metadata request.
    pub fn start() -> KafkaBroker {
        install();
        let mut attempt = 1;
        loop {
            let dir = tempfile::Builder::new().prefix("sluice-kafka-").tempdir().unwrap();
            let (port, controller_port) = free_ports();
            let bootstrap = format!("127.0.0.1:{port}");
            let mut broker = KafkaBroker { bootstrap, port, controller_port, dir, child: None };
            match broker.try_spawn() {
                Ok(()) => return broker,
                // Another process took a port between the check and the broker's bind.
                Err(e) if attempt < START_ATTEMPTS && e.contains("Address already in use") => attempt += 1,
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Stops the broker with a controlled shutdown (SIGTERM; it is killed if that takes longer
    /// than 30 s); its data stays for [`KafkaBroker::restart`].
    pub fn stop(&mut self) {
        let Some(child) = self.child.as_mut() else { return };
        // `kill` as a bash builtin: bash runs the script anyway, and std has no SIGTERM.
        let _ = Command::new("bash").args(["-c", "kill -TERM \"$1\"", "kill"]).arg(child.id().to_string()).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }

    /// Kills the broker as a crash would (SIGKILL); its data stays for [`KafkaBroker::restart`].
    /// The restarted broker takes a few seconds more to register: the killed one's session
    /// with the controller has to expire first.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same ports and data directory (stopping it first if it
    /// runs); returns once it answers.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The broker's log (Kafka's own and the script's output), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Where [`KafkaBroker::log`] reads from.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    /// Starts the broker and waits until it answers; fails with its log if it exits first.
    fn try_spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        // The script execs Java, so killing this child kills the broker. With --cleanup its
        // watchdog deletes the directory if this process dies first (TempDir cannot).
        let child = Command::new("bash")
            .arg(script())
            .args(["run", "--port", &self.port.to_string()])
            .args(["--controller-port", &self.controller_port.to_string()])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--parent-pid", &std::process::id().to_string(), "--cleanup"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the Kafka broker: {e}"));
        self.child = Some(child);
        self.wait_ready()
    }

    /// Waits until the port accepts connections and then until a metadata request lists the
    /// broker (it registers with its controller after it starts listening).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut client: Option<BaseConsumer> = None;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "the Kafka broker exited with {status} while starting; log {}:\n{}",
                    self.log_path().display(),
                    self.log_tail()
                ));
            }
            if client.is_none() && TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                client = Some(self.client_config().create().unwrap());
            }
            if let Some(client) = &client
                && client.fetch_metadata(None, Duration::from_secs(1)).is_ok_and(|m| !m.brokers().is_empty())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                panic!(
                    "the Kafka broker at {} did not answer in {READY_TIMEOUT:?}; log {}:\n{}",
                    self.bootstrap,
                    self.log_path().display(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for KafkaBroker {
    /// Kills the broker (its data is deleted with it, so there is nothing to shut down cleanly).
    fn drop(&mut self) {
        self.kill();
    }
}
