//! The coordinator Deployment: one replica, recreated (never two at once).

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::pod::{Role, template};
use super::{Blueprint, BuildError, CONFIG_DIR, REST_PORT, RPC_PORT, SQL_FILE};

/// The flag of a standby coordinator; observe reads it back from the Deployment.
pub const STANDBY_FLAG: &str = "--standby";

pub fn build(d: &Blueprint) -> Result<Deployment, BuildError> {
    let args = [
        "coordinator",
        "--job",
        &format!("{CONFIG_DIR}/{SQL_FILE}"),
        "--config",
        &format!("{CONFIG_DIR}/engine.yaml"),
        "--job-id",
        d.uid,
        "--rpc-addr",
        &format!("0.0.0.0:{RPC_PORT}"),
        "--rest-addr",
        &format!("0.0.0.0:{REST_PORT}"),
        "--on-finish",
        "stay",
        "--rest-token-file",
        &super::engine_token::file(),
        "--cluster-secret-file",
        &super::engine_token::file(),
    ]
    .map(String::from)
    .to_vec();
    let mut args = args;
    if d.standby {
        // Blue-green: it waits, checking its restore point, until the operator activates it.
        args.push(STANDBY_FLAG.into());
    }
    let role = Role {
        role: "coordinator",
        args,
        ports: vec![("rpc", RPC_PORT), ("rest", REST_PORT)],
        // Ready once REST answers: the operator must see FAILED and FINISHED too.
        readiness: ("/healthz", REST_PORT),
        resources: d.spec.coordinator.as_ref(),
    };
    Ok(Deployment {
        metadata: d.meta(d.coordinator_name(), Some("coordinator")),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector { match_labels: Some(d.selector(Some("coordinator"))), ..Default::default() },
            strategy: Some(DeploymentStrategy { type_: Some("Recreate".into()), ..Default::default() }),
            template: template(d, &role)?,
            ..Default::default()
        }),
        ..Default::default()
    })
}
