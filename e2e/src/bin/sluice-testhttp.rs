//! A tiny HTTP server, the workload of the e2e tests.
//!
//! `sluice-testhttp [--port N] [--not-ready] [--exit-after-ms MS --exit-code C]`
//! - `GET /` → `hello from <HOSTNAME>`
//! - `GET /healthz` → 200; `GET /ready` → 200, or 503 with `--not-ready`
//! - `GET /env/NAME` → the variable's value
//! - `GET /file/<abs path>` → the file's contents
//! - `GET /fetch/<host>/<port>/<path>` → GET `http://host:port/path` (names
//!   resolved through the pod's resolv.conf) and return its body
//! - `GET /resolve/<name>` → the addresses the name resolves to
//! - `GET /incluster/<ns>` → the ConfigMaps of `ns`, listed with an in-cluster
//!   kube client (service-account token, cluster CA, `KUBERNETES_SERVICE_*`)

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn get(host: &str, port: u16, path: &str) -> Result<String, String> {
    let mut s = tokio::time::timeout(Duration::from_secs(3), TcpStream::connect((host, port)))
        .await
        .map_err(|_| "connect timeout".to_string())?
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let req = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut buf))
        .await
        .map_err(|_| "read timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf).to_string();
    Ok(text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or(text))
}

async fn incluster_configmaps(ns: &str) -> Result<Vec<String>, String> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let cfg = kube::Config::incluster().map_err(|e| format!("in-cluster config: {e}"))?;
    let client = kube::Client::try_from(cfg).map_err(|e| e.to_string())?;
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(client, ns);
    let list = api.list(&Default::default()).await.map_err(|e| format!("list: {e}"))?;
    let mut names: Vec<String> = list.items.into_iter().filter_map(|c| c.metadata.name).collect();
    names.sort();
    Ok(names)
}

async fn handle(mut s: TcpStream, ready: bool) {
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    loop {
        match s.read(&mut buf[n..]).await {
            Ok(0) | Err(_) => return,
            Ok(k) => n += k,
        }
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") || n == buf.len() {
            break;
        }
    }
    let req = String::from_utf8_lossy(&buf[..n]).to_string();
    let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (code, body) = if path == "/" {
        (200, format!("hello from {}\n", std::env::var("HOSTNAME").unwrap_or_default()))
    } else if path == "/healthz" {
        (200, "ok\n".to_string())
    } else if path == "/ready" {
        if ready { (200, "ready\n".to_string()) } else { (503, "not ready\n".to_string()) }
    } else if let Some(name) = path.strip_prefix("/env/") {
        match std::env::var(name) {
            Ok(v) => (200, v),
            Err(_) => (404, format!("{name} not set")),
        }
    } else if let Some(p) = path.strip_prefix("/file") {
        match std::fs::read_to_string(p) {
            Ok(v) => (200, v),
            Err(e) => (404, format!("{p}: {e}")),
        }
    } else if let Some(rest) = path.strip_prefix("/fetch/") {
        let mut parts = rest.splitn(3, '/');
        let host = parts.next().unwrap_or_default().to_string();
        let port = parts.next().and_then(|p| p.parse().ok()).unwrap_or(80);
        let p = parts.next().unwrap_or_default().to_string();
        match get(&host, port, &p).await {
            Ok(b) => (200, b),
            Err(e) => (502, e),
        }
    } else if let Some(name) = path.strip_prefix("/resolve/") {
        match tokio::net::lookup_host((name, 0)).await {
            Ok(addrs) => {
                let mut v: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
                v.sort();
                v.dedup();
                (200, v.join(","))
            }
            Err(e) => (404, e.to_string()),
        }
    } else if let Some(ns) = path.strip_prefix("/incluster/") {
        match incluster_configmaps(ns).await {
            Ok(names) => (200, names.join(",")),
            Err(e) => (500, e),
        }
    } else {
        (404, "not found\n".to_string())
    };
    let reason = if code == 200 { "OK" } else { "ERR" };
    let resp = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let port: u16 = flag("--port").or_else(|| std::env::var("PORT").ok()).and_then(|p| p.parse().ok()).unwrap_or(8080);
    let ready = !args.iter().any(|a| a == "--not-ready");
    let exit_after = flag("--exit-after-ms").and_then(|v| v.parse::<u64>().ok());
    let exit_code = flag("--exit-code").and_then(|v| v.parse::<i32>().ok()).unwrap_or(1);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        if let Some(ms) = exit_after {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                eprintln!("exiting with {exit_code} as asked");
                std::process::exit(exit_code);
            });
        }
        let listener = TcpListener::bind(("0.0.0.0", port)).await?;
        println!("listening on :{port}");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                r = listener.accept() => if let Ok((s, _)) = r {
                    tokio::spawn(handle(s, ready));
                },
                _ = term.recv() => {
                    println!("SIGTERM received, exiting");
                    return Ok(());
                }
            }
        }
    })
}
