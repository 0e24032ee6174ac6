//! Checkpoint hooks through the public API: source splits snapshotted part way
//! and restored at another parallelism give exactly the rows of an
//! uninterrupted run; the filesystem sink's two-phase commit, its recovery
//! and its part numbering across restores.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use sluice_connectors::{
    SinkContext, SinkWriter, SourceContext, SourceEvent, SourceReader, StateError, create_sink, create_source,
    recover_sink,
};

fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn src_ctx(
    options: &BTreeMap<String, String>,
    schema: &SchemaRef,
    subtask: usize,
    parallelism: usize,
    batch_size: usize,
    restored: Option<&[Vec<u8>]>,
) -> SourceContext {
    SourceContext {
        table: "t".into(),
        options: options.clone(),
        schema: schema.clone(),
        subtask,
        parallelism,
        batch_size,
        local_time_zone: "UTC".into(),
        restored_splits: restored.map(<[Vec<u8>]>::to_vec),
        s3: sluice_connectors::S3Options::default(),
    }
}

/// Each row as text, columns joined by `|`.
fn rows(b: &RecordBatch) -> Vec<String> {
    let cols: Vec<Vec<String>> = b
        .columns()
        .iter()
        .map(|c| {
            let f = arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default()).unwrap();
            (0..b.num_rows()).map(|r| f.value(r).to_string()).collect()
        })
        .collect();
    (0..b.num_rows()).map(|r| cols.iter().map(|c| c[r].as_str()).collect::<Vec<_>>().join("|")).collect()
}

fn drain(r: &mut dyn SourceReader) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        match r.poll().unwrap() {
            SourceEvent::Batch(b) => out.extend(rows(&b)),
            SourceEvent::Idle => {}
            SourceEvent::End => return out,
        }
    }
}

/// Polls until `polls` batches came back (or the reader ended).
fn poll_batches(r: &mut dyn SourceReader, polls: usize) -> Vec<String> {
    poll_some(r, polls, false)
}

/// Polls until `polls` batches came back, the reader ended, or (with
/// `stop_on_idle`) it had nothing to give.
fn poll_some(r: &mut dyn SourceReader, polls: usize, stop_on_idle: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut got = 0;
    while got < polls {
        match r.poll().unwrap() {
            SourceEvent::Batch(b) => {
                out.extend(rows(&b));
                got += 1;
            }
            SourceEvent::Idle if stop_on_idle => break,
            SourceEvent::Idle => {}
            SourceEvent::End => break,
        }
    }
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Reads `polls[i]` batches from each subtask `i` of a fresh source at
/// parallelism `polls.len()`, snapshots every subtask, restores at each of
/// `restore_at` and drains: the rows before and after, together, must be the
/// rows of one uninterrupted run, each exactly once, and no subtask is idle.
fn check_bounded_rescale(
    options: &BTreeMap<String, String>,
    schema: &SchemaRef,
    polls: &[usize],
    restore_at: &[usize],
) {
    let full = sorted(drain(create_source(&src_ctx(options, schema, 0, 1, 1000, None)).unwrap().as_mut()));
    assert!(full.len() > 100, "too few rows to test: {}", full.len());
    let p = polls.len();
    let mut before = Vec::new();
    let mut splits = Vec::new();
    for (i, &n) in polls.iter().enumerate() {
        let mut r = create_source(&src_ctx(options, schema, i, p, 7, None)).unwrap();
        before.extend(poll_batches(r.as_mut(), n));
        splits.extend(r.snapshot().unwrap());
    }
    assert!(!before.is_empty() && before.len() < full.len());
    for &q in restore_at {
        let mut all = before.clone();
        let mut idle_readers = 0;
        for j in 0..q {
            let mut r = create_source(&src_ctx(options, schema, j, q, 5, Some(&splits))).unwrap();
            if !r.has_work() {
                idle_readers += 1;
            }
            all.extend(drain(r.as_mut()));
            // A drained reader ends again, and its snapshot restores to nothing more.
            assert!(matches!(r.poll().unwrap(), SourceEvent::End));
        }
        assert_eq!(sorted(all), full, "{p} -> {q}: rows lost or repeated");
        // A generator divides its splits: every subtask has work at any parallelism.
        assert_eq!(idle_readers, 0, "{p} -> {q}: a subtask without work");
    }
}

fn datagen_options() -> (BTreeMap<String, String>, SchemaRef) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("d", DataType::Float64, true),
    ]));
    let o = opts(&[
        ("connector", "datagen"),
        ("rows-per-second", "1000000000"),
        ("seed", "7"),
        ("fields.id.kind", "sequence"),
        ("fields.id.start", "1"),
        ("fields.id.end", "1000"),
        ("fields.v.min", "0"),
        ("fields.v.max", "1000000"),
        ("fields.v.null-rate", "0.1"),
        ("fields.s.length", "6"),
    ]);
    (o, schema)
}

