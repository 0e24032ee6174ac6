//! The kafka connector against a real Apache Kafka broker (scripts/kafka.sh, one per test
//! binary): source startup modes, bounds, restore at another parallelism and errors; the
//! sink's guarantees, its recovery, and the fencing of zombie writers; metadata columns,
//! keys, `topic-pattern` and partition discovery.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use sluice_connectors::testing::shared;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use sluice_api::columns::{METADATA_KEY, PRIMARY_KEY};
use sluice_connectors::testing::{Record, unique_topic};
use sluice_connectors::{
    SinkContext, SourceContext, SourceEvent, SourceReader, create_sink, create_source, recover_sink,
};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("name", DataType::Utf8, true)]))
}

fn options(topic: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut o: BTreeMap<String, String> = [
        ("connector", "kafka"),
        ("topic", topic),
        ("properties.bootstrap.servers", shared().bootstrap.as_str()),
        ("format", "json"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    o.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    o
}

/// The error a source with these options fails to start with.
fn source_error(o: BTreeMap<String, String>) -> String {
    let ctx = SourceContext {
        table: "src".into(),
        options: o,
        schema: schema(),
        subtask: 0,
        parallelism: 1,
        batch_size: 7,
        local_time_zone: "UTC".into(),
        restored_splits: None,
        s3: sluice_connectors::S3Options::default(),
    };
    create_source(&ctx).err().expect("the source started").to_string()
}

fn source(
    o: &BTreeMap<String, String>,
    subtask: usize,
    parallelism: usize,
    restored: Option<Vec<Vec<u8>>>,
) -> Box<dyn SourceReader> {
    source_of(o, schema(), "UTC", subtask, parallelism, restored)
}

fn source_of(
    o: &BTreeMap<String, String>,
    schema: SchemaRef,
    local_time_zone: &str,
    subtask: usize,
    parallelism: usize,
    restored: Option<Vec<Vec<u8>>>,
) -> Box<dyn SourceReader> {
    create_source(&SourceContext {
        table: "src".into(),
        options: o.clone(),
        schema,
        subtask,
        parallelism,
        batch_size: 7,
        local_time_zone: local_time_zone.into(),
        restored_splits: restored,
        s3: sluice_connectors::S3Options::default(),
    })
    .unwrap()
}

fn ids(b: &RecordBatch) -> Vec<i64> {
    let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    (0..a.len()).map(|i| a.value(i)).collect()
}

/// Polls until `want` rows arrived, the source ended, or 20 s passed.
fn read(r: &mut dyn SourceReader, want: usize) -> (Vec<i64>, bool) {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.len() < want && Instant::now() < deadline {
        match r.poll().unwrap() {
            SourceEvent::Batch(b) => out.extend(ids(&b)),
            SourceEvent::Idle => {}
            SourceEvent::End => return (out, true),
        }
    }
    (out, false)
}

fn json(id: i64) -> Vec<u8> {
    format!("{{\"id\":{id},\"name\":\"n{id}\"}}").into_bytes()
}

/// `n` records, ids from `from`, spread over `partitions` partitions by id.
fn produce(topic: &str, from: i64, n: i64, partitions: i32) {
    let records: Vec<Record> =
        (from..from + n).map(|i| Record::new(json(i)).partition((i % i64::from(partitions)) as i32)).collect();
    shared().produce_all(topic, &records);
}

#[test]
fn the_source_starts_where_its_startup_mode_says_and_a_bounded_read_ends() {
    let b = shared();
    let topic = unique_topic("startup");
    b.create_topic(&topic, 2);
    produce(&topic, 0, 10, 2);
    let t_mid = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    std::thread::sleep(Duration::from_millis(20));
    produce(&topic, 10, 10, 2);
    let bounded = [("scan.bounded.mode", "latest-offset")];
    let run = |extra: &[(&str, &str)]| {
        let mut o = options(&topic, &bounded);
        o.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut r = source(&o, 0, 1, None);
        let (mut got, ended) = read(r.as_mut(), usize::MAX);
        assert!(ended, "a bounded read must end");
        got.sort();
        got
    };
    assert_eq!(run(&[("scan.startup.mode", "earliest-offset")]), (0..20).collect::<Vec<_>>());
    assert_eq!(run(&[("scan.startup.mode", "latest-offset")]), Vec::<i64>::new());
    let t = t_mid.to_string();
    assert_eq!(
        run(&[("scan.startup.mode", "timestamp"), ("scan.startup.timestamp-millis", &t)]),
        (10..20).collect::<Vec<_>>()
    );
    // Partition 0 holds the even ids, partition 1 the odd ones, in order.
    let got = run(&[
        ("scan.startup.mode", "specific-offsets"),
        ("scan.startup.specific-offsets", "partition:0,offset:8;partition:1,offset:9"),
    ]);
    assert_eq!(got, vec![16, 18, 19]);
    // group-offsets without a committed offset and without a reset policy is refused by name.
    let mut o = options(&topic, &[("properties.group.id", "nobody")]);
    o.extend(bounded.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let e = source_error(o);
    assert!(e.contains("group 'nobody' has no committed offset") && e.contains("auto.offset.reset"), "{e}");
    // An unbounded reader sees records produced after it started.
    let mut r = source(&options(&topic, &[("scan.startup.mode", "latest-offset")]), 0, 1, None);
    assert_eq!(read(r.as_mut(), 1).0, Vec::<i64>::new());
    produce(&topic, 100, 4, 2);
    let (mut got, _) = read(r.as_mut(), 4);
    got.sort();
    assert_eq!(got, vec![100, 101, 102, 103]);
    assert_eq!(r.pending_records().map(|p| p <= 4), Some(true));
    assert_eq!(r.splits(), Some(2));
}

#[test]
fn a_restore_at_another_parallelism_reads_every_record_exactly_once() {
    let topic = unique_topic("restore");
    shared().create_topic(&topic, 5);
    produce(&topic, 0, 200, 5);
    let o = options(&topic, &[("scan.startup.mode", "earliest-offset")]);
    // Two subtasks read part of it, then snapshot.
    let mut seen = Vec::new();
    let mut snaps = Vec::new();
    for s in 0..2 {
        let mut r = source(&o, s, 2, None);
        seen.extend(read(r.as_mut(), 40).0);
        snaps.extend(r.snapshot().unwrap());
    }
    assert_eq!(snaps.len(), 5, "one split per partition");
    // Records written meanwhile, then three subtasks go on from the snapshot.
    produce(&topic, 200, 50, 5);
    let mut readers: Vec<_> = (0..3).map(|s| source(&o, s, 3, Some(snaps.clone()))).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 250 && Instant::now() < deadline {
        for r in &mut readers {
            if let SourceEvent::Batch(b) = r.poll().unwrap() {
                seen.extend(ids(&b));
            }
        }
    }
    seen.sort();
    assert_eq!(seen, (0..250).collect::<Vec<_>>(), "every record once");
}

#[test]
fn records_that_cannot_be_read_and_missing_topics_are_named() {
    let topic = unique_topic("bad");
    shared().create_topic(&topic, 1);
    shared().produce_all(&topic, &[Record::new(json(1)), Record::new(b"{not json".to_vec()), Record::new(json(3))]);
    let bounded = [("scan.startup.mode", "earliest-offset"), ("scan.bounded.mode", "latest-offset")];
    let mut r = source(&options(&topic, &bounded), 0, 1, None);
    let e = loop {
        match r.poll() {
            Err(e) => break e.to_string(),
            Ok(SourceEvent::End) => panic!("the malformed record was not reported"),
            Ok(_) => {}
        }
    };
    assert!(e.contains(&format!("topic '{topic}' partition 0 offset 1")) && e.contains("ignore-parse-errors"), "{e}");
    let mut o = options(&topic, &bounded);
    o.insert("json.ignore-parse-errors".into(), "true".into());
    let mut r = source(&o, 0, 1, None);
    let (got, ended) = read(r.as_mut(), usize::MAX);
    assert!(ended);
    assert_eq!(got, vec![1, 3]);
    assert_eq!(r.skipped_records(), 1);
    let missing = source_error(options("no-such-topic", &bounded));
    assert!(missing.contains("topic 'no-such-topic' does not exist"), "{missing}");
}

fn sink_ctx(o: &BTreeMap<String, String>, subtask: usize, p: usize, restored: Option<Vec<Vec<u8>>>) -> SinkContext {
    SinkContext {
        table: "dst".into(),
        options: o.clone(),
        schema: schema(),
        subtask,
        parallelism: p,
        job_id: "job-1".into(),
        local_time_zone: "UTC".into(),
        restored_states: restored,
        s3: sluice_connectors::S3Options::default(),
        checkpoint_interval: Some(Duration::from_secs(1)),
    }
}

fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let names: Vec<String> = ids.clone().map(|i| format!("n{i}")).collect();
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(Int64Array::from(ids.collect::<Vec<_>>())), Arc::new(StringArray::from(names))],
    )
    .unwrap()
}

