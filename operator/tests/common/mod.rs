//! What the operator's cluster tests share: the test environment (a real API
//! server, the node agent running engine pods, MinIO), the operator run as a
//! process, and readers of the job's output in S3. `SLUICE_ENGINE_BIN` and
//! `SLUICE_OPERATOR_BIN` choose other binaries (the benchmarks' release builds).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub mod follow;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, CustomResourceExt};
use serde_json::json;
use sluice_e2e::node::config::ImageMapping;
use sluice_e2e::testenv::{self, TestEnv, TestS3, wait_object};
use sluice_operator::crd::{Phase, StreamJob, StreamSavepoint};

pub fn engine_bin() -> PathBuf {
    // The benchmarks run release builds.
    if let Some(bin) = std::env::var_os("SLUICE_ENGINE_BIN") {
        return PathBuf::from(bin);
    }
    // target/debug/deps/cluster-… → target/debug/sluice-engine (built by `cargo test --workspace`).
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|p| p.parent()).unwrap().join("sluice-engine");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo).args(["build", "-p", "sluice-engine", "--bin", "sluice-engine"]).status().unwrap();
        assert!(ok.success(), "building sluice-engine failed");
    }
    bin
}

pub async fn env() -> (TestEnv, kube::Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let images = vec![ImageMapping {
        image: "sluice/engine:*".into(),
        entrypoint: vec![engine_bin().display().to_string()],
        cmd: vec![],
        path: vec![],
    }];
    let opts = testenv::Options::for_external_tests(images).unwrap();
    let env = tokio::task::spawn_blocking(move || testenv::shared(&opts)).await.unwrap().unwrap();
    let client = env.client().await.unwrap();
    install_crds(&client).await.unwrap();
    (env, client)
}

pub async fn install_crds(client: &kube::Client) -> Result<()> {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    for crd in [StreamJob::crd(), StreamSavepoint::crd()] {
        let name = crd.metadata.name.clone().unwrap();
        api.patch(&name, &PatchParams::apply("sluice-test").force(), &Patch::Apply(&crd)).await?;
        wait_object(&api, &name, Duration::from_secs(30), "CRD Established", |c| {
            c.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
        })
        .await?;
    }
    Ok(())
}

pub fn job(name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "sluice.dev/v1alpha1", "kind": "StreamJob", "metadata": {"name": name}, "spec": spec})
}

pub async fn create(api: &Api<StreamJob>, obj: serde_json::Value) -> Result<StreamJob, kube::Error> {
    let obj: StreamJob = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &obj).await
}

/// The operator binary, run as a process the way the sandbox runs it.
pub struct Operator {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Operator {
    pub fn start(env: &TestEnv, ns: &str, s3_endpoint: &str, log: PathBuf) -> Operator {
        Operator::start_as(env, ns, s3_endpoint, log, None, "info")
    }

    /// An operator with its own leader-election identity (`POD_NAME`) and log filter.
    pub fn start_as(
        env: &TestEnv,
        ns: &str,
        s3_endpoint: &str,
        log: PathBuf,
        identity: Option<&str>,
        level: &str,
    ) -> Operator {
        Operator::launch(env, ns, s3_endpoint, log, identity, level, "", &[])
    }

    /// An operator with fault points set (`SLUICE_FAILPOINTS`, e.g.
    /// `operator.cutover.stopping=exit`).
    pub fn start_with_faults(env: &TestEnv, ns: &str, s3_endpoint: &str, log: PathBuf, faults: &str) -> Operator {
        Operator::launch(env, ns, s3_endpoint, log, None, "info", faults, &[])
    }

    #[allow(clippy::too_many_arguments)]
    fn launch(
        env: &TestEnv,
        ns: &str,
        s3_endpoint: &str,
        log: PathBuf,
        identity: Option<&str>,
        level: &str,
        faults: &str,
        extra: &[&str],
    ) -> Operator {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let bin = std::env::var_os("SLUICE_OPERATOR_BIN")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sluice-operator")), PathBuf::from);
        let mut cmd = Command::new(bin);
        // One identity unless a test gives another: a restarted operator takes its
        // Lease back at once, as a StatefulSet pod of the same name would.
        cmd.env("POD_NAME", identity.unwrap_or("sluice-operator-test"));
        let child = cmd
            .args(["--engine-access", "apiserver-proxy", "--namespaces", ns, "--lease-namespace", ns])
            .args(["--http-addr", &format!("127.0.0.1:{port}"), "--s3-endpoint", s3_endpoint, "--log-format", "text"])
            .args(extra)
            .env("KUBECONFIG", &env.kubeconfig)
            .env("RUST_LOG", format!("{level},kube=warn,kube_client::client::builder=off"))
            .env("SLUICE_FAILPOINTS", faults)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Operator { child, log, port }
    }

