//! Supervised child processes: stdout/stderr to a log file, killed when the
//! supervising thread exits (PR_SET_PDEATHSIG) or when the handle drops.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A child process that is stopped (SIGTERM, then SIGKILL) on drop.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `program args…`, appending its output to `log`. `death_signal`
    /// is sent to it when the spawning thread dies, so nothing outlives a
    /// crashed test process.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        log: &Path,
        death_signal: Signal,
    ) -> Result<Proc> {
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(program);
        cmd.args(args).envs(envs.iter().map(|(k, v)| (k, v))).stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: prctl is async-signal-safe; nothing is allocated here.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(death_signal).map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("starting {name} ({})", program.display()))?;
        Ok(Proc { name: name.to_string(), child, log: log.to_path_buf() })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (and reaps it if so).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs `f` on a thread that lives as long as the process, and returns its
/// result. Spawn processes there that must die with *this process* rather
/// than with the calling thread: PR_SET_PDEATHSIG fires when the thread that
/// forked the child exits, and a test's tokio worker or `spawn_blocking`
/// thread may exit long before the test process does.
pub fn on_keeper_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R> {
    static KEEPER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> = std::sync::OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        // If the thread cannot be created, the send below fails and says so.
        let _ = std::thread::Builder::new().name("sluice-e2e-keeper".into()).spawn(move || {
            while let Ok(job) = rx.recv() {
                job();
            }
            // Every sender is gone only at process exit; never let this thread end first.
            loop {
                std::thread::park();
            }
        });
        std::sync::Mutex::new(tx)
    });
    let (rtx, rrx) = std::sync::mpsc::channel();
    let job: Job = Box::new(move || {
        let _ = rtx.send(f());
    });
    keeper
        .lock()
        .map_err(|_| anyhow::anyhow!("keeper thread lock poisoned"))?
        .send(job)
        .map_err(|_| anyhow::anyhow!("the keeper thread is gone"))?;
    rrx.recv().context("keeper thread died")
}

/// A free TCP port on `ip` (bound and released; good enough for a harness).
pub fn free_port(ip: std::net::IpAddr) -> Result<u16> {
    let l = std::net::TcpListener::bind((ip, 0)).context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_tcp(addr: std::net::SocketAddr, timeout: Duration, proc: &mut Proc) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(st) = proc.exited() {
            anyhow::bail!(
                "{} exited ({st}) before listening on {addr}; log {}:\n{}",
                proc.name,
                proc.log.display(),
                proc.log_tail(30)
            );
        }
        if Instant::now() > deadline {
            anyhow::bail!("{} did not listen on {addr} within {timeout:?}", proc.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `bash SCRIPT install` (a repository script that fetches or builds a
/// server into `$SLUICE_CACHE`, serializing concurrent installs) with its
/// progress on stderr; returns what it prints on stdout, trimmed.
pub fn install_script(script: &Path) -> Result<String> {
    let out = Command::new("bash")
        .arg(script)
        .arg("install")
        .env("SLUICE_CACHE", crate::controlplane::cache_dir())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        anyhow::bail!("{} install failed ({}); see the output above", script.display(), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
