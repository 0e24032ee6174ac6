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
    // A load that holds over the whole window, as the check above counts one (up to
    // an interval short), is measured, however few intervals that window holds: the
    // controller samples 10 s after its last reconcile ended, so samples are 11-12 s
    // apart on a busy machine and a 30 s window keeps 2 intervals, never 3.
    let span = last.time - segment.first().map_or(last.time, |i| i.start);
    if segment.len() < MIN_INTERVALS && span + s.sample_interval < s.metrics_window {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoscaler::{VertexInfo, record};
    use crate::crd::{AutoscalerSpec, AutoscalerStatus, VertexSample};

    fn topology() -> Topology {
        let vertex = |id: usize, uid: &str, inputs: Vec<usize>| VertexInfo {
            id,
            uid: uid.into(),
            name: uid.into(),
            parallelism: 1,
            inputs,
            keyed: false,
            splits: None,
            single: false,
        };
        Topology { vertices: vec![vertex(0, "src", vec![]), vertex(1, "sink", vec![0])], max_parallelism: 128 }
    }

    /// A source held back to 500 records/s by a busy sink while `demand(t)` records
    /// per second arrive: its lag grows by the difference.
    fn sample(t: i64, read: u64, lag: u64) -> MetricSample {
        let v = |uid: &str, busy, records_in, records_out, lag| VertexSample {
            uid: String::from(uid),
            parallelism: 1,
            busy,
            backpressured: 0.0,
            records_in,
            records_out,
            lag,
        };
        MetricSample { time: t, vertices: vec![v("src", 5.0, 0, read, Some(lag)), v("sink", 1000.0, read, 0, None)] }
    }

    /// Records samples at `times` (the first at 0) of a load of `demand(t)` records/s
    /// read at 500/s, and estimates after the last.
    fn run(s: &Settings, times: &[i64], demand: impl Fn(i64) -> f64) -> Estimate {
        let mut status = AutoscalerStatus::default();
        let (mut read, mut lag) = (0.0, 0.0);
        let mut prev = 0;
        for &t in times {
            let dt = (t - prev) as f64;
            read += 500.0 * dt;
            lag += (demand(t) - 500.0) * dt;
            prev = t;
            record(&mut status, s, "1/0", sample(1_000_000 + t, read as u64, lag as u64));
        }
        estimate(&topology(), &status.history, s)
    }

    fn settings() -> Settings {
        let mut s = Settings::new(&AutoscalerSpec { enabled: true, ..Default::default() });
        (s.metrics_window, s.stabilization) = (30, 0);
        s
    }

    #[test]
    fn a_steady_load_sampled_a_little_late_is_estimated_once_the_window_is_covered() {
        let s = settings();
        // The controller samples every 10 s after its last reconcile ended: 11-12 s apart
        // on a busy machine, so a 30 s window holds 3 samples, 2 intervals.
        let late = [0, 11, 23, 34, 45, 57, 68];
        for n in 4..=late.len() {
            let e = run(&s, &late[..n], |_| 1750.0);
            let Estimate::Ready { figures, .. } = &e else { panic!("{n} samples: {e:?}") };
            // The demand, and the lag's catch-up over catchUpDuration.
            let catch_up = figures[0].lag.unwrap_or_default() as f64 / s.catch_up as f64;
            assert!((figures[0].target_rate - catch_up - 1750.0).abs() < 2.0, "{figures:?}");
        }
        // Before the window is covered, it still waits.
        assert!(matches!(run(&s, &late[..2], |_| 1750.0), Estimate::NotYet(w) if w.starts_with("collecting")));
        // On time, as before: 3 intervals.
        assert!(matches!(run(&s, &[0, 10, 20, 30, 40], |_| 1750.0), Estimate::Ready { .. }));
    }

    #[test]
    fn a_change_of_load_inside_the_window_still_waits_for_samples_of_the_new_load() {
        let s = settings();
        // The demand steps from 1750/s to 700/s (ratio 2.5 > CHANGE_FACTOR) for the last interval.
        let late = [0, 11, 23, 34, 45];
        let e = run(&s, &late, |t| if t > 34 { 700.0 } else { 1750.0 });
        assert!(
            matches!(&e, Estimate::NotYet(w) if w == "the load changed at 1000034; waiting for 3 samples of the new load (have 1)"),
            "{e:?}"
        );
    }
}
