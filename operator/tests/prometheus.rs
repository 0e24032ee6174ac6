//! The Grafana dashboards (`config/grafana/`) and the Prometheus rules
//! (`config/prometheus/`) against the real tools: `promtool` and a real Prometheus
//! server, both the pinned build of `scripts/prometheus.sh`.
//!
//! - `promtool check rules` and `promtool test rules` pass, and the unit tests cover
//!   every alert both firing and not firing; every alert has a severity, a summary and a
//!   description that name its job (and its vertex, when it is per vertex).
//! - The chart's copies (`charts/sluice/files/`) are the files of `config/`
//!   (`UPDATE_GOLDEN=1` copies them).
//! - The dashboards are Grafana dashboards on a `${datasource}` variable.
//! - A real Prometheus (127.0.0.1 only, storage in a temporary directory, 1 s scrapes
//!   and rule evaluations, the rule file loaded) scrapes a StreamJob's coordinator and
//!   the operator in the operator cluster harness, and every PromQL expression of the
//!   dashboards and the rules returns data through its HTTP API. The job makes every
//!   series exist: a throttled sink (backpressure, a growing source lag, an autoscaler
//!   recommendation), a keyed event-time window (state, watermarks, event-time lag),
//!   checkpoints to S3; a second job is suspended (a transition) and a third has a pod
//!   template that cannot be built (reconcile errors).
//!
//! How an expression is checked: Prometheus parses it (`/api/v1/parse_query`, the AST
//! its UI's tree view uses), and the test evaluates
//! 1. every metric selector in it on its own, so that a misspelt metric or label value
//!    is named even inside an `or`;
//! 2. a dashboard's expression as it is (Grafana's `$job` is the job's id, `$vertex`
//!    is `.*` and `$__rate_interval` is 15 s);
//! 3. a rule's expression with each comparison against a constant replaced by its other
//!    side (`x > 0.5` becomes `x`; an alert's threshold is not crossed in a healthy run)
//!    and `absent(x)` by `x`, split at the top-level `or` and `unless` (each side must
//!    have data of its own: `a unless b` is empty exactly when `b` has data).
//!
//! An expression without data fails the test with its file, its panel or rule, and
//! the expression. Behind the `cluster-tests` feature, as `lifecycle.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "prometheus/promql.rs"]
mod promql;
#[path = "prometheus/server.rs"]
mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::{create, job, phase, setup};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use promql::{parts, print, selectors, strings};
use serde_json::{Value, json};
use server::{Prometheus, encode};
use sluice_e2e::testenv::{self, wait_object};
use sluice_operator::crd::Phase;

fn repo() -> PathBuf {
    sluice_e2e::repo_root()
}

/// `prometheus` and `promtool`, built once by `scripts/prometheus.sh`.
fn binaries() -> (PathBuf, PathBuf) {
    let script = repo().join("scripts/prometheus.sh");
    let out = Command::new("bash").arg(&script).arg("install").output().unwrap();
    assert!(out.status.success(), "scripts/prometheus.sh install: {}", String::from_utf8_lossy(&out.stderr));
    let path = |what: &str| {
        let out = Command::new("bash").arg(&script).arg(what).output().unwrap();
        assert!(out.status.success(), "scripts/prometheus.sh {what} failed");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    };
    (path("path"), path("promtool-path"))
}

