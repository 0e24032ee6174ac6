#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Bad input gets a clear error naming the file, the line or the table, and never
//! a panic: malformed lines, unknown connectors, missing files, SQL type errors,
//! unsupported SQL.

use std::fs;
use std::process::Command;

use sluice_engine::config::Config;
use sluice_engine::local::{compile_text, run_text};

fn engine() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice-engine"))
}

fn source_table(path: &str, extra: &str) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, name STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json'{extra});
CREATE TABLE out1 (id BIGINT, name STRING) WITH ('connector' = 'blackhole');
INSERT INTO out1 SELECT id, name FROM src;
"
    )
}

#[test]
fn malformed_json_line_fails_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.json");
    fs::write(&input, "{\"id\":1,\"name\":\"a\",\"ts\":\"2024-01-01 00:00:00.000\"}\n{\"id\":2,\"name\": oops}\n")
        .unwrap();
    let err =
        run_text(&source_table(&input.display().to_string(), ""), "job.sql", "job", &Config::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("in.json:2"), "{msg}");
    assert!(msg.contains("src"), "{msg}");
}

#[test]
fn malformed_json_line_is_skipped_and_counted_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.json");
    fs::write(&input, "{\"id\":1,\"name\":\"a\",\"ts\":\"2024-01-01 00:00:00.000\"}\nnot json\n").unwrap();
    let sql = source_table(&input.display().to_string(), ", 'json.ignore-parse-errors' = 'true'");
    let state = run_text(&sql, "job.sql", "job", &Config::default()).unwrap();
    let skipped: u64 =
        state.subtasks.iter().map(|m| m.skipped_records.load(std::sync::atomic::Ordering::Relaxed)).sum();
    let read: u64 = state.metrics_of(0).map(|m| m.records_in.load(std::sync::atomic::Ordering::Relaxed)).sum();
    assert_eq!((read, skipped), (1, 1));
}

