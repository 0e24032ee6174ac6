//! The filesystem connector on `s3://` paths, against a real S3-compatible
//! server (MinIO, started by `sluice_storage::testing::S3Server`): the sink's
//! parts appear only at commit, recovery completes committables and aborts
//! leftovers, the source reads a prefix (skipping hidden names), resumes from
//! a snapshot at another parallelism and monitors the prefix, and errors name
//! the table and the URI.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use sluice_connectors::{
    ConnectorError, Role, S3Options, SinkContext, SourceContext, SourceEvent, SourceReader, create_sink, create_source,
    recover_sink, validate_table,
};
use sluice_storage::Storage;
use sluice_storage::testing::S3Server;

fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("name", DataType::Utf8, true)]))
}

fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let names: Vec<String> = ids.clone().map(|i| format!("n{i}")).collect();
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(Int64Array::from(ids.collect::<Vec<_>>())), Arc::new(StringArray::from(names))],
    )
    .unwrap()
}

fn json_lines(ids: std::ops::Range<i64>) -> String {
    ids.map(|i| format!("{{\"id\":{i},\"name\":\"n{i}\"}}\n")).collect()
}

fn sink_ctx(path: &str, s3: &S3Options, extra: &[(&str, &str)], job: &str) -> SinkContext {
    let mut o = opts(&[("connector", "filesystem"), ("path", path), ("format", "json")]);
    o.extend(opts(extra));
    SinkContext {
        table: "dst".into(),
        options: o,
        schema: schema(),
        subtask: 0,
        parallelism: 1,
        job_id: job.into(),
        local_time_zone: "UTC".into(),
        restored_states: None,
        s3: s3.clone(),
        checkpoint_interval: None,
        committer: Default::default(),
    }
}

fn src_ctx(
    path: &str,
    s3: &S3Options,
    extra: &[(&str, &str)],
    subtask: usize,
    parallelism: usize,
    restored: Option<Vec<Vec<u8>>>,
) -> SourceContext {
    let mut o = opts(&[("connector", "filesystem"), ("path", path), ("format", "json")]);
    o.extend(opts(extra));
    SourceContext {
        table: "src".into(),
        options: o,
        schema: schema(),
        subtask,
        parallelism,
        batch_size: 7,
        local_time_zone: "UTC".into(),
        restored_splits: restored,
        s3: s3.clone(),
    }
}

fn ids(b: &RecordBatch) -> Vec<i64> {
    b.column(0).as_primitive::<Int64Type>().values().to_vec()
}

fn drain(r: &mut dyn SourceReader) -> Vec<i64> {
    let mut out = Vec::new();
    loop {
        match r.poll().unwrap() {
            SourceEvent::Batch(b) => out.extend(ids(&b)),
            SourceEvent::Idle => {}
            SourceEvent::End => return out,
        }
    }
}

/// The names of the objects directly under `storage`, sorted.
fn names(storage: &Storage) -> Vec<String> {
    storage.list("").unwrap().into_iter().map(|o| o.path).collect()
}

fn text(storage: &Storage, name: &str) -> String {
    String::from_utf8(storage.get(name).unwrap()).unwrap()
}