/// The ids a read_committed consumer sees, sorted.
fn committed_ids(topic: &str) -> Vec<i64> {
    let mut v: Vec<i64> = shared()
        .read_committed(topic)
        .iter()
        .filter_map(|m| m.value.as_ref())
        .map(|v| {
            let s = String::from_utf8_lossy(v);
            let id = s.split("\"id\":").nth(1).unwrap().split(',').next().unwrap();
            id.parse().unwrap()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn exactly_once_output_is_visible_at_commit_and_recovery_commits_what_a_checkpoint_covers() {
    let topic = unique_topic("eos");
    shared().create_topic(&topic, 3);
    let prefix = unique_topic("txn");
    let o = options(&topic, &[("sink.delivery-guarantee", "exactly-once"), ("sink.transactional-id-prefix", &prefix)]);
    recover_sink(&sink_ctx(&o, 0, 2, None), &[]).unwrap();
    let mut w0 = create_sink(&sink_ctx(&o, 0, 2, None)).unwrap();
    let mut w1 = create_sink(&sink_ctx(&o, 1, 2, None)).unwrap();
    w0.write(&batch(0..10)).unwrap();
    w1.write(&batch(10..20)).unwrap();
    let c0 = w0.pre_commit(1).unwrap();
    let c1 = w1.pre_commit(1).unwrap();
    assert_eq!(committed_ids(&topic), Vec::<i64>::new(), "nothing is visible before the commit");
    // (One writer's commit alone may show only part of its rows: the other's open
    // transaction holds back the last stable offset of the partitions they share.)
    w0.commit(&[c0]).unwrap();
    w1.commit(&[c1]).unwrap();
    assert_eq!(committed_ids(&topic), (0..20).collect::<Vec<_>>());
    // Checkpoint 2 completes, then the process dies before the writers commit it;
    // rows after checkpoint 2 are in open or pre-committed transactions.
    w0.write(&batch(20..25)).unwrap();
    w1.write(&batch(25..30)).unwrap();
    let c0b = w0.pre_commit(2).unwrap();
    let c1b = w1.pre_commit(2).unwrap();
    let states = vec![w0.snapshot_state().unwrap(), w1.snapshot_state().unwrap()];
    w0.write(&batch(1000..1005)).unwrap();
    w1.write(&batch(2000..2005)).unwrap();
    w0.pre_commit(3).unwrap();
    w1.write(&batch(3000..3001)).unwrap();
    std::mem::forget(w0);
    std::mem::forget(w1);
    // Restored from checkpoint 2 at parallelism 3: its committables are committed, the
    // later transactions aborted, and nothing of them is visible.
    let restored = sink_ctx(&o, 0, 3, Some(states.clone()));
    recover_sink(&restored, &[c0b, c1b]).unwrap();
    assert_eq!(committed_ids(&topic), (0..30).collect::<Vec<_>>());
    // Recovery is idempotent (a crash during recovery runs it again).
    recover_sink(&restored, &[]).unwrap();
    // The restored writers go on, and their output is committed once.
    let mut w = create_sink(&sink_ctx(&o, 2, 3, Some(states))).unwrap();
    w.write(&batch(30..35)).unwrap();
    let c = w.pre_commit(3).unwrap();
    w.commit(&[c]).unwrap();
    assert_eq!(committed_ids(&topic), (0..35).collect::<Vec<_>>());
    // A read_uncommitted consumer does see the aborted rows: they were written, then aborted.
    assert!(shared().read_uncommitted(&topic).len() > 35);
}

#[test]
fn a_zombie_writer_cannot_commit_after_recovery() {
    let topic = unique_topic("zombie");
    shared().create_topic(&topic, 1);
    let prefix = unique_topic("ztxn");
    let o = options(&topic, &[("sink.delivery-guarantee", "exactly-once"), ("sink.transactional-id-prefix", &prefix)]);
    let mut zombie = create_sink(&sink_ctx(&o, 0, 1, None)).unwrap();
    zombie.write(&batch(0..5)).unwrap();
    let state = zombie.snapshot_state().unwrap();
    // Another attempt restores from before those rows: it aborts and fences the zombie's transaction.
    recover_sink(&sink_ctx(&o, 0, 1, Some(vec![state])), &[]).unwrap();
    let c = zombie.pre_commit(1);
    let committed = c.and_then(|c| zombie.commit(&[c]));
    assert!(committed.is_err(), "the fenced zombie committed");
    assert_eq!(committed_ids(&topic), Vec::<i64>::new());
}

#[test]
fn at_least_once_flushes_at_each_checkpoint_and_keys_follow_key_fields() {
    let topic = unique_topic("alo");
    shared().create_topic(&topic, 4);
    let o = options(&topic, &[("key.format", "json"), ("key.fields", "id"), ("value.fields-include", "EXCEPT_KEY")]);
    let mut w = create_sink(&sink_ctx(&o, 0, 1, None)).unwrap();
    w.write(&batch(0..20)).unwrap();
    assert!(w.pre_commit(1).unwrap().is_empty());
    let msgs = shared().read_committed(&topic);
    assert_eq!(msgs.len(), 20);
    let m = msgs.iter().find(|m| m.key.as_deref() == Some(&b"{\"id\":7}"[..])).expect("a record keyed by id 7");
    assert_eq!(m.value.as_deref(), Some(&b"{\"name\":\"n7\"}"[..]));
    // The same key always goes to the same partition (murmur2, as the Java client).
    let parts: std::collections::BTreeSet<i32> = msgs.iter().map(|m| m.partition).collect();
    assert!(parts.len() > 1, "keys spread over partitions");
    // Options are checked with the table named.
    let bad =
        options(&topic, &[("sink.delivery-guarantee", "exactly-once"), ("properties.transaction.timeout.ms", "500")]);
    let e = create_sink(&sink_ctx(&bad, 0, 1, None)).err().unwrap().to_string();
    assert!(e.contains("table `dst`") && e.contains("must be longer than the checkpoint interval"), "{e}");
}

#[test]
fn a_bounded_read_ends_past_transaction_markers_and_waits_for_records_still_arriving() {
    let topic = unique_topic("markers");
    shared().create_topic(&topic, 1);
    // Input in two committed transactions: the last offset below the end is a commit marker.
    let o = options(
        &topic,
        &[("sink.delivery-guarantee", "exactly-once"), ("sink.transactional-id-prefix", &unique_topic("in"))],
    );
    let mut w = create_sink(&sink_ctx(&o, 0, 1, None)).unwrap();
    for (cp, ids) in [(1, 0..10), (2, 10..20)] {
        w.write(&batch(ids)).unwrap();
        let c = w.pre_commit(cp).unwrap();
        w.commit(&[c]).unwrap();
    }
    let latest = options(&topic, &[("scan.startup.mode", "earliest-offset"), ("scan.bounded.mode", "latest-offset")]);
    let (got, ended) = read(source(&latest, 0, 1, None).as_mut(), usize::MAX);
    assert!(ended, "a bounded read must end though its last offsets are markers");
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    // Bounded at offsets that do not exist yet: the read waits for the records still to come,
    // even when the partition's end it saw a moment ago was already reached.
    let stop = shared().end_offsets(&topic)[0] + 10;
    let feed = topic.clone();
    let feeder = std::thread::spawn(move || {
        for part in 0..5 {
            std::thread::sleep(Duration::from_millis(150));
            let records: Vec<Record> = (20 + part * 2..22 + part * 2).map(|i| Record::new(json(i))).collect();
            shared().produce_all(&feed, &records);
        }
    });
    let stop = format!("partition:0,offset:{stop}");
    let specific = options(
        &topic,
        &[
            ("scan.startup.mode", "earliest-offset"),
            ("scan.bounded.mode", "specific-offsets"),
            ("scan.bounded.specific-offsets", &stop),
        ],
    );
    let (got, ended) = read(source(&specific, 0, 1, None).as_mut(), usize::MAX);
    feeder.join().unwrap();
    assert!(ended);
    assert_eq!(got, (0..30).collect::<Vec<_>>(), "every record below the stop offset");
}

#[test]
fn a_completed_checkpoint_commits_its_offsets_to_the_consumer_group() {
    let topic = unique_topic("group");
    shared().create_topic(&topic, 2);
    produce(&topic, 0, 40, 2);
    let group = unique_topic("g");
    let o = options(&topic, &[("properties.group.id", &group), ("scan.startup.mode", "earliest-offset")]);
    let mut r = source(&o, 0, 1, None);
    let (got, _) = read(r.as_mut(), 40);
    assert_eq!(got.len(), 40);
    r.checkpoint_taken(1);
    r.checkpoint_complete(1);
    // The asynchronous commit completes while the reader polls.
    let deadline = Instant::now() + Duration::from_secs(20);
    while shared().committed_offsets(&group, &topic) != vec![Some(20), Some(20)] {
        assert!(Instant::now() < deadline, "offsets not committed: {:?}", shared().committed_offsets(&group, &topic));
        let _ = r.poll().unwrap();
    }
    // A new reader in group-offsets mode starts from them.
    produce(&topic, 40, 4, 2);
    let mut again = source(&options(&topic, &[("properties.group.id", &group)]), 0, 1, None);
    let (mut got, _) = read(again.as_mut(), 4);
    got.sort();
    assert_eq!(got, vec![40, 41, 42, 43]);
}

/// A field as the engine hands a connector a `METADATA FROM 'key'` column.
fn metadata(name: &str, t: DataType, key: &str) -> Field {
    Field::new(name, t, true).with_metadata([(METADATA_KEY.to_string(), key.to_string())].into())
}

fn column<T: 'static>(b: &RecordBatch, name: &str) -> T
where
    T: Clone,
{
    b.column_by_name(name).unwrap().as_any().downcast_ref::<T>().unwrap().clone()
}

#[test]
fn metadata_columns_and_key_fields_are_read_as_in_flink() {
    let topic = unique_topic("meta");
    shared().create_topic(&topic, 2);
    let base = 1_700_000_000_000i64;
    let mut records: Vec<Record> = (0..10)
        .map(|i| {
            Record::new(format!("{{\"name\":\"n{i}\"}}"))
                .key(format!("{{\"id\":{i}}}"))
                .partition((i % 2) as i32)
                .timestamp(base + i)
        })
        .collect();
    // No key: NULL key fields. A tombstone: no row.
    records.push(Record::new(&b"{\"name\":\"keyless\"}"[..]).partition(0).timestamp(base + 10));
    records.push(Record::tombstone(&b"{\"id\":99}"[..]).partition(1));
    shared().produce_all(&topic, &records);
    let ltz = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("k_id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        metadata("part", DataType::Int32, "partition"),
        metadata("off", DataType::Int64, "offset"),
        metadata("ts", ltz, "timestamp"),
        metadata("topic", DataType::Utf8, "topic"),
        // Cast from INT, as Flink allows.
        metadata("part_long", DataType::Int64, "partition"),
        metadata("ttype", DataType::Utf8, "timestamp-type"),
    ]));
    let o = options(
        &topic,
        &[
            ("key.format", "json"),
            ("key.fields", "k_id"),
            ("key.fields-prefix", "k_"),
            ("value.fields-include", "EXCEPT_KEY"),
            ("scan.startup.mode", "earliest-offset"),
            ("scan.bounded.mode", "latest-offset"),
        ],
    );
    let mut r = source_of(&o, schema, "UTC", 0, 1, None);
    let mut rows = Vec::new();
    loop {
        match r.poll().unwrap() {
            SourceEvent::Batch(b) => {
                let (id, name) = (column::<Int64Array>(&b, "k_id"), column::<StringArray>(&b, "name"));
                let (part, off) = (column::<Int32Array>(&b, "part"), column::<Int64Array>(&b, "off"));
                let ts = column::<TimestampMillisecondArray>(&b, "ts");
                let (t, tt) = (column::<StringArray>(&b, "topic"), column::<StringArray>(&b, "ttype"));
                let part_long = column::<Int64Array>(&b, "part_long");
                for i in 0..b.num_rows() {
                    assert_eq!((t.value(i), tt.value(i)), (topic.as_str(), "CreateTime"));
                    assert_eq!(part_long.value(i), i64::from(part.value(i)));
                    let id = id.is_valid(i).then(|| id.value(i));
                    rows.push((id, name.value(i).to_string(), part.value(i), off.value(i), ts.value(i)));
                }
            }
            SourceEvent::Idle => {}
            SourceEvent::End => break,
        }
    }
    rows.sort_by_key(|r| (r.2, r.3));
    let mut want: Vec<_> = (0..10i64)
        .map(|i| (Some(i), format!("n{i}"), (i % 2) as i32, i / 2, base + i))
        .chain([(None, "keyless".to_string(), 0, 5, base + 10)])
        .collect();
    want.sort_by_key(|r| (r.2, r.3));
    assert_eq!(rows, want);
    // Keys that are not metadata keys, and connectors without metadata, are named.
    let bad =
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true), metadata("k", DataType::Utf8, "key")]));
    let ctx = |options: BTreeMap<String, String>| SourceContext {
        table: "src".into(),
        options,
        schema: bad.clone(),
        subtask: 0,
        parallelism: 1,
        batch_size: 7,
        local_time_zone: "UTC".into(),
        restored_splits: None,
        s3: sluice_connectors::S3Options::default(),
    };
    let e = create_source(&ctx(o.clone())).err().unwrap().to_string();
    assert!(e.contains("table `src`") && e.contains("column `k`: invalid metadata key 'key'"), "{e}");
    let datagen = [("connector", "datagen")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let e = create_source(&ctx(datagen)).err().unwrap().to_string();
    assert!(e.contains("connector 'datagen' has no metadata columns"), "{e}");
}

