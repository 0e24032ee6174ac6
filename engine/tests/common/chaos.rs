//! The fault-injection suite's tools (`engine/tests/chaos.rs`): a seeded
//! random source, the sequence checker that counts lost and duplicated output
//! rows against a reference run, the per-scenario report that `make chaos`
//! collects into `.bench/chaos.md`, and an HTTP proxy that puts storage faults
//! (latency, 500s, a full disk, an outage) between the engine and a real S3 server.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `SLUICE_CHAOS=full` (set by `make chaos`) runs the long version of each
/// scenario; `make test` runs the short one.
pub fn full() -> bool {
    std::env::var("SLUICE_CHAOS").is_ok_and(|v| v == "full")
}

/// The short and the full value of a scenario's size.
pub fn scale<T>(short: T, long: T) -> T {
    if full() { long } else { short }
}

/// A seeded xorshift generator; the seed is printed so that a failing run can
/// be repeated with `SLUICE_CHAOS_SEED`.
pub struct Rng(u64);

impl Rng {
    pub fn seeded(scenario: &str) -> Rng {
        let seed = std::env::var("SLUICE_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
        });
        eprintln!("chaos scenario `{scenario}`: SLUICE_CHAOS_SEED={seed}");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }

    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }
}

/// Rows lost (in the reference, not committed) and duplicated (committed more
/// often than the reference has them) in one sink's committed output.
pub fn sequence_check(expected: &[String], actual: &[String]) -> (u64, u64) {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for e in expected {
        *counts.entry(e).or_default() += 1;
    }
    for a in actual {
        *counts.entry(a).or_default() -= 1;
    }
    let lost = counts.values().filter(|c| **c > 0).map(|c| *c as u64).sum();
    let duplicated = counts.values().filter(|c| **c < 0).map(|c| c.unsigned_abs()).sum();
    (lost, duplicated)
}

/// One scenario's line of the report.
#[derive(Debug, Default)]
pub struct Scenario {
    pub name: String,
    pub runs: u64,
    pub faults: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Milliseconds from each fault to the job's recovery.
    pub recover_ms: Vec<u64>,
    /// What the scenario checked beyond loss and duplicates, for the report.
    pub notes: Vec<String>,
}

impl Scenario {
    pub fn new(name: &str) -> Scenario {
        Scenario { name: name.to_string(), ..Scenario::default() }
    }

    /// Adds one run's sequence check of sinks (expected, committed).
    pub fn check(&mut self, sinks: &[(&[String], &[String])]) {
        self.runs += 1;
        for (expected, actual) in sinks {
            let (l, d) = sequence_check(expected, actual);
            self.lost += l;
            self.duplicated += d;
        }
    }

    pub fn recovered(&mut self, since: Instant) {
        self.recover_ms.push(since.elapsed().as_millis() as u64);
    }

    /// Appends the line to `$SLUICE_CHAOS_REPORT` (JSON lines; `scripts/chaos.sh`
    /// renders them), prints it, and fails the test on any loss or duplicate.
    pub fn finish(self) {
        let line = serde_json::json!({
            "scenario": self.name,
            "runs": self.runs,
            "faults": self.faults,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "recover_ms": self.recover_ms,
            "notes": self.notes,
        });
        eprintln!("chaos report: {line}");
        if let Ok(path) = std::env::var("SLUICE_CHAOS_REPORT") {
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
            writeln!(f, "{line}").unwrap();
        }
        assert_eq!((self.lost, self.duplicated), (0, 0), "scenario `{}` lost or duplicated rows", self.name);
    }
}

/// What the proxy does to the requests that reach it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Forwards every request.
    None,
    /// Forwards every request after this delay.
    Slow(Duration),
    /// Answers every request with `500 InternalError`.
    Errors,
    /// Answers writes (PUT, POST) with MinIO's `507 XMinioStorageFull`; reads pass.
    Full,
}

/// An HTTP/1.1 proxy on loopback in front of a real S3 server. Setting a fault
/// closes the open connections, so pooled connections see it at once.
pub struct FaultProxy {
    pub endpoint: String,
    fault: Arc<Mutex<Fault>>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    /// Requests the proxy failed or delayed.
    pub injected: Arc<AtomicU64>,
}

