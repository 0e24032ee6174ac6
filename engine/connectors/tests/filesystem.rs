//! The filesystem connector through the public API: round trips, parse
//! errors with file and line, directory monitoring, hidden in-progress files,
//! rolling, the file split across subtasks, and option validation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use sluice_connectors::{
    BatchError, ConnectorError, Role, SinkContext, SourceContext, SourceEvent, SourceReader, create_sink,
    create_source, is_bounded, validate_table,
};

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

fn source(
    path: &Path,
    extra: &[(&str, &str)],
    subtask: usize,
    parallelism: usize,
) -> Result<Box<dyn SourceReader>, ConnectorError> {
    let mut o = opts(&[("connector", "filesystem"), ("path", path.to_str().unwrap())]);
    o.extend(opts(extra));
    create_source(&SourceContext {
        table: "src".into(),
        options: o,
        schema: schema(),
        subtask,
        parallelism,
        batch_size: 3,
        local_time_zone: "UTC".into(),
        restored_splits: None,
        s3: sluice_connectors::S3Options::default(),
    })
}

fn sink_ctx(path: &Path, extra: &[(&str, &str)], subtask: usize) -> SinkContext {
    let mut o = opts(&[("connector", "filesystem"), ("path", path.to_str().unwrap())]);
    o.extend(opts(extra));
    SinkContext {
        table: "dst".into(),
        options: o,
        schema: schema(),
        subtask,
        parallelism: 2,
        job_id: "j1".into(),
        local_time_zone: "UTC".into(),
        restored_states: None,
        s3: sluice_connectors::S3Options::default(),
        checkpoint_interval: None,
        committer: Default::default(),
    }
}

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect()
}

