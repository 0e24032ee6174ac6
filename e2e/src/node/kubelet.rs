//! The part of the kubelet API that `kubectl logs` needs, served over TLS on
//! the node's address: `GET /containerLogs/{ns}/{pod}/{container}` with
//! `follow`, `previous` and `tailLines`. The API server does not verify the
//! kubelet's certificate unless told to (`--kubelet-certificate-authority`),
//! so a self-signed one is enough.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::Ctx;

fn tls_config(ctx: &Ctx) -> Result<Arc<rustls::ServerConfig>> {
    let names = vec![ctx.cfg.node_name.clone(), ctx.cfg.node_ip.to_string()];
    let ck = rcgen::generate_simple_self_signed(names)?;
    let cert = rustls::pki_types::CertificateDer::from(ck.cert.der().to_vec());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        ck.signing_key.serialize_der(),
    ));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    Ok(Arc::new(cfg))
}

pub async fn serve(ctx: Arc<Ctx>) -> Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_config(&ctx)?);
    let addr = (ctx.cfg.node_ip, ctx.cfg.kubelet_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the kubelet API on {}:{}", addr.0, addr.1))?;
    loop {
        let (sock, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock)).await {
                let _ = handle(ctx, tls).await;
            }
        });
    }
}

fn query<'a>(q: &'a str, key: &str) -> Option<&'a str> {
    q.split('&').find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The newest log directory of a pod (a StatefulSet pod may have had several uids).
fn pod_log_dir(logs: &Path, ns: &str, pod: &str) -> Option<PathBuf> {
    let prefix = format!("{ns}_{pod}_");
    std::fs::read_dir(logs)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

fn log_file(logs: &Path, ns: &str, pod: &str, container: &str, previous: bool) -> Option<PathBuf> {
    run_log(&pod_log_dir(logs, ns, pod)?.join(container), previous)
}

/// The newest (or, with `previous`, the one before) `<n>.log` of a container's log directory.
pub(super) fn run_log(dir: &Path, previous: bool) -> Option<PathBuf> {
    let mut runs: Vec<u32> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".log")?.parse().ok())
        .collect();
    runs.sort();
    let n = if previous { runs.iter().rev().nth(1) } else { runs.last() }?;
    Some(dir.join(format!("{n}.log")))
}

async fn handle<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(ctx: Arc<Ctx>, mut s: S) -> Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") && n < buf.len() {
        let k = s.read(&mut buf[n..]).await?;
        if k == 0 {
            return Ok(());
        }
        n += k;
    }
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let logs = ctx.cfg.state_dir.join("logs");
    let file = match parts.as_slice() {
        ["containerLogs", ns, pod, container] => {
            log_file(&logs, ns, pod, container, query(q, "previous") == Some("true"))
        }
        ["healthz"] => {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await?;
            return Ok(());
        }
        _ => None,
    };
    let Some(file) = file else {
        let body = format!("no logs for {path}\n");
        s.write_all(
            format!("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                .as_bytes(),
        )
        .await?;
        return Ok(());
    };
    let data = tokio::fs::read(&file).await.unwrap_or_default();
    let start = match query(q, "tailLines").and_then(|t| t.parse::<usize>().ok()) {
        Some(t) => {
            let mut seen = 0;
            let mut idx = 0;
            for (i, b) in data.iter().enumerate().rev() {
                if *b == b'\n' && i + 1 != data.len() {
                    seen += 1;
                    if seen == t {
                        idx = i + 1;
                        break;
                    }
                }
            }
            if seen < t { 0 } else { idx }
        }
        None => 0,
    };
    // The body ends when the connection closes, so `follow` can stream.
    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n").await?;
    s.write_all(&data[start..]).await?;
    if query(q, "follow") == Some("true") {
        let mut f = tokio::fs::File::open(&file).await?;
        f.seek(std::io::SeekFrom::Start(data.len() as u64)).await?;
        let mut chunk = vec![0u8; 16384];
        loop {
            let k = f.read(&mut chunk).await?;
            if k == 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                s.flush().await?;
                continue;
            }
            s.write_all(&chunk[..k]).await?;
        }
    }
    s.flush().await?;
    s.shutdown().await?;
    Ok(())
}
