//! Test support: a real S3-compatible server (MinIO, pinned and installed by
//! `scripts/s3-server.sh`) on a free loopback port, with its data in a temporary directory.
//!
//! Enabled by the `testing` feature, for this crate's tests and other crates' dev-dependencies.
//! The first start in a fresh cache builds MinIO, which takes minutes; concurrent installs are
//! serialized by the script's lock file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test support: failing loudly is the point.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::S3Options;

const ACCESS_KEY: &str = "sluice-test";
const SECRET_KEY: &str = "sluice-test-secret";
/// How long a started server may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running S3-compatible server. Dropping it kills the server and deletes its data.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// `scripts/<name>` of the repository, found from the `CARGO_MANIFEST_DIR` cargo sets when it
/// runs a test (a cached build may have been compiled in a clone at another path). Test support
/// of other crates (the Kafka broker's `scripts/kafka.sh`) finds its script here too.
pub fn repo_script(name: &str) -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(name);
    let Some(start) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else { return built };
    start.ancestors().map(|d| d.join("scripts").join(name)).find(|p| p.is_file()).unwrap_or(built)
}

/// Runs `scripts/<name> install` (a no-op once installed); panics naming the script if it fails.
pub fn install_script(name: &str) {
    let script = repo_script(name);
    let status = Command::new("bash")
        .arg(&script)
        .arg("install")
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(status.success(), "{} install failed ({status}); see its output above", script.display());
}

fn script() -> PathBuf {
    repo_script("s3-server.sh")
}

/// Runs `scripts/s3-server.sh install` (a no-op once installed).
pub fn install() {
    install_script("s3-server.sh");
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).map(|a| a.port()).unwrap()
}

impl S3Server {
    /// Installs the server if needed and starts it on a free port with an empty data directory.
    pub fn start() -> S3Server {
        install();
        let dir = tempfile::Builder::new().prefix("sluice-s3-").tempdir().unwrap();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let mut server = S3Server {
            endpoint: format!("http://{addr}"),
            access_key: ACCESS_KEY.to_string(),
            secret_key: SECRET_KEY.to_string(),
            addr,
            dir,
            child: None,
        };
        server.spawn();
        server
    }

    /// Options that reach this server with its credentials.
    pub fn options(&self) -> S3Options {
        S3Options {
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            path_style: Some(true),
            access_key: Some(self.access_key.clone()),
            secret_key: Some(self.secret_key.clone()),
        }
    }

    /// Creates a bucket (an existing one is fine).
    pub fn create_bucket(&self, name: &str) {
        crate::s3::create_bucket(&self.options(), name).unwrap_or_else(|e| panic!("create bucket {name}: {e}"));
    }

    /// Kills the server; its data stays for [`S3Server::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        // The script execs the server, so killing this child kills the server.
        let child = Command::new("bash")
            .arg(script())
            .args(["run", "--addr", &self.addr.to_string(), "--dir"])
            .arg(self.dir.path().join("data"))
            .args(["--access-key", &self.access_key, "--secret-key", &self.secret_key])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the S3 server: {e}"));
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits until the server says it is ready (MinIO's readiness endpoint).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("the S3 server exited with {status} while starting; log:\n{}", self.log());
            }
            if ready(self.addr) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "the S3 server at {} did not become ready in {READY_TIMEOUT:?}; log:\n{}",
                    self.addr,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn ready(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /minio/health/ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
