//! The figures the REST API derives from the subtasks' counters: per-vertex
//! and per-subtask rates (`GET /v1/job/metrics`), the history of the last ten
//! minutes (`GET /v1/job/history`), and the Prometheus text (`GET /metrics`).
//! A sampler reads every counter once a second; rates, the history and the
//! latency percentiles come from consecutive readings.

use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sluice_api::rest as api;

use crate::job::{JobState, JobStatus, SnapshotStatus, rfc3339};
use crate::metrics::history::{LatencyWindow, Ring, SinkReading};
use crate::metrics::{Counts, NO_WATERMARK, Rates, Sample};

/// Points of `GET /v1/job/history`: ten minutes at one a second.
const HISTORY_POINTS: usize = 600;
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Percentiles in `GET /v1/job/metrics` cover this much of the recent past.
const PERCENTILES_OVER: Duration = Duration::from_secs(60);
/// The history's p99 covers this much.
const HISTORY_P99_OVER: Duration = Duration::from_secs(10);

/// What the sampler keeps between requests.
pub(super) struct Sampled {
    /// The latest per-subtask rates.
    rates: Vec<Rates>,
    history: Ring<api::HistoryPoint>,
    latency: LatencyWindow,
}

impl Sampled {
    pub(super) fn new(subtasks: usize) -> Mutex<Sampled> {
        Mutex::new(Sampled {
            rates: vec![Rates::default(); subtasks],
            history: Ring::new(HISTORY_POINTS),
            latency: LatencyWindow::new(PERCENTILES_OVER),
        })
    }
}

/// Reads every counter once a second, forever.
pub(super) async fn sample(job: Arc<JobState>, sampled: Arc<Mutex<Sampled>>) {
    let mut prev: Vec<Sample> = job.subtasks.iter().map(|m| m.snapshot()).collect();
    loop {
        tokio::time::sleep(SAMPLE_EVERY).await;
        let now: Vec<Sample> = job.subtasks.iter().map(|m| m.snapshot()).collect();
        let rates: Vec<Rates> = prev.iter().zip(&now).map(|(a, b)| Rates::between(a, b)).collect();
        let reading = sink_reading(&job);
        if let Ok(mut s) = sampled.lock() {
            s.rates = rates;
            s.latency.push(Instant::now(), reading);
            let point = history_point(&job, &s, &now);
            s.history.push(point);
        }
        prev = now;
    }
}

/// Every sink's histograms, merged over its subtasks, by vertex.
fn sink_reading(job: &JobState) -> SinkReading {
    job.vertices
        .iter()
        .map(|v| {
            v.is_sink.then(|| {
                let (mut p, mut e) = (Counts::default(), Counts::default());
                for m in job.metrics_of(v.id) {
                    p.merge(&m.processing_latency.read());
                    e.merge(&m.event_time_lag.read());
                }
                (p, e)
            })
        })
        .collect()
}

fn history_point(job: &JobState, s: &Sampled, samples: &[Sample]) -> api::HistoryPoint {
    let now_ms = crate::job::now_ms() as i64;
    let vertices = job
        .vertices
        .iter()
        .map(|v| {
            let g = Group::of(job, &s.rates, samples, v.id);
            let watermark = g.watermark();
            api::HistoryVertex {
                id: v.id,
                records_in_per_second: g.sum(|r| r.records_in_per_second),
                records_out_per_second: g.sum(|r| r.records_out_per_second),
                busy_ratio: g.mean(|r| r.busy_ms_per_second) / 1000.0,
                backpressured_ratio: g.mean(|r| r.backpressured_ms_per_second) / 1000.0,
                watermark_lag_ms: (watermark != NO_WATERMARK && watermark != i64::MAX)
                    .then(|| now_ms.saturating_sub(watermark)),
                latency_p99_ms: s.latency.recent(v.id, HISTORY_P99_OVER).and_then(|(p, _)| p.quantile_ms(0.99)),
            }
        })
        .collect();
    api::HistoryPoint { time: rfc3339(SystemTime::now()), vertices }
}

/// One vertex's subtasks: their indexes, latest rates and samples.
struct Group<'a> {
    rates: Vec<&'a Rates>,
    samples: Vec<&'a Sample>,
}

