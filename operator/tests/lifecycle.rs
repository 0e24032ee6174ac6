//! The operator against a real kube-apiserver (the e2e harness's local control
//! plane), real engine pods run by the node agent, and a real S3-compatible
//! server (MinIO): CRD schema and CEL rules, the subresources, and a job's
//! whole life — apply, Stable, invalid SQL, a savepoint upgrade with the
//! operator killed in the middle, exactly-once output, and deletion.
//!
//! Behind the `cluster-tests` feature (it needs the Go-built Kubernetes binaries):
//! `cargo test -p sluice-operator --features cluster-tests --test lifecycle`; `make test` runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, bail};
use common::{Operator, committed_ids, create, env, job, phase, s3_storage};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use sluice_e2e::testenv::{wait_for, wait_object};
use sluice_operator::crd::{Phase, StreamJob, StreamSavepoint, UpgradeStep};
use sluice_operator::trigger_id;

/// Creates an object as raw JSON, so that the API server, not serde, judges it.
async fn create_raw(client: &kube::Client, ns: &str, obj: serde_json::Value) -> Result<(), kube::Error> {
    let ar = kube::api::ApiResource::erase::<StreamJob>(&());
    let api = Api::<kube::api::DynamicObject>::namespaced_with(client.clone(), ns, &ar);
    let obj: kube::api::DynamicObject = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &obj).await.map(|_| ())
}

