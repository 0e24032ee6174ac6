//! Host networking for pods: one Linux bridge per cluster, one network
//! namespace per pod joined to it by a veth pair. Everything is done with
//! iproute2 (`ip`), which every Linux machine has.
//!
//! Pods get an address on the bridge's /16 and *no default route*: the only
//! reachable addresses are the bridge (API server, DNS, node agents) and the
//! other pods. Nothing a pod sends can leave the machine.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

fn ip(args: &[&str]) -> Result<String> {
    let out =
        Command::new("ip").args(args).stdin(Stdio::null()).output().context("running ip (iproute2 is required)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Creates the bridge if missing, adds `addr/prefix` to it if missing, sets it up.
pub fn ensure_bridge(name: &str, addr: Ipv4Addr, prefix: u8) -> Result<()> {
    if !link_exists(name) {
        // Two agents may race on a shared bridge: tolerate "exists".
        if let Err(e) = ip(&["link", "add", "name", name, "type", "bridge"])
            && !link_exists(name)
        {
            return Err(e);
        }
    }
    // A bridge without an address of its own takes the lowest MAC of its ports, so
    // deleting a pod could change it: every other pod's ARP entry for the gateway (the
    // API server, DNS, the host's S3 server) then points at a MAC that no longer
    // answers, for up to half a minute. A fixed, locally administered MAC derived from
    // the bridge's name keeps it stable (the control plane and the agents all agree on it).
    let h = name.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193)).to_be_bytes();
    let mac = format!("02:5c:{:02x}:{:02x}:{:02x}:{:02x}", h[0], h[1], h[2], h[3]);
    if !ip(&["link", "show", "dev", name])?.contains(&format!("link/ether {mac} ")) {
        ip(&["link", "set", "dev", name, "address", &mac])?;
    }
    let cidr = format!("{addr}/{prefix}");
    let shown = ip(&["-4", "addr", "show", "dev", name])?;
    if !shown.contains(&format!("inet {cidr} ")) {
        ip(&["addr", "add", &cidr, "dev", name])?;
    }
    ip(&["link", "set", name, "up"])?;
    Ok(())
}

pub fn remove_addr(dev: &str, addr: Ipv4Addr, prefix: u8) {
    let _ = ip(&["addr", "del", &format!("{addr}/{prefix}"), "dev", dev]);
}

pub fn delete_link(name: &str) {
    if link_exists(name) {
        let _ = ip(&["link", "del", name]);
    }
}

/// Creates a named network namespace with `lo` up and `eth0` (the peer of
/// `host_veth`, which is enslaved to `bridge`) holding `pod_ip/prefix`.
pub fn create_pod_netns(netns: &str, host_veth: &str, bridge: &str, pod_ip: Ipv4Addr, prefix: u8) -> Result<()> {
    delete_netns(netns);
    delete_link(host_veth);
    // The host may still have the address's previous owner in its ARP cache.
    let _ = ip(&["neigh", "flush", "to", &pod_ip.to_string()]);
    ip(&["netns", "add", netns])?;
    let r = (|| {
        ip(&["link", "add", host_veth, "type", "veth", "peer", "name", "eth0", "netns", netns])?;
        ip(&["link", "set", host_veth, "master", bridge, "up"])?;
        ip(&["-n", netns, "addr", "add", &format!("{pod_ip}/{prefix}"), "dev", "eth0"])?;
        ip(&["-n", netns, "link", "set", "eth0", "up"])?;
        ip(&["-n", netns, "link", "set", "lo", "up"])?;
        Ok(())
    })();
    if r.is_err() {
        delete_netns(netns);
        delete_link(host_veth);
    }
    r
}

/// Kills every process still in the namespace, then deletes it (the veth
/// pair goes with it).
pub fn delete_netns(netns: &str) {
    if !std::path::Path::new("/run/netns").join(netns).exists() {
        return;
    }
    if let Ok(pids) = ip(&["netns", "pids", netns]) {
        for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
    let _ = ip(&["netns", "del", netns]);
}

/// Names of the network namespaces that start with `prefix`.
pub fn list_netns(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}
