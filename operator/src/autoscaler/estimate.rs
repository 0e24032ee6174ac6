//! From a metric history to each vertex's figures: its processing rate, busy
//! share, true processing rate and target rate.
//!
//! - Rates come from cumulative counters between consecutive samples, so they
//!   are exact over each interval.
//! - A source's demand is what it read plus the growth of its lag: a source held
//!   back by backpressure shows its true input rate in its lag.
//! - The figures use the samples since the load last changed (a change point in
//!   the sources' total demand), so a step in the load is measured on the new
//!   load alone and one rescale suffices.
//! - Target rates flow from the sources down the graph, through each vertex's
//!   measured output/input ratio, as in Flink's autoscaler.

use std::collections::BTreeMap;

use super::{Settings, Topology};
use crate::crd::MetricSample;

/// Samples needed after a change in load before a decision is made on it.
pub const MIN_INTERVALS: usize = 3;
/// Two intervals whose demands differ by more than this factor are two loads.
pub const CHANGE_FACTOR: f64 = 1.6;
/// Below this busy share a vertex's capacity is not measurable.
const MIN_BUSY: f64 = 0.01;

/// One vertex's figures over the evaluated samples.
#[derive(Debug, Clone, PartialEq)]
pub struct VertexFigures {
    pub uid: String,
    pub parallelism: usize,
    /// Busy share, 0..1, averaged over subtasks and samples.
    pub busy: f64,
    /// Records per second it processed (read, for a source).
    pub processed: f64,
    /// Records per second it would process at full busy time; `None` when idle.
    pub true_rate: Option<f64>,
    /// Records per second it must take in.
    pub target_rate: f64,
    /// The part of `target_rate` that catches up on its sources' lag.
    pub catch_up_rate: f64,
    /// Its sources' lag at the last sample.
    pub lag: Option<u64>,
}

/// Figures, or why there are none yet.
#[derive(Debug, Clone, PartialEq)]
pub enum Estimate {
    NotYet(String),
    Ready { figures: Vec<VertexFigures>, since: i64 },
}

/// One vertex over one interval between two samples.
#[derive(Debug, Clone, Copy)]
struct Rates {
    /// Records per second processed (read, for a source).
    processed: f64,
    out: f64,
    /// Busy share at the interval's end, 0..1.
    busy: f64,
    /// A source's demand: read plus lag growth per second; 0 elsewhere.
    demand: f64,
    lag: Option<u64>,
}

struct Interval {
    vertices: BTreeMap<String, Rates>,
    demand: f64,
    start: i64,
}

/// Estimates from `samples` (oldest first, all of one run, after its stabilization).
pub fn estimate(top: &Topology, samples: &[MetricSample], s: &Settings) -> Estimate {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Estimate::NotYet("no metrics yet".into());
    };
    let covered = last.time - first.time;
    if covered + s.sample_interval < s.metrics_window {
        return Estimate::NotYet(format!("collecting metrics: {covered}s of the {}s window", s.metrics_window));
    }
    let intervals = intervals(top, samples);
    let segment = latest_load(&intervals);
    if segment.len() < MIN_INTERVALS {
        let at = segment.first().map_or(last.time, |i| i.start);
        return Estimate::NotYet(format!(
            "the load changed at {at}; waiting for {MIN_INTERVALS} samples of the new load (have {})",
            segment.len()
        ));
    }
    let n = segment.len() as f64;
    let mean = |uid: &str, pick: fn(&Rates) -> f64| {
        segment.iter().filter_map(|i| i.vertices.get(uid)).map(pick).sum::<f64>() / n
    };
    // Per vertex id: (target rate out, its catch-up part).
    let mut targets_out: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
    let mut figures = Vec::new();
    for v in top.in_order() {
        let processed = mean(&v.uid, |x| x.processed);
        let out = mean(&v.uid, |x| x.out);
        let busy = mean(&v.uid, |x| x.busy);
        let lag = segment.last().and_then(|i| i.vertices.get(&v.uid)).and_then(|x| x.lag);
        let (target_in, catch_up_in) = if v.inputs.is_empty() {
            let catch_up = lag.map_or(0.0, |l| l as f64 / s.catch_up.max(1) as f64);
            (mean(&v.uid, |x| x.demand) + catch_up, catch_up)
        } else {
            v.inputs.iter().filter_map(|i| targets_out.get(i)).fold((0.0, 0.0), |(t, c), (ti, ci)| (t + ti, c + ci))
        };
        let ratio = if processed > 0.0 { out / processed } else { 1.0 };
        targets_out.insert(v.id, (target_in * ratio, catch_up_in * ratio));
        let true_rate = (busy >= MIN_BUSY && processed > 0.0).then(|| processed / busy);
        let parallelism =
            last.vertices.iter().find(|x| x.uid == v.uid).map_or(v.parallelism, |x| x.parallelism as usize);
        figures.push(VertexFigures {
            uid: v.uid.clone(),
            parallelism,
            busy,
            processed,
            true_rate,
            target_rate: target_in,
            catch_up_rate: catch_up_in,
            lag,
        });
    }
    Estimate::Ready { figures, since: segment.first().map_or(last.time, |i| i.start) }
}

fn intervals(top: &Topology, samples: &[MetricSample]) -> Vec<Interval> {
    let mut out = Vec::new();
    for w in samples.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let dt = (b.time - a.time) as f64;
        if dt <= 0.0 {
            continue;
        }
        let mut vertices = BTreeMap::new();
        let mut demand = 0.0;
        let mut valid = true;
        for v in &top.vertices {
            let (Some(x), Some(y)) =
                (a.vertices.iter().find(|x| x.uid == v.uid), b.vertices.iter().find(|x| x.uid == v.uid))
            else {
                valid = false;
                break;
            };
            let source = v.inputs.is_empty();
            let (pa, pb) = if source { (x.records_out, y.records_out) } else { (x.records_in, y.records_in) };
            if pb < pa || y.records_out < x.records_out {
                // Counters went back: a restart inside the run.
                valid = false;
                break;
            }
            let processed = (pb - pa) as f64 / dt;
            let rate_out = (y.records_out - x.records_out) as f64 / dt;
            let growth = match (x.lag, y.lag) {
                (Some(la), Some(lb)) => (lb as f64 - la as f64) / dt,
                _ => 0.0,
            };
            let d = if source { (processed + growth).max(0.0) } else { 0.0 };
            demand += d;
            let busy = (y.busy / 1000.0).clamp(0.0, 1.0);
            vertices.insert(v.uid.clone(), Rates { processed, out: rate_out, busy, demand: d, lag: y.lag });
        }
        if valid {
            out.push(Interval { vertices, demand, start: a.time });
        }
    }
    out
}

/// The newest intervals of one load: walking back from the newest, each
/// interval's total demand within [`CHANGE_FACTOR`] of the median so far.
fn latest_load(intervals: &[Interval]) -> &[Interval] {
    let mut kept: Vec<f64> = Vec::new();
    let mut start = intervals.len();
    for (i, iv) in intervals.iter().enumerate().rev() {
        if let Some(m) = median(&kept) {
            let near =
                (iv.demand - m).abs() <= 1.0 || (iv.demand <= m * CHANGE_FACTOR && iv.demand * CHANGE_FACTOR >= m);
            if !near {
                break;
            }
        }
        kept.push(iv.demand);
        start = i;
    }
    &intervals[start..]
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some(s[s.len() / 2])
}
