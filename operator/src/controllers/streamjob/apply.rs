//! Apply: server-side apply of the children (field manager `sluice-operator`),
//! deletion of the engine pods' owners, savepoint triggers, finalizer removal
//! and savepoint disposal. Every action is idempotent.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::FINALIZER;
use super::observe::owned_by;
use super::plan::Action;
use crate::context::Context;
use crate::crd::{Color, DeployedSpec, StrategyType, StreamJob, StreamJobStatus};
use crate::engine::EngineClientError;
use crate::error::Error;
use crate::resources::{self, Blueprint};
use crate::storage;

pub const MANAGER: &str = "sluice-operator";

pub async fn run(ctx: &Context, job: &StreamJob, status: &StreamJobStatus, action: &Action) -> Result<(), Error> {
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    ctx.leadership.check(&format!("{action:?} of job {ns}/{name}"))?;
    let active = status.active_color.unwrap_or_default();
    match action {
        Action::ApplyChildren => apply_children(ctx, job, status).await,
        Action::DeleteEngine => delete_engine(ctx, job, active).await,
        Action::TriggerSavepoint(req) => trigger_savepoint(ctx, job, active, req).await,
        Action::TriggerSavepointOn(color, req) => trigger_savepoint(ctx, job, *color, req).await,
        Action::ApplyColor { color, spec, deployment, restore } => {
            let mut d = blueprint(job, status, spec, ctx)?;
            d.color = *color;
            d.deployment = *deployment;
            d.restore = restore.as_deref();
            d.standby = true;
            apply_blueprint(ctx, job, &d).await
        }
        Action::DeleteColor(color) => {
            delete_engine(ctx, job, *color).await?;
            let instance = resources::instance(&name, *color);
            delete_owned::<Service>(ctx, job, &format!("{instance}-coordinator")).await?;
            delete_owned::<Service>(ctx, job, &format!("{instance}-workers")).await?;
            delete_owned::<PodDisruptionBudget>(ctx, job, &instance).await?;
            delete_owned::<NetworkPolicy>(ctx, job, &resources::network_policy::name(&instance)).await?;
            delete_owned::<ConfigMap>(ctx, job, &format!("{instance}-config")).await?;
            tracing::info!(color = %color, "removed the {color} engine");
            Ok(())
        }
        Action::Activate { color, restore, id } => {
            let t = std::time::Instant::now();
            let instance = resources::instance(&name, *color);
            let r = ctx.engine.activate(&ns, &instance, restore.as_deref(), id).await;
            ctx.metrics.engine_wait(t.elapsed());
            match r {
                Ok(()) => {
                    tracing::info!(color = %color, restore = ?restore, "activated the {color} engine");
                    Ok(())
                }
                // Not ready any more, or activated meanwhile: the next reconcile sees which.
                Err(e @ EngineClientError::Status { code: 409, .. }) => {
                    tracing::info!(error = %e, "activation refused; the next reconcile looks again");
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
        }
        Action::RemoveFinalizer => remove_finalizer(ctx, job).await,
        Action::Dispose { locations, roots } => {
            let spec = status.reconciled_spec.as_ref().map_or(&job.spec, DeployedSpec::spec);
            let access = storage::access(&ctx.client, &ns, spec, ctx.s3_endpoint.as_deref()).await?;
            for l in locations {
                storage::dispose(&access, l, roots).await?;
                tracing::info!(location = %l, "deleted an old savepoint (retention)");
            }
            Ok(())
        }
    }
}

async fn trigger_savepoint(
    ctx: &Context,
    job: &StreamJob,
    color: Color,
    req: &sluice_api::rest::SavepointRequest,
) -> Result<(), Error> {
    let t = std::time::Instant::now();
    let instance = resources::instance(&job.name_any(), color);
    let r = ctx.engine.trigger_savepoint(&job.namespace().unwrap_or_default(), &instance, req).await;
    ctx.metrics.engine_wait(t.elapsed());
    r.map_err(Error::from)
}

/// Deletes a color's coordinator Deployment and worker StatefulSet. Foreground: they
/// stay until their pods are gone, so that "no engine objects" also means "no engine
/// pods to come".
async fn delete_engine(ctx: &Context, job: &StreamJob, color: Color) -> Result<(), Error> {
    let instance = resources::instance(&job.name_any(), color);
    delete_owned::<Deployment>(ctx, job, &format!("{instance}-coordinator")).await?;
    delete_owned::<StatefulSet>(ctx, job, &format!("{instance}-workers")).await
}

/// Deletes the object `name` if this job owns it: a name derived from this job's may
/// belong to another job (a job `x-green` beside a job `x`), which is left alone.
async fn delete_owned<K>(ctx: &Context, job: &StreamJob, name: &str) -> Result<(), Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api = Api::<K>::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let Some(obj) = api.get_opt(name).await? else { return Ok(()) };
    if !owned_by(obj.meta(), job) {
        tracing::warn!(object = %name, "not deleting {name}: another object owns it");
        return Ok(());
    }
    let uid = obj.meta().uid.clone();
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions { uid, resource_version: None }),
        ..DeleteParams::foreground()
    };
    ignore_missing(api.delete(name, &dp).await)
}

