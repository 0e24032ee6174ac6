//! Two operator processes at once against a real API server, engine pods and MinIO:
//! the leader is paused (SIGSTOP) past the Lease duration, the standby takes over
//! and starts a savepoint upgrade, and the paused one is resumed (SIGCONT) in the
//! middle of it. The resumed process must notice that it lost the Lease and stop
//! without reconciling, and the upgrade must take a single stop-savepoint.
//!
//! Behind the `cluster-tests` feature (it needs the Go-built Kubernetes binaries):
//! `cargo test -p sluice-operator --features cluster-tests --test leadership`; `make test` runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use anyhow::bail;
use common::{Operator, committed_ids, create, env, job, phase, s3_storage};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use sluice_e2e::testenv::{wait_for, wait_object};
use sluice_operator::crd::{Phase, StreamJob};
use sluice_operator::trigger_id;

/// The marker the test writes into the paused operator's log before resuming it.
const RESUMED: &str = "=== test: SIGCONT ===";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_stops_on_resume_and_an_upgrade_takes_one_stop_savepoint() {
    let (env, client) = env().await;
    let ns = env.namespace(&client, "leader").await.unwrap();
    let s3 = env.start_s3(&client, &ns, &["sluice"]).await.unwrap();
    let (log_a, log_b) = (env.dir.join(format!("operator-{ns}-a.log")), env.dir.join(format!("operator-{ns}-b.log")));
    let level = "info,sluice_operator=debug";
    let mut a = Operator::start_as(&env, &ns, &s3.endpoint, log_a.clone(), Some("op-a"), level);
    let api = Api::<StreamJob>::namespaced(client.clone(), &ns);
    let sql = "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '40', \
               'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '1000000');\n\
               CREATE TABLE out (id BIGINT) WITH ('connector' = 'filesystem', 'path' = 's3://sluice/ha', 'format' = 'csv');\n\
               INSERT INTO out SELECT id FROM src;\n";
    let spec = json!({
        "image": "sluice/engine:test",
        "sql": sql,
        "upgradeMode": "savepoint",
        "checkpointing": {"interval": "2s", "storage": "s3://sluice/checkpoints"},
        "savepoints": {"directory": "s3://sluice/savepoints"},
        "upgrade": {"stabilizationPeriod": "3s", "savepointTimeout": "1m"},
        "s3": {"endpoint": s3.cluster_endpoint, "credentialsSecretRef": {"name": "s3-creds"}}
    });
    let logs = |a: &Operator, b: Option<&Operator>| {
        format!("--- operator a:\n{}\n--- operator b:\n{}", a.log(), b.map(Operator::log).unwrap_or_default())
    };
    let result = async {
        wait_for(Duration::from_secs(60), "operator a to lead", || async {
            Ok(a.log().contains("leading").then_some(()))
        })
        .await?;
        create(&api, job("ha", spec)).await?;
        wait_object(&api, "ha", Duration::from_secs(120), "Stable", |j| phase(j) == Some(Phase::Stable)).await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", logs(&a, None));
    }

    // A standby, then the leader paused past the Lease duration: the standby takes over.
    let b = Operator::start_as(&env, &ns, &s3.endpoint, log_b.clone(), Some("op-b"), level);
    let result = async {
        wait_for(Duration::from_secs(30), "operator b to stand by", || async {
            Ok(b.log().contains("standing by").then_some(()))
        })
        .await?;
        a.signal("STOP");
        wait_for(Duration::from_secs(60), "operator b to lead", || async {
            Ok(b.log().contains("leading").then_some(()))
        })
        .await?;
        // An upgrade for the new leader; the paused one resumes in the middle of it, with
        // a cache from before the pause.
        api.patch("ha", &PatchParams::default(), &Patch::Merge(json!({"spec": {"parallelism": 2}}))).await?;
        std::fs::OpenOptions::new().append(true).open(&log_a)?.write_all(format!("{RESUMED}\n").as_bytes())?;
        a.signal("CONT");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = a.exited() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                bail!("the resumed operator still runs 30 s after SIGCONT");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if status.success() {
            bail!("the resumed operator exited with {status}, not an error");
        }
        let upgraded = wait_object(&api, "ha", Duration::from_secs(120), "deployment 2 Stable", |j| {
            j.status.as_ref().is_some_and(|s| s.deployment == 2 && s.phase == Phase::Stable)
        })
        .await?;
        let uid = upgraded.metadata.uid.clone().unwrap_or_default();
        let st = upgraded.status.unwrap();
        let from = st.deployed_from.clone().unwrap_or_default();
        if !from.contains(&format!("savepoint-{}", trigger_id::job("ha", &uid, "upgrade", &[]))) {
            bail!("the upgrade did not restore from its savepoint: {st:?}");
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        let j = api.get_opt("ha").await.ok().flatten();
        panic!("{e:#}\n--- job status: {:#?}\n{}", j.and_then(|j| j.status), logs(&a, Some(&b)));
    }

    // The resumed operator did not reconcile: it noticed that its Lease was gone and stopped.
    let log = a.log();
    let after = log.split(RESUMED).nth(1).unwrap_or_default();
    assert!(after.contains("lost leadership"), "the resumed operator did not report the lost Lease:\n{after}");
    for forbidden in ["reconciling", "reconciled", "status written"] {
        assert!(!after.contains(forbidden), "the resumed operator reconciled ({forbidden}):\n{after}");
    }

    // One stop-savepoint for the upgrade: in storage and in the Events.
    let uid = api.get("ha").await.unwrap().metadata.uid.unwrap();
    let upgrade = format!("savepoint-{}", trigger_id::job("ha", &uid, "upgrade", &[]));
    let savepoints: BTreeSet<String> = s3_storage(&s3, "s3://sluice/savepoints")
        .list("")
        .unwrap()
        .into_iter()
        .filter_map(|o| o.path.split('/').find(|p| p.starts_with(&upgrade)).map(str::to_string))
        .collect();
    assert_eq!(savepoints.len(), 1, "stop-savepoints of the upgrade: {savepoints:?}\n{}", logs(&a, Some(&b)));
    let events = Api::<Event>::namespaced(client.clone(), &ns).list(&ListParams::default()).await.unwrap();
    let started: i32 = events
        .items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("ha"))
        .filter(|e| e.reason.as_deref() == Some("UpgradeStarted"))
        .map(|e| e.series.as_ref().map(|s| s.count).unwrap_or(1))
        .sum();
    assert_eq!(started, 1, "UpgradeStarted Events");

    // Exactly once so far: no id was committed twice.
    let ids = committed_ids(&s3, "s3://sluice/ha").unwrap();
    let unique: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicates in the output");
    assert!(ids.len() > 100, "too little output: {}", ids.len());
}