#[test]
fn a_sink_writes_the_timestamp_column_and_prefixed_keys() {
    let topic = unique_topic("sinkmeta");
    shared().create_topic(&topic, 1);
    let schema = Arc::new(Schema::new(vec![
        Field::new("k_id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        // TIMESTAMP(3): a local time in the session's time zone.
        metadata("ts", DataType::Timestamp(TimeUnit::Millisecond, None), "timestamp"),
    ]));
    let o = options(
        &topic,
        &[
            ("key.format", "json"),
            ("key.fields", "k_id"),
            ("key.fields-prefix", "k_"),
            ("value.fields-include", "EXCEPT_KEY"),
        ],
    );
    let mut ctx = sink_ctx(&o, 0, 1, None);
    ctx.schema = schema.clone();
    ctx.local_time_zone = "Asia/Shanghai".into();
    let mut w = create_sink(&ctx).unwrap();
    // 2023-11-14 22:13:20 in Shanghai (UTC+8) is 1,699,971,200,000 ms since the epoch.
    let local = 1_700_000_000_000i64;
    let b = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(StringArray::from(vec!["a", "b"])),
            Arc::new(TimestampMillisecondArray::from(vec![Some(local), None])),
        ],
    )
    .unwrap();
    w.write(&b).unwrap();
    w.pre_commit(1).unwrap();
    let msgs = shared().read_committed(&topic);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].key.as_deref(), Some(&b"{\"id\":1}"[..]));
    assert_eq!(msgs[0].value.as_deref(), Some(&b"{\"name\":\"a\"}"[..]));
    assert_eq!(msgs[0].timestamp_ms, Some(local - 8 * 3_600_000));
    // A NULL timestamp leaves the record's to the producer: the time of writing.
    assert!(msgs[1].timestamp_ms.is_some_and(|t| t > local));
}