fn rejection(r: Result<(), kube::Error>) -> String {
    match r {
        Ok(()) => panic!("the API server accepted an invalid StreamJob"),
        Err(kube::Error::Api(s)) => s.message,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crd_schema_and_cel_rules_reject_bad_manifests_and_fill_defaults() {
    let (env, client) = env().await;
    let ns = env.namespace(&client, "crd").await.unwrap();
    let api = Api::<StreamJob>::namespaced(client.clone(), &ns);
    let base = json!({"image": "sluice/engine:0.1.0", "sql": "SELECT 1"});

    let mut over = base.clone();
    over["parallelism"] = json!(200);
    assert!(
        rejection(create_raw(&client, &ns, job("a", over)).await)
            .contains("parallelism must not exceed maxParallelism")
    );

    let mut both = base.clone();
    both["sqlConfigMapRef"] = json!({"name": "cm"});
    assert!(
        rejection(create_raw(&client, &ns, job("b", both)).await)
            .contains("set exactly one of sql and sqlConfigMapRef")
    );

    let mut sp = base.clone();
    sp["upgradeMode"] = json!("savepoint");
    assert!(
        rejection(create_raw(&client, &ns, job("c", sp)).await)
            .contains("upgradeMode savepoint needs savepoints.directory")
    );

    let mut bad_duration = base.clone();
    bad_duration["checkpointing"] = json!({"interval": "ten seconds"});
    assert!(rejection(create_raw(&client, &ns, job("d", bad_duration)).await).contains("checkpointing.interval"));

    let mut bad_enum = base.clone();
    bad_enum["upgradeMode"] = json!("yolo");
    assert!(rejection(create_raw(&client, &ns, job("e", bad_enum)).await).contains("upgradeMode"));

    // Credentials in spec.config would land in the ConfigMap and the status.
    let mut secret_in_config = base.clone();
    secret_in_config["config"] = json!({"s3.endpoint": "http://minio:9000", "s3.secret-key": "hunter2"});
    let why = rejection(create_raw(&client, &ns, job("f", secret_in_config)).await);
    assert!(why.contains("config must not hold S3 credentials") && why.contains("s3.credentialsSecretRef"), "{why}");

    // The example manifests pass the schema and the CEL rules (server-side dry run).
    for e in std::fs::read_dir(sluice_e2e::repo_root().join("config/examples")).unwrap().flatten() {
        if e.path().extension().and_then(|x| x.to_str()) != Some("yaml") {
            continue;
        }
        let mut obj: StreamJob = serde_yaml::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
        obj.metadata.namespace = Some(ns.clone());
        let dry = PostParams { dry_run: true, ..Default::default() };
        api.create(&dry, &obj).await.unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
    }

    // A valid minimal manifest gets the schema's defaults (so GitOps sees no drift).
    let ok = create(&api, job("ok", base.clone())).await.unwrap();
    assert_eq!(ok.spec.parallelism, 1);
    assert_eq!(ok.spec.max_parallelism, 128);
    assert_eq!(ok.spec.upgrade.readiness_timeout, "5m");
    assert_eq!(ok.spec.checkpointing.interval, "10s");
    assert_eq!(ok.spec.savepoints.max_count, 10);

    // The scale subresource maps onto spec.parallelism.
    api.patch_scale("ok", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 4}}))).await.unwrap();
    assert_eq!(api.get("ok").await.unwrap().spec.parallelism, 4);

    // The status subresource; then maxParallelism is immutable once the job has run.
    api.patch_status(
        "ok",
        &PatchParams::apply("sluice-test").force(),
        &Patch::Apply(json!({"apiVersion": "sluice.dev/v1alpha1", "kind": "StreamJob", "status": {"phase": "Running", "reconciledSpec": "{}", "currentParallelism": 4}})),
    )
    .await
    .unwrap();
    let scale = api.get_scale("ok").await.unwrap();
    assert_eq!(scale.status.map(|s| s.replicas), Some(4));
    let err = api
        .patch("ok", &PatchParams::default(), &Patch::Merge(json!({"spec": {"maxParallelism": 256}})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("maxParallelism is immutable"), "{err}");
    // Other spec changes still go through.
    api.patch("ok", &PatchParams::default(), &Patch::Merge(json!({"spec": {"parallelism": 2}}))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_upgrades_with_a_savepoint_through_an_operator_crash_and_is_deleted() {
    let (env, client) = env().await;
    let ns = env.namespace(&client, "life").await.unwrap();
    let s3 = env.start_s3(&client, &ns, &["sluice"]).await.unwrap();
    let log = env.dir.join(format!("operator-{ns}.log"));
    let mut op = Operator::start(&env, &ns, &s3.endpoint, log.clone());
    let api = Api::<StreamJob>::namespaced(client.clone(), &ns);
    let rows = 3000;
    let sql = format!(
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '60', \
         'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{}');\n\
         CREATE TABLE out (id BIGINT) WITH ('connector' = 'filesystem', 'path' = 's3://sluice/out', 'format' = 'csv');\n\
         INSERT INTO out SELECT id FROM src;\n",
        rows - 1
    );
    let spec = json!({
        "image": "sluice/engine:test",
        "sql": sql,
        "parallelism": 1,
        "upgradeMode": "savepoint",
        "checkpointing": {"interval": "2s", "storage": "s3://sluice/checkpoints"},
        "savepoints": {"directory": "s3://sluice/savepoints", "onDeletion": false},
        "upgrade": {"stabilizationPeriod": "4s", "readinessTimeout": "3m", "savepointTimeout": "1m"},
        "s3": {"endpoint": s3.cluster_endpoint, "credentialsSecretRef": {"name": "s3-creds"}}
    });
    create(&api, job("clicks", spec)).await.unwrap();
    let result =
        async {
            let stable =
                wait_object(&api, "clicks", Duration::from_secs(120), "Stable", |j| phase(j) == Some(Phase::Stable))
                    .await?;
            let st = stable.status.clone().unwrap();
            if st.deployment != 1 || st.job_state.as_deref() != Some("RUNNING") {
                bail!("unexpected status once Stable: {st:?}");
            }
            // The children exist and are owned by the job.
            let dep = Api::<Deployment>::namespaced(client.clone(), &ns).get("clicks-coordinator").await?;
            assert_eq!(dep.metadata.owner_references.unwrap()[0].name, "clicks");
            Api::<StatefulSet>::namespaced(client.clone(), &ns).get("clicks-workers").await?;

            // The web UI, one click away: status.ui's path through the API server's proxy
            // serves the page, and the page's relative URLs reach its script and the REST API.
            let ui = st.ui.clone().ok_or_else(|| anyhow::anyhow!("no status.ui once Stable: {st:?}"))?;
            assert_eq!(ui.proxy_path, format!("/api/v1/namespaces/{ns}/services/clicks-coordinator:8081/proxy/"));
            assert!(ui.port_forward.contains("port-forward service/clicks-coordinator 8081"), "{ui:?}");
            let get = |path: String| {
                let client = client.clone();
                async move {
                    client.request_text(http::Request::get(path).body(Vec::new())?).await.map_err(anyhow::Error::from)
                }
            };
            let page = get(ui.proxy_path.clone()).await?;
            assert!(page.contains("Sluice"), "{page}");
            if page.contains("ui/app.js") {
                let script = get(format!("{}ui/app.js", ui.proxy_path)).await?;
                assert!(script.len() > 1000, "the UI's script through the proxy: {} bytes", script.len());
            }
            let job_json = get(format!("{}v1/job", ui.proxy_path)).await?;
            assert!(job_json.contains("\"state\":\"RUNNING\""), "{job_json}");

            // Broken SQL: Stalled with the line and column, and the job keeps running its last good spec.
            api.patch(
                "clicks",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"sql": "INSERT INTO out SELEC id FROM src;"}})),
            )
            .await?;
            let stalled = wait_object(&api, "clicks", Duration::from_secs(30), "Stalled", |j| {
                j.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Stalled" && c.status == "True" && c.message.contains("job.sql:1:"))
                        && s.observed_generation == j.metadata.generation
                })
            })
            .await?;
            let st = stalled.status.unwrap();
            if st.deployment != 1 || st.upgrade.is_some() || st.job_state.as_deref() != Some("RUNNING") {
                bail!("the broken spec disturbed the running job: {st:?}");
            }

            // A valid change of parallelism: a savepoint upgrade. Kill the operator once the
            // write-ahead record names the savepoint, and start a new one.
            let mut fixed = json!({"spec": {"sql": sql, "parallelism": 2}});
            fixed["spec"]["sql"] = json!(sql);
            api.patch("clicks", &PatchParams::default(), &Patch::Merge(fixed)).await?;
            wait_object(&api, "clicks", Duration::from_secs(30), "the upgrade record", |j| {
                j.status.as_ref().and_then(|s| s.upgrade.as_ref()).is_some_and(|u| u.step == UpgradeStep::Stopping)
            })
            .await?;
            op.kill();
            tokio::time::sleep(Duration::from_millis(500)).await;
            // Another pod: another identity, which must wait for the killed one's Lease.
            op = Operator::start_as(&env, &ns, &s3.endpoint, log.clone(), Some("sluice-operator-new-pod"), "info");
            let upgraded = wait_object(&api, "clicks", Duration::from_secs(120), "deployment 2 running", |j| {
                j.status.as_ref().is_some_and(|s| s.deployment == 2 && s.job_state.as_deref() == Some("RUNNING"))
            })
            .await?;
            let st = upgraded.status.unwrap();
            let from = st.deployed_from.clone().unwrap_or_default();
            // The savepoint must have been used: the intermittent outage that once made it
            // fail (and the operator fall back to the newest checkpoint) was the bridge's MAC
            // changing under the pods, fixed in e2e/src/net.rs. Its id carries the job's uid.
            let uid = upgraded.metadata.uid.clone().unwrap_or_default();
            if !from.contains(&format!("savepoint-{}", trigger_id::job("clicks", &uid, "upgrade", &[])))
                || st.last_savepoint.as_ref().map(|s| s.trigger.as_str()) != Some("upgrade")
            {
                bail!("the upgrade did not restore from its savepoint: {st:?}");
            }
            eprintln!("upgrade restored from {from}");
            // The bounded job finishes on its new parallelism.
            let done = wait_object(&api, "clicks", Duration::from_secs(180), "Finished", |j| {
                phase(j) == Some(Phase::Finished)
            })
            .await?;
            assert_eq!(done.status.unwrap().current_parallelism, Some(2));
            anyhow::Ok(())
        }
        .await;
    if let Err(e) = result {
        let j = api.get_opt("clicks").await.ok().flatten();
        panic!("{e:#}\n--- job status: {:#?}\n--- operator log:\n{}", j.and_then(|j| j.status), op.log());
    }

    // Exactly once across the upgrade: every id, once.
    let ids = committed_ids(&s3, "s3://sluice/out").unwrap();
    let unique: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicates in the output");
    assert_eq!(unique, (0..rows).collect::<BTreeSet<i64>>(), "gaps in the output");

    // Deletion: the finalizer goes and the children are garbage-collected.
    api.delete("clicks", &Default::default()).await.unwrap();
    wait_for(Duration::from_secs(60), "the StreamJob to be gone", || async {
        Ok(api.get_opt("clicks").await?.is_none().then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n--- operator log:\n{}", op.log()));
    let events = op.log();
    assert!(events.contains("upgrade rolled out"), "operator log lacks the upgrade:\n{events}");
    // The restarted operator stood by until the killed one's Lease expired.
    assert!(events.contains("standing by: another replica leads"), "no leader-election standby:\n{events}");
    let metrics = op.metrics().await;
    for needle in [
        "sluice_operator_reconciles_total{result=\"ok\"}",
        "sluice_operator_reconcile_duration_seconds_bucket",
        "sluice_operator_jobs{phase=\"Stable\"}",
        "sluice_operator_transition_duration_seconds_count{kind=\"upgrade\"} 1",
        "sluice_operator_leader 1",
    ] {
        assert!(metrics.contains(needle), "/metrics lacks {needle}:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_resume_a_streamsavepoint_and_a_deletion_savepoint_lose_nothing() {
    let (env, client) = env().await;
    let ns = env.namespace(&client, "suspend").await.unwrap();
    let s3 = env.start_s3(&client, &ns, &["sluice"]).await.unwrap();
    let op = Operator::start(&env, &ns, &s3.endpoint, env.dir.join(format!("operator-{ns}.log")));
    let api = Api::<StreamJob>::namespaced(client.clone(), &ns);
    let ssps = Api::<StreamSavepoint>::namespaced(client.clone(), &ns);
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), &ns);
    let sql = "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '40', \
               'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '100000');\n\
               CREATE TABLE out (id BIGINT) WITH ('connector' = 'filesystem', 'path' = 's3://sluice/orders', 'format' = 'csv');\n\
               INSERT INTO out SELECT id FROM src;\n";
    let spec = json!({
        "image": "sluice/engine:test",
        "sql": sql,
        "upgradeMode": "savepoint",
        "checkpointing": {"interval": "2s", "storage": "s3://sluice/checkpoints"},
        "savepoints": {"directory": "s3://sluice/savepoints", "onDeletion": true},
        "upgrade": {"stabilizationPeriod": "3s"},
        "s3": {"endpoint": s3.cluster_endpoint, "credentialsSecretRef": {"name": "s3-creds"}}
    });
    let uid = create(&api, job("orders", spec)).await.unwrap().metadata.uid.unwrap();
    let storage = |uri: &str| s3_storage(&s3, uri);
    let result = async {
        wait_object(&api, "orders", Duration::from_secs(120), "Stable", |j| phase(j) == Some(Phase::Stable)).await?;

        // A StreamSavepoint: Completed, with its data in S3.
        let ssp: StreamSavepoint = serde_json::from_value(json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "StreamSavepoint",
            "metadata": {"name": "before-suspend"},
            "spec": {"jobRef": {"name": "orders"}, "disposeOnDelete": true}
        }))?;
        ssps.create(&PostParams::default(), &ssp).await?;
        let done = wait_object(&ssps, "before-suspend", Duration::from_secs(60), "savepoint Completed", |s| {
            s.status.as_ref().is_some_and(|s| s.phase == sluice_operator::crd::SavepointPhase::Completed)
        })
        .await?;
        let location = done.status.and_then(|s| s.location).unwrap_or_default();
        if !storage(&location).exists("_metadata")? {
            bail!("the StreamSavepoint's location {location} has no _metadata");
        }

        // Suspend: a savepoint, the pods go, the ConfigMap and the status stay.
        api.patch("orders", &PatchParams::default(), &Patch::Merge(json!({"spec": {"state": "suspended"}}))).await?;
        wait_object(&api, "orders", Duration::from_secs(60), "Suspended", |j| phase(j) == Some(Phase::Suspended))
            .await?;
        wait_for(Duration::from_secs(60), "the engine pods to go", || async {
            let l = pods.list(&kube::api::ListParams::default().labels("sluice.dev/job=orders")).await?;
            Ok(l.items.is_empty().then_some(()))
        })
        .await?;
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &ns).get("orders-config").await?;

        // Resume from the suspend savepoint.
        api.patch("orders", &PatchParams::default(), &Patch::Merge(json!({"spec": {"state": "running"}}))).await?;
        let resumed = wait_object(&api, "orders", Duration::from_secs(60), "resumed", |j| {
            j.status.as_ref().is_some_and(|s| s.deployment == 2 && s.job_state.as_deref() == Some("RUNNING"))
        })
        .await?;
        let from = resumed.status.and_then(|s| s.deployed_from).unwrap_or_default();
        if !from.contains(&format!("savepoint-{}", trigger_id::job("orders", &uid, "suspend", &[]))) {
            bail!("resumed from {from}, not from the suspend savepoint");
        }
        tokio::time::sleep(Duration::from_secs(3)).await;

        // Delete with a savepoint: the job stops, commits, and the finalizer goes.
        api.delete("orders", &Default::default()).await?;
        wait_for(Duration::from_secs(60), "the StreamJob to be gone", || async {
            Ok(api.get_opt("orders").await?.is_none().then_some(()))
        })
        .await?;
        let deletion = storage("s3://sluice/savepoints")
            .list("")?
            .into_iter()
            .any(|o| o.path.contains(&format!("savepoint-{}", trigger_id::job("orders", &uid, "deletion", &[]))));
        if !deletion {
            bail!("no deletion savepoint under s3://sluice/savepoints");
        }
        // disposeOnDelete: the StreamSavepoint's data goes with it.
        ssps.delete("before-suspend", &Default::default()).await?;
        wait_for(Duration::from_secs(30), "the StreamSavepoint to be gone", || async {
            Ok(ssps.get_opt("before-suspend").await?.is_none().then_some(()))
        })
        .await?;
        if storage(&location).exists("_metadata")? {
            bail!("disposeOnDelete left {location} in place");
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        let j = api.get_opt("orders").await.ok().flatten();
        panic!("{e:#}\n--- job status: {:#?}\n--- operator log:\n{}", j.and_then(|j| j.status), op.log());
    }
    // Suspend, resume and the deletion stop lose and duplicate nothing: a gapless prefix.
    let ids = committed_ids(&s3, "s3://sluice/orders").unwrap();
    let unique: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicates in the output");
    let n = i64::try_from(ids.len()).unwrap();
    assert!(n > 100, "too little output: {n}");
    assert_eq!(unique, (0..n).collect::<BTreeSet<i64>>(), "gaps in the output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_reported_and_fixing_the_spec_recovers() {
    let (env, client) = env().await;
    let ns = env.namespace(&client, "bucket").await.unwrap();
    let s3 = env.start_s3(&client, &ns, &["sluice"]).await.unwrap();
    let op = Operator::start(&env, &ns, &s3.endpoint, env.dir.join(format!("operator-{ns}.log")));
    let api = Api::<StreamJob>::namespaced(client.clone(), &ns);
    let spec = json!({
        "image": "sluice/engine:test",
        "sql": "CREATE TABLE s (x BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '10');\n\
                CREATE TABLE o (x BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO o SELECT x FROM s;\n",
        "upgradeMode": "last-state",
        "checkpointing": {"interval": "2s", "storage": "s3://no-such-bucket/checkpoints"},
        "upgrade": {"stabilizationPeriod": "2s"},
        "s3": {"endpoint": s3.cluster_endpoint, "credentialsSecretRef": {"name": "s3-creds"}}
    });
    create(&api, job("lost", spec)).await.unwrap();
    let result = async {
        // The coordinator cannot write to the bucket: the status says so, with the bucket's name.
        let failing = wait_object(&api, "lost", Duration::from_secs(90), "the error in the status", |j| {
            j.status.as_ref().and_then(|s| s.error.as_deref()).is_some_and(|e| e.contains("no-such-bucket"))
        })
        .await?;
        // The coordinator reports a start it cannot make as FAILED, with the reason, and
        // stays up: the job is Failed and Stalled, not Deploying with no end.
        let st = failing.status.unwrap();
        let stalled = st.conditions.iter().any(|c| c.type_ == "Stalled" && c.status == "True");
        if st.phase != Phase::Failed || st.job_state.as_deref() != Some("FAILED") || !stalled {
            bail!("a job that cannot start should be Failed and Stalled: {st:?}");
        }
        // Fixing the spec rolls out (last-state: nothing to restore yet) and the job runs.
        api.patch(
            "lost",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"checkpointing": {"storage": "s3://sluice/checkpoints"}}})),
        )
        .await?;
        wait_object(&api, "lost", Duration::from_secs(120), "Stable after the fix", |j| {
            phase(j) == Some(Phase::Stable)
        })
        .await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        let j = api.get_opt("lost").await.ok().flatten();
        panic!("{e:#}\n--- job status: {:#?}\n--- operator log:\n{}", j.and_then(|j| j.status), op.log());
    }
}