#[test]
fn sink_parts_become_visible_when_their_uploads_complete_at_commit() {
    let server = S3Server::start();
    let s3 = server.options();
    server.create_bucket("sink-bucket");
    let out = Storage::open("s3://sink-bucket/out", &s3).unwrap();
    let mut sink = create_sink(&sink_ctx("s3://sink-bucket/out", &s3, &[], "j1")).unwrap();

    assert!(sink.pre_commit(1).unwrap().is_empty(), "nothing written, nothing to commit");
    sink.write(&batch(0..3)).unwrap();
    let c2 = sink.pre_commit(2).unwrap();
    assert!(!c2.is_empty());
    // Prepared, durable, invisible: no object, but a pending multipart upload.
    assert_eq!(names(&out), Vec::<String>::new());
    assert_eq!(out.list_pending_uploads("part-j1-0-0").unwrap().len(), 1);
    // Rows after the barrier belong to the next checkpoint.
    sink.write(&batch(3..5)).unwrap();
    assert_eq!(names(&out), Vec::<String>::new());

    sink.commit(std::slice::from_ref(&c2)).unwrap();
    assert_eq!(names(&out), vec!["part-j1-0-0"]);
    assert_eq!(text(&out, "part-j1-0-0"), json_lines(0..3));
    assert!(out.list_pending_uploads("part-j1-0-0").unwrap().is_empty());
    // Committing again is a no-op.
    sink.commit(std::slice::from_ref(&c2)).unwrap();
    sink.commit(&[Vec::new()]).unwrap();
    assert_eq!(text(&out, "part-j1-0-0"), json_lines(0..3));

    let c3 = sink.pre_commit(3).unwrap();
    assert_eq!(names(&out), vec!["part-j1-0-0"]);
    sink.commit(&[c3]).unwrap();
    assert_eq!(names(&out), vec!["part-j1-0-0", "part-j1-0-1"]);
    assert_eq!(text(&out, "part-j1-0-1"), json_lines(3..5));

    // The S3 source reads back exactly what was committed.
    let mut r = create_source(&src_ctx("s3://sink-bucket/out", &s3, &[], 0, 1, None)).unwrap();
    assert_eq!(drain(r.as_mut()), (0..5).collect::<Vec<_>>());
}

#[test]
fn sink_rolls_into_several_uploads_and_finish_completes_them_all() {
    let server = S3Server::start();
    let s3 = server.options();
    server.create_bucket("roll-bucket");
    let out = Storage::open("s3://roll-bucket/deep/out", &s3).unwrap();
    // An object already there: part numbers continue after it.
    out.put("part-j7-0-4", json_lines(100..101).as_bytes()).unwrap();
    let ctx = sink_ctx("s3://roll-bucket/deep/out", &s3, &[("sink.rolling-policy.file-size", "40")], "j7");
    let mut sink = create_sink(&ctx).unwrap();
    for i in 0..3 {
        sink.write(&batch(i * 2..i * 2 + 2)).unwrap();
    }
    // Three rolled uploads, prepared, none visible.
    assert_eq!(names(&out), vec!["part-j7-0-4"]);
    let c1 = sink.pre_commit(1).unwrap();
    sink.write(&batch(6..7)).unwrap();
    // finish() without a commit completes the pre-committed and the open parts.
    sink.finish().unwrap();
    assert_eq!(names(&out), vec!["part-j7-0-4", "part-j7-0-5", "part-j7-0-6", "part-j7-0-7", "part-j7-0-8"]);
    assert_eq!(text(&out, "part-j7-0-5"), json_lines(0..2));
    assert_eq!(text(&out, "part-j7-0-7"), json_lines(4..6));
    assert_eq!(text(&out, "part-j7-0-8"), json_lines(6..7));
    // A late commit of what finish() completed is still fine.
    sink.commit(&[c1]).unwrap();
    assert_eq!(text(&out, "part-j7-0-6"), json_lines(2..4));
}

