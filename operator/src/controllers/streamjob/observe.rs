//! Observe: the child objects, the engine's REST API and the savepoint in flight.

use std::time::Instant;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::ListParams;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use sluice_api::layout;
use sluice_api::rest::SnapshotStatus;

use super::plan::{ChildrenView, EngineView, TriggerView};
use crate::context::Context;
use crate::crd::{Color, CutoverStep, DeployedSpec, StreamJob, UpgradeStep};
use crate::error::Error;
use crate::resources::coordinator::STANDBY_FLAG;
use crate::resources::{self, DEPLOYMENT_ANNOTATION};
use crate::storage;

/// Whether `meta` has an ownerReference to `job` (by uid): a name derived from this
/// job's may belong to another job (a job `x-green` beside a job `x`).
pub fn owned_by(meta: &kube::api::ObjectMeta, job: &StreamJob) -> bool {
    let uid = job.meta().uid.as_deref();
    meta.owner_references.iter().flatten().any(|o| Some(o.uid.as_str()) == uid)
}

/// The color that runs the job.
pub fn active_color(job: &StreamJob) -> Color {
    job.status.as_ref().and_then(|s| s.active_color).unwrap_or_default()
}

/// The children of one color, from the watch caches (no API call) when `cached`, else
/// (or when this namespace has no cache) from the API server: a consistent read, for
/// decisions that must not rest on a lagging cache, such as "every old engine pod is gone".
pub async fn children(ctx: &Context, job: &StreamJob, color: Color, cached: bool) -> Result<ChildrenView, Error> {
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let instance = resources::instance(&name, color);
    let (coordinator, workers, config) =
        (format!("{instance}-coordinator"), format!("{instance}-workers"), format!("{instance}-config"));
    let caches = if cached { ctx.caches(&ns).await } else { None };
    let (deployment, has_workers, config_map, pods, pod_problem) = match caches {
        Some(c) => {
            let deployment = c
                .deployments
                .get(&ObjectRef::new(&coordinator).within(&ns))
                .filter(|d| owned_by(d.meta(), job))
                .map(|d| (*d).clone());
            let has_workers =
                c.stateful_sets.get(&ObjectRef::new(&workers).within(&ns)).is_some_and(|s| owned_by(s.meta(), job));
            let config_map =
                c.config_maps.get(&ObjectRef::new(&config).within(&ns)).is_some_and(|m| owned_by(m.meta(), job));
            let mine: Vec<_> = c
                .pods
                .state()
                .into_iter()
                .filter(|p| {
                    p.metadata.namespace.as_deref() == Some(ns.as_str())
                        && p.labels().get("sluice.dev/job") == Some(&name)
                        && p.labels().get(INSTANCE) == Some(&instance)
                })
                .collect();
            let problem = mine.iter().find_map(|p| pod_problem(p));
            (deployment, has_workers, config_map, mine.len(), problem)
        }
        None => {
            let deployment = Api::<Deployment>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&coordinator)
                .await?
                .filter(|d| owned_by(d.meta(), job));
            let has_workers = Api::<StatefulSet>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&workers)
                .await?
                .is_some_and(|s| owned_by(s.meta(), job));
            let config_map = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&config)
                .await?
                .is_some_and(|m| owned_by(m.meta(), job));
            let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ns)
                .list_metadata(
                    &ListParams::default()
                        .labels(&format!("sluice.dev/job={name},sluice.dev/role,{INSTANCE}={instance}")),
                )
                .await?
                .items
                .len();
            (deployment, has_workers, config_map, pods, None)
        }
    };
    let annotation = deployment
        .as_ref()
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(DEPLOYMENT_ANNOTATION))
        .and_then(|v| v.parse().ok());
    let standby = deployment
        .as_ref()
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.template.spec.as_ref())
        .is_some_and(|p| p.containers.iter().any(|c| c.args.iter().flatten().any(|a| a == STANDBY_FLAG)));
    Ok(ChildrenView {
        engine_objects: deployment.is_some() || has_workers,
        pods,
        deployment: annotation,
        config_map,
        pod_problem,
        standby,
    })
}

const INSTANCE: &str = "app.kubernetes.io/instance";

