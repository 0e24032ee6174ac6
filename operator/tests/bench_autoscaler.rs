//! The autoscaler benchmark (`make bench`; ignored by `cargo test`). In a test
//! cluster with engine pods and MinIO, a job reads an unbounded rate-limited
//! source at 3.5× the capacity of one subtask of a throttled sink (the
//! autoscaler tests' job, without an end). It measures:
//! - the step up: the time from Stable to the decision, the steps, and the time
//!   until the job is Stable at the new parallelism;
//! - the output pause of the rescale (the last record the old deployment's slow
//!   sink took → the first the new one took), by a savepoint upgrade and by a
//!   blue-green cutover;
//! - flaps: changes after the first, over `BENCH_STEADY_SECS` (600) of steady load;
//! - the autoscaler's own cost: one evaluation of each of 1,000 jobs with a full
//!   metrics window, and the size of their `status.autoscaler`.
//!
//! It writes `BENCH_OUT` (default `.bench/autoscaler.md`). `SLUICE_OPERATOR_BIN`
//! and `SLUICE_ENGINE_BIN` choose the binaries (release builds in `make bench`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Setup, create, follow, job, phase, setup};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::json;
use sluice_e2e::testenv::wait_object;
use sluice_operator::autoscaler::{self, Settings, Topology, VertexInfo};
use sluice_operator::crd::{AutoscalerSpec, AutoscalerStatus, MetricSample, Phase, StreamJob, VertexSample};

const CAPACITY: i64 = 500;
const RATE: i64 = 1750;

fn spec(t: &Setup, strategy: &str) -> serde_json::Value {
    let sql = format!(
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '{RATE}', \
         'scan.parallelism' = '2', 'fields.id.kind' = 'random');\n\
         CREATE TABLE slow (id BIGINT) WITH ('connector' = 'blackhole', 'sink.throttle' = '{CAPACITY}', 'sink.parallelism' = '1');\n\
         CREATE TABLE pass (id BIGINT) WITH ('connector' = 'blackhole');\n\
         INSERT INTO slow SELECT id FROM src;\n\
         INSERT INTO pass SELECT id FROM src;\n"
    );
    json!({
        "image": "sluice/engine:bench",
        "sql": sql,
        "parallelism": 2,
        "upgradeMode": "savepoint",
        "upgradeStrategy": {"type": strategy, "blueGreen": {"verificationWindow": "10s"}},
        "checkpointing": {"interval": "1s", "storage": "s3://sluice/checkpoints"},
        "savepoints": {"directory": "s3://sluice/savepoints"},
        "config": {"execution.batch-size": "50"},
        "upgrade": {"stabilizationPeriod": "2s", "readinessTimeout": "5m", "savepointTimeout": "2m"},
        "autoscaler": {"enabled": true, "metricsWindow": "30s", "stabilizationPeriod": "10s", "scaleDownDelay": "10m"},
        "s3": {"endpoint": t.s3.cluster_endpoint, "credentialsSecretRef": {"name": "s3-creds"}}
    })
}

fn decisions(j: &StreamJob) -> Option<(String, String, String)> {
    let d = j.status.as_ref()?.autoscaler.as_ref()?.last_decision.as_ref()?;
    Some((d.outcome.clone(), d.time.clone(), d.summary.clone()))
}

/// What one rescale measured.
struct Rescale {
    decided_after: f64,
    summary: String,
    pause: f64,
    stable_after: f64,
    status_bytes: usize,
    /// A cutover's own figure: the old color's last commit → the new color's first (ms).
    commit_to_commit: Option<i64>,
}