impl<'a> Group<'a> {
    fn of(job: &JobState, rates: &'a [Rates], samples: &'a [Sample], vertex: usize) -> Group<'a> {
        let idx: Vec<usize> =
            job.subtasks.iter().enumerate().filter(|(_, m)| m.vertex == vertex).map(|(i, _)| i).collect();
        Group {
            rates: idx.iter().filter_map(|i| rates.get(*i)).collect(),
            samples: idx.iter().filter_map(|i| samples.get(*i)).collect(),
        }
    }

    fn sum(&self, f: impl Fn(&Rates) -> f64) -> f64 {
        self.rates.iter().map(|r| f(r)).sum()
    }

    fn mean(&self, f: impl Fn(&Rates) -> f64) -> f64 {
        self.sum(f) / self.rates.len().max(1) as f64
    }

    fn watermark(&self) -> i64 {
        self.samples.iter().map(|s| s.watermark).min().unwrap_or(NO_WATERMARK)
    }

    /// Summed over subtasks; `None` when any subtask does not know it.
    fn known_sum(&self, f: impl Fn(&Sample) -> Option<u64>) -> Option<u64> {
        self.samples.iter().map(|s| f(s)).sum()
    }
}

/// CPU seconds per million records in, over the last second, or since the start
/// when nothing flowed in it; `None` before any record.
fn cpu_per_million(cpu_per_second: f64, records_per_second: f64, cpu_ns: u64, records: u64) -> Option<f64> {
    if records_per_second > 0.0 {
        Some(cpu_per_second / records_per_second * 1e6)
    } else if records > 0 {
        Some(cpu_ns as f64 / 1e9 / records as f64 * 1e6)
    } else {
        None
    }
}

/// A watermark as the API writes it: RFC 3339, `+inf` at the end of input.
fn watermark_text(w: i64) -> Option<String> {
    match w {
        NO_WATERMARK => None,
        i64::MAX => Some("+inf".into()),
        w => chrono::DateTime::from_timestamp_millis(w).map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    }
}