#[test]
fn missing_file_is_an_error_before_the_job_starts() {
    let err =
        run_text(&source_table("/nonexistent/sluice/in.json", ""), "job.sql", "job", &Config::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/sluice/in.json"), "{msg}");
    assert!(msg.contains("src"), "{msg}");
}

#[test]
fn unknown_connector_names_the_table_and_lists_supported_ones() {
    let sql = "CREATE TABLE src (id BIGINT) WITH ('connector' = 'kafkaa');
CREATE TABLE out1 (id BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out1 SELECT id FROM src;";
    let msg = compile_text(sql, "job.sql").unwrap_err().to_string();
    assert!(msg.contains("kafkaa") && msg.contains("src") && msg.contains("datagen"), "{msg}");
}

#[test]
fn sql_errors_give_file_line_and_column() {
    let cases = [
        // A type error: a string compared with arithmetic on it.
        (
            "CREATE TABLE t (a INT, s STRING) WITH ('connector' = 'datagen');\nCREATE TABLE o (x INT) WITH ('connector' = 'blackhole');\nINSERT INTO o SELECT a FROM t WHERE s + 1;",
            3,
            "STRING + ",
        ),
        // An unknown column.
        (
            "CREATE TABLE t (a INT) WITH ('connector' = 'datagen');\nCREATE TABLE o (x INT) WITH ('connector' = 'blackhole');\nINSERT INTO o\nSELECT nope FROM t;",
            4,
            "nope",
        ),
        // A sink of the wrong shape.
        (
            "CREATE TABLE t (a INT) WITH ('connector' = 'datagen');\nCREATE TABLE o (x INT, y INT) WITH ('connector' = 'blackhole');\nINSERT INTO o SELECT a FROM t;",
            3,
            "2",
        ),
        // Updating results into an append-only sink, and the error says what takes them.
        (
            "CREATE TABLE t (a INT) WITH ('connector' = 'datagen');\nCREATE TABLE o (x BIGINT) WITH ('connector' = 'filesystem', 'path' = '/tmp/o', 'format' = 'json');\nINSERT INTO o SELECT COUNT(*) FROM t GROUP BY a;",
            3,
            "upsert-kafka",
        ),
        // A join without an equality between its inputs.
        (
            "CREATE TABLE t (a INT) WITH ('connector' = 'datagen');\nCREATE TABLE o (x INT) WITH ('connector' = 'blackhole');\nINSERT INTO o SELECT t.a FROM t JOIN t AS u ON t.a > u.a;",
            3,
            "equality condition",
        ),
        // A window over a column that is not a time attribute.
        (
            "CREATE TABLE t (a INT, ts TIMESTAMP(3)) WITH ('connector' = 'datagen');\nCREATE TABLE o (x BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO o SELECT COUNT(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end;",
            3,
            "WATERMARK FOR",
        ),
        // A window over a view that already has window columns.
        (
            "CREATE TABLE t (a INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');\nCREATE VIEW w AS SELECT window_start, window_end, window_time, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, window_time;\nCREATE TABLE o (x BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO o SELECT SUM(c) FROM TABLE(TUMBLE(TABLE w, DESCRIPTOR(window_time), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end;",
            4,
            "rename it",
        ),
        // A syntax error.
        (
            "CREATE TABLE t (a INT) WITH ('connector' = 'datagen');\nCREATE TABLE o (x INT) WITH ('connector' = 'blackhole');\nINSERT INTO o SELEC a FROM t;",
            3,
            "syntax",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (sql, line, needle)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.sql"));
        fs::write(&path, sql).unwrap();
        let out = engine().arg("validate").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "case {i} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let prefix = format!("{}:{line}:", path.display());
        assert!(stderr.starts_with(&prefix), "case {i}: expected {prefix}..., got: {stderr}");
        assert!(stderr.contains(needle), "case {i}: expected '{needle}' in: {stderr}");
        assert!(!stderr.contains("panicked"), "case {i}: {stderr}");
    }
}

#[test]
fn run_exits_non_zero_with_a_message_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.json");
    fs::write(&input, "{\"id\": \"x\"\n").unwrap();
    let job = dir.path().join("bad.sql");
    fs::write(&job, source_table(&input.display().to_string(), "")).unwrap();
    let out = engine().args(["run", "--rest-addr", "127.0.0.1:0"]).arg(&job).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in.json:1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn explain_prints_vertices_parallelism_and_partitioning() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("j.sql");
    fs::write(
        &job,
        "CREATE TABLE t (k INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (k INT, c BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT k, COUNT(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, k;",
    )
    .unwrap();
    let out = engine().arg("explain").arg(&job).args(["--parallelism", "3"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Vertex 0 (parallelism 3"), "{text}");
    assert!(text.contains("Source: t [datagen]"), "{text}");
    assert!(text.contains("via HASH[t.k]"), "{text}");
    assert!(text.contains("Sink: o [print]"), "{text}");
    assert!(text.contains("pipeline.jobvertex-parallelism-overrides: <uid>:<n>,..."), "{text}");
    // An override by the uid explain printed takes effect.
    let uid = text.split("uid ").nth(1).and_then(|t| t.split(')').next()).unwrap();
    let set = format!("pipeline.jobvertex-parallelism-overrides={uid}:2");
    let out = engine().arg("explain").arg(&job).args(["--parallelism", "3", "--set", &set]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("Vertex 0 (parallelism 2, uid {uid})")), "{text}");
    assert!(text.contains("via HASH[t.k]"), "{text}");
}

/// A scalar subquery that returns a second row (per outer row) fails the job,
/// as Flink's `SINGLE_VALUE` does ("SingleValueAggFunction received more than
/// one element"); one row each is fine.
#[test]
fn scalar_subquery_of_more_than_one_row_fails_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let auctions = dir.path().join("auction.json");
    fs::write(&auctions, "{\"id\":1}\n{\"id\":2}\n").unwrap();
    let job = |bids: &str, select: &str| {
        let path = dir.path().join("bid.json");
        fs::write(&path, bids).unwrap();
        let text = format!(
            "CREATE TABLE auction (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE bid (auction BIGINT, price BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE o (id BIGINT, p BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO o {select};",
            auctions.display(),
            path.display()
        );
        run_text(&text, "job.sql", "job", &Config::default()).map(|_| ()).map_err(|e| e.to_string())
    };
    let one_each = "{\"auction\":1,\"price\":10}\n{\"auction\":2,\"price\":20}\n";
    let two_for_2 = "{\"auction\":1,\"price\":10}\n{\"auction\":2,\"price\":20}\n{\"auction\":2,\"price\":30}\n";
    let correlated = "SELECT a.id, (SELECT b.price FROM bid b WHERE b.auction = a.id) FROM auction a";
    let uncorrelated = "SELECT a.id, (SELECT b.price FROM bid b WHERE b.auction = 2) FROM auction a";
    assert_eq!(job(one_each, correlated), Ok(()));
    assert_eq!(job(one_each, uncorrelated), Ok(()));
    for select in [correlated, uncorrelated] {
        let err = job(two_for_2, select).unwrap_err();
        assert!(err.contains("a scalar subquery returned more than one row"), "{select}: {err}");
    }
}