/// What the engine would refuse is refused by the operator first, through the engine's own
/// validation: a connector option (a typo in a filesystem sink's option) and a key of
/// `spec.config`. Each job is Stalled with a message naming the option or the key, and
/// nothing is deployed: no Deployment, no StatefulSet, no pod to crash-loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_connector_option_or_engine_key_stalls_the_job_and_deploys_nothing() {
    let (env, client) = env().await;
    let ns = env.namespace(&client, "refused").await.unwrap();
    // No job here reaches storage: the operator's S3 endpoint is never used.
    let op = Operator::start(&env, &ns, "http://127.0.0.1:9", env.dir.join(format!("operator-{ns}.log")));
    let api = Api::<StreamJob>::namespaced(client.clone(), &ns);
    let spec = |sink_options: &str, config: serde_json::Value| {
        json!({
            "image": "sluice/engine:test",
            "sql": format!(
                "CREATE TABLE s (x BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '10');\n\
                 CREATE TABLE o (x BIGINT) WITH ('connector' = 'filesystem', 'path' = '/tmp/out', 'format' = 'csv'{sink_options});\n\
                 INSERT INTO o SELECT x FROM s;\n"
            ),
            "config": config,
        })
    };
    // A pod template that widens the pods' privileges, in a namespace that does not allow it.
    let mut privileged = spec("", json!({}));
    privileged["podTemplate"] = json!({"spec": {"hostNetwork": true, "containers": [{"name": "engine",
        "securityContext": {"privileged": true}}]}});
    let jobs = [
        ("badoption", spec(", 'sink.rolling-policy.file-szie' = '1MB'", json!({})), "'sink.rolling-policy.file-szie'"),
        ("badkey", spec("", json!({"restart-strategy.type": "sometimes"})), "'restart-strategy.type'"),
        (
            "privileged",
            privileged,
            "spec.hostNetwork: true shares the node's namespaces; spec.containers[0] (engine).securityContext.privileged: true",
        ),
    ];
    let result = async {
        for (name, spec, _) in &jobs {
            create(&api, job(name, spec.clone())).await?;
        }
        for (name, _, named) in &jobs {
            let stalled = wait_object(&api, name, Duration::from_secs(60), "Stalled", |j| {
                j.status.as_ref().is_some_and(|s| {
                    s.conditions.iter().any(|c| c.type_ == "Stalled" && c.status == "True" && c.reason == "InvalidSpec")
                })
            })
            .await?;
            let st = stalled.status.unwrap();
            let message = st.conditions.iter().find(|c| c.type_ == "Stalled").map(|c| c.message.clone());
            if !message.as_deref().is_some_and(|m| m.starts_with("invalid spec: ") && m.contains(named)) {
                bail!("{name}: the Stalled message does not name {named}: {message:?}");
            }
            // The status is written before any child is applied: nothing was, or will be.
            if st.deployment != 0 || st.reconciled_spec.is_some() {
                bail!("{name}: a deployment was recorded: {st:?}");
            }
            let deployment =
                Api::<Deployment>::namespaced(client.clone(), &ns).get_opt(&format!("{name}-coordinator")).await?;
            let workers =
                Api::<StatefulSet>::namespaced(client.clone(), &ns).get_opt(&format!("{name}-workers")).await?;
            if deployment.is_some() || workers.is_some() {
                bail!("{name}: engine objects were created");
            }
        }
        let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), &ns)
            .list(&kube::api::ListParams::default().labels("sluice.dev/job"))
            .await?;
        if !pods.items.is_empty() {
            bail!(
                "engine pods were created: {:?}",
                pods.items.iter().map(|p| p.metadata.name.clone()).collect::<Vec<_>>()
            );
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        let mut statuses = Vec::new();
        for (name, _, _) in &jobs {
            statuses.push((name, api.get_opt(name).await.ok().flatten().and_then(|j| j.status)));
        }
        panic!("{e:#}\n--- job statuses: {statuses:#?}\n--- operator log:\n{}", op.log());
    }
}

