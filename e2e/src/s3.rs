//! A real S3-compatible server for the sandbox and the tests: MinIO, built
//! once and run by `scripts/s3-server.sh`, plus the little S3 client they
//! need without an AWS SDK (an AWS Signature Version 4 signer and
//! CreateBucket over plain HTTP/1.1, path-style, region `us-east-1`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use crate::process::{Proc, on_keeper_thread};

/// The region the signer uses (MinIO's default).
pub const REGION: &str = "us-east-1";
/// How long a started server may take to answer `/minio/health/ready`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// `scripts/s3-server.sh` of the repository this crate lives in.
pub fn script() -> PathBuf {
    crate::repo_root().join("scripts/s3-server.sh")
}

/// Builds MinIO into `$SLUICE_CACHE/bin` if it is not there yet (minutes, the
/// first time; the script serializes concurrent builds) and returns its path.
pub fn install() -> Result<PathBuf> {
    Ok(PathBuf::from(crate::process::install_script(&script())?))
}

/// Where and how to run a server.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The listen address, e.g. a cluster's bridge gateway and a port.
    pub addr: SocketAddr,
    /// The data directory (created if missing).
    pub dir: PathBuf,
    pub access_key: String,
    /// At least 8 characters (MinIO's rule).
    pub secret_key: String,
    /// The server's output is appended here.
    pub log: PathBuf,
    /// Sent to the server when this process exits (PR_SET_PDEATHSIG).
    pub death_signal: Signal,
}

/// A running MinIO. Dropping it stops it (SIGTERM, then SIGKILL).
#[derive(Debug)]
pub struct S3Server {
    pub config: S3Config,
    /// The time from spawning the server to its first ready answer.
    pub startup: Duration,
    proc: Proc,
}

impl S3Server {
    /// Installs MinIO if needed, starts it and waits until it is ready.
    pub fn start(config: S3Config) -> Result<S3Server> {
        install()?;
        let (proc, startup) = spawn_ready(&config)?;
        Ok(S3Server { config, startup, proc })
    }

    /// `http://<addr>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.config.addr)
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn log(&self) -> &Path {
        &self.proc.log
    }

    /// Whether the server has exited (reaping it if so).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.proc.exited()
    }

    /// Starts the server again, on the same address and data directory.
    pub fn restart(&mut self) -> Result<()> {
        self.proc.stop(Duration::from_secs(5));
        let (proc, startup) = spawn_ready(&self.config)?;
        self.proc = proc;
        self.startup = startup;
        Ok(())
    }

    pub fn stop(&mut self) {
        self.proc.stop(Duration::from_secs(5));
    }

    pub fn credentials(&self) -> Credentials<'_> {
        Credentials { access_key: &self.config.access_key, secret_key: &self.config.secret_key }
    }

    /// Creates a bucket; one that already exists (and is ours) is fine.
    pub fn create_bucket(&self, bucket: &str) -> Result<()> {
        create_bucket(self.config.addr, &self.credentials(), bucket)
    }

    /// Whether a bucket exists (a signed HEAD).
    pub fn bucket_exists(&self, bucket: &str) -> Result<bool> {
        let (code, body) = signed_request(self.config.addr, &self.credentials(), "HEAD", &format!("/{bucket}"), b"")?;
        match code {
            200 => Ok(true),
            404 => Ok(false),
            _ => bail!("HEAD /{bucket}: HTTP {code} {body}"),
        }
    }
}

