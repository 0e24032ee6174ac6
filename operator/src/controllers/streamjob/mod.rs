//! The StreamJob reconciler: observe → validate → plan → apply → status.
//!
//! [`plan`] is pure; this module runs it: it observes, patches the planned
//! status first (the write-ahead log), then runs the planned actions and
//! publishes the Events.

pub mod apply;
pub mod autoscale;
pub mod data_policy;
pub mod observe;
pub mod plan;
pub mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};

use crate::autoscaler;
use crate::context::{Caches, Context, effective_spec};
use crate::crd::{StreamJob, StreamJobStatus, UpgradeStep};
use crate::error::Error;

/// The finalizer that lets a deletion take a savepoint first.
pub const FINALIZER: &str = "sluice.dev/finalizer";

/// Reconciles one StreamJob.
pub async fn reconcile(job: Arc<StreamJob>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let span = tracing::info_span!("reconcile", job = %name, namespace = %ns);
    let started = Instant::now();
    let (result, engine_spent) =
        crate::metrics::with_engine_clock(tracing::Instrument::instrument(reconcile_fresh(job, &ctx), span)).await;
    let own = started.elapsed().saturating_sub(engine_spent);
    ctx.metrics.reconciled(own, result.as_ref().err());
    tracing::debug!(
        job = %name,
        namespace = %ns,
        own_us = u64::try_from(own.as_micros()).unwrap_or(u64::MAX),
        engine_us = u64::try_from(engine_spent.as_micros()).unwrap_or(u64::MAX),
        "reconciled"
    );
    result
}

/// Reconciles, and plans again from the API server's copy when the status write finds
/// that the object it planned from is stale (another writer, or a lagging cache).
async fn reconcile_fresh(job: Arc<StreamJob>, ctx: &Context) -> Result<Requeue, Error> {
    const ATTEMPTS: u32 = 3;
    let mut job = job;
    let mut attempt = 1;
    loop {
        match reconcile_inner(&job, ctx).await {
            Err(Error::Conflict(why)) if attempt < ATTEMPTS => {
                tracing::debug!(%why, "planning again from the API server's copy");
                let api = Api::<StreamJob>::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
                match api.get_opt(&job.name_any()).await? {
                    Some(fresh) => job = Arc::new(fresh),
                    None => return Ok(Requeue::await_change()),
                }
                attempt += 1;
            }
            r => return r,
        }
    }
}