#[test]
fn recover_sink_completes_committables_and_aborts_this_jobs_leftover_uploads() {
    let server = S3Server::start();
    let s3 = server.options();
    server.create_bucket("recover-bucket");
    let path = "s3://recover-bucket/out";
    let out = Storage::open(path, &s3).unwrap();
    let roll = [("sink.rolling-policy.file-size", "10")];

    // Another job's prepared upload must survive our recovery.
    let mut other = create_sink(&sink_ctx(path, &s3, &roll, "j2")).unwrap();
    other.write(&batch(50..51)).unwrap();
    let other_c = other.pre_commit(1).unwrap();
    drop(other);

    let mut sink = create_sink(&sink_ctx(path, &s3, &roll, "j1")).unwrap();
    sink.write(&batch(0..2)).unwrap();
    let c1 = sink.pre_commit(1).unwrap();
    let state = sink.snapshot_state().unwrap();
    // After the checkpoint: a rolled (prepared) upload, then the process dies.
    sink.write(&batch(2..4)).unwrap();
    drop(sink);
    assert_eq!(names(&out), Vec::<String>::new());
    assert_eq!(out.list_pending_uploads("part-j1-0-1").unwrap().len(), 1);

    let mut ctx = sink_ctx(path, &s3, &roll, "j1");
    ctx.restored_states = Some(vec![state]);
    recover_sink(&ctx, std::slice::from_ref(&c1)).unwrap();
    assert_eq!(names(&out), vec!["part-j1-0-0"]);
    assert_eq!(text(&out, "part-j1-0-0"), json_lines(0..2));
    assert!(out.list_pending_uploads("part-j1-0-1").unwrap().is_empty(), "the leftover upload is aborted");
    assert_eq!(out.list_pending_uploads("part-j2-0-0").unwrap().len(), 1, "another job's upload is kept");
    // Idempotent: recovering again changes nothing.
    recover_sink(&ctx, std::slice::from_ref(&c1)).unwrap();
    assert_eq!(names(&out), vec!["part-j1-0-0"]);

    // The restored sink continues after the restored counter.
    let mut sink = create_sink(&ctx).unwrap();
    sink.write(&batch(10..12)).unwrap();
    let c2 = sink.pre_commit(2).unwrap();
    sink.commit(&[c2]).unwrap();
    assert_eq!(names(&out), vec!["part-j1-0-0", "part-j1-0-1"]);
    assert_eq!(text(&out, "part-j1-0-1"), json_lines(10..12));

    // The other job can still commit its part.
    recover_sink(&sink_ctx(path, &s3, &roll, "j2"), &[other_c]).unwrap();
    assert_eq!(text(&out, "part-j2-0-0"), json_lines(50..51));
}

#[test]
fn source_reads_a_prefix_and_resumes_from_a_snapshot_at_another_parallelism() {
    let server = S3Server::start();
    let s3 = server.options();
    server.create_bucket("src-bucket");
    let bucket = Storage::open("s3://src-bucket", &s3).unwrap();
    bucket.put("in/a.json", json_lines(0..40).as_bytes()).unwrap();
    bucket.put("in/sub/b.json", json_lines(40..75).as_bytes()).unwrap();
    // Hidden names, in any path segment, and objects outside the prefix are ignored.
    bucket.put("in/.x", b"not json at all\n").unwrap();
    bucket.put("in/_meta/c.json", json_lines(1000..1003).as_bytes()).unwrap();
    bucket.put("in/sub/.hidden/d.json", json_lines(2000..2003).as_bytes()).unwrap();
    bucket.put("input/e.json", json_lines(3000..3003).as_bytes()).unwrap();
    let path = "s3://src-bucket/in";

    let mut whole = create_source(&src_ctx(path, &s3, &[], 0, 1, None)).unwrap();
    assert_eq!(drain(whole.as_mut()), (0..75).collect::<Vec<_>>());

    // Two subtasks read part way (one batch each, 7 rows: both are in the
    // middle of their object), snapshot, and are restored as three.
    let mut seen = Vec::new();
    let mut snapshots = Vec::new();
    for i in 0..2 {
        let mut r = create_source(&src_ctx(path, &s3, &[], i, 2, None)).unwrap();
        assert!(r.has_work());
        match r.poll().unwrap() {
            SourceEvent::Batch(b) => {
                assert_eq!(b.num_rows(), 7);
                seen.extend(ids(&b));
            }
            other => panic!("expected a batch, got {other:?}"),
        }
        snapshots.extend(r.snapshot().unwrap());
    }
    assert_eq!(snapshots.len(), 2, "one split per object");
    for j in 0..3 {
        let mut r = create_source(&src_ctx(path, &s3, &[], j, 3, Some(snapshots.clone()))).unwrap();
        seen.extend(drain(r.as_mut()));
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..75).collect::<Vec<_>>(), "no row lost, none repeated");

    // A path naming one object reads that object.
    let mut one = create_source(&src_ctx("s3://src-bucket/in/sub/b.json", &s3, &[], 0, 1, None)).unwrap();
    assert_eq!(drain(one.as_mut()), (40..75).collect::<Vec<_>>());
}

