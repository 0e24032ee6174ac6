//! The operator benchmark (`make bench`; ignored by `cargo test`). In a test
//! cluster with engine pods and MinIO it measures:
//! - apply → Running of a StreamJob;
//! - the pause of a blue-green cutover and of a savepoint upgrade of the same job,
//!   with ~100 MB of keyed state and a 1 s checkpoint interval: the last record the
//!   old job's sink took to the first one the new job's sink took; and the cutover's
//!   own figures (`status.lastCutover`: commit to commit, savepoint and restore bytes);
//! - reconcile time without engine waits (p50/p99, from the operator's debug log);
//! - operator RSS idle and with 1,000 suspended StreamJobs.
//!
//! It writes `BENCH_OUT` (default `.bench/operator.md`). `SLUICE_OPERATOR_BIN` and
//! `SLUICE_ENGINE_BIN` choose the binaries (release builds in `make bench`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/follow.rs"]
mod follow;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, CustomResourceExt};
use serde_json::json;
use sluice_e2e::node::config::ImageMapping;
use sluice_e2e::testenv::{self, wait_object};
use sluice_operator::crd::{Phase, StreamJob, StreamSavepoint};

const STATE_MB: u64 = 100;

fn bin(var: &str, fallback: PathBuf) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or(fallback)
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// A pause's figure from the record times, or why there is none.
fn exact(p: &follow::Pause) -> String {
    p.exact.map_or_else(|| "not reported (the old pod was gone)".into(), |s| format!("{s:.2} s"))
}

/// `(own_ms, engine_ms)` of every reconcile in the operator's JSON log (since `from`).
fn reconcile_times(log: &str, from: Option<jiff::Timestamp>) -> Vec<(f64, f64)> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "reconciled")
        .filter(|v| {
            from.is_none_or(|f| {
                v["timestamp"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()).is_some_and(|t| t >= f)
            })
        })
        .filter_map(|v| {
            let own = v["fields"]["own_us"].as_f64()?;
            let engine = v["fields"]["engine_us"].as_f64()?;
            Some((own / 1000.0, engine / 1000.0))
        })
        .collect()
}