fn spawn_ready(config: &S3Config) -> Result<(Proc, Duration)> {
    std::fs::create_dir_all(&config.dir).with_context(|| format!("creating {}", config.dir.display()))?;
    let args = vec![
        script().display().to_string(),
        "run".into(),
        "--addr".into(),
        config.addr.to_string(),
        "--dir".into(),
        config.dir.display().to_string(),
        "--access-key".into(),
        config.access_key.clone(),
        "--secret-key".into(),
        config.secret_key.clone(),
    ];
    let envs = vec![("SLUICE_CACHE".to_string(), crate::controlplane::cache_dir().display().to_string())];
    let log = config.log.clone();
    let signal = config.death_signal;
    let t0 = Instant::now();
    // The script execs MinIO, so the child is the server itself.
    let mut proc = on_keeper_thread(move || Proc::spawn("s3", Path::new("bash"), &args, &envs, &log, signal))??;
    let deadline = t0 + READY_TIMEOUT;
    loop {
        if ready(config.addr) {
            return Ok((proc, t0.elapsed()));
        }
        if let Some(st) = proc.exited() {
            bail!("the S3 server exited ({st}) while starting; log {}:\n{}", proc.log.display(), proc.log_tail(30));
        }
        if Instant::now() > deadline {
            bail!(
                "the S3 server on {} was not ready within {READY_TIMEOUT:?}; log {}:\n{}",
                config.addr,
                proc.log.display(),
                proc.log_tail(30)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether MinIO at `addr` answers `GET /minio/health/ready` with 200.
pub fn ready(addr: SocketAddr) -> bool {
    matches!(http(addr, "GET", "/minio/health/ready", &[], b""), Ok((200, _)))
}

/// An access key pair.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
}

/// CreateBucket (`PUT /<bucket>`, path-style). 200 and `BucketAlreadyOwnedByYou` are success.
/// MinIO can report ready and still answer 503 `XMinioServerNotInitialized` for a moment,
/// longer on a loaded machine: that answer is retried for up to 30 s.
pub fn create_bucket(addr: SocketAddr, creds: &Credentials<'_>, bucket: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (code, body) = signed_request(addr, creds, "PUT", &format!("/{bucket}"), b"")?;
        if code == 200 || body.contains("BucketAlreadyOwnedByYou") {
            return Ok(());
        }
        if code != 503 || std::time::Instant::now() > deadline {
            bail!("creating bucket {bucket} on {addr}: HTTP {code} {body}");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// An S3 request signed with SigV4 (`host`, `x-amz-content-sha256` and
/// `x-amz-date` signed). `path` is the raw path without a query; it is
/// URI-encoded per segment. Returns (status, body).
pub fn signed_request(
    addr: SocketAddr,
    creds: &Credentials<'_>,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, String)> {
    let amz_date = amz_date(SystemTime::now());
    let host = addr.to_string();
    let payload_hash = hex(ring::digest::digest(&ring::digest::SHA256, body).as_ref());
    let uri = uri_encode_path(path);
    let signed = [
        ("host".to_string(), host),
        ("x-amz-content-sha256".to_string(), payload_hash.clone()),
        ("x-amz-date".to_string(), amz_date.clone()),
    ];
    let authorization = sigv4_authorization(
        creds,
        &SigV4Request {
            method,
            canonical_uri: &uri,
            canonical_query: "",
            headers: &signed,
            payload_hash: &payload_hash,
            amz_date: &amz_date,
            region: REGION,
            service: "s3",
        },
    )?;
    let headers = [
        ("x-amz-content-sha256", payload_hash.as_str()),
        ("x-amz-date", amz_date.as_str()),
        ("Authorization", authorization.as_str()),
    ];
    http(addr, method, &uri, &headers, body)
}

/// What SigV4 signs about a request.
#[derive(Debug, Clone, Copy)]
pub struct SigV4Request<'a> {
    pub method: &'a str,
    /// Already URI-encoded.
    pub canonical_uri: &'a str,
    /// Already canonical (sorted, encoded); `""` for none.
    pub canonical_query: &'a str,
    /// The signed headers: names in any case, values as sent (trimmed here).
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the payload (or `UNSIGNED-PAYLOAD`).
    pub payload_hash: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

impl SigV4Request<'_> {
    fn scope(&self) -> Result<String> {
        let date = self.amz_date.get(..8).context("x-amz-date is shorter than YYYYMMDD")?;
        Ok(format!("{date}/{}/{}/aws4_request", self.region, self.service))
    }

    fn sorted_headers(&self) -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> =
            self.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string())).collect();
        h.sort();
        h
    }

    fn signed_headers(&self) -> String {
        self.sorted_headers().into_iter().map(|(k, _)| k).collect::<Vec<_>>().join(";")
    }

    /// The canonical request (step 1 of SigV4).
    pub fn canonical_request(&self) -> String {
        let headers: String = self.sorted_headers().iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        format!(
            "{}\n{}\n{}\n{headers}\n{}\n{}",
            self.method,
            self.canonical_uri,
            self.canonical_query,
            self.signed_headers(),
            self.payload_hash
        )
    }

    /// The string to sign (step 2).
    pub fn string_to_sign(&self) -> Result<String> {
        let hash = hex(ring::digest::digest(&ring::digest::SHA256, self.canonical_request().as_bytes()).as_ref());
        Ok(format!("AWS4-HMAC-SHA256\n{}\n{}\n{hash}", self.amz_date, self.scope()?))
    }

    /// The hex signature (steps 3 and 4).
    pub fn signature(&self, secret_key: &str) -> Result<String> {
        use ring::hmac;
        let mac = |key: &[u8], data: &[u8]| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
        let date = self.amz_date.get(..8).context("x-amz-date is shorter than YYYYMMDD")?;
        let k = mac(format!("AWS4{secret_key}").as_bytes(), date.as_bytes());
        let k = mac(k.as_ref(), self.region.as_bytes());
        let k = mac(k.as_ref(), self.service.as_bytes());
        let k = mac(k.as_ref(), b"aws4_request");
        Ok(hex(mac(k.as_ref(), self.string_to_sign()?.as_bytes()).as_ref()))
    }
}

/// The `Authorization` header value for a request.
pub fn sigv4_authorization(creds: &Credentials<'_>, req: &SigV4Request<'_>) -> Result<String> {
    Ok(format!(
        "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={}",
        creds.access_key,
        req.scope()?,
        req.signed_headers(),
        req.signature(creds.secret_key)?
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// URI-encodes each path segment (RFC 3986 unreserved characters stay).
fn uri_encode_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `YYYYMMDDTHHMMSSZ` (UTC) for a point in time.
pub fn amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A plain HTTP/1.1 request (`Connection: close`); returns (status, body).
fn http(addr: SocketAddr, method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<(u16, String)> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).with_context(|| format!("connecting {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut req =
        format!("{method} {uri} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).with_context(|| format!("{method} {uri} on {addr}"))?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("no HTTP status line")?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((code, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "GET Object" example of the AWS S3 documentation ("Signature
    /// Calculations for the Authorization Header: Transferring Payload in a
    /// Single Chunk"), with its published intermediate values.
    #[test]
    fn sigv4_matches_the_aws_s3_get_object_example() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let headers = [
            ("Host".to_string(), "examplebucket.s3.amazonaws.com".to_string()),
            ("Range".to_string(), "bytes=0-9".to_string()),
            ("x-amz-content-sha256".to_string(), empty.to_string()),
            ("x-amz-date".to_string(), "20130524T000000Z".to_string()),
        ];
        let req = SigV4Request {
            method: "GET",
            canonical_uri: "/test.txt",
            canonical_query: "",
            headers: &headers,
            payload_hash: empty,
            amz_date: "20130524T000000Z",
            region: "us-east-1",
            service: "s3",
        };
        assert_eq!(
            req.canonical_request(),
            format!(
                "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n\
                 x-amz-content-sha256:{empty}\nx-amz-date:20130524T000000Z\n\n\
                 host;range;x-amz-content-sha256;x-amz-date\n{empty}"
            )
        );
        assert_eq!(
            req.string_to_sign().unwrap(),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
             7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
        let creds =
            Credentials { access_key: "AKIAIOSFODNN7EXAMPLE", secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
        assert_eq!(
            sigv4_authorization(&creds, &req).unwrap(),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn amz_date_is_utc_basic_format() {
        assert_eq!(amz_date(UNIX_EPOCH), "19700101T000000Z");
        // 2013-05-24T00:00:00Z, the date of the AWS example.
        assert_eq!(amz_date(UNIX_EPOCH + Duration::from_secs(1_369_353_600)), "20130524T000000Z");
        // 2024-02-29T23:59:59Z (a leap day).
        assert_eq!(amz_date(UNIX_EPOCH + Duration::from_secs(1_709_251_199)), "20240229T235959Z");
    }

    #[test]
    fn paths_are_uri_encoded_per_segment() {
        assert_eq!(uri_encode_path("/sluice"), "/sluice");
        assert_eq!(uri_encode_path("/b/a key+x~y"), "/b/a%20key%2Bx~y");
    }
}