async fn reconcile_inner(job: &StreamJob, ctx: &Context) -> Result<Requeue, Error> {
    // A process that lost the Lease (its renewal hung, or it was paused) does nothing.
    ctx.leadership.check("the reconcile")?;
    tracing::debug!("reconciling");
    let deleting = job.meta().deletion_timestamp.is_some();
    if !deleting && apply::ensure_finalizer(ctx, job).await? {
        // The patch triggers the next reconcile.
        return Ok(Requeue::requeue(Duration::from_secs(1)));
    }
    if deleting && !job.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Requeue::await_change());
    }
    let observed = job.status.clone().unwrap_or_default();
    // Every object the API server returns has one; trigger ids are built on it.
    let uid =
        job.meta().uid.as_deref().ok_or_else(|| Error::Internal(format!("StreamJob {} has no uid", job.name_any())))?;
    let color = observe::active_color(job);
    let mut children = observe::children(ctx, job, color, true).await?;
    let choosing =
        observed.upgrade.as_ref().is_some_and(|u| matches!(u.step, UpgradeStep::Fencing | UpgradeStep::Stopped));
    if choosing && !children.engine_objects && children.pods == 0 {
        // The old pods are gone by the cache: confirm it with the API server before a
        // restore point or a new deployment is chosen on it.
        children = observe::children(ctx, job, color, false).await?;
    }
    // Once an upgrade has stopped the job, its engine is being removed: asking a
    // coordinator that is going away would only wait for the REST client's timeouts.
    let removing = observed.upgrade.as_ref().is_some_and(|u| u.step == UpgradeStep::Stopped);
    let engine = if removing {
        plan::EngineView::Down("the stopped deployment's engine is being removed".into())
    } else {
        observe::engine(ctx, job, color, &children).await
    };
    // The other color: during a blue-green cutover, and to remove what an interrupted one left.
    let other_children = observe::children(ctx, job, color.other(), true).await?;
    let other_engine = if observed.cutover.is_some() {
        observe::engine(ctx, job, color.other(), &other_children).await
    } else {
        plan::EngineView::Down("no cutover in flight".into())
    };
    // The SQL as deployed (from `sqlConfigMapRef` too), read once: the autoscaler's
    // basis hashes it, and validation compiles it.
    let sql = validate::resolve_sql(ctx, job, &job.spec).await;
    // The autoscaler first: what it holds in force is part of the spec acted on.
    let (scaler, scaler_events) = autoscale::observe(ctx, job, &observed, &engine, color, sql.as_deref().ok()).await;
    // The scale subresource's selector: what an HPA (which the autoscaler refuses beside it) reads.
    let selector = Some(format!("sluice.dev/job={}", job.name_any()));
    let ui = Some(engine_ui(&job.namespace().unwrap_or_default(), &job.name_any(), color));
    let status = StreamJobStatus { autoscaler: scaler, selector, ui, ..observed.clone() };
    let spec = effective_spec(&job.spec, &status, &ctx.defaults);
    let validated = match sql {
        Ok(sql) => validate::validate(ctx, job, &spec, sql).await,
        Err(e) => Err(e),
    };
    let validated = match validated {
        Err(Error::InvalidSpec(invalid)) => Err(invalid),
        other => Ok(other?),
    };
    let trigger = observe::trigger(ctx, job, &engine, &other_engine).await?;
    let input = plan::Input {
        name: job.meta().name.as_deref().unwrap_or_default(),
        uid,
        now: jiff::Timestamp::now(),
        generation: job.meta().generation.unwrap_or_default(),
        deleting,
        spec: &spec,
        validated,
        status: &status,
        engine,
        trigger,
        children,
        other_children,
        other_engine,
    };
    let mut planned = plan::plan(&input);
    planned.events.extend(scaler_events);
    let (policy, policy_events) = data_policy::record(&planned.status, &input.engine, input.now);
    planned.status.data_policy = policy;
    planned.events.extend(policy_events);
    if planned.status.autoscaler.is_some() {
        // Samples are due every SAMPLE_INTERVAL_SECS.
        let every = Duration::from_secs(autoscaler::SAMPLE_INTERVAL_SECS as u64);
        planned.requeue = planned.requeue.min(every);
    }
    // The status write is also the precondition of every action and Event: one planned
    // from a stale object fails there with a conflict, before anything is done.
    if planned.status != observed || !planned.actions.is_empty() || !planned.events.is_empty() {
        apply::patch_status(ctx, job, &planned.status).await?;
        fault_points(&planned.status);
    }
    let key = format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any());
    ctx.metrics.phase(&key, Some(planned.status.phase));
    ctx.metrics.autoscaler(&key, planned.status.autoscaler.as_ref());
    // Transition durations: an upgrade, restart or rollback ends when its record is
    // cleared by the new deployment; a suspend when the phase becomes Suspended.
    let ended = match (&observed.upgrade, &planned.status.upgrade) {
        (Some(old), None) if old.kind != crate::crd::UpgradeKind::Suspend => Some(old),
        (_, Some(new))
            if new.kind == crate::crd::UpgradeKind::Suspend
                && planned.status.phase == crate::crd::Phase::Suspended
                && observed.phase != crate::crd::Phase::Suspended =>
        {
            Some(new)
        }
        _ => None,
    };
    if let Some(rec) = ended
        && let Ok(t) = rec.started.parse::<jiff::Timestamp>()
    {
        ctx.metrics.transition(rec.kind, jiff::Timestamp::now().duration_since(t).as_secs_f64());
    }
    publish(ctx, job, &planned.events).await;
    for action in &planned.actions {
        apply::run(ctx, job, &planned.status, action).await?;
    }
    if planned.actions.contains(&plan::Action::RemoveFinalizer) {
        ctx.metrics.phase(&key, None);
        ctx.metrics.autoscaler(&key, None);
        return Ok(Requeue::await_change());
    }
    Ok(Requeue::requeue(planned.requeue))
}

async fn publish(ctx: &Context, job: &StreamJob, events: &[plan::PlannedEvent]) {
    let reference = job.object_ref(&());
    for e in events {
        ctx.metrics.savepoint_event(&e.reason);
        if e.warning {
            tracing::warn!(reason = %e.reason, "{}", e.message);
        } else {
            tracing::info!(reason = %e.reason, "{}", e.message);
        }
        let note: String = e.message.chars().take(1000).collect();
        let ev = KubeEvent {
            type_: if e.warning { EventType::Warning } else { EventType::Normal },
            reason: e.reason.clone(),
            // kube's Recorder folds Events of the same reason and action into one series
            // that keeps the first note: a second upgrade's or policy's message would be
            // lost. The note's hash in the action keeps different messages apart, while
            // the same message repeated is still one series.
            action: format!("Reconcile/{:08x}", sluice_api::hash::fnv1a(note.as_bytes()) & 0xffff_ffff),
            note: Some(note),
            secondary: None,
        };
        // Published in the background: an Event is a report, not a step of the reconcile.
        let (recorder, reference) = (ctx.recorder.clone(), reference.clone());
        tokio::spawn(async move {
            if let Err(err) = recorder.publish(&ev, &reference).await {
                tracing::warn!(error = %err, "cannot publish an Event");
            }
        });
    }
}