fn drain(src: &mut dyn SourceReader) -> Result<Vec<RecordBatch>, ConnectorError> {
    let mut out = Vec::new();
    loop {
        match src.poll()? {
            SourceEvent::Batch(b) => out.push(b),
            SourceEvent::Idle => {}
            SourceEvent::End => return Ok(out),
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn in_progress_files_are_hidden_until_finish() {
    for format in ["json", "csv"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut sink = create_sink(&sink_ctx(&out, &[("format", format)], 1)).unwrap();
        sink.write(&batch(0..4)).unwrap();
        sink.write(&batch(4..7)).unwrap();
        assert_eq!(names(&out), vec![".part-j1-1-0.inprogress"]);
        // A reader of the directory sees nothing yet.
        let mut src = source(&out, &[("format", format)], 0, 1).unwrap();
        assert!(!src.has_work());
        assert!(matches!(src.poll().unwrap(), SourceEvent::End));
        sink.finish().unwrap();
        assert_eq!(names(&out), vec!["part-j1-1-0"]);
        let mut src = source(&out, &[("format", format)], 0, 1).unwrap();
        let got = drain(src.as_mut()).unwrap();
        assert_eq!(ids(&got), (0..7).collect::<Vec<_>>());
        assert_eq!(arrow::compute::concat_batches(&schema(), &got).unwrap(), batch(0..7), "{format} round trip");
    }
}

#[test]
fn files_roll_at_the_size_limit_and_numbering_continues() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = sink_ctx(dir.path(), &[("format", "json"), ("sink.rolling-policy.file-size", "10b")], 0);
    let mut sink = create_sink(&ctx).unwrap();
    for i in 0..3 {
        sink.write(&batch(i..i + 1)).unwrap();
    }
    assert_eq!(
        names(dir.path()),
        vec![".part-j1-0-0.inprogress", ".part-j1-0-1.inprogress", ".part-j1-0-2.inprogress"]
    );
    sink.finish().unwrap();
    assert_eq!(names(dir.path()), vec!["part-j1-0-0", "part-j1-0-1", "part-j1-0-2"]);
    assert_eq!(std::fs::read_to_string(dir.path().join("part-j1-0-1")).unwrap(), "{\"id\":1,\"name\":\"n1\"}\n");
    // A second run of the same job adds parts; it never overwrites.
    let mut sink = create_sink(&ctx).unwrap();
    sink.write(&batch(9..10)).unwrap();
    sink.finish().unwrap();
    assert_eq!(names(dir.path()).last().map(String::as_str), Some("part-j1-0-3"));
    // A subtask that got no rows writes no file.
    let mut empty = create_sink(&sink_ctx(dir.path(), &[("format", "json")], 1)).unwrap();
    empty.finish().unwrap();
    assert_eq!(names(dir.path()).len(), 4);
}

#[test]
fn files_are_split_across_subtasks_and_hidden_names_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::create_dir_all(dir.path().join("_meta")).unwrap();
    for (name, id) in
        [("a", 0), ("b", 1), ("c", 2), ("sub/d", 3), ("sub/e", 4), (".hidden", 90), ("_SUCCESS", 91), ("_meta/x", 92)]
    {
        std::fs::write(dir.path().join(name), format!("{{\"id\":{id}}}\n")).unwrap();
    }
    let read = |i: usize| ids(&drain(source(dir.path(), &[("format", "json")], i, 2).unwrap().as_mut()).unwrap());
    // Sorted: a b c sub/d sub/e → subtask 0 reads a, c, sub/e.
    assert_eq!(read(0), vec![0, 2, 4]);
    assert_eq!(read(1), vec![1, 3]);
    let mut idle = source(dir.path(), &[("format", "json")], 7, 8).unwrap();
    assert!(!idle.has_work());
    // Every subtask knows the source's five splits, its own or not.
    assert_eq!(idle.splits(), Some(5));
    assert!(matches!(idle.poll().unwrap(), SourceEvent::End));
    // A single file as the path.
    assert_eq!(
        ids(&drain(source(&dir.path().join("b"), &[("format", "json")], 0, 1).unwrap().as_mut()).unwrap()),
        vec![1]
    );
}

#[test]
fn a_malformed_json_line_fails_with_file_and_line_or_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.json");
    std::fs::write(&file, "{\"id\":1}\n\n{\"id\":2,\"name\":\"x\"}\n{\"id\":3,\n{\"id\":4}\n{\"id\":\"five\"}\n")
        .unwrap();
    let err = drain(source(dir.path(), &[("format", "json")], 0, 1).unwrap().as_mut()).unwrap_err();
    match &err {
        ConnectorError::Parse { path, line, .. } => {
            assert_eq!(path, &file);
            assert_eq!(*line, 4);
        }
        other => panic!("expected a parse error, got {other}"),
    }
    assert!(err.to_string().starts_with(&format!("table `src`: {}:4: malformed JSON", file.display())), "{err}");
    let mut src = source(dir.path(), &[("format", "json"), ("json.ignore-parse-errors", "true")], 0, 1).unwrap();
    let got = drain(src.as_mut()).unwrap();
    // The malformed line is skipped and counted; the bad value becomes NULL, as in Flink.
    assert_eq!(got.iter().map(|b| b.num_rows()).sum::<usize>(), 4);
    let all = arrow::compute::concat_batches(&schema(), &got).unwrap();
    let idcol = all.column(0).as_primitive::<Int64Type>();
    assert_eq!(idcol.iter().collect::<Vec<_>>(), vec![Some(1), Some(2), Some(4), None]);
    assert_eq!(src.skipped_records(), 1);
    // Without ignore, a bad value fails with its line too.
    std::fs::write(&file, "{\"id\":1}\n{\"id\":\"five\"}\n").unwrap();
    let err = drain(source(dir.path(), &[("format", "json")], 0, 1).unwrap().as_mut()).unwrap_err();
    assert!(matches!(err, ConnectorError::Parse { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("field `id`"), "{err}");
}

#[test]
fn csv_errors_count_lines_of_multi_line_records() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.csv");
    std::fs::write(&file, "1,\"two\nlines\"\n2,ok\n3\n4,x\n").unwrap();
    let err = drain(source(dir.path(), &[("format", "csv")], 0, 1).unwrap().as_mut()).unwrap_err();
    assert!(matches!(err, ConnectorError::Parse { line: 4, .. }), "{err}");
    assert!(err.to_string().ends_with(":4: row length mismatch: 2 fields expected but was 1"), "{err}");
    let mut src = source(dir.path(), &[("format", "csv"), ("csv.ignore-parse-errors", "true")], 0, 1).unwrap();
    let got = drain(src.as_mut()).unwrap();
    assert_eq!(ids(&got), vec![1, 2, 4]);
    assert_eq!(got[0].column(1).as_string::<i32>().value(0), "two\nlines");
    assert_eq!(src.skipped_records(), 1);
}

#[test]
fn monitor_interval_picks_up_new_files_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1.json"), "{\"id\":1}\n{\"id\":2}\n").unwrap();
    let o = [("format", "json"), ("source.monitor-interval", "50 ms")];
    assert!(!is_bounded(&opts(&[("connector", "filesystem"), ("source.monitor-interval", "50 ms")])));
    let mut src = source(dir.path(), &o, 0, 1).unwrap();
    let mut seen = Vec::new();
    let poll_until = |src: &mut Box<dyn SourceReader>, want: usize, seen: &mut Vec<i64>| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.len() < want && Instant::now() < deadline {
            match src.poll().unwrap() {
                SourceEvent::Batch(b) => seen.extend(ids(&[b])),
                SourceEvent::Idle => {}
                SourceEvent::End => panic!("a monitored source never ends"),
            }
        }
    };
    poll_until(&mut src, 2, &mut seen);
    assert_eq!(seen, vec![1, 2]);
    // Files appear atomically: written hidden, then renamed.
    std::fs::write(dir.path().join(".2.json.tmp"), "{\"id\":3}\n").unwrap();
    std::fs::rename(dir.path().join(".2.json.tmp"), dir.path().join("2.json")).unwrap();
    poll_until(&mut src, 3, &mut seen);
    assert_eq!(seen, vec![1, 2, 3]);
    assert_eq!(src.splits(), Some(2), "a new file is a new split");
    // Nothing is read twice, however often the directory is listed again.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        assert!(matches!(src.poll().unwrap(), SourceEvent::Idle));
    }
}