    /// The port of its /metrics, /healthz and /readyz on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn metrics(&self) -> String {
        testenv::http_get(std::net::Ipv4Addr::LOCALHOST, self.port, "/metrics").await.map(|r| r.1).unwrap_or_default()
    }

    /// Sends a signal (`STOP`, `CONT`, ...) to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([format!("-{sig}"), self.child.id().to_string()]).status().unwrap();
        assert!(ok.success(), "kill -{sig} failed");
    }

    /// The exit status, once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `uri` on the test's S3 server, from the host.
pub fn s3_storage(s3: &testenv::TestS3, uri: &str) -> sluice_storage::Storage {
    let opts = sluice_storage::S3Options {
        endpoint: Some(s3.endpoint.clone()),
        region: Some(s3.region.clone()),
        path_style: Some(true),
        access_key: Some(s3.access_key_id.clone()),
        secret_key: Some(s3.secret_access_key.clone()),
    };
    sluice_storage::Storage::open(uri, &opts).unwrap()
}

/// Ids in the committed part files under `prefix`.
pub fn committed_ids(s3: &testenv::TestS3, uri: &str) -> Result<Vec<i64>> {
    let storage = s3_storage(s3, uri);
    let mut ids = Vec::new();
    for o in storage.list("")? {
        let name = o.path.rsplit('/').next().unwrap_or_default().to_string();
        if !name.starts_with("part-") {
            continue;
        }
        let text = String::from_utf8(storage.get(&o.path)?)?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            ids.push(line.trim().parse::<i64>().with_context(|| format!("line '{line}' of {}", o.path))?);
        }
    }
    Ok(ids)
}

/// Checks the sink's commit log under `uri` (`sink.commit-log.enabled`) for one
/// writer at a time: every visible part file is named by exactly one record, and
/// the commits of each committer (a deployment and its generation) span a time
/// interval that overlaps no other committer's. Returns the committers in the
/// order they committed.
pub fn one_writer_at_a_time(s3: &testenv::TestS3, uri: &str) -> Result<Vec<Committer>> {
    let storage = s3_storage(s3, uri);
    let mut visible = BTreeSet::new();
    let mut named: BTreeMap<String, usize> = BTreeMap::new();
    // (deployment, generation) -> (first start, last end)
    let mut spans: BTreeMap<(String, u64), (u64, u64)> = BTreeMap::new();
    for o in storage.list("")? {
        if !o.path.contains('/') && o.path.starts_with("part-") {
            visible.insert(o.path.clone());
            continue;
        }
        // The filesystem sink's `COMMIT_LOG_DIR`.
        if !o.path.starts_with("_sluice-commits/") {
            continue;
        }
        let r: serde_json::Value =
            serde_json::from_slice(&storage.get(&o.path)?).with_context(|| format!("commit record {}", o.path))?;
        let field = |k: &str| r.get(k).and_then(serde_json::Value::as_u64).with_context(|| format!("{k} of {r}"));
        let who = (r["deployment"].as_str().unwrap_or_default().to_string(), field("generation")?);
        let (start, end) = (field("startMs")?, field("endMs")?);
        let span = spans.entry(who).or_insert((start, end));
        *span = (span.0.min(start), span.1.max(end));
        for f in r["files"].as_array().into_iter().flatten() {
            *named.entry(f.as_str().unwrap_or_default().to_string()).or_default() += 1;
        }
    }
    let unrecorded: Vec<_> = visible.iter().filter(|f| !named.contains_key(*f)).take(5).collect();
    if !unrecorded.is_empty() {
        bail!("committed files that no commit record names, e.g. {unrecorded:?}");
    }
    let twice: Vec<_> = named.iter().filter(|(_, n)| **n > 1).take(5).collect();
    if !twice.is_empty() {
        bail!("files committed by more than one record: {twice:?}");
    }
    let mut order: Vec<Committer> = spans
        .into_iter()
        .map(|((deployment, generation), (first_ms, last_ms))| Committer { deployment, generation, first_ms, last_ms })
        .collect();
    order.sort_by_key(|c| c.first_ms);
    for pair in order.windows(2) {
        if pair[1].first_ms <= pair[0].last_ms {
            bail!("{:?} and {:?} committed at once: two writers ({order:?})", pair[0], pair[1]);
        }
    }
    Ok(order)
}

