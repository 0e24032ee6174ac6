//! The autoscaler: from a job's metric history to a per-vertex parallelism, with
//! its reasons. Pure: the controller samples `GET /v1/job/metrics`, and these
//! functions turn samples and `status.autoscaler` into the next
//! `status.autoscaler` and an Event.
//!
//! The algorithm is Flink's (FLIP-271): a vertex's true processing rate is the
//! records it processed per second divided by its busy share; its target rate is
//! its sources' input rate plus lag catch-up, carried down the graph; its need is
//! `p × target rate ÷ (true rate × target utilization)`, aligned to key groups and
//! source splits ([`align`]). Where it differs:
//!
//! 1. **One step per load change.** The figures use the samples since the load
//!    last changed ([`estimate`]), not a window that mixes two loads, so a step in
//!    the load is met by one rescale.
//! 2. **No flapping.** No action while utilization is within target ± boundary; a
//!    scale-down must be justified without a break for `scaleDownDelay`; a vertex
//!    whose scale-up did not raise its true rate by at least
//!    [`EFFECTIVENESS_THRESHOLD`] of what was expected is not scaled up again.
//! 3. **Everything is in status.** The history, the evidence for pending
//!    scale-downs and every figure of the last decision are in `status.autoscaler`,
//!    so an operator restart loses nothing, and [`replay`] recomputes a decision
//!    from what it recorded.
//! 4. **Every vertex is decided at once.** A rescale writes the parallelism of
//!    every vertex, so the deployment never depends on `spec.parallelism` for some.
//! 5. **A backlog clears in `catchUpDuration`.** The catch-up part of the target
//!    rate is sized at full capacity, not at the target utilization: the need is
//!    `p × max(input ÷ u, input + lag ÷ catchUpDuration) ÷ true rate`. Flink's
//!    sizing clears a backlog in about `u × catchUpDuration`.

pub mod align;
pub mod estimate;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::crd::{
    AutoscalerMode, AutoscalerSpec, AutoscalerStatus, Decision, MetricSample, ScaleUp, VertexDecision, parse_duration,
};
use align::{Bounds, StepLimits};
use estimate::{Estimate, VertexFigures};

/// How often the controller samples a running job's metrics.
pub const SAMPLE_INTERVAL_SECS: i64 = 10;
/// A scale-up that raised the true rate by less than this share of the expected
/// increase was ineffective (Flink's `scaling.effectiveness.threshold`).
pub const EFFECTIVENESS_THRESHOLD: f64 = 0.1;

/// `spec.autoscaler`, with durations in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub mode: AutoscalerMode,
    pub target_utilization: f64,
    pub boundary: f64,
    pub metrics_window: i64,
    pub stabilization: i64,
    pub catch_up: i64,
    pub scale_down_delay: i64,
    pub limits: StepLimits,
    pub min: usize,
    pub max: usize,
    pub sample_interval: i64,
}

impl Settings {
    pub fn new(spec: &AutoscalerSpec) -> Settings {
        let secs = |s: &str, default: i64| parse_duration(s).map_or(default, |d| d.as_secs() as i64);
        Settings {
            mode: spec.mode,
            target_utilization: spec.target_utilization.clamp(0.05, 1.0),
            boundary: spec.utilization_boundary.max(0.0),
            metrics_window: secs(&spec.metrics_window, 180),
            stabilization: secs(&spec.stabilization_period, 60),
            catch_up: secs(&spec.catch_up_duration, 300),
            scale_down_delay: secs(&spec.scale_down_delay, 600),
            limits: StepLimits { up_max_factor: spec.scale_up_max_factor, down_max_factor: spec.scale_down_max_factor },
            min: spec.min_parallelism.max(1) as usize,
            max: spec.max_parallelism.max(1) as usize,
            sample_interval: SAMPLE_INTERVAL_SECS,
        }
    }
}

/// A vertex of the running job, as `GET /v1/job` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct VertexInfo {
    pub id: usize,
    pub uid: String,
    pub name: String,
    pub parallelism: usize,
    /// Upstream vertex ids; none for a source.
    pub inputs: Vec<usize>,
    pub keyed: bool,
    pub splits: Option<usize>,
    /// It runs at parallelism 1 whatever it is given (a GLOBAL input: a window
    /// aggregation without keys).
    pub single: bool,
}

