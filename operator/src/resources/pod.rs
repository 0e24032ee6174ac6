//! The engine pod template shared by the coordinator and the workers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    EnvVarSource, HTTPGetAction, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretEnvSource, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Blueprint, BuildError, CONFIG_DIR, DEPLOYMENT_ANNOTATION, merge_json};
use crate::crd::PodResources;

/// The engine container's name; a `podTemplate` container of this name is merged into it.
pub const CONTAINER: &str = "engine";
/// The user and group the engine runs as: the `nonroot` user of the engine image
/// (`engine/Dockerfile`, distroless), so that engine pods pass Pod Security "restricted".
pub const ENGINE_UID: i64 = 65532;

/// One role's pod: its arguments, ports, probe port and resources.
pub struct Role<'a> {
    pub role: &'a str,
    pub args: Vec<String>,
    pub ports: Vec<(&'a str, i32)>,
    /// `(path, port)` of the readiness probe; liveness uses `/healthz` on the same port.
    pub readiness: (&'a str, i32),
    pub resources: Option<&'a PodResources>,
}

/// The pod template of a role, with the user's `podTemplate` merged in.
pub fn template(d: &Blueprint, r: &Role) -> Result<PodTemplateSpec, BuildError> {
    let spec = d.spec;
    let mut env = vec![EnvVar {
        name: "POD_IP".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: "status.podIP".into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }];
    if let Some(region) = spec.s3.as_ref().and_then(|s| s.region.as_ref()) {
        env.push(EnvVar { name: "AWS_REGION".into(), value: Some(region.clone()), ..Default::default() });
    }
    if r.role == "coordinator" {
        // OpenLineage run events (sent by the coordinator): the chart's endpoint, and the
        // job's namespace and name; `openlineage.*` keys in `spec.config` win.
        let var =
            |name: &str, value: &str| EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() };
        if let Some(url) = d.openlineage_url {
            env.push(var("OPENLINEAGE_URL", url));
        }
        env.push(var("OPENLINEAGE_NAMESPACE", d.namespace));
        env.push(var("SLUICE_OPENLINEAGE_JOB_NAME", d.name));
        // What sink commit logs record as the committer (with the generation).
        env.push(var("SLUICE_DEPLOYMENT_NAME", &format!("{}-{}", d.deployment, d.color)));
    }
    let env_from = spec.s3.as_ref().and_then(|s| s.credentials_secret_ref.as_ref()).map(|r| {
        vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource { name: r.name.clone(), optional: Some(false) }),
            ..Default::default()
        }]
    });
    // The data policy's Secrets, each at <secrets dir>/<name>, where the engine reads its
    // hmac keys: (volume name, Secret name).
    let policy_secrets: Vec<(String, String)> = {
        let mut names: Vec<String> = spec.data_policy.secrets().iter().map(|r| r.name.clone()).collect();
        names.sort();
        names.dedup();
        names.into_iter().enumerate().map(|(i, n)| (format!("policy-key-{i}"), n)).collect()
    };
    // Every Secret the pod mounts: (volume, Secret, mount path).
    let mut secrets: Vec<(String, String, String)> = policy_secrets
        .into_iter()
        .map(|(volume, name)| {
            let path = format!("{}/{name}", sluice_api::policy::DEFAULT_SECRETS_DIR);
            (volume, name, path)
        })
        .collect();
    // Every engine pod mounts its color's token: the coordinator's REST API needs it,
    // and the coordinator and the workers admit each other by it.
    let token = super::engine_token::secret_name(&d.instance());
    secrets.push(("engine-token".into(), token, super::engine_token::DIR.into()));
    let probe = |path: &str, port: i32, period: i32| Probe {
        http_get: Some(HTTPGetAction { path: Some(path.into()), port: IntOrString::Int(port), ..Default::default() }),
        period_seconds: Some(period),
        failure_threshold: Some(3),
        ..Default::default()
    };
    let container = Container {
        name: CONTAINER.into(),
        image: spec.image.clone(),
        // The log's tail becomes the termination message, which the operator reports.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        args: Some(r.args.clone()),
        env: Some(env),
        env_from,
        ports: Some(
            r.ports
                .iter()
                .map(|(name, port)| ContainerPort {
                    name: Some((*name).into()),
                    container_port: *port,
                    ..Default::default()
                })
                .collect(),
        ),
        readiness_probe: Some(probe(r.readiness.0, r.readiness.1, 2)),
        liveness_probe: Some(Probe { initial_delay_seconds: Some(10), ..probe("/healthz", r.readiness.1, 10) }),
        resources: r.resources.map(resources),
        volume_mounts: Some(
            [
                VolumeMount {
                    name: "config".into(),
                    mount_path: CONFIG_DIR.into(),
                    read_only: Some(true),
                    ..Default::default()
                },
                VolumeMount { name: "tmp".into(), mount_path: "/tmp".into(), ..Default::default() },
            ]
            .into_iter()
            .chain(secrets.iter().map(|(volume, _, path)| VolumeMount {
                name: volume.clone(),
                mount_path: path.clone(),
                read_only: Some(true),
                ..Default::default()
            }))
            .collect(),
        ),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels(d, r.role)),
            annotations: Some(BTreeMap::from([(DEPLOYMENT_ANNOTATION.to_string(), d.deployment.to_string())])),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(30),
            // Pod Security "restricted": a non-root numeric user (the engine image's,
            // overridable through podTemplate) and the runtime's seccomp profile.
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(ENGINE_UID),
                run_as_group: Some(ENGINE_UID),
                seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
                ..Default::default()
            }),
            volumes: Some(
                [
                    Volume {
                        name: "config".into(),
                        config_map: Some(ConfigMapVolumeSource { name: d.config_map_name(), ..Default::default() }),
                        ..Default::default()
                    },
                    Volume {
                        name: "tmp".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Default::default()
                    },
                ]
                .into_iter()
                .chain(secrets.iter().map(|(volume, name, _)| Volume {
                    name: volume.clone(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(name.clone()),
                        default_mode: Some(0o444),
                        ..Default::default()
                    }),
                    ..Default::default()
                }))
                .collect(),
            ),
            ..Default::default()
        }),
    };
    let Some(overlay) = &spec.pod_template else { return Ok(pod) };
    let mut value = serde_json::to_value(&pod).map_err(BuildError::Serialize)?;
    merge_json(&mut value, overlay);
    let mut merged: PodTemplateSpec = serde_json::from_value(value).map_err(BuildError::PodTemplate)?;
    // The operator's labels select the pods: the template may add labels, not change these.
    if let Some(meta) = merged.metadata.as_mut() {
        let labels = meta.labels.get_or_insert_with(BTreeMap::new);
        labels.extend(pod_labels(d, r.role));
    }
    Ok(merged)
}

/// Pod labels carry no version: a new operator must not roll running jobs' pods. For
/// the same reason blue's pods carry no `sluice.dev/color` (their selector never had
/// one); green's do.
fn pod_labels(d: &Blueprint, role: &str) -> BTreeMap<String, String> {
    let mut l = d.selector(Some(role));
    l.insert("app.kubernetes.io/managed-by".into(), "sluice-operator".into());
    l
}

fn resources(r: &PodResources) -> ResourceRequirements {
    let q = |m: &BTreeMap<String, String>| {
        (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), Quantity(v.clone()))).collect())
    };
    ResourceRequirements { requests: q(&r.requests), limits: q(&r.limits), ..Default::default() }
}
