//! The Helm chart `charts/sluice`: lint, render with default and non-default
//! values, the values schema, a server-side dry run against a real
//! kube-apiserver, and a real `helm install` into a local cluster whose node
//! agent runs the operator's and the engine's pods — in namespaces that enforce
//! Pod Security "restricted" — then `helm upgrade`, no drift, and a clean
//! `helm uninstall`. `helm` is the pinned build of `scripts/helm.sh`.
//!
//! Behind the `cluster-tests` feature (it needs the Go-built Kubernetes binaries):
//! `cargo test -p sluice-operator --features cluster-tests --test helm`; `make test` runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, CustomResourceExt, ResourceExt};
use serde_json::{Value, json};
use sluice_e2e::node::config::ImageMapping;
use sluice_e2e::testenv::{self, TestEnv, wait_for, wait_object};
use sluice_operator::crd::{Phase, StreamJob, StreamSavepoint};

/// kubectl's limit for client-side apply: the last-applied annotation holds the whole object.
const CLIENT_SIDE_APPLY_LIMIT: usize = 262_144;
const T: Duration = Duration::from_secs(180);

fn repo() -> PathBuf {
    sluice_e2e::repo_root()
}

fn chart() -> String {
    repo().join("charts/sluice").display().to_string()
}

fn helm() -> PathBuf {
    let out = Command::new("bash").arg(repo().join("scripts/helm.sh")).arg("install").output().unwrap();
    assert!(out.status.success(), "scripts/helm.sh install: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Runs a command; returns (success, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn ok(cmd: &mut Command) -> String {
    let (success, out, err) = run(cmd);
    assert!(success, "{cmd:?} failed:\n{out}\n{err}");
    out
}

/// `helm template` with `--set` values; the rendered documents.
fn template(sets: &[&str]) -> Result<Vec<Value>, String> {
    let mut cmd = Command::new(helm());
    cmd.args(["template", "sluice", &chart(), "--namespace", "sluice-system"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let (success, out, err) = run(&mut cmd);
    if !success {
        return Err(err);
    }
    Ok(docs(&out))
}

fn docs(yaml: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(yaml).map(|d| Value::deserialize(d).unwrap()).filter(|v| !v.is_null()).collect()
}

/// Helm's YAML round trip writes `32768.0` as `32768`: compare numbers by value.
fn numbers_as_f64(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_f64).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), numbers_as_f64(v))).collect()),
        other => other.clone(),
    }
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = docs.iter().map(|d| d["kind"].as_str().unwrap().to_string()).collect();
    k.sort();
    k
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn images() -> Vec<ImageMapping> {
    // target/debug/deps/helm-… → target/debug/<bin> (built by `cargo test --workspace`).
    let dir = std::env::current_exe().unwrap().parent().and_then(|p| p.parent()).unwrap().to_path_buf();
    ["sluice-engine", "sluice-operator"]
        .into_iter()
        .map(|bin| {
            let path = dir.join(bin);
            if !path.exists() {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let ok = Command::new(cargo).args(["build", "--workspace", "--bins"]).status().unwrap();
                assert!(ok.success(), "building the workspace's binaries failed");
            }
            ImageMapping {
                image: format!("sluice/{}:*", bin.trim_start_matches("sluice-")),
                entrypoint: vec![path.display().to_string()],
                cmd: vec![],
                path: vec![],
            }
        })
        .collect()
}

async fn env() -> (TestEnv, kube::Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let opts = testenv::Options::for_external_tests(images()).unwrap();
    let env = tokio::task::spawn_blocking(move || testenv::shared(&opts)).await.unwrap().unwrap();
    let client = env.client().await.unwrap();
    (env, client)
}

/// A fresh namespace that enforces Pod Security "restricted".
async fn restricted_namespace(env: &TestEnv, client: &kube::Client, prefix: &str) -> String {
    let ns = env.namespace(client, prefix).await.unwrap();
    Api::<Namespace>::all(client.clone())
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            }}})),
        )
        .await
        .unwrap();
    ns
}

