#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Updating results end to end, against a real Apache Kafka broker: two
//! levels of non-windowed GROUP BY write to `upsert-kafka` sinks with
//! `exactly-once` delivery while the job is stopped with a savepoint at
//! parallelism 2 and restored at parallelism 3. The second level's groups
//! empty and refill, so its sink writes tombstones. The table each topic
//! materializes (the last record per key, a tombstone deleting the key) must
//! equal that of a run that was never stopped.

use std::collections::BTreeMap;
use std::time::Duration;

mod common;
use common::*;
use sluice_connectors::testing::{shared, unique_topic};
use sluice_engine::runtime::JobStatus;

fn sql(per_key: &str, buckets: &str, rows: u64, rate: u64) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, k INT, v INT)
 WITH ('connector' = 'datagen', 'seed' = '11', 'rows-per-second' = '{rate}',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{last}',
   'fields.k.min' = '0', 'fields.k.max' = '40', 'fields.v.min' = '-50', 'fields.v.max' = '1000');
CREATE VIEW totals AS SELECT k, COUNT(*) AS c, SUM(v) AS s, MAX(v) AS m FROM src GROUP BY k;
CREATE TABLE per_key (k INT, c BIGINT, s INT, m INT, PRIMARY KEY (k) NOT ENFORCED)
 WITH ('connector' = 'upsert-kafka', 'topic' = '{per_key}', 'properties.bootstrap.servers' = '{b}',
   'key.format' = 'json', 'value.format' = 'json',
   'sink.delivery-guarantee' = 'exactly-once', 'sink.transactional-id-prefix' = '{per_key}');
CREATE TABLE buckets (b BIGINT, n BIGINT, top INT, PRIMARY KEY (b) NOT ENFORCED)
 WITH ('connector' = 'upsert-kafka', 'topic' = '{buckets}', 'properties.bootstrap.servers' = '{b}',
   'key.format' = 'json', 'value.format' = 'json',
   'sink.delivery-guarantee' = 'exactly-once', 'sink.transactional-id-prefix' = '{buckets}');
EXECUTE STATEMENT SET BEGIN
INSERT INTO per_key SELECT k, c, s, m FROM totals;
INSERT INTO buckets SELECT MOD(c, 97) AS b, COUNT(*), MAX(s) FROM totals GROUP BY MOD(c, 97);
END;
",
        last = rows - 1,
        b = shared().bootstrap,
    )
}

/// The table a topic materializes, and how many tombstones it holds.
fn materialized(topic: &str) -> (BTreeMap<String, String>, usize) {
    let mut table = BTreeMap::new();
    let mut tombstones = 0;
    for m in shared().read_committed(topic) {
        let key = String::from_utf8_lossy(&m.key.unwrap_or_default()).into_owned();
        match m.value {
            Some(v) => {
                table.insert(key, String::from_utf8_lossy(&v).into_owned());
            }
            None => {
                tombstones += 1;
                table.remove(&key);
            }
        }
    }
    (table, tombstones)
}

#[test]
fn updating_results_reach_upsert_kafka_exactly_once_across_a_savepoint_and_a_rescale() {
    let rows = 6_000;
    let topics: Vec<String> = ["cl-key", "cl-bucket", "cl-ref-key", "cl-ref-bucket"].map(unique_topic).to_vec();
    for t in &topics {
        shared().create_topic(t, 2);
    }
    let dir = tempfile::tempdir().unwrap();
    let sp_dir = dir.path().join("savepoints").display().to_string();
    let ck_dir = dir.path().join("ckpt").display().to_string();
    let job = sql(&topics[0], &topics[1], rows, 3000);
    let cfg = config(&[
        ("parallelism.default", "2".into()),
        ("execution.checkpointing.dir", ck_dir.clone()),
        ("execution.checkpointing.interval", "300ms".into()),
    ]);
    let (state, h) = start(&job, "changelog", &cfg);
    wait_for("committed updates", Duration::from_secs(60), || !shared().read_committed_now(&topics[0]).is_empty());
    let trigger = state.request_savepoint(Some("stop".into()), Some(sp_dir), true, false).unwrap();
    h.join().unwrap().unwrap();
    assert_eq!(state.status(), JobStatus::Finished);
    let location = state.savepoint(&trigger).unwrap().location.unwrap();
    let halfway = materialized(&topics[0]).0;
    let restore = config(&[
        ("parallelism.default", "3".into()),
        ("execution.checkpointing.dir", ck_dir),
        ("execution.state-recovery.path", location),
    ]);
    let (_, h) = start(&job, "changelog", &restore);
    h.join().unwrap().unwrap();

    let (_, h) = start(
        &sql(&topics[2], &topics[3], rows, 1_000_000),
        "changelog-reference",
        &config(&[("parallelism.default", "1".into())]),
    );
    h.join().unwrap().unwrap();
    let (per_key, _) = materialized(&topics[0]);
    let (expected_per_key, _) = materialized(&topics[2]);
    let (buckets, _) = materialized(&topics[1]);
    let (expected_buckets, tombstones) = materialized(&topics[3]);
    assert_eq!(expected_per_key.len(), 41, "every key has a row: {expected_per_key:?}");
    assert_ne!(halfway, expected_per_key, "the job finished before the savepoint");
    assert!(tombstones > 0, "no bucket emptied, so no tombstone was tested");
    assert_eq!(per_key, expected_per_key, "per-key results differ after the savepoint and rescale");
    assert_eq!(buckets, expected_buckets, "bucket results differ after the savepoint and rescale");
}

