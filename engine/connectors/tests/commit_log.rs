//! The filesystem sink's commit log (`sink.commit-log.enabled`): each commit
//! records which deployment and generation made which files visible, and when;
//! a recovery records only the files it made visible itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::sync::Arc;

use arrow::array::Int64Array;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use serde_json::Value;
use sluice_connectors::{COMMIT_LOG_DIR, Committer, SinkContext, create_sink, recover_sink};

fn ctx(dir: &Path, log: bool, subtask: usize, deployment: &str, generation: u64) -> SinkContext {
    let mut options = std::collections::BTreeMap::new();
    for (k, v) in [("connector", "filesystem"), ("path", dir.to_str().unwrap()), ("format", "csv")] {
        options.insert(k.to_string(), v.to_string());
    }
    if log {
        options.insert("sink.commit-log.enabled".into(), "true".into());
    }
    SinkContext {
        table: "out".into(),
        options,
        schema: Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
        subtask,
        parallelism: 2,
        job_id: "j1".into(),
        local_time_zone: "UTC".into(),
        restored_states: None,
        s3: sluice_connectors::S3Options::default(),
        checkpoint_interval: None,
        committer: Committer { deployment: deployment.into(), generation },
    }
}

fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids.collect::<Vec<_>>()))]).unwrap()
}

/// The records of the commit log, by file name.
fn records(dir: &Path) -> Vec<(String, Value)> {
    let Ok(entries) = std::fs::read_dir(dir.join(COMMIT_LOG_DIR)) else { return Vec::new() };
    let mut out: Vec<(String, Value)> = entries
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn each_commit_records_its_deployment_generation_checkpoint_files_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut sink = create_sink(&ctx(d, true, 1, "1-blue", 4)).unwrap();
    sink.write(&batch(0..3)).unwrap();
    let c7 = sink.pre_commit(7).unwrap();
    assert!(records(d).is_empty(), "a pre-commit is not a commit");
    sink.commit(std::slice::from_ref(&c7)).unwrap();
    let r = records(d);
    assert_eq!(r.len(), 1);
    let (name, rec) = &r[0];
    assert_eq!(name, "j1-1-0-g4.json");
    assert_eq!(rec["deployment"], "1-blue");
    assert_eq!(rec["generation"], 4);
    assert_eq!(rec["subtask"], 1);
    assert_eq!(rec["kind"], "checkpoint");
    assert_eq!(rec["checkpoint"], 7);
    assert_eq!(rec["files"], serde_json::json!(["part-j1-1-0"]));
    assert!(rec["startMs"].as_u64().unwrap() <= rec["endMs"].as_u64().unwrap());
    // Readers skip the log: only the part file is visible.
    let visible: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(['.', '_']))
        .collect();
    assert_eq!(visible, ["part-j1-1-0"]);
    // A checkpoint that commits nothing records nothing.
    let empty = sink.pre_commit(8).unwrap();
    sink.commit(&[empty]).unwrap();
    assert_eq!(records(d).len(), 1);
}

#[test]
fn a_recovery_records_only_the_files_it_made_visible() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Blue (generation 1): subtask 0 commits checkpoint 1; subtask 1 dies before its commit.
    let mut blue: Vec<_> = (0..2).map(|s| create_sink(&ctx(d, true, s, "1-blue", 1)).unwrap()).collect();
    blue[0].write(&batch(0..2)).unwrap();
    blue[1].write(&batch(2..4)).unwrap();
    let c1: Vec<Vec<u8>> = blue.iter_mut().map(|s| s.pre_commit(1).unwrap()).collect();
    blue[0].commit(&c1[..1]).unwrap();
    drop(blue);
    // Green (generation 2) recovers checkpoint 1: subtask 1's file is its commit.
    recover_sink(&ctx(d, true, 0, "2-green", 2), &c1).unwrap();
    let r = records(d);
    let names: Vec<&str> = r.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["j1-0-0-g1.json", "j1-1-0-g2.json"]);
    assert_eq!(r[1].1["deployment"], "2-green");
    assert_eq!(r[1].1["kind"], "recovery");
    assert_eq!(r[1].1["checkpoint"], Value::Null);
    assert_eq!(r[1].1["files"], serde_json::json!(["part-j1-1-0"]));
    // Recovering again makes nothing visible, so it records nothing.
    recover_sink(&ctx(d, true, 0, "2-green", 3), &c1).unwrap();
    assert_eq!(records(d).len(), 2);
}

#[test]
fn without_the_option_there_is_no_log_and_a_bad_value_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut sink = create_sink(&ctx(d, false, 0, "1-blue", 1)).unwrap();
    sink.write(&batch(0..1)).unwrap();
    let c = sink.pre_commit(1).unwrap();
    sink.commit(&[c]).unwrap();
    assert!(!d.join(COMMIT_LOG_DIR).exists());
    let mut bad = ctx(d, false, 0, "1-blue", 1);
    bad.options.insert("sink.commit-log.enabled".into(), "yes please".into());
    let err = create_sink(&bad).err().unwrap().to_string();
    assert!(err.contains("sink.commit-log.enabled") && err.contains("out"), "{err}");
}