#[test]
fn a_topic_pattern_and_partition_discovery_pick_up_new_topics_and_partitions() {
    let prefix = unique_topic("pattern");
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    shared().create_topic(&a, 1);
    shared().create_topic(&format!("{prefix}x-other"), 1);
    produce(&a, 0, 5, 1);
    produce(&format!("{prefix}x-other"), 100, 5, 1);
    let mut o =
        options("", &[("scan.startup.mode", "earliest-offset"), ("scan.topic-partition-discovery.interval", "200 ms")]);
    o.remove("topic");
    o.insert("topic-pattern".into(), format!("{prefix}-.*"));
    let mut r = source(&o, 0, 1, None);
    let (mut got, _) = read(r.as_mut(), 5);
    // A partition added to a read topic and a new matching topic are read from their start.
    shared().add_partitions(&a, 2);
    shared().create_topic(&b, 1);
    shared().produce_all(&a, &(5..8).map(|i| Record::new(json(i)).partition(1)).collect::<Vec<_>>());
    produce(&b, 8, 4, 1);
    let (more, _) = read(r.as_mut(), 7);
    got.extend(more);
    got.sort();
    assert_eq!(got, (0..12).collect::<Vec<_>>(), "other topics must not be read");
    assert_eq!(r.splits(), Some(3));
    let e = source_error(options(&a, &[("topic-pattern", "x.*")]));
    assert!(e.contains("set either 'topic' or 'topic-pattern'"), "{e}");
}