#[test]
fn a_monitored_source_relists_the_prefix() {
    let server = S3Server::start();
    let s3 = server.options();
    server.create_bucket("mon-bucket");
    let dir = Storage::open("s3://mon-bucket/in", &s3).unwrap();
    dir.put("a.json", json_lines(0..3).as_bytes()).unwrap();
    let ctx = src_ctx("s3://mon-bucket/in", &s3, &[("source.monitor-interval", "100ms")], 0, 1, None);
    let mut r = create_source(&ctx).unwrap();
    let mut seen = Vec::new();
    fn poll_for(r: &mut Box<dyn SourceReader>, want: usize, seen: &mut Vec<i64>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.len() < want && Instant::now() < deadline {
            match r.poll().unwrap() {
                SourceEvent::Batch(b) => seen.extend(ids(&b)),
                SourceEvent::Idle => {}
                SourceEvent::End => panic!("a monitored source never ends"),
            }
        }
    }
    poll_for(&mut r, 3, &mut seen);
    assert_eq!(seen, vec![0, 1, 2]);
    dir.put("b.json", json_lines(3..5).as_bytes()).unwrap();
    poll_for(&mut r, 5, &mut seen);
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    // Each object is read once.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        assert!(!matches!(r.poll().unwrap(), SourceEvent::Batch(_)), "an object was read twice");
    }
}

#[test]
fn errors_name_the_table_the_uri_and_what_to_fix() {
    let server = S3Server::start();
    let s3 = server.options();

    // A missing bucket: the sink fails when it is created, the source too.
    let err = create_sink(&sink_ctx("s3://no-such-bucket/out", &s3, &[], "j1")).err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, ConnectorError::Storage { .. }), "{msg}");
    for want in ["table `dst`", "bucket 'no-such-bucket' does not exist", "s3://no-such-bucket/out"] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
    let err = create_source(&src_ctx("s3://no-such-bucket/in", &s3, &[], 0, 1, None)).err().unwrap();
    let msg = err.to_string();
    for want in ["table `src`", "bucket 'no-such-bucket' does not exist", "s3://no-such-bucket/in"] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
    let err = recover_sink(&sink_ctx("s3://no-such-bucket/out", &s3, &[], "j1"), &[]).unwrap_err();
    assert!(err.to_string().contains("no-such-bucket"), "{err}");

    // Wrong credentials.
    server.create_bucket("cred-bucket");
    let bad = S3Options { secret_key: Some("wrong-secret-key".into()), ..s3.clone() };
    let err = create_sink(&sink_ctx("s3://cred-bucket/out", &bad, &[], "j1")).err().unwrap();
    let msg = err.to_string();
    for want in ["table `dst`", "access to s3://cred-bucket/out was denied", "s3.secret-key"] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
    assert!(!msg.contains("wrong-secret-key"), "{msg}");

    // A malformed URI is an option error found by validation, without I/O.
    let bad_uri = opts(&[("connector", "filesystem"), ("path", "s3://No_Such/x"), ("format", "json")]);
    let err = validate_table("dst", &bad_uri, &schema(), Role::Sink).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConnectorError::InvalidOption { .. }), "{msg}");
    for want in ["table `dst`", "option 'path'", "s3://No_Such/x", "lowercase"] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
    let good = opts(&[("connector", "filesystem"), ("path", "s3://any-bucket/x"), ("format", "json")]);
    validate_table("dst", &good, &schema(), Role::Sink).unwrap();
    validate_table("src", &good, &schema(), Role::Source).unwrap();
}
