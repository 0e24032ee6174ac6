//! What every reconcile of both controllers shares: the clients, the operator's
//! defaults for what a StreamJob leaves unset, the validation cache and the
//! watch caches of the StreamJob controller.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;

use crate::crd::{S3Spec, StreamJobSpec, StreamJobStatus};
use crate::engine::EngineClient;
use crate::error::InvalidSpec;
use crate::metrics::Metrics;

/// A cached validation: the hash of the SQL it judged, and the verdict.
pub type Validation = (u64, Result<(), InvalidSpec>);

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub engine: EngineClient,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// The operator's own S3 endpoint, for an operator outside the cluster.
    pub s3_endpoint: Option<String>,
    /// `--default-engine-image` and `--default-s3-*`: for jobs that set none.
    pub defaults: Defaults,
    pub version: String,
    /// The last validation per job: (hash of the SQL, result).
    pub validated: Mutex<HashMap<String, Validation>>,
    /// Per namespace and label (`<namespace>\n<label>`), whether the namespace carries
    /// it, and when that was read (`validate::labelled` reads one at most every 30 s).
    pub namespace_labels: Mutex<HashMap<String, (std::time::Instant, bool)>>,
    /// Child caches per watch scope (`None`: all namespaces), filled by [`crate::controllers::streamjob::run`].
    pub caches: std::sync::RwLock<Vec<(Option<String>, Caches)>>,
    /// Whether this process may still act; asked before every write.
    pub leadership: Arc<crate::leader::Leadership>,
}

/// The operator's defaults for what a StreamJob leaves unset (the Helm values
/// `engine.image` and `s3.defaults`).
#[derive(Clone, Debug, Default)]
pub struct Defaults {
    pub image: Option<String>,
    pub s3: Option<S3Spec>,
    /// The Helm value `openlineage.url`: the coordinators' `OPENLINEAGE_URL`, where
    /// jobs whose `spec.config` sets no `openlineage.transport.url` send run events.
    pub openlineage_url: Option<String>,
    /// The engine pods' NetworkPolicy (`--engine-network-policy`); `None`: none is made.
    pub network_policy: Option<crate::resources::network_policy::EnginePolicy>,
}

/// The spec the operator acts on: the object's, with the autoscaler's per-vertex
/// parallelism when it applies (`status.autoscaler`), and `image` and `s3` filled in when it
/// sets none — from the deployed spec (a new operator default must not restart a running
/// job, or move its state to another store), else from the operator's defaults. An image
/// that stays unset is reported by validation.
pub fn effective_spec<'a>(
    spec: &'a StreamJobSpec,
    status: &StreamJobStatus,
    defaults: &Defaults,
) -> std::borrow::Cow<'a, StreamJobSpec> {
    let overrides = autoscaled(spec, status);
    if spec.image.is_some() && spec.s3.is_some() && overrides.is_none() {
        return std::borrow::Cow::Borrowed(spec);
    }
    let deployed = status.reconciled_spec.as_ref();
    let mut s = spec.clone();
    if let Some(value) = overrides {
        // `parallelism` stays the user's: it is the default of every vertex, and the
        // plan's shape (which operators chain) follows it. The workers are sized for
        // the largest vertex ([`crate::resources`]).
        s.config.insert(VERTEX_OVERRIDES.into(), value);
    }
    if s.image.is_none() {
        s.image = deployed.and_then(|d| d.image.clone()).or_else(|| defaults.image.clone());
    }
    if s.s3.is_none() {
        s.s3 = deployed.and_then(|d| d.s3.clone()).or_else(|| defaults.s3.clone());
    }
    std::borrow::Cow::Owned(s)
}

/// The engine key of per-vertex parallelism, Flink's.
pub const VERTEX_OVERRIDES: &str = "pipeline.jobvertex-parallelism-overrides";

/// The autoscaler's per-vertex parallelism in force, as the engine key's value, if it applies.
fn autoscaled(spec: &StreamJobSpec, status: &StreamJobStatus) -> Option<String> {
    let a = status.autoscaler.as_ref()?;
    let applies = spec.autoscaler.enabled
        && spec.autoscaler.mode == crate::crd::AutoscalerMode::Apply
        && a.blocked.is_none()
        && !a.vertex_parallelism.is_empty();
    if !applies {
        return None;
    }
    Some(a.vertex_parallelism.iter().map(|(uid, p)| format!("{uid}:{p}")).collect::<Vec<_>>().join(","))
}