/// Runs job `name` until the autoscaler's first rescale is rolled out.
async fn rescale(t: &Setup, pods: &Api<Pod>, name: &str, strategy: &str) -> Rescale {
    create(&t.api, job(name, spec(t, strategy))).await.unwrap();
    wait_object(&t.api, name, Duration::from_secs(180), "Stable", |j| phase(j) == Some(Phase::Stable)).await.unwrap();
    let stable = Instant::now();
    let old = follow::coordinator(pods, name).await.unwrap();
    let new_instance = if strategy == "blue-green" { format!("{name}-green") } else { name.to_string() };
    let follow = follow::pause(pods, &old, &new_instance, "slow", Duration::from_secs(600));
    let decided = async {
        let j = wait_object(&t.api, name, Duration::from_secs(300), "a decision", |j| {
            decisions(j).is_some_and(|d| d.0 == "scaled")
        })
        .await
        .unwrap();
        (stable.elapsed().as_secs_f64(), decisions(&j).unwrap().2)
    };
    let ((decided_after, summary), pause) = tokio::join!(decided, follow);
    let pause = pause.exact.unwrap_or(pause.polled);
    let done = wait_object(&t.api, name, Duration::from_secs(600), "Stable after the rescale", |j| {
        phase(j) == Some(Phase::Stable) && j.status.as_ref().is_some_and(|s| s.deployment == 2 && s.cutover.is_none())
    })
    .await
    .unwrap();
    let st = done.status.unwrap_or_default();
    let status_bytes = serde_json::to_vec(&st.autoscaler).unwrap().len();
    let commit_to_commit = st.last_cutover.and_then(|c| c.pause);
    Rescale {
        decided_after,
        summary,
        pause,
        stable_after: stable.elapsed().as_secs_f64(),
        status_bytes,
        commit_to_commit,
    }
}

