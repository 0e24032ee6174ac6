//! The StreamSavepoint controller: a one-off savepoint of a StreamJob, with
//! retries and back-off, and (with `disposeOnDelete`) deletion of its data.
//!
//! Each attempt uses its own trigger id, recorded in the status before the engine is
//! called, so a retried call is idempotent and a failed savepoint is never mistaken for
//! the next attempt's. The id carries both objects' uids
//! (`<job>-<job uid8>-ssp-<name>-<uid8>-<attempt>`, see [`crate::trigger_id`]): a
//! StreamSavepoint re-created with its name, or one of a re-created job, or of a job of
//! the same name elsewhere sharing the directory, is never handed another's savepoint.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};

use sluice_api::layout;
use sluice_api::rest::{SavepointRequest, SnapshotStatus};

use crate::context::Context;
use crate::crd::{DeployedSpec, SavepointPhase, StreamJob, StreamSavepoint, StreamSavepointStatus};
use crate::error::Error;
use crate::storage;

pub const FINALIZER: &str = "sluice.dev/savepoint-data";
/// Attempts before a StreamSavepoint is Failed.
pub const MAX_ATTEMPTS: i32 = 5;

fn backoff(attempts: i32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(u32::try_from(attempts.clamp(0, 6)).unwrap_or(6)))
}