impl FaultProxy {
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let proxy = FaultProxy {
            endpoint,
            fault: Arc::new(Mutex::new(Fault::None)),
            open: Arc::default(),
            stop: Arc::default(),
            injected: Arc::default(),
        };
        let (fault, open, stop, injected) =
            (proxy.fault.clone(), proxy.open.clone(), proxy.stop.clone(), proxy.injected.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                {
                    let mut open = open.lock().unwrap();
                    open.retain(|s| s.peer_addr().is_ok());
                    open.extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                }
                let (fault, injected) = (fault.clone(), injected.clone());
                std::thread::spawn(move || serve(client, server, &fault, &injected));
            }
        });
        proxy
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.set(Fault::None);
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

/// Relays one client connection: requests one by one (so that each can be
/// faulted), responses as a byte stream.
fn serve(client: TcpStream, server: TcpStream, fault: &Mutex<Fault>, injected: &AtomicU64) {
    let to_client = Arc::new(Mutex::new(client.try_clone().unwrap()));
    let (mut from_server, back) = (server.try_clone().unwrap(), to_client.clone());
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = from_server.read(&mut buf) {
            if n == 0 || back.lock().unwrap().write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = back.lock().unwrap().shutdown(Shutdown::Both);
    });
    let mut reader = BufReader::new(client);
    let mut server = server;
    while let Some((head, body)) = read_request(&mut reader) {
        let method = head.split_whitespace().next().unwrap_or("").to_string();
        let answer = match *fault.lock().unwrap() {
            Fault::None => None,
            Fault::Slow(d) => {
                injected.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(d);
                None
            }
            Fault::Errors => Some((500, "Internal Server Error", "InternalError")),
            Fault::Full if method == "PUT" || method == "POST" => {
                Some((507, "Insufficient Storage", "XMinioStorageFull"))
            }
            Fault::Full => None,
        };
        if let Some((status, reason, code)) = answer {
            injected.fetch_add(1, Ordering::SeqCst);
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by the chaos proxy</Message></Error>"
            );
            let resp = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
            let _ = to_client.lock().unwrap().write_all(resp.as_bytes());
            break;
        }
        if server.write_all(head.as_bytes()).and_then(|()| server.write_all(&body)).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Both);
    let _ = to_client.lock().unwrap().shutdown(Shutdown::Both);
}

/// One request: its head (with the blank line) and its body, by
/// `Content-Length` or chunked transfer encoding.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            body.extend_from_slice(size.as_bytes());
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            if n == 0 {
                // Trailers, up to the blank line.
                loop {
                    let mut t = String::new();
                    r.read_line(&mut t).ok()?;
                    body.extend_from_slice(t.as_bytes());
                    if t == "\r\n" || t.is_empty() {
                        return Some((head, body));
                    }
                }
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk);
        }
    }
    let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    body.resize(len, 0);
    r.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// A TCP link between two processes that a test can cut and heal: a
/// partition. While cut, no byte crosses in either direction and new
/// connections hang, as packets would be dropped and retransmitted; once
/// healed, what was held is delivered, as TCP would after a short partition.
pub struct Link {
    pub addr: String,
    cut: Arc<AtomicBool>,
}

impl Link {
    /// Listens on `listen` (a `host:port`, port 0 for any) and forwards to `target`.
    pub fn start(listen: &str, target: &str) -> Link {
        let listener = TcpListener::bind(listen).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cut: Arc<AtomicBool> = Arc::default();
        let (c, target) = (cut.clone(), target.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (c, target) = (c.clone(), target.clone());
                std::thread::spawn(move || {
                    while c.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    let Ok(server) = TcpStream::connect(&target) else { return };
                    let (c2, s2, c3) = (client.try_clone().unwrap(), server.try_clone().unwrap(), c.clone());
                    std::thread::spawn(move || pump(c2, s2, &c3));
                    pump(server, client, &c);
                });
            }
        });
        Link { addr, cut }
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Copies `from` to `to`, holding everything while `cut` is set.
fn pump(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).unwrap_or(0);
        while cut.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            let _ = to.shutdown(Shutdown::Write);
            let _ = from.shutdown(Shutdown::Read);
            return;
        }
    }
}
