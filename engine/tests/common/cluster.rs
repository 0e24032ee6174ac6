//! Engine processes for the integration tests: `sluice-engine` children that
//! are killed when a test ends, a coordinator with its workers on loopback,
//! and a minimal HTTP client for the REST API.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{complete_checkpoints, engine, wait_for};

/// A free port for a server the test starts later, from below the kernel's
/// ephemeral range (32768 and up): a port the kernel hands out for `:0` (a
/// worker's data port, a client's connection) would race the server for it.
/// (A worker's data port once took the coordinator's RPC port that way.)
/// Distinct within the test process.
pub fn free_port() -> u16 {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(7_919) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = (LOW + (offset + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN)
}

/// A child process, killed when the test ends however it ends.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn sigterm(&self) {
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "process did not exit in time; its log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn(args: &[&str], log: PathBuf) -> Proc {
    spawn_with(args, log, &[])
}

/// [`spawn`] with extra environment, such as `SLUICE_FAILPOINTS`.
pub fn spawn_with(args: &[&str], log: PathBuf, env: &[(&str, String)]) -> Proc {
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = engine();
    cmd.args(args).env("SLUICE_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::from(file));
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc { child: cmd.spawn().unwrap(), log }
}

/// A job's directory, its ports and its processes.
pub struct Cluster {
    pub dir: PathBuf,
    pub rpc: String,
    pub rest: String,
    /// `--checkpoint-dir`: `<dir>/ck` unless a test puts checkpoints elsewhere (on S3).
    pub checkpoints: String,
}

impl Cluster {
    pub fn new(dir: &Path) -> Cluster {
        Cluster {
            dir: dir.to_path_buf(),
            rpc: format!("127.0.0.1:{}", free_port()),
            rest: format!("127.0.0.1:{}", free_port()),
            checkpoints: dir.join("ck").display().to_string(),
        }
    }

    pub fn coordinator(&self, name: &str, p: usize, extra: &[&str]) -> Proc {
        self.coordinator_with(name, p, extra, &[])
    }

    /// A coordinator with extra environment, such as `SLUICE_FAILPOINTS`.
    pub fn coordinator_with(&self, name: &str, p: usize, extra: &[&str], env: &[(&str, String)]) -> Proc {
        let sp = self.dir.join("savepoints");
        let job = self.dir.join("job.sql");
        let p = p.to_string();
        let mut args = vec![
            "coordinator",
            "--job",
            job.to_str().unwrap(),
            "-p",
            &p,
            "--job-id",
            "clustered",
            "--rpc-addr",
            &self.rpc,
            "--rest-addr",
            &self.rest,
            "--checkpoint-dir",
            &self.checkpoints,
            "--checkpoint-interval",
            "300ms",
            "--savepoint-dir",
            sp.to_str().unwrap(),
            "--set",
            "restart-strategy.type=fixed-delay",
            "--set",
            "restart-strategy.fixed-delay.attempts=20",
            "--set",
            "restart-strategy.fixed-delay.delay=200ms",
            "--set",
            "heartbeat.timeout=5s",
        ];
        args.extend_from_slice(extra);
        spawn_with(&args, self.dir.join(format!("{name}.log")), env)
    }

    pub fn worker(&self, name: &str, slots: usize) -> Proc {
        self.worker_with(name, slots, &[])
    }

    /// A worker with extra environment, such as `SLUICE_FAILPOINTS`.
    pub fn worker_with(&self, name: &str, slots: usize, env: &[(&str, String)]) -> Proc {
        let slots = slots.to_string();
        let args = [
            "worker",
            "--coordinator",
            &self.rpc,
            "--slots",
            &slots,
            "--data-addr",
            "127.0.0.1:0",
            "--set",
            "heartbeat.timeout=5s",
        ];
        spawn_with(&args, self.dir.join(format!("{name}.log")), env)
    }

    pub fn write_job(&self, sql: &str) {
        std::fs::write(self.dir.join("job.sql"), sql).unwrap();
    }

    /// Runs the job at parallelism 2 on two workers until a checkpoint, then
    /// stops it with savepoint `trigger`; returns the savepoint's location once
    /// the coordinator and the workers have exited.
    pub fn stop_with_savepoint(&self, trigger: &str) -> String {
        let mut coord = self.coordinator("coordinator-p2", 2, &[]);
        let mut w: Vec<Proc> = (0..2).map(|i| self.worker(&format!("w{i}"), 1)).collect();
        wait_for("a checkpoint", Duration::from_secs(60), || complete_checkpoints(&self.job_dir()) >= 1);
        let location = self.savepoint(trigger, true);
        assert!(coord.wait(Duration::from_secs(30)).success(), "{}", coord.log());
        for x in w.iter_mut() {
            assert!(x.wait(Duration::from_secs(30)).success(), "a worker did not exit with the job");
        }
        location
    }

    /// Takes savepoint `trigger` (stopping the job with `stop`) into `<dir>/savepoints`;
    /// returns its location once it has completed.
    pub fn savepoint(&self, trigger: &str, stop: bool) -> String {
        let target = self.dir.join("savepoints");
        let body = format!(r#"{{"triggerId":"{trigger}","targetDirectory":"{}","stop":{stop}}}"#, target.display());
        let (status, resp) = http(&self.rest, "POST", "/v1/job/savepoints", &body).unwrap();
        assert!(status == 200 || status == 202, "{status} {resp}");
        let mut location = String::new();
        wait_for("the savepoint", Duration::from_secs(60), || {
            match http(&self.rest, "GET", &format!("/v1/job/savepoints/{trigger}"), "") {
                Some((200, b)) if b.contains("COMPLETED") => {
                    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
                    location = v["location"].as_str().unwrap().to_string();
                    true
                }
                Some((200, b)) if b.contains("FAILED") => panic!("savepoint {trigger} failed: {b}"),
                _ => false,
            }
        });
        location
    }

    /// Whether the coordinator's REST API says the job finished.
    pub fn job_finished(&self) -> bool {
        http(&self.rest, "GET", "/v1/job", "").is_some_and(|(_, b)| b.contains("\"FINISHED\""))
    }

    pub fn job_dir(&self) -> PathBuf {
        self.dir.join("ck").join("clustered")
    }
}

/// A minimal HTTP/1.1 client: status and body.
pub fn http(addr: &str, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default();
    Some((status, body))
}

pub fn json(addr: &str, path: &str) -> serde_json::Value {
    let (status, body) = http(addr, "GET", path, "").unwrap_or((0, String::new()));
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}
