//! The Kafka source reader of one subtask.
//!
//! Invariants:
//! - A topic-partition is read by exactly one subtask, [`super::split_owner`]
//!   of it, at every parallelism; a restored subtask takes the restored splits
//!   it owns and starts partitions that no split names (created since) at
//!   their earliest offset, as Flink does for discovered partitions.
//! - A split's state is the offset after the last record that `poll`
//!   returned, so a snapshot between polls resumes exactly there. Offsets have
//!   gaps (transaction markers, aborted records): the reader never computes
//!   an offset, it only stores `record offset + 1`.
//! - A bounded split's stop offset is fixed when the split is first assigned
//!   and kept in its state, so a restored bounded job stops where it would
//!   have stopped.
//! - Each partition has its own queue (`split_partition_queue`). A bounded
//!   split whose records below the stop offset are not all data (transaction
//!   markers and aborted records take offsets) is done when the client's
//!   statistics report that it reached the end of the partition at or past
//!   the stop offset (`eof_offset`), and its queue, drained after that report,
//!   is empty: every record below that end was queued before the report.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::rows::{Origin, Rows};
use super::{KafkaConfig, Position, REQUEST_TIMEOUT, kafka_error, split_owner};
use crate::state::kafka::PartitionSplit;
use crate::{ConnectorError, SourceContext, SourceEvent, SourceReader};

/// The next offset of each topic-partition.
type Offsets = Vec<(String, i32, i64)>;

/// How often the lag (end offset − next offset) of owned partitions is asked.
const LAG_INTERVAL: Duration = Duration::from_secs(2);
/// How soon a lag query that timed out is asked again.
const LAG_RETRY: Duration = Duration::from_millis(100);

/// The end offsets at which the client last found each partition's end
/// (`eof_offset` of its statistics), for bounded reads.
#[derive(Default, Clone)]
struct EndsReached(Arc<Mutex<HashMap<(String, i32), i64>>>);

impl ClientContext for EndsReached {
    fn stats(&self, statistics: Statistics) {
        let Ok(mut ends) = self.0.lock() else { return };
        for (name, topic) in &statistics.topics {
            for (id, p) in topic.partitions.iter().filter(|(id, p)| **id >= 0 && p.eof_offset >= 0) {
                ends.insert((name.clone(), *id), p.eof_offset);
            }
        }
    }
}

impl ConsumerContext for EndsReached {}

impl EndsReached {
    fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0.lock().ok()?.get(&(topic.to_string(), partition)).copied()
    }
}

struct Split {
    /// This reader's number for the split, for per-split watermarks.
    id: u32,
    next_offset: i64,
    stop: Option<i64>,
    queue: PartitionQueue<EndsReached>,
    /// The partition's end offset at the last lag query.
    end: Option<i64>,
}

impl Split {
    fn done(&self) -> bool {
        self.stop.is_some_and(|s| self.next_offset >= s)
    }
}

pub(crate) struct KafkaSource {
    table: String,
    cfg: KafkaConfig,
    consumer: Arc<BaseConsumer<EndsReached>>,
    ends: EndsReached,
    subtask: usize,
    parallelism: usize,
    batch_size: usize,
    max_batch_size: usize,
    /// The batch being built.
    rows: Rows,
    splits: BTreeMap<(String, i32), Split>,
    /// Every partition of the source that this reader knows, any subtask's.
    known: HashSet<(String, i32)>,
    next_discovery: Option<Instant>,
    next_lag: Instant,
    /// The split polled first next time, so that every partition gets a turn.
    turn: usize,
    /// The split of the batch being built (each batch comes from one split).
    batch_split: Option<u32>,
    next_split_id: u32,
    /// Offsets of checkpoints taken and not yet complete, oldest first.
    taken: Vec<(u64, Offsets)>,
    /// Whether completed checkpoints commit their offsets to the consumer
    /// group: when `properties.group.id` is set, as in Flink.
    commit_offsets: bool,
}

