#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The REST server against its contract, `engine/openapi.json`: every route is
//! documented, every documented route answers, and every JSON response matches
//! its schema (required fields present, no undocumented fields, right types).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_engine::config::Config;
use sluice_engine::local::{compile_text, prepare};
use sluice_engine::rest::{self, OPENAPI, ROUTES};
use sluice_engine::runtime::{JobState, JobStatus, execute};

const JOB: &str = "
CREATE TABLE src (id BIGINT, ts AS TO_TIMESTAMP_LTZ(id * 10, 3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'datagen', 'rows-per-second' = '2000', 'fields.id.kind' = 'sequence',
        'fields.id.start' = '0', 'fields.id.end' = '100000000');
CREATE TABLE out1 (window_start TIMESTAMP(3), cnt BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out1 SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY window_start, window_end;
";

fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    http_body(addr, method, path, "")
}

fn http_body(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let (status, _, body) = exchange(addr, method, path, "", body);
    (status, body)
}

/// One request with extra header lines; the status, the headers and the body.
fn exchange(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read");
    let status = buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status");
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let path = r.trim_start_matches("#/").split('/').fold(doc, |v, k| &v[k]);
            resolve(doc, path)
        }
        None => schema,
    }
}

fn check(doc: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) {
        let fits: Vec<Vec<String>> = alternatives
            .iter()
            .map(|a| {
                let mut e = Vec::new();
                check(doc, a, v, at, &mut e);
                e
            })
            .collect();
        if fits.iter().filter(|e| e.is_empty()).count() != 1 {
            errors.push(format!("{at}: {v} fits not exactly one of oneOf: {fits:?}"));
        }
        return;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let ok = types.is_empty()
        || types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        });
    if !ok {
        errors.push(format!("{at}: {v} is not {types:?}"));
        return;
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errors.push(format!("{at}: {v} is not one of {e:?}"));
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for r in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if let Some(k) = r.as_str()
                && !obj.contains_key(k)
            {
                errors.push(format!("{at}: missing required field {k}"));
            }
        }
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, val, &format!("{at}.{k}"), errors),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{at}: undocumented field {k}"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"), errors);
        }
    }
}

#[test]
fn with_a_token_only_reads_are_open() {
    let job = compile_text(JOB, "rest.sql").expect("compiles");
    let (graph, _) = prepare(&job, &Config::default(), "auth-test").expect("prepares");
    let state = JobState::new("auth-test", "rest.sql", &graph);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("token");
    std::fs::write(&file, "s3cr3t-t0ken\n").expect("write");
    let token = rest::RestToken::from_file(&file).expect("reads the token");
    let server = rest::serve("127.0.0.1:0", state.clone(), token).expect("serves");
    for (path, body) in [("/v1/job/cancel", ""), ("/v1/job/savepoints", "{\"stop\":false}"), ("/v1/job/activate", "{}")]
    {
        for headers in [
            "",
            "Authorization: Bearer wrong\r\n",
            "Authorization: s3cr3t-t0ken\r\n",
            "Authorization: Bearer s3cr3t-t0ke\r\n",
        ] {
            let (status, head, body) = exchange(server.addr, "POST", path, headers, body);
            assert_eq!(status, 401, "POST {path} with {headers:?}: {body}");
            assert!(head.contains("www-authenticate: bearer"), "{head}");
            assert!(body.contains("needs the job's REST token") && !body.contains("s3cr3t"), "{body}");
        }
    }
    assert!(!state.user_cancel.load(std::sync::atomic::Ordering::SeqCst), "nothing got through");
    // Savepoints go only where the job's configuration allows, and never out by `..`.
    let allowed = dir.path().join("sp").display().to_string();
    state.restrict_savepoints_to(vec![allowed.clone()]);
    for target in ["/etc".to_string(), format!("{allowed}/../elsewhere"), "relative/dir".to_string()] {
        let body = format!("{{\"targetDirectory\":\"{target}\",\"stop\":false}}");
        let auth = "Authorization: Bearer s3cr3t-t0ken\r\n";
        let (status, _, answer) = exchange(server.addr, "POST", "/v1/job/savepoints", auth, &body);
        assert_eq!(status, 400, "{target}: {answer}");
        assert!(answer.contains("targetDirectory") && answer.contains(&target), "{answer}");
    }
    // Reads stay open, for probes and Prometheus.
    for path in ["/healthz", "/metrics", "/v1/job", "/v1/job/checkpoints", "/v1/openapi.json"] {
        assert_eq!(http(server.addr, "GET", path).0, 200, "GET {path}");
    }
    let (status, _, body) = exchange(
        server.addr,
        "POST",
        "/v1/job/savepoints",
        "X-Sluice-Rest-Token: s3cr3t-t0ken\r\n",
        "{\"stop\":false}",
    );
    assert_ne!(status, 401, "the API server proxy's header: {body}");
    let (status, _, body) =
        exchange(server.addr, "POST", "/v1/job/cancel", "Authorization: Bearer s3cr3t-t0ken\r\n", "");
    assert!(status == 202 || status == 409, "{status} {body}");
    assert!(state.user_cancel.load(std::sync::atomic::Ordering::SeqCst), "the token lets the cancel through");

    std::fs::write(&file, " \n").expect("write");
    let err = rest::RestToken::from_file(&file).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("--rest-token-file") && err.contains("empty"), "{err}");
    let err = rest::RestToken::from_file(&dir.path().join("missing")).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("missing") && err.contains("cannot read"), "{err}");
}

