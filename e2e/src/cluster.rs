//! A whole local cluster: the control plane plus one or more `sluice-node`
//! agents, all on one bridge. Used by `sluice-sandbox` and by the tests.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use kube::Api;
use nix::sys::signal::Signal;

use crate::controlplane::{ClusterNet, ControlPlane, ControlPlaneConfig, k8s_version};
use crate::net;
use crate::node::config::{ImageMapping, NodeConfig};
use crate::process::Proc;

#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Short name: cluster name and the prefix of node names.
    pub name: String,
    pub dir: PathBuf,
    pub net: ClusterNet,
    pub nodes: u8,
    pub node_bin: PathBuf,
    pub images: Vec<ImageMapping>,
    pub backoff_initial_seconds: f64,
}

impl ClusterSpec {
    pub fn node_name(&self, k: u8) -> String {
        format!("{}-node-{k}", self.name)
    }
}

pub struct Cluster {
    pub spec: ClusterSpec,
    pub control_plane: ControlPlane,
    nodes: Vec<Proc>,
    pub node_startup: Duration,
}

impl Cluster {
    /// Starts the control plane and the nodes and waits until every node is
    /// Ready and the `default` ServiceAccount exists.
    pub fn start(spec: ClusterSpec) -> Result<Cluster> {
        if !nix::unistd::geteuid().is_root() {
            bail!("the local cluster must run as root (it makes network namespaces, a bridge and bind mounts)");
        }
        for k in 1..=spec.nodes {
            let prefix = format!("sluice-{}-", spec.node_name(k));
            for ns in net::list_netns(&prefix) {
                net::delete_netns(&ns);
            }
        }
        net::delete_link(&spec.net.bridge);
        std::fs::create_dir_all(&spec.dir)?;
        let control_plane = ControlPlane::start(ControlPlaneConfig {
            name: spec.name.clone(),
            dir: spec.dir.clone(),
            net: spec.net.clone(),
            k8s_version: k8s_version(),
        })?;
        let t0 = Instant::now();
        let mut nodes = Vec::new();
        for k in 1..=spec.nodes {
            let name = spec.node_name(k);
            let node_ip = spec.net.node_ip(k);
            let cfg = NodeConfig {
                node_name: name.clone(),
                kubeconfig: control_plane.kubeconfig.clone(),
                bridge: spec.net.bridge.clone(),
                node_ip,
                prefix: ClusterNet::PREFIX,
                state_dir: spec.dir.join("nodes").join(&name),
                cluster_domain: "cluster.local".into(),
                kubelet_port: 10250,
                ca_cert: Some(control_plane.pki.ca_cert.clone()),
                ca_key: Some(control_plane.pki.ca_key.clone()),
                backoff_initial_seconds: spec.backoff_initial_seconds,
                images: spec.images.clone(),
                cpu: None,
                memory: None,
                labels: Default::default(),
            };
            let cfg_path = spec.dir.join(format!("{name}.yaml"));
            std::fs::write(&cfg_path, serde_yaml::to_string(&cfg)?)?;
            let p = Proc::spawn(
                &name,
                &spec.node_bin,
                &["--config".into(), cfg_path.display().to_string()],
                &[("RUST_LOG".into(), std::env::var("SLUICE_NODE_LOG").unwrap_or_else(|_| "info".into()))],
                &control_plane.logs.join(format!("{name}.log")),
                Signal::SIGTERM,
            )?;
            nodes.push(p);
        }
        let mut cluster = Cluster { spec, control_plane, nodes, node_startup: Duration::ZERO };
        cluster.wait_ready(Duration::from_secs(60))?;
        cluster.node_startup = t0.elapsed();
        Ok(cluster)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client = rt.block_on(crate::client_from_kubeconfig(&self.control_plane.kubeconfig))?;
        let deadline = Instant::now() + timeout;
        let names: Vec<String> = (1..=self.spec.nodes).map(|k| self.spec.node_name(k)).collect();
        loop {
            let ready = rt.block_on(async {
                let nodes: Api<Node> = Api::all(client.clone());
                let mut n = 0;
                for name in &names {
                    if let Ok(Some(node)) = nodes.get_opt(name).await {
                        let ok = node
                            .status
                            .and_then(|s| s.conditions)
                            .unwrap_or_default()
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True");
                        if ok {
                            n += 1;
                        }
                    }
                }
                let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
                n == names.len() && matches!(sa.get_opt("default").await, Ok(Some(_)))
            });
            if ready {
                return Ok(());
            }
            for p in self.nodes.iter_mut() {
                if let Some(st) = p.exited() {
                    bail!("{} exited ({st}); log {}:\n{}", p.name, p.log.display(), p.log_tail(30));
                }
            }
            let dead = self.control_plane.dead();
            if !dead.is_empty() {
                bail!("control plane process died: {}", dead.join(", "));
            }
            if Instant::now() > deadline {
                bail!("nodes not Ready within {timeout:?}; see {}", self.control_plane.logs.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.control_plane.kubeconfig
    }

    pub fn node_pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|p| p.pid()).collect()
    }

    /// Restarts node agents that died (they clean up after their previous
    /// run and start their pods again). Returns the names restarted.
    pub fn restart_dead_nodes(&mut self) -> Vec<String> {
        let mut restarted = Vec::new();
        for p in self.nodes.iter_mut() {
            if p.exited().is_none() {
                continue;
            }
            let cfg = self.spec.dir.join(format!("{}.yaml", p.name));
            match Proc::spawn(
                &p.name.clone(),
                &self.spec.node_bin,
                &["--config".into(), cfg.display().to_string()],
                &[("RUST_LOG".into(), std::env::var("SLUICE_NODE_LOG").unwrap_or_else(|_| "info".into()))],
                &p.log.clone(),
                Signal::SIGTERM,
            ) {
                Ok(new) => {
                    restarted.push(new.name.clone());
                    *p = new;
                }
                Err(e) => tracing::warn!("restarting {}: {e:#}", p.name),
            }
        }
        restarted
    }

    /// Processes that died (a healthy cluster has none).
    pub fn dead(&mut self) -> Vec<String> {
        let mut d = self.control_plane.dead();
        d.extend(self.nodes.iter_mut().filter_map(|p| p.exited().map(|s| format!("{} ({s})", p.name))));
        d
    }

    /// Stops the nodes (they kill their pods and remove their namespaces),
    /// then the control plane, then removes the bridge.
    pub fn stop(&mut self) {
        for p in self.nodes.iter_mut() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid() as i32), Signal::SIGTERM);
        }
        for mut p in self.nodes.drain(..) {
            p.stop(Duration::from_secs(30));
        }
        self.control_plane.stop();
        for k in 1..=self.spec.nodes {
            for ns in net::list_netns(&format!("sluice-{}-", self.spec.node_name(k))) {
                net::delete_netns(&ns);
            }
        }
        net::delete_link(&self.spec.net.bridge);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Image mappings shared by the sandbox and the tests: host shells and tools
