//! A synchronous client for tests, on rdkafka: create topics, produce records and read a topic
//! back from the beginning to its current end, read_committed or read_uncommitted.
//!
//! Every call makes its own rdkafka client, so tests running in parallel threads never see each
//! other's delivery errors, and a client never outlives a broker restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test support: failing loudly is the point.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message as _, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::KafkaBroker;

/// How long one helper call may wait for the broker (topic creation, delivery, a read).
const TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`KafkaBroker::read_committed`] waits for open transactions to settle.
const SETTLE: Duration = Duration::from_secs(10);

/// A record to produce. `Record::new(b"v").key(b"k").partition(1).timestamp(1_000)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// The partition; `None` lets the producer pick one from the key (or spread keyless ones).
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    /// `None` produces a tombstone.
    pub value: Option<Vec<u8>>,
    /// Milliseconds since the epoch; `None` means the time of producing.
    pub timestamp_ms: Option<i64>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    pub fn new(value: impl Into<Vec<u8>>) -> Record {
        Record { value: Some(value.into()), ..Record::default() }
    }

    /// A record with a key and no value.
    pub fn tombstone(key: impl Into<Vec<u8>>) -> Record {
        Record { key: Some(key.into()), ..Record::default() }
    }

    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Record {
        self.key = Some(key.into());
        self
    }

    pub fn partition(mut self, partition: i32) -> Record {
        self.partition = Some(partition);
        self
    }

    pub fn timestamp(mut self, timestamp_ms: i64) -> Record {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    pub fn header(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Record {
        self.headers.push((key.into(), value.into()));
        self
    }
}

/// A record read back from a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// Milliseconds since the epoch (create or log-append time, as the topic says).
    pub timestamp_ms: Option<i64>,
    /// In order; a header may have no value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// `PREFIX-PID-N`: a topic name no other test of this process, nor a run of it against a broker
/// left over from another process, uses.
pub fn unique_topic(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A delivery report: the record's partition and offset, or why it was not written.
type Delivery = Result<(i32, i64), String>;

/// Collects the producer's delivery reports, by the index of the record.
#[derive(Default)]
struct Deliveries {
    results: Mutex<BTreeMap<usize, Delivery>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let outcome = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, m)) => Err(format!("partition {}: {e}", m.partition())),
        };
        self.results.lock().unwrap().insert(index, outcome);
    }
}

