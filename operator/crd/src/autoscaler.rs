//! `spec.autoscaler` and `status.autoscaler`: what the autoscaler may do, and what
//! it measured and decided. Flink's option names (`job.autoscaler.*`) and defaults
//! apply where they exist.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::duration::DURATION_PATTERN;

/// `spec.autoscaler`: right-size each vertex from its busy time and its sources' lag.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.minParallelism <= self.maxParallelism").message("autoscaler.minParallelism must not exceed autoscaler.maxParallelism"),
    validation = Rule::new("self.utilizationBoundary < self.targetUtilization").message("autoscaler.utilizationBoundary must be below targetUtilization"),
)]
pub struct AutoscalerSpec {
    #[serde(default)]
    pub enabled: bool,
    /// `apply` rescales the job; `recommend` decides and reports, and changes nothing.
    #[serde(default)]
    pub mode: AutoscalerMode,
    /// The busy share each vertex should run at after a rescale.
    #[serde(default = "default_target_utilization")]
    #[schemars(range(min = 0.05, max = 1.0))]
    pub target_utilization: f64,
    /// No action while a vertex's utilization is within target ± boundary.
    #[serde(default = "default_utilization_boundary")]
    #[schemars(range(min = 0.0, max = 0.95))]
    pub utilization_boundary: f64,
    /// The metrics a decision averages.
    #[serde(default = "default_metrics_window")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub metrics_window: String,
    /// Metrics are ignored this long after the job (re)starts.
    #[serde(default = "default_stabilization")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub stabilization_period: String,
    /// A source's lag must be caught up within this.
    #[serde(default = "default_catch_up")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub catch_up_duration: String,
    /// A scale-up raises a vertex's parallelism at most to `p × (1 + factor)`. Unset: no limit
    /// (Flink's default is 100000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub scale_up_max_factor: Option<f64>,
    /// A scale-down lowers a vertex's parallelism at most to `p × (1 − factor)`; 1 is no limit.
    #[serde(default = "default_scale_down_max_factor")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub scale_down_max_factor: f64,
    /// A scale-down must have been justified this long, without a break, before it is made.
    #[serde(default = "default_scale_down_delay")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub scale_down_delay: String,
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub min_parallelism: i32,
    /// Per vertex; never above `spec.maxParallelism`.
    #[serde(default = "default_max_parallelism")]
    #[schemars(range(min = 1))]
    pub max_parallelism: i32,
}

fn default_target_utilization() -> f64 {
    0.7
}
fn default_utilization_boundary() -> f64 {
    0.3
}
fn default_metrics_window() -> String {
    "3m".into()
}
fn default_stabilization() -> String {
    "1m".into()
}
fn default_catch_up() -> String {
    "5m".into()
}
fn default_scale_down_max_factor() -> f64 {
    0.6
}
fn default_scale_down_delay() -> String {
    "10m".into()
}
fn one() -> i32 {
    1
}
fn default_max_parallelism() -> i32 {
    32
}

