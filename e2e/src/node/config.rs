//! The `sluice-node` configuration file (YAML).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeConfig {
    pub node_name: String,
    pub kubeconfig: PathBuf,
    /// The bridge the pods join (created if missing).
    pub bridge: String,
    /// The node's address on the bridge: its InternalIP, its DNS server and
    /// its kubelet endpoint. Pods get `a.b.c.2…254` from the same /24.
    pub node_ip: Ipv4Addr,
    /// The prefix length of the bridge network (pods reach everything in it).
    #[serde(default = "default_prefix")]
    pub prefix: u8,
    /// State: pod directories, container logs, volumes.
    pub state_dir: PathBuf,
    #[serde(default = "default_domain")]
    pub cluster_domain: String,
    /// Port of the kubelet API (container logs) on `node_ip`.
    #[serde(default = "default_kubelet_port")]
    pub kubelet_port: u16,
    /// CA certificate and key, to issue the kubelet serving certificate.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    #[serde(default)]
    pub ca_key: Option<PathBuf>,
    /// First restart back-off, doubled up to 5 minutes (kubelet: 10 s).
    #[serde(default = "default_backoff")]
    pub backoff_initial_seconds: f64,
    /// Image → executable map, first match wins.
    #[serde(default)]
    pub images: Vec<ImageMapping>,
    #[serde(default)]
    pub cpu: Option<String>,
    #[serde(default)]
    pub memory: Option<String>,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Maps image references to local programs, like an image's ENTRYPOINT/CMD.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageMapping {
    /// Image pattern; `*` matches any run of characters (`sluice/engine:*`).
    pub image: String,
    /// The image's ENTRYPOINT: used when a container has no `command`.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// The image's CMD: default arguments when a container has no `args`.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// Extra directories searched (before the host PATH) for a `command[0]`
    /// without a slash. The entrypoint's directory is always searched.
    #[serde(default)]
    pub path: Vec<PathBuf>,
}

fn default_prefix() -> u8 {
    16
}
fn default_domain() -> String {
    "cluster.local".into()
}
fn default_kubelet_port() -> u16 {
    10250
}
fn default_backoff() -> f64 {
    10.0
}

/// Glob match with `*` only.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

impl NodeConfig {
    pub fn image(&self, image: &str) -> Option<&ImageMapping> {
        self.images.iter().find(|m| glob_match(&m.image, image))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("sluice/engine:*", "sluice/engine:0.1.0"));
        assert!(glob_match("*/engine:*", "reg.io/sluice/engine:1"));
        assert!(!glob_match("sluice/engine:*", "sluice/operator:0.1.0"));
        assert!(glob_match("busybox", "busybox"));
        assert!(!glob_match("busybox", "busybox:1"));
        assert!(glob_match("*", "anything"));
    }
}