/// An `upsert-kafka` source: records upsert their key, tombstones delete it.
/// The job aggregates the table the topic holds; the result must be the
/// aggregation of the topic's final table, whichever partitions the keys'
/// records went to (a key's records share a partition, as a keyed producer
/// writes them).
#[test]
fn an_upsert_kafka_source_reads_a_topic_as_an_updating_table() {
    let input = unique_topic("upsert-in");
    let output = unique_topic("upsert-out");
    shared().create_topic(&input, 3);
    shared().create_topic(&output, 1);
    let mut records = Vec::new();
    let mut table: BTreeMap<i64, i64> = BTreeMap::new();
    for i in 0..3_000i64 {
        let k = (i * 7919) % 50;
        let key = format!("{{\"k\":{k}}}");
        let partition = (k % 3) as i32;
        if i % 11 == 5 {
            records.push(sluice_connectors::testing::Record::tombstone(key).partition(partition));
            table.remove(&k);
        } else {
            let v = (i * 104_729) % 1000;
            records.push(
                sluice_connectors::testing::Record::new(format!("{{\"k\":{k},\"v\":{v}}}"))
                    .key(key)
                    .partition(partition),
            );
            table.insert(k, v);
        }
    }
    shared().produce_all(&input, &records);
    let sql = format!(
        "CREATE TABLE src (k BIGINT, v BIGINT, PRIMARY KEY (k) NOT ENFORCED)
 WITH ('connector' = 'upsert-kafka', 'topic' = '{input}', 'properties.bootstrap.servers' = '{b}',
   'key.format' = 'json', 'value.format' = 'json', 'scan.bounded.mode' = 'latest-offset');
CREATE TABLE out (b BIGINT, n BIGINT, total BIGINT, PRIMARY KEY (b) NOT ENFORCED)
 WITH ('connector' = 'upsert-kafka', 'topic' = '{output}', 'properties.bootstrap.servers' = '{b}',
   'key.format' = 'json', 'value.format' = 'json');
INSERT INTO out SELECT MOD(v, 4) AS b, COUNT(*), SUM(v) FROM src GROUP BY MOD(v, 4);
",
        b = shared().bootstrap
    );
    let (_, h) = start(&sql, "upsert-source", &config(&[("parallelism.default", "2".into())]));
    h.join().unwrap().unwrap();
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for b in 0..4 {
        let vs: Vec<i64> = table.values().copied().filter(|v| v % 4 == b).collect();
        if !vs.is_empty() {
            let total: i64 = vs.iter().sum();
            expected.insert(format!("{{\"b\":{b}}}"), format!("{{\"b\":{b},\"n\":{},\"total\":{total}}}", vs.len()));
        }
    }
    assert!(table.len() < 50, "no key ends deleted, so deletes are not tested");
    assert_eq!(materialized(&output).0, expected);
}

