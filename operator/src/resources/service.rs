//! The coordinator Service and the workers' headless Service. Every Service
//! has `port == targetPort`: the sandbox has no kube-proxy.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Blueprint, DATA_PORT, PROBE_PORT, REST_PORT, RPC_PORT};

fn port(name: &str, p: i32) -> ServicePort {
    ServicePort { name: Some(name.into()), port: p, target_port: Some(IntOrString::Int(p)), ..Default::default() }
}

pub fn coordinator(d: &Blueprint) -> Service {
    Service {
        metadata: d.meta(d.coordinator_name(), Some("coordinator")),
        spec: Some(ServiceSpec {
            selector: Some(d.selector(Some("coordinator"))),
            ports: Some(vec![port("rpc", RPC_PORT), port("rest", REST_PORT)]),
            // Workers must find a coordinator that is still waiting for them.
            publish_not_ready_addresses: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn workers(d: &Blueprint) -> Service {
    Service {
        metadata: d.meta(d.workers_name(), Some("worker")),
        spec: Some(ServiceSpec {
            selector: Some(d.selector(Some("worker"))),
            cluster_ip: Some("None".into()),
            ports: Some(vec![port("data", DATA_PORT), port("probes", PROBE_PORT)]),
            publish_not_ready_addresses: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}