/// One evaluation of each of `jobs` synthetic jobs (5 vertices, a full 3-minute window
/// of 10 s samples): the mean time per evaluation in µs, and the mean size of their
/// `status.autoscaler` as JSON.
fn evaluation_cost(jobs: usize) -> (f64, usize) {
    let s = Settings::new(&AutoscalerSpec { enabled: true, ..Default::default() });
    let uids: Vec<String> = (0..5).map(|i| format!("{:016x}", 0x1000 + i)).collect();
    let top = Topology {
        vertices: (0..5)
            .map(|i| VertexInfo {
                id: i,
                uid: uids[i].clone(),
                name: format!("v{i}"),
                parallelism: 2,
                inputs: if i == 0 { vec![] } else { vec![i - 1] },
                keyed: i > 1,
                splits: None,
                single: false,
            })
            .collect(),
        max_parallelism: 128,
    };
    let mut statuses: Vec<AutoscalerStatus> = (0..jobs)
        .map(|j| {
            let mut st = AutoscalerStatus::default();
            for k in 0..=(s.stabilization + s.metrics_window) / 10 {
                let t = 1_000_000 + k * 10;
                let n = (k as u64) * 10 * (1000 + j as u64);
                let vertices = uids
                    .iter()
                    .map(|u| VertexSample {
                        uid: u.clone(),
                        parallelism: 2,
                        busy: 700.0,
                        backpressured: 0.0,
                        records_in: n,
                        records_out: n,
                        lag: Some(0),
                    })
                    .collect();
                autoscaler::record(&mut st, &s, "1/0", MetricSample { time: t, vertices });
            }
            st
        })
        .collect();
    let t0 = Instant::now();
    let now = 1_000_000 + s.stabilization + s.metrics_window;
    for st in &mut statuses {
        let _ = autoscaler::evaluate(&top, &s, st, now);
    }
    let per = t0.elapsed().as_secs_f64() * 1e6 / jobs as f64;
    let bytes = statuses.iter().map(|st| serde_json::to_vec(st).unwrap().len()).sum::<usize>() / jobs;
    (per, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run by `make bench` (scripts/bench.sh)"]
async fn autoscaler_bench() {
    let out = std::env::var_os("BENCH_OUT").map_or_else(|| PathBuf::from(".bench/autoscaler.md"), PathBuf::from);
    let steady_secs: u64 = std::env::var("BENCH_STEADY_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let (per_eval_us, status_bytes) = evaluation_cost(1000);
    eprintln!("bench: one evaluation {per_eval_us:.1} µs; status.autoscaler {status_bytes} bytes");
    let t = setup("bench-as").await;
    let pods = Api::<Pod>::namespaced(t.client.clone(), &t.ns);

    let sp = rescale(&t, &pods, "sp", "in-place").await;
    eprintln!("bench: savepoint path: decided {:.0} s, pause {:.2} s; {}", sp.decided_after, sp.pause, sp.summary);
    t.api.delete("sp", &Default::default()).await.unwrap();
    let bg = rescale(&t, &pods, "bg", "blue-green").await;
    eprintln!("bench: blue-green path: decided {:.0} s, pause {:.2} s; {}", bg.decided_after, bg.pause, bg.summary);

    // Steady load: every decision after the first is a flap.
    let first = decisions(&t.api.get("bg").await.unwrap());
    let steady = Instant::now();
    let mut flaps = 0;
    let mut last = first.clone();
    while steady.elapsed() < Duration::from_secs(steady_secs) {
        let j = t.api.get("bg").await.unwrap();
        let now = decisions(&j);
        if now != last {
            flaps += 1;
            eprintln!("bench: a change in steady load: {now:?}");
            last = now;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let deployments = t.api.get("bg").await.unwrap().status.map(|s| s.deployment).unwrap_or_default();
    t.api.delete("bg", &Default::default()).await.unwrap();

    let report = format!(
        "## Autoscaler\n\n\
         {date} on {cores} cores; `make bench` (operator/tests/bench_autoscaler.rs). A datagen source at {RATE} rows/s \
         into a blackhole sink that takes {CAPACITY} rows/s per subtask (3.5× one subtask), from parallelism 1; \
         `metricsWindow` 30 s, `stabilizationPeriod` 10 s, 1 s checkpoints, `execution.batch-size` 50.\n\n\
         | what | savepoint upgrade | blue-green | target |\n| --- | ---: | ---: | ---: |\n\
         | Stable → the decision | {sp_d:.0} s | {bg_d:.0} s | ≤ 90 s |\n\
         | Stable → Stable at the new parallelism | {sp_s:.0} s | {bg_s:.0} s | |\n\
         | output pause of the rescale (slow sink: last old record → first new, by the record times the engines stamp, else as polled) | {sp_p:.2} s | {bg_p:.2} s | sub-second (blue-green) |\n\
         | the cutover's own pause (`status.lastCutover.pause`: last old commit → first new commit) | n/a | {bg_c} | |\n\
         | `status.autoscaler` after the rescale | {sp_b} B | {bg_b} B | |\n\n\
         Decisions: savepoint path `{sp_sum}`; blue-green path `{bg_sum}`.\n\n\
         | what | figure | target |\n| --- | ---: | ---: |\n\
         | rescales of the blue-green job, decision to the end of the steady load | {steps} | 1 |\n\
         | changes after the first in {steady_secs} s of steady load (blue-green job) | {flaps} | 0 |\n\
         | one evaluation (5 vertices, a full 3-minute window), mean over 1,000 jobs | {per_eval_us:.1} µs | |\n\
         | the autoscaler's CPU per 10 s sample round, 1,000 jobs | {round_ms:.1} ms | |\n\
         | `status.autoscaler` of such a job | {status_bytes} B | |\n",
        date = jiff::Timestamp::now().round(jiff::Unit::Second).unwrap(),
        cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        sp_d = sp.decided_after,
        bg_d = bg.decided_after,
        sp_s = sp.stable_after,
        bg_s = bg.stable_after,
        sp_p = sp.pause,
        bg_p = bg.pause,
        sp_b = sp.status_bytes,
        bg_b = bg.status_bytes,
        bg_c = bg.commit_to_commit.map_or_else(|| "not measured".into(), |p| format!("{:.2} s", p as f64 / 1000.0)),
        sp_sum = sp.summary,
        bg_sum = bg.summary,
        steps = deployments - 1,
        // 1,000 evaluations of per_eval_us µs each, in ms.
        round_ms = per_eval_us * 1000.0 / 1000.0,
    );
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&out, &report).unwrap();
    eprintln!("{report}");
}