fn error_policy(job: Arc<StreamJob>, error: &Error, _ctx: Arc<Context>) -> Requeue {
    if let Error::NotLeader(what) = error {
        tracing::warn!(job = %job.name_any(), "not the leader any more: {what} refused");
        return Requeue::await_change();
    }
    tracing::warn!(job = %job.name_any(), namespace = %job.namespace().unwrap_or_default(), error = %error, "reconcile failed; retrying");
    Requeue::requeue(Duration::from_secs(5))
}

fn api<K>(client: &kube::Client, scope: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match scope {
        None => Api::all(client.clone()),
        Some(ns) => Api::namespaced(client.clone(), ns),
    }
}

/// A reflected watch: the store it fills and the stream of touched objects.
fn reflected<K>(
    api: Api<K>,
    cfg: watcher::Config,
) -> (Store<K>, impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, cfg)).default_backoff().touched_objects();
    (reader, stream)
}

/// Runs the StreamJob controller over `namespaces` (all when empty) until the stream ends.
pub async fn run(ctx: Arc<Context>, namespaces: &[String]) {
    let scopes: Vec<Option<String>> =
        if namespaces.is_empty() { vec![None] } else { namespaces.iter().cloned().map(Some).collect() };
    let mut all = Vec::new();
    for scope in scopes {
        let client = &ctx.client;
        let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=sluice-operator");
        let (deployments, dep_stream) = reflected(api::<Deployment>(client, &scope), owned.clone());
        let (stateful_sets, sts_stream) = reflected(api::<StatefulSet>(client, &scope), owned.clone());
        let (config_maps, cm_stream) = reflected(api::<ConfigMap>(client, &scope), owned);
        let (pods, pod_stream) =
            reflected(api::<Pod>(client, &scope), watcher::Config::default().labels("sluice.dev/job,sluice.dev/role"));
        let (hpas, hpa_stream) = reflected(api::<HorizontalPodAutoscaler>(client, &scope), watcher::Config::default());
        if let Ok(mut c) = ctx.caches.write() {
            c.push((scope.clone(), Caches { deployments, stateful_sets, config_maps, pods, hpas }));
        }
        let jobs = api::<StreamJob>(client, &scope);
        let ctx = ctx.clone();
        all.push(async move {
            Controller::new(jobs, watcher::Config::default())
                .owns_stream(dep_stream)
                .owns_stream(sts_stream)
                .owns_stream(cm_stream)
                // Engine pods carry no ownerReference to the job: map them by label, so that
                // an upgrade goes on the moment the old pods are gone.
                .watches_stream(pod_stream, |pod: Pod| {
                    let ns = pod.namespace();
                    pod.labels()
                        .get("sluice.dev/job")
                        .map(|job| ObjectRef::<StreamJob>::new(job).within(&ns.unwrap_or_default()))
                })
                // An HPA that targets a job, created or deleted, switches its autoscaler off
                // or on at once.
                .watches_stream(hpa_stream, |hpa: HorizontalPodAutoscaler| {
                    let ns = hpa.namespace().unwrap_or_default();
                    autoscale::scaled_job(&hpa).map(|job| ObjectRef::<StreamJob>::new(job).within(&ns))
                })
                .shutdown_on_signal()
                .run(reconcile, error_policy, ctx)
                .for_each(|r| async move {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "controller");
                    }
                })
                .await;
        });
    }
    futures::future::join_all(all).await;
}

/// Fault points between a written record and its actions, the worst moment for
/// the operator to die: `operator.upgrade.<step>` and `operator.cutover.<step>`,
/// the step in lower case (`operator.cutover.rollingback`). Tests set them
/// through `SLUICE_FAILPOINTS`; `exit` there is a `kill -9` after the write.
fn fault_points(status: &crate::crd::StreamJobStatus) {
    if let Some(u) = &status.upgrade {
        sluice_api::failpoint::hit(&format!("operator.upgrade.{:?}", u.step).to_lowercase());
    }
    if let Some(c) = &status.cutover {
        sluice_api::failpoint::hit(&format!("operator.cutover.{:?}", c.step).to_lowercase());
    }
}

/// How to open the web UI of the color that runs the job: its coordinator
/// Service's REST port, forwarded or through the API server's service proxy.
fn engine_ui(
    namespace: &str,
    job: &str,
    color: crate::crd::stream_job_status::Color,
) -> crate::crd::stream_job_status::EngineUi {
    use crate::resources::REST_PORT;
    let svc = format!("{}-coordinator", crate::resources::instance(job, color));
    crate::crd::stream_job_status::EngineUi {
        port_forward: format!("kubectl -n {namespace} port-forward service/{svc} {REST_PORT}"),
        url: format!("http://localhost:{REST_PORT}/"),
        proxy_path: format!("/api/v1/namespaces/{namespace}/services/{svc}:{REST_PORT}/proxy/"),
    }
}