/// What the operator's ServiceAccount may do, as the API server answers `kubectl auth
/// can-i --list` for it in a job namespace and in its own, against the committed
/// allow-list `operator/tests/golden/operator-rbac.txt` (`UPDATE_GOLDEN=1` rewrites it;
/// review the diff: every line is a permission the operator holds).
fn effective_rbac_matches_the_allow_list(env: &TestEnv, rel: &str, sa: &str, jobs_ns: &str) {
    let mut out = String::from("# kubectl auth can-i --list as the operator's ServiceAccount (chart defaults).\n");
    for (label, ns) in [("a job namespace", jobs_ns), ("the release namespace", rel)] {
        let who = format!("system:serviceaccount:{rel}:{sa}");
        let list = ok(kubectl(env).args(["auth", "can-i", "--list", "--as", &who, "-n", ns]));
        out.push_str(&format!("## in {label}\n"));
        // Sorted, with runs of spaces squeezed: the table's column widths vary.
        let mut lines: Vec<String> = list
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort();
        out.push_str(&(lines.join("\n") + "\n"));
    }
    let golden = repo().join("operator/tests/golden/operator-rbac.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &out).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    assert_eq!(
        out,
        want,
        "the operator's effective RBAC differs from {} (UPDATE_GOLDEN=1 rewrites it)",
        golden.display()
    );
}

fn kubectl(env: &TestEnv) -> Command {
    let mut c = Command::new("kubectl");
    c.arg("--kubeconfig").arg(&env.kubeconfig);
    c
}

fn helm_cmd(env: &TestEnv) -> Command {
    let mut c = Command::new(helm());
    c.arg("--kubeconfig").arg(&env.kubeconfig);
    c
}

