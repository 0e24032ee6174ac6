//! The autoscaler against a real kube-apiserver, engine pods run by the node agent,
//! and MinIO. The job reads a rate-limited sequence (datagen, whose lag is how far it
//! is behind its schedule) into two sinks: a blackhole with a fixed per-subtask
//! capacity (`sink.throttle`), the bottleneck, and the filesystem, whose output is
//! checked exactly once.
//!
//! - A step up: from parallelism 1 at 3.5× one subtask's capacity, one rescale (a
//!   blue-green cutover) to a parallelism that holds the load, decided within 90 s
//!   of the job running, then no other change; exactly-once output.
//! - Recommend mode decides and changes nothing, and switched to apply it rolls the
//!   decision out (a savepoint upgrade); a job that an HPA also targets is refused
//!   with a condition.
//! - A bottleneck that more subtasks cannot fix (a throttle shared by every subtask
//!   in the worker): one scale-up, then `ScalingEffective` False and no other.
//! - A step down: the load steps up, then falls (datagen's
//!   `rows-per-second.schedule`, whose schedule time goes on across rescales, so
//!   the SQL and the autoscaler's history stay); one scale-up, then one scale-down
//!   after `scaleDownDelay`, not below what the lower load needs.
//! - A backlog: the job is suspended while its source's schedule goes on (rate ×
//!   downtime is its backlog on resume); one scale-up clears it in about
//!   `catchUpDuration`, then exactly one scale-down, none during the catch-up.
//!
//! The load tests record a [`trace::Trace`] and print its figures.
//!
//! Behind the `cluster-tests` feature, as `cluster.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "autoscaler/trace.rs"]
mod trace;

use std::time::{Duration, Instant};

use anyhow::bail;
use common::{Setup, create, job, phase, setup};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use sluice_e2e::testenv::wait_object;
use sluice_operator::crd::{Color, Phase, StreamJob};
use trace::Trace;

/// Rows per second one blackhole subtask takes.
const CAPACITY: i64 = 500;
/// The source's rate: 3.5 subtasks of load.
const RATE: i64 = 1750;

/// `rows` ids at `rate` per second into a throttled blackhole (its own vertex, at
/// `sink.parallelism` 1) and into files under `out`.
fn sql(rows: i64, rate: i64, out: &str) -> String {
    format!(
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '{rate}', \
         'scan.parallelism' = '2', 'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{}');\n\
         CREATE TABLE slow (id BIGINT) WITH ('connector' = 'blackhole', 'sink.throttle' = '{CAPACITY}', 'sink.parallelism' = '1');\n\
         CREATE TABLE out (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');\n\
         INSERT INTO slow SELECT id FROM src;\n\
         INSERT INTO out SELECT id FROM src;\n",
        rows - 1
    )
}

fn spec(t: &Setup, sql: &str, mode: &str, strategy: &str) -> serde_json::Value {
    json!({
        "image": "sluice/engine:test",
        "sql": sql,
        "parallelism": 2,
        "upgradeMode": "savepoint",
        "upgradeStrategy": {"type": strategy, "blueGreen": {"verificationWindow": "5s"}},
        "checkpointing": {"interval": "1s", "storage": "s3://sluice/checkpoints"},
        // Small batches, so that a checkpoint barrier does not wait long behind the
        // throttled sink's queue (8192 rows by default: 16 s each at 500 rows/s).
        "config": {"execution.batch-size": "50"},
        "savepoints": {"directory": "s3://sluice/savepoints"},
        "upgrade": {"stabilizationPeriod": "2s", "readinessTimeout": "2m", "savepointTimeout": "1m"},
        "autoscaler": {
            "enabled": true, "mode": mode, "metricsWindow": "30s", "stabilizationPeriod": "10s",
            "scaleDownDelay": "10m"
        },
        "s3": {"endpoint": t.s3.cluster_endpoint, "credentialsSecretRef": {"name": "s3-creds"}}
    })
}