#[test]
fn an_upsert_kafka_sink_keys_each_row_by_the_primary_key() {
    let topic = unique_topic("upsert");
    shared().create_topic(&topic, 2);
    let keyed = Arc::new(schema().as_ref().clone().with_metadata([(PRIMARY_KEY.to_string(), "id".to_string())].into()));
    let mut o = options(&topic, &[("key.format", "json"), ("value.format", "json")]);
    o.remove("format");
    o.insert("connector".into(), "upsert-kafka".into());
    let mut ctx = sink_ctx(&o, 0, 1, None);
    ctx.schema = keyed.clone();
    let mut w = create_sink(&ctx).unwrap();
    w.write(&RecordBatch::try_new(keyed.clone(), batch(0..3).columns().to_vec()).unwrap()).unwrap();
    w.pre_commit(1).unwrap();
    let msgs = shared().read_committed(&topic);
    let mut got: Vec<(String, String)> = msgs
        .iter()
        .map(|m| {
            (
                String::from_utf8_lossy(m.key.as_deref().unwrap()).into(),
                String::from_utf8_lossy(m.value.as_deref().unwrap()).into(),
            )
        })
        .collect();
    got.sort();
    // The key is the primary key; the value holds every column (`value.fields-include` = ALL).
    assert_eq!(got[1], ("{\"id\":1}".to_string(), "{\"id\":1,\"name\":\"n1\"}".to_string()));
    assert_eq!(got.len(), 3);
    // Without a primary key, as a source, and a `kafka` table with a primary key: named errors.
    let e = create_sink(&sink_ctx(&o, 0, 1, None)).err().unwrap().to_string();
    assert!(e.contains("'upsert-kafka' tables require to define a PRIMARY KEY constraint"), "{e}");
    let mut src = SourceContext {
        table: "src".into(),
        options: o.clone(),
        schema: keyed.clone(),
        subtask: 0,
        parallelism: 1,
        batch_size: 7,
        local_time_zone: "UTC".into(),
        restored_splits: None,
        s3: sluice_connectors::S3Options::default(),
    };
    let e = create_source(&src).err().unwrap().to_string();
    assert!(e.contains("needs updating (changelog) SQL"), "{e}");
    src.options = options(&topic, &[("scan.startup.mode", "earliest-offset")]);
    let e = create_source(&src).err().unwrap().to_string();
    assert!(e.contains("doesn't support defining PRIMARY KEY constraint"), "{e}");
}