#[test]
fn datagen_splits_restore_at_any_parallelism() {
    let (o, schema) = datagen_options();
    check_bounded_rescale(&o, &schema, &[3, 11], &[1, 2, 3, 5]);
    // With number-of-rows instead of a sequence, and an odd split.
    let mut o2 = o.clone();
    for k in ["fields.id.kind", "fields.id.start", "fields.id.end"] {
        o2.remove(k);
    }
    o2.insert("number-of-rows".into(), "1001".into());
    check_bounded_rescale(&o2, &schema, &[20, 0, 4], &[1, 2, 4]);
}

#[test]
fn datagen_restores_twice() {
    // 2 -> 3 -> 1: the splits of a restored reader snapshot and restore again.
    let (o, schema) = datagen_options();
    let full = sorted(drain(create_source(&src_ctx(&o, &schema, 0, 1, 1000, None)).unwrap().as_mut()));
    let mut seen = Vec::new();
    let mut splits = Vec::new();
    for i in 0..2 {
        let mut r = create_source(&src_ctx(&o, &schema, i, 2, 10, None)).unwrap();
        seen.extend(poll_batches(r.as_mut(), 4 + i));
        splits.extend(r.snapshot().unwrap());
    }
    let mut splits2 = Vec::new();
    for j in 0..3 {
        let mut r = create_source(&src_ctx(&o, &schema, j, 3, 9, Some(&splits))).unwrap();
        assert!(r.has_work(), "subtask {j} of 3 after 2 splits");
        seen.extend(poll_batches(r.as_mut(), 3));
        let snap = r.snapshot().unwrap();
        assert_eq!(snap.len(), 2, "2 splits of stride 2 become 6 of stride 6, 2 a subtask");
        splits2.extend(snap);
    }
    let mut r = create_source(&src_ctx(&o, &schema, 0, 1, 64, Some(&splits2))).unwrap();
    // The schedule carries over: the restored readers were behind at a billion
    // rows a second, so every row left is due, before the first poll too.
    assert_eq!(r.pending_records(), Some((full.len() - seen.len()) as u64));
    seen.extend(poll_batches(r.as_mut(), 1));
    std::thread::sleep(std::time::Duration::from_millis(2));
    // At a billion rows a second every row left is due: the lag is the rows left.
    assert_eq!(r.pending_records(), Some((full.len() - seen.len()) as u64));
    seen.extend(drain(r.as_mut()));
    assert_eq!(sorted(seen), full);
}

#[test]
fn unbounded_datagen_continues_each_stride() {
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    let o = opts(&[("connector", "datagen"), ("rows-per-second", "1000000000"), ("seed", "3")]);
    // An uninterrupted run's first 60 rows of each stride of 2.
    let mut expect = Vec::new();
    for i in 0..2 {
        let mut r = create_source(&src_ctx(&o, &schema, i, 2, 10, None)).unwrap();
        expect.extend(poll_batches(r.as_mut(), 6));
    }
    let mut got = Vec::new();
    let mut splits = Vec::new();
    for i in 0..2 {
        let mut r = create_source(&src_ctx(&o, &schema, i, 2, 10, None)).unwrap();
        got.extend(poll_batches(r.as_mut(), 2 + i));
        splits.extend(r.snapshot().unwrap());
    }
    // One reader takes both strides, in turn, batch by batch.
    let mut r = create_source(&src_ctx(&o, &schema, 0, 1, 10, Some(&splits))).unwrap();
    // Unbounded, but its lag is known: the rows behind its schedule, which
    // carries over the snapshot (the readers were behind at a billion a second).
    assert!(r.pending_records().is_some_and(|l| l > 0), "{:?}", r.pending_records());
    got.extend(poll_batches(r.as_mut(), 7));
    assert_eq!(sorted(got), sorted(expect));
    // At 3, each subtask takes a third of the stream: the third one too.
    let mut third = create_source(&src_ctx(&o, &schema, 2, 3, 10, Some(&splits))).unwrap();
    assert!(third.has_work());
    assert_eq!(third.snapshot().unwrap().len(), 2, "two of the six strides of 6");
    assert!(matches!(third.poll().unwrap(), SourceEvent::Batch(_)));
    // A reader with no split idles, for ever.
    let mut none = create_source(&src_ctx(&o, &schema, 0, 3, 10, Some(&[]))).unwrap();
    assert!(!none.has_work());
    assert!(matches!(none.poll().unwrap(), SourceEvent::Idle));
    assert!(none.snapshot().unwrap().is_empty());
}