fn decision(j: &StreamJob) -> Option<(String, String)> {
    let d = j.status.as_ref()?.autoscaler.as_ref()?.last_decision.as_ref()?;
    Some((d.outcome.clone(), d.time.clone()))
}

/// The decided parallelism of the blackhole's vertex (the one that was busy).
fn sink_parallelism(j: &StreamJob) -> Option<(i32, i32)> {
    let d = j.status.as_ref()?.autoscaler.as_ref()?.last_decision.as_ref()?;
    let v = d.vertices.iter().find(|v| v.name.contains("slow"))?;
    Some((v.parallelism, v.decided))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_up_is_met_by_one_rescale_and_the_output_stays_exactly_once() {
    let t = setup("as-step").await;
    let rows = 150 * RATE;
    create(&t.api, job("clicks", spec(&t, &sql(rows, RATE, "s3://sluice/out"), "apply", "blue-green"))).await.unwrap();
    let mut tr = Trace::new();
    let result = async {
        wait_object(&t.api, "clicks", Duration::from_secs(120), "Stable", |j| phase(j) == Some(Phase::Stable)).await?;
        let running = Instant::now();
        let decided = tr
            .until(&t, "clicks", Duration::from_secs(90), "a decision", |j, _| {
                decision(j).is_some_and(|d| d.0 == "scaled")
            })
            .await?;
        let latency = running.elapsed();
        let (from, to) = sink_parallelism(&decided).unwrap_or_default();
        let summary = decided.status.as_ref().and_then(|s| s.autoscaler.as_ref()?.last_decision.clone());
        eprintln!("decided {} s after Stable: {:?}", latency.as_secs(), summary.as_ref().map(|d| &d.summary));
        // 3.5 subtasks of load at 0.7 utilization is 5; the lag built up adds its catch-up.
        if from != 1 || !(5..=8).contains(&to) {
            bail!("the blackhole's vertex went {from} → {to}");
        }
        let first = decision(&decided);
        // One rescale, by a cutover: the job is Stable again at the new parallelism, on
        // green, and stays there.
        let rescaled = wait_object(&t.api, "clicks", Duration::from_secs(120), "Stable after the rescale", |j| {
            phase(j) == Some(Phase::Stable)
                && j.status.as_ref().is_some_and(|s| s.deployment == 2 && s.cutover.is_none())
        })
        .await?;
        let st = rescaled.status.clone().unwrap_or_default();
        if st.current_parallelism != Some(to) || st.active_color != Some(Color::Green) {
            bail!("after the rescale the job runs at {:?} on {:?}", st.current_parallelism, st.active_color);
        }
        let pause = st.last_cutover.as_ref().and_then(|c| c.pause);
        eprintln!("the cutover's pause: {pause:?} ms");
        let steady = Instant::now();
        while steady.elapsed() < Duration::from_secs(60) {
            let j = t.job("clicks").await.unwrap();
            if decision(&j) != first || j.status.as_ref().is_some_and(|s| s.deployment != 2) {
                bail!("a second change: {:?}", j.status.and_then(|s| s.autoscaler));
            }
            if phase(&j) == Some(Phase::Finished) {
                break;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        t.finished_exactly_once("clicks", "s3://sluice/out", rows).await
    }
    .await;
    eprintln!("{}\n{}", tr.timeline(), tr.intervals());
    t.check(result, "clicks").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommend_mode_changes_nothing_until_apply_and_an_hpa_beside_the_autoscaler_is_refused() {
    let t = setup("as-recommend").await;
    // The schedule must outlast the recommendation and the switch to apply (a bounded
    // source's demand falls once its schedule is over): 120 s of input.
    let rows = 120 * RATE;
    create(&t.api, job("clicks", spec(&t, &sql(rows, RATE, "s3://sluice/out"), "recommend", "in-place")))
        .await
        .unwrap();
    let result = async {
        let recommended = wait_object(&t.api, "clicks", Duration::from_secs(150), "a recommendation", |j| {
            decision(j).is_some_and(|d| d.0 == "recommended")
        })
        .await?;
        let (from, to) = sink_parallelism(&recommended).unwrap_or_default();
        let st = recommended.status.clone().unwrap_or_default();
        let a = st.autoscaler.clone().unwrap_or_default();
        eprintln!("recommended: {:?}", a.last_decision.as_ref().map(|d| &d.summary));
        if from != 1 || to < 5 || !a.vertex_parallelism.is_empty() || st.deployment != 1 {
            bail!("recommend mode: {from} → {to}, in force {:?}, deployment {}", a.vertex_parallelism, st.deployment);
        }
        if a.target_parallelism.unwrap_or_default() < 5 {
            bail!("the Target column shows {:?}", a.target_parallelism);
        }
        // Switched to apply, the same decision is made and rolled out.
        t.patch("clicks", json!({"spec": {"autoscaler": {"mode": "apply"}}})).await?;
        let scaled = wait_object(&t.api, "clicks", Duration::from_secs(60), "scaled", |j| {
            decision(j).is_some_and(|d| d.0 == "scaled")
        })
        .await?;
        // The decision is made again from fresh metrics, so the step may differ by the
        // noise of the measured rate (6 recommended and 5 applied, 5 and 4, have been
        // seen); it must still meet the demand (a target of 1.9k/s at about 500/s per
        // subtask needs 4).
        let (_, applied) = sink_parallelism(&scaled).unwrap_or_default();
        if applied < 4 || applied + 1 < to {
            bail!("recommended {to}, applied {applied}");
        }
        t.finished_exactly_once("clicks", "s3://sluice/out", rows).await
    }
    .await;
    t.check(result, "clicks").await;
    // Then a job that an HPA also targets.
    create(&t.api, job("scaled-twice", spec(&t, &sql(rows, RATE, "s3://sluice/other"), "apply", "in-place")))
        .await
        .unwrap();
    let refused = async {
        wait_object(&t.api, "scaled-twice", Duration::from_secs(120), "Running", |j| {
            matches!(phase(j), Some(Phase::Running | Phase::Stable))
        })
        .await?;
        // An HPA that targets the running job: the operator's watch of HPAs reconciles
        // the job it names at once.
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(t.client.clone(), &t.ns);
        let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "scaled-twice"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "sluice.dev/v1alpha1", "kind": "StreamJob", "name": "scaled-twice"},
                "minReplicas": 1, "maxReplicas": 4,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]
            }
        }))?;
        hpas.create(&PostParams::default(), &hpa).await?;
        let refused = wait_object(&t.api, "scaled-twice", Duration::from_secs(30), "ScalingActive False", |j| {
            j.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "ScalingActive" && c.status == "False" && c.reason == "HorizontalPodAutoscalerConflict"
                })
            })
        })
        .await?;
        let blocked = refused.status.and_then(|s| s.autoscaler).and_then(|a| a.blocked).unwrap_or_default();
        if !blocked.contains("HorizontalPodAutoscaler `scaled-twice`") {
            bail!("the refusal does not name the HPA: {blocked}");
        }
        Ok(())
    }
    .await;
    t.check(refused, "scaled-twice").await;
    t.api.delete("scaled-twice", &Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bottleneck_that_scaling_cannot_fix_is_scaled_up_once_and_reported() {
    let t = setup("as-ineffective").await;
    // Unbounded; one worker holds every subtask, so the shared throttle is one rate for all.
    let sql = format!(
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '{RATE}', \
         'scan.parallelism' = '2', 'fields.id.kind' = 'random');\n\
         CREATE TABLE slow (id BIGINT) WITH ('connector' = 'blackhole', 'sink.throttle' = '{CAPACITY}', \
         'sink.throttle.shared' = 'true', 'sink.parallelism' = '1');\n\
         INSERT INTO slow SELECT id FROM src;\n"
    );
    let mut s = spec(&t, &sql, "apply", "in-place");
    s["slotsPerWorker"] = json!(8);
    create(&t.api, job("shared", s)).await.unwrap();
    let result = async {
        wait_object(&t.api, "shared", Duration::from_secs(120), "Stable", |j| phase(j) == Some(Phase::Stable)).await?;
        let ineffective = wait_object(&t.api, "shared", Duration::from_secs(300), "ScalingEffective False", |j| {
            j.status
                .as_ref()
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "ScalingEffective" && c.status == "False"))
        })
        .await?;
        let st = ineffective.status.clone().unwrap_or_default();
        let message = st.conditions.iter().find(|c| c.type_ == "ScalingEffective").map(|c| c.message.clone());
        eprintln!("ineffective: {message:?}");
        if st.deployment != 2 {
            bail!("expected exactly one rescale before the verdict, deployment {}", st.deployment);
        }
        // No further scale-up of that vertex: its decision holds at the parallelism it has.
        tokio::time::sleep(Duration::from_secs(30)).await;
        let later = t.job("shared").await.and_then(|j| j.status).unwrap_or_default();
        if later.deployment != 2 {
            bail!("scaled again after the verdict: {:?}", later.autoscaler.and_then(|a| a.last_decision));
        }
        Ok(())
    }
    .await;
    t.check(result, "shared").await;
}