/// for common base images (the host filesystem is the image).
pub fn host_image_mappings() -> Vec<ImageMapping> {
    ["busybox*", "docker.io/library/busybox*", "debian*", "ubuntu*", "alpine*", "sluice/host:*"]
        .into_iter()
        .map(|image| ImageMapping {
            image: image.into(),
            entrypoint: Vec::new(),
            cmd: vec!["/bin/sh".into()],
            path: Vec::new(),
        })
        .collect()
}

/// Makes a server on the host reachable from pods as `<name>.<ns>` (and
/// `<name>.<ns>.svc.cluster.local`): a Service without a selector whose
/// EndpointSlice points at `ip:port` (the bridge gateway, for a host server).
/// Idempotent (server-side apply).
pub async fn expose_host_service(
    client: &kube::Client,
    ns: &str,
    name: &str,
    ip: std::net::Ipv4Addr,
    port: u16,
) -> Result<()> {
    use k8s_openapi::api::core::v1::{Namespace, Service};
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::api::{Patch, PatchParams};
    let pp = PatchParams::apply("sluice-sandbox").force();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            ns,
            &pp,
            &Patch::Apply(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})),
        )
        .await?;
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    services
        .patch(
            name,
            &pp,
            &Patch::Apply(serde_json::json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]},
            })),
        )
        .await?;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let slice = format!("{name}-host");
    slices
        .patch(
            &slice,
            &pp,
            &Patch::Apply(serde_json::json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": slice, "namespace": ns, "labels": {
                    "kubernetes.io/service-name": name,
                    "endpointslice.kubernetes.io/managed-by": "sluice-sandbox",
                }},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
                "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
            })),
        )
        .await?;
    Ok(())
}

/// Creates or updates an Opaque Secret with string data (server-side apply).
pub async fn apply_secret(client: &kube::Client, ns: &str, name: &str, data: &[(&str, &str)]) -> Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Patch, PatchParams};
    let string_data: serde_json::Map<String, serde_json::Value> =
        data.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    secrets
        .patch(
            name,
            &PatchParams::apply("sluice-sandbox").force(),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": ns},
                "type": "Opaque",
                "stringData": string_data,
            })),
        )
        .await?;
    Ok(())
}
