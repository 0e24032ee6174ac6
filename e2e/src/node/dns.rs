//! Cluster DNS without kube-proxy: a tiny authoritative responder on the
//! node's bridge address that answers A queries for
//! - `<svc>.<ns>.svc.<domain>` with the ready endpoint addresses of the
//!   Service (headless or not: there are no ClusterIPs to route to);
//! - `<hostname>.<svc>.<ns>.svc.<domain>` (StatefulSet pods) with that
//!   endpoint's address.
//!
//! Pods' `resolv.conf` searches `<ns>.svc.<domain> svc.<domain> <domain>`,
//! so `<svc>`, `<svc>.<ns>` and `kubernetes.default.svc` all resolve.
//! Everything else is NXDOMAIN: the sandbox has no upstream resolver.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::runtime::reflector::Store;

/// Read-only view of Services and EndpointSlices (kept current by reflectors).
#[derive(Clone)]
pub struct Directory {
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub domain: String,
}

/// One ready endpoint of a Service.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub hostname: Option<String>,
}

impl Directory {
    pub fn service(&self, ns: &str, name: &str) -> Option<Arc<Service>> {
        self.services.state().into_iter().find(|s| s.name_any() == name && s.namespace().as_deref() == Some(ns))
    }

    /// Ready IPv4 endpoints of a Service, with their ports as (name, port).
    pub fn endpoints(&self, ns: &str, svc: &str) -> (Vec<Endpoint>, Vec<(String, i32)>) {
        let mut eps = Vec::new();
        let mut ports = Vec::new();
        for s in self.slices.state() {
            if s.namespace().as_deref() != Some(ns)
                || s.labels().get("kubernetes.io/service-name").map(String::as_str) != Some(svc)
                || s.address_type != "IPv4"
            {
                continue;
            }
            for p in s.ports.iter().flatten() {
                if let Some(port) = p.port {
                    let name = p.name.clone().unwrap_or_default();
                    if !ports.iter().any(|(n, _)| *n == name) {
                        ports.push((name, port));
                    }
                }
            }
            for e in &s.endpoints {
                let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                if !ready {
                    continue;
                }
                for a in &e.addresses {
                    if let Ok(ip) = a.parse::<Ipv4Addr>() {
                        let ep = Endpoint { ip, hostname: e.hostname.clone() };
                        if !eps.contains(&ep) {
                            eps.push(ep);
                        }
                    }
                }
            }
        }
        eps.sort_by_key(|e| e.ip);
        (eps, ports)
    }

    /// Answers for a fully qualified name (lower-case, no trailing dot):
    /// `None` means NXDOMAIN, `Some(vec![])` means the name exists but has no
    /// ready address.
    pub fn resolve(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        let suffix = format!(".svc.{}", self.domain);
        let rest = name.strip_suffix(&suffix)?;
        let labels: Vec<&str> = rest.split('.').collect();
        match labels.as_slice() {
            [svc, ns] => {
                self.service(ns, svc)?;
                Some(self.endpoints(ns, svc).0.into_iter().map(|e| e.ip).collect())
            }
            [host, svc, ns] => {
                let ips: Vec<Ipv4Addr> = self
                    .endpoints(ns, svc)
                    .0
                    .into_iter()
                    .filter(|e| e.hostname.as_deref() == Some(host))
                    .map(|e| e.ip)
                    .collect();
                if ips.is_empty() { None } else { Some(ips) }
            }
            _ => None,
        }
    }
}

/// Parses a DNS query, returning (question name, qtype, end of question).
fn parse_question(q: &[u8]) -> Option<(String, u16, usize)> {
    if q.len() < 12 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len & 0xC0 != 0 {
            return None;
        }
        let l = q.get(i..i + len)?;
        labels.push(String::from_utf8_lossy(l).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    Some((labels.join("."), qtype, i + 4))
}

/// Builds the response to `query` (pure; unit-tested below).
pub fn answer(query: &[u8], resolve: &dyn Fn(&str) -> Option<Vec<Ipv4Addr>>) -> Option<Vec<u8>> {
    let (name, qtype, qend) = parse_question(query)?;
    if query.len() < qend {
        return None;
    }
    let found = resolve(&name);
    let mut out = Vec::with_capacity(qend + 64);
    out.extend_from_slice(&query[0..2]);
    let rd = query[2] & 0x01;
    out.push(0x84 | rd); // QR, AA, RD copied
    let rcode = if found.is_some() { 0 } else { 3 };
    out.push(rcode);
    let answers: Vec<Ipv4Addr> = match (&found, qtype) {
        (Some(ips), 1) | (Some(ips), 255) => ips.clone(),
        _ => Vec::new(),
    };
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..qend]);
    for ip in answers {
        out.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1]);
        out.extend_from_slice(&5u32.to_be_bytes()); // short TTL: endpoints change
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    Some(out)
}

/// Serves DNS over UDP on `addr` until the task is aborted.
pub async fn serve(addr: SocketAddr, dir: Directory) -> anyhow::Result<()> {
    let sock = tokio::net::UdpSocket::bind(addr).await?;
    let mut buf = vec![0u8; 1500];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("dns recv: {e}");
                continue;
            }
        };
        let resolve = |name: &str| dir.resolve(name);
        if let Some(resp) = answer(&buf[..n], &resolve) {
            let _ = sock.send_to(&resp, peer).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    fn resolver(name: &str) -> Option<Vec<Ipv4Addr>> {
        (name == "web.default.svc.cluster.local").then(|| vec![Ipv4Addr::new(10, 9, 1, 2), Ipv4Addr::new(10, 9, 1, 3)])
    }

    #[test]
    fn a_query_returns_every_endpoint() {
        let r = answer(&query("Web.default.svc.cluster.local", 1), &resolver).unwrap();
        assert_eq!(&r[0..2], &[0x12, 0x34]);
        assert_eq!(r[3] & 0x0F, 0, "rcode NOERROR");
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 2, "two answers");
        assert_eq!(&r[r.len() - 4..], &[10, 9, 1, 3]);
    }

    #[test]
    fn unknown_name_is_nxdomain_and_aaaa_is_empty() {
        let r = answer(&query("nope.default.svc.cluster.local", 1), &resolver).unwrap();
        assert_eq!(r[3] & 0x0F, 3);
        let r = answer(&query("web.default.svc.cluster.local", 28), &resolver).unwrap();
        assert_eq!(r[3] & 0x0F, 0);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 0);
    }
}