fn ignore_missing<T>(r: Result<T, kube::Error>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn apply<K>(ctx: &Context, ns: &str, obj: &K) -> Result<(), Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + std::fmt::Debug,
    K::DynamicType: Default,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    Api::<K>::namespaced(ctx.client.clone(), ns)
        .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(obj))
        .await?;
    Ok(())
}

/// The blueprint of the children of the deployment recorded in the status.
pub fn blueprint<'a>(
    job: &'a StreamJob,
    status: &'a StreamJobStatus,
    spec: &'a DeployedSpec,
    ctx: &'a Context,
) -> Result<Blueprint<'a>, Error> {
    let owner = job.controller_owner_ref(&()).ok_or_else(|| Error::Internal("the StreamJob has no uid".into()))?;
    Ok(Blueprint {
        name: job.meta().name.as_deref().unwrap_or_default(),
        namespace: job.meta().namespace.as_deref().unwrap_or_default(),
        uid: job.meta().uid.as_deref().unwrap_or_default(),
        owner,
        spec: spec.spec(),
        sql: spec.sql(),
        deployment: status.deployment,
        restore: status.deployed_from.as_deref(),
        version: &ctx.version,
        color: status.active_color.unwrap_or_default(),
        standby: spec.upgrade_strategy.type_ == StrategyType::BlueGreen,
        openlineage_url: ctx.defaults.openlineage_url.as_deref(),
    })
}

async fn apply_children(ctx: &Context, job: &StreamJob, status: &StreamJobStatus) -> Result<(), Error> {
    let name = job.name_any();
    let ns = job.namespace().unwrap_or_default();
    let spec = status
        .reconciled_spec
        .as_ref()
        .ok_or_else(|| Error::Internal(format!("job {ns}/{name}: no readable reconciledSpec to deploy")))?;
    let d = blueprint(job, status, spec, ctx)?;
    apply_blueprint(ctx, job, &d).await
}

/// Applies every child of one color. A coordinator Deployment of that name that this job
/// does not own (another job's) is an error, not something to take over.
async fn apply_blueprint(ctx: &Context, job: &StreamJob, d: &Blueprint<'_>) -> Result<(), Error> {
    let (ns, name) = (job.namespace().unwrap_or_default(), job.name_any());
    let existing = Api::<Deployment>::namespaced(ctx.client.clone(), &ns).get_opt(&d.coordinator_name()).await?;
    if existing.is_some_and(|e| !owned_by(e.meta(), job)) {
        return Err(Error::Internal(format!(
            "job {ns}/{name}: {} exists and belongs to another object; rename one of the jobs",
            d.coordinator_name()
        )));
    }
    let build = |source| Error::Build { job: format!("{ns}/{name}"), source };
    ensure_rest_token(ctx, &ns, d).await?;
    apply(ctx, &ns, &resources::configmap::build(d)).await?;
    apply(ctx, &ns, &resources::service::coordinator(d)).await?;
    apply(ctx, &ns, &resources::service::workers(d)).await?;
    apply(ctx, &ns, &resources::pdb::build(d)).await?;
    if let Some(policy) = &ctx.defaults.network_policy {
        apply(ctx, &ns, &resources::network_policy::build(d, policy)).await?;
    }
    apply(ctx, &ns, &resources::workers::build(d).map_err(build)?).await?;
    apply(ctx, &ns, &resources::coordinator::build(d).map_err(build)?).await?;
    Ok(())
}

