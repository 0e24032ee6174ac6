//! The kafka connector's tables against a real Apache Kafka broker (scripts/kafka.sh, one
//! per test binary): metadata columns, keys, `topic-pattern` and partition discovery, and
//! the `upsert-kafka` sink.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod kafka_common;
use kafka_common::*;

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
    let bounded = [("scan.startup.mode", "earliest-offset"), ("scan.bounded.mode", "latest-offset")];
    let o = options(&topic, &[&PREFIXED_KEY[..], &bounded[..]].concat());
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
    let e = source_error_of(o.clone(), bad.clone());
    assert!(e.contains("table `src`") && e.contains("column `k`: invalid metadata key 'key'"), "{e}");
    let datagen = [("connector", "datagen")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let e = source_error_of(datagen, bad);
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
    let o = options(&topic, &PREFIXED_KEY);
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
    // Without a primary key, and a `kafka` table with a primary key: named errors. As a
    // source, the table reads upserts and tombstones (tests/kafka_changelog.rs in the engine).
    let e = create_sink(&sink_ctx(&o, 0, 1, None)).err().unwrap().to_string();
    assert!(e.contains("'upsert-kafka' tables require to define a PRIMARY KEY constraint"), "{e}");
    let mut src = source_ctx(o.clone(), keyed.clone());
    assert!(create_source(&src).is_ok());
    src.options = options(&topic, &[("scan.startup.mode", "earliest-offset")]);
    let e = create_source(&src).err().unwrap().to_string();
    assert!(e.contains("doesn't support defining PRIMARY KEY constraint"), "{e}");
}