/// The largest parallelism of any vertex of job `sql`: `parallelism`, a larger
/// per-vertex override in [`VERTEX_OVERRIDES`] (the autoscaler's, or the user's
/// own), or a larger `scan.parallelism` or `sink.parallelism` of a table it reads
/// or writes. An override that lowers a table's option still counts the option:
/// the workers may then have slots to spare, never too few.
pub fn largest_parallelism(spec: &StreamJobSpec, sql: &str) -> i32 {
    let overrides = spec.config.get(VERTEX_OVERRIDES).map(String::as_str).unwrap_or_default();
    overrides
        .split(',')
        .filter_map(|e| e.rsplit_once(':')?.1.trim().parse::<i32>().ok())
        .chain([spec.parallelism, largest_table_parallelism(sql)])
        .max()
        .unwrap_or(1)
        .min(spec.max_parallelism)
}

/// [`sluice_job::largest_table_parallelism`] of `sql` (0 when it does not compile),
/// cached by the SQL's hash: reconciles build the workers often, the SQL rarely changes.
fn largest_table_parallelism(sql: &str) -> i32 {
    static CACHE: std::sync::Mutex<BTreeMap<u64, i32>> = std::sync::Mutex::new(BTreeMap::new());
    let key = sluice_api::hash::fnv1a(sql.as_bytes());
    if let Some(p) = CACHE.lock().ok().and_then(|c| c.get(&key).copied()) {
        return p;
    }
    let p = sluice_job::compile(sql, crate::resources::SQL_FILE)
        .ok()
        .and_then(|job| sluice_job::largest_table_parallelism(&job))
        .map_or(0, |p| i32::try_from(p).unwrap_or(i32::MAX));
    if let Ok(mut c) = CACHE.lock() {
        if c.len() >= 4096 {
            c.clear();
        }
        c.insert(key, p);
    }
    p
}

/// Caches of one watch scope's children, fed by the same watches that trigger reconciles.
#[derive(Clone)]
pub struct Caches {
    pub deployments: Store<Deployment>,
    pub stateful_sets: Store<StatefulSet>,
    pub config_maps: Store<ConfigMap>,
    pub pods: Store<Pod>,
    /// HorizontalPodAutoscalers, which the autoscaler reads ([`Context::hpas`]).
    pub hpas: Store<HorizontalPodAutoscaler>,
}

impl Context {
    /// The caches that cover namespace `ns`, once they hold a complete list.
    pub async fn caches(&self, ns: &str) -> Option<Caches> {
        let c = self.scope_caches(ns)?;
        c.deployments.wait_until_ready().await.ok()?;
        c.stateful_sets.wait_until_ready().await.ok()?;
        c.config_maps.wait_until_ready().await.ok()?;
        c.pods.wait_until_ready().await.ok()?;
        Some(c)
    }

    /// The cache of HorizontalPodAutoscalers that covers namespace `ns`. It is not
    /// waited for: only a job with the autoscaler on reads it.
    pub fn hpas(&self, ns: &str) -> Option<Store<HorizontalPodAutoscaler>> {
        self.scope_caches(ns).map(|c| c.hpas)
    }