/// A deployment and generation that committed sink output, from the first
/// commit's start to the last one's end (ms since the epoch).
#[derive(Debug, Clone)]
pub struct Committer {
    pub deployment: String,
    pub generation: u64,
    pub first_ms: u64,
    pub last_ms: u64,
}

/// The deployments of `committers` in the order they committed, each once per
/// turn: `1-blue, 1-blue, 2-green` is `1-blue, 2-green`.
pub fn turns(committers: &[Committer]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in committers {
        if out.last() != Some(&c.deployment) {
            out.push(c.deployment.clone());
        }
    }
    out
}

pub fn phase(j: &StreamJob) -> Option<Phase> {
    j.status.as_ref().map(|s| s.phase)
}

/// Every id below `rows`, once.
pub fn exactly_once(s3: &TestS3, uri: &str, rows: i64) -> Result<()> {
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

/// One test's namespace, with its own S3 server and operator.
pub struct Setup {
    pub env: TestEnv,
    pub client: kube::Client,
    pub ns: String,
    pub s3: TestS3,
    pub op: Operator,
    pub api: Api<StreamJob>,
}

pub async fn setup(name: &str) -> Setup {
    let (env, client) = env().await;
    let ns = env.namespace(&client, name).await.unwrap();
    let s3 = env.start_s3(&client, &ns, &["sluice"]).await.unwrap();
    let op = Operator::start(&env, &ns, &s3.endpoint, env.dir.join(format!("operator-{ns}.log")));
    let api = Api::<StreamJob>::namespaced(client.clone(), &ns);
    Setup { env, client, ns, s3, op, api }
}

/// [`setup`] with an OpenLineage receiver on the cluster's gateway, exposed in the
/// namespace as the Service `lineage`, and the operator's `--default-openlineage-url`
/// (the chart's `openlineage.url`) pointing at it.
pub async fn setup_with_lineage(name: &str) -> (Setup, openlineage::Receiver) {
    let (env, client) = env().await;
    let ns = env.namespace(&client, name).await.unwrap();
    let s3 = env.start_s3(&client, &ns, &["sluice"]).await.unwrap();
    let receiver = openlineage::Receiver::start(&env.dir, &env.gateway.to_string(), 0);
    sluice_e2e::cluster::expose_host_service(&client, &ns, "lineage", env.gateway, receiver.port()).await.unwrap();
    let url = format!("http://lineage.{ns}:{}", receiver.port());
    let log = env.dir.join(format!("operator-{ns}.log"));
    let op = Operator::launch(&env, &ns, &s3.endpoint, log, None, "info", "", &["--default-openlineage-url", &url]);
    let api = Api::<StreamJob>::namespaced(client.clone(), &ns);
    (Setup { env, client, ns, s3, op, api }, receiver)
}

#[path = "../../../engine/tests/common/openlineage.rs"]
pub mod openlineage;

#[path = "../../../engine/tests/common/chaos.rs"]
pub mod chaos;

impl Setup {
    pub fn fail(&self, e: anyhow::Error, job: Option<StreamJob>) -> ! {
        panic!("{e:#}\n--- job status: {:#?}\n--- operator log:\n{}", job.and_then(|j| j.status), self.op.log());
    }

    /// Fails the test with `job`'s status and the operator's log if `result` is an error.
    pub async fn check(&self, result: Result<()>, job: &str) {
        if let Err(e) = result {
            self.fail(e, self.job(job).await);
        }
    }

    /// Waits for `job` to finish, then checks that its output under `uri` holds every
    /// id below `rows` once.
    pub async fn finished_exactly_once(&self, job: &str, uri: &str, rows: i64) -> Result<()> {
        wait_object(&self.api, job, Duration::from_secs(300), "Finished", |j| phase(j) == Some(Phase::Finished))
            .await?;
        exactly_once(&self.s3, uri, rows)
    }

    pub async fn job(&self, name: &str) -> Option<StreamJob> {
        self.api.get_opt(name).await.ok().flatten()
    }

    pub async fn patch(&self, name: &str, patch: serde_json::Value) -> Result<()> {
        self.api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await?;
        Ok(())
    }

    /// The engine pods of `job`, by `app.kubernetes.io/instance` (`<job>`, `<job>-green`).
    pub async fn instances(&self, job: &str) -> Result<BTreeSet<String>> {
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

pub async fn wait_for_instances(t: &Setup, job: &str, n: usize) -> Result<BTreeSet<String>> {
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

/// Which write-ahead record a fault point follows: `operator.upgrade.<step>`
/// (in-place upgrades) or `operator.cutover.<step>` (blue-green).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Family {
    Upgrade,
    Cutover,
}

impl Family {
    fn prefix(self) -> &'static str {
        match self {
            Family::Upgrade => "operator.upgrade.",
            Family::Cutover => "operator.cutover.",
        }
    }

    /// Whether the job has a record of this family in flight.
    fn in_flight(self, j: &StreamJob) -> bool {
        j.status.as_ref().is_some_and(|s| match self {
            Family::Upgrade => s.upgrade.is_some(),
            Family::Cutover => s.cutover.is_some(),
        })
    }
}

impl Setup {
    /// Runs the operator with an `exit` fault point at each step in `steps` of
    /// `family` (right after the step is written to status, before its actions),
    /// and starts it again after each exit without the points it died at, as a
    /// `kill -9` and a new pod would. Returns the steps it died at, once it has
    /// died at all of them or the record is gone, with every color whose pods it
    /// saw meanwhile. `change` is the merge patch that starts the transition.
    pub async fn die_at_each(
        &mut self,
        job: &str,
        change: serde_json::Value,
        family: Family,
        steps: &[&str],
    ) -> Result<(Vec<String>, BTreeSet<String>)> {
        let log = self.env.dir.join(format!("operator-{}.log", self.ns));
        let mut left: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
        let mut died = Vec::new();
        let faults =
            |left: &[String]| left.iter().map(|s| format!("{}{s}=exit", family.prefix())).collect::<Vec<_>>().join(";");
        self.op.kill();
        self.op = Operator::start_with_faults(&self.env, &self.ns, &self.s3.endpoint, log.clone(), &faults(&left));
        self.patch(job, change).await?;
        let mut colors = BTreeSet::new();
        let mut seen = false;
        let deadline = Instant::now() + Duration::from_secs(240);
        let marker = format!("fault point `{}", family.prefix());
        while !left.is_empty() {
            if self.op.exited().is_some() {
                let text = self.op.log();
                let Some(at) = text.rfind(&marker) else {
                    bail!("the operator exited without reaching a fault point");
                };
                let name = text[at + marker.len()..].split('`').next().unwrap_or_default().to_string();
                eprintln!("the operator died at {family:?} step {name}; starting it again");
                left.retain(|s| *s != name);
                died.push(name);
                self.op =
                    Operator::start_with_faults(&self.env, &self.ns, &self.s3.endpoint, log.clone(), &faults(&left));
                continue;
            }
            let in_flight = self.job(job).await.is_some_and(|j| family.in_flight(&j));
            if seen && !in_flight {
                break;
            }
            seen |= in_flight;
            if in_flight {
                colors.extend(self.instances(job).await?);
            }
            if Instant::now() > deadline {
                bail!("the operator did not reach {family:?} steps {left:?}; it died at {died:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok((died, colors))
    }
}

/// A bounded sequence at `rate` rows per second into `out`, from source table `src`.
pub fn sql(rows: i64, rate: i64, src: &str, out: &str) -> String {
    format!(
        "CREATE TABLE {src} (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '{rate}', \
         'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{}');\n\
         CREATE TABLE out (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv', \
         'sink.commit-log.enabled' = 'true');\n\
         INSERT INTO out SELECT id FROM {src};\n",
        rows - 1
    )
}
