//! Blue-green cutovers against a real kube-apiserver, engine pods run by the node
//! agent, and MinIO: a clean cutover under load that also rescales, with the
//! operator killed at each step; a new color that fails after its activation and
//! is rolled back automatically, with the operator killed at its rollback step; a
//! new color that cannot restore the running job's state, which never touches it.
//! The output is checked exactly once, and the sink's commit log shows one writer
//! at a time: each deployment's commits end before the next one's begin.
//!
//! Behind the `cluster-tests` feature, as `lifecycle.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::bail;
use common::{
    Family, committed_ids, create, exactly_once, job, one_writer_at_a_time, phase, setup, sql, turns,
    wait_for_instances,
};
use serde_json::json;
use sluice_e2e::testenv::{TestS3, wait_object};
use sluice_operator::crd::{Color, CutoverStep, Phase, StreamJob};

fn spec(s3: &TestS3, sql: &str) -> serde_json::Value {
    json!({
        "image": "sluice/engine:test",
        "sql": sql,
        "parallelism": 1,
        "upgradeMode": "savepoint",
        "upgradeStrategy": {"type": "blue-green", "blueGreen": {"verificationWindow": "6s", "maxRestarts": 0}},
        "checkpointing": {"interval": "1s", "storage": "s3://sluice/checkpoints"},
        "savepoints": {"directory": "s3://sluice/savepoints"},
        "config": {"restart-strategy.type": "fixed-delay", "restart-strategy.fixed-delay.delay": "500ms"},
        "upgrade": {"stabilizationPeriod": "2s", "readinessTimeout": "2m", "savepointTimeout": "1m"},
        "s3": {"endpoint": s3.cluster_endpoint, "credentialsSecretRef": {"name": "s3-creds"}}
    })
}