/// A restore that fails is reported, not left in Deploying: the engine reports FAILED with
/// its message, and the operator puts it in the status and a Warning Event. The job has
/// never run, so correcting `spec.initialSavepoint` redeploys it from the corrected
/// savepoint (not from `latest`, which would be empty state): it runs, is Stable, and its
/// output continues the savepoint's with no gap and no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_initial_savepoint_fails_the_job_with_the_engines_message_and_fixing_it_recovers() {
    let (env, client) = env().await;
    let ns = env.namespace(&client, "restore").await.unwrap();
    let s3 = env.start_s3(&client, &ns, &["sluice"]).await.unwrap();
    let op = Operator::start(&env, &ns, &s3.endpoint, env.dir.join(format!("operator-{ns}.log")));
    let api = Api::<StreamJob>::namespaced(client.clone(), &ns);
    let missing = "s3://sluice/savepoints/savepoint-does-not-exist";
    // Both jobs run the same query into the same directory (part files are named by job).
    let spec = |initial: Option<&str>| {
        let mut spec = json!({
            "image": "sluice/engine:test",
            "sql": "CREATE TABLE s (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '20', \
                    'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '100000');\n\
                    CREATE TABLE o (id BIGINT) WITH ('connector' = 'filesystem', 'path' = 's3://sluice/restored', 'format' = 'csv');\n\
                    INSERT INTO o SELECT id FROM s;\n",
            "upgradeMode": "savepoint",
            "checkpointing": {"interval": "2s", "storage": "s3://sluice/checkpoints"},
            "savepoints": {"directory": "s3://sluice/savepoints"},
            "upgrade": {"stabilizationPeriod": "3s"},
            "s3": {"endpoint": s3.cluster_endpoint, "credentialsSecretRef": {"name": "s3-creds"}}
        });
        if let Some(i) = initial {
            spec["initialSavepoint"] = json!(i);
        }
        spec
    };
    let result = async {
        // A real savepoint: a first job runs, and is suspended with a savepoint (its pods go).
        create(&api, job("seed", spec(None))).await?;
        wait_object(&api, "seed", Duration::from_secs(120), "seed Stable", |j| phase(j) == Some(Phase::Stable)).await?;
        api.patch("seed", &PatchParams::default(), &Patch::Merge(json!({"spec": {"state": "suspended"}}))).await?;
        let seed = wait_object(&api, "seed", Duration::from_secs(60), "seed Suspended", |j| {
            phase(j) == Some(Phase::Suspended)
        })
        .await?;
        let real = seed.status.and_then(|s| s.last_savepoint).map(|s| s.location).unwrap_or_default();
        if !s3_storage(&s3, &real).exists("_metadata")? {
            bail!("the seed's savepoint {real:?} has no _metadata");
        }
        let seeded = committed_ids(&s3, "s3://sluice/restored")?.len();
        if seeded == 0 {
            bail!("the seed job committed nothing");
        }

        create(&api, job("norestore", spec(Some(missing)))).await?;
        let failed = wait_object(&api, "norestore", Duration::from_secs(90), "Failed with the restore error", |j| {
            phase(j) == Some(Phase::Failed)
                && j.status.as_ref().and_then(|s| s.error.as_deref()).is_some_and(|e| e.contains(missing))
        })
        .await?;
        let st = failed.status.unwrap();
        if st.job_state.as_deref() != Some("FAILED") || !st.never_ran {
            bail!("the engine's state is {:?} (not FAILED), or the job is not marked as never run", st.job_state);
        }
        let stalled = st.conditions.iter().find(|c| c.type_ == "Stalled");
        if !stalled.is_some_and(|c| c.status == "True" && c.message.contains(missing)) {
            bail!("Stalled does not carry the restore error: {stalled:?}");
        }
        wait_for(Duration::from_secs(30), "a JobFailed Warning Event", || async {
            let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), &ns)
                .list(&Default::default())
                .await?;
            Ok(events
                .items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("JobFailed")
                        && e.type_.as_deref() == Some("Warning")
                        && e.note.as_deref().is_some_and(|n| n.contains(missing))
                })
                .then_some(()))
        })
        .await?;

        // Fixing initialSavepoint redeploys from it, and the job runs.
        api.patch("norestore", &PatchParams::default(), &Patch::Merge(json!({"spec": {"initialSavepoint": real}})))
            .await?;
        let fixed = wait_object(&api, "norestore", Duration::from_secs(120), "Stable from the fixed savepoint", |j| {
            phase(j) == Some(Phase::Stable)
        })
        .await?;
        let st = fixed.status.unwrap();
        if st.deployment != 2 || st.deployed_from.as_deref() != Some(real.as_str()) || st.never_ran {
            bail!("not redeployed from {real}: {st:?}");
        }
        // Its output continues the seed's: had it started empty, ids from 0 would be written twice.
        wait_for(Duration::from_secs(60), "output beyond the savepoint", || async {
            Ok((committed_ids(&s3, "s3://sluice/restored")?.len() > seeded + 20).then_some(()))
        })
        .await?;
        let ids = committed_ids(&s3, "s3://sluice/restored")?;
        let unique: BTreeSet<i64> = ids.iter().copied().collect();
        if unique.len() != ids.len() {
            bail!("duplicates: {} ids, {} distinct", ids.len(), unique.len());
        }
        let n = i64::try_from(ids.len())?;
        if unique != (0..n).collect::<BTreeSet<i64>>() {
            bail!("gaps in the output of the seed and the restored job");
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        let j = api.get_opt("norestore").await.ok().flatten();
        panic!("{e:#}\n--- job status: {:#?}\n--- operator log:\n{}", j.and_then(|j| j.status), op.log());
    }
}
