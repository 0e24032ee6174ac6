//! Blue-green cutovers against a real kube-apiserver, engine pods run by the node
//! agent, and MinIO: a clean cutover under load that also rescales, with the
//! operator killed in the middle; a new color that fails after its activation and
//! is rolled back automatically; a new color that cannot restore the running
//! job's state, which never touches it. The output is checked exactly once.
//!
//! Behind the `cluster-tests` feature, as `cluster.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use common::{Operator, committed_ids, create, env, job, phase};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use sluice_e2e::testenv::{TestEnv, TestS3, wait_object};
use sluice_operator::crd::{Color, CutoverStep, Phase, StreamJob};

/// A bounded sequence at `rate` rows per second into `out`, from source table `src`.
fn sql(rows: i64, rate: i64, src: &str, out: &str) -> String {
    format!(
        "CREATE TABLE {src} (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '{rate}', \
         'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{}');\n\
         CREATE TABLE out (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');\n\
         INSERT INTO out SELECT id FROM {src};\n",
        rows - 1
    )
}

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

/// Every id below `rows`, once.
fn exactly_once(s3: &TestS3, uri: &str, rows: i64) -> Result<()> {
    let ids = committed_ids(s3, uri)?;
    let unique: BTreeSet<i64> = ids.iter().copied().collect();
    if unique.len() != ids.len() {
        bail!("{} duplicates in the output", ids.len() - unique.len());
    }
    let want: BTreeSet<i64> = (0..rows).collect();
    if unique != want {
        let missing: Vec<_> = want.difference(&unique).take(10).collect();
        bail!("{} ids missing, e.g. {missing:?}", want.len() - unique.len());
    }
    Ok(())
}

struct Setup {
    env: TestEnv,
    client: kube::Client,
    ns: String,
    s3: TestS3,
    op: Operator,
    api: Api<StreamJob>,
}

async fn setup(name: &str) -> Setup {
    let (env, client) = env().await;
    let ns = env.namespace(&client, name).await.unwrap();
    let s3 = env.start_s3(&client, &ns, &["sluice"]).await.unwrap();
    let op = Operator::start(&env, &ns, &s3.endpoint, env.dir.join(format!("operator-{ns}.log")));
    let api = Api::<StreamJob>::namespaced(client.clone(), &ns);
    Setup { env, client, ns, s3, op, api }
}

impl Setup {
    fn fail(&self, e: anyhow::Error, job: Option<StreamJob>) -> ! {
        panic!("{e:#}\n--- job status: {:#?}\n--- operator log:\n{}", job.and_then(|j| j.status), self.op.log());
    }

    async fn job(&self, name: &str) -> Option<StreamJob> {
        self.api.get_opt(name).await.ok().flatten()
    }

    async fn patch(&self, name: &str, patch: serde_json::Value) -> Result<()> {
        self.api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await?;
        Ok(())
    }

    /// The engine pods of `job`, by `app.kubernetes.io/instance` (`<job>`, `<job>-green`).
    async fn instances(&self, job: &str) -> Result<BTreeSet<String>> {
        let pods = Api::<Pod>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default().labels(&format!("sluice.dev/job={job}")))
            .await?;
        Ok(pods
            .items
            .iter()
            .filter_map(|p| p.metadata.labels.as_ref()?.get("app.kubernetes.io/instance").cloned())
            .collect())
    }
}

fn step(j: &StreamJob) -> Option<CutoverStep> {
    j.status.as_ref().and_then(|s| s.cutover.as_ref()).map(|c| c.step)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cutover_under_load_rescales_survives_an_operator_kill_and_is_exactly_once() {
    let mut t = setup("bg-clean").await;
    let rows = 2400;
    let text = sql(rows, 60, "src", "s3://sluice/out");
    create(&t.api, job("clicks", spec(&t.s3, &text))).await.unwrap();
    let result = async {
        wait_object(&t.api, "clicks", Duration::from_secs(120), "Stable", |j| phase(j) == Some(Phase::Stable)).await?;
        // A change that needs a new deployment: parallelism 1 → 2, by blue-green.
        t.patch("clicks", json!({"spec": {"parallelism": 2}})).await?;
        wait_object(&t.api, "clicks", Duration::from_secs(60), "green in standby", |j| {
            step(j) == Some(CutoverStep::Preparing) || step(j) == Some(CutoverStep::Stopping)
        })
        .await?;
        // Both colors' pods, under the job's label, while green prepares.
        let both = wait_for_instances(&t, "clicks", 2).await?;
        eprintln!("pods of both colors: {both:?}");
        // The operator is killed once the old color's stop is recorded, and replaced.
        wait_object(&t.api, "clicks", Duration::from_secs(60), "the stop recorded", |j| {
            matches!(step(j), Some(CutoverStep::Stopping | CutoverStep::Activating | CutoverStep::Verifying))
        })
        .await?;
        t.op.kill();
        tokio::time::sleep(Duration::from_millis(500)).await;
        t.op = Operator::start(&t.env, &t.ns, &t.s3.endpoint, t.env.dir.join(format!("operator-{}.log", t.ns)));
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
        wait_object(&t.api, "clicks", Duration::from_secs(180), "Finished", |j| phase(j) == Some(Phase::Finished))
            .await?;
        exactly_once(&t.s3, "s3://sluice/out", rows)
    }
    .await;
    if let Err(e) = result {
        t.fail(e, t.job("clicks").await);
    }
    assert!(t.op.log().contains("CutoverSucceeded") || t.op.log().contains("runs the job"), "{}", t.op.log());
}

async fn wait_for_instances(t: &Setup, job: &str, n: usize) -> Result<BTreeSet<String>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = t.instances(job).await?;
        if found.len() == n {
            return Ok(found);
        }
        if Instant::now() > deadline {
            bail!("expected pods of {n} colors, found {found:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_color_that_fails_after_its_activation_is_rolled_back_and_nothing_is_lost() {
    let t = setup("bg-rollback").await;
    let rows = 2400;
    let text = sql(rows, 60, "src", "s3://sluice/out");
    create(&t.api, job("clicks", spec(&t.s3, &text))).await.unwrap();
    let result = async {
        wait_object(&t.api, "clicks", Duration::from_secs(120), "Stable", |j| phase(j) == Some(Phase::Stable)).await?;
        // The same job writing to a bucket that does not exist: it compiles, it restores,
        // and it fails only once it runs.
        let broken = sql(rows, 60, "src", "s3://no-such-bucket/out");
        t.patch("clicks", json!({"spec": {"sql": broken}})).await?;
        let activated = Instant::now();
        wait_object(&t.api, "clicks", Duration::from_secs(120), "the rollback", |j| {
            matches!(step(j), Some(CutoverStep::RollingBack | CutoverStep::Restoring))
        })
        .await?;
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
        exactly_once(&t.s3, "s3://sluice/out", rows)
    }
    .await;
    if let Err(e) = result {
        t.fail(e, t.job("clicks").await);
    }
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
    if let Err(e) = result {
        t.fail(e, t.job("clicks").await);
    }
}