/// The running job's graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub vertices: Vec<VertexInfo>,
    pub max_parallelism: usize,
}

impl Topology {
    /// The vertices, each after all its inputs.
    pub fn in_order(&self) -> Vec<&VertexInfo> {
        let mut done: Vec<usize> = Vec::new();
        let mut out = Vec::new();
        while out.len() < self.vertices.len() {
            let before = out.len();
            for v in &self.vertices {
                if !done.contains(&v.id) && v.inputs.iter().all(|i| done.contains(i)) {
                    done.push(v.id);
                    out.push(v);
                }
            }
            if out.len() == before {
                // A cycle cannot come from the engine; take the rest as they are.
                out.extend(self.vertices.iter().filter(|v| !done.contains(&v.id)));
                break;
            }
        }
        out
    }

    fn bounds(&self, v: &VertexInfo, s: &Settings) -> Bounds {
        if v.single {
            return Bounds { min: 1, max: 1, key_groups: None, splits: None };
        }
        Bounds {
            min: s.min,
            max: s.max.min(self.max_parallelism).max(1),
            key_groups: v.keyed.then_some(self.max_parallelism),
            splits: if v.inputs.is_empty() { v.splits } else { None },
        }
    }
}

/// The basis of an autoscaler's per-vertex parallelism: it holds for this SQL and
/// this `spec.parallelism` only.
pub fn basis(sql: &str, parallelism: i32, max_parallelism: i32) -> String {
    format!("{:016x}/{parallelism}/{max_parallelism}", sluice_api::hash::fnv1a(sql.as_bytes()))
}

/// `status.autoscaler` for the current basis: a status of another basis (the SQL or
/// `spec.parallelism` changed) starts over. A history that an older operator wrote
/// one object per sample (`history`) is taken over as the history, which status then
/// writes column by column (`samples`), and the old field is dropped.
pub fn for_basis(status: Option<&AutoscalerStatus>, basis: &str) -> AutoscalerStatus {
    match status {
        Some(s) if s.basis == basis => {
            let mut s = s.clone();
            let legacy = std::mem::take(&mut s.legacy_history);
            if !legacy.is_empty() {
                tracing::info!(
                    samples = legacy.len(),
                    "status.autoscaler.history is in an older operator's per-sample form: it is read and \
                     written as status.autoscaler.samples from now on"
                );
                if s.history.is_empty() {
                    s.history = legacy;
                }
            }
            s
        }
        _ => AutoscalerStatus { basis: basis.to_string(), ..Default::default() },
    }
}

/// Adds a sample of run `run` (`<deployment>/<restarts>`): a new run starts the
/// history over, samples inside its stabilization period are dropped, and the
/// history keeps one metrics window.
pub fn record(status: &mut AutoscalerStatus, s: &Settings, run: &str, sample: MetricSample) {
    if status.run != run {
        status.run = run.to_string();
        status.run_since = sample.time;
        status.history.clear();
        status.scale_down_since.clear();
    }
    if sample.time < status.run_since + s.stabilization {
        return;
    }
    let newest = sample.time;
    status.history.push(sample);
    status.history.retain(|x| x.time >= newest - s.metrics_window);
}

/// What an evaluation decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Events: each one's reason and message.
    pub events: Vec<(&'static str, String)>,
    /// Why nothing was decided, when nothing was.
    pub waiting: Option<String>,
}