fn nexmark(table: &str) -> (BTreeMap<String, String>, SchemaRef) {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, None);
    let fields = match table {
        "bid" => vec![
            Field::new("auction", DataType::Int64, false),
            Field::new("bidder", DataType::Int64, false),
            Field::new("price", DataType::Int64, false),
            Field::new("channel", DataType::Utf8, false),
            Field::new("url", DataType::Utf8, false),
            Field::new("dateTime", ts(), false),
            Field::new("extra", DataType::Utf8, false),
        ],
        _ => vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("dateTime", ts(), false),
        ],
    };
    let o = opts(&[("connector", "nexmark"), ("nexmark.table", table), ("number-of-events", "10000"), ("seed", "5")]);
    (o, Arc::new(Schema::new(fields)))
}

#[test]
fn nexmark_splits_restore_at_any_parallelism() {
    let (o, schema) = nexmark("bid");
    check_bounded_rescale(&o, &schema, &[5, 17], &[1, 3]);
    let (o, schema) = nexmark("person");
    check_bounded_rescale(&o, &schema, &[9, 2], &[1, 3]);
}

#[test]
fn a_split_of_another_connector_or_table_is_a_clear_error() {
    let (o, schema) = nexmark("bid");
    let mut r = create_source(&src_ctx(&o, &schema, 0, 1, 10, None)).unwrap();
    let splits = r.snapshot().unwrap();
    let (person, pschema) = nexmark("person");
    let err = create_source(&src_ctx(&person, &pschema, 0, 1, 10, Some(&splits))).err().unwrap().to_string();
    assert!(
        err.starts_with("table `t`: cannot restore from checkpoint state: a nexmark split of another table"),
        "{err}"
    );
    let (d, dschema) = datagen_options();
    let err = create_source(&src_ctx(&d, &dschema, 0, 1, 10, Some(&splits))).err().unwrap();
    assert_eq!(
        err.to_string(),
        "table `t`: cannot restore from checkpoint state: expected a datagen split but found a nexmark split"
    );
    // The cause is typed, for callers that walk the error's sources.
    let source = std::error::Error::source(&err).and_then(|e| e.downcast_ref::<StateError>());
    assert!(
        matches!(source, Some(StateError::OtherKind { expected: "a datagen split", found: "a nexmark split" })),
        "{source:?}"
    );
    let _ = r.poll().unwrap();
}

// --- filesystem source -------------------------------------------------------

fn fs_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("name", DataType::Utf8, true)]))
}

