#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! OpenLineage run events, end to end: real jobs send them over HTTP to a real
//! receiver started here, and every event is validated against the official
//! OpenLineage JSON schemas (`scripts/openlineage-validate.sh`). Also: column
//! lineage of projection, expression, aggregation and masked columns; an
//! endpoint that fails is retried in order; one that is down never holds the
//! job up, and a full buffer drops with a count; a restarted coordinator
//! continues its run.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::openlineage::{Receiver, check_file, validate};
use common::{engine, policy_args, wait_for};
use serde_json::Value;

#[test]
fn the_validator_rejects_an_event_the_schemas_do_not_allow() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    let bad = r#"{"eventType":"BEGIN","eventTime":"now","producer":"p","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent","run":{"runId":"x","facets":{"sluice":{"_producer":"p","_schemaURL":"https://github.com/example/sluice/blob/main/engine/openlineage/SluiceRunFacet.json#/$defs/SluiceRunFacet","jobId":"j"}}},"job":{"namespace":"n","name":"j"}}"#;
    std::fs::write(&file, format!("{bad}\n")).unwrap();
    let (ok, text) = check_file(&file);
    assert!(!ok, "{text}");
    for problem in
        ["'BEGIN' is not one of", "is not a 'uuid'", "'now' is not a 'date-time'", "'status' is a required property"]
    {
        assert!(text.contains(problem), "{problem}: {text}");
    }
}

const CLICKS: &str = r#"{"user_id":1,"email":"ana@example.com","url":"/a","ts":"2024-03-15 13:45:30.250"}
{"user_id":2,"email":"bob@example.com","url":"/b","ts":"2024-03-15 13:45:31.000"}
{"user_id":1,"email":"ana@example.com","url":"/c","ts":"2024-03-15 13:46:10.000"}
"#;

/// Projection (`user_id`), expression (`url` upper-cased), a masked column
/// (`email`) and an aggregation (the window's `clicks` and `window_end`).
fn clicks_job(dir: &Path) -> String {
    format!(
        "CREATE TABLE clicks (user_id BIGINT, email STRING, url STRING, ts TIMESTAMP(3),
   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json');
CREATE TABLE visits (user_id BIGINT, email STRING, page STRING)
 WITH ('connector' = 'filesystem', 'path' = '{visits}', 'format' = 'csv');
CREATE TABLE per_minute (user_id BIGINT, window_end TIMESTAMP(3), clicks BIGINT)
 WITH ('connector' = 'filesystem', 'path' = '{per_minute}', 'format' = 'csv');
INSERT INTO visits SELECT user_id, email, UPPER(url) FROM clicks;
INSERT INTO per_minute SELECT user_id, window_end, COUNT(*) FROM TABLE(
  TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY user_id, window_start, window_end;
",
        input = dir.join("clicks.json").display(),
        visits = dir.join("visits").display(),
        per_minute = dir.join("per_minute").display(),
    )
}

fn setup(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("clicks.json"), CLICKS).unwrap();
    std::fs::write(
        dir.join("policy.yaml"),
        "columns:\n  - match: {table: clicks, column: email}\n    action: hmac\n    keySecretRef: {name: k, key: hmac}\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("secrets/k")).unwrap();
    std::fs::write(dir.join("secrets/k/hmac"), "key").unwrap();
    let job = dir.join("clicks.sql");
    std::fs::write(&job, clicks_job(dir)).unwrap();
    job
}

fn lineage_of<'a>(event: &'a Value, output: &str, column: &str) -> &'a Value {
    let out = event["outputs"].as_array().unwrap().iter().find(|o| o["name"].as_str().unwrap().ends_with(output));
    &out.unwrap_or_else(|| panic!("no output {output} in {event}"))["facets"]["columnLineage"]["fields"][column]
}

fn inputs(field: &Value) -> Vec<(String, String, bool)> {
    field["inputFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let t = &f["transformations"][0];
            (f["field"].as_str().unwrap().to_string(), t["subtype"].as_str().unwrap().to_string(), t["masking"] == true)
        })
        .collect()
}

