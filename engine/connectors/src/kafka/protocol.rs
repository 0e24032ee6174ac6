//! The three Kafka requests that librdkafka does not expose and that a sink's
//! recovery needs: `FindCoordinator` (v1), `DescribeTransactions` (v0) and
//! `EndTxn` (v1), over a plain TCP connection.
//!
//! Why: a transaction that a checkpoint pre-committed must be committed after a
//! crash by a new process, which knows only the transactional id. Apache Flink
//! resumes the transaction by reflection into the Java producer; librdkafka
//! has no such API. The broker's `DescribeTransactions` gives the producer id
//! and epoch of the open transaction, and `EndTxn` with them commits it, as
//! the old producer would have. librdkafka itself sends `EndTxn` v0/v1, so the
//! transactions it starts are of the classic protocol (KIP-98) that these
//! requests speak.
//!
//! Encoders and decoders are pure functions over bytes; [`Client`] only moves
//! them over sockets. Plaintext only: the connector rejects other
//! `security.protocol` values when it is configured.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const FIND_COORDINATOR: i16 = 10;
const END_TXN: i16 = 26;
const DESCRIBE_TRANSACTIONS: i16 = 65;
/// `FindCoordinator` key type of a transactional id.
const KEY_TYPE_TRANSACTION: i8 = 1;
const CLIENT_ID: &str = "sluice-recovery";
/// The largest response accepted (a describe of one id is a few hundred bytes).
const MAX_RESPONSE: usize = 16 << 20;

/// Kafka error codes that recovery tells apart.
pub(crate) const NONE: i16 = 0;
pub(crate) const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub(crate) const NOT_COORDINATOR: i16 = 16;
pub(crate) const CONCURRENT_TRANSACTIONS: i16 = 51;
pub(crate) const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

/// One transaction as the coordinator describes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TxnState {
    pub error_code: i16,
    pub transactional_id: String,
    /// `Empty`, `Ongoing`, `PrepareCommit`, `PrepareAbort`, `CompleteCommit`,
    /// `CompleteAbort`, `Dead` or `PrepareEpochFence`.
    pub state: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Partitions written in the transaction, counted over topics.
    pub partitions: usize,
}

/// A protocol failure: what was asked of which broker, and why it failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ProtocolError(pub String);

fn err(m: impl Into<String>) -> ProtocolError {
    ProtocolError(m.into())
}

/// Request bytes, big-endian as Kafka's protocol is.
#[derive(Default)]
struct Buf(Vec<u8>);

impl Buf {
    fn i8(&mut self, v: i8) {
        self.0.push(v as u8);
    }
    fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn string(&mut self, s: &str) {
        self.i16(i16::try_from(s.len()).unwrap_or(i16::MAX));
        self.0.extend_from_slice(s.as_bytes());
    }
    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn compact_string(&mut self, s: &str) {
        self.uvarint(s.len() as u64 + 1);
        self.0.extend_from_slice(s.as_bytes());
    }
    /// An empty tagged-field section (flexible versions).
    fn no_tags(&mut self) {
        self.uvarint(0);
    }
}

/// A request header (v1 for classic versions, v2 with tagged fields for
/// flexible ones) and the body, framed by its length.
fn frame(api_key: i16, version: i16, correlation: i32, flexible: bool, body: &[u8]) -> Vec<u8> {
    let mut h = Buf::default();
    h.i16(api_key);
    h.i16(version);
    h.i32(correlation);
    h.string(CLIENT_ID);
    if flexible {
        h.no_tags();
    }
    let len = (h.0.len() + body.len()) as i32;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&h.0);
    out.extend_from_slice(body);
    out
}

pub(crate) fn find_coordinator_request(correlation: i32, transactional_id: &str) -> Vec<u8> {
    let mut b = Buf::default();
    b.string(transactional_id);
    b.i8(KEY_TYPE_TRANSACTION);
    frame(FIND_COORDINATOR, 1, correlation, false, &b.0)
}

