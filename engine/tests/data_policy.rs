#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A job's data policy, end to end: every action on real rows through the CLI,
//! and a keyed job on a cluster whose hmac tokens stay the same across a
//! savepoint, a restart at another parallelism and more workers, with no raw
//! value in any checkpoint or savepoint file.

mod common;

use std::path::Path;
use std::time::Duration;

use common::cluster::{Cluster, Proc, http, json};
use common::{committed, complete_checkpoints, engine, policy_args, wait_for, walk};

const PEOPLE: &str = r#"{"id":1,"email":"ana@example.com","card":"4111111111111111","name":"Zoë Åström","country":"DE","age":34,"ssn":"123-45-6789","ts":"2024-03-15 13:45:30.250"}
{"id":2,"email":null,"card":null,"name":null,"country":"XX","age":null,"ssn":"987-65-4321","ts":"2024-03-15 13:45:31.000"}
{"id":3,"email":"bø@例え.jp","card":"12","name":"李小龍","country":"FR","age":7,"ssn":null,"ts":"2024-03-16 00:00:00.000"}
{"id":4,"email":"eve@example.com","card":"5500000000000004","name":"Eve","country":null,"age":51,"ssn":"000-00-0000","ts":"2024-03-17 23:59:59.999"}
{"id":5,"email":"ana@example.com","card":null,"name":"A","country":"DE","age":null,"ssn":null,"ts":"2024-03-18 08:00:00.000"}
"#;

fn people_job(dir: &Path) -> String {
    format!(
        "CREATE TABLE people (id BIGINT, email STRING, card STRING, name STRING, country STRING, age INT, ssn STRING, ts TIMESTAMP(3))
 WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json');
CREATE TABLE out (id BIGINT, email STRING, card STRING, name STRING, country STRING, age INT, ts TIMESTAMP(3))
 WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');
INSERT INTO out SELECT id, email, card, name, country, age, ts FROM people;
",
        input = dir.join("people.json").display(),
        out = dir.join("out").display()
    )
}

const PEOPLE_POLICY: &str = "columns:
  - match: {table: people, column: email}
    action: hmac
    keySecretRef: {name: pii-key, key: hmac}
  - match: {column: card}
    action: redact
    keep: {last: 4}
  - match: {column: name}
    action: truncate
    keep: {first: 2}
  - match: {tag: pii}
    action: 'null'
  - match: {column: ssn}
    action: drop
  - match: {column: ts}
    action: truncate
    unit: day
rows:
  - table: people
    where: \"country <> 'XX'\"
tags:
  people.age: [pii]
";

/// The job's directory with its input, its policy and the Secret's key file.
fn setup(dir: &Path, policy: &str) {
    std::fs::write(dir.join("people.json"), PEOPLE).unwrap();
    std::fs::write(dir.join("job.sql"), people_job(dir)).unwrap();
    std::fs::write(dir.join("policy.yaml"), policy).unwrap();
    std::fs::create_dir_all(dir.join("secrets/pii-key")).unwrap();
    std::fs::write(dir.join("secrets/pii-key/hmac"), "s3cr3t-k3y").unwrap();
}

