//! `spec.dataPolicy` against a real kube-apiserver, engine pods run by the node agent,
//! and MinIO:
//!
//! - the chart's ValidatingAdmissionPolicy refuses a job with an unmasked `pii`
//!   column in a namespace labelled `sluice.dev/require-data-policy=true`, names the
//!   column, accepts the masked jobs, and leaves other namespaces alone; without it,
//!   the operator refuses a job whose SQL writes a `pii` column unmasked;
//! - a job whose policy names a missing Secret is refused with a condition that
//!   names it; with the Secret, the pods mount it, the output holds tokens only,
//!   `status.dataPolicy` records the policy and the engine's report verifies it; a
//!   changed policy rolls out as an upgrade, with a new record and an Event.
//!
//! Behind the `cluster-tests` feature, as `lifecycle.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::bail;
use common::{Setup, create, job, openlineage, phase, s3_storage, setup, setup_with_lineage};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sluice_e2e::testenv::wait_object;
use sluice_operator::crd::{Phase, StreamJob};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The chart's admission policy and binding, renamed so that the chart tests that
/// install the release keep the chart's own names.
fn admission_docs() -> String {
    let out = Command::new("bash").arg(repo().join("scripts/helm.sh")).arg("install").output().unwrap();
    assert!(out.status.success(), "scripts/helm.sh install: {}", String::from_utf8_lossy(&out.stderr));
    let helm = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let chart = repo().join("charts/sluice");
    let out = Command::new(helm)
        .args(["template", "sluice", chart.to_str().unwrap(), "--show-only", "templates/admission-policy.yaml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "helm template: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().replace("sluice-require-data-policy", "test-require-data-policy")
}

fn kubectl(t: &Setup) -> Command {
    let mut c = Command::new("kubectl");
    c.arg("--kubeconfig").arg(&t.env.kubeconfig);
    c
}

/// `kubectl create --dry-run=server` of `doc` in `ns`: whether admission let it
/// through, and what the API server said.
fn admitted(t: &Setup, ns: &str, doc: &Value) -> (bool, String) {
    let file = t.env.dir.join(format!("admission-{ns}-{}.json", doc["metadata"]["name"].as_str().unwrap()));
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = kubectl(t).args(["create", "--dry-run=server", "-n", ns, "-f"]).arg(&file).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admission_policy_refuses_unmasked_pii_in_labelled_namespaces_only() {
    let t = setup("dp-admission").await;
    let file = t.env.dir.join("admission-policy.yaml");
    std::fs::write(&file, admission_docs()).unwrap();
    let out = kubectl(&t).args(["apply", "--server-side", "-f"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plain = t.env.namespace(&t.client, "dp-plain").await.unwrap();
    Api::<Namespace>::all(t.client.clone())
        .patch(
            &t.ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"sluice.dev/require-data-policy": "true"}}})),
        )
        .await
        .unwrap();
    let doc = |name: &str, columns: Value| {
        job(
            name,
            json!({"image": "sluice/engine:test", "sql": "INSERT INTO o SELECT * FROM s;",
                "dataPolicy": {"columns": columns,
                    "tags": {"clicks.email": ["pii"], "clicks.card_no": ["pii", "pci"], "clicks.country": ["geo"]}}}),
        )
    };
    let unmasked = doc("unmasked", json!([{"match": {"column": "email"}, "action": "null"}]));
    // The policy takes effect once the API server has compiled and bound it.
    let mut refusal = None;
    for _ in 0..60 {
        let (ok, err) = admitted(&t, &t.ns, &unmasked);
        if !ok {
            refusal = Some(err);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let refusal = refusal.expect("the unmasked job was admitted for 30 s");
    assert!(refusal.contains("StreamJob unmasked") && refusal.contains("clicks.card_no"), "{refusal}");
    assert!(!refusal.contains("clicks.email") && !refusal.contains("clicks.country"), "{refusal}");
    for (name, columns) in [
        ("by-tag", json!([{"match": {"tag": "pii"}, "action": "hmac", "keySecretRef": {"name": "k", "key": "k"}}])),
        (
            "by-pattern",
            json!([{"match": {"table": "clicks", "column": "*_no"}, "action": "redact"},
                   {"match": {"column": "email"}, "action": "drop"}]),
        ),
    ] {
        let (ok, err) = admitted(&t, &t.ns, &doc(name, columns));
        assert!(ok, "{name}: {err}");
    }
    let other_table = doc("other-table", json!([{"match": {"table": "other", "tag": "pii"}, "action": "null"}]));
    assert!(!admitted(&t, &t.ns, &other_table).0, "a rule for another table masks nothing here");
    let (ok, err) = admitted(&t, &plain, &unmasked);
    assert!(ok, "an unlabelled namespace is not governed: {err}");
    // Without the admission policy (an older cluster, or the chart's policy turned off),
    // the operator refuses what reaches a sink unmasked, by the SQL's column lineage.
    let out = kubectl(&t).args(["delete", "-f"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let leaky = job(
        "leaky",
        json!({"image": "sluice/engine:test", "sql": sql("s3://sluice/leaky"),
            "dataPolicy": {"tags": {"users.email": ["pii"]}, "rows": [{"table": "users", "where": "id >= 0"}]}}),
    );
    let mut created = false;
    for _ in 0..60 {
        if create(&t.api, leaky.clone()).await.is_ok() {
            created = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(created, "the job was refused after the admission policy was deleted");
    let result = wait_object(&t.api, "leaky", Duration::from_secs(60), "refused", |j| {
        j.status
            .as_ref()
            .and_then(|s| s.error.as_deref())
            .is_some_and(|e| e.contains("sink `out` column `email` ← `users.email`"))
    })
    .await;
    t.check(result.map(|_| ()), "leaky").await;
}

/// A rate-limited stream of users with an email computed from `k`, into files.
fn sql(out: &str) -> String {
    format!(
        "CREATE TABLE users (id BIGINT, k INT, email AS CONCAT('user', CAST(k AS STRING), '@example.com'))
 WITH ('connector' = 'datagen', 'rows-per-second' = '200', 'fields.id.kind' = 'sequence',
   'fields.id.start' = '0', 'fields.id.end' = '100000000', 'fields.k.min' = '0', 'fields.k.max' = '9');
CREATE TABLE out (id BIGINT, email STRING) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');
INSERT INTO out SELECT id, email FROM users;
"
    )
}

fn spec(t: &Setup, action: &str) -> Value {
    json!({
        "image": "sluice/engine:test",
        "sql": sql("s3://sluice/out"),
        "parallelism": 1,
        "upgradeMode": "savepoint",
        "checkpointing": {"interval": "1s", "storage": "s3://sluice/checkpoints"},
        "savepoints": {"directory": "s3://sluice/savepoints"},
        "upgrade": {"stabilizationPeriod": "2s", "readinessTimeout": "2m", "savepointTimeout": "1m"},
        "dataPolicy": {"columns": [
            {"match": {"column": "email"}, "action": action, "keySecretRef": {"name": "pii-key", "key": "hmac"}}
        ]},
        "s3": {"endpoint": t.s3.cluster_endpoint, "credentialsSecretRef": {"name": "s3-creds"}}
    })
}

/// Every line of the committed part files under `uri`.
fn committed_lines(t: &Setup, uri: &str) -> anyhow::Result<Vec<String>> {
    let storage = s3_storage(&t.s3, uri);
    let mut lines = Vec::new();
    for o in storage.list("")? {
        if o.path.rsplit('/').next().unwrap_or_default().starts_with("part-") {
            lines.extend(String::from_utf8(storage.get(&o.path)?)?.lines().map(str::to_string));
        }
    }
    Ok(lines)
}

fn record(j: &StreamJob) -> Option<sluice_operator::crd::DataPolicyStatus> {
    j.status.as_ref()?.data_policy.clone()
}

async fn events(t: &Setup, reason: &str) -> Vec<String> {
    let api = Api::<k8s_openapi::api::events::v1::Event>::namespaced(t.client.clone(), &t.ns);
    let list = api.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
    list.into_iter().filter(|e| e.reason.as_deref() == Some(reason)).filter_map(|e| e.note).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_rolls_out_with_its_secret_is_recorded_verified_and_changed_by_an_upgrade() {
    let (t, lineage) = setup_with_lineage("dp-rollout").await;
    create(&t.api, job("users", spec(&t, "hmac"))).await.unwrap();
    let result = async {
        // Without its Secret the job is refused, and the condition says which.
        let stalled = wait_object(&t.api, "users", Duration::from_secs(60), "Stalled", |j| {
            j.status.as_ref().and_then(|s| s.error.as_deref()).is_some_and(|e| e.contains("pii-key"))
        })
        .await?;
        let error = stalled.status.and_then(|s| s.error).unwrap_or_default();
        if !error.contains("Secret") || !error.contains("does not exist") {
            bail!("the refusal does not say what is missing: {error}");
        }
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pii-key"},
            "stringData": {"hmac": "a-key-that-never-leaves-its-secret"}
        }))?;
        Api::<Secret>::namespaced(t.client.clone(), &t.ns).create(&PostParams::default(), &secret).await?;
        let stable = wait_object(&t.api, "users", Duration::from_secs(180), "Stable and verified", |j| {
            phase(j) == Some(Phase::Stable) && record(j).is_some_and(|r| r.verified)
        })
        .await?;
        let first = record(&stable).unwrap();
        if first.masked_columns != ["users.email: hmac"] || first.hash.len() != 16 {
            bail!("status.dataPolicy: {first:?}");
        }
        // Output: tokens only.
        wait_object(&t.api, "users", Duration::from_secs(60), "a checkpoint", |j| {
            j.status.as_ref().is_some_and(|s| s.job_state.as_deref() == Some("RUNNING"))
        })
        .await?;
        let mut lines = Vec::new();
        for _ in 0..60 {
            lines = committed_lines(&t, "s3://sluice/out")?;
            if lines.len() > 50 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if lines.len() <= 50 || lines.iter().any(|l| l.contains("example.com")) {
            bail!("{} lines, e.g. {:?}", lines.len(), lines.first());
        }
        // A changed policy is an upgrade: a new deployment, a new record, an Event.
        t.patch(
            "users",
            json!({"spec": {"dataPolicy": {"columns": [{"match": {"column": "email"}, "action": "null"}]}}}),
        )
        .await?;
        let changed = wait_object(&t.api, "users", Duration::from_secs(180), "the new policy verified", |j| {
            phase(j) == Some(Phase::Stable) && record(j).is_some_and(|r| r.verified && r.hash != first.hash)
        })
        .await?;
        let second = record(&changed).unwrap();
        if second.masked_columns != ["users.email: null"] || changed.status.as_ref().is_none_or(|s| s.deployment < 2) {
            bail!("after the change: {second:?}");
        }
        // Events are published in the background.
        let mut applied = Vec::new();
        for _ in 0..20 {
            applied = events(&t, "DataPolicyApplied").await;
            if applied.iter().any(|m| m.contains(&second.hash)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !applied.iter().any(|m| m.contains(&first.hash)) || !applied.iter().any(|m| m.contains(&second.hash)) {
            bail!("DataPolicyApplied Events: {applied:?}");
        }
        let log = t.op.log();
        if log.contains("a-key-that-never-leaves") {
            bail!("the key reached the operator's log");
        }
        lineage_of_the_upgrade(&t, &lineage).await
    }
    .await;
    t.check(result, "users").await;
}

/// The chart's OpenLineage endpoint got the runs of both deployments: the first
/// started and completed (stopped with a savepoint for the upgrade), the second
/// started, each under the StreamJob's namespace and name, each with its own
/// masking of `email` in the column lineage; every event is valid.
async fn lineage_of_the_upgrade(t: &Setup, lineage: &openlineage::Receiver) -> anyhow::Result<()> {
    let mut events = Vec::new();
    for _ in 0..60 {
        events = lineage.events();
        if events.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let types: Vec<&str> = events.iter().map(|e| e["eventType"].as_str().unwrap_or("")).collect();
    let run = |e: &Value| e["run"]["runId"].clone();
    if types != ["START", "COMPLETE", "START"]
        || run(&events[0]) != run(&events[1])
        || run(&events[1]) == run(&events[2])
    {
        bail!("OpenLineage events: {types:?}, runs {:?}", events.iter().map(run).collect::<Vec<_>>());
    }
    for e in &events {
        if e["job"]["namespace"] != t.ns.as_str() || e["job"]["name"] != "users" {
            bail!("the job is named {} / {}", e["job"]["namespace"], e["job"]["name"]);
        }
    }
    let masking = |e: &Value| {
        let email = &e["outputs"][0]["facets"]["columnLineage"]["fields"]["email"]["inputFields"][0];
        (email["field"].clone(), email["transformations"][0]["description"].clone())
    };
    let (first, second) = (masking(&events[0]), masking(&events[2]));
    if first.0 != "email"
        || !first.1.as_str().unwrap_or("").contains("hmac")
        || !second.1.as_str().unwrap_or("").contains("null")
    {
        bail!("the column lineage of email: {first:?} then {second:?}");
    }
    if events[0]["outputs"][0]["namespace"] != "s3://sluice" || events[0]["outputs"][0]["name"] != "out" {
        bail!("the output dataset: {}", events[0]["outputs"][0]);
    }
    openlineage::validate(&events, &t.env.dir);
    Ok(())
}
