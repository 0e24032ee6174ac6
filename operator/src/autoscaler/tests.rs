//! The autoscaler on synthetic series: a simulated job (a source whose lag is
//! known, feeding a keyed vertex whose subtasks each process `capacity` records
//! per second) is sampled every 10 s, evaluated, and redeployed whenever the
//! autoscaler decides. Every decision is also replayed from what it recorded.

use super::*;
use crate::crd::VertexSample;

const CAPACITY: f64 = 100.0;

fn spec() -> AutoscalerSpec {
    AutoscalerSpec { enabled: true, ..Default::default() }
}

fn topology(p: usize, keyed_max: usize) -> Topology {
    Topology {
        vertices: vec![
            VertexInfo {
                id: 0,
                uid: "src".into(),
                name: "Source: clicks".into(),
                parallelism: 1,
                inputs: vec![],
                keyed: false,
                splits: None,
                single: false,
            },
            VertexInfo {
                id: 1,
                uid: "agg".into(),
                name: "WindowAggregate -> Sink".into(),
                parallelism: p,
                inputs: vec![0],
                keyed: true,
                splits: None,
                single: false,
            },
        ],
        max_parallelism: keyed_max,
    }
}

/// A small deterministic generator (no dependency for tests).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The simulated job.
struct Sim {
    s: Settings,
    status: AutoscalerStatus,
    p: usize,
    /// Total capacity is `capacity × p`, or `capacity` alone when the bottleneck is shared.
    shared_bottleneck: bool,
    lag: f64,
    read: f64,
    processed: f64,
    deployment: u32,
    now: i64,
    changes: Vec<(i64, usize, usize)>,
    events: Vec<(&'static str, String)>,
    decisions: Vec<Decision>,
}

impl Sim {
    fn new(spec: &AutoscalerSpec, p: usize) -> Sim {
        Sim {
            s: Settings::new(spec),
            status: AutoscalerStatus::default(),
            p,
            shared_bottleneck: false,
            lag: 0.0,
            read: 0.0,
            processed: 0.0,
            deployment: 1,
            now: 1_000_000,
            changes: vec![],
            events: vec![],
            decisions: vec![],
        }
    }

    /// Runs for `secs` with the upstream producing `load(t)` records per second.
    fn run(&mut self, secs: i64, load: impl Fn(i64) -> f64) {
        let end = self.now + secs;
        while self.now < end {
            let dt = SAMPLE_INTERVAL_SECS as f64;
            let capacity = if self.shared_bottleneck { CAPACITY } else { CAPACITY * self.p as f64 };
            let produced = load(self.now).max(0.0) * dt;
            let done = (self.lag + produced).min(capacity * dt);
            self.lag += produced - done;
            self.read += done;
            self.processed += done;
            self.now += SAMPLE_INTERVAL_SECS;
            let busy = 1000.0 * (done / (capacity * dt)).min(1.0);
            let sample = MetricSample {
                time: self.now,
                vertices: vec![
                    VertexSample {
                        uid: "src".into(),
                        parallelism: 1,
                        busy: 20.0,
                        backpressured: 1000.0 - busy,
                        records_in: 0,
                        records_out: self.read as u64,
                        lag: Some(self.lag as u64),
                    },
                    VertexSample {
                        uid: "agg".into(),
                        parallelism: self.p as i32,
                        busy,
                        backpressured: 0.0,
                        records_in: self.processed as u64,
                        records_out: (self.processed / 10.0) as u64,
                        lag: None,
                    },
                ],
            };
            record(&mut self.status, &self.s, &format!("{}/0", self.deployment), sample);
            let top = topology(self.p, 128);
            let out = evaluate(&top, &self.s, &mut self.status, self.now);
            self.events.extend(out.events);
            if let Some(d) = &self.status.last_decision
                && self.decisions.last() != Some(d)
            {
                for v in &d.vertices {
                    assert_eq!(replay(v, &self.s, (self.s.min, self.s.max.min(128))) as i32, v.recommended, "{v:?}");
                }
                self.decisions.push(d.clone());
            }
            if let Some(&to) = self.status.vertex_parallelism.get("agg")
                && to as usize != self.p
            {
                // The redeploy: a new run, counters from zero, the lag kept by the source.
                self.changes.push((self.now, self.p, to as usize));
                self.p = to as usize;
                self.deployment += 1;
                self.read = 0.0;
                self.processed = 0.0;
            }
        }
    }