#[test]
fn every_action_masks_at_the_source_and_explain_shows_where() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), PEOPLE_POLICY);
    let job = dir.path().join("job.sql");
    let run = engine()
        .args(["run", job.to_str().unwrap(), "--rest-addr", "127.0.0.1:0"])
        .args(policy_args(dir.path()))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}");
    assert!(log.contains("data policy") && log.contains("people.email hmac"), "{log}");
    assert!(!log.contains("s3cr3t"), "the key is never logged: {log}");
    let lines = committed(&dir.path().join("out"));
    // Row 2 fails `country <> 'XX'`; row 4's country is NULL, which fails it too, as in SQL.
    assert_eq!(lines.len(), 3, "{lines:?}");
    let cells: Vec<Vec<String>> = lines.iter().map(|l| split_csv(l)).collect();
    let token = |id: &str| cells.iter().find(|c| c[0] == id).unwrap()[1].clone();
    assert_eq!(token("1").len(), 64);
    assert_eq!(token("1"), token("5"), "the same email, the same token");
    assert_ne!(token("1"), token("3"));
    let row = |id: &str| cells.iter().find(|c| c[0] == id).unwrap()[2..].to_vec();
    assert_eq!(row("1"), ["************1111", "Zo", "DE", "", "2024-03-15 00:00:00"]);
    assert_eq!(row("3"), ["**", "李小", "FR", "", "2024-03-16 00:00:00"]);
    assert_eq!(row("5"), ["", "A", "DE", "", "2024-03-18 00:00:00"]);
    let all = lines.join("\n");
    for raw in ["ana@", "example.com", "4111", "Zoë", "123-45"] {
        assert!(!all.contains(raw), "{raw} leaked: {all}");
    }

    let explain = engine().args(["explain", job.to_str().unwrap()]).args(policy_args(dir.path())).output().unwrap();
    let text = String::from_utf8_lossy(&explain.stdout);
    assert!(text.contains("data policy at the source: email hmac (dataPolicy.columns[0])"), "{text}");
    assert!(text.contains("data policy at the source: rows where country <> 'XX' (dataPolicy.rows[0])"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    // The policy does not change the graph: the uids are those of the job without it.
    let plain = engine().args(["explain", job.to_str().unwrap()]).output().unwrap();
    let uids = |t: &str| t.lines().filter(|l| l.contains("uid ")).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(uids(&text), uids(&String::from_utf8_lossy(&plain.stdout)));
}

#[test]
fn a_policy_that_protects_nothing_or_cannot_run_is_refused_before_the_job_starts() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.sql");
    for (policy, why) in [
        (
            "columns:\n  - match: {column: emial}\n    action: 'null'\n",
            "dataPolicy.columns[0] (column `emial`) matches no column",
        ),
        (
            "columns:\n  - match: {column: email}\n    action: hmac\n    keySecretRef: {name: other, key: k}\n",
            "secrets/other/k",
        ),
        ("columns:\n  - match: {column: age}\n    action: redact\n", "redact applies to STRING columns"),
        ("columns:\n  - match: {colum: email}\n    action: 'null'\n", "unknown field `colum`"),
        ("columns:\n  - match: {column: ts}\n    action: truncate\n    unit: dya\n", "unknown variant `dya`"),
    ] {
        setup(dir.path(), policy);
        let out = engine().args(["validate", job.to_str().unwrap()]).args(policy_args(dir.path())).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{policy}: {err}");
        assert!(err.contains(why), "{policy}: {err}");
    }
    // A job cannot turn its own policy off.
    setup(dir.path(), PEOPLE_POLICY);
    std::fs::write(&job, format!("SET 'sluice.data-policy' = '{{}}';\n{}", people_job(dir.path()))).unwrap();
    let out = engine().args(["validate", job.to_str().unwrap()]).args(policy_args(dir.path())).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("a job cannot SET 'sluice.data-policy'"));
}

/// A keyed window over an hmac'd column: its state holds tokens only.
fn keyed_job(dir: &Path, rows: u64) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, k INT,
   ts AS TO_TIMESTAMP_LTZ(id * 10, 3),
   email AS CONCAT('user', CAST(k AS STRING), '@example.com'),
   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'datagen', 'seed' = '7', 'rows-per-second' = '3000',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{last}',
   'fields.k.min' = '0', 'fields.k.max' = '15');
CREATE TABLE per_window (email STRING, window_start TIMESTAMP(3), c BIGINT)
 WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'csv');
INSERT INTO per_window SELECT email, window_start, COUNT(*)
  FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY email, window_start, window_end;
",
        last = rows - 1,
        out = dir.join("windows").display()
    )
}