impl KafkaSource {
    pub(crate) fn new(ctx: &SourceContext, cfg: KafkaConfig) -> Result<Self, ConnectorError> {
        let rows = Rows::new(&ctx.table, &ctx.schema, &cfg, &ctx.local_time_zone)?;
        // Statistics (for `eof_offset`) only where a bounded read needs them.
        let stats_ms = if cfg.bounded.is_some() { "100" } else { "0" };
        let client = cfg.client_config(&[
            ("statistics.interval.ms", stats_ms),
            ("isolation.level", "read_committed"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "true"),
            ("group.id", "sluice"),
            ("client.id", &format!("sluice-{}-{}", ctx.table, ctx.subtask)),
        ]);
        let ends = EndsReached::default();
        let consumer: BaseConsumer<EndsReached> =
            client.create_with_context(ends.clone()).map_err(|e| kafka_error(&ctx.table, e))?;
        let mut s = KafkaSource {
            table: ctx.table.clone(),
            cfg,
            consumer: Arc::new(consumer),
            ends,
            subtask: ctx.subtask,
            parallelism: ctx.parallelism,
            batch_size: ctx.batch_size.max(1),
            max_batch_size: ctx.batch_size.max(1),
            rows,
            splits: BTreeMap::new(),
            known: HashSet::new(),
            next_discovery: None,
            next_lag: Instant::now(),
            turn: 0,
            batch_split: None,
            next_split_id: 0,
            taken: Vec::new(),
            commit_offsets: false,
        };
        s.commit_offsets = s.cfg.properties.contains_key("group.id");
        let restored = match &ctx.restored_splits {
            Some(blobs) => {
                let mut m = BTreeMap::new();
                for b in blobs {
                    let split = PartitionSplit::decode(b)
                        .map_err(|source| ConnectorError::State { table: s.table.clone(), source })?;
                    m.insert((split.topic.clone(), split.partition), split);
                }
                Some(m)
            }
            None => None,
        };
        s.discover(restored.as_ref(), true)?;
        s.next_discovery = s.cfg.discovery.map(|d| Instant::now() + d);
        Ok(s)
    }

    fn err(&self, what: impl std::fmt::Display) -> ConnectorError {
        kafka_error(&self.table, what)
    }