/// The API server honors the resourceVersion in a status write's apply body, also when
/// the write would change nothing: a plan from a stale object cannot overwrite the status,
/// nor pass the precondition of the actions that follow it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_write_planned_from_a_stale_object_conflicts() {
    use sluice_operator::controllers::streamjob::apply::{STATUS_MANAGER, status_body};
    use sluice_operator::crd::StreamJobStatus;
    let (env, client) = env().await;
    let ns = env.namespace(&client, "rv").await.unwrap();
    let api = Api::<StreamJob>::namespaced(client.clone(), &ns);
    let created = create(&api, job("j", json!({"image": "sluice/engine:test", "sql": "SELECT 1"}))).await.unwrap();
    let stale = created.metadata.resource_version.clone().unwrap();
    let pp = PatchParams::apply(STATUS_MANAGER).force();
    let write = |rv: String, deployment: i64| {
        let api = api.clone();
        let pp = pp.clone();
        async move {
            let st = StreamJobStatus { deployment, ..Default::default() };
            api.patch_status("j", &pp, &Patch::Apply(status_body(Some(&rv), &st))).await
        }
    };
    let fresh = write(stale.clone(), 1).await.unwrap();
    let current = fresh.metadata.resource_version.clone().unwrap();
    assert_ne!(current, stale);
    for (what, deployment) in [("a change", 2), ("no change", 1)] {
        match write(stale.clone(), deployment).await {
            Err(kube::Error::Api(s)) => assert_eq!(s.code, 409, "{what}: {s:?}"),
            other => panic!("{what} from a stale resourceVersion was not refused: {other:?}"),
        }
    }
    assert_eq!(api.get("j").await.unwrap().status.unwrap().deployment, 1);
    // From the current one it goes through.
    write(current, 2).await.unwrap();
    assert_eq!(api.get("j").await.unwrap().status.unwrap().deployment, 2);
}