#[test]
fn hmac_tokens_survive_a_savepoint_and_a_rescale_and_no_raw_value_reaches_a_snapshot() {
    let rows = 12_000;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, "columns:\n  - match: {column: email}\n    action: hmac\n    keySecretRef: {name: pii-key, key: hmac}\n");
    // The reference: one uninterrupted local run at parallelism 2.
    let reference = tempfile::tempdir().unwrap();
    let ref_job = reference.path().join("job.sql");
    std::fs::write(&ref_job, keyed_job(reference.path(), rows).replace("'3000'", "'1000000'")).unwrap();
    let run = engine()
        .args(["run", ref_job.to_str().unwrap(), "-p", "2", "--rest-addr", "127.0.0.1:0"])
        .args(policy_args(d))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let expected = committed(&reference.path().join("windows"));
    assert!(expected.len() > 100 && expected.iter().all(|l| !l.contains("example.com")), "{expected:?}");

    let c = Cluster::new(d);
    c.write_job(&keyed_job(d, rows));
    let args = policy_args(d);
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut coord = c.coordinator("coordinator-p2", 2, &extra);
    let mut w: Vec<Proc> = (0..2).map(|i| c.worker(&format!("w{i}"), 1)).collect();
    wait_for("a checkpoint", Duration::from_secs(60), || complete_checkpoints(&c.job_dir()) >= 1);
    // A savepoint of the running job holds its open windows, keyed by email.
    c.savepoint("policy-0", false);
    let location = c.savepoint("policy-1", true);
    assert!(coord.wait(Duration::from_secs(30)).success(), "{}", coord.log());
    for x in w.iter_mut() {
        assert!(x.wait(Duration::from_secs(30)).success());
    }
    let mut more = extra.clone();
    more.extend(["--restore", &location, "--on-finish", "stay"]);
    let resumed = c.coordinator("coordinator-p3", 3, &more);
    let _w: Vec<Proc> = (0..3).map(|i| c.worker(&format!("v{i}"), 1)).collect();
    wait_for("the resumed job to finish", Duration::from_secs(120), || {
        http(&c.rest, "GET", "/v1/job", "").is_some_and(|(_, body)| body.contains(r#""state":"FINISHED""#))
    });
    // The job reports the id of the policy it enforces.
    let policy = sluice_job::policy_file_json(&d.join("policy.yaml")).unwrap();
    assert_eq!(json(&c.rest, "/v1/job")["dataPolicy"].as_str(), Some(sluice_api::policy::hash(&policy).as_str()));
    drop(resumed);
    assert_eq!(committed(&d.join("windows")), expected, "tokens differ across the savepoint and the rescale");

    // The keyed state and the savepoint hold tokens, never the raw emails. The
    // savepoint of the running job holds its open windows, keyed by email. Keys
    // are stored in Arrow's row format, which cuts a string into 8-byte blocks
    // first: the check looks for 8-byte prefixes, of the tokens and of the raw
    // emails (`user<k>@e...`).
    let tokens: std::collections::BTreeSet<String> =
        expected.iter().map(|l| split_csv(l)[0][..8].to_string()).collect();
    let holds = |bytes: &[u8], s: &[u8]| bytes.windows(s.len()).any(|w| w == s);
    let raw: Vec<String> = (0..16).map(|k| format!("user{k}@example.com")[..8].to_string()).collect();
    let mut tokens_seen = 0;
    let mut files = walk(&d.join("ck"));
    files.extend(walk(&d.join("savepoints")));
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for r in &raw {
            assert!(!holds(&bytes, r.as_bytes()), "{} holds a raw email ({r}...)", f.display());
        }
        tokens_seen += tokens.iter().filter(|t| holds(&bytes, t.as_bytes())).count();
    }
    assert!(tokens_seen > 0, "no snapshot holds keyed state, so the check above proves nothing");
}

/// A CSV line's cells (the test's values have no quotes or commas inside).
fn split_csv(line: &str) -> Vec<String> {
    line.split(',').map(|c| c.trim_matches('"').to_string()).collect()
}
