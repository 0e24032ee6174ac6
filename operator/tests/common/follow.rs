//! Following a job's output across a redeploy, for the benchmarks: the records a
//! sink took, as each coordinator pod's REST API reports them.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use sluice_e2e::testenv;

/// Records taken by the sink named `sink` (`Sink: <sink>` in a vertex name), straight
/// from a coordinator pod.
pub async fn sink_records(pod: &Pod, sink: &str) -> Option<u64> {
    let ip = testenv::pod_ip(pod)?;
    let (code, body) = testenv::http_get(ip, 8081, "/v1/job/metrics").await.ok()?;
    if code != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let label = format!("Sink: {sink}");
    let n = v["vertices"]
        .as_array()?
        .iter()
        .filter(|x| x["name"].as_str().is_some_and(|n| n.contains(&label)))
        .map(|x| x["recordsIn"].as_u64().unwrap_or(0).max(x["recordsOut"].as_u64().unwrap_or(0)))
        .sum();
    Some(n)
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

/// Follows the sink `sink` of the `old` coordinator pod, and of the first other
/// coordinator pod of `new_instance` whose sink takes a record, from now on.
/// Returns (pause: the old pod's last record → the new pod's first, now → the new
/// pod's first record), in seconds.
pub async fn pause(pods: &Api<Pod>, old: &Pod, new_instance: &str, sink: &str, timeout: Duration) -> (f64, f64) {
    let old_name = old.metadata.name.clone().unwrap_or_default();
    let mut last_old = sink_records(old, sink).await.unwrap_or(0);
    let mut last_old_at = Instant::now();
    let start = Instant::now();
    let deadline = start + timeout;
    let first_new_at = loop {
        assert!(Instant::now() < deadline, "the new deployment's sink took nothing within {timeout:?}");
        if let Some(n) = sink_records(old, sink).await
            && n > last_old
        {
            last_old = n;
            last_old_at = Instant::now();
        }
        if let Some(p) = coordinator(pods, new_instance).await
            && p.metadata.name.as_deref() != Some(old_name.as_str())
            && sink_records(&p, sink).await.unwrap_or(0) > 0
        {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    (first_new_at.duration_since(last_old_at).as_secs_f64(), first_new_at.duration_since(start).as_secs_f64())
}