/// Creates the coordinator's REST token Secret if it does not exist; an existing one
/// is never changed (the running engine holds its token).
async fn ensure_rest_token(ctx: &Context, ns: &str, d: &Blueprint<'_>) -> Result<(), Error> {
    let api = Api::<Secret>::namespaced(ctx.client.clone(), ns);
    let name = resources::engine_token::secret_name(&d.instance());
    if api.get_opt(&name).await?.is_some() {
        return Ok(());
    }
    let token = resources::engine_token::generate()
        .map_err(|e| Error::Internal(format!("cannot generate the REST token of {ns}/{name}: {e}")))?;
    match api.create(&PostParams::default(), &resources::engine_token::build(d, &token)).await {
        Ok(_) => Ok(()),
        // Created meanwhile (another reconcile): that one stands.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Adds the finalizer if it is missing (a JSON patch guarded by a test of the list).
pub async fn ensure_finalizer(ctx: &Context, job: &StreamJob) -> Result<bool, Error> {
    if job.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(false);
    }
    ctx.leadership.check("adding the finalizer")?;
    let api = Api::<StreamJob>::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let patch = match job.meta().finalizers.as_ref() {
        None => serde_json::json!([{"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}]),
        Some(list) => serde_json::json!([
            {"op": "test", "path": "/metadata/finalizers", "value": list},
            {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}
        ]),
    };
    let patch: json_patch::Patch = serde_json::from_value(patch).map_err(|e| Error::Internal(e.to_string()))?;
    api.patch(&job.name_any(), &PatchParams::default(), &Patch::Json::<()>(patch)).await?;
    Ok(true)
}

async fn remove_finalizer(ctx: &Context, job: &StreamJob) -> Result<(), Error> {
    let Some(idx) = job.finalizers().iter().position(|f| f == FINALIZER) else { return Ok(()) };
    ctx.leadership.check("removing the finalizer")?;
    let api = Api::<StreamJob>::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let path = format!("/metadata/finalizers/{idx}");
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "test", "path": path, "value": FINALIZER},
        {"op": "remove", "path": path}
    ]))
    .map_err(|e| Error::Internal(e.to_string()))?;
    ignore_missing(api.patch(&job.name_any(), &PatchParams::default(), &Patch::Json::<()>(patch)).await)
}

/// Writes the status through the status subresource with its own field manager.
///
/// The write carries the resourceVersion of the object it was planned from: a status
/// changed since (by another reconciler, or read from a stale cache) makes it fail with
/// [`Error::Conflict`] instead of overwriting the write-ahead record, and the caller
/// plans again from fresh state.
pub async fn patch_status(ctx: &Context, job: &StreamJob, status: &StreamJobStatus) -> Result<(), Error> {
    let (ns, name) = (job.namespace().unwrap_or_default(), job.name_any());
    ctx.leadership.check(&format!("the status write of job {ns}/{name}"))?;
    let api = Api::<StreamJob>::namespaced(ctx.client.clone(), &ns);
    let body = status_body(job.resource_version().as_deref(), status);
    match api.patch_status(&name, &PatchParams::apply(STATUS_MANAGER).force(), &Patch::Apply(&body)).await {
        Ok(_) => {
            tracing::debug!("status written");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Err(Error::Conflict(format!(
            "the status of job {ns}/{name} changed since resourceVersion {}: {}",
            job.resource_version().unwrap_or_default(),
            s.message
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The field manager of status writes.
pub const STATUS_MANAGER: &str = "sluice-operator/status";

/// The server-side apply body of a status write, guarded by `resource_version`.
pub fn status_body(resource_version: Option<&str>, status: &StreamJobStatus) -> serde_json::Value {
    let mut body = serde_json::json!({
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "StreamJob",
        "status": status,
    });
    if let Some(rv) = resource_version {
        body["metadata"] = serde_json::json!({"resourceVersion": rv});
    }
    body
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_status_write_carries_the_resource_version_it_was_planned_from() {
        let st = StreamJobStatus { deployment: 3, ..Default::default() };
        let body = status_body(Some("4711"), &st);
        assert_eq!(body["metadata"]["resourceVersion"], "4711");
        assert_eq!(body["status"]["deployment"], 3);
        assert_eq!(body["kind"], "StreamJob");
        assert!(status_body(None, &st).get("metadata").is_none());
    }
}
