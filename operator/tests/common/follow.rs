//! Following a job's output across a redeploy, for the benchmarks: the records a
//! sink took, as each coordinator pod's REST API reports them.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use sluice_e2e::testenv;

/// What the sink named `sink` (`Sink: <sink>` in a vertex name) took in this run,
/// straight from a coordinator pod's `GET /v1/job/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SinkFigures {
    pub records: u64,
    /// `firstRecordAt` and `lastRecordAt`, in unix ms.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

pub async fn sink_figures(pod: &Pod, sink: &str) -> Option<SinkFigures> {
    let ip = testenv::pod_ip(pod)?;
    let (code, body) = testenv::http_get(ip, 8081, "/v1/job/metrics").await.ok()?;
    if code != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let label = format!("Sink: {sink}");
    let sinks: Vec<&serde_json::Value> =
        v["vertices"].as_array()?.iter().filter(|x| x["name"].as_str().is_some_and(|n| n.contains(&label))).collect();
    let ms = |x: &serde_json::Value, k: &str| {
        x[k].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()).map(|t| t.as_millisecond())
    };
    Some(SinkFigures {
        records: sinks
            .iter()
            .map(|x| x["recordsIn"].as_u64().unwrap_or(0).max(x["recordsOut"].as_u64().unwrap_or(0)))
            .sum(),
        first_ms: sinks.iter().filter_map(|x| ms(x, "firstRecordAt")).min(),
        last_ms: sinks.iter().filter_map(|x| ms(x, "lastRecordAt")).max(),
    })
}

/// The running coordinator pod of one color (`instance`: `<job>` or `<job>-green`).
pub async fn coordinator(pods: &Api<Pod>, instance: &str) -> Option<Pod> {
    let l = pods
        .list(
            &ListParams::default()
                .labels(&format!("app.kubernetes.io/instance={instance},sluice.dev/role=coordinator")),
        )
        .await
        .ok()?;
    l.items.into_iter().find(|p| p.metadata.deletion_timestamp.is_none() && testenv::pod_ip(p).is_some())
}

/// The output pause of a redeploy, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Pause {
    /// The old sink's last record → the new one's first, from the record times the
    /// engines stamp (`lastRecordAt`, `firstRecordAt`); `None` when the old pod was
    /// gone before it reported its last one.
    pub exact: Option<f64>,
    /// The same, as seen by polling the record counts (workers report them every
    /// 500 ms, so each end is late by up to that).
    pub polled: f64,
}

/// Follows the sink `sink` of the `old` coordinator pod, and of the first other
/// coordinator pod of `new_instance` whose sink takes a record, from now on.
pub async fn pause(pods: &Api<Pod>, old: &Pod, new_instance: &str, sink: &str, timeout: Duration) -> Pause {
    let old_name = old.metadata.name.clone().unwrap_or_default();
    let mut last_old = sink_figures(old, sink).await.unwrap_or_default().records;
    let mut last_old_at = Instant::now();
    let mut last_old_ms = None;
    let deadline = Instant::now() + timeout;
    let (first_new_at, new) = loop {
        assert!(Instant::now() < deadline, "the new deployment's sink took nothing within {timeout:?}");
        if let Some(f) = sink_figures(old, sink).await {
            if f.records > last_old {
                last_old = f.records;
                last_old_at = Instant::now();
            }
            last_old_ms = f.last_ms.or(last_old_ms);
        }
        if let Some(p) = coordinator(pods, new_instance).await
            && p.metadata.name.as_deref() != Some(old_name.as_str())
            && sink_figures(&p, sink).await.is_some_and(|f| f.records > 0)
        {
            break (Instant::now(), p);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The old pod's last report may come with its end: read it once more if it is up.
    if let Some(t) = sink_figures(old, sink).await.and_then(|f| f.last_ms) {
        last_old_ms = Some(t);
    }
    let first_new_ms = sink_figures(&new, sink).await.and_then(|f| f.first_ms);
    Pause {
        exact: last_old_ms.zip(first_new_ms).map(|(l, f)| (f - l) as f64 / 1000.0),
        polled: first_new_at.duration_since(last_old_at).as_secs_f64(),
    }
}