    /// The partitions of every topic (`topic`, or every topic that matches
    /// `topic-pattern`), from the brokers' metadata.
    fn partitions(&self) -> Result<Vec<(String, i32)>, ConnectorError> {
        let mut out = Vec::new();
        if let Some(pattern) = &self.cfg.pattern {
            let md = self.consumer.fetch_metadata(None, REQUEST_TIMEOUT).map_err(|e| {
                self.err(format!("cannot read the topics of {} for 'topic-pattern': {e}", self.cfg.bootstrap))
            })?;
            for t in md.topics().iter().filter(|t| t.error().is_none() && pattern.matches(t.name())) {
                out.extend(t.partitions().iter().map(|p| (t.name().to_string(), p.id())));
            }
            return Ok(out);
        }
        for topic in &self.cfg.topics {
            let md = self.consumer.fetch_metadata(Some(topic), REQUEST_TIMEOUT).map_err(|e| {
                self.err(format!("cannot read the metadata of topic '{topic}' from {}: {e}", self.cfg.bootstrap))
            })?;
            let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
                return Err(self.err(format!("topic '{topic}' does not exist on {}", self.cfg.bootstrap)));
            };
            if let Some(e) = t.error() {
                if e == rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART {
                    return Err(self.err(format!("topic '{topic}' does not exist on {}", self.cfg.bootstrap)));
                }
                return Err(self.err(format!("topic '{topic}': {e:?}")));
            }
            out.extend(t.partitions().iter().map(|p| (topic.clone(), p.id())));
        }
        Ok(out)
    }

    /// Takes the partitions this subtask owns that it does not read yet: at the
    /// start (`first`) from the restored splits or the startup mode, later
    /// (discovered partitions) from their earliest offset.
    fn discover(
        &mut self,
        restored: Option<&BTreeMap<(String, i32), PartitionSplit>>,
        first: bool,
    ) -> Result<(), ConnectorError> {
        let mut all = self.partitions()?;
        if let Some(r) = restored {
            // Restored splits of listed topics count even if metadata lags.
            all.extend(r.keys().filter(|(t, _)| self.cfg.reads_topic(t)).cloned());
        }
        all.sort();
        all.dedup();
        let mut new = Vec::new();
        for tp in all {
            self.known.insert(tp.clone());
            if self.splits.contains_key(&tp) || split_owner(&tp.0, tp.1, self.parallelism) != self.subtask {
                continue;
            }
            new.push(tp);
        }
        if new.is_empty() {
            return Ok(());
        }
        let mut starts = Vec::with_capacity(new.len());
        for (topic, partition) in &new {
            let (start, stop) = match restored.and_then(|r| r.get(&(topic.clone(), *partition))) {
                Some(s) => (s.next_offset, s.stop),
                None if first && restored.is_none() => {
                    let start = self.resolve(topic, *partition, &self.cfg.startup.clone(), false)?;
                    let stop = match self.cfg.bounded.clone() {
                        Some(b) => Some(self.resolve(topic, *partition, &b, true)?),
                        None => None,
                    };
                    (start, stop)
                }
                // Created after the job started: from the beginning, as Flink does.
                None => {
                    let start = self.watermarks(topic, *partition)?.0;
                    let stop = match self.cfg.bounded.clone() {
                        Some(b) => Some(self.resolve(topic, *partition, &b, true)?),
                        None => None,
                    };
                    (start, stop)
                }
            };
            starts.push((topic.clone(), *partition, start, stop));
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, start, stop) in starts {
            let queue = self
                .consumer
                .split_partition_queue(&topic, partition)
                .ok_or_else(|| self.err(format!("cannot open a queue for topic '{topic}' partition {partition}")))?;
            let split = Split { id: self.next_split_id, next_offset: start, stop, queue, end: None };
            self.next_split_id += 1;
            if !split.done() {
                tpl.add_partition_offset(&topic, partition, Offset::Offset(start)).map_err(|e| self.err(e))?;
            }
            self.splits.insert((topic, partition), split);
        }
        if tpl.count() > 0 {
            self.consumer.incremental_assign(&tpl).map_err(|e| self.err(format!("cannot assign partitions: {e}")))?;
        }
        Ok(())
    }

    /// The low and end offsets of a partition (the end is the last stable
    /// offset under `read_committed`).
    fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64), ConnectorError> {
        self.consumer
            .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
            .map_err(|e| self.err(format!("cannot read the offsets of topic '{topic}' partition {partition}: {e}")))
    }

    /// A position as a concrete offset of one partition.
    fn resolve(&self, topic: &str, partition: i32, pos: &Position, bound: bool) -> Result<i64, ConnectorError> {
        let (low, high) = self.watermarks(topic, partition)?;
        match pos {
            Position::Earliest => Ok(low),
            Position::Latest => Ok(high),
            Position::Specific(m) => Ok(m.get(&partition).copied().unwrap_or(if bound { high } else { low })),
            Position::Timestamp(t) => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(topic, partition, Offset::Offset(*t)).map_err(|e| self.err(e))?;
                let r = self
                    .consumer
                    .offsets_for_times(tpl, REQUEST_TIMEOUT)
                    .map_err(|e| self.err(format!("cannot look up offsets by time in topic '{topic}': {e}")))?;
                let found = r.find_partition(topic, partition).and_then(|e| e.offset().to_raw());
                // No record at or after the time: the end.
                Ok(found.filter(|o| *o >= 0).unwrap_or(high))
            }
            Position::Group => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(topic, partition);
                // A group's coordinator may still be starting (a fresh broker creates
                // `__consumer_offsets` at the first group request): retried, as the Java client does.
                let deadline = Instant::now() + REQUEST_TIMEOUT;
                let r = loop {
                    match self.consumer.committed_offsets(tpl.clone(), REQUEST_TIMEOUT) {
                        Err(e) if coordinator_not_ready(&e) && Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(200));
                        }
                        r => {
                            break r.map_err(|e| {
                                self.err(format!(
                                    "cannot read the committed offsets of group '{}': {e}",
                                    self.group_id()
                                ))
                            })?;
                        }
                    }
                };
                let committed = r.find_partition(topic, partition).and_then(|e| e.offset().to_raw());
                if let Some(o) = committed.filter(|o| *o >= 0) {
                    return Ok(o);
                }
                match self.cfg.properties.get("auto.offset.reset").map(|s| s.trim().to_ascii_lowercase()).as_deref() {
                    Some("earliest" | "smallest" | "beginning") => Ok(low),
                    Some("latest" | "largest" | "end") => Ok(high),
                    _ => Err(self.err(format!(
                        "group '{}' has no committed offset for topic '{topic}' partition {partition}; set 'properties.auto.offset.reset' to 'earliest' or 'latest', or another 'scan.startup.mode'",
                        self.group_id()
                    ))),
                }
            }
        }
    }

    fn group_id(&self) -> &str {
        self.cfg.properties.get("group.id").map_or("", String::as_str)
    }

    fn pending_rows(&self) -> usize {
        self.rows.len()
    }

    fn batch(&mut self) -> Result<SourceEvent, ConnectorError> {
        let batch = self.rows.finish().map_err(|source| ConnectorError::Batch { table: self.table.clone(), source })?;
        Ok(SourceEvent::Batch(batch))
    }

    /// Reads what one partition queue holds, up to a batch: the first split,
    /// from this turn's, that has records. Each batch comes from one split, so
    /// that the engine can keep a watermark per partition.
    fn read_some(&mut self) -> Result<(), ConnectorError> {
        let keys: Vec<(String, i32)> = self.splits.keys().cloned().collect();
        let n = keys.len();
        for i in 0..n {
            let idx = (self.turn + i) % n;
            self.read_split(&keys[idx])?;
            if self.pending_rows() > 0 {
                self.batch_split = self.splits.get(&keys[idx]).map(|s| s.id);
                // The next poll starts with the next split: every partition gets a turn.
                self.turn = (idx + 1) % n;
                return Ok(());
            }
        }
        Ok(())
    }

    fn read_split(&mut self, key: &(String, i32)) -> Result<(), ConnectorError> {
        loop {
            if self.pending_rows() >= self.batch_size {
                return Ok(());
            }
            let Some(split) = self.splits.get(key) else { return Ok(()) };
            if split.done() {
                return Ok(());
            }
            let record = match split.queue.poll(Duration::ZERO) {
                None => {
                    // Drained after the statistics last seen: a bounded split
                    // whose end was reached at or past its stop is done.
                    if let Some(stop) = split.stop
                        && self.ends.get(&key.0, key.1).is_some_and(|end| end >= stop)
                        && let Some(s) = self.splits.get_mut(key)
                    {
                        s.next_offset = s.next_offset.max(stop);
                    }
                    return Ok(());
                }
                Some(Err(KafkaError::PartitionEOF(_))) => return Ok(()),
                Some(Err(e)) => {
                    return Err(self.err(format!("reading topic '{}' partition {}: {e}", key.0, key.1)));
                }
                Some(Ok(m)) => m,
            };
            // Decoded from the client's buffer, without a copy (the message borrows its queue).
            let offset = record.offset();
            let past_stop = split.stop.is_some_and(|s| offset >= s);
            if !past_stop {
                let at = Origin { topic: &key.0, partition: key.1, offset, timestamp: record.timestamp() };
                self.rows.add(&at, record.key(), record.payload())?;
            }
            drop(record);
            if let Some(s) = self.splits.get_mut(key) {
                s.next_offset = if past_stop { s.stop.unwrap_or(offset) } else { offset + 1 };
            }
            if past_stop {
                return Ok(());
            }
        }
    }

    fn refresh_lag(&mut self) {
        if Instant::now() < self.next_lag {
            return;
        }
        let keys: Vec<(String, i32)> = self.splits.keys().cloned().collect();
        let mut all = true;
        for (topic, partition) in keys {
            // A short timeout: lag is a metric, and a slow broker must not stall reading.
            let end = self.consumer.fetch_watermarks(&topic, partition, Duration::from_millis(500)).ok().map(|w| w.1);
            all &= end.is_some();
            if let Some(s) = self.splits.get_mut(&(topic, partition)) {
                s.end = end.or(s.end);
            }
        }
        // An answer that did not come in time is asked again soon: an unknown lag
        // keeps the source's pending records unknown.
        self.next_lag = Instant::now() + if all { LAG_INTERVAL } else { LAG_RETRY };
    }
}