/// Writes `files` files with 1 to 9 records each, ids unique; csv records
/// sometimes span two lines (a quoted newline), and there are blank lines
/// and comments that hold no record. Returns every id written.
fn write_files(dir: &Path, format: &str, first_file: usize, files: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for f in first_file..first_file + files {
        let sub = if f % 3 == 0 { dir.join("sub") } else { dir.to_path_buf() };
        std::fs::create_dir_all(&sub).unwrap();
        let mut text = String::new();
        for k in 0..(f % 9 + 1) {
            let id = (f * 100 + k) as i64;
            ids.push(id);
            match format {
                "json" => {
                    text.push_str(&format!("{{\"id\":{id},\"name\":\"n{id}\"}}\n"));
                    if k % 4 == 1 {
                        text.push('\n');
                    }
                }
                _ => {
                    if k % 3 == 1 {
                        text.push_str(&format!("{id},\"two\nlines {id}\"\n"));
                    } else {
                        text.push_str(&format!("{id},n{id}\r\n"));
                    }
                }
            }
        }
        // Written hidden, then renamed: files appear atomically.
        let tmp = sub.join(format!(".f{f}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, sub.join(format!("f{f:03}.{format}"))).unwrap();
    }
    ids
}

fn fs_options(dir: &Path, format: &str, monitor: bool) -> BTreeMap<String, String> {
    let mut o = opts(&[("connector", "filesystem"), ("path", dir.to_str().unwrap()), ("format", format)]);
    if monitor {
        o.insert("source.monitor-interval".into(), "20 ms".into());
    }
    o
}

fn ids_of(rows: &[String]) -> Vec<i64> {
    let mut v: Vec<i64> = rows.iter().map(|r| r.split('|').next().unwrap().parse().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn filesystem_source_restores_at_another_parallelism_bounded() {
    for format in ["json", "csv"] {
        for (polls, restore_at) in [(vec![2, 5], vec![1, 3]), (vec![1, 0, 7], vec![2, 1]), (vec![40], vec![4])] {
            let dir = tempfile::tempdir().unwrap();
            let mut expect = write_files(dir.path(), format, 0, 12);
            expect.sort();
            let o = fs_options(dir.path(), format, false);
            let schema = fs_schema();
            let p = polls.len();
            let mut before = Vec::new();
            let mut splits = Vec::new();
            for (i, &n) in polls.iter().enumerate() {
                let mut r = create_source(&src_ctx(&o, &schema, i, p, 3, None)).unwrap();
                before.extend(poll_batches(r.as_mut(), n));
                splits.extend(r.snapshot().unwrap());
            }
            // Files added after the first start are not part of a bounded source.
            write_files(dir.path(), format, 50, 2);
            for &q in &restore_at {
                let mut all = before.clone();
                for j in 0..q {
                    let mut r = create_source(&src_ctx(&o, &schema, j, q, 4, Some(&splits))).unwrap();
                    all.extend(drain(r.as_mut()));
                }
                assert_eq!(ids_of(&all), expect, "{format} {p} -> {q}");
                // Values are intact, too: a resumed csv record is whole.
                for row in &all {
                    let (id, name) = row.split_once('|').unwrap();
                    assert!(name == format!("n{id}") || name == format!("two\nlines {id}"), "{row}");
                }
            }
        }
    }
}

#[test]
fn filesystem_parse_errors_after_a_restore_keep_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.json");
    std::fs::write(&file, "{\"id\":1}\n{\"id\":2}\n\n{\"id\":3}\n{\"id\":4}\n{\"id\":5,\n").unwrap();
    let o = fs_options(dir.path(), "json", false);
    let mut r = create_source(&src_ctx(&o, &fs_schema(), 0, 1, 2, None)).unwrap();
    assert_eq!(ids_of(&poll_batches(r.as_mut(), 1)), vec![1, 2]);
    let splits = r.snapshot().unwrap();
    let mut r = create_source(&src_ctx(&o, &fs_schema(), 0, 1, 2, Some(&splits))).unwrap();
    assert_eq!(ids_of(&poll_batches(r.as_mut(), 1)), vec![3, 4]);
    let err = r.poll().unwrap_err().to_string();
    assert!(err.contains("a.json:6: malformed JSON"), "{err}");
}

fn poll_until(readers: &mut [Box<dyn SourceReader>], want: usize, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < want && Instant::now() < deadline {
        for r in readers.iter_mut() {
            match r.poll().unwrap() {
                SourceEvent::Batch(b) => seen.extend(rows(&b)),
                SourceEvent::Idle => {}
                SourceEvent::End => panic!("a monitored source never ends"),
            }
        }
    }
}

/// Polls every reader for a while and asserts that nothing comes.
fn assert_quiet(readers: &mut [Box<dyn SourceReader>]) {
    let until = Instant::now() + Duration::from_millis(150);
    while Instant::now() < until {
        for r in readers.iter_mut() {
            assert!(matches!(r.poll().unwrap(), SourceEvent::Idle), "a file was read twice");
        }
    }
}

#[test]
fn filesystem_source_restores_at_another_parallelism_monitored() {
    for format in ["json", "csv"] {
        let dir = tempfile::tempdir().unwrap();
        let mut expect = write_files(dir.path(), format, 0, 10);
        let o = fs_options(dir.path(), format, true);
        let schema = fs_schema();
        // Two subtasks read part of the directory; more files arrive.
        let mut seen = Vec::new();
        let mut splits = Vec::new();
        for (i, n) in [(0, 3), (1, 6)] {
            let mut r = create_source(&src_ctx(&o, &schema, i, 2, 3, None)).unwrap();
            seen.extend(poll_some(r.as_mut(), n, true));
            splits.extend(r.snapshot().unwrap());
        }
        expect.extend(write_files(dir.path(), format, 10, 3));
        // Three subtasks restore, read the rest and the new files, each once.
        let mut readers: Vec<Box<dyn SourceReader>> =
            (0..3).map(|j| create_source(&src_ctx(&o, &schema, j, 3, 4, Some(&splits))).unwrap()).collect();
        poll_until(&mut readers, expect.len(), &mut seen);
        expect.sort();
        assert_eq!(ids_of(&seen), expect, "{format} 2 -> 3");
        expect.extend(write_files(dir.path(), format, 20, 2));
        expect.sort();
        poll_until(&mut readers, expect.len(), &mut seen);
        assert_eq!(ids_of(&seen), expect, "{format}: files after the restore");
        assert_quiet(&mut readers);
        // Everything done is remembered: one subtask restored from these
        // snapshots reads only what arrives next.
        let splits: Vec<Vec<u8>> = readers.iter().flat_map(|r| r.snapshot().unwrap()).collect();
        assert_eq!(splits.len(), 15, "one split per file");
        let mut one = vec![create_source(&src_ctx(&o, &schema, 0, 1, 4, Some(&splits))).unwrap()];
        assert_quiet(&mut one);
        expect.extend(write_files(dir.path(), format, 30, 1));
        expect.sort();
        poll_until(&mut one, expect.len(), &mut seen);
        assert_eq!(ids_of(&seen), expect, "{format} 3 -> 1");
        assert_quiet(&mut one);
    }
}

// --- filesystem sink -----------------------------------------------------------

fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let names: Vec<String> = ids.clone().map(|i| format!("n{i}")).collect();
    RecordBatch::try_new(
        fs_schema(),
        vec![Arc::new(Int64Array::from(ids.collect::<Vec<_>>())), Arc::new(StringArray::from(names))],
    )
    .unwrap()
}

fn sink_ctx(dir: &Path, extra: &[(&str, &str)], job: &str, subtask: usize, p: usize) -> SinkContext {
    let mut o = opts(&[("connector", "filesystem"), ("path", dir.to_str().unwrap()), ("format", "json")]);
    o.extend(opts(extra));
    SinkContext {
        table: "dst".into(),
        options: o,
        schema: fs_schema(),
        subtask,
        parallelism: p,
        job_id: job.into(),
        local_time_zone: "UTC".into(),
        restored_states: None,
        s3: sluice_connectors::S3Options::default(),
        checkpoint_interval: None,
        committer: Default::default(),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// The ids in the visible files of `dir`, sorted.
fn visible_ids(dir: &Path) -> Vec<i64> {
    let o = fs_options(dir, "json", false);
    let mut r = create_source(&src_ctx(&o, &fs_schema(), 0, 1, 100, None)).unwrap();
    ids_of(&drain(r.as_mut()))
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn the_sink_commits_in_two_phases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut sink = create_sink(&sink_ctx(d, &[], "j1", 0, 1)).unwrap();
    // Nothing written: nothing to commit.
    assert!(sink.pre_commit(1).unwrap().is_empty());
    sink.write(&batch(0..3)).unwrap();
    let c2 = sink.pre_commit(2).unwrap();
    assert_eq!(names(d), vec![".part-j1-0-0.pending"]);
    // Rows after the barrier belong to the next checkpoint.
    sink.write(&batch(3..5)).unwrap();
    assert_eq!(names(d), vec![".part-j1-0-0.pending", ".part-j1-0-1.inprogress"]);
    assert_eq!(visible_ids(d), Vec::<i64>::new());
    sink.commit(std::slice::from_ref(&c2)).unwrap();
    assert_eq!(names(d), vec![".part-j1-0-1.inprogress", "part-j1-0-0"]);
    assert_eq!(
        read(d, "part-j1-0-0"),
        "{\"id\":0,\"name\":\"n0\"}\n{\"id\":1,\"name\":\"n1\"}\n{\"id\":2,\"name\":\"n2\"}\n"
    );
    // Committing again is a no-op.
    sink.commit(std::slice::from_ref(&c2)).unwrap();
    sink.commit(&[Vec::new()]).unwrap();
    let c3 = sink.pre_commit(3).unwrap();
    assert_eq!(names(d), vec![".part-j1-0-1.pending", "part-j1-0-0"]);
    sink.commit(&[c3]).unwrap();
    assert_eq!(names(d), vec!["part-j1-0-0", "part-j1-0-1"]);
    assert_eq!(visible_ids(d), (0..5).collect::<Vec<_>>());
    // A committable whose files are gone entirely is an error, not a silent loss.
    std::fs::remove_file(d.join("part-j1-0-0")).unwrap();
    let err = sink.commit(&[c2]).unwrap_err().to_string();
    assert!(err.contains("neither the pending file nor the final file"), "{err}");
    assert_eq!(sink.snapshot_state().unwrap().len(), 10);
}

#[test]
fn files_rolled_between_checkpoints_wait_for_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut sink = create_sink(&sink_ctx(d, &[("sink.rolling-policy.file-size", "30b")], "j1", 1, 2)).unwrap();
    sink.write(&batch(0..2)).unwrap();
    sink.write(&batch(2..3)).unwrap();
    sink.write(&batch(3..4)).unwrap();
    sink.write(&batch(4..5)).unwrap();
    // Two files rolled at 30 bytes, the third is open.
    assert_eq!(names(d), vec![".part-j1-1-0.inprogress", ".part-j1-1-1.inprogress", ".part-j1-1-2.inprogress"]);
    let c = sink.pre_commit(1).unwrap();
    assert_eq!(names(d), vec![".part-j1-1-0.pending", ".part-j1-1-1.pending", ".part-j1-1-2.pending"]);
    assert_eq!(visible_ids(d), Vec::<i64>::new());
    sink.commit(&[c]).unwrap();
    assert_eq!(names(d), vec!["part-j1-1-0", "part-j1-1-1", "part-j1-1-2"]);
    assert_eq!(visible_ids(d), (0..5).collect::<Vec<_>>());
    assert_eq!(read(d, "part-j1-1-2"), "{\"id\":4,\"name\":\"n4\"}\n");
}

#[test]
fn time_based_rolling_closes_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let extra = [("sink.rolling-policy.rollover-interval", "50 ms"), ("sink.rolling-policy.check-interval", "10 ms")];
    let mut sink = create_sink(&sink_ctx(d, &extra, "j1", 0, 1)).unwrap();
    sink.write(&batch(0..1)).unwrap();
    sink.write(&batch(1..2)).unwrap();
    std::thread::sleep(Duration::from_millis(80));
    sink.write(&batch(2..3)).unwrap();
    assert_eq!(names(d), vec![".part-j1-0-0.inprogress", ".part-j1-0-1.inprogress"]);
    sink.finish().unwrap();
    assert_eq!(read(d, "part-j1-0-1"), "{\"id\":2,\"name\":\"n2\"}\n");
    let mut sink =
        create_sink(&sink_ctx(d, &[("sink.rolling-policy.inactivity-interval", "50 ms")], "j2", 0, 1)).unwrap();
    sink.write(&batch(0..1)).unwrap();
    std::thread::sleep(Duration::from_millis(80));
    sink.write(&batch(1..2)).unwrap();
    sink.finish().unwrap();
    assert_eq!(read(d, "part-j2-0-1"), "{\"id\":1,\"name\":\"n1\"}\n");
}

#[test]
fn finish_makes_pre_committed_files_visible_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut sink = create_sink(&sink_ctx(d, &[], "j1", 0, 1)).unwrap();
    sink.write(&batch(0..2)).unwrap();
    let c = sink.pre_commit(1).unwrap();
    sink.write(&batch(2..4)).unwrap();
    sink.finish().unwrap();
    assert_eq!(names(d), vec!["part-j1-0-0", "part-j1-0-1"]);
    // The commit that arrives afterwards finds it done.
    sink.commit(&[c]).unwrap();
    assert_eq!(visible_ids(d), (0..4).collect::<Vec<_>>());
}

#[test]
fn a_restored_sink_keeps_exactly_the_checkpointed_output_and_never_reuses_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Someone else's output in the same directory, including hidden files.
    for other in
        ["part-j10-0-0", ".part-j10-0-1.pending", ".part-j1-x-0-0.pending", ".part-j1-x-1-3.inprogress", "_SUCCESS"]
    {
        std::fs::write(d.join(other), "").unwrap();
    }
    // Attempt 1 at parallelism 2: checkpoint 1 completes for subtask 0 only
    // (its commit ran), subtask 1's commit never ran; checkpoint 2 is
    // pre-committed but never completes, and rows are in progress.
    let mut w: Vec<Box<dyn SinkWriter>> = (0..2).map(|i| create_sink(&sink_ctx(d, &[], "j1", i, 2)).unwrap()).collect();
    w[0].write(&batch(0..2)).unwrap();
    w[1].write(&batch(2..4)).unwrap();
    w[1].write(&batch(4..5)).unwrap();
    let c1: Vec<Vec<u8>> = w.iter_mut().map(|s| s.pre_commit(1).unwrap()).collect();
    let states: Vec<Vec<u8>> = w.iter().map(|s| s.snapshot_state().unwrap()).collect();
    w[0].commit(&c1[..1]).unwrap();
    w[0].write(&batch(100..102)).unwrap();
    w[1].write(&batch(102..104)).unwrap();
    let _c2: Vec<Vec<u8>> = w.iter_mut().map(|s| s.pre_commit(2).unwrap()).collect();
    w[0].write(&batch(104..105)).unwrap();
    assert_eq!(visible_ids(d), vec![0, 1]);
    drop(w); // the crash
    // Recovery from checkpoint 1 commits its files and drops the later ones.
    recover_sink(&sink_ctx(d, &[], "j1", 0, 3), &c1).unwrap();
    assert_eq!(
        names(d),
        vec![
            ".part-j1-x-0-0.pending",
            ".part-j1-x-1-3.inprogress",
            ".part-j10-0-1.pending",
            "_SUCCESS",
            "part-j1-0-0",
            "part-j1-1-0",
            "part-j10-0-0"
        ]
    );
    assert_eq!(visible_ids(d), vec![0, 1, 2, 3, 4]);
    // Recovery is idempotent.
    recover_sink(&sink_ctx(d, &[], "j1", 0, 3), &c1).unwrap();
    // Attempt 2 at parallelism 3 continues above every counter.
    let mut w: Vec<Box<dyn SinkWriter>> = (0..3)
        .map(|i| {
            let mut ctx = sink_ctx(d, &[], "j1", i, 3);
            ctx.restored_states = Some(states.clone());
            create_sink(&ctx).unwrap()
        })
        .collect();
    for (i, s) in w.iter_mut().enumerate() {
        let i = i as i64;
        s.write(&batch(200 + 2 * i..202 + 2 * i)).unwrap();
    }
    let c: Vec<Vec<u8>> = w.iter_mut().map(|s| s.pre_commit(3).unwrap()).collect();
    for (s, c) in w.iter_mut().zip(&c) {
        s.commit(std::slice::from_ref(c)).unwrap();
    }
    let mine: Vec<String> = names(d).into_iter().filter(|n| n.starts_with("part-j1-")).collect();
    assert_eq!(mine, vec!["part-j1-0-0", "part-j1-0-1", "part-j1-1-0", "part-j1-1-1", "part-j1-2-1"]);
    // Exactly the rows of checkpoint 1 and of the new attempt.
    let ids: Vec<i64> = visible_ids(d).into_iter().filter(|i| *i < 1000).collect();
    assert_eq!(ids, vec![0, 1, 2, 3, 4, 200, 201, 202, 203, 204, 205]);
}