pub(crate) fn describe_transactions_request(correlation: i32, ids: &[&str]) -> Vec<u8> {
    let mut b = Buf::default();
    b.uvarint(ids.len() as u64 + 1);
    for id in ids {
        b.compact_string(id);
    }
    b.no_tags();
    frame(DESCRIBE_TRANSACTIONS, 0, correlation, true, &b.0)
}

pub(crate) fn end_txn_request(correlation: i32, id: &str, producer_id: i64, epoch: i16, commit: bool) -> Vec<u8> {
    let mut b = Buf::default();
    b.string(id);
    b.i64(producer_id);
    b.i16(epoch);
    b.i8(i8::from(commit));
    frame(END_TXN, 1, correlation, false, &b.0)
}

/// Response bytes after the length prefix.
struct Rd<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or_else(|| err("truncated response"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn i16(&mut self) -> Result<i16, ProtocolError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, ProtocolError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64, ProtocolError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(a))
    }
    fn nullable_string(&mut self) -> Result<Option<String>, ProtocolError> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(None);
        }
        Ok(Some(String::from_utf8_lossy(self.take(n as usize)?).into_owned()))
    }
    fn uvarint(&mut self) -> Result<u64, ProtocolError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(err("a varint longer than 64 bits"))
    }
    /// A compact string; `None` when null.
    fn compact_string(&mut self) -> Result<Option<String>, ProtocolError> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(String::from_utf8_lossy(self.take((n - 1) as usize)?).into_owned()))
    }
    /// The length of a compact array (0 for null).
    fn compact_len(&mut self) -> Result<usize, ProtocolError> {
        Ok(self.uvarint()?.saturating_sub(1) as usize)
    }
    fn skip_tags(&mut self) -> Result<(), ProtocolError> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let len = self.uvarint()? as usize;
            self.take(len)?;
        }
        Ok(())
    }
    /// The response header: the correlation id, checked, and tags if flexible.
    fn header(&mut self, correlation: i32, flexible: bool) -> Result<(), ProtocolError> {
        let got = self.i32()?;
        if got != correlation {
            return Err(err(format!("a response to request {got} arrived for request {correlation}")));
        }
        if flexible {
            self.skip_tags()?;
        }
        Ok(())
    }
}

/// The coordinator's host and port, or the error code.
pub(crate) fn parse_find_coordinator(
    buf: &[u8],
    correlation: i32,
) -> Result<Result<(String, u16), i16>, ProtocolError> {
    let mut r = Rd { buf, pos: 0 };
    r.header(correlation, false)?;
    let _throttle = r.i32()?;
    let code = r.i16()?;
    let _message = r.nullable_string()?;
    let _node = r.i32()?;
    let host = r.nullable_string()?.unwrap_or_default();
    let port = r.i32()?;
    if code != NONE {
        return Ok(Err(code));
    }
    let port = u16::try_from(port).map_err(|_| err(format!("the coordinator's port {port} is invalid")))?;
    Ok(Ok((host, port)))
}

pub(crate) fn parse_describe_transactions(buf: &[u8], correlation: i32) -> Result<Vec<TxnState>, ProtocolError> {
    let mut r = Rd { buf, pos: 0 };
    r.header(correlation, true)?;
    let _throttle = r.i32()?;
    let n = r.compact_len()?;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let error_code = r.i16()?;
        let transactional_id = r.compact_string()?.unwrap_or_default();
        let state = r.compact_string()?.unwrap_or_default();
        let _timeout = r.i32()?;
        let _start = r.i64()?;
        let producer_id = r.i64()?;
        let producer_epoch = r.i16()?;
        let mut partitions = 0;
        for _ in 0..r.compact_len()? {
            let _topic = r.compact_string()?;
            let p = r.compact_len()?;
            r.take(4 * p)?;
            partitions += p;
            r.skip_tags()?;
        }
        r.skip_tags()?;
        out.push(TxnState { error_code, transactional_id, state, producer_id, producer_epoch, partitions });
    }
    r.skip_tags()?;
    Ok(out)
}

pub(crate) fn parse_end_txn(buf: &[u8], correlation: i32) -> Result<i16, ProtocolError> {
    let mut r = Rd { buf, pos: 0 };
    r.header(correlation, false)?;
    let _throttle = r.i32()?;
    r.i16()
}