    /// The caches of the watch scope that covers namespace `ns`, ready or not.
    fn scope_caches(&self, ns: &str) -> Option<Caches> {
        let all = self.caches.read().ok()?;
        all.iter().find(|(scope, _)| scope.as_deref().is_none_or(|s| s == ns)).map(|(_, c)| c.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::crd::DeployedSpec;

    fn spec(image: Option<&str>) -> StreamJobSpec {
        let mut v = serde_json::json!({"sql": "x"});
        if let Some(i) = image {
            v["image"] = i.into();
        }
        serde_json::from_value(v).unwrap()
    }

    fn deployed(image: &str) -> StreamJobStatus {
        StreamJobStatus { reconciled_spec: Some(DeployedSpec::resolve(&spec(Some(image)), "x")), ..Default::default() }
    }

    fn defaults(image: &str, endpoint: &str) -> Defaults {
        let s3 = S3Spec { endpoint: Some(endpoint.into()), ..Default::default() };
        Defaults { image: Some(image.into()), s3: Some(s3), openlineage_url: None, network_policy: None }
    }

    #[test]
    fn image_and_s3_are_the_jobs_else_the_deployed_ones_else_the_operators_defaults() {
        let none = StreamJobStatus::default();
        let new = defaults("sluice/engine:0.2.0", "http://new:9000");
        let mut own = spec(Some("sluice/engine:pinned"));
        own.s3 = Some(S3Spec { endpoint: Some("http://own:9000".into()), ..Default::default() });
        let e = effective_spec(&own, &deployed("old"), &new);
        assert!(matches!(e, std::borrow::Cow::Borrowed(_)));
        assert_eq!(e.image.as_deref(), Some("sluice/engine:pinned"));
        let unset = spec(None);
        // A running job keeps its image and store when the operator's defaults change.
        let mut was = spec(Some("sluice/engine:0.1.0"));
        was.s3 = Some(S3Spec { endpoint: Some("http://old:9000".into()), ..Default::default() });
        let st = StreamJobStatus { reconciled_spec: Some(DeployedSpec::resolve(&was, "x")), ..Default::default() };
        let e = effective_spec(&unset, &st, &new);
        assert_eq!(e.image.as_deref(), Some("sluice/engine:0.1.0"));
        assert_eq!(e.s3.as_ref().and_then(|s| s.endpoint.as_deref()), Some("http://old:9000"));
        // A deployed job that had no S3 gets the default (nothing of it is in a store yet).
        let e = effective_spec(&unset, &deployed("sluice/engine:0.1.0"), &new);
        assert_eq!(e.s3.as_ref().and_then(|s| s.endpoint.as_deref()), Some("http://new:9000"));
        let e = effective_spec(&unset, &none, &new);
        assert_eq!(e.image.as_deref(), Some("sluice/engine:0.2.0"));
        assert_eq!(e.s3.as_ref().and_then(|s| s.endpoint.as_deref()), Some("http://new:9000"));
        let e = effective_spec(&unset, &none, &Defaults::default());
        assert_eq!((e.image.clone(), e.s3.clone()), (None, None));
    }

    #[test]
    fn the_autoscalers_parallelism_applies_while_it_is_on_in_apply_mode() {
        let mut job = spec(Some("sluice/engine:pinned"));
        job.s3 = Some(S3Spec::default());
        job.parallelism = 2;
        let mut a = crate::crd::AutoscalerStatus::default();
        a.vertex_parallelism.insert("3f1c9a0b7d2e4c55".into(), 6);
        a.vertex_parallelism.insert("9a0b7d2e4c553f1c".into(), 2);
        let st = StreamJobStatus { autoscaler: Some(a.clone()), ..Default::default() };
        // Off: the user's spec alone.
        assert!(matches!(effective_spec(&job, &st, &Defaults::default()), std::borrow::Cow::Borrowed(_)));
        job.autoscaler.enabled = true;
        let e = effective_spec(&job, &st, &Defaults::default());
        assert_eq!(e.config.get(VERTEX_OVERRIDES).map(String::as_str), Some("3f1c9a0b7d2e4c55:6,9a0b7d2e4c553f1c:2"));
        assert_eq!(e.parallelism, 2, "the default of every vertex (and the plan's shape) stays the user's");
        assert_eq!(largest_parallelism(&e, ""), 6, "the workers are sized for the largest vertex");
        job.autoscaler.mode = crate::crd::AutoscalerMode::Recommend;
        assert!(effective_spec(&job, &st, &Defaults::default()).config.is_empty(), "recommend changes nothing");
        job.autoscaler.mode = crate::crd::AutoscalerMode::Apply;
        a.blocked = Some("an HPA".into());
        let st = StreamJobStatus { autoscaler: Some(a), ..Default::default() };
        assert!(effective_spec(&job, &st, &Defaults::default()).config.is_empty(), "an HPA beside it: nothing");
    }

    #[test]
    fn the_largest_vertex_sizes_the_workers() {
        let mut spec: StreamJobSpec =
            serde_json::from_value(serde_json::json!({"sql": "x", "parallelism": 2})).expect("spec");
        assert_eq!(largest_parallelism(&spec, "x"), 2);
        let sink = "CREATE TABLE s (id BIGINT) WITH ('connector' = 'datagen');
CREATE TABLE o (id BIGINT) WITH ('connector' = 'blackhole', 'sink.parallelism' = '3');
INSERT INTO o SELECT id FROM s;";
        assert_eq!(largest_parallelism(&spec, sink), 3, "a table's sink.parallelism above parallelism");
        spec.config.insert(VERTEX_OVERRIDES.into(), "3f1c9a0b7d2e4c55:6, 9a0b7d2e4c553f1c:1,bad".into());
        assert_eq!(largest_parallelism(&spec, sink), 6);
        spec.max_parallelism = 4;
        assert_eq!(largest_parallelism(&spec, sink), 4, "never above maxParallelism");
    }
}
