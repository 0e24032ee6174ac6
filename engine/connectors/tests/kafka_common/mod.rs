//! Helpers of the Kafka connector's tests: a shared real broker (one per test binary), the
//! tables' options, readers and writers, and what a topic holds.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

pub use sluice_connectors::testing::shared;

pub use std::collections::BTreeMap;
pub use std::sync::Arc;
pub use std::time::{Duration, Instant};

pub use arrow::array::{Array, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
pub use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
pub use arrow::record_batch::RecordBatch;
pub use sluice_api::columns::{METADATA_KEY, PRIMARY_KEY};
pub use sluice_connectors::testing::{Record, unique_topic};
pub use sluice_connectors::{
    SinkContext, SourceContext, SourceEvent, SourceReader, create_sink, create_source, recover_sink,
};

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("name", DataType::Utf8, true)]))
}

pub fn options(topic: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
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
pub fn source_error(o: BTreeMap<String, String>) -> String {
    source_error_of(o, schema())
}

/// The error a source of these options and columns fails to start with.
pub fn source_error_of(o: BTreeMap<String, String>, schema: SchemaRef) -> String {
    create_source(&source_ctx(o, schema)).err().expect("the source started").to_string()
}

/// Subtask 0 of 1 of a source table `src`, in UTC, batches of 7 rows.
pub fn source_ctx(options: BTreeMap<String, String>, schema: SchemaRef) -> SourceContext {
    SourceContext {
        table: "src".into(),
        options,
        schema,
        subtask: 0,
        parallelism: 1,
        batch_size: 7,
        local_time_zone: "UTC".into(),
        restored_splits: None,
        s3: sluice_connectors::S3Options::default(),
    }
}

pub fn source(
    o: &BTreeMap<String, String>,
    subtask: usize,
    parallelism: usize,
    restored: Option<Vec<Vec<u8>>>,
) -> Box<dyn SourceReader> {
    source_of(o, schema(), "UTC", subtask, parallelism, restored)
}

pub fn source_of(
    o: &BTreeMap<String, String>,
    schema: SchemaRef,
    local_time_zone: &str,
    subtask: usize,
    parallelism: usize,
    restored: Option<Vec<Vec<u8>>>,
) -> Box<dyn SourceReader> {
    let ctx = SourceContext {
        subtask,
        parallelism,
        local_time_zone: local_time_zone.into(),
        restored_splits: restored,
        ..source_ctx(o.clone(), schema)
    };
    create_source(&ctx).unwrap()
}

pub fn ids(b: &RecordBatch) -> Vec<i64> {
    let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    (0..a.len()).map(|i| a.value(i)).collect()
}

/// Polls until `want` rows arrived, the source ended, or 20 s passed.
pub fn read(r: &mut dyn SourceReader, want: usize) -> (Vec<i64>, bool) {
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

pub fn json(id: i64) -> Vec<u8> {
    format!("{{\"id\":{id},\"name\":\"n{id}\"}}").into_bytes()
}

/// `n` records, ids from `from`, spread over `partitions` partitions by id.
pub fn produce(topic: &str, from: i64, n: i64, partitions: i32) {
    let records: Vec<Record> =
        (from..from + n).map(|i| Record::new(json(i)).partition((i % i64::from(partitions)) as i32)).collect();
    shared().produce_all(topic, &records);
}

pub fn sink_ctx(o: &BTreeMap<String, String>, subtask: usize, p: usize, restored: Option<Vec<Vec<u8>>>) -> SinkContext {
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
        committer: Default::default(),
    }
}

pub fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let names: Vec<String> = ids.clone().map(|i| format!("n{i}")).collect();
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(Int64Array::from(ids.collect::<Vec<_>>())), Arc::new(StringArray::from(names))],
    )
    .unwrap()
}

/// The committed ids of `topic` once they are `want`, or after 30 s whatever they
/// are then: a transaction's commit returns before the broker has written its
/// markers to every partition, so a reader right after it may still stop short.
pub fn committed_ids_when(topic: &str, want: &[i64]) -> Vec<i64> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ids = committed_ids(topic);
        if ids == want || std::time::Instant::now() > deadline {
            return ids;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The ids a read_committed consumer sees now, sorted.
pub fn committed_ids(topic: &str) -> Vec<i64> {
    let mut v: Vec<i64> = shared()
        .read_committed_now(topic)
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

/// A field as the engine hands a connector a `METADATA FROM 'key'` column.
pub fn metadata(name: &str, t: DataType, key: &str) -> Field {
    Field::new(name, t, true).with_metadata([(METADATA_KEY.to_string(), key.to_string())].into())
}

pub fn column<T: Clone + 'static>(b: &RecordBatch, name: &str) -> T {
    b.column_by_name(name).unwrap().as_any().downcast_ref::<T>().unwrap().clone()
}

/// Key options of a table whose key is `k_id`, named `id` in the key (`key.fields-prefix`).
pub const PREFIXED_KEY: [(&str, &str); 4] = [
    ("key.format", "json"),
    ("key.fields", "k_id"),
    ("key.fields-prefix", "k_"),
    ("value.fields-include", "EXCEPT_KEY"),
];