#[test]
fn missing_paths_and_bad_options_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = source(&missing, &[("format", "json")], 0, 1).err().unwrap();
    assert!(matches!(err, ConnectorError::Io { ref path, .. } if path == &missing), "{err}");
    let check = |pairs: &[(&str, &str)], role: Role| {
        validate_table("t", &opts(pairs), &schema(), role).err().map(|e| e.to_string())
    };
    assert_eq!(
        check(&[("connector", "filesystem"), ("format", "json")], Role::Source).as_deref(),
        Some("table `t`: missing required option 'path' (a file or directory path)")
    );
    assert_eq!(
        check(&[("connector", "filesystem"), ("path", "/x")], Role::Sink).as_deref(),
        Some("table `t`: missing required option 'format' (the file format: 'json' or 'csv')")
    );
    assert_eq!(
        check(&[("connector", "filesystem"), ("path", "/x"), ("format", "avro")], Role::Sink).as_deref(),
        Some(
            "table `t`: unsupported format 'avro' in option 'format'; supported formats are 'json', 'csv', and the changelog formats 'debezium-json', 'canal-json' and 'maxwell-json'"
        )
    );
    assert_eq!(
        check(
            &[("connector", "filesystem"), ("path", "/x"), ("format", "json"), ("source.monitor-interval", "often")],
            Role::Source
        )
        .as_deref(),
        Some(
            "table `t`: option 'source.monitor-interval' = 'often' is invalid: expected a duration such as '500 ms', '1 s', '2 min', '1 h' or '1 d'"
        )
    );
    assert!(
        check(
            &[("connector", "filesystem"), ("path", "/x"), ("format", "json"), ("json.ignore-parse-errors", "yes")],
            Role::Source
        )
        .unwrap()
        .contains("option 'json.ignore-parse-errors' = 'yes' is invalid: expected 'true' or 'false'")
    );
    // The changelog formats write, as Flink's do, except Debezium's schema wrapper.
    let fs = |extra: &[(&str, &str)], role: Role| {
        let mut pairs = vec![("connector", "filesystem"), ("path", "/x")];
        pairs.extend_from_slice(extra);
        check(&pairs, role)
    };
    for f in ["debezium-json", "canal-json", "maxwell-json"] {
        let plain = format!("{f}.encode.decimal-as-plain-number");
        assert_eq!(fs(&[("format", f), (&plain, "true")], Role::Sink), None, "{f}");
        let mode = format!("{f}.map-null-key.mode");
        assert_eq!(
            fs(&[("format", f), (&mode, "NONE")], Role::Sink).as_deref(),
            Some(
                format!("table `t`: option '{mode}' = 'NONE' is invalid: expected 'FAIL', 'DROP' or 'LITERAL'")
                    .as_str()
            )
        );
    }
    let wrapped = [("format", "debezium-json"), ("debezium-json.schema-include", "true")];
    assert_eq!(fs(&wrapped, Role::Source), None);
    assert_eq!(
        fs(&wrapped, Role::Sink).as_deref(),
        Some(
            "table `t`: Debezium JSON serialization doesn't support 'debezium-json.schema-include' option been set to true"
        )
    );
    // The formats' metadata is Kafka's, as in Flink, whose filesystem source has only 'file.*' keys.
    let with_meta = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("tb", DataType::Utf8, true).with_metadata(std::collections::HashMap::from([(
            sluice_api::columns::METADATA_KEY.to_string(),
            "value.source.table".to_string(),
        )])),
    ]));
    let e = validate_table(
        "t",
        &opts(&[("connector", "filesystem"), ("path", "/x"), ("format", "debezium-json")]),
        &with_meta,
        Role::Source,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("table `t`: column `tb`: connector 'filesystem' has no metadata columns")
            && e.contains("is read by 'kafka' tables; Flink's filesystem source offers only its 'file.*' keys"),
        "{e}"
    );
    // Options of the other format are unknown here, as in Flink.
    assert!(
        check(
            &[("connector", "filesystem"), ("path", "/x"), ("format", "csv"), ("json.ignore-parse-errors", "true")],
            Role::Source
        )
        .unwrap()
        .contains("unsupported option 'json.ignore-parse-errors' for connector 'filesystem'")
    );
    assert!(
        check(&[("connector", "filesystem"), ("path", "/x"), ("format", "csv"), ("csv.delimiter", ";")], Role::Source)
            .unwrap()
            .contains("unsupported option 'csv.delimiter' for connector 'filesystem'")
    );
    assert_eq!(
        check(&[("connector", "pulsar")], Role::Source).as_deref(),
        Some(
            "table `t`: unknown connector 'pulsar'; supported connectors are 'datagen' (source), 'nexmark' (source), 'filesystem' (source and sink), 'kafka' (source and sink), 'upsert-kafka' (source and sink), 'print' (sink) and 'blackhole' (sink)"
        )
    );
    assert_eq!(
        check(&[], Role::Source).as_deref().map(|s| s.starts_with("table `t`: missing required option 'connector'")),
        Some(true)
    );
    assert_eq!(
        check(&[("connector", "print")], Role::Source).as_deref(),
        Some("table `t`: connector 'print' can only be used as a sink")
    );
    let dates =
        Arc::new(Schema::new(vec![Field::new("day", DataType::Time32(arrow::datatypes::TimeUnit::Millisecond), true)]));
    let e = validate_table(
        "t",
        &opts(&[("connector", "filesystem"), ("path", "/x"), ("format", "json")]),
        &dates,
        Role::Sink,
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("table `t`: column `day` has type TIME, which connector 'filesystem' does not support; supported types are BOOLEAN"), "{e}");
    assert!(
        validate_table("t", &opts(&[("connector", "blackhole"), ("sink.parallelism", "2")]), &schema(), Role::Sink)
            .is_ok()
    );
}