pub async fn reconcile(ssp: Arc<StreamSavepoint>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    ctx.leadership.check("the StreamSavepoint reconcile")?;
    let ns = ssp.namespace().unwrap_or_default();
    let api = Api::<StreamSavepoint>::namespaced(ctx.client.clone(), &ns);
    let name = ssp.name_any();
    let status = ssp.status.clone().unwrap_or_default();
    let jobs = Api::<StreamJob>::namespaced(ctx.client.clone(), &ns);
    let job = jobs.get_opt(&ssp.spec.job_ref.name).await?;
    let job_spec = job
        .as_ref()
        .map(|j| j.status.as_ref().and_then(|s| s.reconciled_spec.as_ref()).map_or(&j.spec, DeployedSpec::spec));

    if ssp.meta().deletion_timestamp.is_some() {
        if !ssp.finalizers().iter().any(|f| f == FINALIZER) {
            return Ok(Requeue::await_change());
        }
        let s3 = status.s3.clone().or_else(|| job_spec.and_then(|s| s.s3.clone()));
        if let Some(location) = &status.location {
            let roots = disposal_roots(&ssp, job_spec);
            if !storage::may_dispose(location, &roots) {
                // The engine reported the location; only its own directory is ever deleted.
                let why = format!(
                    "disposeOnDelete: {location} is not under the savepoint's directory ({}); its data is kept",
                    if roots.is_empty() { "unknown".into() } else { roots.join(", ") }
                );
                tracing::warn!(savepoint = %name, "{why}");
                warn(&ctx, &ssp, "DisposeRefused", why).await;
            } else {
                // Deletion never waits on storage: a failure is logged and the finalizer still goes.
                let disposed = match storage::access_s3(&ctx.client, &ns, s3.as_ref(), ctx.s3_endpoint.as_deref()).await
                {
                    Ok(access) => storage::dispose(&access, location, &roots).await,
                    Err(e) => Err(e),
                };
                match disposed {
                    Ok(()) => {
                        tracing::info!(savepoint = %name, %location, "deleted the savepoint data (disposeOnDelete)")
                    }
                    Err(e) => {
                        tracing::warn!(savepoint = %name, %location, error = %e, "cannot delete the savepoint data; the finalizer is removed anyway")
                    }
                }
            }
        }
        let keep: Vec<String> = ssp.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
        api.patch(&name, &PatchParams::default(), &Patch::Merge(serde_json::json!({"metadata": {"finalizers": keep}})))
            .await?;
        return Ok(Requeue::await_change());
    }
    if ssp.spec.dispose_on_delete && !ssp.finalizers().iter().any(|f| f == FINALIZER) {
        let mut list = ssp.finalizers().to_vec();
        list.push(FINALIZER.into());
        api.patch(&name, &PatchParams::default(), &Patch::Merge(serde_json::json!({"metadata": {"finalizers": list}})))
            .await?;
        return Ok(Requeue::requeue(Duration::from_millis(200)));
    }
    if matches!(status.phase, SavepointPhase::Completed | SavepointPhase::Failed) {
        return Ok(Requeue::await_change());
    }

    let mut next = status.clone();
    let requeue = step(&ctx, &ssp, job.as_ref(), job_spec, &mut next).await;
    if next != status {
        ctx.leadership.check("the StreamSavepoint status write")?;
        // Guarded by the resourceVersion it was planned from, as the StreamJob's status.
        let body = serde_json::json!({
            "apiVersion": "sluice.dev/v1alpha1",
            "kind": "StreamSavepoint",
            "metadata": {"resourceVersion": ssp.resource_version()},
            "status": next
        });
        match api.patch_status(&name, &PatchParams::apply("sluice-operator/status").force(), &Patch::Apply(&body)).await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {
                return Err(Error::Conflict(format!(
                    "the status of StreamSavepoint {ns}/{name} changed: {}",
                    s.message
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(requeue)
}

/// Where `disposeOnDelete` may delete: the directory the savepoint was taken into (in
/// the status since it was triggered), else its own `spec.directory`, else (for one
/// recorded before the status kept it) the job's savepoint directory.
fn disposal_roots(ssp: &StreamSavepoint, job: Option<&crate::crd::StreamJobSpec>) -> Vec<String> {
    let recorded = ssp.status.as_ref().and_then(|s| s.directory.clone());
    let dir =
        recorded.or_else(|| ssp.spec.directory.clone()).or_else(|| job.and_then(|j| j.savepoints.directory.clone()));
    dir.into_iter().collect()
}

/// Publishes a Warning Event about the StreamSavepoint; a report, so a failure is only logged.
async fn warn(ctx: &Context, ssp: &StreamSavepoint, reason: &str, message: String) {
    let ev = kube::runtime::events::Event {
        type_: kube::runtime::events::EventType::Warning,
        reason: reason.into(),
        note: Some(message.chars().take(1000).collect()),
        action: "Dispose".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &ssp.object_ref(&())).await {
        tracing::warn!(error = %e, "cannot publish an Event");
    }
}

/// One step of the state machine; the caller patches `st`.
async fn step(
    ctx: &Context,
    ssp: &StreamSavepoint,
    job: Option<&StreamJob>,
    spec: Option<&crate::crd::StreamJobSpec>,
    st: &mut StreamSavepointStatus,
) -> Requeue {
    let ns = ssp.namespace().unwrap_or_default();
    let job_name = &ssp.spec.job_ref.name;
    let fail_or_retry = |st: &mut StreamSavepointStatus, error: String| {
        st.error = Some(error);
        if st.attempts >= MAX_ATTEMPTS {
            st.phase = SavepointPhase::Failed;
            Requeue::await_change()
        } else {
            st.phase = SavepointPhase::Pending;
            st.trigger_id = None;
            Requeue::requeue(backoff(st.attempts))
        }
    };
    let (Some(job), Some(spec)) = (job, spec) else {
        st.attempts += 1;
        return fail_or_retry(st, format!("StreamJob {ns}/{job_name} not found"));
    };
    let Some(directory) = ssp.spec.directory.clone().or_else(|| spec.savepoints.directory.clone()) else {
        st.phase = SavepointPhase::Failed;
        st.error =
            Some(format!("no directory: set spec.directory or the StreamJob's savepoints.directory ({ns}/{job_name})"));
        return Requeue::await_change();
    };
    // The engine takes savepoints only where its configuration allows (its savepoint
    // and checkpoint locations, and `sluice.savepoint.allowed-directories`): say so here.
    let allowed: Vec<String> = [spec.savepoints.directory.clone(), spec.checkpointing.storage.clone()]
        .into_iter()
        .flatten()
        .chain(
            spec.config
                .get(layout::ALLOWED_SAVEPOINT_DIRS)
                .into_iter()
                .flat_map(|v| v.split(',').map(str::trim).filter(|d| !d.is_empty()).map(str::to_string)),
        )
        .collect();
    if let Err(e) = layout::target_allowed(&directory, &allowed) {
        st.phase = SavepointPhase::Failed;
        st.error = Some(format!("StreamJob {ns}/{job_name}: directory {e}"));
        return Requeue::await_change();
    }
    // The color that runs the job (blue-green): its coordinator takes the savepoint.
    let color = job.status.as_ref().and_then(|s| s.active_color).unwrap_or_default();
    let instance = crate::resources::instance(job_name, color);
    match (st.phase, st.trigger_id.clone()) {
        (SavepointPhase::InProgress, Some(id)) => match ctx.engine.savepoint(&ns, &instance, &id).await {
            Ok(Some(s)) if s.status == SnapshotStatus::Completed => {
                st.phase = SavepointPhase::Completed;
                st.location = s.location;
                st.s3 = spec.s3.clone();
                st.error = None;
                st.completion_time = Some(
                    jiff::Timestamp::now()
                        .round(jiff::Unit::Second)
                        .unwrap_or_else(|_| jiff::Timestamp::now())
                        .to_string(),
                );
                Requeue::await_change()
            }
            Ok(Some(s)) if s.status == SnapshotStatus::Failed => {
                fail_or_retry(st, format!("the savepoint failed: {}", s.error.unwrap_or_default()))
            }
            Ok(Some(_)) => Requeue::requeue(Duration::from_secs(1)),
            Ok(None) => {
                // The coordinator restarted: the savepoint may have completed before.
                let location = layout::savepoint_location(&directory, &id);
                let found = match storage::access(&ctx.client, &ns, spec, ctx.s3_endpoint.as_deref()).await {
                    Ok(a) => storage::savepoint_exists(&a, &location).await.unwrap_or(false),
                    Err(_) => false,
                };
                if found {
                    st.phase = SavepointPhase::Completed;
                    st.location = Some(location);
                    st.s3 = spec.s3.clone();
                    Requeue::await_change()
                } else {
                    fail_or_retry(st, "the engine restarted and lost the savepoint".into())
                }
            }
            Err(e) => fail_or_retry(st, e.to_string()),
        },
        _ => {
            st.attempts += 1;
            // Objects read from the API server always have a uid.
            let (Some(job_uid), Some(uid)) = (job.meta().uid.as_deref(), ssp.meta().uid.as_deref()) else {
                return fail_or_retry(st, format!("StreamJob {ns}/{job_name} or this StreamSavepoint has no uid"));
            };
            let id = crate::trigger_id::stream_savepoint(job_name, job_uid, &ssp.name_any(), uid, st.attempts);
            let req = SavepointRequest {
                trigger_id: Some(id.clone()),
                target_directory: Some(directory),
                stop: false,
                drain: false,
            };
            if let Err(e) = ctx.leadership.check("a savepoint trigger") {
                return fail_or_retry(st, e.to_string());
            }
            let directory = req.target_directory.clone();
            match ctx.engine.trigger_savepoint(&ns, &instance, &req).await {
                Ok(()) => {
                    st.phase = SavepointPhase::InProgress;
                    st.trigger_id = Some(id);
                    st.directory = directory;
                    st.error = None;
                    Requeue::requeue(Duration::from_secs(1))
                }
                Err(e) => fail_or_retry(st, e.to_string()),
            }
        }
    }
}

fn error_policy(ssp: Arc<StreamSavepoint>, error: &Error, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(savepoint = %ssp.name_any(), namespace = %ssp.namespace().unwrap_or_default(), error = %error, "reconcile failed; retrying");
    Requeue::requeue(Duration::from_secs(5))
}

pub async fn run(ctx: Arc<Context>, namespaces: &[String]) {
    let apis: Vec<Api<StreamSavepoint>> = if namespaces.is_empty() {
        vec![Api::all(ctx.client.clone())]
    } else {
        namespaces.iter().map(|ns| Api::namespaced(ctx.client.clone(), ns)).collect()
    };
    let runs = apis.into_iter().map(|api| {
        let ctx = ctx.clone();
        async move {
            Controller::new(api, watcher::Config::default())
                .shutdown_on_signal()
                .run(reconcile, error_policy, ctx)
                .for_each(|_| async {})
                .await;
        }
    });
    futures::future::join_all(runs).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn ssp(spec_dir: Option<&str>, recorded: Option<&str>) -> StreamSavepoint {
        let mut s: StreamSavepoint = serde_json::from_value(serde_json::json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "StreamSavepoint",
            "metadata": {"name": "s"}, "spec": {"jobRef": {"name": "j"}, "disposeOnDelete": true}
        }))
        .unwrap();
        s.spec.directory = spec_dir.map(str::to_string);
        s.status = Some(StreamSavepointStatus { directory: recorded.map(str::to_string), ..Default::default() });
        s
    }

    #[test]
    fn dispose_on_delete_deletes_only_under_the_savepoints_directory() {
        let mut job: crate::crd::StreamJobSpec = serde_json::from_value(serde_json::json!({"sql": "x"})).unwrap();
        job.savepoints.directory = Some("s3://b/job-sp".into());
        // The directory recorded when it was triggered wins, then its own, then the job's.
        assert_eq!(disposal_roots(&ssp(Some("s3://b/own"), Some("s3://b/then")), Some(&job)), vec!["s3://b/then"]);
        assert_eq!(disposal_roots(&ssp(Some("s3://b/own"), None), Some(&job)), vec!["s3://b/own"]);
        assert_eq!(disposal_roots(&ssp(None, None), Some(&job)), vec!["s3://b/job-sp"]);
        assert!(disposal_roots(&ssp(None, None), None).is_empty());
        let roots = disposal_roots(&ssp(None, Some("s3://b/sp")), None);
        assert!(storage::may_dispose("s3://b/sp/savepoint-s-1", &roots));
        for bad in ["s3://b/sp2/savepoint-s-1", "s3://b/sp", "s3://b/sp/../other", "s3://other/sp/x"] {
            assert!(!storage::may_dispose(bad, &roots), "{bad}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(super::backoff(1), std::time::Duration::from_secs(2));
        assert_eq!(super::backoff(3), std::time::Duration::from_secs(8));
        assert_eq!(super::backoff(40), std::time::Duration::from_secs(64));
    }
}