#[test]
fn a_fresh_start_cleans_up_only_this_jobs_hidden_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in [
        "part-j1-0-0",
        ".part-j1-0-1.pending",
        ".part-j1-3-7.inprogress",
        ".part-j1-x-0-0.pending",
        ".part-j2-0-0.inprogress",
        ".other",
        "part-j1-0-2",
    ] {
        std::fs::write(d.join(name), "").unwrap();
    }
    recover_sink(&sink_ctx(d, &[], "j1", 0, 1), &[]).unwrap();
    assert_eq!(
        names(d),
        vec![".other", ".part-j1-x-0-0.pending", ".part-j2-0-0.inprogress", "part-j1-0-0", "part-j1-0-2"]
    );
    // A missing directory has nothing to clean up; other connectors have no files.
    recover_sink(&sink_ctx(&d.join("none"), &[], "j1", 0, 1), &[]).unwrap();
    let mut print = sink_ctx(d, &[], "j1", 0, 1);
    print.options = opts(&[("connector", "print")]);
    recover_sink(&print, &[]).unwrap();
    // Numbering continues after visible parts of this subtask.
    let mut s = create_sink(&sink_ctx(d, &[], "j1", 0, 1)).unwrap();
    s.write(&batch(0..1)).unwrap();
    s.finish().unwrap();
    assert!(names(d).contains(&"part-j1-0-3".to_string()));
}