/// The name of a Kafka error code, for messages.
pub(crate) fn error_name(code: i16) -> String {
    let name = match code {
        COORDINATOR_LOAD_IN_PROGRESS => "COORDINATOR_LOAD_IN_PROGRESS",
        COORDINATOR_NOT_AVAILABLE => "COORDINATOR_NOT_AVAILABLE",
        NOT_COORDINATOR => "NOT_COORDINATOR",
        CONCURRENT_TRANSACTIONS => "CONCURRENT_TRANSACTIONS",
        TRANSACTIONAL_ID_NOT_FOUND => "TRANSACTIONAL_ID_NOT_FOUND",
        47 => "INVALID_PRODUCER_EPOCH",
        48 => "INVALID_TXN_STATE",
        49 => "INVALID_PRODUCER_ID_MAPPING",
        53 => "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        90 => "PRODUCER_FENCED",
        35 => "UNSUPPORTED_VERSION",
        _ => return format!("error code {code}"),
    };
    format!("{name} ({code})")
}

/// Whether a coordinator error goes away by asking again (after finding the
/// coordinator again).
pub(crate) fn retriable(code: i16) -> bool {
    matches!(code, COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR | CONCURRENT_TRANSACTIONS)
}

/// Blocking request/response over one connection per broker.
pub(crate) struct Client {
    bootstrap: Vec<String>,
    timeout: Duration,
    correlation: i32,
}

impl Client {
    /// `bootstrap` is `properties.bootstrap.servers`: `host:port` pairs, comma-separated.
    pub(crate) fn new(bootstrap: &str, timeout: Duration) -> Client {
        let bootstrap = bootstrap.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        Client { bootstrap, timeout, correlation: 0 }
    }