#[test]
fn a_batch_that_is_not_the_tables_is_an_error_with_a_typed_cause() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = create_sink(&sink_ctx(dir.path(), &[("format", "json")], 0)).unwrap();
    let other =
        Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true), Field::new("name", DataType::Utf8, true)]));
    let wrong = RecordBatch::try_new(
        other,
        vec![Arc::new(StringArray::from(vec!["1"])), Arc::new(StringArray::from(vec!["a"]))],
    )
    .unwrap();
    let err = sink.write(&wrong).unwrap_err();
    assert_eq!(err.to_string(), "table `dst`: column 1 of a batch has Arrow type Utf8 but the table declares BIGINT");
    let source = std::error::Error::source(&err).and_then(|e| e.downcast_ref::<BatchError>());
    assert!(matches!(source, Some(BatchError::Columns(_))), "{source:?}");
}

#[test]
fn the_lag_is_the_unread_bytes_by_the_mean_record_size_unknown_before_a_record() {
    let dir = tempfile::tempdir().unwrap();
    // Two files of 10 records of the same width: 20 records in all.
    for f in 0..2 {
        let lines: String =
            (0..10).map(|i| format!("{{\"id\":{},\"name\":\"n{:02}\"}}\n", 10 + f * 10 + i, i)).collect();
        std::fs::write(dir.path().join(format!("f{f}.json")), lines).unwrap();
    }
    let mut src = source(dir.path(), &[("format", "json")], 0, 1).unwrap();
    assert_eq!(src.pending_records(), None, "nothing read yet: no mean to count records by");
    let mut read = 0;
    loop {
        match src.poll().unwrap() {
            SourceEvent::Batch(b) => {
                read += b.num_rows() as u64;
                // Every record is as wide, so the estimate is exact.
                assert_eq!(src.pending_records(), Some(20 - read), "after {read} records");
            }
            SourceEvent::Idle => {}
            SourceEvent::End => break,
        }
    }
    assert_eq!((read, src.pending_records()), (20, Some(0)));
}