#[test]
fn print_and_blackhole_have_nothing_to_commit() {
    let dir = tempfile::tempdir().unwrap();
    for connector in ["print", "blackhole"] {
        let mut ctx = sink_ctx(dir.path(), &[], "j1", 0, 1);
        ctx.options = opts(&[("connector", connector), ("print-identifier", "cp")]);
        if connector == "blackhole" {
            ctx.options.remove("print-identifier");
        }
        let mut s = create_sink(&ctx).unwrap();
        s.write(&batch(0..1)).unwrap();
        assert!(s.pre_commit(1).unwrap().is_empty());
        s.commit(&[Vec::new()]).unwrap();
        assert!(s.snapshot_state().unwrap().is_empty());
        s.finish().unwrap();
    }
}

/// Checkpoint 2 committed, then found damaged: the restore of checkpoint 1
/// withdraws exactly what each subtask committed after checkpoint 1, and
/// nothing of another job, of an earlier checkpoint, or of a subtask it has
/// no state for.
#[test]
fn a_fallback_to_an_older_checkpoint_withdraws_what_later_checkpoints_committed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("part-j10-0-5"), "").unwrap();
    let mut w: Vec<Box<dyn SinkWriter>> = (0..2).map(|i| create_sink(&sink_ctx(d, &[], "j1", i, 2)).unwrap()).collect();
    w[0].write(&batch(0..2)).unwrap();
    w[1].write(&batch(2..3)).unwrap();
    let c1: Vec<Vec<u8>> = w.iter_mut().map(|s| s.pre_commit(1).unwrap()).collect();
    let states: Vec<(usize, Vec<u8>)> = w.iter().enumerate().map(|(i, s)| (i, s.snapshot_state().unwrap())).collect();
    for (s, c) in w.iter_mut().zip(&c1) {
        s.commit(std::slice::from_ref(c)).unwrap();
    }
    w[0].write(&batch(10..12)).unwrap();
    w[1].write(&batch(12..13)).unwrap();
    let c2: Vec<Vec<u8>> = w.iter_mut().map(|s| s.pre_commit(2).unwrap()).collect();
    for (s, c) in w.iter_mut().zip(&c2) {
        s.commit(std::slice::from_ref(c)).unwrap();
    }
    drop(w);
    assert_eq!(visible_ids(d), vec![0, 1, 2, 10, 11, 12]);
    let ctx = sink_ctx(d, &[], "j1", 0, 2);
    recover_sink(&ctx, &c1).unwrap();
    let withdrawn = sluice_connectors::withdraw_committed_after(&ctx, &states).unwrap();
    assert_eq!(withdrawn.len(), 2, "{withdrawn:?}");
    assert_eq!(visible_ids(d), vec![0, 1, 2]);
    assert!(names(d).contains(&"part-j10-0-5".to_string()));
    // Again: nothing more to withdraw. Without state for a subtask, its files stay.
    assert!(sluice_connectors::withdraw_committed_after(&ctx, &states).unwrap().is_empty());
    let mut w1 = create_sink(&sink_ctx(d, &[], "j1", 1, 2)).unwrap();
    w1.write(&batch(20..21)).unwrap();
    w1.finish().unwrap();
    assert!(sluice_connectors::withdraw_committed_after(&ctx, &states[..1]).unwrap().is_empty());
    assert_eq!(visible_ids(d), vec![0, 1, 2, 20]);
}
