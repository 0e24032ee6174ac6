//! Tests against a real Kafka broker (`sluice_connectors::testing`, started by
//! `scripts/kafka.sh`). Run by `make test` (the `kafka-tests` feature).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use sluice_connectors::testing::{self, KafkaBroker, Message, Record, unique_topic};

const TIMEOUT: Duration = Duration::from_secs(30);

fn values(messages: &[Message]) -> Vec<(i32, String)> {
    messages.iter().map(|m| (m.partition, String::from_utf8(m.value.clone().unwrap_or_default()).unwrap())).collect()
}

/// Sends `values` to partitions 0 and 1 alternately in one transaction, then commits or aborts it.
fn transaction(producer: &BaseProducer, topic: &str, values: &[&str], commit: bool) {
    producer.begin_transaction().unwrap();
    for (i, value) in values.iter().enumerate() {
        let partition = (i % 2) as i32;
        producer
            .send(BaseRecord::<(), str>::to(topic).partition(partition).payload(value))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(TIMEOUT).unwrap();
    if commit {
        producer.commit_transaction(TIMEOUT).unwrap();
    } else {
        producer.abort_transaction(TIMEOUT).unwrap();
    }
}

#[test]
fn the_broker_runs_and_transactions_are_read_committed() {
    let broker = testing::shared();
    let topic = unique_topic("txn");
    broker.create_topic(&topic, 2);
    assert_eq!(broker.partitions(&topic), 2);

    let producer: BaseProducer =
        broker.client_config().set("transactional.id", format!("{topic}-producer")).create().unwrap();
    producer.init_transactions(TIMEOUT).unwrap();
    transaction(&producer, &topic, &["a", "b", "c"], true);
    transaction(&producer, &topic, &["x", "y"], false);
    transaction(&producer, &topic, &["d"], true);
    // A plain record outside any transaction, with a key, a timestamp and a header.
    let (partition, offset) =
        broker.produce_all(&topic, &[Record::new("e").key("k").partition(1).timestamp(1_000).header("h", "v")])[0];
    assert_eq!(partition, 1);

    let committed = broker.read_committed(&topic);
    assert_eq!(
        values(&committed),
        [(0, "a"), (0, "c"), (0, "d"), (1, "b"), (1, "e")].map(|(p, v)| (p, v.to_string())),
        "{committed:?}"
    );
    let uncommitted = broker.read_uncommitted(&topic);
    assert_eq!(
        values(&uncommitted),
        [(0, "a"), (0, "c"), (0, "x"), (0, "d"), (1, "b"), (1, "y"), (1, "e")].map(|(p, v)| (p, v.to_string())),
        "{uncommitted:?}"
    );

    let e = committed.last().unwrap();
    assert_eq!((e.partition, e.offset), (partition, offset));
    assert_eq!(e.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(e.timestamp_ms, Some(1_000));
    assert_eq!(e.headers, [("h".to_string(), Some(b"v".to_vec()))]);
    // Each transaction leaves a marker in each partition it wrote to: partition 0 holds
    // a c | marker | x | marker | d | marker, partition 1 holds b | marker | y | marker | e.
    assert_eq!(broker.end_offsets(&topic), [7, 5]);
}

#[test]
fn a_restarted_broker_keeps_its_topics_and_records() {
    let mut broker = KafkaBroker::start();
    let topic = unique_topic("restart");
    broker.create_topic(&topic, 1);
    let records: Vec<Record> = (0..100).map(|i| Record::new(format!("r{i}")).key(format!("k{i}"))).collect();
    let positions = broker.produce_all(&topic, &records);
    assert_eq!(positions, (0..100).map(|i| (0, i)).collect::<Vec<_>>());
    let before = broker.read_committed(&topic);

    let bootstrap = broker.bootstrap.clone();
    broker.restart();
    assert_eq!(broker.bootstrap, bootstrap);
    let after = broker.read_committed(&topic);
    assert_eq!(after.len(), 100, "log:\n{}", broker.log());
    assert_eq!(after, before);
    // The restarted broker takes writes at the next offset.
    assert_eq!(broker.produce(&topic, None, None, b"after restart", None), (0, 100));

    // A crash loses nothing that was acknowledged either.
    broker.kill();
    broker.restart();
    let after_crash = broker.read_committed(&topic);
    assert_eq!(after_crash.len(), 101, "log:\n{}", broker.log());
    assert_eq!(after_crash[..100], before[..]);
    assert_eq!(after_crash[100].value.as_deref(), Some(&b"after restart"[..]));
}