/// Rows per second after the step down: two subtasks of the blackhole at 0.7.
const LOW: i64 = 700;

/// As [`sql`] at a rate given by `rate` (`'rows-per-second' = '…'` or a schedule),
/// every vertex but the blackhole at parallelism 1 (the job's), so that only the
/// blackhole's parallelism has a reason to change.
fn load_sql(rows: i64, rate: &str, slow: i64, out: &str) -> String {
    format!(
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', {rate}, \
         'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{}');\n\
         CREATE TABLE slow (id BIGINT) WITH ('connector' = 'blackhole', 'sink.throttle' = '{CAPACITY}', 'sink.parallelism' = '{slow}');\n\
         CREATE TABLE out (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');\n\
         INSERT INTO slow SELECT id FROM src;\n\
         INSERT INTO out SELECT id FROM src;\n",
        rows - 1
    )
}

fn running(j: &StreamJob) -> bool {
    matches!(phase(j), Some(Phase::Running | Phase::Stable))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a load test of several minutes that needs quiet cores: run by `make chaos`"]
async fn a_load_that_falls_is_met_by_one_scale_down_after_the_delay_never_below_its_need() {
    // The rate steps down at schedule time DROP (from the source's first start), after
    // the step up is met; the schedule goes on across the blue-green rescale.
    const DROP: i64 = 150;
    const DELAY: f64 = 30.0;
    let t = setup("as-down").await;
    let rows = RATE * DROP + LOW * 210;
    let rate = format!("'rows-per-second.schedule' = '0s:{RATE}, {DROP}s:{LOW}'");
    let mut s = spec(&t, &load_sql(rows, &rate, 1, "s3://sluice/out"), "apply", "blue-green");
    s["parallelism"] = json!(1);
    s["autoscaler"]["scaleDownDelay"] = json!(format!("{DELAY}s"));
    create(&t.api, job("clicks", s)).await.unwrap();
    let mut tr = Trace::new();
    let result = async {
        tr.until(&t, "clicks", Duration::from_secs(120), "Running", |j, _| running(j)).await?;
        // About the schedule's start (the source's first poll comes as the job runs).
        let start = tr.now();
        let drop = start + DROP as f64;
        tr.until(&t, "clicks", Duration::from_secs(DROP as u64), "the step up", |_, tr| !tr.rescales.is_empty())
            .await?;
        let up = tr.rescales[0].clone();
        if up.from != 1 || !(5..=8).contains(&up.to) {
            bail!("the step up went {} → {}: {}", up.from, up.to, up.summary);
        }
        tr.until(&t, "clicks", Duration::from_secs(DROP as u64), "the step up running", |_, tr| {
            tr.running_at(up.to).is_some()
        })
        .await?;
        let up_running = tr.running_at(up.to).unwrap_or_default();
        if up_running > drop - 10.0 {
            bail!("the step up ran only {:.0} s after the start, too late for a drop at {DROP} s", up_running - start);
        }
        let down = tr
            .until(&t, "clicks", Duration::from_secs(300), "the step down", |_, tr| tr.rescales.len() >= 2)
            .await
            .map(|_| tr.rescales[1].clone())?;
        // Never below what the lower load needs: LOW rows/s at CAPACITY per subtask.
        let need = (LOW as f64 / CAPACITY as f64).ceil() as i32;
        if down.from != up.to || down.to >= up.to || down.to < need {
            bail!("the step down went {} → {} (the load needs {need}): {}", down.from, down.to, down.summary);
        }
        // Justified for scaleDownDelay: the new load is first measured over 3
        // samples, then held for the delay (a few seconds of slack for the start).
        let after_drop = down.at - drop;
        if after_drop < DELAY - 5.0 {
            bail!("scaled down {after_drop:.0} s after the drop, before scaleDownDelay {DELAY} s");
        }
        // No other change while the lower load lasts; it keeps up at the new parallelism.
        let down_running = tr.settled_at(&t, "clicks", down.to, "the step down running").await?;
        let lag_after = tr.peak_lag(down_running + 20.0);
        eprintln!(
            "step down: up {}→{} decided {:.0} s after the start, running at {:.0} s; the rate fell at {DROP} s; \
             down {}→{} decided {after_drop:.0} s after the drop (scaleDownDelay {DELAY} s), running {:.0} s after it; \
             peak lag from 20 s after: {lag_after}; cutover pauses (ms): {:?}; {}",
            up.from,
            up.to,
            up.at - start,
            up_running - start,
            down.from,
            down.to,
            down_running - drop,
            tr.pauses,
            down.summary
        );
        if lag_after > 3 * LOW as u64 {
            bail!("at {} the job does not keep up: lag {lag_after}", down.to);
        }
        t.finished_exactly_once("clicks", "s3://sluice/out", rows).await
    }
    .await;
    eprintln!("rescales: {:#?}\n{}\n{}", tr.rescales, tr.timeline(), tr.intervals());
    t.check(result, "clicks").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a load test of several minutes that needs quiet cores: run by `make chaos`"]
async fn a_backlog_is_caught_up_in_about_catch_up_duration_then_scaled_down_once() {
    // The blackhole holds LOW at 2 subtasks (0.7 utilization). Suspended for DOWN,
    // the source owes LOW × the downtime on resume.
    // A backlog that a scale-up to well above the steady need clears: then the steady
    // load at that parallelism is below the utilization boundary (a scale-down).
    const CATCH_UP: f64 = 30.0;
    const DOWN: u64 = 75;
    let t = setup("as-backlog").await;
    let rows = LOW * 420;
    let rate = format!("'rows-per-second' = '{LOW}'");
    let mut s = spec(&t, &load_sql(rows, &rate, 2, "s3://sluice/out"), "apply", "in-place");
    s["parallelism"] = json!(1);
    // The workers are sized by `spec.parallelism` (1) before the autoscaler decides:
    // two slots in the one worker for the blackhole's two subtasks.
    s["slotsPerWorker"] = json!(2);
    s["autoscaler"]["catchUpDuration"] = json!(format!("{CATCH_UP}s"));
    s["autoscaler"]["scaleDownDelay"] = json!("60s");
    create(&t.api, job("clicks", s)).await.unwrap();
    let mut tr = Trace::new();
    let result = async {
        tr.until(&t, "clicks", Duration::from_secs(120), "Running", |j, _| running(j)).await?;
        // The steady load is held: the autoscaler evaluates and changes nothing.
        tr.until(&t, "clicks", Duration::from_secs(120), "an evaluation", |j, _| {
            j.status.as_ref().and_then(|s| s.autoscaler.as_ref()).is_some_and(|a| !a.recommended.is_empty())
        })
        .await?;
        if !tr.rescales.is_empty() {
            bail!("a rescale at steady load: {:#?}", tr.rescales);
        }
        t.patch("clicks", json!({"spec": {"state": "suspended"}})).await?;
        tr.until(&t, "clicks", Duration::from_secs(90), "Suspended", |j, _| phase(j) == Some(Phase::Suspended)).await?;
        let suspended = tr.now();
        tokio::time::sleep(Duration::from_secs(DOWN)).await;
        t.patch("clicks", json!({"spec": {"state": "running"}})).await?;
        let resumed = tr.now();
        tr.until(&t, "clicks", Duration::from_secs(240), "the catch-up's scale-up", |_, tr| !tr.rescales.is_empty())
            .await?;
        let up = tr.rescales[0].clone();
        if up.from != 2 || up.to <= 2 {
            bail!("the catch-up went {} → {}: {}", up.from, up.to, up.summary);
        }
        tr.until(&t, "clicks", Duration::from_secs(120), "the scale-up running", |_, tr| {
            tr.running_at(up.to).is_some()
        })
        .await?;
        let up_running = tr.running_at(up.to).unwrap_or_default();
        let peak = tr.peak_lag(resumed);
        // Caught up: under a second of the rate behind.
        tr.until(&t, "clicks", Duration::from_secs(300), "the catch-up", |_, tr| {
            tr.lag_at_most(LOW as u64, up_running).is_some()
        })
        .await?;
        let caught_up = tr.lag_at_most(LOW as u64, up_running).unwrap_or_default();
        let clearance = caught_up - up_running;
        let down = tr
            .until(&t, "clicks", Duration::from_secs(300), "the scale-down", |_, tr| tr.rescales.len() >= 2)
            .await
            .map(|_| tr.rescales[1].clone())?;
        if down.at < caught_up {
            bail!("scaled down {:.0} s before the backlog was caught up: {}", caught_up - down.at, down.summary);
        }
        let need = (LOW as f64 / CAPACITY as f64).ceil() as i32;
        if down.from != up.to || down.to >= up.to || down.to < need {
            bail!("the scale-down went {} → {} (the load needs {need}): {}", down.from, down.to, down.summary);
        }
        tr.settled_at(&t, "clicks", down.to, "the scale-down running").await?;
        eprintln!(
            "backlog: suspended {:.0} s, peak lag {peak}; scale-up {}→{} decided \
             {:.0} s after the resume, running {:.0} s after it; caught up {clearance:.0} s after it ran \
             (catchUpDuration {CATCH_UP} s; {:.0} s after the resume); scale-down {}→{} decided {:.0} s after the \
             catch-up; {}",
            resumed - suspended,
            up.from,
            up.to,
            up.at - resumed,
            up_running - resumed,
            caught_up - resumed,
            down.from,
            down.to,
            down.at - caught_up,
            up.summary
        );
        // The figure is catchUpDuration ± 25%; asserted loosely on a shared
        // machine (the report gives the measured figure), but tight enough below to
        // catch Flink's sizing of the catch-up at the target utilization, which
        // cleared it in 0.53 × catchUpDuration here (2 → 7 subtasks, not 5).
        if !(0.6 * CATCH_UP..=2.0 * CATCH_UP).contains(&clearance) {
            bail!("the backlog took {clearance:.0} s to clear, catchUpDuration {CATCH_UP} s");
        }
        t.finished_exactly_once("clicks", "s3://sluice/out", rows).await
    }
    .await;
    eprintln!("rescales: {:#?}\n{}\n{}", tr.rescales, tr.timeline(), tr.intervals());
    t.check(result, "clicks").await;
}
