//! End-to-end tests of the local control plane and `sluice-node`, against the
//! real binaries: etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler and the agent, with `sluice-testhttp` as the workload.
//! One cluster is shared by the tests of this binary; each test has its own
//! namespace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use sluice_e2e::node::config::ImageMapping;
use sluice_e2e::testenv::{
    self, Options, TestEnv, container_pid, http_get, is_ready, pod_ip, process_alive, wait_for, wait_object,
};

const T: Duration = Duration::from_secs(60);

fn opts(suffix: &str) -> Options {
    Options {
        node_bin: env!("CARGO_BIN_EXE_sluice-node").into(),
        images: vec![
            ImageMapping {
                image: "sluice/testhttp:*".into(),
                entrypoint: vec![env!("CARGO_BIN_EXE_sluice-testhttp").into()],
                cmd: vec![],
                path: vec![],
            },
            // Programs of a repository cloned under /tmp (issue 14), staged by the test
            // that uses them.
            ImageMapping {
                image: "sluice/clone-under-tmp:*".into(),
                entrypoint: vec![tmp_clone().join("target/debug/sluice-testhttp").display().to_string()],
                cmd: vec![],
                path: vec![],
            },
            ImageMapping {
                image: "sluice/clone-under-tmp-script:*".into(),
                entrypoint: vec![tmp_clone().join("target/debug/hello.sh").display().to_string()],
                cmd: vec![],
                path: vec![],
            },
        ],
        suffix: suffix.into(),
        // The kubelet's doubling back-off, from 1 s instead of 10 s to keep tests short.
        backoff_initial_seconds: 1.0,
    }
}

/// Where a test stages a repository "cloned" under `/tmp` (the literal path the
/// engine pods mount an emptyDir over, whatever `TMPDIR` says).
fn tmp_clone() -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/tmp/sluice-e2e-clone-{}", std::process::id()))
}

async fn setup(prefix: &str) -> (TestEnv, Client, String) {
    let env = tokio::task::spawn_blocking(|| testenv::shared(&opts(""))).await.unwrap().unwrap();
    let client = env.client().await.unwrap();
    let ns = env.namespace(&client, prefix).await.unwrap();
    (env, client, ns)
}

fn obj<K: DeserializeOwned>(v: serde_json::Value) -> K {
    serde_json::from_value(v).unwrap()
}

async fn create<K>(client: &Client, ns: &str, v: serde_json::Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &obj(v)).await.unwrap()
}

fn web_container(name: &str, extra_args: &[&str]) -> serde_json::Value {
    let mut args = vec!["--port", "8080"];
    args.extend_from_slice(extra_args);
    json!({
        "name": name,
        "image": "sluice/testhttp:1",
        "args": args,
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1, "failureThreshold": 1},
        "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 2},
    })
}

async fn running_pods(pods: &Api<Pod>, selector: &str, n: usize) -> Vec<Pod> {
    wait_for(T, &format!("{n} ready pods {selector}"), || async {
        let l = pods.list(&ListParams::default().labels(selector)).await?;
        let ready: Vec<Pod> =
            l.items.into_iter().filter(|p| is_ready(p) && p.metadata.deletion_timestamp.is_none()).collect();
        Ok((ready.len() == n).then_some(ready))
    })
    .await
    .unwrap()
}

/// GET from a pod: the pod itself makes the request, resolving `host` through its resolv.conf.
/// Transport errors are retried for a while (a loaded 2-core CI machine), answers are not.
async fn fetch_from(pod: &Pod, host: &str, port: u16, path: &str) -> (u16, String) {
    let ip = pod_ip(pod).unwrap();
    let url = format!("/fetch/{host}/{port}/{path}");
    wait_for(T, &format!("GET {url} from {}", pod.name_any()), || async { Ok(http_get(ip, 8080, &url).await.ok()) })
        .await
        .unwrap()
}

async fn resolve_from(pod: &Pod, name: &str) -> BTreeSet<String> {
    let ip = pod_ip(pod).unwrap();
    let url = format!("/resolve/{name}");
    let (code, body) =
        wait_for(T, &format!("GET {url}"), || async { Ok(http_get(ip, 8080, &url).await.ok()) }).await.unwrap();
    if code != 200 {
        return BTreeSet::new();
    }
    body.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Waits for an event with `reason` about pod `pod` (events.k8s.io, as `kubectl describe` shows).
async fn wait_event(client: &Client, ns: &str, pod: &str, reason: &str) -> String {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    wait_for(T, &format!("{reason} event for {pod}"), || async {
        let l = events.list(&ListParams::default()).await?;
        Ok(l.items.into_iter().find_map(|e| {
            (e.reason.as_deref() == Some(reason) && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod))
                .then(|| e.note.unwrap_or_default())
        }))
    })
    .await
    .unwrap()
}

/// GET from the host once the server in the pod listens ("Running" is not "listening").
async fn get_when_up(ip: Ipv4Addr, path: &str) -> (u16, String) {
    wait_for(T, &format!("GET {path} from {ip}"), || async { Ok(http_get(ip, 8080, path).await.ok()) }).await.unwrap()
}

