//! The fault-injection suite's operator kills (see `engine/tests/chaos.rs` for
//! the suite): the operator killed right after it writes each step of an
//! in-place upgrade, in each mode that keeps state (`savepoint`: stopping,
//! stopped; `last-state`: stopped), and replaced, as a `kill -9` and a new pod
//! would be. Each upgrade completes, no savepoint is lost, two deployments never
//! commit at once, and the bounded job's output holds every row once.
//! (`stateless` upgrades start empty by definition; blue-green cutovers are
//! killed at each step in `bluegreen.rs`.)
//!
//! Behind the `cluster-tests` feature, as `lifecycle.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use anyhow::bail;
use common::chaos::Scenario;
use common::{Family, committed_ids, create, job, phase, setup, sql};
use serde_json::json;
use sluice_e2e::testenv::wait_object;
use sluice_operator::crd::{Phase, StreamJob};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_killed_at_each_in_place_upgrade_step_loses_and_duplicates_nothing() {
    let mut t = setup("upgrade-chaos").await;
    let rows = 1800;
    let spec = json!({
        "image": "sluice/engine:test",
        "sql": sql(rows, 60, "src", "s3://sluice/out"),
        "parallelism": 1,
        "upgradeMode": "savepoint",
        "checkpointing": {"interval": "1s", "storage": "s3://sluice/checkpoints"},
        "savepoints": {"directory": "s3://sluice/savepoints"},
        "upgrade": {"stabilizationPeriod": "2s", "readinessTimeout": "2m", "savepointTimeout": "1m"},
        "s3": {"endpoint": t.s3.cluster_endpoint, "credentialsSecretRef": {"name": "s3-creds"}}
    });
    create(&t.api, job("clicks", spec)).await.unwrap();
    let started = Instant::now();
    let mut upgrades = Vec::new();
    let result = async {
        wait_object(&t.api, "clicks", Duration::from_secs(120), "Stable", |j| phase(j) == Some(Phase::Stable)).await?;
        let plan = [("savepoint", 2, vec!["stopping", "stopped"]), ("last-state", 1, vec!["stopped"])];
        for (deployment, (mode, parallelism, steps)) in (2..).zip(plan) {
            let t0 = Instant::now();
            let change = json!({"spec": {"upgradeMode": mode, "parallelism": parallelism}});
            let (died, _) = t.die_at_each("clicks", change, Family::Upgrade, &steps).await?;
            if died != steps {
                bail!("the {mode} upgrade's operator died at {died:?}, not at each of {steps:?}");
            }
            let running = |j: &StreamJob| {
                j.status.as_ref().is_some_and(|s| {
                    s.deployment == deployment && s.upgrade.is_none() && s.job_state.as_deref() == Some("RUNNING")
                })
            };
            let done =
                wait_object(&t.api, "clicks", Duration::from_secs(180), "the upgraded job running", running).await?;
            let st = done.status.unwrap();
            if mode == "savepoint" && !st.deployed_from.as_deref().unwrap_or_default().contains("savepoint-") {
                bail!("the savepoint upgrade did not restore its savepoint: {st:?}");
            }
            eprintln!("{mode} upgrade to parallelism {parallelism}: from {:?} in {:?}", st.deployed_from, t0.elapsed());
            upgrades.push(format!("{mode} in {:.0} s", t0.elapsed().as_secs_f64()));
        }
        wait_object(&t.api, "clicks", Duration::from_secs(300), "Finished", |j| phase(j) == Some(Phase::Finished))
            .await?;
        anyhow::Ok(())
    }
    .await;
    t.check(result, "clicks").await;
    // The sequence check and the report line of the engine's chaos scenarios.
    let mut report = Scenario::new(
        "operator killed after writing each in-place upgrade step (savepoint: stopping, stopped; last-state: stopped)",
    );
    report.faults = 3;
    let expected: Vec<String> = (0..rows).map(|i| i.to_string()).collect();
    let committed: Vec<String> =
        committed_ids(&t.s3, "s3://sluice/out").unwrap().iter().map(|i| i.to_string()).collect();
    report.check(&[(&expected, &committed)]);
    report.notes.push(format!(
        "upgrades completed: {}; the job finished in {:.0} s",
        upgrades.join(", "),
        started.elapsed().as_secs_f64()
    ));
    report.finish();
}