    fn ups(&self) -> usize {
        self.changes.iter().filter(|c| c.2 > c.1).count()
    }

    fn downs(&self) -> usize {
        self.changes.iter().filter(|c| c.2 < c.1).count()
    }
}

#[test]
fn a_steady_load_inside_the_boundary_is_never_rescaled() {
    let mut sim = Sim::new(&spec(), 2);
    sim.run(3600, |_| 0.7 * 2.0 * CAPACITY);
    assert!(sim.changes.is_empty(), "{:?}", sim.changes);
    let rec = sim.status.last_decision.as_ref();
    assert!(rec.is_none(), "no decision to record: {rec:?}");
    assert_eq!(sim.status.recommended.get("agg"), Some(&2));
}

#[test]
fn a_step_up_is_met_by_one_rescale_to_the_target_utilization_and_then_holds() {
    let mut sim = Sim::new(&spec(), 1);
    sim.run(600, |_| 0.5 * CAPACITY);
    let step = sim.now;
    sim.run(3600, |_| 3.5 * CAPACITY);
    assert_eq!(sim.changes.len(), 1, "{:?}", sim.changes);
    let (at, from, to) = sim.changes[0];
    // 3.5 subtasks of load at 0.7 is 5; the lag built up until the decision adds its catch-up.
    assert!(from == 1 && (5..=6).contains(&to), "{:?}", sim.changes);
    let utilization = 3.5 / to as f64;
    assert!((0.55..=0.75).contains(&utilization), "utilization {utilization} at {to}");
    // The change is seen after MIN_INTERVALS samples of the new load.
    assert!(at - step <= 60, "decided {}s after the step", at - step);
    let d = sim.decisions.last().unwrap();
    assert!(d.summary.starts_with("vertex 1 busy 1.00, true rate 100/s, target 3"), "{}", d.summary);
    assert!(d.summary.ends_with(&format!("→ 1→{to}")), "{}", d.summary);
    assert!(sim.events.iter().any(|e| e.0 == "Autoscaled"), "{:?}", sim.events);
}

#[test]
fn a_step_down_scales_down_once_after_the_delay_and_never_below_the_need() {
    let mut sim = Sim::new(&spec(), 5);
    sim.run(600, |_| 3.5 * CAPACITY);
    assert!(sim.changes.is_empty(), "{:?}", sim.changes);
    let step = sim.now;
    sim.run(3600, |_| 1.2 * CAPACITY);
    assert_eq!(sim.changes.len(), 1, "{:?}", sim.changes);
    let (at, from, to) = sim.changes[0];
    assert_eq!(from, 5);
    assert!(1.2 / to as f64 <= 1.0, "to {to}: below what the load needs");
    let waited = at - step;
    assert!(waited >= sim.s.scale_down_delay, "scaled down {waited}s after the drop");
    assert!(waited <= sim.s.scale_down_delay + sim.s.metrics_window + 60, "scaled down {waited}s after the drop");
}

#[test]
fn noisy_metrics_around_the_target_do_not_rescale() {
    let mut rng = Lcg(7);
    let noise: Vec<f64> = (0..2000).map(|_| 1.0 + 0.4 * (rng.next() - 0.5)).collect();
    let mut sim = Sim::new(&spec(), 4);
    let start = sim.now;
    sim.run(3 * 3600, |t| 0.7 * 4.0 * CAPACITY * noise[((t - start) / 10) as usize % noise.len()]);
    assert!(sim.changes.is_empty(), "±20% noise: {:?}", sim.changes);
}

#[test]
fn a_sine_load_does_not_flap() {
    let mut sim = Sim::new(&spec(), 4);
    let start = sim.now;
    let period = 240.0;
    sim.run(3 * 3600, |t| {
        let phase = (t - start) as f64 / period * std::f64::consts::TAU;
        0.7 * 4.0 * CAPACITY * (1.0 + 0.6 * phase.sin())
    });
    assert!(sim.changes.len() <= 1, "{:?}", sim.changes);
    assert_eq!(sim.downs(), 0, "{:?}", sim.changes);
}

#[test]
fn a_backlog_is_caught_up_in_time_with_one_scale_down_after_it() {
    let mut sim = Sim::new(&spec(), 2);
    sim.run(300, |_| 150.0);
    assert!(sim.changes.is_empty(), "{:?}", sim.changes);
    // The upstream replays 400 s of input at once (small enough that one scale-down
    // within scaleDownMaxFactor 0.6 reaches the need again).
    sim.lag = 60_000.0;
    let backlog = sim.now;
    let mut cleared = None;
    for _ in 0..(2 * 3600 / 10) {
        sim.run(10, |_| 150.0);
        if cleared.is_none() && sim.lag < 150.0 * 10.0 {
            cleared = Some(sim.now);
        }
    }
    let cleared = cleared.expect("the backlog never cleared") - backlog;
    let catch_up = sim.s.catch_up as f64;
    let within = (catch_up * 0.75..=catch_up * 1.25).contains(&(cleared as f64));
    assert!(within, "cleared in {cleared}s, catchUpDuration {catch_up}s ± 25%: {:?}", sim.changes);
    assert_eq!(sim.ups(), 1, "{:?}", sim.changes);
    assert_eq!(sim.downs(), 1, "{:?}", sim.changes);
    let (down_at, ..) = sim.changes[1];
    assert!(down_at - backlog > cleared, "no scale-down during the catch-up: {:?}", sim.changes);
    assert_eq!(sim.p, 3, "150/s at 0.7 of 100/s per subtask");
}

#[test]
fn a_bottleneck_that_scaling_cannot_fix_is_scaled_up_once_and_reported() {
    let mut sim = Sim::new(&spec(), 1);
    sim.shared_bottleneck = true;
    sim.run(3600, |_| 3.5 * CAPACITY);
    assert_eq!(sim.ups(), 1, "{:?}", sim.changes);
    assert_eq!(sim.status.ineffective, vec!["agg".to_string()]);
    let e = sim.events.iter().find(|e| e.0 == "ScalingIneffective").expect("an event");
    assert!(
        e.1.starts_with("vertex 1: scaling 1→") && e.1.contains("raised its true rate from 100 to 100 records/s"),
        "{}",
        e.1
    );
    let d = sim.status.last_decision.as_ref().unwrap();
    assert_eq!(d.outcome, "scaled");
}

#[test]
fn recommend_mode_changes_nothing_and_reports_the_same_decision() {
    let mut applied = Sim::new(&spec(), 1);
    applied.run(1800, |_| 3.5 * CAPACITY);
    let mut s = spec();
    s.mode = AutoscalerMode::Recommend;
    let mut sim = Sim::new(&s, 1);
    sim.run(1800, |_| 3.5 * CAPACITY);
    assert!(sim.changes.is_empty() && sim.status.vertex_parallelism.is_empty(), "{:?}", sim.changes);
    let (first, apply) = (&sim.decisions[0], &applied.decisions[0]);
    assert_eq!((first.outcome.as_str(), apply.outcome.as_str()), ("recommended", "scaled"));
    assert_eq!((&first.summary, &first.vertices, &first.time), (&apply.summary, &apply.vertices, &apply.time));
    // Nothing changes, so the backlog grows and so does the recommendation: one Event per change.
    let events = sim.events.iter().filter(|e| e.0 == "ScalingRecommended").count();
    let changes = sim.decisions.windows(2).filter(|w| w[0].vertices[1].decided != w[1].vertices[1].decided).count();
    assert_eq!(events, changes + 1, "{:?}", sim.events);
    assert_eq!(sim.status.target_parallelism, sim.status.recommended.values().copied().max());
}

#[test]
fn a_new_run_or_a_new_basis_starts_the_history_over() {
    let s = Settings::new(&spec());
    let mut st = for_basis(None, "a/1/128");
    let sample = |t| MetricSample { time: t, vertices: vec![] };
    record(&mut st, &s, "1/0", sample(100));
    assert!(st.history.is_empty(), "inside the stabilization period");
    record(&mut st, &s, "1/0", sample(100 + s.stabilization));
    record(&mut st, &s, "1/0", sample(100 + s.stabilization + 10));
    assert_eq!(st.history.len(), 2);
    record(&mut st, &s, "1/1", sample(400));
    assert!(st.history.is_empty() && st.run_since == 400, "a restart is a new run");
    st.vertex_parallelism.insert("x".into(), 3);
    assert_eq!(for_basis(Some(&st), "a/1/128").vertex_parallelism.len(), 1);
    assert!(for_basis(Some(&st), "b/1/128").vertex_parallelism.is_empty(), "new SQL: the user's spec again");
}

#[test]
fn a_history_an_older_operator_wrote_per_sample_is_read_and_written_back_in_columns() {
    // `status.autoscaler` as the operator wrote it before the columnar form.
    let old = serde_json::json!({
        "basis": "a/1/128", "run": "1/0", "runSince": 100, "sampledAt": 210,
        "history": [
            {"time": 200, "vertices": [{"uid": "src", "parallelism": 2, "busy": 512.3, "backpressured": 0.0,
                "recordsIn": 1000, "recordsOut": 1000, "lag": 40}]},
            {"time": 210, "vertices": [{"uid": "src", "parallelism": 2, "busy": 498.7, "backpressured": 1.5,
                "recordsIn": 2010, "recordsOut": 2010}]}
        ]
    });
    let read: AutoscalerStatus = serde_json::from_value(old).unwrap();
    assert!(read.history.is_empty() && read.legacy_history.len() == 2);
    let st = for_basis(Some(&read), "a/1/128");
    assert_eq!(st.history, read.legacy_history, "taken over as the history");
    assert!(st.legacy_history.is_empty());
    let written = serde_json::to_value(&st).unwrap();
    assert!(written.get("history").is_none(), "the old field is not written again: {written}");
    assert_eq!(
        written["samples"],
        serde_json::json!({"times": [200, 10], "vertices": [{"uid": "src", "parallelism": [2], "busy": [5123, 4987],
            "backpressured": [0, 15], "recordsIn": [1000, 1010], "recordsOut": [1000, 1010], "lag": [40, null]}]})
    );
    let again: AutoscalerStatus = serde_json::from_value(written).unwrap();
    assert_eq!(again.history, st.history, "the columns read back as the same samples");
    // Of another basis, the old history is dropped with the rest.
    assert!(for_basis(Some(&read), "b/1/128").history.is_empty());
}

/// Over 10⁴ cases, including prime split counts and 128 and 720 key groups.
#[test]
fn alignment_keeps_the_direction_the_splits_and_the_bound() {
    let mut rng = Lcg(42);
    let primes = [2usize, 3, 5, 7, 11, 13, 31, 61, 127];
    for case in 0..10_000 {
        let key_groups = [128, 720, 1 + (rng.next() * 1000.0) as usize][case % 3];
        let source = case % 4 == 0;
        let splits = source.then(|| {
            if case % 8 == 0 {
                primes[(rng.next() * primes.len() as f64) as usize]
            } else {
                1 + (rng.next() * 200.0) as usize
            }
        });
        let b = Bounds { min: 1, max: key_groups, key_groups: (!source).then_some(key_groups), splits };
        let current = 1 + (rng.next() * key_groups.min(splits.unwrap_or(usize::MAX)) as f64) as usize;
        let need = rng.next() * 2.0 * key_groups as f64;
        let limits = StepLimits { up_max_factor: None, down_max_factor: 1.0 };
        let got = align::choose(current, need, limits, b);
        let hi = key_groups.min(splits.unwrap_or(usize::MAX));
        let wanted = (need.ceil().max(1.0) as usize).clamp(1, hi);
        let ctx = format!("case {case}: current {current}, need {need:.2}, {b:?} → {got}");
        assert!(got >= 1 && got <= hi, "{ctx}");
        if let Some(n) = splits {
            assert!(got <= n, "{ctx}");
        }
        match wanted.cmp(&current) {
            std::cmp::Ordering::Greater => {
                assert!(got >= wanted || got == current, "a scale-up stays a scale-up: {ctx}");
                if splits.is_none() {
                    assert!(got as f64 <= wanted as f64 * align::OVERSHOOT, "within 1.25× the need: {ctx}");
                }
            }
            std::cmp::Ordering::Less => {
                assert!(got <= current, "a scale-down stays a scale-down: {ctx}");
                if splits.is_none() {
                    assert!(got >= wanted && got as f64 <= wanted as f64 * align::OVERSHOOT, "{ctx}");
                }
            }
            std::cmp::Ordering::Equal => assert_eq!(got, current, "{ctx}"),
        }
    }
}
