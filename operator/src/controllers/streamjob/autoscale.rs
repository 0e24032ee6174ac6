//! The autoscaler's I/O in a reconcile: it checks that no HorizontalPodAutoscaler
//! also scales the job (in the watch cache of HPAs, whose changes reconcile the
//! job they target), samples the running job's metrics every
//! [`SAMPLE_INTERVAL_SECS`], and runs the pure [`crate::autoscaler`] on
//! `status.autoscaler`. What it decides reaches the deployment through the
//! effective spec ([`crate::context::effective_spec`]), and the planner rolls it
//! out as any other change: by blue-green or by a savepoint upgrade.

use futures::FutureExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::ResourceExt;
use sluice_api::rest::{Job, JobMetrics, JobStatus};

use super::plan::{EngineView, PlannedEvent};
use crate::autoscaler::{self, SAMPLE_INTERVAL_SECS, Settings, Topology, VertexInfo};
use crate::context::Context;
use crate::crd::{
    AutoscalerStatus, Color, MetricSample, Phase, StreamJob, StreamJobSpec, StreamJobStatus, VertexSample,
};
use crate::resources;

/// `status.autoscaler` after this reconcile (`None` when the autoscaler is off), and
/// the Events of its decisions. `sql` is the job's resolved SQL (`spec.sql` or the
/// text `sqlConfigMapRef` names); while it cannot be resolved the status stays as
/// it is (validation reports why).
pub async fn observe(
    ctx: &Context,
    job: &StreamJob,
    status: &StreamJobStatus,
    engine: &EngineView,
    color: Color,
    sql: Option<&str>,
) -> (Option<AutoscalerStatus>, Vec<PlannedEvent>) {
    let spec = &job.spec;
    if !spec.autoscaler.enabled {
        return (None, vec![]);
    }
    let Some(sql) = sql else { return (status.autoscaler.clone(), vec![]) };
    let basis = basis(spec, sql);
    let mut a = autoscaler::for_basis(status.autoscaler.as_ref(), &basis);
    let now = jiff::Timestamp::now().as_second();
    match hpa_conflict(ctx, job) {
        Some(blocked) => a.blocked = blocked,
        None => {
            a.waiting = Some("the watch of HorizontalPodAutoscalers has not listed them yet".into());
            return (Some(a), vec![]);
        }
    }
    if a.blocked.is_some() {
        a.waiting = None;
        return (Some(a), vec![]);
    }
    let steady = status.phase == Phase::Stable && status.upgrade.is_none() && status.cutover.is_none();
    let EngineView::Up(j) = engine else { return (Some(a), vec![]) };
    if !steady || j.state != JobStatus::Running || now - a.sampled_at < SAMPLE_INTERVAL_SECS {
        return (Some(a), vec![]);
    }
    let ns = job.namespace().unwrap_or_default();
    let metrics = match ctx.engine.metrics(&ns, &resources::instance(&job.name_any(), color)).await {
        Ok(m) => m,
        Err(e) => {
            a.waiting = Some(format!("cannot read the job's metrics: {e}"));
            return (Some(a), vec![]);
        }
    };
    a.sampled_at = now;
    let settings = Settings::new(&spec.autoscaler);
    let run = format!("{}/{}", status.deployment, j.restarts);
    autoscaler::record(&mut a, &settings, &run, sample(&metrics, now));
    let out = autoscaler::evaluate(&topology(j), &settings, &mut a, now);
    a.waiting = out.waiting;
    let events = out
        .events
        .into_iter()
        .map(|(reason, message)| PlannedEvent {
            warning: reason == "ScalingIneffective",
            reason: reason.into(),
            message,
        })
        .collect();
    (Some(a), events)
}

/// The autoscaler's basis for `spec` whose SQL resolves to `sql`: the text itself,
/// however it is given, so that an edit of the ConfigMap that `sqlConfigMapRef`
/// names starts the autoscaler over as an edit of `spec.sql` does.
pub fn basis(spec: &StreamJobSpec, sql: &str) -> String {
    autoscaler::basis(sql, spec.parallelism, spec.max_parallelism)
}

