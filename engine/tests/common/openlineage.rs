//! A real OpenLineage receiver (`scripts/openlineage-receiver.py`, an HTTP server)
//! and the schema check of what it received (`scripts/openlineage-validate.sh`).
//! Shared by the engine's and the operator's tests (the operator's include this
//! file by path), so it uses only std and serde_json.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

fn repo() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().find(|p| p.join("scripts/openlineage-receiver.py").exists()).unwrap().to_path_buf()
}

pub struct Receiver {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    out: PathBuf,
}

impl Receiver {
    /// Listens on `host` (a free port); the first `failures` requests get a 503.
    pub fn start(dir: &Path, host: &str, failures: usize) -> Receiver {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let out = dir.join(format!("received-{n}.jsonl"));
        let mut child = Command::new("python3")
            .arg(repo().join("scripts/openlineage-receiver.py"))
            .args(["--bind", &format!("{host}:0"), "--out", out.to_str().unwrap()])
            .args(["--fail-first", &failures.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("receiver: {line}")).to_string();
        Receiver { child, addr, out }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    pub fn types(&self) -> Vec<String> {
        self.events().iter().map(|e| e["eventType"].as_str().unwrap().to_string()).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the schema check on `file`: whether it passed, and what it said.
pub fn check_file(file: &Path) -> (bool, String) {
    let out = Command::new("bash").arg(repo().join("scripts/openlineage-validate.sh")).arg(file).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Validates events against the official OpenLineage schemas; panics with every problem.
pub fn validate(events: &[Value], dir: &Path) {
    let file = dir.join("events.jsonl");
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let (ok, text) = check_file(&file);
    assert!(ok, "the events do not match the OpenLineage schemas:\n{text}");
    assert!(text.contains(&format!("{} events, 0 problems", events.len())), "{text}");
}