/// Evaluates the history in `status` at `now` (unix seconds) and updates it: the
/// recommendation, the evidence for scale-downs, ineffective vertices, and in
/// `apply` mode the per-vertex parallelism in force.
pub fn evaluate(top: &Topology, s: &Settings, status: &mut AutoscalerStatus, now: i64) -> Outcome {
    let figures = match estimate::estimate(top, &status.history, s) {
        Estimate::NotYet(why) => return Outcome { events: vec![], waiting: Some(why) },
        Estimate::Ready { figures, .. } => figures,
    };
    if let Some(v) = top
        .vertices
        .iter()
        .find(|v| status.vertex_parallelism.get(&v.uid).is_some_and(|p| *p as usize != v.parallelism))
    {
        let want = status.vertex_parallelism.get(&v.uid).copied().unwrap_or_default();
        return Outcome {
            events: vec![],
            waiting: Some(format!("the rescale of vertex {} to {want} is not deployed yet", v.id)),
        };
    }
    let mut events = Vec::new();
    judge_effect(top, status, &figures, &mut events);
    let mut decided = Vec::new();
    for f in &figures {
        let Some(v) = top.vertices.iter().find(|v| v.uid == f.uid) else { continue };
        let mut d = decide_vertex(v, f, s, top.bounds(v, s));
        if d.recommended > d.parallelism && status.ineffective.contains(&v.uid) {
            d.decided = d.parallelism;
            d.reason = format!("{}; held: a scale-up of it did not raise its throughput", d.reason);
        } else if d.recommended < d.parallelism {
            let start = *status.scale_down_since.entry(v.uid.clone()).or_insert(now);
            if now - start < s.scale_down_delay {
                d.decided = d.parallelism;
                d.reason = format!(
                    "{}; scale-down held: justified for {}s of scaleDownDelay {}s",
                    d.reason,
                    now - start,
                    s.scale_down_delay
                );
            }
        } else {
            status.scale_down_since.remove(&v.uid);
        }
        decided.push(d);
    }
    let recommended: BTreeMap<String, i32> = decided.iter().map(|d| (d.uid.clone(), d.decided)).collect();
    let changed: Vec<&VertexDecision> = decided.iter().filter(|d| d.decided != d.parallelism).collect();
    let summary = changed.iter().map(|d| summary_line(d)).collect::<Vec<_>>().join("; ");
    status.target_parallelism = recommended.values().copied().max();
    let recommendation_changed = status.recommended != recommended;
    status.recommended = recommended.clone();
    if changed.is_empty() {
        return Outcome { events, waiting: None };
    }
    let time = jiff::Timestamp::from_second(now).map(|t| t.to_string()).unwrap_or_default();
    let outcome = match s.mode {
        AutoscalerMode::Apply => {
            for d in &changed {
                status.scale_down_since.remove(&d.uid);
                if d.decided > d.parallelism
                    && let Some(rate) = d.true_rate
                {
                    let up = ScaleUp { from: d.parallelism, to: d.decided, true_rate: rate };
                    status.pending_effect.insert(d.uid.clone(), up);
                }
            }
            status.vertex_parallelism = recommended;
            events.push(("Autoscaled", format!("rescaling: {summary}")));
            "scaled"
        }
        AutoscalerMode::Recommend => {
            if recommendation_changed {
                events
                    .push(("ScalingRecommended", format!("recommended (mode recommend, nothing changed): {summary}")));
            }
            "recommended"
        }
    };
    status.last_decision = Some(Decision { time, outcome: outcome.into(), summary, vertices: decided });
    Outcome { events, waiting: None }
}

/// A vertex's decision from its figures: pure, and what [`replay`] recomputes.
pub fn decide_vertex(v: &VertexInfo, f: &VertexFigures, s: &Settings, b: Bounds) -> VertexDecision {
    let p = f.parallelism.max(1);
    let mut d = VertexDecision {
        uid: v.uid.clone(),
        id: v.id as i32,
        name: v.name.clone(),
        parallelism: p as i32,
        recommended: p as i32,
        decided: p as i32,
        busy: round(f.busy, 3),
        true_rate: f.true_rate.map(|r| round(r, 1)),
        target_rate: round(f.target_rate, 1),
        catch_up_rate: (f.catch_up_rate > 0.0).then(|| round(f.catch_up_rate, 1)),
        lag: f.lag,
        key_groups: b.key_groups.map(|k| k as i32),
        splits: b.splits.map(|k| k as i32),
        reason: String::new(),
    };
    let (to, reason) = recommend(p, d.true_rate, Load::of(&d), s, b);
    d.recommended = to as i32;
    d.decided = to as i32;
    d.reason = reason;
    d
}

/// The rate a vertex must take in: its steady input and the part that catches up on lag.
#[derive(Debug, Clone, Copy)]
struct Load {
    target: f64,
    catch_up: f64,
}

impl Load {
    fn of(d: &VertexDecision) -> Load {
        Load { target: d.target_rate, catch_up: d.catch_up_rate.unwrap_or(0.0).clamp(0.0, d.target_rate) }
    }