/// `run` of the clicks job under its policy, sending events to `url`, with more flags.
fn run_clicks(dir: &Path, job: &Path, url: &str, extra: &[&str]) -> std::process::Output {
    engine()
        .args(["run", job.to_str().unwrap(), "--rest-addr", "127.0.0.1:0"])
        .args(policy_args(dir))
        .args(["--set", &format!("openlineage.transport.url={url}")])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_job_sends_start_and_complete_with_its_datasets_and_column_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let job = setup(dir.path());
    let receiver = Receiver::start(dir.path(), "127.0.0.1", 0);
    let run = run_clicks(dir.path(), &job, &receiver.url(), &["--set", "openlineage.job.namespace=analytics"]);
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}");
    assert!(log.contains("OpenLineage run events go to"), "{log}");
    assert_eq!(receiver.types(), ["START", "COMPLETE"], "delivered before the process ended");
    let events = receiver.events();
    let (start, complete) = (&events[0], &events[1]);
    assert_eq!(start["run"]["runId"], complete["run"]["runId"], "one run");
    assert_eq!(start["job"]["namespace"], "analytics");
    assert_eq!(start["job"]["name"], "clicks", "the job id by default");
    assert_eq!(complete["run"]["facets"]["sluice"]["status"], "FINISHED");
    assert!(complete["run"]["facets"]["sluice"]["dataPolicy"].is_string());

    let input = &start["inputs"][0];
    assert_eq!(input["namespace"], "file");
    assert_eq!(input["name"], dir.path().join("clicks.json").display().to_string());
    let schema: Vec<(&str, &str)> = input["facets"]["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    assert_eq!(schema, [("user_id", "BIGINT"), ("email", "STRING"), ("url", "STRING"), ("ts", "TIMESTAMP(3)")]);

    let s = |x: &str| x.to_string();
    assert_eq!(inputs(lineage_of(start, "visits", "user_id")), [(s("user_id"), s("IDENTITY"), false)]);
    assert_eq!(inputs(lineage_of(start, "visits", "page")), [(s("url"), s("TRANSFORMATION"), false)]);
    let email = lineage_of(start, "visits", "email");
    assert_eq!(inputs(email), [(s("email"), s("IDENTITY"), true)]);
    assert_eq!(email["transformationType"], "MASKED");
    assert!(email["inputFields"][0]["transformations"][0]["description"].as_str().unwrap().contains("hmac"));
    assert_eq!(inputs(lineage_of(start, "per_minute", "clicks")), Vec::<(String, String, bool)>::new());
    assert_eq!(inputs(lineage_of(start, "per_minute", "user_id")), [(s("user_id"), s("IDENTITY"), false)]);
    assert_eq!(inputs(lineage_of(start, "per_minute", "window_end")), [(s("ts"), s("TRANSFORMATION"), false)]);
    let raw = events.iter().map(Value::to_string).collect::<String>();
    assert!(!raw.contains("ana@example.com") && !raw.contains("\"key\""), "no data and no key in events");
    validate(&events, dir.path());
}

#[test]
fn a_failing_endpoint_is_retried_in_order_and_a_dead_one_never_holds_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let job = setup(dir.path());
    // Two 503s first: both events still arrive, in order.
    let flaky = Receiver::start(dir.path(), "127.0.0.1", 2);
    let run = run_clicks(dir.path(), &job, &flaky.url(), &[]);
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}");
    assert_eq!(flaky.types(), ["START", "COMPLETE"], "{log}");
    assert!(log.contains("failed (HTTP 503") && log.contains("events are kept and retried"), "{log}");
    validate(&flaky.events(), dir.path());

    // Nothing listens: the job finishes anyway, within the transport's timeout,
    // and with a one-event buffer the second event is dropped and counted.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let dead = format!("http://127.0.0.1:{port}");
    let limits =
        ["--set", "openlineage.transport.timeoutInMillis=1000", "--set", "openlineage.transport.buffer-size=1"];
    let run = run_clicks(dir.path(), &job, &dead, &limits);
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(log.contains("COMPLETE event dropped"), "{log}");
    assert!(log.contains("1 OpenLineage events not delivered"), "{log}");
}

#[test]
fn a_job_that_fails_sends_fail_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), "127.0.0.1", 0);
    let job = dir.path().join("broken.sql");
    let missing = dir.path().join("no-such-input.json");
    std::fs::write(
        &job,
        format!(
            "CREATE TABLE a (x BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE b (x BIGINT) WITH ('connector' = 'print');
INSERT INTO b SELECT x FROM a;",
            missing.display()
        ),
    )
    .unwrap();
    let run = engine()
        .args(["run", job.to_str().unwrap(), "--rest-addr", "127.0.0.1:0"])
        .args(["--set", &format!("openlineage.transport.url={}/", receiver.url())])
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert_eq!(receiver.types(), ["START", "FAIL"]);
    let fail = &receiver.events()[1];
    let message = fail["run"]["facets"]["errorMessage"]["message"].as_str().unwrap();
    assert!(message.contains("no-such-input.json"), "{message}");
    assert_eq!(fail["outputs"][0]["namespace"], "sluice:print");
    validate(&receiver.events(), dir.path());
}

#[test]
fn a_restarted_coordinator_continues_its_run_and_sigterm_ends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), "127.0.0.1", 0);
    let c = Cluster::new(dir.path());
    c.write_job(&common::job(&dir.path().join("out"), 40_000, 2_000));
    let url = format!("openlineage.transport.url={}", receiver.url());
    let args = ["--set", url.as_str()];
    let _w = c.worker("w1", 2);
    let mut first = c.coordinator("c1", 1, &args);
    wait_for("START", Duration::from_secs(60), || receiver.types() == ["START"]);
    wait_for("a checkpoint", Duration::from_secs(60), || common::complete_checkpoints(&c.job_dir()) > 0);
    first.sigterm();
    first.wait(Duration::from_secs(30));
    assert_eq!(receiver.types(), ["START"], "a coordinator stopped by SIGTERM does not end the run");
    let mut second = c.coordinator("c2", 1, &args);
    second.wait(Duration::from_secs(120));
    assert_eq!(receiver.types(), ["START", "RUNNING", "COMPLETE"], "{}", second.log());
    let ids: Vec<Value> = receiver.events().iter().map(|e| e["run"]["runId"].clone()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "one run across both coordinators: {ids:?}");
    validate(&receiver.events(), dir.path());
}