fn step(j: &StreamJob) -> Option<CutoverStep> {
    j.status.as_ref().and_then(|s| s.cutover.as_ref()).map(|c| c.step)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cutover_under_load_rescales_survives_an_operator_kill_at_each_step_and_is_exactly_once() {
    let mut t = setup("bg-clean").await;
    let rows = 4800;
    let text = sql(rows, 60, "src", "s3://sluice/out");
    create(&t.api, job("clicks", spec(&t.s3, &text))).await.unwrap();
    let result = async {
        wait_object(&t.api, "clicks", Duration::from_secs(120), "Stable", |j| phase(j) == Some(Phase::Stable)).await?;
        // A change that needs a new deployment: parallelism 1 → 2, by blue-green.
        // The operator dies once at every step, right after writing it, and is replaced.
        let steps = ["preparing", "stopping", "activating", "verifying"];
        let (died, colors) =
            t.die_at_each("clicks", json!({"spec": {"parallelism": 2}}), Family::Cutover, &steps).await?;
        if died != steps {
            bail!("the operator died at steps {died:?}, not at each of {steps:?}");
        }
        // Both colors' pods, under the job's label, during the cutover.
        if colors != BTreeSet::from(["clicks".to_string(), "clicks-green".to_string()]) {
            bail!("during the cutover the pods under the job's label were of {colors:?}");
        }
        let done = wait_object(&t.api, "clicks", Duration::from_secs(180), "green active", |j| {
            j.status.as_ref().is_some_and(|s| s.active_color == Some(Color::Green) && s.cutover.is_none())
        })
        .await?;
        let st = done.status.unwrap();
        let report = st.last_cutover.clone().unwrap_or_default();
        eprintln!("cutover: {report:?}");
        if report.outcome != "succeeded" || st.deployment != 2 || st.current_parallelism != Some(2) {
            bail!("unexpected status after the cutover: {st:?}");
        }
        if report.pause.is_none() || report.restore_bytes.unwrap_or(0) <= 0 || report.savepoint_bytes.unwrap_or(0) <= 0
        {
            bail!("the cutover's figures are missing: {report:?}");
        }
        // Blue's children are gone; green's stay.
        let left = wait_for_instances(&t, "clicks", 1).await?;
        if left != BTreeSet::from(["clicks-green".to_string()]) {
            bail!("after the cutover the pods are {left:?}");
        }
        t.finished_exactly_once("clicks", "s3://sluice/out", rows).await?;
        // One writer at a time: blue's last commit precedes green's first.
        let committers = one_writer_at_a_time(&t.s3, "s3://sluice/out")?;
        eprintln!("committers: {committers:?}");
        if turns(&committers) != ["1-blue", "2-green"] {
            bail!("the deployments committed in the order {committers:?}, not blue then green");
        }
        anyhow::Ok(())
    }
    .await;
    t.check(result, "clicks").await;
    assert!(t.op.log().contains("CutoverSucceeded") || t.op.log().contains("runs the job"), "{}", t.op.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_color_that_fails_after_its_activation_is_rolled_back_and_nothing_is_lost() {
    let mut t = setup("bg-rollback").await;
    let rows = 2400;
    let text = sql(rows, 60, "src", "s3://sluice/out");
    create(&t.api, job("clicks", spec(&t.s3, &text))).await.unwrap();
    let result = async {
        wait_object(&t.api, "clicks", Duration::from_secs(120), "Stable", |j| phase(j) == Some(Phase::Stable)).await?;
        // The same job writing to a bucket that does not exist: it compiles, it restores,
        // and it fails only once it runs.
        let broken = sql(rows, 60, "src", "s3://no-such-bucket/out");
        // The operator dies once at each step of the rollback, right after writing it.
        // A new color that has failed cannot take a savepoint, so the rollback goes
        // straight to Restoring from its newest checkpoint; RollingBack (stop the new
        // color with a savepoint) is taken only when it still runs.
        let activated = Instant::now();
        let steps = ["rollingback", "restoring"];
        let (died, _) = t.die_at_each("clicks", json!({"spec": {"sql": broken}}), Family::Cutover, &steps).await?;
        if !died.contains(&"restoring".to_string()) {
            bail!("the operator died at steps {died:?}, not at Restoring");
        }
        let rolled = wait_object(&t.api, "clicks", Duration::from_secs(120), "RolledBack", |j| {
            phase(j) == Some(Phase::RolledBack) && step(j).is_none()
        })
        .await?;
        eprintln!("rolled back {} s after the change", activated.elapsed().as_secs());
        let st = rolled.status.unwrap();
        let report = st.last_cutover.clone().unwrap_or_default();
        if report.outcome != "rolledBack" || st.active_color.unwrap_or_default() != Color::Blue {
            bail!("unexpected status after the rollback: {st:?}");
        }
        let stalled = st.conditions.iter().any(|c| c.type_ == "Stalled" && c.status == "True");
        if !stalled {
            bail!("a rolled-back job is not Stalled: {st:?}");
        }
        // Blue resumes and finishes the input.
        wait_object(&t.api, "clicks", Duration::from_secs(180), "blue finished", |j| {
            j.status.as_ref().is_some_and(|s| s.job_state.as_deref() == Some("FINISHED"))
        })
        .await?;
        exactly_once(&t.s3, "s3://sluice/out", rows)?;
        // Blue committed, then perhaps green, then blue again: never two at once.
        let committers = one_writer_at_a_time(&t.s3, "s3://sluice/out")?;
        eprintln!("committers: {committers:?}");
        let order = turns(&committers);
        let resumed =
            committers.last().is_some_and(|c| c.deployment == "1-blue" && c.generation > committers[0].generation);
        if order.first().map(String::as_str) != Some("1-blue") || !resumed || order.len() > 3 {
            bail!("the deployments committed in the order {committers:?}, not blue, green, then blue again");
        }
        // The output's gap: blue's last commit before the cutover to its first after the rollback.
        if let Some(i) =
            committers.iter().position(|c| c.generation > committers[0].generation && c.deployment == "1-blue")
        {
            let gap =
                committers[i].first_ms.saturating_sub(committers[..i].iter().map(|c| c.last_ms).max().unwrap_or(0));
            eprintln!("rollback: blue committed again {} ms after the last commit before it", gap);
        }
        anyhow::Ok(())
    }
    .await;
    t.check(result, "clicks").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_color_that_cannot_restore_the_state_never_touches_the_running_job() {
    let t = setup("bg-incompatible").await;
    let rows = 100_000;
    let text = sql(rows, 60, "src", "s3://sluice/out");
    create(&t.api, job("clicks", spec(&t.s3, &text))).await.unwrap();
    let result = async {
        wait_object(&t.api, "clicks", Duration::from_secs(120), "Stable", |j| phase(j) == Some(Phase::Stable)).await?;
        // Another source table: blue's source state has no operator to go to.
        let other = sql(rows, 60, "other_src", "s3://sluice/out");
        t.patch("clicks", json!({"spec": {"sql": other}})).await?;
        let aborted = wait_object(&t.api, "clicks", Duration::from_secs(120), "the cutover aborted", |j| {
            j.status.as_ref().and_then(|s| s.last_cutover.as_ref()).is_some_and(|c| c.outcome == "aborted")
        })
        .await?;
        let st = aborted.status.unwrap();
        let reason = st.last_cutover.clone().unwrap_or_default().reason.unwrap_or_default();
        if !reason.contains("no matching operator") {
            bail!("the abort does not say why: {reason}");
        }
        if st.deployment != 1 || st.active_color.unwrap_or_default() != Color::Blue {
            bail!("the running job was touched: {st:?}");
        }
        let stalled = wait_object(&t.api, "clicks", Duration::from_secs(30), "Stalled", |j| {
            j.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| c.type_ == "Stalled" && c.status == "True" && c.reason == "CutoverAborted")
            })
        })
        .await?;
        let _ = stalled;
        // Green's pods go; blue keeps running and committing.
        let left = wait_for_instances(&t, "clicks", 1).await?;
        if left != BTreeSet::from(["clicks".to_string()]) {
            bail!("after the abort the pods are {left:?}");
        }
        let before = committed_ids(&t.s3, "s3://sluice/out")?.len();
        tokio::time::sleep(Duration::from_secs(4)).await;
        let after = committed_ids(&t.s3, "s3://sluice/out")?.len();
        if after <= before {
            bail!("blue stopped committing: {before} then {after} rows");
        }
        let j = t.job("clicks").await.unwrap();
        if j.status.as_ref().and_then(|s| s.job_state.as_deref()) != Some("RUNNING") {
            bail!("blue is not RUNNING: {:?}", j.status);
        }
        anyhow::Ok(())
    }
    .await;
    t.check(result, "clicks").await;
}