impl KafkaBroker {
    /// Settings that reach this broker; add to them for your own producers and consumers
    /// (`transactional.id`, `group.id`, ...).
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        // The default backoff grows to 10 s, longer than a restart takes.
        config.set("reconnect.backoff.max.ms", "500");
        config
    }

    /// Creates a topic with one replica and waits until its metadata shows every partition
    /// with a leader.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.create_topic_with_config(name, partitions, &[]);
    }

    /// [`KafkaBroker::create_topic`] with topic configs, such as `("cleanup.policy", "compact")`
    /// or `("message.timestamp.type", "LogAppendTime")`.
    pub fn create_topic_with_config(&self, name: &str, partitions: i32, config: &[(&str, &str)]) {
        let admin: AdminClient<DefaultClientContext> = self.client_config().create().unwrap();
        let topic =
            config.iter().fold(NewTopic::new(name, partitions, TopicReplication::Fixed(1)), |t, (k, v)| t.set(k, v));
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
        let results =
            block_on(admin.create_topics([&topic], &options)).unwrap_or_else(|e| panic!("create topic {name}: {e}"));
        for result in results {
            if let Err((topic, code)) = result {
                panic!("create topic {topic}: {code}");
            }
        }
        self.wait_for_leaders(name, partitions);
    }

    /// Grows a topic to `partitions` partitions and waits until each has a leader.
    pub fn add_partitions(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = self.client_config().create().unwrap();
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
        let new = NewPartitions::new(name, partitions as usize);
        let results = block_on(admin.create_partitions([&new], &options))
            .unwrap_or_else(|e| panic!("add partitions to {name}: {e}"));
        for result in results {
            if let Err((topic, code)) = result {
                panic!("add partitions to {topic}: {code}");
            }
        }
        self.wait_for_leaders(name, partitions);
    }

    fn wait_for_leaders(&self, name: &str, partitions: i32) {
        let consumer = self.consumer("read_uncommitted");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let led = consumer.fetch_metadata(Some(name), TIMEOUT).ok().and_then(|m| {
                let t = m.topics().iter().find(|t| t.name() == name)?;
                let ready = t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions().iter().all(|p| p.leader() >= 0);
                ready.then_some(())
            });
            if led.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "topic {name} has no leader for all {partitions} partitions after {TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The number of partitions of a topic.
    pub fn partitions(&self, topic: &str) -> i32 {
        partitions(&self.consumer("read_uncommitted"), topic)
    }

    /// Produces one record and waits until it is written; returns its partition and offset.
    pub fn produce(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
        timestamp_ms: Option<i64>,
    ) -> (i32, i64) {
        let record = Record {
            partition,
            key: key.map(<[u8]>::to_vec),
            value: Some(value.to_vec()),
            timestamp_ms,
            headers: Vec::new(),
        };
        self.produce_all(topic, &[record])[0]
    }

    /// Produces the records (idempotently, so a retry never duplicates one) and waits until all
    /// are written; returns the partition and offset of each, in the order given.
    pub fn produce_all(&self, topic: &str, records: &[Record]) -> Vec<(i32, i64)> {
        let producer: BaseProducer<Deliveries> = self
            .client_config()
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", TIMEOUT.as_millis().to_string())
            .create_with_context(Deliveries::default())
            .unwrap();
        for (index, record) in records.iter().enumerate() {
            let mut base = BaseRecord::<[u8], [u8], usize>::with_opaque_to(topic, index);
            base.partition = record.partition;
            base.key = record.key.as_deref();
            base.payload = record.value.as_deref();
            base.timestamp = record.timestamp_ms;
            if !record.headers.is_empty() {
                let headers = record
                    .headers
                    .iter()
                    .fold(OwnedHeaders::new(), |h, (key, value)| h.insert(Header { key, value: Some(value) }));
                base = base.headers(headers);
            }
            let mut pending = base;
            // A full local queue: let deliveries drain it and try again.
            while let Err((e, back)) = producer.send(pending) {
                assert!(
                    matches!(e, KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)),
                    "produce to {topic}: {e}"
                );
                producer.poll(Duration::from_millis(100));
                pending = back;
            }
        }
        producer.flush(TIMEOUT).unwrap_or_else(|e| panic!("flush to {topic}: {e}"));
        let results = std::mem::take(&mut *producer.context().results.lock().unwrap());
        assert_eq!(results.len(), records.len(), "delivery reports for {topic}");
        results
            .into_iter()
            .map(|(index, r)| r.unwrap_or_else(|e| panic!("produce record {index} to {topic}: {e}")))
            .collect()
    }

    /// Every committed record of the topic once its transactions have settled, ordered by
    /// partition and offset. Aborted records and transaction markers are not shown.
    ///
    /// A producer's commit returns before the broker has written the commit markers into the
    /// partitions, so a finished job's last transaction can still hold the last stable offset
    /// back for a moment. This waits, up to [`SETTLE`], until no partition has an open
    /// transaction (its last stable offset equals its high watermark), then reads to the last
    /// stable offset. A transaction still open after that is left out, as a consumer would.
    pub fn read_committed(&self, topic: &str) -> Vec<Message> {
        let committed = self.consumer("read_committed");
        let all = self.consumer("read_uncommitted");
        let deadline = Instant::now() + SETTLE;
        loop {
            let settled = (0..partitions(&committed, topic))
                .all(|p| watermarks(&committed, topic, p).1 == watermarks(&all, topic, p).1);
            if settled || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.read_committed_now(topic)
    }

    /// Every committed record of the topic up to each partition's last stable offset when
    /// called, without waiting for open transactions: for reading a running job's output.
    pub fn read_committed_now(&self, topic: &str) -> Vec<Message> {
        self.read(topic, "read_committed")
    }

    /// Every record of the topic, from the beginning of each partition to its high watermark
    /// when called, ordered by partition and offset: aborted and open transactions included
    /// (transaction markers take offsets but are never shown).
    pub fn read_uncommitted(&self, topic: &str) -> Vec<Message> {
        self.read(topic, "read_uncommitted")
    }

    /// The high watermark of each partition (the offset the next record will get), by partition.
    pub fn end_offsets(&self, topic: &str) -> Vec<i64> {
        let consumer = self.consumer("read_uncommitted");
        (0..partitions(&consumer, topic)).map(|p| watermarks(&consumer, topic, p).1).collect()
    }

    /// The offsets a consumer group has committed for each partition of the topic (`None` where
    /// it has committed none), by partition.
    pub fn committed_offsets(&self, group: &str, topic: &str) -> Vec<Option<i64>> {
        let consumer: BaseConsumer = self.client_config().set("group.id", group).create().unwrap();
        let mut list = TopicPartitionList::new();
        for p in 0..partitions(&consumer, topic) {
            list.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(list, TIMEOUT)
            .unwrap_or_else(|e| panic!("committed offsets of group {group} on {topic}: {e}"));
        committed
            .elements_for_topic(topic)
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .collect()
    }

    fn consumer(&self, isolation: &str) -> BaseConsumer {
        self.client_config()
            .set("isolation.level", isolation)
            // rdkafka refuses `assign` without one; it never joins the group nor commits.
            .set("group.id", "sluice-testing-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap()
    }

    /// Reads every partition from its low watermark up to the end offset it had when the read
    /// began (the last stable offset when read_committed: the watermark query uses the
    /// consumer's isolation level). A partition is done at end of partition, which the
    /// consumer reports once it has passed every record and marker before that end.
    fn read(&self, topic: &str, isolation: &str) -> Vec<Message> {
        let consumer = self.consumer(isolation);
        let mut list = TopicPartitionList::new();
        let mut ends = BTreeMap::new();
        for p in 0..partitions(&consumer, topic) {
            let (low, high) = watermarks(&consumer, topic, p);
            if high > low {
                list.add_partition_offset(topic, p, Offset::Offset(low)).unwrap();
                ends.insert(p, high);
            }
        }
        if ends.is_empty() {
            return Vec::new();
        }
        consumer.assign(&list).unwrap_or_else(|e| panic!("assign {topic}: {e}"));
        let mut messages = Vec::new();
        let mut pending = ends.clone();
        let deadline = Instant::now() + TIMEOUT;
        while !pending.is_empty() {
            assert!(
                Instant::now() < deadline,
                "reading {topic} ({isolation}) did not reach the end offsets {ends:?} in {TIMEOUT:?}; \
                 partitions not done: {pending:?}"
            );
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    pending.remove(&p);
                }
                Some(Err(e)) => panic!("read {topic} ({isolation}): {e}"),
                Some(Ok(m)) => {
                    let end = ends.get(&m.partition()).copied().unwrap_or(0);
                    if m.offset() + 1 >= end {
                        pending.remove(&m.partition());
                    }
                    if m.offset() < end {
                        messages.push(Message {
                            partition: m.partition(),
                            offset: m.offset(),
                            key: m.key().map(<[u8]>::to_vec),
                            value: m.payload().map(<[u8]>::to_vec),
                            timestamp_ms: m.timestamp().to_millis(),
                            headers: m
                                .headers()
                                .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect())
                                .unwrap_or_default(),
                        });
                    }
                }
            }
        }
        messages.sort_by_key(|m| (m.partition, m.offset));
        messages
    }
}

fn partitions(consumer: &BaseConsumer, topic: &str) -> i32 {
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT).unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
    let t = metadata.topics().iter().find(|t| t.name() == topic);
    match t {
        Some(t) if t.error().is_none() => t.partitions().len() as i32,
        Some(t) => panic!("metadata of {topic}: {:?}", t.error()),
        None => panic!("metadata of {topic}: no such topic"),
    }
}

fn watermarks(consumer: &BaseConsumer, topic: &str, partition: i32) -> (i64, i64) {
    consumer
        .fetch_watermarks(topic, partition, TIMEOUT)
        .unwrap_or_else(|e| panic!("watermarks of {topic}/{partition}: {e}"))
}

/// Wakes the thread blocked in [`block_on`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread. rdkafka's admin futures are completed by its own
/// polling thread, so they need no runtime, only a waker.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}