impl SourceReader for KafkaSource {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        if let Some(at) = self.next_discovery
            && Instant::now() >= at
        {
            self.discover(None, false)?;
            self.next_discovery = self.cfg.discovery.map(|d| Instant::now() + d);
        }
        // Serves the client's own events (errors, statistics); records arrive
        // on the partition queues.
        if let Some(Err(e)) = self.consumer.poll(Duration::ZERO)
            && !matches!(e, KafkaError::PartitionEOF(_))
        {
            return Err(self.err(e));
        }
        self.refresh_lag();
        self.read_some()?;
        if self.pending_rows() > 0 {
            return self.batch();
        }
        if self.cfg.bounded.is_some() && self.splits.values().all(Split::done) {
            return Ok(SourceEvent::End);
        }
        std::thread::sleep(Duration::from_millis(5));
        Ok(SourceEvent::Idle)
    }

    fn has_work(&self) -> bool {
        !self.splits.is_empty()
    }

    fn checkpoint_taken(&mut self, checkpoint: u64) {
        if self.commit_offsets {
            let offsets = self.splits.iter().map(|((t, p), s)| (t.clone(), *p, s.next_offset)).collect();
            self.taken.push((checkpoint, offsets));
        }
    }

    fn checkpoint_complete(&mut self, checkpoint: u64) {
        let Some(i) = self.taken.iter().rposition(|(id, _)| *id <= checkpoint) else { return };
        let (_, offsets) = self.taken.swap_remove(i);
        self.taken.retain(|(id, _)| *id > checkpoint);
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, offset) in offsets {
            let _ = tpl.add_partition_offset(&topic, partition, Offset::Offset(offset));
        }
        // For monitoring only (consumer lag tools): a failed commit is retried by
        // the next checkpoint's and never affects what the job reads.
        if let Err(e) = self.consumer.commit(&tpl, rdkafka::consumer::CommitMode::Async) {
            eprintln!("sluice: table `{}`: cannot commit offsets to group '{}': {e}", self.table, self.group_id());
        }
    }

    fn batch_split(&self) -> Option<(u32, Vec<u32>)> {
        // A finished split (bounded) no longer holds the watermark back, as in Flink.
        let owned = self.splits.values().filter(|s| !s.done()).map(|s| s.id).collect();
        self.batch_split.map(|id| (id, owned))
    }

    fn pending_records(&self) -> Option<u64> {
        let mut sum = 0u64;
        for s in self.splits.values() {
            let end = match s.stop {
                Some(stop) => Some(s.end.map_or(stop, |e| e.min(stop))),
                None => s.end,
            };
            sum += u64::try_from(end? - s.next_offset).unwrap_or(0);
        }
        Some(sum)
    }

    fn splits(&self) -> Option<u64> {
        Some(self.known.len() as u64)
    }

    fn skipped_records(&self) -> u64 {
        self.rows.skipped
    }

    fn set_batch_size(&mut self, rows: usize) {
        self.batch_size = rows.clamp(1, self.max_batch_size);
    }

    fn snapshot(&self) -> Result<Vec<Vec<u8>>, ConnectorError> {
        if self.pending_rows() > 0 {
            return Err(ConnectorError::State { table: self.table.clone(), source: crate::StateError::MidPoll });
        }
        self.splits
            .iter()
            .map(|((topic, partition), s)| {
                PartitionSplit { topic: topic.clone(), partition: *partition, next_offset: s.next_offset, stop: s.stop }
                    .encode()
                    .map_err(|source| ConnectorError::State { table: self.table.clone(), source })
            })
            .collect()
    }
}

/// Whether an error says that a group's coordinator is not ready yet, which
/// passes: it is being elected, or is loading the group's offsets.
fn coordinator_not_ready(e: &KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode::{CoordinatorLoadInProgress, CoordinatorNotAvailable, NotCoordinator};
    matches!(e.rdkafka_error_code(), Some(NotCoordinator | CoordinatorLoadInProgress | CoordinatorNotAvailable))
}

#[cfg(test)]
mod tests {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};

    #[test]
    fn a_coordinator_that_is_not_ready_is_waited_for() {
        // What librdkafka reported from a fresh broker (`NotCoordinator` on the first OffsetFetch).
        assert!(super::coordinator_not_ready(&KafkaError::MetadataFetch(RDKafkaErrorCode::NotCoordinator)));
        assert!(super::coordinator_not_ready(&KafkaError::MetadataFetch(RDKafkaErrorCode::CoordinatorLoadInProgress)));
        assert!(!super::coordinator_not_ready(&KafkaError::MetadataFetch(RDKafkaErrorCode::GroupAuthorizationFailed)));
    }
}