/// A topic of Debezium change records (`'format' = 'debezium-json'`, with the
/// record's partition as a metadata column): inserts, updates (two rows each,
/// both with the record's metadata) and deletes of products, keyed by id so
/// that a product's changes stay in order in one partition. Aggregated by
/// category into `upsert-kafka`, the result is that of the products' final
/// state.
#[test]
fn a_debezium_topic_reads_as_an_updating_table() {
    let input = unique_topic("debezium-in");
    let output = unique_topic("debezium-out");
    shared().create_topic(&input, 3);
    shared().create_topic(&output, 1);
    let mut records = Vec::new();
    let mut state: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let row = |id: i64, (c, p): (i64, i64)| format!("{{\"id\":{id},\"category\":{c},\"price\":{p}}}");
    for i in 0..2_000i64 {
        let id = (i * 7919) % 60;
        let now = ((i * 31) % 5, (i * 104_729) % 1000);
        let value = match state.get(&id).copied() {
            None => {
                state.insert(id, now);
                format!("{{\"before\":null,\"after\":{},\"op\":\"c\"}}", row(id, now))
            }
            Some(old) if i % 7 == 3 => {
                state.remove(&id);
                format!("{{\"before\":{},\"after\":null,\"op\":\"d\"}}", row(id, old))
            }
            Some(old) => {
                state.insert(id, now);
                format!("{{\"before\":{},\"after\":{},\"op\":\"u\"}}", row(id, old), row(id, now))
            }
        };
        let record = sluice_connectors::testing::Record::new(value).key(format!("{{\"id\":{id}}}"));
        records.push(record.partition((id % 3) as i32));
    }
    shared().produce_all(&input, &records);
    let sql = format!(
        "CREATE TABLE products (id BIGINT, category BIGINT, price BIGINT, part INT METADATA FROM 'partition' VIRTUAL)
 WITH ('connector' = 'kafka', 'topic' = '{input}', 'properties.bootstrap.servers' = '{b}',
   'format' = 'debezium-json', 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset');
CREATE TABLE out (category BIGINT, n BIGINT, total BIGINT, parts BIGINT, PRIMARY KEY (category) NOT ENFORCED)
 WITH ('connector' = 'upsert-kafka', 'topic' = '{output}', 'properties.bootstrap.servers' = '{b}',
   'key.format' = 'json', 'value.format' = 'json');
INSERT INTO out SELECT category, COUNT(*), SUM(price), SUM(CAST(part = MOD(id, 3) AS BIGINT)) FROM products GROUP BY category;
",
        b = shared().bootstrap
    );
    let (_, h) = start(&sql, "debezium-source", &config(&[("parallelism.default", "2".into())]));
    h.join().unwrap().unwrap();
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for c in 0..5 {
        let prices: Vec<i64> = state.values().filter(|(cat, _)| *cat == c).map(|(_, p)| *p).collect();
        if !prices.is_empty() {
            let (n, total) = (prices.len(), prices.iter().sum::<i64>());
            expected.insert(
                format!("{{\"category\":{c}}}"),
                format!("{{\"category\":{c},\"n\":{n},\"total\":{total},\"parts\":{n}}}"),
            );
        }
    }
    assert!(state.len() < 60, "no product ends deleted, so deletes are not tested");
    assert_eq!(materialized(&output).0, expected);
}

/// A non-windowed GROUP BY written to `kafka` sinks in the changelog formats,
/// keyed by the group key: each change of a key's result is, in order, a
/// record of the old row's delete and one of the new row's insert, as Flink's
/// serialization schemas write an update. The records of each key are
/// compared byte for byte with the changes of a replay of the input.
#[test]
fn updating_results_are_written_to_kafka_in_changelog_formats() {
    let input = unique_topic("cdc-sink-in");
    let formats = ["debezium-json", "canal-json", "maxwell-json"];
    let outputs: Vec<String> = formats.iter().map(|f| unique_topic(&format!("cdc-sink-{f}"))).collect();
    shared().create_topic(&input, 1);
    for t in &outputs {
        shared().create_topic(t, 2);
    }
    let values: Vec<(i64, i64)> = (0..300i64).map(|i| (i % 7, (i * 13) % 100)).collect();
    let records: Vec<_> = values
        .iter()
        .map(|(k, v)| sluice_connectors::testing::Record::new(format!("{{\"k\":{k},\"v\":{v}}}")))
        .collect();
    shared().produce_all(&input, &records);
    let b = &shared().bootstrap;
    let mut sql = format!(
        "CREATE TABLE src (k BIGINT, v BIGINT)
 WITH ('connector' = 'kafka', 'topic' = '{input}', 'properties.bootstrap.servers' = '{b}', 'format' = 'json',
   'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset');
"
    );
    for (i, (f, t)) in formats.iter().zip(&outputs).enumerate() {
        sql.push_str(&format!(
            "CREATE TABLE out{i} (k BIGINT, n BIGINT, total BIGINT)
 WITH ('connector' = 'kafka', 'topic' = '{t}', 'properties.bootstrap.servers' = '{b}',
   'key.format' = 'json', 'key.fields' = 'k', 'value.format' = '{f}', 'sink.delivery-guarantee' = 'exactly-once');
"
        ));
    }
    sql.push_str("EXECUTE STATEMENT SET BEGIN\n");
    for i in 0..formats.len() {
        sql.push_str(&format!("INSERT INTO out{i} SELECT k, COUNT(*), SUM(v) FROM src GROUP BY k;\n"));
    }
    sql.push_str("END;\n");
    let (_, h) = start(&sql, "cdc-sink", &config(&[("parallelism.default", "2".into())]));
    h.join().unwrap().unwrap();

    // Each key's changes, as (insert?, row) in order.
    let mut changes: BTreeMap<i64, Vec<(bool, String)>> = BTreeMap::new();
    let mut totals: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (k, v) in &values {
        let row = |(n, t): (i64, i64)| format!("{{\"k\":{k},\"n\":{n},\"total\":{t}}}");
        let c = changes.entry(*k).or_default();
        let old = totals.get(k).copied();
        let new = old.map_or((1, *v), |(n, t)| (n + 1, t + v));
        if let Some(old) = old {
            c.push((false, row(old)));
        }
        c.push((true, row(new)));
        totals.insert(*k, new);
    }
    for (f, t) in formats.iter().zip(&outputs) {
        let mut got: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for m in shared().read_committed(t) {
            let key = String::from_utf8(m.key.unwrap()).unwrap();
            let k: i64 = key.trim_start_matches("{\"k\":").trim_end_matches('}').parse().unwrap();
            got.entry(k).or_default().push(String::from_utf8(m.value.expect("no tombstones")).unwrap());
        }
        let expected: BTreeMap<i64, Vec<String>> = changes
            .iter()
            .map(|(k, cs)| {
                let records = cs
                    .iter()
                    .map(|(insert, row)| match (*f, insert) {
                        ("debezium-json", true) => format!("{{\"before\":null,\"after\":{row},\"op\":\"c\"}}"),
                        ("debezium-json", false) => format!("{{\"before\":{row},\"after\":null,\"op\":\"d\"}}"),
                        ("canal-json", true) => format!("{{\"data\":[{row}],\"type\":\"INSERT\"}}"),
                        ("canal-json", false) => format!("{{\"data\":[{row}],\"type\":\"DELETE\"}}"),
                        (_, true) => format!("{{\"data\":{row},\"type\":\"insert\"}}"),
                        (_, false) => format!("{{\"data\":{row},\"type\":\"delete\"}}"),
                    })
                    .collect();
                (*k, records)
            })
            .collect();
        assert_eq!(got, expected, "the records of the '{f}' sink");
    }
}

/// The changelog formats' own metadata, declared as `value.<key>` columns:
/// every row of a record (an update's two) carries the record's values, with
/// Flink's types (canal's `ts` in milliseconds, maxwell's in seconds). The
/// rows are written by a filesystem sink in debezium-json and compared line
/// for line.
#[test]
fn a_changelog_formats_metadata_columns_are_read_from_each_record() {
    use sluice_connectors::testing::Record;
    let topics = ["meta-debezium", "meta-canal", "meta-maxwell"].map(unique_topic);
    for t in &topics {
        shared().create_topic(t, 1);
    }
    let source = r#""source":{"ts_ms":1589362330000,"db":"inventory","schema":"public","table":"products","lsn":33}"#;
    shared().produce_all(
        &topics[0],
        &[
            Record::new(format!(
                r#"{{"schema":{{"type":"struct","optional":false}},"payload":{{"before":null,"after":{{"id":1,"v":"a"}},"op":"c","ts_ms":1589362330904,{source}}}}}"#
            )),
            Record::new(
                r#"{"schema":null,"payload":{"before":{"id":1,"v":"a"},"after":{"id":1,"v":"b"},"op":"u","ts_ms":1589362331000,"source":{"ts_ms":"1589362330500","db":"inventory","table":"products"}}}"#,
            ),
        ],
    );
    shared().produce_all(
        &topics[1],
        &[Record::new(
            r#"{"data":[{"id":1,"v":"a"},{"id":2,"v":"b"}],"database":"shop","table":"orders","pkNames":["id"],"ts":1589362330904,"type":"INSERT"}"#,
        )],
    );
    shared().produce_all(
        &topics[2],
        &[Record::new(
            r#"{"database":"test","table":"product","type":"insert","ts":1596684883,"data":{"id":1,"v":"a"}}"#,
        )],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name).display().to_string();
    let b = &shared().bootstrap;
    let kafka = |topic: &str, format: &str| {
        format!(
            "'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{b}', 'format' = '{format}', \
             'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'"
        )
    };
    let sql = format!(
        "CREATE TABLE deb (id BIGINT, v STRING, s STRING METADATA FROM 'value.schema' VIRTUAL,
   it TIMESTAMP_LTZ(3) METADATA FROM 'value.ingestion-timestamp' VIRTUAL,
   st TIMESTAMP_LTZ(3) METADATA FROM 'value.source.timestamp' VIRTUAL,
   db STRING METADATA FROM 'value.source.database' VIRTUAL, sc STRING METADATA FROM 'value.source.schema' VIRTUAL,
   tb STRING METADATA FROM 'value.source.table' VIRTUAL, part INT METADATA FROM 'partition' VIRTUAL)
 WITH ({deb}, 'debezium-json.schema-include' = 'true');
CREATE TABLE canal (id BIGINT, v STRING, db STRING METADATA FROM 'value.database' VIRTUAL,
   tb STRING METADATA FROM 'value.table' VIRTUAL, it TIMESTAMP_LTZ(3) METADATA FROM 'value.ingestion-timestamp' VIRTUAL)
 WITH ({canal});
CREATE TABLE mx (id BIGINT, v STRING, db STRING METADATA FROM 'value.database' VIRTUAL,
   tb STRING METADATA FROM 'value.table' VIRTUAL, it TIMESTAMP_LTZ(3) METADATA FROM 'value.ingestion-timestamp' VIRTUAL)
 WITH ({mx});
CREATE TABLE deb_out (id BIGINT, v STRING, s STRING, it TIMESTAMP_LTZ(3), st TIMESTAMP_LTZ(3), db STRING, sc STRING, tb STRING, part INT)
 WITH ('connector' = 'filesystem', 'path' = '{deb_out}', 'format' = 'debezium-json');
CREATE TABLE canal_out (id BIGINT, v STRING, db STRING, tb STRING, it TIMESTAMP_LTZ(3))
 WITH ('connector' = 'filesystem', 'path' = '{canal_out}', 'format' = 'debezium-json');
CREATE TABLE mx_out (id BIGINT, v STRING, db STRING, tb STRING, it TIMESTAMP_LTZ(3))
 WITH ('connector' = 'filesystem', 'path' = '{mx_out}', 'format' = 'debezium-json');
EXECUTE STATEMENT SET BEGIN
INSERT INTO deb_out SELECT id, v, s, it, st, db, sc, tb, part FROM deb;
INSERT INTO canal_out SELECT id, v, db, tb, it FROM canal;
INSERT INTO mx_out SELECT id, v, db, tb, it FROM mx;
END;
",
        deb = kafka(&topics[0], "debezium-json"),
        canal = kafka(&topics[1], "canal-json"),
        mx = kafka(&topics[2], "maxwell-json"),
        deb_out = out("deb_out"),
        canal_out = out("canal_out"),
        mx_out = out("mx_out"),
    );
    let (_, h) = start(&sql, "cdc-metadata", &config(&[("parallelism.default", "1".into())]));
    h.join().unwrap().unwrap();
    let lines = |name: &str| {
        let mut lines: Vec<String> = std::fs::read_dir(dir.path().join(name))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
            .flat_map(|e| std::fs::read_to_string(e.path()).unwrap().lines().map(String::from).collect::<Vec<_>>())
            .collect();
        lines.sort();
        lines
    };
    let first = r#"{"id":1,"v":"a","s":"{\"type\":\"struct\",\"optional\":false}","it":"2020-05-13 09:32:10.904Z","st":"2020-05-13 09:32:10Z","db":"inventory","sc":"public","tb":"products","part":0}"#;
    let update = |v: &str| {
        format!(
            r#"{{"id":1,"v":"{v}","s":null,"it":"2020-05-13 09:32:11Z","st":"2020-05-13 09:32:10.5Z","db":"inventory","sc":null,"tb":"products","part":0}}"#
        )
    };
    assert_eq!(
        lines("deb_out"),
        [
            format!(r#"{{"before":null,"after":{first},"op":"c"}}"#),
            format!(r#"{{"before":null,"after":{},"op":"c"}}"#, update("b")),
            format!(r#"{{"before":{},"after":null,"op":"d"}}"#, update("a")),
        ]
    );
    let row = |id: i64, v: &str, db: &str, tb: &str, it: &str| {
        format!(r#"{{"before":null,"after":{{"id":{id},"v":"{v}","db":"{db}","tb":"{tb}","it":"{it}"}},"op":"c"}}"#)
    };
    assert_eq!(
        lines("canal_out"),
        [
            row(1, "a", "shop", "orders", "2020-05-13 09:32:10.904Z"),
            row(2, "b", "shop", "orders", "2020-05-13 09:32:10.904Z")
        ]
    );
    assert_eq!(lines("mx_out"), [row(1, "a", "test", "product", "2020-08-06 03:34:43Z")]);
}