#[test]
fn server_matches_openapi_document() {
    let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    // Every served route is documented and every documented route is served.
    let mut documented: Vec<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object().into_iter().flatten().map(move |(m, _)| format!("{} {p}", m.to_uppercase()))
        })
        .collect();
    documented.sort();
    let mut served: Vec<String> = ROUTES.iter().map(|s| s.to_string()).collect();
    served.sort();
    assert_eq!(documented, served, "routes and openapi.json disagree");

    let job = compile_text(JOB, "rest.sql").expect("compiles");
    let ckpt = tempfile::tempdir().expect("tempdir");
    let config = Config {
        values: [
            ("execution.checkpointing.dir".to_string(), ckpt.path().display().to_string()),
            ("execution.checkpointing.interval".to_string(), "200ms".to_string()),
        ]
        .into(),
    };
    let (graph, options) = prepare(&job, &config, "rest-test").expect("prepares");
    let state = JobState::new("rest-test", "rest.sql", &graph);
    let server = rest::serve("127.0.0.1:0", state.clone(), rest::RestToken::none()).expect("serves");
    let runner = {
        let state = state.clone();
        std::thread::spawn(move || execute(&graph, &state, &options))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while state.status() != JobStatus::Running && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the rate sampler take a reading, and a checkpoint complete.
    std::thread::sleep(Duration::from_millis(2200));

    // A savepoint, with a caller-chosen trigger id: the second call is the same savepoint.
    let sp_dir = ckpt.path().join("sp").display().to_string();
    let request = format!("{{\"triggerId\":\"t-1\",\"targetDirectory\":\"{sp_dir}\",\"stop\":false}}");
    let mut errors = Vec::new();
    for _ in 0..2 {
        let (status, body) = http_body(server.addr, "POST", "/v1/job/savepoints", &request);
        assert_eq!(status, 202, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["triggerId"], "t-1");
        let schema =
            &doc["paths"]["/v1/job/savepoints"]["post"]["responses"]["202"]["content"]["application/json"]["schema"];
        check(&doc, schema, &v, "POST /v1/job/savepoints", &mut errors);
    }
    let (status, body) = http_body(server.addr, "POST", "/v1/job/savepoints", "{\"stop\": \"yes\"}");
    assert_eq!(status, 400, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let (code, body) = http(server.addr, "GET", "/v1/job/savepoints/t-1");
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        let schema = &doc["paths"]["/v1/job/savepoints/{triggerId}"]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"];
        check(&doc, schema, &v, "GET /v1/job/savepoints/t-1", &mut errors);
        if v["status"] != "IN_PROGRESS" || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status["status"], "COMPLETED", "{status}");
    assert!(status["location"].as_str().is_some_and(|l| l.ends_with("savepoint-t-1")), "{status}");
    let (code, _) = http(server.addr, "GET", "/v1/job/savepoints/unknown");
    assert_eq!(code, 404);

    // Only a standby coordinator can be activated.
    let (status, body) = http_body(server.addr, "POST", "/v1/job/activate", r#"{"restore":"latest"}"#);
    assert_eq!(status, 409, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert!(v["error"].as_str().is_some_and(|e| e.contains("not in standby")), "{v}");
    let schema = &doc["paths"]["/v1/job/activate"]["post"]["responses"]["409"]["content"]["application/json"]["schema"];
    check(&doc, schema, &v, "POST /v1/job/activate", &mut errors);
    let (status, body) = http_body(server.addr, "POST", "/v1/job/activate", r#"{"restore":""}"#);
    assert_eq!(status, 400, "{body}");

    for route in ROUTES.iter().filter(|r| r.starts_with("GET ") && !r.contains('{')) {
        let path = &route[4..];
        let (status, body) = http(server.addr, "GET", path);
        assert_eq!(status, 200, "{route}: {body}");
        let op = &doc["paths"][path]["get"]["responses"]["200"]["content"];
        if let Some(schema) = op.get("application/json").map(|c| &c["schema"]) {
            let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{route}: not JSON: {e}"));
            check(&doc, schema, &v, path, &mut errors);
        }
    }
    assert!(errors.is_empty(), "responses drift from openapi.json:\n{}", errors.join("\n"));

    let (_, job) = http(server.addr, "GET", "/v1/job");
    let job: Value = serde_json::from_str(&job).expect("json");
    assert_eq!(job["state"], "RUNNING");
    assert!(job["lastCompletedCheckpoint"]["id"].as_u64().is_some(), "{job}");
    let (_, history) = http(server.addr, "GET", "/v1/job/checkpoints");
    let history: Value = serde_json::from_str(&history).expect("json");
    assert!(history["counts"]["completed"].as_u64().unwrap_or(0) >= 2, "{history}");
    assert!(history["history"].as_array().is_some_and(|h| h.iter().any(|c| c["kind"] == "savepoint")), "{history}");
    assert_eq!(job["vertices"].as_array().map(Vec::len), Some(2));
    // What the autoscaler needs of the graph: edges, keyed state, splits.
    assert_eq!(job["maxParallelism"], 128);
    assert_eq!(job["vertices"][0]["inputs"], serde_json::json!([]));
    assert_eq!(job["vertices"][1]["inputs"], serde_json::json!([{"vertex": 0, "partitioning": "GLOBAL"}]));
    assert_eq!(
        (&job["vertices"][0]["keyed"], &job["vertices"][1]["keyed"]),
        (&Value::Bool(false), &Value::Bool(false))
    );
    assert!(job["vertices"][0]["splits"].is_null(), "datagen splits its stream at any parallelism: {job}");
    let (_, m) = http(server.addr, "GET", "/v1/job/metrics");
    let m: Value = serde_json::from_str(&m).expect("json");
    assert_eq!(m["vertices"][1]["uid"], job["vertices"][1]["uid"]);
    let source = &m["vertices"][0];
    assert!(source["recordsOut"].as_u64().unwrap_or(0) > 0, "{source}");
    assert!(source["recordsOutPerSecond"].as_f64().unwrap_or(0.0) > 0.0, "{source}");
    // A rate-limited datagen knows its lag (rows behind its schedule); other vertices have none.
    assert!(source["lag"].is_u64(), "{source}");
    assert!(m["vertices"][1]["lag"].is_null(), "{m}");
    assert!(m["vertices"][1]["watermark"].is_string(), "{m}");
    // When records first and last came in, as RFC 3339 times, first ≤ last.
    let at = |v: &Value, k: &str| v[k].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let sink = &m["vertices"][1];
    let (first, last) = (at(sink, "firstRecordAt"), at(sink, "lastRecordAt"));
    assert!(first.is_some() && first <= last, "{sink}");
    let (_, prom) = http(server.addr, "GET", "/metrics");
    assert!(prom.contains("sluice_records_in_total{job=\"rest-test\",vertex=\"1\",subtask=\"0\"}"), "{prom}");

    let (status, _) = http(server.addr, "POST", "/v1/job/cancel");
    assert_eq!(status, 202);
    runner.join().expect("runner").expect("cancel is not an error");
    assert_eq!(state.status(), JobStatus::Canceled);
    let (status, _) = http(server.addr, "POST", "/v1/job/cancel");
    assert_eq!(status, 409);
}

/// The figures the web UI and the dashboards read, from a real run of the
/// engine's binary: a keyed window behind a hash exchange, so latency markers
/// cross a channel; a fault point that fails one commit, so the job restarts once.
#[test]
fn a_running_job_reports_latency_cost_state_history_and_its_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sql = dir.path().join("observed.sql");
    std::fs::write(
        &sql,
        "SET 'execution.checkpointing.interval' = '300ms';
SET 'restart-strategy.type' = 'fixed-delay';
SET 'restart-strategy.fixed-delay.delay' = '100ms';
CREATE TABLE src (id BIGINT, k INT, ts AS TO_TIMESTAMP_LTZ(id * 10, 3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'datagen', 'rows-per-second' = '3000', 'fields.id.kind' = 'sequence',
        'fields.id.start' = '0', 'fields.id.end' = '100000000', 'fields.k.min' = '0', 'fields.k.max' = '40');
CREATE TABLE out1 (window_start TIMESTAMP(3), window_end TIMESTAMP(3), k INT, cnt BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out1 SELECT window_start, window_end, k, COUNT(*)
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, k;
",
    )
    .expect("writes the job");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice-engine"))
        .args(["run", &sql.display().to_string(), "--rest-addr", "127.0.0.1:0", "--parallelism", "2"])
        .args(["--checkpoint-dir", &dir.path().join("ck").display().to_string()])
        .env("SLUICE_FAILPOINTS", "checkpoint.committed=1*error(injected by the observability test)")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("starts sluice-engine");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stderr = child.stderr.take().expect("stderr");
    let child = Kill(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line.split("REST API on http://").nth(1) {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let addr: SocketAddr =
        rx.recv_timeout(Duration::from_secs(60)).expect("the engine prints its REST address").parse().expect("addr");
    let get = |path: &str| -> Value {
        let (status, body) = http(addr, "GET", path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    };
    // The fault fails one commit; the job restarts and runs on.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (m, ex) = loop {
        let m = get("/v1/job/metrics");
        let ex = get("/v1/job/exceptions");
        let sink = &m["vertices"][1];
        let ready = ex["restarts"] == 1
            && sink["latency"]["processingLatencyMs"]["count"].as_u64().unwrap_or(0) >= 10
            && sink["stateKeys"].as_u64().unwrap_or(0) > 0
            && get("/v1/job/history")["points"].as_array().map_or(0, Vec::len) >= 3
            && get("/v1/job")["state"] == "RUNNING";
        if ready || Instant::now() > deadline {
            break (m, ex);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let failures = ex["exceptions"].as_array().expect("exceptions");
    assert_eq!(failures.len(), 1, "{ex}");
    assert_eq!(failures[0]["restarted"], true, "{ex}");
    assert!(failures[0]["message"].as_str().unwrap_or("").contains("injected by the observability test"), "{ex}");
    let (source, sink) = (&m["vertices"][0], &m["vertices"][1]);
    let latency = &sink["latency"];
    let p99 = latency["processingLatencyMs"]["p99"].as_f64().expect("a processing latency p99");
    assert!(p99 > 0.0 && p99 < 10_000.0, "markers cross one local channel: {latency}");
    // Event time is 1970: the lag is beyond the histogram's last bound, which it reports.
    assert_eq!(latency["eventTimeLagMs"]["p50"].as_f64(), Some(800_000.0), "{latency}");
    assert!(source["latency"].is_null(), "only sinks measure latency: {source}");
    for v in [source, sink] {
        let cost = v["cpuSecondsPerMillionRecords"].as_f64().unwrap_or(0.0);
        assert!(cost > 0.0 && cost < 1e6, "{v}");
        assert_eq!(v["subtasks"].as_array().map(Vec::len), Some(2), "{v}");
    }
    assert!(sink["stateBytes"].as_u64().unwrap_or(0) > 0, "{sink}");
    assert!(source["stateKeys"].is_null(), "the source keeps no keyed state: {source}");
    // On the heap backend nothing is on disk.
    assert_eq!(sink["stateKeysOnDisk"].as_u64(), Some(0), "{sink}");

    let h = get("/v1/job/history");
    let points = h["points"].as_array().expect("points");
    assert!(points.len() >= 3, "{h}");
    let last = &points[points.len() - 1]["vertices"];
    assert!(last[0]["recordsOutPerSecond"].as_f64().unwrap_or(0.0) > 0.0, "{h}");
    assert!(last[1]["latencyP99Ms"].is_number(), "{h}");
    assert!(last[0]["watermarkLagMs"].as_i64().unwrap_or(0) > 0, "{h}");

    let plan = get("/v1/job/plan");
    assert!(plan["sql"].as_str().unwrap_or("").contains("CREATE TABLE out1"), "{plan}");
    assert!(plan["explain"].as_str().unwrap_or("").contains("via HASH["), "{plan}");
    let ck = get("/v1/job/checkpoints");
    let acks = ck["latestCompleted"]["acks"].as_array().expect("acks of the last checkpoint");
    assert_eq!(acks.len(), 4, "every subtask acknowledges: {ck}");

    let (_, prom) = http(addr, "GET", "/metrics");
    for line in [
        "sluice_job_restarts_total{job=\"observed\"} 1",
        "sluice_sink_processing_latency_seconds_bucket{job=\"observed\",vertex=\"1\",le=\"2\"}",
        "sluice_sink_event_time_lag_seconds_count{job=\"observed\",vertex=\"1\"}",
        "sluice_cpu_seconds_total{job=\"observed\",vertex=\"0\",subtask=\"1\"}",
        "sluice_state_keys{job=\"observed\",vertex=\"1\",subtask=\"0\"}",
        "sluice_checkpoints_total{job=\"observed\",status=\"failed\"}",
        "sluice_last_checkpoint_completed_timestamp_seconds{job=\"observed\"}",
    ] {
        assert!(prom.contains(line), "missing {line} in:\n{prom}");
    }
    drop(child);
}