    /// The utilization to size by: the steady input's share of the capacity, or,
    /// while there is lag to catch up, what sizing the whole target rate at full
    /// capacity amounts to at the target utilization, whichever is larger.
    ///
    /// Flink sizes the catch-up at the target utilization too, so a backlog clears
    /// in about `targetUtilization × catchUpDuration`; sized this way it clears in
    /// `catchUpDuration`, and the steady input alone still gets its headroom.
    fn utilization(self, true_rate: f64, target_utilization: f64) -> f64 {
        (self.target - self.catch_up).max(self.target * target_utilization) / true_rate
    }
}

/// The parallelism for recorded figures, with its reason.
fn recommend(p: usize, true_rate: Option<f64>, load: Load, s: &Settings, b: Bounds) -> (usize, String) {
    let Some(true_rate) = true_rate.filter(|r| *r > 0.0) else {
        return (p, "idle: no busy time to measure its capacity by".into());
    };
    let utilization = load.utilization(true_rate, s.target_utilization);
    if (utilization - s.target_utilization).abs() <= s.boundary {
        return (p, format!("utilization {utilization:.2} within {:.2} ± {:.2}", s.target_utilization, s.boundary));
    }
    let need = p as f64 * utilization / s.target_utilization;
    let to = align::choose(p, need, s.limits, b);
    let why = if to == p {
        format!("utilization {utilization:.2}, need {need:.1}: no step within the bounds and splits")
    } else {
        format!("utilization {utilization:.2}, need {need:.1}")
    };
    (to, why)
}

/// Recomputes a recorded decision's recommendation from its own figures.
pub fn replay(d: &VertexDecision, s: &Settings, min_max: (usize, usize)) -> usize {
    let b = Bounds {
        min: min_max.0,
        max: min_max.1,
        key_groups: d.key_groups.map(|k| k as usize),
        splits: d.splits.map(|k| k as usize),
    };
    recommend(d.parallelism.max(1) as usize, d.true_rate, Load::of(d), s, b).0
}

/// Judges scale-ups whose effect was pending, once the run that has them has
/// figures (the history starts over with each run): one that raised the true rate by less than the threshold share of
/// the expected increase marks the vertex ineffective.
fn judge_effect(
    top: &Topology,
    status: &mut AutoscalerStatus,
    figures: &[VertexFigures],
    events: &mut Vec<(&'static str, String)>,
) {
    let pending = std::mem::take(&mut status.pending_effect);
    for (uid, up) in pending {
        let Some(f) = figures.iter().find(|f| f.uid == uid) else { continue };
        if f.parallelism as i32 == up.from {
            // Not deployed yet: judged once it runs.
            status.pending_effect.insert(uid, up);
            continue;
        }
        if f.parallelism as i32 != up.to {
            continue; // deployed otherwise (the spec changed): nothing to judge
        }
        let Some(after) = f.true_rate else { continue };
        let expected = up.true_rate * (up.to as f64 / up.from.max(1) as f64 - 1.0);
        let gained = after - up.true_rate;
        if expected > 0.0 && gained / expected < EFFECTIVENESS_THRESHOLD {
            let name = top.vertices.iter().find(|v| v.uid == uid).map_or(uid.clone(), |v| format!("vertex {}", v.id));
            if !status.ineffective.contains(&uid) {
                status.ineffective.push(uid.clone());
            }
            events.push((
                "ScalingIneffective",
                format!(
                    "{name}: scaling {}→{} raised its true rate from {} to {} records/s, expected about {}; it is not scaled up again",
                    up.from,
                    up.to,
                    rate(up.true_rate),
                    rate(after),
                    rate(up.true_rate + expected)
                ),
            ));
        }
    }
}

fn summary_line(d: &VertexDecision) -> String {
    let mut s = format!("vertex {} busy {:.2}", d.id, d.busy);
    if let Some(r) = d.true_rate {
        let _ = write!(s, ", true rate {}/s", rate(r));
    }
    let _ = write!(s, ", target {}/s", rate(d.target_rate));
    if let Some(c) = d.catch_up_rate {
        let _ = write!(s, " (catch-up {}/s)", rate(c));
    }
    if let Some(l) = d.lag {
        let _ = write!(s, ", lag {l}");
    }
    let _ = write!(s, " → {}→{}", d.parallelism, d.decided);
    s
}

/// A rate as people read it: `950`, `2.1k`, `3.4M`.
pub fn rate(r: f64) -> String {
    match r {
        r if r >= 1e6 => format!("{:.1}M", r / 1e6),
        r if r >= 1e3 => format!("{:.1}k", r / 1e3),
        r => format!("{r:.0}"),
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}