fn write_docs(docs: &[&Value], name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("sluice-helm-test-{}-{name}.yaml", std::process::id()));
    let text: String = docs.iter().map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap())).collect();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_chart_lints_and_renders_restricted_least_privilege_defaults() {
    let (success, out, err) = run(Command::new(helm()).args(["lint", "--strict", &chart()]));
    assert!(success, "helm lint --strict:\n{out}\n{err}");

    // Defaults: all namespaces (ClusterRole), CRDs, leader election, 2 replicas, PDB.
    let d = template(&[]).unwrap();
    assert_eq!(
        kinds(&d),
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding"
        ]
    );
    let dep = find(&d, "Deployment")[0];
    assert_eq!(dep["spec"]["replicas"], 2);
    let pod = &dep["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(args.contains(&"--leader-election=true") && args.contains(&"--engine-access=direct"), "{args:?}");
    assert!(args.contains(&"--default-engine-image=sluice/engine:0.1.0"), "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("--default-s3") || a.starts_with("--s3-endpoint")), "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("--namespaces")), "{args:?}");
    assert_eq!(c["image"], "sluice/operator:0.1.0");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(pod["securityContext"]["runAsUser"].as_i64().unwrap() > 0);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(find(&d, "PodDisruptionBudget")[0]["spec"]["maxUnavailable"], 1);

    // The CRDs are the generated ones, kept on uninstall, small enough for client-side apply.
    let crds = find(&d, "CustomResourceDefinition");
    for (crd, generated) in crds.iter().zip([StreamJob::crd(), StreamSavepoint::crd()]) {
        let name = generated.metadata.name.clone().unwrap();
        assert_eq!(crd["metadata"]["name"], name.as_str());
        assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
        // crds/ is checked against the Rust types by `make crds-check`.
        let file = std::fs::read_to_string(repo().join(format!("crds/{name}.yaml"))).unwrap();
        let file: Value = serde_yaml::from_str(&file).unwrap();
        assert_eq!(
            numbers_as_f64(&crd["spec"]),
            numbers_as_f64(&file["spec"]),
            "the chart's {name} differs from crds/"
        );
        let size = serde_json::to_string(crd).unwrap().len();
        eprintln!("{name}: {size} bytes as JSON (the last-applied annotation's size)");
        assert!(size < CLIENT_SIDE_APPLY_LIMIT / 2, "{name} is {size} bytes");
    }

    // Least privilege: no wildcards, Secrets read by name only, no services/proxy by default,
    // Pods only watched, Leases only in the release namespace.
    let rules = &find(&d, "ClusterRole")[0]["rules"];
    let rules = rules.as_array().unwrap();
    for r in rules {
        for f in ["apiGroups", "resources", "verbs"] {
            assert!(!r[f].as_array().unwrap().contains(&json!("*")), "wildcard in {r}");
        }
    }
    let verbs = |res: &str| -> BTreeSet<String> {
        rules
            .iter()
            .filter(|r| r["resources"].as_array().unwrap().contains(&json!(res)))
            .flat_map(|r| r["verbs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()))
            .collect()
    };
    assert_eq!(verbs("secrets"), BTreeSet::from(["create".to_string(), "get".to_string()]));
    assert_eq!(verbs("pods"), ["get", "list", "watch"].map(String::from).into());
    assert!(verbs("services/proxy").is_empty());
    assert!(verbs("leases").is_empty());
    assert_eq!(verbs("streamjobs/finalizers"), BTreeSet::from(["update".to_string()]));
    let lease_role = find(&d, "Role")[0];
    assert_eq!(lease_role["metadata"]["namespace"], "sluice-system");
    assert_eq!(lease_role["rules"][0]["resources"], json!(["leases"]));

    // Non-default: watched namespaces (Roles, no ClusterRole), monitors, NetworkPolicy,
    // the API server proxy, a registry, no CRDs.
    let d = template(&[
        "watchNamespaces={team-a,team-b}",
        "monitoring.serviceMonitor.enabled=true",
        "monitoring.podMonitor.enabled=true",
        "networkPolicy.enabled=true",
        "operator.engineAccess=apiserver-proxy",
        "imageRegistry=registry.example.com/",
        "s3.defaults.endpoint=http://minio.storage:9000",
        "s3.defaults.credentialsSecret=s3-creds",
        "openlineage.url=http://marquez.lineage:5000",
        "networkPolicy.engine.metricsNamespaces={monitoring}",
        "crds.install=false",
        "admissionPolicy.enabled=false",
    ])
    .unwrap();
    assert_eq!(
        kinds(&d),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "PodMonitor",
            "Role",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ServiceMonitor"
        ]
    );
    let roles: BTreeSet<String> =
        find(&d, "Role").iter().map(|r| r["metadata"]["namespace"].as_str().unwrap().to_string()).collect();
    assert_eq!(roles, ["sluice-system", "team-a", "team-b"].map(String::from).into());
    let team_role = find(&d, "Role").into_iter().find(|r| r["metadata"]["namespace"] == "team-a").unwrap();
    assert!(team_role["rules"].as_array().unwrap().iter().any(|r| r["resources"] == json!(["services/proxy"])));
    let c = &find(&d, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(args.contains(&"--namespaces=team-a,team-b") && args.contains(&"--engine-access=apiserver-proxy"));
    assert_eq!(c["image"], "registry.example.com/sluice/operator:0.1.0");
    assert!(args.contains(&"--default-engine-image=registry.example.com/sluice/engine:0.1.0"), "{args:?}");
    assert!(args.contains(&"--default-s3-endpoint=http://minio.storage:9000"), "{args:?}");
    assert!(args.contains(&"--default-s3-credentials-secret=s3-creds"), "{args:?}");
    assert!(args.contains(&"--default-openlineage-url=http://marquez.lineage:5000"), "{args:?}");
    // The engine pods' policies are the operator's, one per job and color.
    assert_eq!(find(&d, "NetworkPolicy")[0]["metadata"]["namespace"], "sluice-system");
    assert!(args.contains(&"--engine-network-policy=true"), "{args:?}");
    assert!(args.contains(&"--engine-metrics-namespace=monitoring"), "{args:?}");

    // One replica needs no PDB; the schema refuses typos and two replicas without leader election.
    assert!(!kinds(&template(&["operator.replicas=1"]).unwrap()).contains(&"PodDisruptionBudget".to_string()));
    let err = template(&["operater.replicas=1"]).unwrap_err();
    assert!(err.contains("additional properties 'operater' not allowed"), "{err}");
    let err = template(&["operator.leaderElection.enabled=false"]).unwrap_err();
    assert!(err.contains("leaderElection"), "{err}");
    let err = template(&["operator.engineAccess=proxy"]).unwrap_err();
    assert!(err.contains("engineAccess"), "{err}");
}

/// `monitoring.dashboards` and `monitoring.prometheusRule`: the dashboards and rules of
/// `config/` (the chart's copies are checked against them by tests/prometheus.rs), with the
/// sidecar's label and the latency SLO from the values.
#[test]
fn the_chart_ships_the_grafana_dashboards_and_the_alert_rules() {
    let d = template(&[
        "monitoring.dashboards.enabled=true",
        "monitoring.dashboards.label=sluice_dashboard",
        "monitoring.dashboards.labelValue=yes",
        "monitoring.dashboards.namespace=grafana",
        "monitoring.dashboards.annotations.grafana_folder=Sluice",
        "monitoring.prometheusRule.enabled=true",
        "monitoring.prometheusRule.labels.release=kube-prometheus-stack",
    ])
    .unwrap();
    let maps = find(&d, "ConfigMap");
    assert_eq!(maps.len(), 2, "{:?}", kinds(&d));
    for (map, name) in maps.iter().zip(["sluice-job", "sluice-operator"]) {
        assert_eq!(map["metadata"]["namespace"], "grafana");
        assert_eq!(map["metadata"]["labels"]["sluice_dashboard"], "yes");
        assert_eq!(map["metadata"]["annotations"]["grafana_folder"], "Sluice");
        let file = std::fs::read_to_string(repo().join(format!("config/grafana/{name}.json"))).unwrap();
        let shipped: Value = serde_json::from_str(map["data"][format!("{name}.json")].as_str().unwrap()).unwrap();
        assert_eq!(shipped, serde_json::from_str::<Value>(&file).unwrap(), "the chart's {name} dashboard");
    }
    let rule = find(&d, "PrometheusRule");
    assert_eq!(rule.len(), 1, "{:?}", kinds(&d));
    assert_eq!(rule[0]["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule[0]["metadata"]["namespace"], "sluice-system");
    assert_eq!(rule[0]["metadata"]["labels"]["release"], "kube-prometheus-stack");
    let source = std::fs::read_to_string(repo().join("config/prometheus/sluice-alerts.yaml")).unwrap();
    let groups = |text: &str| numbers_as_f64(&serde_yaml::from_str::<Value>(text).unwrap());
    assert_eq!(numbers_as_f64(&rule[0]["spec"]), groups(&source), "the chart's rules differ from config/");

    // Another latency SLO: its threshold (a bucket bound) and objective, in every rule of it.
    let d = template(&[
        "monitoring.prometheusRule.enabled=true",
        "monitoring.prometheusRule.latencySlo.thresholdSeconds=0.5",
        "monitoring.prometheusRule.latencySlo.objective=0.999",
    ])
    .unwrap();
    let mut want = source.clone();
    let rules: Vec<&str> = source.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
    for (from, to, n) in
        [(r#"le=~"2|2.0""#, r#"le=~"0.5|0.5.0""#, 4), ("(1 - 0.99)", "(1 - 0.999)", 4), ("over 2 s", "over 0.5 s", 2)]
    {
        let found: usize = rules.iter().map(|l| l.matches(from).count()).sum();
        assert_eq!(found, n, "{from} in the rules of config/prometheus/sluice-alerts.yaml");
        want = want.replace(from, to);
    }
    assert_eq!(numbers_as_f64(&find(&d, "PrometheusRule")[0]["spec"]), groups(&want));
    assert!(find(&d, "ConfigMap").is_empty(), "dashboards without monitoring.dashboards.enabled");
    let err = template(&["monitoring.prometheusRule.latencySlo.objective=99"]).unwrap_err();
    assert!(err.contains("objective"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_chart_passes_a_server_side_dry_run() {
    let (env, client) = env().await;
    let rel = restricted_namespace(&env, &client, "dry-rel").await;
    let a = env.namespace(&client, "dry-a").await.unwrap();
    let b = env.namespace(&client, "dry-b").await.unwrap();
    for (name, sets) in [
        ("default", vec![]),
        ("namespaced", vec![format!("watchNamespaces={{{a},{b}}}"), "networkPolicy.enabled=true".into()]),
        ("dashboards", vec!["monitoring.dashboards.enabled=true".into()]),
    ] {
        let mut cmd = Command::new(helm());
        cmd.args(["template", "sluice", &chart(), "--namespace", &rel]);
        for s in &sets {
            cmd.args(["--set", s]);
        }
        let rendered = docs(&ok(&mut cmd));
        let all: Vec<&Value> = rendered.iter().collect();
        let file = write_docs(&all, name);
        // Server-side: the API server validates every object (schema, RBAC references, CRD structure).
        ok(kubectl(&env).args(["apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f"]).arg(&file));
        // The operator's pod template passes Pod Security "restricted" (enforced in `rel`).
        let dep = find(&rendered, "Deployment")[0];
        let mut spec = dep["spec"]["template"]["spec"].clone();
        spec["serviceAccountName"] = json!("default");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "operator-pod"}, "spec": spec});
        let file = write_docs(&[&pod], &format!("{name}-pod"));
        let (success, out, err) = run(kubectl(&env).args(["create", "--dry-run=server", "-n", &rel, "-f"]).arg(&file));
        assert!(success, "the operator pod does not pass Pod Security restricted:\n{out}\n{err}");
        let _ = std::fs::remove_file(file);
    }
}

fn snapshot(env: &TestEnv, namespaces: &[&str]) -> BTreeSet<String> {
    let out = ok(kubectl(env).args([
        "get",
        "all,serviceaccounts,configmaps,secrets,roles,rolebindings,poddisruptionbudgets,leases,networkpolicies,\
         clusterroles,clusterrolebindings,customresourcedefinitions",
        "-A",
        "--no-headers",
        "-o",
        "custom-columns=K:.kind,NS:.metadata.namespace,N:.metadata.name",
    ]));
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| {
            let ns = l.split(' ').nth(1).unwrap_or("");
            ns == "<none>" || namespaces.contains(&ns)
        })
        // The control plane's own cluster roles come and go with nothing of ours.
        .filter(|l| !l.contains(" system:"))
        .collect()
}

async fn pods(client: &kube::Client, ns: &str, selector: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), ns).list(&ListParams::default().labels(selector)).await.unwrap().items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_runs_a_job_upgrade_keeps_it_running_and_uninstall_leaves_only_the_crds() {
    let (env, client) = env().await;
    let rel = restricted_namespace(&env, &client, "sluice-rel").await;
    let jobs_ns = restricted_namespace(&env, &client, "helm-jobs").await;
    let s3 = env.start_s3(&client, &jobs_ns, &["sluice"]).await.unwrap();
    let before = snapshot(&env, &[&rel, &jobs_ns]);

    // Install: CRDs, RBAC and two operator pods (image sluice/operator → the binary).
    let t0 = Instant::now();
    // S3 defaults for jobs that set no spec.s3: this test's MinIO and its Secret.
    ok(helm_cmd(&env).args(["install", "sluice", &chart(), "-n", &rel, "--wait", "--timeout", "3m"]).args([
        "--set",
        &format!("s3.defaults.endpoint={}", s3.cluster_endpoint),
        "--set",
        "s3.defaults.credentialsSecret=s3-creds",
    ]));
    eprintln!("helm install → operator Deployment available: {:.1} s", t0.elapsed().as_secs_f64());
    let operators = pods(&client, &rel, "app.kubernetes.io/name=sluice-operator").await;
    assert_eq!(operators.len(), 2);
    for p in &operators {
        assert!(testenv::is_ready(p), "{} is not ready", p.name_any());
        assert_eq!(p.spec.as_ref().unwrap().security_context.as_ref().unwrap().run_as_user, Some(65532));
    }
    let sa = operators[0].spec.as_ref().unwrap().service_account_name.clone().unwrap();
    effective_rbac_matches_the_allow_list(&env, &rel, &sa, &jobs_ns);
    let names: BTreeSet<String> = operators.iter().map(|p| p.name_any()).collect();
    let leases = Api::<Lease>::namespaced(client.clone(), &rel);
    let holder = wait_for(Duration::from_secs(60), "a leader", || async {
        Ok(leases.get_opt("sluice-operator").await?.and_then(|l| l.spec?.holder_identity))
    })
    .await
    .unwrap();
    assert!(names.contains(&holder), "holder {holder} is not one of {names:?}");

    // A sample job from config/examples, pointed at this test's S3 server, in a namespace that
    // enforces Pod Security restricted: its engine pods must pass it to run at all.
    let text = std::fs::read_to_string(repo().join("config/examples/clicks.yaml")).unwrap();
    let mut job: Value = serde_yaml::from_str(&text).unwrap();
    job["metadata"]["namespace"] = json!(jobs_ns);
    // No image and no S3 settings: the chart's engine.image and s3.defaults are used.
    job["spec"].as_object_mut().unwrap().remove("image");
    job["spec"].as_object_mut().unwrap().remove("s3");
    let api = Api::<StreamJob>::namespaced(client.clone(), &jobs_ns);
    let pp = PatchParams::apply("sluice-test");
    api.patch("clicks", &pp, &Patch::Apply(&job)).await.unwrap();
    let stable = wait_object(&api, "clicks", T, "clicks Stable", |j: &StreamJob| {
        j.status.as_ref().is_some_and(|s| s.phase == Phase::Stable)
    })
    .await
    .unwrap();

    // No drift: the operator wrote nothing to spec, and the same apply changes nothing.
    for mf in stable.metadata.managed_fields.iter().flatten() {
        if mf.manager.as_deref() != Some("sluice-test") {
            let fields = serde_json::to_string(&mf.fields_v1).unwrap();
            assert!(!fields.contains("\"f:spec\""), "{:?} owns spec fields: {fields}", mf.manager);
        }
    }
    assert!(stable.spec.image.is_none() && stable.spec.s3.is_none(), "the operator wrote spec.image or spec.s3");
    let deployed = serde_json::to_value(stable.status.as_ref().unwrap().reconciled_spec.as_deref().unwrap()).unwrap();
    assert_eq!(deployed["s3"], json!({"endpoint": s3.cluster_endpoint, "credentialsSecretRef": {"name": "s3-creds"}}));
    let deployments = Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), &jobs_ns);
    let coordinator = deployments.get("clicks-coordinator").await.unwrap();
    let image = coordinator.spec.unwrap().template.spec.unwrap().containers[0].image.clone();
    assert_eq!(image.as_deref(), Some("sluice/engine:0.1.0"));
    // The engine pods' NetworkPolicy (on by default): the job's own pods, and the
    // operator of this release on the REST port. The sandbox does not enforce it.
    let policies = Api::<k8s_openapi::api::networking::v1::NetworkPolicy>::namespaced(client.clone(), &jobs_ns);
    let np = serde_json::to_value(policies.get("clicks-engine").await.unwrap().spec.unwrap()).unwrap();
    assert_eq!(np["podSelector"]["matchLabels"]["sluice.dev/job"], "clicks", "{np}");
    assert_eq!(np["ingress"][0]["from"][0]["podSelector"], np["podSelector"], "{np}");
    assert_eq!(
        np["ingress"][1]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        json!(rel)
    );
    assert_eq!(np["ingress"][1]["ports"], json!([{"port": 8081, "protocol": "TCP"}]));
    let dry = api.patch("clicks", &PatchParams { dry_run: true, ..pp.clone() }, &Patch::Apply(&job)).await.unwrap();
    assert_eq!(dry.metadata.generation, stable.metadata.generation);
    assert_eq!(serde_json::to_value(&dry.spec).unwrap(), serde_json::to_value(&stable.spec).unwrap());
    let manifest = ok(helm_cmd(&env).args(["get", "manifest", "sluice", "-n", &rel]));
    let file = std::env::temp_dir().join(format!("sluice-helm-test-{}-manifest.yaml", std::process::id()));
    std::fs::write(&file, manifest).unwrap();
    let (same, out, err) = run(kubectl(&env)
        .args(["diff", "--server-side", "--force-conflicts", "--field-manager=helm", "-f"])
        .arg(&file));
    assert!(same, "the installed chart drifted from its manifests:\n{out}\n{err}");

    // helm upgrade with a changed value rolls the operator; the job keeps its pods.
    let engine_uids = |ps: Vec<Pod>| -> BTreeSet<String> { ps.iter().map(|p| p.uid().unwrap()).collect() };
    let engines = engine_uids(pods(&client, &jobs_ns, "sluice.dev/job=clicks").await);
    assert_eq!(engines.len(), 3, "a coordinator and two workers");
    ok(helm_cmd(&env).args([
        "upgrade",
        "sluice",
        &chart(),
        "-n",
        &rel,
        "--set",
        "operator.logLevel=debug",
        "--wait",
        "--timeout",
        "3m",
    ]));
    wait_for(Duration::from_secs(60), "the old operator pods gone", || async {
        let now: BTreeSet<String> =
            pods(&client, &rel, "app.kubernetes.io/name=sluice-operator").await.iter().map(|p| p.name_any()).collect();
        Ok((now.len() == 2 && now.is_disjoint(&names)).then_some(()))
    })
    .await
    .unwrap();
    let after = api.get("clicks").await.unwrap();
    let st = after.status.unwrap();
    assert!(matches!(st.phase, Phase::Stable | Phase::Running), "{:?}", st.phase);
    assert_eq!(st.deployment, stable.status.as_ref().unwrap().deployment, "the upgrade redeployed the job");
    assert_eq!(engine_uids(pods(&client, &jobs_ns, "sluice.dev/job=clicks").await), engines);

    // Documented order: delete the jobs (the operator takes deletion savepoints), then uninstall.
    api.delete("clicks", &Default::default()).await.unwrap();
    wait_for(T, "clicks deleted", || async { Ok(api.get_opt("clicks").await?.is_none().then_some(())) }).await.unwrap();
    ok(helm_cmd(&env).args(["uninstall", "sluice", "-n", &rel, "--wait", "--timeout", "2m"]));
    let left = wait_for(T, "nothing but the documented leftovers", || async {
        let now = snapshot(&env, &[&rel, &jobs_ns]);
        let left: BTreeSet<String> = now.difference(&before).cloned().collect();
        let gone: BTreeSet<String> = before.difference(&now).cloned().collect();
        assert!(gone.is_empty(), "uninstall removed what it did not install: {gone:?}");
        Ok((left.len() == 3).then_some(left))
    })
    .await
    .unwrap();
    // Kept on purpose (README): the CRDs (helm.sh/resource-policy: keep) and the operator's
    // leader-election Lease, which the operator itself wrote.
    assert_eq!(
        left,
        BTreeSet::from([
            "CustomResourceDefinition <none> streamjobs.sluice.dev".to_string(),
            "CustomResourceDefinition <none> streamsavepoints.sluice.dev".to_string(),
            format!("Lease {rel} sluice-operator"),
        ])
    );
    let _ = std::fs::remove_file(file);
}