const DASHBOARDS: [&str; 2] = ["config/grafana/sluice-job.json", "config/grafana/sluice-operator.json"];
const RULES: &str = "config/prometheus/sluice-alerts.yaml";
const RULE_TESTS: &str = "config/prometheus/sluice-alerts.test.yaml";

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Value {
    serde_yaml::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn dashboard(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A dashboard's panels, those inside rows included.
fn panels(d: &Value) -> Vec<&Value> {
    fn walk<'a>(ps: &'a Value, out: &mut Vec<&'a Value>) {
        for p in ps.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    out
}

/// The rules of the rule file: (group, rule).
fn rules() -> Vec<(String, Value)> {
    let file = yaml(RULES);
    let mut out = Vec::new();
    for g in file["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            out.push((g["name"].as_str().unwrap().to_string(), r.clone()));
        }
    }
    out
}

fn rule_name(r: &Value) -> String {
    r["alert"].as_str().or(r["record"].as_str()).unwrap_or_default().to_string()
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn promtool_checks_the_rules_and_their_unit_tests_pass() {
    let (_, promtool) = binaries();
    let dir = repo().join("config/prometheus");
    let (ok, out) = run(Command::new(&promtool).args(["check", "rules", "sluice-alerts.yaml"]).current_dir(&dir));
    assert!(ok, "promtool check rules:\n{out}");
    let n = rules().len();
    assert!(out.contains(&format!("SUCCESS: {n} rules found")), "promtool check rules:\n{out}");
    let (ok, out) = run(Command::new(&promtool).args(["test", "rules", "sluice-alerts.test.yaml"]).current_dir(&dir));
    assert!(ok, "promtool test rules:\n{out}");
    eprintln!("promtool check rules: {n} rules; promtool test rules:\n{out}");
}

#[test]
fn every_alert_is_labelled_annotated_and_unit_tested_firing_and_not_firing() {
    let tests = yaml(RULE_TESTS);
    // alertname -> (a case that fires, a case that does not)
    let mut cases: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for t in tests["tests"].as_array().unwrap() {
        for a in t["alert_rule_test"].as_array().into_iter().flatten() {
            let name = a["alertname"].as_str().unwrap().to_string();
            let fires = a["exp_alerts"].as_array().is_some_and(|e| !e.is_empty());
            let c = cases.entry(name).or_default();
            if fires {
                c.0 = true;
            } else {
                c.1 = true;
            }
        }
    }
    let mut problems = Vec::new();
    let mut alerts = 0;
    for (group, r) in rules() {
        let Some(name) = r["alert"].as_str() else { continue };
        alerts += 1;
        let severity = r["labels"]["severity"].as_str().unwrap_or_default();
        if !["warning", "critical"].contains(&severity) {
            problems.push(format!("{name}: severity '{severity}' (want warning or critical)"));
        }
        let summary = r["annotations"]["summary"].as_str().unwrap_or_default();
        let description = r["annotations"]["description"].as_str().unwrap_or_default();
        if summary.is_empty() || description.is_empty() {
            problems.push(format!("{name}: no summary or description"));
        }
        let expr = r["expr"].as_str().unwrap_or_default();
        // The engine's alerts are per job, some per vertex: their text names them.
        if group != "sluice-operator" {
            for (label, needed) in [("job", true), ("vertex", expr.contains("vertex"))] {
                let want = format!("{{{{ $labels.{label} }}}}");
                if needed && !(summary.contains(&want) && description.contains(&want)) {
                    problems.push(format!("{name}: its summary and description must name {want}"));
                }
            }
        }
        match cases.get(name) {
            Some((true, true)) => {}
            Some((fires, _)) => problems.push(format!(
                "{name}: {RULE_TESTS} has no case where it {}",
                if *fires { "does not fire" } else { "fires" }
            )),
            None => problems.push(format!("{name}: not in {RULE_TESTS}")),
        }
    }
    assert!(alerts >= 10, "only {alerts} alerts in {RULES}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The chart cannot read files outside its directory: it embeds copies, which must be
/// the files of `config/` (`UPDATE_GOLDEN=1` copies them).
#[test]
fn the_charts_copies_are_the_dashboards_and_rules_of_config() {
    let pairs = [
        (DASHBOARDS[0], "charts/sluice/files/grafana/sluice-job.json"),
        (DASHBOARDS[1], "charts/sluice/files/grafana/sluice-operator.json"),
        (RULES, "charts/sluice/files/prometheus/sluice-alerts.yaml"),
    ];
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for (source, copy) in pairs {
        let want = read(source);
        let path = repo().join(copy);
        if update {
            std::fs::write(&path, &want).unwrap();
        }
        if std::fs::read_to_string(&path).unwrap_or_default() != want {
            stale.push(format!("{copy} differs from {source}"));
        }
    }
    assert!(stale.is_empty(), "{}; copy them (or run with UPDATE_GOLDEN=1)", stale.join("; "));
}

#[test]
fn the_dashboards_query_a_prometheus_datasource_variable() {
    let mut uids = BTreeSet::new();
    for rel in DASHBOARDS {
        let d = dashboard(rel);
        assert!(d["schemaVersion"].as_i64().is_some_and(|v| v >= 39), "{rel}: schemaVersion {}", d["schemaVersion"]);
        assert!(uids.insert(d["uid"].as_str().unwrap().to_string()), "{rel}: a second dashboard with its uid");
        let vars = d["templating"]["list"].as_array().unwrap();
        let var = |name: &str| vars.iter().find(|v| v["name"] == name);
        let ds = var("datasource").unwrap_or_else(|| panic!("{rel}: no datasource variable"));
        assert_eq!((ds["type"].as_str(), ds["query"].as_str()), (Some("datasource"), Some("prometheus")), "{rel}");
        if rel.ends_with("sluice-job.json") {
            let job = var("job").unwrap_or_else(|| panic!("{rel}: no job variable"));
            assert_eq!(job["definition"], "label_values(sluice_job_running, job)", "{rel}");
        }
        let mut ids = BTreeSet::new();
        let mut n = 0;
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or_default();
            assert!(ids.insert(p["id"].as_i64().unwrap()), "{rel}: panel id {} twice", p["id"]);
            if p["type"] == "row" {
                continue;
            }
            assert!(!title.is_empty() && p["description"].as_str().is_some_and(|s| !s.is_empty()), "{rel}: {p}");
            let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{rel}: panel '{title}' has no targets"));
            for ds in std::iter::once(&p["datasource"]).chain(targets.iter().map(|t| &t["datasource"])) {
                assert_eq!(ds, &json!({"type": "prometheus", "uid": "${datasource}"}), "{rel}: panel '{title}'");
            }
            for t in targets {
                assert!(
                    t["expr"].as_str().is_some_and(|e| !e.is_empty()),
                    "{rel}: panel '{title}': a target without expr"
                );
                n += 1;
            }
        }
        assert!(n >= 10, "{rel}: only {n} queries");
    }
}

// ------------------------------------------------------------------ the real server

/// One query to check: where it comes from, and the PromQL.
#[derive(Debug, Clone)]
struct Query {
    file: &'static str,
    /// `panel 'Title'`, `alert Name`, `record name`, `variable job`.
    what: String,
    expr: String,
    rule: bool,
}

/// Every query of the dashboards (with Grafana's variables substituted) and the rules.
fn queries(job_id: &str) -> (Vec<Query>, Vec<(String, String, String)>) {
    let grafana = |e: &str| e.replace("$__rate_interval", "15s").replace("$job", job_id).replace("$vertex", ".*");
    let mut out = Vec::new();
    let mut variables = Vec::new();
    for rel in DASHBOARDS {
        let d = dashboard(rel);
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                let what = format!("panel '{}' ({})", p["title"].as_str().unwrap_or_default(), t["refId"]);
                out.push(Query { file: rel, what, expr: grafana(t["expr"].as_str().unwrap()), rule: false });
            }
        }
        for v in d["templating"]["list"].as_array().into_iter().flatten().filter(|v| v["type"] == "query") {
            variables.push((
                rel.to_string(),
                v["name"].as_str().unwrap().to_string(),
                grafana(v["definition"].as_str().unwrap()),
            ));
        }
    }
    for (_, r) in rules() {
        let kind = if r["alert"].is_string() { "alert" } else { "record" };
        let what = format!("{kind} {}", rule_name(&r));
        out.push(Query { file: RULES, what, expr: r["expr"].as_str().unwrap().to_string(), rule: true });
    }
    (out, variables)
}

/// What is wrong with one query now (`None`: it returns data).
async fn check(p: &Prometheus, q: &Query) -> Option<String> {
    let fail = |msg: String| Some(format!("{} {}: {msg}\n    expr: {}", q.file, q.what, q.expr.replace('\n', " ")));
    let ast = match p.parse(&q.expr).await {
        Ok(a) => a,
        Err(e) => return fail(format!("Prometheus cannot parse it: {e:#}")),
    };
    let mut sels = BTreeSet::new();
    selectors(&ast, &mut sels);
    for s in sels {
        match p.query(&s).await {
            Ok(r) if !r.is_empty() => {}
            Ok(_) => return fail(format!("its selector {s} matches no series")),
            Err(e) => return fail(format!("its selector {s}: {e:#}")),
        }
    }
    let checked: Vec<String> = if q.rule { parts(&ast).iter().map(print).collect() } else { vec![q.expr.clone()] };
    for e in checked {
        match p.query(&e).await {
            Ok(r) if !r.is_empty() => {}
            Ok(_) => return fail(format!("no data from {e}")),
            Err(e2) => return fail(format!("{e}: {e2:#}")),
        }
    }
    None
}

/// A Grafana `label_values(selector, label)` variable: its values.
async fn label_values(p: &Prometheus, definition: &str) -> Result<Vec<String>> {
    let inner = definition
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
        .with_context(|| format!("not label_values(...): {definition}"))?;
    let (sel, label) = inner.rsplit_once(',').with_context(|| format!("no label in {definition}"))?;
    let data = p.api(&format!("/api/v1/label/{}/values?match[]={}", label.trim(), encode(sel.trim()))).await?;
    Ok(strings(&data))
}

/// Scrapes of the operator and the job's coordinator every second, with `honor_labels`
/// (the chart's monitors set it: the engine's `job` label is the job's id), the rule file
/// evaluated every second. JSON is YAML.
fn prometheus_config(operator_port: u16, coordinator: std::net::Ipv4Addr, ns: &str) -> String {
    let scrape = |name: &str, target: String| {
        json!({"job_name": name, "honor_labels": true,
               "static_configs": [{"targets": [target], "labels": {"namespace": ns}}]})
    };
    json!({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [repo().join(RULES)],
        "scrape_configs": [
            scrape("sluice-operator", format!("127.0.0.1:{operator_port}")),
            scrape("sluice-engine", format!("{coordinator}:8081")),
        ],
    })
    .to_string()
}

/// Problems of the rules as the server loaded them: a count that is not the file's, or
/// a rule whose evaluation fails.
async fn loaded_rules(prom: &Prometheus) -> Result<Vec<String>> {
    let data = prom.api("/api/v1/rules").await?;
    let groups = data["groups"].as_array().cloned().unwrap_or_default();
    let loaded: Vec<&Value> = groups.iter().flat_map(|g| g["rules"].as_array().into_iter().flatten()).collect();
    let mut problems = Vec::new();
    if loaded.len() != rules().len() {
        problems.push(format!("Prometheus loaded {} rules of {RULES}, not {}", loaded.len(), rules().len()));
    }
    for r in loaded.iter().filter(|r| r["health"] == "err") {
        problems.push(format!("{RULES} {}: Prometheus evaluates it with an error: {}", r["name"], r["lastError"]));
    }
    Ok(problems)
}

/// The job: `src` (a rate-limited sequence with an event time and a random key) into a
/// sink throttled below that rate, its own vertex (backpressure, lag, a scale-up to
/// recommend), and into a keyed one-second window per key (state, event-time lag).
fn sql() -> &'static str {
    "CREATE TABLE src (id BIGINT, k BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
     WITH ('connector' = 'datagen', 'rows-per-second' = '200', 'scan.parallelism' = '2', \
     'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '100000000', \
     'fields.k.kind' = 'random', 'fields.k.min' = '0', 'fields.k.max' = '20');\n\
     CREATE TABLE slow (id BIGINT) WITH ('connector' = 'blackhole', 'sink.throttle' = '80', 'sink.parallelism' = '1');\n\
     CREATE TABLE per_key (k BIGINT, window_end TIMESTAMP(3), c BIGINT) WITH ('connector' = 'blackhole');\n\
     INSERT INTO slow SELECT id FROM src;\n\
     INSERT INTO per_key SELECT k, window_end, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) \
     GROUP BY k, window_start, window_end;\n"
}

fn tiny_sql() -> &'static str {
    "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5', \
     'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '100000000');\n\
     CREATE TABLE out (id BIGINT) WITH ('connector' = 'blackhole');\n\
     INSERT INTO out SELECT id FROM src;\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_rule_query_returns_data_from_a_real_prometheus() {
    let (prometheus, _) = tokio::task::spawn_blocking(binaries).await.unwrap();
    let t = setup("prom").await;
    let started = Instant::now();
    let s3 = json!({"endpoint": t.s3.cluster_endpoint, "credentialsSecretRef": {"name": "s3-creds"}});
    let spec = |sql: &str, checkpoints: &str| {
        json!({
            "image": "sluice/engine:test",
            "sql": sql,
            "parallelism": 2,
            "upgradeMode": "savepoint",
            "checkpointing": {"interval": "1s", "storage": format!("s3://sluice/{checkpoints}")},
            // Small batches: a barrier waits less behind the throttled sink's queue.
            "config": {"execution.batch-size": "20"},
            "savepoints": {"directory": "s3://sluice/savepoints"},
            "upgrade": {"stabilizationPeriod": "1s", "savepointTimeout": "1m"},
            "s3": s3,
        })
    };
    let mut main = spec(sql(), "checkpoints");
    // Recommend mode: it decides (the series of a decision), and changes nothing. A
    // decision needs 3 intervals of samples (every 10 s) in the window: 35 s is the least.
    main["autoscaler"] =
        json!({"enabled": true, "mode": "recommend", "metricsWindow": "35s", "stabilizationPeriod": "0s"});
    create(&t.api, job("metrics", main)).await.unwrap();
    let mut tiny = spec(tiny_sql(), "tiny");
    tiny["parallelism"] = json!(1);
    create(&t.api, job("tiny", tiny)).await.unwrap();
    // A pod template that does not build: the operator's reconciles of it fail.
    let mut broken = spec(tiny_sql(), "broken");
    broken["podTemplate"] = json!({"spec": {"containers": "not a list"}});
    create(&t.api, job("broken", broken)).await.unwrap();

    let result = async {
        let running = wait_object(&t.api, "metrics", Duration::from_secs(120), "metrics RUNNING", |j| {
            j.status.as_ref().is_some_and(|s| s.job_state.as_deref() == Some("RUNNING"))
        })
        .await?;
        let job_id = running.metadata.uid.clone().unwrap_or_default();
        eprintln!("{} s: the job is running", started.elapsed().as_secs());
        let pods = Api::<Pod>::namespaced(t.client.clone(), &t.ns)
            .list(&ListParams::default().labels("sluice.dev/job=metrics,sluice.dev/role=coordinator"))
            .await?;
        let ip = pods.items.iter().find_map(testenv::pod_ip).context("the coordinator pod has no IP")?;
        let config = prometheus_config(t.op.port(), ip, &t.ns);
        let prom = Prometheus::start(&prometheus, &config, t.env.dir.join(format!("prometheus-{}.log", t.ns)));
        let scraping = Instant::now();
        testenv::wait_for(Duration::from_secs(30), "Prometheus ready", || async {
            Ok(prom.get("/-/ready").await.ok().filter(|(code, _)| *code == 200).map(|_| ()))
        })
        .await
        .with_context(|| format!("Prometheus did not get ready; its log:\n{}", prom.log()))?;

        eprintln!("{} s: Prometheus is ready", started.elapsed().as_secs());
        // A transition: the tiny job suspended (a savepoint, then its pods go).
        wait_object(&t.api, "tiny", Duration::from_secs(60), "tiny Stable", |j| phase(j) == Some(Phase::Stable))
            .await?;
        t.patch("tiny", json!({"spec": {"state": "suspended"}})).await?;
        wait_object(&t.api, "tiny", Duration::from_secs(60), "tiny Suspended", |j| phase(j) == Some(Phase::Suspended))
            .await?;

        eprintln!("{} s: the tiny job is suspended", started.elapsed().as_secs());
        let (queries, variables) = queries(&job_id);
        let deadline = Instant::now() + Duration::from_secs(120);
        let problems = loop {
            let mut problems = Vec::new();
            for q in &queries {
                if let Some(p) = check(&prom, q).await {
                    problems.push(p);
                }
            }
            for (file, name, def) in &variables {
                match label_values(&prom, def).await {
                    Ok(v) if name == "job" && !v.contains(&job_id) => {
                        problems.push(format!("{file} variable {name}: {def} gives {v:?}, not the job {job_id}"))
                    }
                    Ok(v) if v.is_empty() => problems.push(format!("{file} variable {name}: {def} has no values")),
                    Ok(_) => {}
                    Err(e) => problems.push(format!("{file} variable {name}: {def}: {e:#}")),
                }
            }
            // The server loaded the rule file, and evaluates every rule without error.
            problems.extend(loaded_rules(&prom).await?);
            if problems.is_empty() || Instant::now() > deadline {
                break problems;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        let n = queries.len() + variables.len();
        if !problems.is_empty() {
            bail!(
                "{} of {n} queries return nothing after {} s of scrapes:\n{}\n--- Prometheus log:\n{}",
                problems.len(),
                scraping.elapsed().as_secs(),
                problems.join("\n"),
                prom.log()
            );
        }
        eprintln!(
            "all {n} queries of the dashboards and rules return data ({} s of scrapes; {} s since the setup)",
            scraping.elapsed().as_secs(),
            started.elapsed().as_secs()
        );
        Ok(())
    }
    .await;
    t.check(result, "metrics").await;
}