/// Why a pod's engine container is not running, from its status: a waiting reason
/// such as CrashLoopBackOff or ErrImagePull, with the last exit and its message.
pub fn pod_problem(pod: &Pod) -> Option<String> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|c| {
        let waiting = c.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.clone().unwrap_or_default();
        if reason.is_empty() || reason == "ContainerCreating" || reason == "PodInitializing" {
            return None;
        }
        let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| {
            let msg = t.message.as_deref().map(str::trim).filter(|m| !m.is_empty());
            format!("exited with {}{}", t.exit_code, msg.map(|m| format!(": {m}")).unwrap_or_default())
        });
        let detail = last.or_else(|| waiting.message.clone()).unwrap_or_default();
        Some(format!(
            "pod {name}: container {} is {reason}{}",
            c.name,
            if detail.is_empty() { String::new() } else { format!(" ({detail})") }
        ))
    })
}

/// A color's engine view, or why it cannot be had. Time spent here is engine wait time.
pub async fn engine(ctx: &Context, job: &StreamJob, color: Color, children: &ChildrenView) -> EngineView {
    if !children.engine_objects {
        return EngineView::Down("no engine pods are deployed".into());
    }
    let t = Instant::now();
    let r = ctx.engine.job(&job.namespace().unwrap_or_default(), &resources::instance(&job.name_any(), color)).await;
    ctx.metrics.engine_wait(t.elapsed());
    match r {
        Ok(j) => EngineView::Up(Box::new(j)),
        Err(e) => EngineView::Down(e.to_string()),
    }
}

/// The savepoint in flight, if any: asked of the engine of the color that takes it
/// (`engine` is the active color's, `other` the other's), and, if that engine does not
/// know it (it was restarted), looked for in storage.
pub async fn trigger(
    ctx: &Context,
    job: &StreamJob,
    engine: &EngineView,
    other: &EngineView,
) -> Result<Option<TriggerView>, Error> {
    let Some(status) = &job.status else { return Ok(None) };
    let active = active_color(job);
    let (id, color) = match (&status.cutover, &status.upgrade, &status.pending_savepoint) {
        (Some(c), _, _) if c.step == CutoverStep::Stopping => (c.trigger_id.clone(), active),
        (Some(c), _, _) if c.step == CutoverStep::RollingBack => (c.rollback_trigger_id.clone(), active.other()),
        (Some(_), _, _) => (None, active),
        (None, Some(u), _) if matches!(u.step, UpgradeStep::Stopping | UpgradeStep::Fencing) => {
            (u.trigger_id.clone(), active)
        }
        (None, None, Some(p)) => (Some(p.trigger_id.clone()), active),
        _ => (None, active),
    };
    let Some(id) = id else { return Ok(None) };
    let spec = status
        .upgrade
        .as_ref()
        .map(|u| &u.target_spec)
        .or(status.cutover.as_ref().map(|c| &c.target_spec))
        .or(status.reconciled_spec.as_ref())
        .map_or(&job.spec, DeployedSpec::spec);
    let ns = job.namespace().unwrap_or_default();
    let engine = if color == active { engine } else { other };
    if matches!(engine, EngineView::Up(_)) {
        let t = Instant::now();
        let r = ctx.engine.savepoint(&ns, &resources::instance(&job.name_any(), color), &id).await;
        ctx.metrics.engine_wait(t.elapsed());
        match r {
            Ok(Some(s)) => {
                return Ok(Some(match s.status {
                    SnapshotStatus::Completed => TriggerView::Completed(s.location.unwrap_or_default()),
                    SnapshotStatus::Failed => TriggerView::Failed(s.error.unwrap_or_else(|| "no reason given".into())),
                    SnapshotStatus::InProgress => TriggerView::InProgress,
                }));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the savepoint's state; looking in storage"),
        }
    }
    let Some(dir) = spec.savepoints.directory.as_deref() else { return Ok(Some(TriggerView::Unknown)) };
    let location = layout::savepoint_location(dir, &id);
    let found = match storage::access(&ctx.client, &ns, spec, ctx.s3_endpoint.as_deref()).await {
        Ok(access) => storage::savepoint_exists(&access, &location).await,
        Err(e) => Err(e),
    };
    Ok(Some(match found {
        Ok(true) => TriggerView::Completed(location),
        Ok(false) => TriggerView::Unknown,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for the savepoint in storage");
            TriggerView::Unreadable(format!("{location}: {e}"))
        }
    }))
}