    fn connect(&self, addr: &str) -> Result<TcpStream, ProtocolError> {
        let addrs: Vec<_> = addr.to_socket_addrs().map_err(|e| err(format!("cannot resolve {addr}: {e}")))?.collect();
        let mut last = err(format!("{addr} resolves to no address"));
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.timeout) {
                Ok(s) => {
                    s.set_read_timeout(Some(self.timeout)).map_err(|e| err(e.to_string()))?;
                    s.set_write_timeout(Some(self.timeout)).map_err(|e| err(e.to_string()))?;
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = err(format!("cannot connect to {addr}: {e}")),
            }
        }
        Err(last)
    }

    fn round_trip(&mut self, addr: &str, build: impl Fn(i32) -> Vec<u8>) -> Result<(Vec<u8>, i32), ProtocolError> {
        self.correlation = self.correlation.wrapping_add(1);
        let correlation = self.correlation;
        let mut s = self.connect(addr)?;
        let io = |e: std::io::Error| err(format!("{addr}: {e}"));
        s.write_all(&build(correlation)).map_err(io)?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len).map_err(io)?;
        let len = i32::from_be_bytes(len);
        let len = usize::try_from(len).ok().filter(|l| *l <= MAX_RESPONSE);
        let len = len.ok_or_else(|| err(format!("{addr}: a response of invalid length")))?;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).map_err(io)?;
        Ok((body, correlation))
    }

    /// Any bootstrap broker that answers.
    fn any_broker(&mut self, build: impl Fn(i32) -> Vec<u8>) -> Result<(Vec<u8>, i32), ProtocolError> {
        let mut last = err("properties.bootstrap.servers names no broker");
        for b in self.bootstrap.clone() {
            match self.round_trip(&b, &build) {
                Ok(r) => return Ok(r),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The `host:port` of the transaction coordinator of `id`.
    pub(crate) fn coordinator(&mut self, id: &str) -> Result<String, ProtocolError> {
        for attempt in 0.. {
            let (body, c) = self.any_broker(|c| find_coordinator_request(c, id))?;
            match parse_find_coordinator(&body, c)? {
                Ok((host, port)) => return Ok(format!("{host}:{port}")),
                Err(code) if retriable(code) && attempt < 50 => std::thread::sleep(Duration::from_millis(100)),
                Err(code) => {
                    return Err(err(format!(
                        "cannot find the transaction coordinator of '{id}': {}",
                        error_name(code)
                    )));
                }
            }
        }
        Err(err("unreachable"))
    }

    /// The state of transactional id `id`, asked of its coordinator; retried
    /// while the coordinator moves or loads.
    pub(crate) fn describe(&mut self, id: &str) -> Result<TxnState, ProtocolError> {
        for attempt in 0.. {
            let coordinator = self.coordinator(id)?;
            let (body, c) = self.round_trip(&coordinator, |c| describe_transactions_request(c, &[id]))?;
            let states = parse_describe_transactions(&body, c)?;
            let state = states.into_iter().find(|s| s.transactional_id == id);
            let state = state.ok_or_else(|| err(format!("{coordinator} did not describe '{id}'")))?;
            if retriable(state.error_code) && attempt < 50 {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            return Ok(state);
        }
        Err(err("unreachable"))
    }

    /// Ends the open transaction of `id` (producer id and epoch as described).
    /// Returns the broker's error code.
    pub(crate) fn end_txn(
        &mut self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<i16, ProtocolError> {
        for attempt in 0.. {
            let coordinator = self.coordinator(id)?;
            let (body, c) = self.round_trip(&coordinator, |c| end_txn_request(c, id, producer_id, epoch, commit))?;
            let code = parse_end_txn(&body, c)?;
            if retriable(code) && attempt < 50 {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            return Ok(code);
        }
        Err(err("unreachable"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_framed_with_their_header() {
        let r = end_txn_request(7, "t-0-3", 1000, 2, true);
        let len = i32::from_be_bytes([r[0], r[1], r[2], r[3]]) as usize;
        assert_eq!(len, r.len() - 4);
        // api key 26, version 1, correlation 7, client id.
        assert_eq!(&r[4..12], &[0, 26, 0, 1, 0, 0, 0, 7]);
        let body = &r[12 + 2 + CLIENT_ID.len()..];
        assert_eq!(&body[..7], &[0, 5, b't', b'-', b'0', b'-', b'3']);
        assert_eq!(&body[7..15], &1000i64.to_be_bytes());
        assert_eq!(&body[15..], &[0, 2, 1]);
        let d = describe_transactions_request(1, &["ab"]);
        // flexible: a tag section after the client id; the array is compact.
        let body = &d[4 + 8 + 2 + CLIENT_ID.len()..];
        assert_eq!(body, &[0, 2, 3, b'a', b'b', 0]);
    }

    #[test]
    fn responses_parse_and_check_the_correlation() {
        let mut b = Buf::default();
        b.i32(5);
        b.no_tags();
        b.i32(0);
        b.uvarint(2);
        b.i16(0);
        b.compact_string("t-1-4");
        b.compact_string("Ongoing");
        b.i32(60_000);
        b.i64(1);
        b.i64(42);
        b.i16(3);
        b.uvarint(2);
        b.compact_string("out");
        b.uvarint(3);
        b.i32(0);
        b.i32(1);
        b.no_tags();
        b.no_tags();
        b.no_tags();
        let states = parse_describe_transactions(&b.0, 5).unwrap();
        assert_eq!(
            states,
            [TxnState {
                error_code: 0,
                transactional_id: "t-1-4".into(),
                state: "Ongoing".into(),
                producer_id: 42,
                producer_epoch: 3,
                partitions: 2
            }]
        );
        assert!(parse_describe_transactions(&b.0, 6).unwrap_err().0.contains("request 6"));
        assert!(parse_describe_transactions(&b.0[..20], 5).unwrap_err().0.contains("truncated"));
        let mut f = Buf::default();
        f.i32(9);
        f.i32(0);
        f.i16(0);
        f.i16(-1);
        f.i32(1);
        f.string("127.0.0.1");
        f.i32(9092);
        assert_eq!(parse_find_coordinator(&f.0, 9).unwrap(), Ok(("127.0.0.1".to_string(), 9092)));
    }
}