/// A time in unix ms as RFC 3339 with milliseconds.
fn time_text(ms: u64) -> Option<String> {
    let d = chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)?;
    Some(d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn quantiles(c: &Counts) -> api::Quantiles {
    api::Quantiles { p50: c.quantile_ms(0.5), p99: c.quantile_ms(0.99), p999: c.quantile_ms(0.999), count: c.total() }
}

/// A sink's percentiles over the last minute, or since the start when the last
/// minute counted nothing (a finished job).
fn sink_latency(latency: &LatencyWindow, vertex: usize) -> Option<api::SinkLatency> {
    let (mut p, mut e) = latency.recent(vertex, PERCENTILES_OVER)?;
    if let Some((tp, te)) = latency.total(vertex) {
        if p.total() == 0 {
            p = tp;
        }
        if e.total() == 0 {
            e = te;
        }
    }
    Some(api::SinkLatency { event_time_lag_ms: quantiles(&e), processing_latency_ms: quantiles(&p) })
}

/// Per vertex, aggregated over subtasks: ratios are averages, rates and counts are sums,
/// the watermark is the minimum.
pub(super) fn vertex_metrics(job: &JobState, sampled: &Mutex<Sampled>) -> Vec<api::VertexMetrics> {
    let Ok(s) = sampled.lock() else { return Vec::new() };
    let samples: Vec<Sample> = job.subtasks.iter().map(|m| m.snapshot()).collect();
    job.vertices
        .iter()
        .map(|v| {
            let g = Group::of(job, &s.rates, &samples, v.id);
            let subtasks = g
                .rates
                .iter()
                .zip(&g.samples)
                .enumerate()
                .map(|(i, (r, x))| api::SubtaskMetrics {
                    subtask: i,
                    busy_ratio: r.busy_ms_per_second / 1000.0,
                    backpressured_ratio: r.backpressured_ms_per_second / 1000.0,
                    idle_ratio: r.idle_ms_per_second / 1000.0,
                    records_in_per_second: r.records_in_per_second,
                    records_out_per_second: r.records_out_per_second,
                    watermark: watermark_text(x.watermark),
                    lag: if v.is_source { x.pending_records } else { None },
                    cpu_seconds_per_million_records: cpu_per_million(
                        r.cpu_per_second,
                        r.records_in_per_second,
                        x.cpu_ns,
                        x.records_in,
                    ),
                })
                .collect();
            api::VertexMetrics {
                id: v.id,
                uid: v.uid.clone(),
                name: v.name.clone(),
                parallelism: v.parallelism,
                busy_ratio: g.mean(|x| x.busy_ms_per_second) / 1000.0,
                backpressured_ratio: g.mean(|x| x.backpressured_ms_per_second) / 1000.0,
                idle_ratio: g.mean(|x| x.idle_ms_per_second) / 1000.0,
                busy_time_ms_per_second: g.mean(|x| x.busy_ms_per_second),
                back_pressured_time_ms_per_second: g.mean(|x| x.backpressured_ms_per_second),
                idle_time_ms_per_second: g.mean(|x| x.idle_ms_per_second),
                records_in_per_second: g.sum(|x| x.records_in_per_second),
                records_out_per_second: g.sum(|x| x.records_out_per_second),
                bytes_in_per_second: g.sum(|x| x.bytes_in_per_second),
                bytes_out_per_second: g.sum(|x| x.bytes_out_per_second),
                records_in: g.samples.iter().map(|s| s.records_in).sum(),
                records_out: g.samples.iter().map(|s| s.records_out).sum(),
                watermark: watermark_text(g.watermark()),
                lag: if v.is_source { g.known_sum(|s| s.pending_records) } else { None },
                late_records_dropped: g.samples.iter().map(|s| s.late_records_dropped).sum(),
                cpu_seconds_per_million_records: cpu_per_million(
                    g.sum(|x| x.cpu_per_second),
                    g.sum(|x| x.records_in_per_second),
                    g.samples.iter().map(|s| s.cpu_ns).sum(),
                    g.samples.iter().map(|s| s.records_in).sum(),
                ),
                state_bytes: g.known_sum(|s| s.state_bytes),
                state_keys: if v.keyed { g.known_sum(|s| s.state_keys) } else { None },
                state_keys_on_disk: if v.keyed { g.known_sum(|s| s.state_keys_on_disk) } else { None },
                latency: if v.is_sink { sink_latency(&s.latency, v.id) } else { None },
                first_record_at: g.samples.iter().filter_map(|s| s.first_record_ms).min().and_then(time_text),
                last_record_at: g.samples.iter().filter_map(|s| s.last_record_ms).max().and_then(time_text),
                subtasks,
            }
        })
        .collect()
}

pub(super) fn history(sampled: &Mutex<Sampled>) -> api::History {
    let points = sampled.lock().map(|s| s.history.to_vec()).unwrap_or_default();
    api::History { interval_ms: SAMPLE_EVERY.as_millis() as u64, points }
}

/// A Prometheus metric: name, type, and how to read it from a subtask.
type Gauge = (&'static str, &'static str, fn(&Sample, &Rates) -> f64);

/// Per subtask, labelled `{job, vertex, subtask}`.
const SUBTASK_METRICS: [Gauge; 16] = [
    ("sluice_records_in_total", "counter", |s, _| s.records_in as f64),
    ("sluice_records_out_total", "counter", |s, _| s.records_out as f64),
    ("sluice_bytes_in_total", "counter", |s, _| s.bytes_in as f64),
    ("sluice_bytes_out_total", "counter", |s, _| s.bytes_out as f64),
    ("sluice_late_records_dropped_total", "counter", |s, _| s.late_records_dropped as f64),
    ("sluice_cpu_seconds_total", "counter", |s, _| s.cpu_ns as f64 / 1e9),
    ("sluice_busy_time_ms_per_second", "gauge", |_, r| r.busy_ms_per_second),
    ("sluice_backpressured_time_ms_per_second", "gauge", |_, r| r.backpressured_ms_per_second),
    ("sluice_idle_time_ms_per_second", "gauge", |_, r| r.idle_ms_per_second),
    ("sluice_records_in_per_second", "gauge", |_, r| r.records_in_per_second),
    ("sluice_records_out_per_second", "gauge", |_, r| r.records_out_per_second),
    ("sluice_current_watermark_ms", "gauge", |s, _| match s.watermark {
        NO_WATERMARK => f64::NAN,
        w => w as f64,
    }),
    ("sluice_pending_records", "gauge", |s, _| s.pending_records.map_or(f64::NAN, |p| p as f64)),
    ("sluice_state_bytes", "gauge", |s, _| s.state_bytes.map_or(f64::NAN, |p| p as f64)),
    ("sluice_state_keys", "gauge", |s, _| s.state_keys.map_or(f64::NAN, |p| p as f64)),
    ("sluice_state_keys_on_disk", "gauge", |s, _| s.state_keys_on_disk.map_or(f64::NAN, |p| p as f64)),
];

/// `GET /metrics`: Prometheus text format 0.0.4.
pub(super) fn prometheus(job: &JobState, sampled: &Mutex<Sampled>) -> String {
    let rates = sampled.lock().map(|s| s.rates.clone()).unwrap_or_default();
    let mut out = String::new();
    let id = &job.job_id;
    let samples: Vec<Sample> = job.subtasks.iter().map(|m| m.snapshot()).collect();
    for (name, kind, f) in SUBTASK_METRICS {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (i, m) in job.subtasks.iter().enumerate() {
            let r = rates.get(i).copied().unwrap_or_default();
            let v = f(&samples[i], &r);
            if v.is_nan() {
                continue;
            }
            let _ = writeln!(out, "{name}{{job=\"{id}\",vertex=\"{}\",subtask=\"{}\"}} {v}", m.vertex, m.subtask);
        }
    }
    let reading = sink_reading(job);
    for (name, help, pick) in [
        ("sluice_sink_processing_latency_seconds", "From a source's read to the sink's write, by latency markers", 0),
        ("sluice_sink_event_time_lag_seconds", "Processing time minus event time of each record a sink writes", 1),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (v, r) in reading.iter().enumerate() {
            let Some(pair) = r else { continue };
            let c = if pick == 0 { &pair.0 } else { &pair.1 };
            for (le, n) in c.prometheus_buckets() {
                let _ = writeln!(out, "{name}_bucket{{job=\"{id}\",vertex=\"{v}\",le=\"{le}\"}} {n}");
            }
            let _ = writeln!(out, "{name}_sum{{job=\"{id}\",vertex=\"{v}\"}} {}", c.sum_us as f64 / 1e6);
            let _ = writeln!(out, "{name}_count{{job=\"{id}\",vertex=\"{v}\"}} {}", c.total());
        }
    }
    job_metrics(&mut out, job);
    out
}

/// Job-wide series, labelled `{job}`: state, restarts, checkpoints, lineage.
fn job_metrics(out: &mut String, job: &JobState) {
    use std::sync::atomic::Ordering::Relaxed;
    let id = &job.job_id;
    let mut line = |name: &str, kind: &str, labels: &str, v: f64| {
        let _ = writeln!(out, "# TYPE {name} {kind}\n{name}{{job=\"{id}\"{labels}}} {v}");
    };
    line("sluice_job_running", "gauge", "", f64::from(u8::from(job.status() == JobStatus::Running)));
    line("sluice_job_restarts_total", "counter", "", job.restarts.load(Relaxed) as f64);
    let history = job.checkpoints();
    let count = |st: SnapshotStatus| history.iter().filter(|c| c.status == st).count() as f64;
    let completed = job.checkpoints_ended(SnapshotStatus::Completed) as f64;
    let failed = job.checkpoints_ended(SnapshotStatus::Failed) as f64;
    line("sluice_checkpoints_in_progress", "gauge", "", count(SnapshotStatus::InProgress));
    let _ = writeln!(
        out,
        "# TYPE sluice_checkpoints_total counter\nsluice_checkpoints_total{{job=\"{id}\",status=\"completed\"}} {completed}\nsluice_checkpoints_total{{job=\"{id}\",status=\"failed\"}} {failed}"
    );
    if let Some(last) = job.last_completed_checkpoint() {
        let done = chrono::DateTime::parse_from_rfc3339(&last.trigger_time)
            .map(|t| t.timestamp_millis() as f64 / 1000.0 + last.duration_ms as f64 / 1000.0)
            .unwrap_or(f64::NAN);
        let mut line = |name: &str, v: f64| {
            let _ = writeln!(out, "# TYPE {name} gauge\n{name}{{job=\"{id}\"}} {v}");
        };
        line("sluice_last_checkpoint_duration_ms", last.duration_ms as f64);
        line("sluice_last_checkpoint_size_bytes", last.size_bytes as f64);
        line("sluice_last_checkpoint_completed_timestamp_seconds", done);
    }
    let lineage = &job.lineage;
    for (name, counter) in [
        ("sluice_openlineage_events_sent_total", &lineage.sent),
        ("sluice_openlineage_events_dropped_total", &lineage.dropped),
        ("sluice_openlineage_send_failures_total", &lineage.failed_attempts),
    ] {
        let _ = writeln!(out, "# TYPE {name} counter\n{name}{{job=\"{id}\"}} {}", counter.load(Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_per_event_comes_from_the_last_second_or_else_from_the_start() {
        // 0.02 CPU s/s at 10,000 records/s: 2 CPU seconds per million records.
        assert_eq!(cpu_per_million(0.02, 10_000.0, 0, 0), Some(2.0));
        // Nothing flowed in the last second: 3 CPU s over 1.5 M records since the start.
        assert_eq!(cpu_per_million(0.0, 0.0, 3_000_000_000, 1_500_000), Some(2.0));
        assert_eq!(cpu_per_million(0.0, 0.0, 5, 0), None);
    }
}
