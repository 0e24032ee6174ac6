//! The operator's Prometheus metrics, served at `/metrics`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::crd::{Phase, UpgradeKind};
use crate::error::Error;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VertexLabel {
    job: String,
    vertex: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabel {
    job: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    job: String,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

fn reconcile_buckets() -> Histogram {
    Histogram::new([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0])
}

fn transition_buckets() -> Histogram {
    Histogram::new([1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0])
}

tokio::task_local! {
    static ENGINE_CLOCK: std::cell::Cell<u64>;
}

/// Runs `f` and returns its output with the time it spent waiting on the engine.
pub async fn with_engine_clock<F: std::future::Future>(f: F) -> (F::Output, Duration) {
    ENGINE_CLOCK
        .scope(std::cell::Cell::new(0), async move {
            let out = f.await;
            let micros = ENGINE_CLOCK.try_with(|c| c.get()).unwrap_or(0);
            (out, Duration::from_micros(micros))
        })
        .await
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabel, Counter>,
    errors: Family<ErrorLabel, Counter>,
    duration: Histogram,
    engine: Histogram,
    phases: Family<PhaseLabel, Gauge>,
    savepoints: Family<ResultLabel, Counter>,
    transitions: Family<KindLabel, Histogram, fn() -> Histogram>,
    jobs: Mutex<HashMap<String, Phase>>,
    recommended: Family<VertexLabel, Gauge>,
    utilization: Family<VertexLabel, FloatGauge>,
    decisions: Family<DecisionLabel, Counter>,
    decided_at: Family<JobLabel, Gauge>,
    /// The vertices each autoscaled job has series for, and its last decision's time.
    scaled: Mutex<HashMap<String, (Vec<String>, String)>>,
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sluice_operator");
        let reconciles = Family::<ResultLabel, Counter>::default();
        let errors = Family::<ErrorLabel, Counter>::default();
        let duration = reconcile_buckets();
        let engine = reconcile_buckets();
        let phases = Family::<PhaseLabel, Gauge>::default();
        let savepoints = Family::<ResultLabel, Counter>::default();
        let transitions = Family::<KindLabel, Histogram, fn() -> Histogram>::new_with_constructor(transition_buckets);
        let leader = Gauge::default();
        let recommended = Family::<VertexLabel, Gauge>::default();
        let utilization = Family::<VertexLabel, FloatGauge>::default();
        let decisions = Family::<DecisionLabel, Counter>::default();
        let decided_at = Family::<JobLabel, Gauge>::default();
        registry.register(
            "autoscaler_recommended_parallelism",
            "The autoscaler's last recommendation per vertex (by uid)",
            recommended.clone(),
        );
        registry.register(
            "autoscaler_utilization",
            "Target rate over true processing rate per vertex, at the last decision",
            utilization.clone(),
        );
        registry.register("autoscaler_decisions", "Autoscaler decisions, by outcome", decisions.clone());
        registry.register(
            "autoscaler_last_decision_timestamp_seconds",
            "When the autoscaler last decided a change (unix seconds)",
            decided_at.clone(),
        );
        registry.register("reconciles", "StreamJob reconciles, by result", reconciles.clone());
        registry.register("reconcile_errors", "Failed reconciles, by error kind", errors.clone());
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile time, excluding time spent waiting on engine REST calls",
            duration.clone(),
        );
        registry.register("engine_request_duration_seconds", "Engine REST calls", engine.clone());
        registry.register("jobs", "StreamJobs per phase", phases.clone());
        registry.register(
            "savepoints",
            "StreamJob savepoints (periodic, upgrade, suspend, nonce, deletion) that completed or failed, by result",
            savepoints.clone(),
        );
        for result in ["completed", "failed"] {
            savepoints.get_or_create(&ResultLabel { result: result.into() }).inc_by(0);
        }
        registry.register(
            "transition_duration_seconds",
            "Upgrade, suspend, restart and rollback durations, from the write-ahead record to the new deployment",
            transitions.clone(),
        );
        registry.register("leader", "1 while this replica holds the leader Lease", leader.clone());
        for p in Phase::ALL {
            phases.get_or_create(&PhaseLabel { phase: p.as_str().into() }).set(0);
        }
        Metrics {
            registry,
            reconciles,
            errors,
            duration,
            engine,
            phases,
            savepoints,
            transitions,
            jobs: Mutex::new(HashMap::new()),
            recommended,
            utilization,
            decisions,
            decided_at,
            scaled: Mutex::new(HashMap::new()),
            leader,
        }
    }

    /// Refreshes a job's autoscaler series from its status (`None`: off, or the job is gone).
    pub fn autoscaler(&self, job: &str, status: Option<&crate::crd::AutoscalerStatus>) {
        let Ok(mut scaled) = self.scaled.lock() else { return };
        let (old, last) = scaled.remove(job).unwrap_or_default();
        for vertex in old {
            let label = VertexLabel { job: job.into(), vertex };
            self.recommended.remove(&label);
            self.utilization.remove(&label);
        }
        let Some(a) = status else {
            self.decided_at.remove(&JobLabel { job: job.into() });
            return;
        };
        for (uid, p) in &a.recommended {
            self.recommended.get_or_create(&VertexLabel { job: job.into(), vertex: uid.clone() }).set(i64::from(*p));
        }
        let mut time = String::new();
        if let Some(d) = &a.last_decision {
            for v in &d.vertices {
                if let Some(r) = v.true_rate.filter(|r| *r > 0.0) {
                    let label = VertexLabel { job: job.into(), vertex: v.uid.clone() };
                    self.utilization.get_or_create(&label).set(v.target_rate / r);
                }
            }
            if d.time != last {
                self.decisions.get_or_create(&DecisionLabel { job: job.into(), outcome: d.outcome.clone() }).inc();
                if let Ok(t) = d.time.parse::<jiff::Timestamp>() {
                    self.decided_at.get_or_create(&JobLabel { job: job.into() }).set(t.as_second());
                }
            }
            time = d.time.clone();
        }
        scaled.insert(job.to_string(), (a.recommended.keys().cloned().collect(), time));
    }

    pub fn reconciled(&self, own: Duration, error: Option<&Error>) {
        let result = if error.is_some() { "error" } else { "ok" };
        self.reconciles.get_or_create(&ResultLabel { result: result.into() }).inc();
        if let Some(e) = error {
            self.errors.get_or_create(&ErrorLabel { error: e.metric_label().into() }).inc();
        }
        self.duration.observe(own.as_secs_f64());
    }

    /// Records an engine call; inside [`with_engine_clock`] it is also charged to that reconcile.
    pub fn engine_wait(&self, d: Duration) {
        self.engine.observe(d.as_secs_f64());
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let _ = ENGINE_CLOCK.try_with(|c| c.set(c.get().saturating_add(micros)));
    }

    /// Records a job's phase (`None` when it is gone) and refreshes the per-phase gauges.
    pub fn phase(&self, job: &str, phase: Option<Phase>) {
        let Ok(mut jobs) = self.jobs.lock() else { return };
        match phase {
            Some(p) => {
                jobs.insert(job.to_string(), p);
            }
            None => {
                jobs.remove(job);
            }
        }
        for p in Phase::ALL {
            let n = jobs.values().filter(|x| **x == p).count();
            self.phases
                .get_or_create(&PhaseLabel { phase: p.as_str().into() })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Counts a savepoint's end from the reason of the Event that reports it.
    pub fn savepoint_event(&self, reason: &str) {
        let result = match reason {
            "SavepointCompleted" => "completed",
            "SavepointFailed" | "SavepointTimedOut" => "failed",
            _ => return,
        };
        self.savepoints.get_or_create(&ResultLabel { result: result.into() }).inc();
    }

    pub fn transition(&self, kind: UpgradeKind, secs: f64) {
        let kind = match kind {
            UpgradeKind::Upgrade => "upgrade",
            UpgradeKind::Suspend => "suspend",
            UpgradeKind::Restart => "restart",
            UpgradeKind::Rollback => "rollback",
        };
        self.transitions.get_or_create(&KindLabel { kind: kind.into() }).observe(secs);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn savepoints_are_counted_by_the_reason_of_their_event() {
        let m = Metrics::new();
        let text = m.encode();
        assert!(text.contains("sluice_operator_savepoints_total{result=\"completed\"} 0"), "{text}");
        assert!(text.contains("sluice_operator_savepoints_total{result=\"failed\"} 0"), "{text}");
        for reason in ["SavepointCompleted", "SavepointCompleted", "SavepointTimedOut", "SavepointFailed", "Upgraded"] {
            m.savepoint_event(reason);
        }
        let text = m.encode();
        assert!(text.contains("sluice_operator_savepoints_total{result=\"completed\"} 2"), "{text}");
        assert!(text.contains("sluice_operator_savepoints_total{result=\"failed\"} 2"), "{text}");
    }
}