fn waiting_reason(p: &Pod) -> Option<(String, String)> {
    let cs = p.status.as_ref()?.container_statuses.as_ref()?.first()?;
    let w = cs.state.as_ref()?.waiting.as_ref()?;
    Some((w.reason.clone().unwrap_or_default(), w.message.clone().unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_is_ready_with_resources_and_a_lease() {
    let (env, client, _ns) = setup("node").await;
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes.get(&env.node_name).await.unwrap();
    let st = node.status.unwrap();
    assert!(st.conditions.unwrap().iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let alloc = st.allocatable.unwrap();
    assert!(alloc.contains_key("cpu") && alloc.contains_key("memory") && alloc.contains_key("pods"), "{alloc:?}");
    let addr = st.addresses.unwrap();
    assert!(addr.iter().any(|a| a.type_ == "InternalIP" && a.address == env.node_ip.to_string()));
    let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    let lease = leases.get(&env.node_name).await.unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(env.node_name.as_str()));
    assert!(spec.renew_time.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_runs_as_a_process_with_kubernetes_status() {
    let (env, client, ns) = setup("status").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let t0 = Instant::now();
    create::<Pod>(
        &client,
        &ns,
        json!({
            "metadata": {"name": "one"},
            "spec": {"containers": [web_container("web", &[])]},
        }),
    )
    .await;
    let running = wait_object(&pods, "one", T, "Running", |p: &Pod| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await
    .unwrap();
    eprintln!("FIGURE pod-to-Running: {:.2}s", t0.elapsed().as_secs_f64());
    let p = wait_object(&pods, "one", T, "Ready", is_ready).await.unwrap();
    eprintln!("FIGURE pod-to-Ready: {:.2}s", t0.elapsed().as_secs_f64());
    let _ = running;
    let st = p.status.clone().unwrap();
    assert_eq!(st.host_ip.as_deref(), Some(env.node_ip.to_string().as_str()));
    let ip = pod_ip(&p).unwrap();
    assert_eq!(ip.octets()[..3], env.node_ip.octets()[..3], "pod IP from the node's /24");
    let types: BTreeSet<String> =
        st.conditions.unwrap().into_iter().filter(|c| c.status == "True").map(|c| c.type_).collect();
    let want: BTreeSet<String> = ["PodScheduled", "Initialized", "ContainersReady", "Ready"].map(String::from).into();
    assert_eq!(types, want);
    let cs = &st.container_statuses.unwrap()[0];
    assert!(cs.state.as_ref().unwrap().running.is_some());
    assert_eq!(cs.restart_count, 0);
    assert!(cs.ready);
    let pid = container_pid(&p, "web").unwrap();
    assert!(process_alive(pid));
    let (code, body) = http_get(ip, 8080, "/").await.unwrap();
    assert_eq!((code, body.trim()), (200, "hello from one"));
    // The container writes to its log file.
    let log = std::fs::read_to_string(env.log_file(&p, "web", 0)).unwrap();
    assert!(log.contains("listening on :8080"), "{log}");
    // `kubectl logs`: the API server proxies to the agent's kubelet endpoint.
    let logs = pods.logs("one", &kube::api::LogParams::default()).await.unwrap();
    assert!(logs.contains("listening on :8080"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_becomes_available_serves_through_its_service_and_replaces_deleted_pods() {
    let (_env, client, ns) = setup("deploy").await;
    create::<Deployment>(
        &client,
        &ns,
        json!({
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"terminationGracePeriodSeconds": 5, "containers": [web_container("web", &[])]},
                },
            },
        }),
    )
    .await;
    create::<Service>(
        &client,
        &ns,
        json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080, "targetPort": 8080}]},
        }),
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    wait_object(&deployments, "web", T, "Available with 2 replicas", |d: &Deployment| {
        let st = d.status.clone().unwrap_or_default();
        st.available_replicas == Some(2)
            && st.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Available" && c.status == "True")
    })
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let ready = running_pods(&pods, "app=web", 2).await;
    let ips: BTreeSet<String> = ready.iter().map(|p| pod_ip(p).unwrap().to_string()).collect();
    let names: BTreeSet<String> = ready.iter().map(|p| p.name_any()).collect();

    // A pod reaches the others through the Service name, in its three forms.
    let a = &ready[0];
    for host in ["web".to_string(), format!("web.{ns}"), format!("web.{ns}.svc.cluster.local")] {
        let resolved = wait_for(T, "service name resolves to both pods", || {
            let host = host.clone();
            let ips = ips.clone();
            async move {
                let r = resolve_from(a, &host).await;
                Ok((r == ips).then_some(r))
            }
        })
        .await
        .unwrap();
        assert_eq!(resolved, ips);
        let (code, body) = fetch_from(a, &host, 8080, "").await;
        assert_eq!(code, 200, "{host}: {body}");
        let from = body.trim().strip_prefix("hello from ").unwrap().to_string();
        assert!(names.contains(&from), "{from} not in {names:?}");
    }

    // Deleting a pod kills its process; the ReplicaSet replaces it.
    let victim = ready[1].clone();
    let pid = container_pid(&victim, "web").unwrap();
    assert!(process_alive(pid));
    pods.delete(&victim.name_any(), &DeleteParams::default()).await.unwrap();
    wait_for(T, "deleted pod to disappear", || async {
        Ok(pods.get_opt(&victim.name_any()).await?.is_none().then_some(()))
    })
    .await
    .unwrap();
    assert!(!process_alive(pid), "process {pid} of the deleted pod still runs");
    let after = running_pods(&pods, "app=web", 2).await;
    let after_names: BTreeSet<String> = after.iter().map(|p| p.name_any()).collect();
    assert!(!after_names.contains(&victim.name_any()));
    assert!(after_names.contains(&ready[0].name_any()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collector_deletes_dependents_of_a_deleted_owner() {
    let (_env, client, ns) = setup("gc").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let owner: ConfigMap = create(&client, &ns, json!({"metadata": {"name": "owner"}, "data": {"a": "1"}})).await;
    create::<ConfigMap>(
        &client,
        &ns,
        json!({
            "metadata": {"name": "dependent", "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.uid().unwrap(),
            }]},
            "data": {"b": "2"},
        }),
    )
    .await;
    cms.delete("owner", &DeleteParams::background()).await.unwrap();
    wait_for(T, "dependent to be garbage-collected", || async {
        Ok(cms.get_opt("dependent").await?.is_none().then_some(()))
    })
    .await
    .unwrap();
    assert!(cms.get_opt("owner").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_pods_get_stable_dns_names() {
    let (env, client, ns) = setup("sts").await;
    create::<Service>(
        &client,
        &ns,
        json!({
            "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 8080}]},
        }),
    )
    .await;
    create::<StatefulSet>(
        &client,
        &ns,
        json!({
            "metadata": {"name": "db"},
            "spec": {
                "serviceName": "db", "replicas": 2, "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {
                    "terminationGracePeriodSeconds": 2, "containers": [web_container("db", &[])]}},
            },
        }),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    running_pods(&pods, "app=db", 2).await;
    let db0 = pods.get("db-0").await.unwrap();
    let db1 = pods.get("db-1").await.unwrap();
    let ip1 = pod_ip(&db1).unwrap().to_string();
    for name in ["db-1.db".to_string(), format!("db-1.db.{ns}"), format!("db-1.db.{ns}.svc.cluster.local")] {
        let r = wait_for(T, "db-1 name", || {
            let name = name.clone();
            let db0 = db0.clone();
            async move {
                let r = resolve_from(&db0, &name).await;
                Ok((!r.is_empty()).then_some(r))
            }
        })
        .await
        .unwrap();
        assert_eq!(r, BTreeSet::from([ip1.clone()]), "{name}");
    }
    let (code, body) = fetch_from(&db0, "db-1.db", 8080, "").await;
    assert_eq!((code, body.trim()), (200, "hello from db-1"));
    // The API server is reachable by its in-cluster name.
    assert_eq!(resolve_from(&db0, "kubernetes.default.svc").await, BTreeSet::from([env.gateway.to_string()]));

    // The name follows the pod when it is recreated.
    pods.delete("db-1", &DeleteParams::default()).await.unwrap();
    let new1 = wait_object(&pods, "db-1", T, "db-1 recreated and Ready", |p: &Pod| p.uid() != db1.uid() && is_ready(p))
        .await
        .unwrap();
    let new_ip = pod_ip(&new1).unwrap().to_string();
    let r = wait_for(T, "db-1 resolves to its new address", || {
        let db0 = db0.clone();
        let new_ip = new_ip.clone();
        async move {
            let r = resolve_from(&db0, "db-1.db").await;
            Ok((r == BTreeSet::from([new_ip])).then_some(r))
        }
    })
    .await
    .unwrap();
    assert_eq!(r.len(), 1);
    let (code, body) = fetch_from(&db0, "db-1.db", 8080, "").await;
    assert_eq!((code, body.trim()), (200, "hello from db-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmapped_image_waits_with_err_image_pull_and_the_agent_keeps_working() {
    let (_env, client, ns) = setup("unmapped").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    create::<Pod>(
        &client,
        &ns,
        json!({
            "metadata": {"name": "nosuch"},
            "spec": {"containers": [{"name": "c", "image": "example.com/nosuch:1"}]},
        }),
    )
    .await;
    let p = wait_object(&pods, "nosuch", T, "ErrImagePull", |p: &Pod| {
        waiting_reason(p).is_some_and(|(r, _)| r == "ErrImagePull")
    })
    .await
    .unwrap();
    let (_, msg) = waiting_reason(&p).unwrap();
    assert!(msg.contains("example.com/nosuch:1"), "{msg}");
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    create::<Pod>(
        &client,
        &ns,
        json!({"metadata": {"name": "ok"}, "spec": {"containers": [web_container("web", &[])]}}),
    )
    .await;
    wait_object(&pods, "ok", T, "another pod Ready", is_ready).await.unwrap();
    let still = pods.get("nosuch").await.unwrap();
    assert_eq!(waiting_reason(&still).unwrap().0, "ErrImagePull");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_to_completion() {
    let (env, client, ns) = setup("job").await;
    create::<k8s_openapi::api::batch::v1::Job>(&client, &ns, json!({
        "metadata": {"name": "count"},
        "spec": {"completions": 2, "parallelism": 2, "backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox:1", "command": ["sh", "-c", "echo done-$(JOB_COMPLETION_INDEX)"],
                "env": [{"name": "JOB_COMPLETION_INDEX", "value": "x"}]}],
        }}},
    }))
    .await;
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), &ns);
    let j = wait_object(&jobs, "count", T, "Complete", |j| {
        j.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Complete" && c.status == "True"))
    })
    .await
    .unwrap();
    assert_eq!(j.status.unwrap().succeeded, Some(2));
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let done = pods.list(&ListParams::default().labels("job-name=count")).await.unwrap().items;
    assert_eq!(done.len(), 2);
    for p in done {
        assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Succeeded"));
        assert_eq!(std::fs::read_to_string(env.log_file(&p, "c", 0)).unwrap(), "done-x\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policies_and_crash_loop_back_off() {
    let (_env, client, ns) = setup("crash").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let crash = |name: &str, policy: &str, code: &str| {
        json!({
            "metadata": {"name": name},
            "spec": {"restartPolicy": policy, "containers": [{
                "name": "c", "image": "sluice/testhttp:1",
                "args": ["--port", "8080", "--exit-after-ms", "100", "--exit-code", code],
            }]},
        })
    };
    create::<Pod>(&client, &ns, crash("always", "Always", "3")).await;
    create::<Pod>(&client, &ns, crash("never", "Never", "3")).await;
    create::<Pod>(&client, &ns, crash("onfailure-ok", "OnFailure", "0")).await;

    let p = wait_object(&pods, "always", T, "CrashLoopBackOff after 2 restarts", |p: &Pod| {
        let cs = p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).and_then(|c| c.first().cloned());
        cs.is_some_and(|c| c.restart_count >= 2) && waiting_reason(p).is_some_and(|(r, _)| r == "CrashLoopBackOff")
    })
    .await
    .unwrap();
    let st = p.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some("Running"), "restartPolicy Always keeps the pod Running");
    let cs = &st.container_statuses.unwrap()[0];
    let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(last.exit_code, 3);
    assert_eq!(last.reason.as_deref(), Some("Error"));
    assert!(!cs.ready);
    let note = wait_event(&client, &ns, "always", "BackOff").await;
    assert!(note.contains("Back-off restarting failed container c"), "{note}");

    let p = wait_object(&pods, "never", T, "Failed", |p: &Pod| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
    })
    .await
    .unwrap();
    let cs = &p.status.unwrap().container_statuses.unwrap()[0];
    assert_eq!(cs.state.as_ref().unwrap().terminated.as_ref().unwrap().exit_code, 3);
    assert_eq!(cs.restart_count, 0);

    let p = wait_object(&pods, "onfailure-ok", T, "Succeeded", |p: &Pod| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
    })
    .await
    .unwrap();
    assert_eq!(p.status.unwrap().container_statuses.unwrap()[0].restart_count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_readiness_probe_keeps_the_pod_out_of_its_service() {
    let (_env, client, ns) = setup("ready").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod = |name: &str, args: &[&str]| json!({"metadata": {"name": name, "labels": {"app": "mixed"}}, "spec": {"containers": [web_container("web", args)]}});
    create::<Pod>(&client, &ns, pod("good", &[])).await;
    create::<Pod>(&client, &ns, pod("bad", &["--not-ready"])).await;
    create::<Service>(
        &client,
        &ns,
        json!({
            "metadata": {"name": "mixed"},
            "spec": {"selector": {"app": "mixed"}, "ports": [{"port": 8080, "targetPort": 8080}]},
        }),
    )
    .await;
    let good = wait_object(&pods, "good", T, "good Ready", is_ready).await.unwrap();
    let bad = wait_object(&pods, "bad", T, "bad Running with probes run", |p: &Pod| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && pod_ip(p).is_some()
    })
    .await
    .unwrap();
    // The probe has failed by now (period 1 s, threshold 1); it stays not Ready.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let bad = pods.get(&bad.name_any()).await.unwrap();
    assert!(!is_ready(&bad), "a pod failing its readiness probe is not Ready");
    assert!(!bad.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0].ready);
    let good_ip = pod_ip(&good).unwrap().to_string();
    let bad_ip = pod_ip(&bad).unwrap().to_string();
    // The EndpointSlice marks it not ready; DNS leaves it out.
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
    let eps = wait_for(T, "endpointslice with the good pod ready", || async {
        let l = slices.list(&ListParams::default().labels("kubernetes.io/service-name=mixed")).await?;
        let ready: BTreeSet<String> = l
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false))
            .flat_map(|e| e.addresses.clone())
            .collect();
        Ok(ready.contains(&good_ip).then_some(ready))
    })
    .await
    .unwrap();
    assert!(!eps.contains(&bad_ip));
    assert_eq!(resolve_from(&good, "mixed").await, BTreeSet::from([good_ip]));
    let (code, _) = http_get(pod_ip(&bad).unwrap(), 8080, "/ready").await.unwrap();
    assert_eq!(code, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_startup_probes_run_inside_the_container() {
    let (_env, client, ns) = setup("exec").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    // /tmp/sluice-e2e-probe is an emptyDir: only the container's mount namespace sees the file.
    create::<Pod>(&client, &ns, json!({
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "sh", "image": "busybox:1",
                "command": ["sh", "-c", "sleep 2; touch /tmp/sluice-e2e-probe/ready; while true; do sleep 0.2; done"],
                "volumeMounts": [{"name": "probe", "mountPath": "/tmp/sluice-e2e-probe"}],
                "startupProbe": {"exec": {"command": ["sh", "-c", "test -d /tmp/sluice-e2e-probe"]}, "periodSeconds": 1},
                "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/sluice-e2e-probe/ready"]}, "periodSeconds": 1},
            }],
            "volumes": [{"name": "probe", "emptyDir": {}}],
        },
    }))
    .await;
    let p = wait_object(&pods, "p", T, "Running, started, not yet ready", |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|c| c[0].started == Some(true) && !c[0].ready)
    })
    .await
    .unwrap();
    assert!(!is_ready(&p));
    wait_object(&pods, "p", T, "Ready once the file exists inside the container", is_ready).await.unwrap();
    assert!(!std::path::Path::new("/tmp/sluice-e2e-probe/ready").exists(), "the file is not on the host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_volume_reference_waits_recovers_and_configmap_updates_reach_the_pod() {
    let (_env, client, ns) = setup("vol").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    create::<Pod>(
        &client,
        &ns,
        json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "web", "image": "sluice/testhttp:1", "args": ["--port", "8080"],
                    "volumeMounts": [{"name": "cfg", "mountPath": "/etc/sluice-e2e-later"}]}],
                "volumes": [{"name": "cfg", "configMap": {"name": "later"}}],
            },
        }),
    )
    .await;
    let p = wait_object(&pods, "p", T, "ContainerCreating with a mount error", |p: &Pod| {
        waiting_reason(p).is_some_and(|(r, m)| r == "ContainerCreating" && m.contains("later"))
    })
    .await
    .unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    let note = wait_event(&client, &ns, "p", "FailedMount").await;
    assert!(note.contains("configmap \"later\" not found"), "{note}");
    create::<ConfigMap>(&client, &ns, json!({"metadata": {"name": "later"}, "data": {"key": "value-1"}})).await;
    let p = wait_object(&pods, "p", T, "Running once the configmap exists", |p: &Pod| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await
    .unwrap();
    let (code, body) = get_when_up(pod_ip(&p).unwrap(), "/file/etc/sluice-e2e-later/key").await;
    assert_eq!((code, body.as_str()), (200, "value-1"));
    // Updates reach the running container (atomically, through the ..data link).
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    cms.patch(
        "later",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"data": {"key": "value-2"}})),
    )
    .await
    .unwrap();
    let ip = pod_ip(&p).unwrap();
    wait_for(T, "the new value in the mounted file", || async {
        let (_, body) = http_get(ip, 8080, "/file/etc/sluice-e2e-later/key").await?;
        Ok((body == "value-2").then_some(()))
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_args_volumes_and_security_context_follow_kubernetes_semantics() {
    let (env, client, ns) = setup("env").await;
    create::<ConfigMap>(&client, &ns, json!({"metadata": {"name": "cm"}, "data": {"color": "blue", "size": "3"}}))
        .await;
    create::<Secret>(&client, &ns, json!({"metadata": {"name": "s3-creds"}, "stringData": {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "sekret"}})).await;
    create::<Pod>(&client, &ns, json!({
        "metadata": {"name": "envy", "labels": {"tier": "backend"}},
        "spec": {
            "containers": [{
                "name": "web", "image": "sluice/testhttp:1",
                "args": ["--port", "$(MY_PORT)"],
                "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}, {"secretRef": {"name": "s3-creds"}}],
                "env": [
                    {"name": "MY_PORT", "value": "8080"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "ADDR", "value": "$(POD_IP):$(MY_PORT)"},
                    {"name": "ESCAPED", "value": "$$(POD_NAME)"},
                    {"name": "UNDEFINED", "value": "$(NOPE)"},
                    {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s3-creds", "key": "AWS_SECRET_ACCESS_KEY"}}},
                    {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "color"}}},
                ],
                "volumeMounts": [
                    {"name": "scratch", "mountPath": "/tmp/sluice-e2e-scratch"},
                    {"name": "creds", "mountPath": "/etc/sluice-e2e-creds", "readOnly": true},
                    {"name": "info", "mountPath": "/etc/sluice-e2e-podinfo"},
                ],
            }],
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "creds", "secret": {"secretName": "s3-creds"}},
                {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            ],
        },
    }))
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let p = wait_object(&pods, "envy", T, "Running", |p: &Pod| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await
    .unwrap();
    let ip = pod_ip(&p).unwrap();
    // The server listens on the port given through `$(MY_PORT)` in args.
    let get = |path: String| async move {
        wait_for(T, "pod answers", || {
            let path = path.clone();
            async move { Ok(http_get(ip, 8080, &path).await.ok()) }
        })
        .await
        .unwrap()
    };
    let cases = [
        ("/env/POD_NAME", "envy".to_string()),
        ("/env/POD_NS", ns.clone()),
        ("/env/POD_IP", ip.to_string()),
        ("/env/ADDR", format!("{ip}:8080")),
        ("/env/ESCAPED", "$(POD_NAME)".to_string()),
        ("/env/UNDEFINED", "$(NOPE)".to_string()),
        ("/env/SECRET", "sekret".to_string()),
        ("/env/AWS_ACCESS_KEY_ID", "AKID".to_string()),
        ("/env/COLOR", "blue".to_string()),
        ("/env/CM_size", "3".to_string()),
        ("/env/HOSTNAME", "envy".to_string()),
        ("/env/KUBERNETES_SERVICE_HOST", env.gateway.to_string()),
        ("/env/KUBERNETES_SERVICE_PORT", "443".to_string()),
        ("/file/etc/sluice-e2e-creds/AWS_SECRET_ACCESS_KEY", "sekret".to_string()),
        ("/file/etc/sluice-e2e-podinfo/labels", "tier=\"backend\"".to_string()),
        ("/file/var/run/secrets/kubernetes.io/serviceaccount/namespace", ns.clone()),
        ("/file/etc/hostname", "envy\n".to_string()),
    ];
    for (path, want) in cases {
        let (code, body) = get(path.to_string()).await;
        assert_eq!((code, body.as_str()), (200, want.as_str()), "{path}");
    }
    let (_, token) = get("/file/var/run/secrets/kubernetes.io/serviceaccount/token".into()).await;
    assert_eq!(token.split('.').count(), 3, "a JWT");
    let (_, ca) = get("/file/var/run/secrets/kubernetes.io/serviceaccount/ca.crt".into()).await;
    assert!(ca.contains("BEGIN CERTIFICATE"));
    // Volumes are only visible inside the pod's mount namespace.
    assert!(std::fs::read_dir("/etc/sluice-e2e-creds").map(|d| d.count() == 0).unwrap_or(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_reach_the_api_server_with_their_service_account() {
    let (_env, client, ns) = setup("incluster").await;
    create::<ConfigMap>(&client, &ns, json!({"metadata": {"name": "visible"}, "data": {"k": "v"}})).await;
    create::<k8s_openapi::api::rbac::v1::RoleBinding>(
        &client,
        &ns,
        json!({
            "metadata": {"name": "default-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
        }),
    )
    .await;
    create::<Pod>(
        &client,
        &ns,
        json!({"metadata": {"name": "p"}, "spec": {"containers": [web_container("web", &[])]}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let p = wait_object(&pods, "p", T, "Ready", is_ready).await.unwrap();
    let ip = pod_ip(&p).unwrap();
    let url = format!("/incluster/{ns}");
    let (code, body) = wait_for(T, "in-cluster list", || async {
        let r = http_get(ip, 8080, &url).await.ok();
        // RBAC may take a moment to see the new RoleBinding.
        Ok(r.filter(|(c, _)| *c == 200))
    })
    .await
    .unwrap();
    assert_eq!(code, 200);
    assert_eq!(body, "kube-root-ca.crt,visible");
    // Without a grant, RBAC still applies to the pod's identity.
    let (code, body) = http_get(ip, 8080, "/incluster/kube-system").await.unwrap();
    assert_eq!(code, 500);
    assert!(body.contains("forbidden"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_server_is_reachable_through_a_selectorless_service() {
    let (env, client, ns) = setup("hostsvc").await;
    // What the sandbox does for S3: a Service without selector, its EndpointSlice on the bridge gateway.
    let host_ns = format!("{ns}-sys");
    sluice_e2e::cluster::expose_host_service(&client, &host_ns, "s3", env.gateway, 9000).await.unwrap();
    create::<Pod>(
        &client,
        &ns,
        json!({"metadata": {"name": "p"}, "spec": {"containers": [web_container("web", &[])]}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let p = wait_object(&pods, "p", T, "Ready", is_ready).await.unwrap();
    let name = format!("s3.{host_ns}");
    let r = wait_for(T, "s3 name resolves", || {
        let p = p.clone();
        let name = name.clone();
        async move {
            let r = resolve_from(&p, &name).await;
            Ok((!r.is_empty()).then_some(r))
        }
    })
    .await
    .unwrap();
    assert_eq!(r, BTreeSet::from([env.gateway.to_string()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_s3_server_is_reachable_from_a_pod_through_its_service() {
    let (env, client, ns) = setup("s3").await;
    let s3 = env.start_s3(&client, &ns, &["data"]).await.unwrap();
    assert_eq!(s3.cluster_endpoint, format!("http://s3.{ns}:{}", s3.port));
    assert_eq!(s3.endpoint, format!("http://{}:{}", env.gateway, s3.port));
    // Signed HEADs from the host (a short blocking call).
    assert!(s3.server.bucket_exists("data").unwrap());
    assert!(!s3.server.bucket_exists("nosuch").unwrap());
    // The pod resolves s3.<ns>, reaches the host's MinIO on the bridge, and gets the credentials from s3-creds.
    let script = format!(
        "set -e; test \"$AWS_ACCESS_KEY_ID\" = {id}; test -n \"$AWS_SECRET_ACCESS_KEY\"; u={url}/minio/health/ready; \
         if command -v curl >/dev/null; then curl -fsS -o /dev/null \"$u\"; else wget -q -O /dev/null \"$u\"; fi; echo reached",
        id = s3.access_key_id,
        url = s3.cluster_endpoint,
    );
    create::<Pod>(
        &client,
        &ns,
        json!({"metadata": {"name": "client"}, "spec": {"restartPolicy": "Never", "containers": [{
        "name": "c", "image": "busybox:1", "command": ["sh", "-c", script],
        "envFrom": [{"secretRef": {"name": "s3-creds"}}]}]}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let p = wait_object(&pods, "client", T, "Succeeded or Failed", |p: &Pod| {
        matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
    })
    .await
    .unwrap();
    let log = std::fs::read_to_string(env.log_file(&p, "c", 0)).unwrap_or_default();
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Succeeded"), "pod log: {log}");
    assert_eq!(log.trim(), "reached");
    let pid = s3.pid() as i32;
    assert!(process_alive(pid));
    drop(s3);
    assert!(!process_alive(pid), "the S3 server survived its handle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_as_user_and_group_are_honoured() {
    let (env, client, ns) = setup("uid").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    create::<Pod>(
        &client,
        &ns,
        json!({
            "metadata": {"name": "who"},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": {"runAsUser": 1000, "runAsGroup": 2000},
                "volumes": [{"name": "tmp", "emptyDir": {}}],
                "containers": [
                    {"name": "pod-level", "image": "busybox:1", "command": ["sh", "-c", "echo $(id -u):$(id -g)"]},
                    {"name": "own", "image": "busybox:1", "command": ["sh", "-c", "echo $(id -u):$(id -g)"],
                     "securityContext": {"runAsUser": 3000}},
                    // A mapped program under /root (mode 0700), exec'd through its file
                    // descriptor as a container runtime would: a non-root user can run it.
                    {"name": "mapped", "image": "sluice/testhttp:1",
                     "args": ["--exit-after-ms", "100", "--exit-code", "0"],
                     // Requests make the pod Burstable: the agent keeps the API server's qosClass.
                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                     // An emptyDir over /tmp, where the test cluster's state lives, mounted
                     // before the service-account volume whose source is under /tmp.
                     "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                     "securityContext": {"runAsUser": 65532, "runAsNonRoot": true}},
                ],
            },
        }),
    )
    .await;
    let p = wait_object(&pods, "who", T, "Succeeded", |p: &Pod| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
    })
    .await
    .unwrap();
    assert_eq!(p.status.as_ref().and_then(|s| s.qos_class.as_deref()), Some("Burstable"));
    let out = |c: &str| std::fs::read_to_string(env.log_file(&p, c, 0)).unwrap();
    assert_eq!(out("pod-level"), "1000:2000\n");
    assert_eq!(out("own"), "3000:2000\n");
}

/// Issue 14: `make test` from a clone under /tmp. The engine pods mount an
/// emptyDir at /tmp, which hid the mapped program (`CreateContainerError …
/// No such file or directory`). In a real image the entrypoint has a path of its
/// own; here the image maps to a host path, which the pod's volumes must not
/// hide, for an ELF program and for a `#!` script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_mapped_from_a_clone_under_tmp_runs_in_a_pod_with_an_empty_dir_at_tmp() {
    struct RemoveOnDrop(std::path::PathBuf);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let clone = RemoveOnDrop(tmp_clone());
    let bin = clone.0.join("target/debug");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("sluice-testhttp");
    let _ = std::fs::remove_file(&exe);
    // A hard link is a real directory entry under /tmp, like a build in a clone, without
    // copying the binary; a copy where /tmp is another filesystem.
    if std::fs::hard_link(env!("CARGO_BIN_EXE_sluice-testhttp"), &exe).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_sluice-testhttp"), &exe).unwrap();
    }
    let script = bin.join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"ran as $(id -u) with $1\"\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(clone.0.join("README.md"), "a clone\n").unwrap();

    let (env, client, ns) = setup("tmpclone").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let tmp = json!([{"name": "tmp", "mountPath": "/tmp"}]);
    // As the operator's engine pods: non-root, an emptyDir at /tmp.
    create::<Pod>(
        &client,
        &ns,
        json!({
            "metadata": {"name": "clone"},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532},
                "volumes": [{"name": "tmp", "emptyDir": {}}],
                "containers": [
                    {"name": "engine", "image": "sluice/clone-under-tmp:1", "args": ["--port", "8080"],
                     "volumeMounts": tmp},
                    {"name": "script", "image": "sluice/clone-under-tmp-script:1", "args": ["from-tmp"],
                     "volumeMounts": tmp},
                ],
            },
        }),
    )
    .await;
    let statuses = |p: &Pod| p.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
    let p = wait_object(&pods, "clone", T, "both containers started, or one failing to", |p: &Pod| {
        let cs = statuses(p);
        let failed = cs.iter().any(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .is_some_and(|w| w.reason.as_deref() == Some("CreateContainerError"))
        });
        let started = |name: &str, f: fn(&k8s_openapi::api::core::v1::ContainerState) -> bool| {
            cs.iter().any(|c| c.name == name && c.state.as_ref().is_some_and(f))
        };
        failed || (started("engine", |s| s.running.is_some()) && started("script", |s| s.terminated.is_some()))
    })
    .await
    .unwrap();
    for c in statuses(&p) {
        let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
        assert!(waiting.is_none(), "container {} waits: {waiting:?}", c.name);
    }
    let script_state = statuses(&p).into_iter().find(|c| c.name == "script").unwrap().state.unwrap();
    assert_eq!(script_state.terminated.unwrap().exit_code, 0);
    assert_eq!(std::fs::read_to_string(env.log_file(&p, "script", 0)).unwrap(), "ran as 65532 with from-tmp\n");
    let ip = pod_ip(&p).unwrap();
    let (code, body) = get_when_up(ip, "/").await;
    assert_eq!((code, body.as_str()), (200, "hello from clone\n"));
    // The emptyDir really hides the clone inside the pod: the program ran although
    // its path does not exist there.
    let (code, body) = http_get(ip, 8080, &format!("/file{}", clone.0.join("README.md").display())).await.unwrap();
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("No such file or directory"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_deletion_sends_sigterm_waits_the_grace_period_then_kills() {
    let (env, client, ns) = setup("grace").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    create::<Pod>(
        &client,
        &ns,
        json!({
            "metadata": {"name": "stubborn"},
            "spec": {
                "terminationGracePeriodSeconds": 3,
                "containers": [{"name": "sh", "image": "busybox:1", "command": ["sh", "-c",
                    "trap 'echo got-sigterm' TERM; echo started; while true; do sleep 0.1; done"]}],
            },
        }),
    )
    .await;
    let p = wait_object(&pods, "stubborn", T, "Running", |p: &Pod| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await
    .unwrap();
    let pid = container_pid(&p, "sh").unwrap();
    let log = env.log_file(&p, "sh", 0);
    wait_for(T, "started", || async { Ok(std::fs::read_to_string(&log)?.contains("started").then_some(())) })
        .await
        .unwrap();
    pods.delete("stubborn", &DeleteParams::default()).await.unwrap();
    wait_for(T, "SIGTERM delivered", || async {
        Ok(std::fs::read_to_string(&log)?.contains("got-sigterm").then_some(()))
    })
    .await
    .unwrap();
    // It ignores SIGTERM, so it lives on during the grace period, still Terminating.
    assert!(process_alive(pid));
    assert!(pods.get_opt("stubborn").await.unwrap().is_some());
    wait_for(T, "pod deleted after the grace period", || async {
        Ok(pods.get_opt("stubborn").await?.is_none().then_some(()))
    })
    .await
    .unwrap();
    assert!(!process_alive(pid), "SIGKILL after the grace period");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_stop_hook_runs_in_the_container_before_sigterm() {
    let (_env, client, ns) = setup("prestop").await;
    let host_dir = std::env::temp_dir().join(format!("sluice-e2e-prestop-{}-{ns}", std::process::id()));
    std::fs::create_dir_all(&host_dir).unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    create::<Pod>(&client, &ns, json!({
        "metadata": {"name": "p"},
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "containers": [{"name": "sh", "image": "busybox:1",
                "command": ["sh", "-c", "trap 'echo term-after-$(cat /tmp/sluice-e2e-hp/prestop) > /tmp/sluice-e2e-hp/order; exit 0' TERM; while true; do sleep 0.1; done"],
                "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo hook > /tmp/sluice-e2e-hp/prestop"]}}},
                "volumeMounts": [{"name": "hp", "mountPath": "/tmp/sluice-e2e-hp"}]}],
            "volumes": [{"name": "hp", "hostPath": {"path": host_dir.display().to_string()}}],
        },
    }))
    .await;
    wait_object(&pods, "p", T, "Running", |p: &Pod| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    wait_for(T, "pod deleted", || async { Ok(pods.get_opt("p").await?.is_none().then_some(())) }).await.unwrap();
    assert_eq!(std::fs::read_to_string(host_dir.join("prestop")).unwrap(), "hook\n");
    assert_eq!(std::fs::read_to_string(host_dir.join("order")).unwrap(), "term-after-hook\n");
    let _ = std::fs::remove_dir_all(&host_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_run_first_and_liveness_failures_restart() {
    let (_env, client, ns) = setup("init").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    create::<Pod>(&client, &ns, json!({
        "metadata": {"name": "p"},
        "spec": {
            "initContainers": [{"name": "prep", "image": "busybox:1", "command": ["sh", "-c", "echo prepared > /tmp/sluice-e2e-work/marker"],
                "volumeMounts": [{"name": "w", "mountPath": "/tmp/sluice-e2e-work"}]}],
            "containers": [{"name": "web", "image": "sluice/testhttp:1", "args": ["--port", "8080"],
                "volumeMounts": [{"name": "w", "mountPath": "/tmp/sluice-e2e-work"}],
                // Probes a port nobody listens on: the container is restarted.
                "livenessProbe": {"tcpSocket": {"port": 9999}, "periodSeconds": 1, "failureThreshold": 2},
            }],
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "w", "emptyDir": {}}],
        },
    }))
    .await;
    let p = wait_object(&pods, "p", T, "Running", |p: &Pod| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await
    .unwrap();
    let init = &p.status.as_ref().unwrap().init_container_statuses.as_ref().unwrap()[0];
    assert_eq!(init.state.as_ref().unwrap().terminated.as_ref().unwrap().exit_code, 0);
    let (code, body) = get_when_up(pod_ip(&p).unwrap(), "/file/tmp/sluice-e2e-work/marker").await;
    assert_eq!((code, body.as_str()), (200, "prepared\n"));
    wait_object(&pods, "p", T, "restarted by its liveness probe", |p: &Pod| {
        p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).is_some_and(|c| c[0].restart_count >= 1)
    })
    .await
    .unwrap();
}

#[test]
fn stopping_a_cluster_leaves_no_process_namespace_bridge_or_mount() {
    let env = testenv::start_cluster(&opts("d")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let pid = rt.block_on(async {
        let client = env.client().await.unwrap();
        let ns = env.namespace(&client, "down").await.unwrap();
        create::<ConfigMap>(&client, &ns, json!({"metadata": {"name": "cm"}, "data": {"k": "v"}})).await;
        create::<Pod>(&client, &ns, json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "web", "image": "sluice/testhttp:1", "args": ["--port", "8080"],
                    "volumeMounts": [{"name": "e", "mountPath": "/tmp/sluice-e2e-down"}, {"name": "c", "mountPath": "/etc/sluice-e2e-down"}]}],
                "volumes": [{"name": "e", "emptyDir": {}}, {"name": "c", "configMap": {"name": "cm"}}],
            },
        }))
        .await;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let p = wait_object(&pods, "p", T, "Running", |p: &Pod| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .await
        .unwrap();
        container_pid(&p, "web").unwrap()
    });
    let prefix = format!("sluice-{}-", env.node_name);
    assert_eq!(sluice_e2e::net::list_netns(&prefix).len(), 1);
    let bridge = format!("sl-e{}d", std::process::id());
    assert!(sluice_e2e::net::link_exists(&bridge));
    let pids = testenv::stop_cluster(&env.name);
    assert!(pids.len() >= 5, "etcd, 3 control-plane processes and the node: {pids:?}");
    for p in pids.iter().map(|p| *p as i32).chain([pid]) {
        assert!(!process_alive(p), "process {p} survived");
    }
    assert!(sluice_e2e::net::list_netns(&prefix).is_empty(), "netns left behind");
    assert!(!sluice_e2e::net::link_exists(&bridge), "bridge left behind");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("sluice-e2e-down"), "mount left behind");
    for p in ["/tmp/sluice-e2e-down", "/etc/sluice-e2e-down"] {
        assert!(!std::path::Path::new(p).exists(), "mount point {p} left on the host");
    }
    assert!(!mounts.contains(env.dir.to_str().unwrap()), "mount left behind");
}

/// The direct children of a process.
fn children_of(parent: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| s.rsplit(") ").next().map(str::to_string))
                .and_then(|rest| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
                == Some(parent)
        })
        .collect()
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// A throwaway repository for `sluice-sandbox`: `crds/` with two CRDs in one
/// file (plus a README that must be ignored) and a fake operator that logs
/// its arguments and environment and runs until SIGTERM.
fn fake_repo(root: &std::path::Path) {
    std::fs::create_dir_all(root.join("crds")).unwrap();
    let crd = |plural: &str, kind: &str| {
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: PLURAL.fake.sluice.dev}
spec:
  group: fake.sluice.dev
  scope: Namespaced
  names: {kind: KIND, plural: PLURAL, singular: SINGULAR, listKind: KINDList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#
        .replace("PLURAL", plural)
        .replace("SINGULAR", &kind.to_lowercase())
        .replace("KIND", kind)
    };
    std::fs::write(
        root.join("crds/fake.yaml"),
        format!("# two documents\n{}---\n{}", crd("widgets", "Widget"), crd("gadgets", "Gadget")),
    )
    .unwrap();
    std::fs::write(root.join("crds/README.md"), "not a CRD\n").unwrap();
    let op = root.join("fake-operator");
    std::fs::write(
        &op,
        "#!/bin/sh\necho \"fake-operator $*\"\necho \"KUBECONFIG=$KUBECONFIG RUST_LOG=$RUST_LOG\"\n\
         trap 'echo stopped; exit 0' TERM\nwhile true; do sleep 0.1; done\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&op, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn sandbox_up_refuses_helm_a_missing_operator_binary_and_missing_crds() {
    let root = std::env::temp_dir().join(format!("sluice-e2e-sandbox-refuse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    fake_repo(&root);
    let dir = root.join(".sandbox");
    let up = |envs: &[(&str, String)]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice-sandbox"))
            .args(["up", "--dir", dir.to_str().unwrap(), "--name", "refuse", "--bridge", "sl-refuse", "--octet", "199"])
            .env_remove("SLUICE_OPERATOR_BIN")
            .env("CARGO_TARGET_DIR", root.join("target"))
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        assert!(!out.status.success(), "up succeeded with {envs:?}");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = up(&[("SANDBOX_OPERATOR", "helm".into())]);
    assert!(err.contains("SANDBOX_OPERATOR=helm: no Helm chart at") && err.contains("charts/sluice"), "{err}");
    // `process` is the default.
    let err = up(&[]);
    assert!(err.contains("cargo build -p sluice-operator"), "{err}");
    assert!(err.contains(&root.join("target/debug/sluice-operator").display().to_string()), "{err}");
    std::fs::remove_file(root.join("crds/fake.yaml")).unwrap();
    let err = up(&[
        ("SANDBOX_OPERATOR", "process".into()),
        ("SLUICE_OPERATOR_BIN", root.join("fake-operator").display().to_string()),
    ]);
    assert!(err.contains("crdgen"), "{err}");
    let err = up(&[("SANDBOX_OPERATOR", "kubectl".into())]);
    assert!(err.contains("expected process, helm or none"), "{err}");
    // Refused before anything started.
    assert!(!dir.join("sandbox.pid").exists());
    assert!(!sluice_e2e::net::link_exists("sl-refuse"));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn sandbox_binary_up_and_down_leaves_nothing_behind() {
    // Its own name, bridge and /16: never the developer's `.sandbox`. Its
    // "repository" (the sandbox dir's parent) has throwaway CRDs and a fake operator.
    let pid = std::process::id();
    let root = std::env::temp_dir().join(format!("sluice-e2e-sandbox-{pid}"));
    let _ = std::fs::remove_dir_all(&root);
    fake_repo(&root);
    let dir = root.join(".sandbox");
    let name = format!("sbx{pid}");
    let bridge = format!("sl-s{pid}");
    let octet: u8 = testenv::free_octet().unwrap();
    let bin = env!("CARGO_BIN_EXE_sluice-sandbox");
    let args = |cmd: &str| {
        let d = dir.display().to_string();
        let mut v = vec![
            cmd.to_string(),
            "--dir".into(),
            d,
            "--name".into(),
            name.clone(),
            "--bridge".into(),
            bridge.clone(),
            "--octet".into(),
            octet.to_string(),
        ];
        v.extend(["--nodes".to_string(), "2".to_string()]);
        v
    };
    // Whatever happens below, the sandbox goes down (it outlives this process otherwise).
    struct Down(Vec<String>, std::path::PathBuf);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = std::process::Command::new(env!("CARGO_BIN_EXE_sluice-sandbox")).args(&self.0).output();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let _down = Down(args("down"), root.clone());
    let out = std::process::Command::new(bin)
        .args(args("up"))
        .env("SANDBOX_OPERATOR", "process")
        .env("SLUICE_OPERATOR_BIN", root.join("fake-operator"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("export KUBECONFIG={}", dir.join("kubeconfig").display())), "{stdout}");
    let op_log = dir.join("logs/operator.log");
    assert!(stdout.contains(&format!("log {}", op_log.display())), "{stdout}");
    assert!(stdout.contains("bucket sluice"), "{stdout}");
    let supervisor: i32 = std::fs::read_to_string(dir.join("sandbox.pid")).unwrap().trim().parse().unwrap();
    let env_file = std::fs::read_to_string(dir.join("env")).unwrap();
    let gw = Ipv4Addr::new(10, octet, 0, 1);
    for want in [
        "AWS_ACCESS_KEY_ID=sluice\n".to_string(),
        format!("SLUICE_S3_ENDPOINT=http://{gw}:9000\n"),
        "SLUICE_S3_BUCKET=sluice\n".into(),
    ] {
        assert!(env_file.contains(&want), "{want} not in {env_file}");
    }

    // S3: MinIO on the gateway, with the bucket `sluice` (a signed HEAD from the host).
    let s3_addr = std::net::SocketAddr::from((gw, 9000));
    assert!(sluice_e2e::s3::ready(s3_addr));
    let creds = sluice_e2e::s3::Credentials { access_key: "sluice", secret_key: "sluice-sandbox-secret" };
    assert_eq!(sluice_e2e::s3::signed_request(s3_addr, &creds, "HEAD", "/sluice", b"").unwrap().0, 200);
    assert_eq!(sluice_e2e::s3::signed_request(s3_addr, &creds, "HEAD", "/nosuch", b"").unwrap().0, 404);
    // The operator: started with its arguments and environment.
    let log = std::fs::read_to_string(&op_log).unwrap();
    assert!(
        log.contains(
            "fake-operator --engine-access apiserver-proxy --http-addr 127.0.0.1:9464 --lease-namespace sluice-system \
             --default-engine-image sluice/engine:0.1.0\n"
        ),
        "{log}"
    );
    assert!(log.contains(&format!("KUBECONFIG={} RUST_LOG=info\n", dir.join("kubeconfig").display())), "{log}");

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let pid_in_pod = rt.block_on(async {
        let client = sluice_e2e::client_from_kubeconfig(&dir.join("kubeconfig")).await.unwrap();
        let secrets: Api<Secret> = Api::namespaced(client.clone(), "sluice-system");
        assert!(secrets.get("s3-creds").await.unwrap().data.unwrap().contains_key("AWS_SECRET_ACCESS_KEY"));
        // Both CRDs of crds/fake.yaml, applied server-side by sluice-sandbox and Established.
        let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
            Api::all(client.clone());
        for n in ["widgets.fake.sluice.dev", "gadgets.fake.sluice.dev"] {
            let c = crds.get(n).await.unwrap();
            assert!(c.status.unwrap().conditions.unwrap().iter().any(|c| c.type_ == "Established" && c.status == "True"));
            assert!(c.metadata.managed_fields.unwrap().iter().any(|m| m.manager.as_deref() == Some("sluice-sandbox")));
        }
        create::<Pod>(&client, "default", json!({"metadata": {"name": "p"}, "spec": {"containers": [{
            "name": "sh", "image": "busybox:1", "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]}]}}))
        .await;
        // A pod reaches the sandbox's S3 by its documented in-cluster name.
        create::<Pod>(&client, "default", json!({"metadata": {"name": "s3-client"}, "spec": {"restartPolicy": "Never", "containers": [{
            "name": "c", "image": "busybox:1", "command": ["sh", "-c", "u=http://s3.sluice-system:9000/minio/health/ready; \
                if command -v curl >/dev/null; then curl -fsS -o /dev/null $u; else wget -q -O /dev/null $u; fi"]}]}}))
        .await;
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let p = wait_object(&pods, "p", T, "Running", |p: &Pod| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .await
        .unwrap();
        let c = wait_object(&pods, "s3-client", T, "Succeeded or Failed", |p: &Pod| {
            matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
        })
        .await
        .unwrap();
        assert_eq!(c.status.unwrap().phase.as_deref(), Some("Succeeded"), "s3-client could not reach S3");
        // Two nodes on one bridge: a pod on node 1 reaches a pod on node 2 by name.
        create::<Service>(&client, "default", json!({"metadata": {"name": "peers"},
            "spec": {"clusterIP": "None", "selector": {"app": "peer"}, "ports": [{"port": 8080}]}})).await;
        for k in [1, 2] {
            create::<Pod>(&client, "default", json!({"metadata": {"name": format!("peer{k}"), "labels": {"app": "peer"}},
                "spec": {"nodeName": format!("{name}-node-{k}"), "hostname": format!("peer{k}"), "subdomain": "peers",
                    "containers": [web_container("web", &[])]}})).await;
        }
        let p1 = wait_object(&pods, "peer1", T, "peer1 Ready", is_ready).await.unwrap();
        let p2 = wait_object(&pods, "peer2", T, "peer2 Ready", is_ready).await.unwrap();
        assert_ne!(p1.status.as_ref().unwrap().host_ip, p2.status.as_ref().unwrap().host_ip);
        for (from, to, to_pod) in [(&p1, "peer2.peers", &p2), (&p2, "peer1.peers", &p1)] {
            // The EndpointSlice lags the pod's readiness a little.
            let want = BTreeSet::from([pod_ip(to_pod).unwrap().to_string()]);
            wait_for(T, &format!("{to} resolves"), || {
                let want = want.clone();
                async move { Ok((resolve_from(from, to).await == want).then_some(())) }
            })
            .await
            .unwrap();
            let (code, body) = fetch_from(from, to, 8080, "").await;
            assert_eq!((code, body.trim()), (200, format!("hello from {}", to_pod.name_any()).as_str()));
        }
        container_pid(&p, "sh").unwrap()
    });
    let children = children_of(supervisor);
    let named = |what: &str| children.iter().copied().filter(|p| cmdline(*p).contains(what)).collect::<Vec<_>>();
    assert_eq!(named("minio").len(), 1, "one MinIO under the supervisor: {children:?}");
    let operator = named("fake-operator");
    assert_eq!(operator.len(), 1, "one operator under the supervisor: {children:?}");
    assert!(
        children.len() >= 8,
        "etcd, 3 control-plane processes, 2 nodes, MinIO and the operator under the supervisor: {children:?}"
    );
    // One netns per running pod (p, peer1, peer2); the finished s3-client's goes with its containers.
    wait_until(Duration::from_secs(10), || sluice_e2e::net::list_netns(&format!("sluice-{name}-node-")).len() == 3);

    // The supervisor restarts an operator that dies.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(operator[0]), nix::sys::signal::Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let restarted = loop {
        let now: Vec<i32> = children_of(supervisor)
            .into_iter()
            .filter(|p| cmdline(*p).contains("fake-operator") && *p != operator[0])
            .collect();
        if let Some(p) = now.first() {
            break *p;
        }
        assert!(Instant::now() < deadline, "the operator was not restarted");
        std::thread::sleep(Duration::from_millis(200));
    };
    wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&op_log).unwrap().matches("fake-operator --engine-access").count() == 2
    });

    let out = std::process::Command::new(bin).args(args("down")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(stdout.trim(), "sandbox down", "down found nothing left to clean up by hand");
    for p in children.iter().copied().chain([supervisor, pid_in_pod, restarted]) {
        assert!(!process_alive(p), "process {p} ({}) survived sandbox down", cmdline(p));
    }
    assert!(std::fs::read_to_string(&op_log).unwrap().ends_with("stopped\n"), "the operator got SIGTERM");
    assert!(!sluice_e2e::s3::ready(s3_addr));
    assert!(sluice_e2e::net::list_netns(&format!("sluice-{name}-")).is_empty(), "netns left behind");
    assert!(!sluice_e2e::net::link_exists(&bridge));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(dir.to_str().unwrap()));
}

fn wait_until(timeout: Duration, f: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "condition not met within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
