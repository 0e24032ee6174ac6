//! The Node object and its Lease: registration, status and heartbeats.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

use super::Ctx;

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

fn host_memory_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(1024 * 1024)
}

fn node_status(ctx: &Ctx) -> NodeStatus {
    // Nothing is enforced (no cgroups), so by default the node advertises
    // more than the machine has: requests then never block scheduling on a
    // 2-core machine. Set `cpu`/`memory` in the config to model a real node.
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cpu = ctx.cfg.cpu.clone().unwrap_or_else(|| ncpu.max(32).to_string());
    let memory = ctx.cfg.memory.clone().unwrap_or_else(|| format!("{}Ki", host_memory_kib().max(64 * 1024 * 1024)));
    let resources: BTreeMap<String, Quantity> =
        [("cpu", cpu), ("memory", memory), ("pods", "110".to_string()), ("ephemeral-storage", "100Gi".to_string())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Quantity(v)))
            .collect();
    let t = now();
    let cond = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(t.clone()),
        last_transition_time: Some(t.clone()),
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(vec![
            cond("Ready", "True", "KubeletReady", "sluice-node is posting ready status"),
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
        ]),
        addresses: Some(vec![
            NodeAddress { type_: "InternalIP".into(), address: ctx.cfg.node_ip.to_string() },
            NodeAddress { type_: "Hostname".into(), address: ctx.cfg.node_name.clone() },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: ctx.cfg.kubelet_port as i32 }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
            boot_id: String::new(),
            container_runtime_version: "sluice-process://0.1.0".into(),
            kernel_version: kernel.trim().into(),
            kube_proxy_version: String::new(),
            kubelet_version: crate::controlplane::k8s_version(),
            machine_id: String::new(),
            operating_system: "linux".into(),
            os_image: "host".into(),
            system_uuid: String::new(),
            swap: None,
        }),
        ..Default::default()
    }
}

/// Creates (or takes over) the Node object and marks it Ready.
pub async fn register(ctx: &Ctx) -> Result<()> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let name = &ctx.cfg.node_name;
    let mut labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("sluice.dev/node-agent", "sluice-node"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.extend(ctx.cfg.labels.clone());
    let o = ctx.cfg.node_ip.octets();
    let cidr = format!("{}.{}.{}.0/24", o[0], o[1], o[2]);
    let node = Node {
        metadata: ObjectMeta { name: Some(name.clone()), labels: Some(labels), ..Default::default() },
        spec: Some(NodeSpec { pod_cidr: Some(cidr.clone()), pod_cidrs: Some(vec![cidr]), ..Default::default() }),
        status: None,
    };
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {
            nodes
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({
                        "metadata": {"labels": node.metadata.labels},
                        "spec": {"unschedulable": false},
                    })),
                )
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    update_status(ctx).await?;
    renew_lease(ctx).await?;
    Ok(())
}

async fn update_status(ctx: &Ctx) -> Result<()> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let status = node_status(ctx);
    nodes
        .patch_status(
            &ctx.cfg.node_name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": status })),
        )
        .await?;
    Ok(())
}

async fn renew_lease(ctx: &Ctx) -> Result<()> {
    let leases: Api<Lease> = Api::namespaced(ctx.client.clone(), "kube-node-lease");
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let uid = nodes.get(&ctx.cfg.node_name).await?.metadata.uid.unwrap_or_default();
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(ctx.cfg.node_name.clone()),
            namespace: Some("kube-node-lease".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Node".into(),
                name: ctx.cfg.node_name.clone(),
                uid,
                ..Default::default()
            }]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(ctx.cfg.node_name.clone()),
            lease_duration_seconds: Some(40),
            renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            ..Default::default()
        }),
    };
    let mut value = serde_json::to_value(&lease)?;
    if let Some(obj) = value.as_object_mut() {
        obj.insert("apiVersion".into(), "coordination.k8s.io/v1".into());
        obj.insert("kind".into(), "Lease".into());
    }
    leases.patch(&ctx.cfg.node_name, &PatchParams::apply("sluice-node").force(), &Patch::Apply(value)).await?;
    Ok(())
}

/// Renews the Lease and the Ready condition every 10 s, as the kubelet does.
pub async fn heartbeat_loop(ctx: Arc<Ctx>) {
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        if let Err(e) = renew_lease(&ctx).await {
            tracing::warn!("renewing lease: {e:#}");
        }
        if let Err(e) = update_status(&ctx).await {
            tracing::warn!("updating node status: {e:#}");
        }
    }
}
