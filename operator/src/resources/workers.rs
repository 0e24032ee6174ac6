//! The worker StatefulSet: Parallel pod management, one pod per `slotsPerWorker` subtasks.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::pod::{Role, template};
use super::{Blueprint, BuildError, DATA_PORT, PROBE_PORT, RPC_PORT};

pub fn build(d: &Blueprint) -> Result<StatefulSet, BuildError> {
    let args = vec![
        "worker".to_string(),
        "--coordinator".into(),
        format!("{}:{RPC_PORT}", d.coordinator_name()),
        "--slots".into(),
        d.spec.slots_per_worker.to_string(),
        "--data-addr".into(),
        format!("0.0.0.0:{DATA_PORT}"),
        "--advertise-addr".into(),
        "$(POD_IP)".into(),
        "--rest-addr".into(),
        format!("0.0.0.0:{PROBE_PORT}"),
        "--cluster-secret-file".into(),
        super::engine_token::file(),
    ];
    let role = Role {
        role: "worker",
        args,
        ports: vec![("data", DATA_PORT), ("probes", PROBE_PORT)],
        readiness: ("/readyz", PROBE_PORT),
        resources: d.spec.worker.as_ref(),
    };
    Ok(StatefulSet {
        metadata: d.meta(d.workers_name(), Some("worker")),
        spec: Some(StatefulSetSpec {
            replicas: Some(d.worker_replicas()),
            service_name: Some(d.workers_name()),
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector { match_labels: Some(d.selector(Some("worker"))), ..Default::default() },
            template: template(d, &role)?,
            ..Default::default()
        }),
        ..Default::default()
    })
}