/// The running job's graph, as the autoscaler reads it.
pub fn topology(j: &Job) -> Topology {
    Topology {
        vertices: j
            .vertices
            .iter()
            .map(|v| VertexInfo {
                id: v.id,
                uid: v.uid.clone(),
                name: v.name.clone(),
                parallelism: v.parallelism,
                inputs: v.inputs.iter().map(|i| i.vertex).collect(),
                keyed: v.keyed,
                splits: v.splits,
                single: v.inputs.iter().any(|i| i.partitioning == "GLOBAL"),
            })
            .collect(),
        max_parallelism: j.max_parallelism.max(1),
    }
}

/// One metric sample, as status keeps it.
pub fn sample(m: &JobMetrics, now: i64) -> MetricSample {
    MetricSample {
        time: now,
        vertices: m
            .vertices
            .iter()
            .map(|v| VertexSample {
                uid: v.uid.clone(),
                parallelism: v.parallelism as i32,
                busy: round1(v.busy_time_ms_per_second),
                backpressured: round1(v.back_pressured_time_ms_per_second),
                records_in: v.records_in,
                records_out: v.records_out,
                lag: v.lag,
            })
            .collect(),
    }
}

/// The StreamJob an HPA scales, if it scales one.
pub fn scaled_job(hpa: &HorizontalPodAutoscaler) -> Option<&String> {
    let target = &hpa.spec.as_ref()?.scale_target_ref;
    let ours = target.kind == "StreamJob" && target.api_version.as_deref().is_none_or(|v| v.starts_with("sluice.dev/"));
    ours.then_some(&target.name)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A HorizontalPodAutoscaler that targets this StreamJob, as the reason the built-in
/// autoscaler stays off; `None` while the watch cache of HPAs has not listed them.
fn hpa_conflict(ctx: &Context, job: &StreamJob) -> Option<Option<String>> {
    let ns = job.namespace().unwrap_or_default();
    let hpas = ctx.hpas(&ns)?;
    hpas.wait_until_ready().now_or_never()?.ok()?;
    let name = job.name_any();
    let found =
        hpas.state().into_iter().find(|h| h.namespace().as_deref() == Some(&ns) && scaled_job(h) == Some(&name));
    Some(found.map(|h| {
        format!(
            "HorizontalPodAutoscaler `{}` also scales this StreamJob: spec.autoscaler does nothing until one of \
             them is removed (both would drive the same parallelism)",
            h.name_any()
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ConfigMapKeyRef;
    use crate::resources::testing::spec;

    #[test]
    fn the_basis_hashes_the_resolved_sql_however_it_is_given() {
        let inline = spec();
        let mut by_ref = spec();
        by_ref.sql = None;
        by_ref.sql_config_map_ref = Some(ConfigMapKeyRef { name: "job-sql".into(), key: "job.sql".into() });
        let (v1, v2) = ("INSERT INTO out SELECT x FROM src;", "INSERT INTO out SELECT x + 1 FROM src;");
        // An edit of the ConfigMap's text changes the basis, though the ref is the same.
        assert_ne!(basis(&by_ref, v1), basis(&by_ref, v2));
        // The same text is the same basis, inline or through a ConfigMap (of any name).
        assert_eq!(basis(&by_ref, v1), basis(&inline, v1));
        let mut renamed = by_ref.clone();
        renamed.sql_config_map_ref = Some(ConfigMapKeyRef { name: "other".into(), key: "other.sql".into() });
        assert_eq!(basis(&renamed, v1), basis(&by_ref, v1));
        // And `parallelism` is still part of it.
        let mut wider = by_ref.clone();
        wider.parallelism += 1;
        assert_ne!(basis(&wider, v1), basis(&by_ref, v1));
        // A status of the old text starts over under the new one.
        let old = autoscaler::for_basis(None, &basis(&by_ref, v1));
        let kept = AutoscalerStatus { vertex_parallelism: [("u".to_string(), 4)].into(), ..old };
        assert_eq!(autoscaler::for_basis(Some(&kept), &basis(&by_ref, v1)), kept);
        assert!(autoscaler::for_basis(Some(&kept), &basis(&by_ref, v2)).vertex_parallelism.is_empty());
    }
}