impl Default for AutoscalerSpec {
    fn default() -> Self {
        AutoscalerSpec {
            enabled: false,
            mode: AutoscalerMode::default(),
            target_utilization: default_target_utilization(),
            utilization_boundary: default_utilization_boundary(),
            metrics_window: default_metrics_window(),
            stabilization_period: default_stabilization(),
            catch_up_duration: default_catch_up(),
            scale_up_max_factor: None,
            scale_down_max_factor: default_scale_down_max_factor(),
            scale_down_delay: default_scale_down_delay(),
            min_parallelism: 1,
            max_parallelism: default_max_parallelism(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AutoscalerMode {
    #[default]
    Apply,
    Recommend,
}

/// `status.autoscaler`: what the autoscaler measured, decided and holds in force.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerStatus {
    /// What the per-vertex parallelism below was decided for: the SQL's hash and
    /// `spec.parallelism`. A change of either drops it, and the user's spec applies again.
    #[serde(default)]
    pub basis: String,
    /// The per-vertex parallelism in force (`apply` mode), by vertex uid: the operator
    /// deploys it as `pipeline.jobvertex-parallelism-overrides`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vertex_parallelism: BTreeMap<String, i32>,
    /// The per-vertex parallelism the last decision recommends, by vertex uid.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub recommended: BTreeMap<String, i32>,
    /// The largest recommended parallelism (the `Target` printer column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_parallelism: Option<i32>,
    /// The last evaluation that changed (or, in `recommend` mode, would change) something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<Decision>,
    /// The run the samples below belong to (`<deployment>/<restarts>`) and when it was first
    /// seen running (unix seconds): samples before that plus `stabilizationPeriod` are ignored.
    #[serde(default)]
    pub run: String,
    #[serde(default)]
    pub run_since: i64,
    /// The metric history of the run, oldest first, trimmed to `metricsWindow`, column
    /// by column: `times`, and per vertex one array per figure, in integers.
    #[serde(default, rename = "samples", with = "crate::history::compact", skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "crate::history::CompactHistory")]
    pub history: Vec<MetricSample>,
    /// The history as operators before the columnar `samples` wrote it, one object per
    /// sample: the operator reads it once into `samples` and never writes it again, so
    /// the next status update removes it.
    #[serde(default, rename = "history", skip_serializing_if = "Vec::is_empty")]
    pub legacy_history: Vec<MetricSample>,
    /// Since when (unix seconds) each vertex's scale-down has been justified without a break.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scale_down_since: BTreeMap<String, i64>,
    /// Scale-ups whose effect is still to be measured, by vertex uid.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending_effect: BTreeMap<String, ScaleUp>,
    /// Vertices where a scale-up did not raise the throughput: not scaled up again until
    /// the job's SQL or parallelism changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ineffective: Vec<String>,
    /// Why the last evaluation decided nothing (collecting metrics, a rescale not yet
    /// deployed, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Why the autoscaler does nothing at all: a HorizontalPodAutoscaler also targets the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// When the job's metrics were last sampled (unix seconds).
    #[serde(default)]
    pub sampled_at: i64,
}

/// One sample of `GET /v1/job/metrics`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricSample {
    /// Unix seconds.
    pub time: i64,
    pub vertices: Vec<VertexSample>,
}

/// A vertex in a [`MetricSample`]: counters are cumulative over the run, so that rates
/// between two samples are exact; busy and backpressured are the engine's ms per second.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VertexSample {
    pub uid: String,
    pub parallelism: i32,
    pub busy: f64,
    pub backpressured: f64,
    pub records_in: u64,
    pub records_out: u64,
    /// Records the vertex's sources have yet to read; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
}

/// A scale-up whose effect the autoscaler measures once the new run has a full window.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleUp {
    pub from: i32,
    pub to: i32,
    /// The vertex's true processing rate (records/s at full busy time) before the scale-up.
    pub true_rate: f64,
}

/// A decision, with every figure it was made from, so that it can be replayed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// RFC 3339.
    pub time: String,
    /// `scaled`, `recommended`, `ineffective`.
    pub outcome: String,
    /// One line per changed vertex, e.g. `vertex 2 busy 0.96, true rate 2.1k/s, target 3.0k/s → 2→4`.
    pub summary: String,
    pub vertices: Vec<VertexDecision>,
}

/// One vertex of a [`Decision`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VertexDecision {
    pub uid: String,
    /// The vertex's id in the job graph, as `explain` shows it.
    pub id: i32,
    pub name: String,
    pub parallelism: i32,
    /// What the figures call for, before any delay.
    pub recommended: i32,
    /// What was decided: `recommended`, or `parallelism` while a scale-down waits.
    pub decided: i32,
    pub busy: f64,
    /// Records per second at full busy time, at `parallelism`; absent when the vertex was idle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub true_rate: Option<f64>,
    /// Records per second the vertex must take in: its sources' input rate plus lag catch-up.
    pub target_rate: f64,
    /// The part of `target_rate` that catches up on lag (its sources' lag ÷
    /// `catchUpDuration`, carried down the graph); absent when there is no lag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
    /// The key groups a keyed vertex spreads over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_groups: Option<i32>,
    /// A source's splits, where it knows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub splits: Option<i32>,
    pub reason: String,
}