/// Applies `patch` to the job and follows both coordinators' `pass` sinks (see
/// [`follow::pause`]). Returns (pause, patch → first new record), in seconds.
async fn pause_of(
    api: &Api<StreamJob>,
    pods: &Api<Pod>,
    old: &Pod,
    new_instance: &str,
    patch: serde_json::Value,
) -> (follow::Pause, f64) {
    let t_patch = Instant::now();
    let follow = follow::pause(pods, old, new_instance, "pass", Duration::from_secs(600));
    let (_, pause) = tokio::join!(
        async { api.patch("state", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap() },
        follow
    );
    (pause, t_patch.elapsed().as_secs_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run by `make bench` (scripts/bench.sh)"]
async fn operator_bench() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().and_then(|p| p.parent()).unwrap().to_path_buf();
    let engine = bin("SLUICE_ENGINE_BIN", target.join("sluice-engine"));
    let operator = bin("SLUICE_OPERATOR_BIN", PathBuf::from(env!("CARGO_BIN_EXE_sluice-operator")));
    let out = bin("BENCH_OUT", PathBuf::from(".bench/operator.md"));
    let images = vec![ImageMapping {
        image: "sluice/engine:*".into(),
        entrypoint: vec![engine.display().to_string()],
        cmd: vec![],
        path: vec![],
    }];
    let opts = testenv::Options::for_external_tests(images).unwrap();
    let env = tokio::task::spawn_blocking(move || testenv::shared(&opts)).await.unwrap().unwrap();
    let client = env.client().await.unwrap();
    for crd in [StreamJob::crd(), StreamSavepoint::crd()] {
        let api =
            Api::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>::all(
                client.clone(),
            );
        let name = crd.metadata.name.clone().unwrap();
        api.patch(&name, &PatchParams::apply("sluice-bench").force(), &Patch::Apply(&crd)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ns = env.namespace(&client, "bench").await.unwrap();
    let many = env.namespace(&client, "many").await.unwrap();
    let s3 = env.start_s3(&client, &ns, &["sluice"]).await.unwrap();
    let log = env.dir.join("operator-bench.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child: Child = Command::new(&operator)
        .args(["--engine-access", "apiserver-proxy", "--namespaces", &format!("{ns},{many}"), "--lease-namespace", &ns])
        .args(["--http-addr", &format!("127.0.0.1:{port}"), "--s3-endpoint", &s3.endpoint])
        .env("KUBECONFIG", &env.kubeconfig)
        .env("RUST_LOG", "info,sluice_operator::controllers::streamjob=debug,kube_client::client::builder=off")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_rss = rss_mib(pid);
    eprintln!("bench: operator idle RSS {idle_rss:.1} MiB");

    // apply → Running, with a job that builds STATE_MB of keyed state.
    let keys = STATE_MB * 18_000;
    let sql = format!(
        "CREATE TABLE src (k INT, v INT, ts AS TO_TIMESTAMP_LTZ(1700000000000, 3), WATERMARK FOR ts AS ts) \
         WITH ('connector' = 'datagen', 'rows-per-second' = '300000', 'fields.k.min' = '0', 'fields.k.max' = '{keys}', \
         'fields.v.min' = '0', 'fields.v.max' = '1000');\n\
         CREATE TABLE agg (k INT, c BIGINT, s INT) WITH ('connector' = 'blackhole');\n\
         CREATE TABLE pass (k INT) WITH ('connector' = 'blackhole');\n\
         EXECUTE STATEMENT SET BEGIN\n\
         INSERT INTO agg SELECT k, COUNT(*), SUM(v) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' DAY)) GROUP BY k, window_start, window_end;\n\
         INSERT INTO pass SELECT k FROM src;\n\
         END;\n"
    );
    let api = Api::<StreamJob>::namespaced(client.clone(), &ns);
    let job: StreamJob = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "StreamJob", "metadata": {"name": "state"},
        "spec": {
            "image": "sluice/engine:bench", "sql": sql, "parallelism": 2, "upgradeMode": "savepoint",
            "upgradeStrategy": {"type": "blue-green", "blueGreen": {"verificationWindow": "20s"}},
            "checkpointing": {"interval": "1s", "storage": "s3://sluice/checkpoints"},
            "savepoints": {"directory": "s3://sluice/savepoints"},
            "upgrade": {"stabilizationPeriod": "5s", "savepointTimeout": "5m", "readinessTimeout": "10m"},
            "s3": {"endpoint": s3.cluster_endpoint, "credentialsSecretRef": {"name": "s3-creds"}}
        }
    }))
    .unwrap();
    let t0 = Instant::now();
    api.create(&PostParams::default(), &job).await.unwrap();
    wait_object(&api, "state", Duration::from_secs(120), "Running", |j| {
        j.status.as_ref().is_some_and(|s| matches!(s.phase, Phase::Running | Phase::Stable))
    })
    .await
    .unwrap();
    let apply_to_running = t0.elapsed().as_secs_f64();
    eprintln!("bench: apply → Running in {apply_to_running:.2} s");

    // Wait for a checkpoint of STATE_MB.
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let old = follow::coordinator(&pods, "state").await.unwrap();
    let ip = testenv::pod_ip(&old).unwrap();
    let deadline = Instant::now() + Duration::from_secs(900);
    let state_bytes = loop {
        let size = testenv::http_get(ip, 8081, "/v1/job/checkpoints")
            .await
            .ok()
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|v| v["latestCompleted"]["sizeBytes"].as_u64())
            .unwrap_or(0);
        if size >= STATE_MB * 1_000_000 {
            break size;
        }
        assert!(Instant::now() < deadline, "no checkpoint of {STATE_MB} MB within 15 min (last {size} bytes)");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("bench: checkpoint of {:.0} MB", state_bytes as f64 / 1e6);

    // A blue-green cutover (a config key changes), then a savepoint upgrade of the same
    // job (another key, and the strategy back to in-place): both jobs' pass sinks followed.
    let (bg_pause, bg_total) =
        pause_of(&api, &pods, &old, "state-green", json!({"spec": {"config": {"pipeline.name": "state-v2"}}})).await;
    eprintln!("bench: blue-green pause {bg_pause:?} (patch → first new record {bg_total:.2} s)");
    let done = wait_object(&api, "state", Duration::from_secs(600), "the cutover's end", |j| {
        j.status.as_ref().is_some_and(|s| s.cutover.is_none() && s.last_cutover.is_some())
    })
    .await
    .unwrap();
    let cutover = done.status.and_then(|s| s.last_cutover).unwrap();
    assert_eq!(cutover.outcome, "succeeded", "{cutover:?}");
    eprintln!("bench: cutover {cutover:?}");
    let green = follow::coordinator(&pods, "state-green").await.unwrap();
    let (pause, upgrade_total) = pause_of(
        &api,
        &pods,
        &green,
        "state-green",
        json!({"spec": {"config": {"pipeline.name": "state-v3"}, "upgradeStrategy": {"type": "in-place"}}}),
    )
    .await;
    eprintln!("bench: upgrade pause {pause:?} (patch → first new record {upgrade_total:.2} s)");
    let st = api.get("state").await.unwrap().status.unwrap();
    assert!(st.deployed_from.unwrap_or_default().contains("savepoint-"), "the upgrade did not use a savepoint");
    api.delete("state", &Default::default()).await.unwrap();

    // 1,000 suspended StreamJobs.
    let many_api = Api::<StreamJob>::namespaced(client.clone(), &many);
    let t_many = Instant::now();
    let creates = (0..1000).map(|i| {
        let api = many_api.clone();
        async move {
            let j: StreamJob = serde_json::from_value(json!({
                "apiVersion": "sluice.dev/v1alpha1", "kind": "StreamJob", "metadata": {"name": format!("job-{i}")},
                "spec": {"image": "sluice/engine:bench", "state": "suspended",
                         "sql": format!("CREATE TABLE s (x BIGINT) WITH ('connector' = 'datagen');\nCREATE TABLE o (x BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO o SELECT x + {i} FROM s;")}
            }))
            .unwrap();
            api.create(&PostParams::default(), &j).await.unwrap();
        }
    });
    futures::stream::iter(creates).buffer_unordered(8).collect::<Vec<()>>().await;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let l = many_api.list(&ListParams::default()).await.unwrap();
        let n = l.items.iter().filter(|j| j.status.as_ref().is_some_and(|s| s.phase == Phase::Suspended)).count();
        if n == 1000 {
            break;
        }
        assert!(Instant::now() < deadline, "only {n} of 1000 jobs Suspended after 10 min");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let many_secs = t_many.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let many_rss = rss_mib(pid);
    eprintln!("bench: 1000 suspended jobs reconciled in {many_secs:.1} s; RSS {many_rss:.1} MiB");

    // Steady state: one spec change per job, paced at about 40 per second, each
    // reconciled once (a new observedGeneration, no restart).
    let steady_from = jiff::Timestamp::now();
    for i in 0..1000 {
        many_api
            .patch(
                &format!("job-{i}"),
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"savepoints": {"maxCount": 3}}})),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let l = many_api.list(&ListParams::default()).await.unwrap();
        let n = l.items.iter().filter(|j| j.status.as_ref().and_then(|s| s.observed_generation) == Some(2)).count();
        if n == 1000 {
            break;
        }
        assert!(Instant::now() < deadline, "only {n} of 1000 jobs observed their new generation");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let metrics = testenv::http_get(std::net::Ipv4Addr::LOCALHOST, port, "/metrics").await.unwrap().1;
    let _ = child.kill();
    let _ = child.wait();

    let text = std::fs::read_to_string(&log).unwrap();
    let times = reconcile_times(&text, None);
    let mut steady: Vec<f64> = reconcile_times(&text, Some(steady_from)).iter().map(|t| t.0).collect();
    steady.sort_by(f64::total_cmp);
    let mut own: Vec<f64> = times.iter().map(|t| t.0).collect();
    own.sort_by(f64::total_cmp);
    let mut engine_waits: Vec<f64> = times.iter().map(|t| t.1).filter(|e| *e > 0.0).collect();
    engine_waits.sort_by(f64::total_cmp);
    let suspended_line =
        metrics.lines().find(|l| l.starts_with("sluice_operator_jobs{phase=\"Suspended\"}")).unwrap_or("");
    let report = format!(
        "## Operator\n\n\
         {date} on {cores} cores; operator `{op}`, engine `{eng}`; `make bench` (operator/tests/bench.rs)\n\n\
         | what | figure | target |\n| --- | ---: | ---: |\n\
         | reconcile time without engine waits, steady state (1,000 jobs, one spec change each at ~40/s), p50 | {s50:.1} ms | |\n\
         | reconcile time without engine waits, steady state, p99 | {s99:.1} ms | < 50 ms |\n\
         | reconciles in the steady-state window | {sn} | |\n\
         | reconcile time without engine waits, whole run (incl. 1,000 creations at once and the 100 MB job), p50 / p99 | {p50:.1} / {p99:.1} ms | |\n\
         | reconciles in the whole run | {n} | |\n\
         | engine REST wait per reconcile that called it, p50 / p99 | {e50:.1} / {e99:.1} ms | |\n\
         | `kubectl apply` → Running (2 workers) | {apply:.2} s | |\n\
         | blue-green cutover pause, {mb:.0} MB of keyed state, 1 s checkpoints (last old sink record → first new one, by the record times the engines stamp) | {bg_exact} | ≤ 1.5 s |\n\
         | the same, as polled from the record counts (each end late by up to 500 ms) | {bg_polled:.2} s | |\n\
         | blue-green cutover, last old commit → first new commit (`status.lastCutover.pause`) | {bg_commit} | |\n\
         | blue-green handoff savepoint / bytes the new color read at activation | {sp_bytes} / {restore_bytes} | |\n\
         | spec patch → first record of the new color | {bg_total:.2} s | |\n\
         | savepoint upgrade pause, same job (last old sink record → first new one, by record times) | {up_exact} | < 5 s |\n\
         | the same, as polled from the record counts | {up_polled:.2} s | |\n\
         | spec patch → first record of the upgraded job | {total:.2} s | |\n\
         | operator RSS, idle | {idle:.1} MiB | < 50 MB |\n\
         | operator RSS, 1,000 suspended StreamJobs | {many:.1} MiB | < 150 MB |\n\
         | 1,000 StreamJobs created → all Suspended | {many_secs:.1} s | |\n\n\
         `{suspended_line}` at the end of the run.\n",
        date = jiff::Timestamp::now().round(jiff::Unit::Second).unwrap(),
        cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        op = operator.display(),
        eng = engine.display(),
        s50 = percentile(&steady, 0.5),
        s99 = percentile(&steady, 0.99),
        sn = steady.len(),
        p50 = percentile(&own, 0.5),
        p99 = percentile(&own, 0.99),
        n = own.len(),
        e50 = percentile(&engine_waits, 0.5),
        e99 = percentile(&engine_waits, 0.99),
        apply = apply_to_running,
        mb = state_bytes as f64 / 1e6,
        total = upgrade_total,
        bg_exact = exact(&bg_pause),
        bg_polled = bg_pause.polled,
        up_exact = exact(&pause),
        up_polled = pause.polled,
        bg_commit =
            cutover.pause.map(|p| format!("{:.2} s", p as f64 / 1000.0)).unwrap_or_else(|| "not measured".into()),
        sp_bytes = cutover.savepoint_bytes.map(|b| format!("{:.1} MB", b as f64 / 1e6)).unwrap_or_else(|| "?".into()),
        restore_bytes =
            cutover.restore_bytes.map(|b| format!("{:.1} MB", b as f64 / 1e6)).unwrap_or_else(|| "?".into()),
        idle = idle_rss,
        many = many_rss,
    );
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&out, &report).unwrap();
    eprintln!("{report}");
}

use futures::StreamExt;
