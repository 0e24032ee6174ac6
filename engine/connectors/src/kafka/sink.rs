//! The Kafka sink writer of one subtask, and the recovery of a restored sink.
//!
//! `sink.delivery-guarantee`:
//! - `none`: records are handed to the client, which sends them when it can;
//! - `at-least-once` (Flink's default): a checkpoint waits until the broker
//!   has acknowledged every record written before its barrier;
//! - `exactly-once`: one Kafka transaction per checkpoint, under the protocol
//!   below.
//!
//! Exactly-once protocol, and its invariants:
//! - Transactional ids are `<prefix>-<subtask>-<sequence>`. A writer's
//!   sequence only grows; a restored writer starts above every sequence in
//!   the restored states. The prefix is `sink.transactional-id-prefix`, by
//!   default `sluice-<job id>-<table>`, which no other job shares.
//! - The open transaction holds the rows written since the last pre-commit.
//!   [`KafkaSink::pre_commit`] flushes it (every record acknowledged), leaves
//!   it open, and returns its id as the committable; the next rows go to a
//!   new producer with the next sequence.
//! - [`KafkaSink::commit`] (the checkpoint completed) commits those
//!   transactions through the producers that opened them.
//! - `recover` (in `recover.rs`) runs before a restored (or fresh) job writes: it commits the
//!   restored committables through the transaction coordinator
//!   (`DescribeTransactions`, then `EndTxn` with the producer id and epoch the
//!   broker reports), because the producers that opened them died with the
//!   old process; then it aborts, by `InitProducerId`, every later
//!   transaction of the old writers, which also fences a zombie writer of an
//!   earlier attempt: its epoch is stale, so it can commit nothing.
//! - Rows of a transaction whose checkpoint never completes are aborted by
//!   recovery and written again by the replay; rows of a completed
//!   checkpoint are committed exactly once, by the writer or by recovery.
//! - A pre-committed transaction must be committed within the producer's
//!   `transaction.timeout.ms`, or the broker aborts it and its rows are lost;
//!   so the timeout must exceed the checkpoint interval (checked at start)
//!   and should cover the time a failed job takes to come back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Array, ArrayRef, BinaryArray, StringArray, TimestampMillisecondArray};
use arrow::compute::cast;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use sluice_format::changelog::{self, RowKind};

use super::{Guarantee, KafkaConfig, Meta, Partitioner, REQUEST_TIMEOUT, ValueFormat, kafka_error};
use crate::format::Encoder;
use crate::state::kafka::{KafkaSinkState, TxnCommittable};
use crate::{ConnectorError, SinkContext, SinkWriter};

/// Remembers the first failed delivery, which fails the next flush.
#[derive(Default, Clone)]
pub(super) struct Deliveries {
    failed: Arc<Mutex<Option<String>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result
            && let Ok(mut f) = self.failed.lock()
            && f.is_none()
        {
            *f = Some(e.to_string());
        }
    }
}

impl Deliveries {
    fn take_failure(&self) -> Option<String> {
        self.failed.lock().ok().and_then(|mut f| f.take())
    }
}

type Client = BaseProducer<Deliveries>;

/// The default transactional-id prefix: unique to the job and the table.
pub(super) fn default_prefix(ctx: &SinkContext) -> String {
    format!("sluice-{}-{}", ctx.job_id, ctx.table)
}

pub(super) fn transactional_id(prefix: &str, subtask: usize, sequence: u64) -> String {
    format!("{prefix}-{subtask}-{sequence}")
}

pub(crate) struct KafkaSink {
    table: String,
    cfg: KafkaConfig,
    topic: String,
    subtask: usize,
    prefix: String,
    context: Deliveries,
    producer: Client,
    /// Sequence of the open transaction (exactly-once).
    sequence: u64,
    /// Whether the open transaction holds a record.
    dirty: bool,
    /// Pre-committed transactions by id, awaiting their checkpoint.
    pending: BTreeMap<String, Client>,
    key_encoder: Option<(Encoder, Vec<usize>)>,
    value_encoder: Option<Encoder>,
    value_columns: Vec<usize>,
    /// The `timestamp` metadata column: each record's timestamp.
    timestamp_column: Option<usize>,
    local_time_zone: String,
    /// The partition count, for the `fixed` and `round-robin` partitioners.
    partitions: i32,
    next_partition: i32,
    keys: Vec<u8>,
    values: Vec<u8>,
}

impl KafkaSink {
    pub(crate) fn new(ctx: &SinkContext, cfg: KafkaConfig) -> Result<Self, ConnectorError> {
        let table = ctx.table.clone();
        let topic = cfg.topics.first().cloned().unwrap_or_default();
        if cfg.guarantee == Guarantee::ExactlyOnce {
            check_transaction_timeout(ctx, &cfg)?;
        }
        let prefix = cfg.transactional_id_prefix.clone().unwrap_or_else(|| default_prefix(ctx));
        let sequence = match &ctx.restored_states {
            Some(states) => {
                let mut max = 0;
                for s in states {
                    let s = KafkaSinkState::decode(s)
                        .map_err(|source| ConnectorError::State { table: table.clone(), source })?;
                    max = max.max(s.sequence);
                }
                max + 1
            }
            None => 1,
        };
        let fields = ctx.schema.fields();
        let layout = &cfg.layout;
        let value_columns = layout.value.clone();
        let encoder = |format: &ValueFormat, cols: &[usize], key: bool| -> Result<Option<Encoder>, ConnectorError> {
            let ValueFormat::Text(f) = format else { return Ok(None) };
            // Key fields are named without `key.fields-prefix` in the key.
            let fs: Vec<_> = cols
                .iter()
                .map(|i| match key {
                    true => Arc::new(fields[*i].as_ref().clone().with_name(layout.key_name(fields[*i].name()))),
                    false => fields[*i].clone(),
                })
                .collect();
            let types = f
                .column_types(&fs, "kafka")
                .map_err(|e| ConnectorError::InvalidOption { table: table.clone(), message: e.to_string() })?;
            Ok(Some(Encoder::new(f, &fs, types)))
        };
        let value_encoder = encoder(&cfg.value, &value_columns, false)?;
        let key_encoder = match &cfg.key {
            Some(f) => encoder(f, &layout.key, true)?.map(|e| (e, layout.key.clone())),
            None => None,
        };
        let timestamp_column = layout.metadata.iter().find(|(_, m)| *m == Meta::Timestamp).map(|(i, _)| *i);
        let context = Deliveries::default();
        let producer = new_producer(&table, &cfg, &context, ctx.subtask, None)?;
        let mut s = KafkaSink {
            table,
            topic,
            subtask: ctx.subtask,
            prefix,
            context,
            producer,
            sequence,
            dirty: false,
            pending: BTreeMap::new(),
            key_encoder,
            value_encoder,
            value_columns,
            timestamp_column,
            local_time_zone: ctx.local_time_zone.clone(),
            partitions: 0,
            next_partition: 0,
            keys: Vec::new(),
            values: Vec::new(),
            cfg,
        };
        if s.cfg.partitioner != Partitioner::Default {
            s.partitions = partition_count(&s.producer, &s.topic).map_err(|e| s.err(e))?;
        }
        if s.cfg.guarantee == Guarantee::ExactlyOnce {
            s.producer = s.open_transaction()?;
        }
        Ok(s)
    }

    fn err(&self, what: impl std::fmt::Display) -> ConnectorError {
        kafka_error(&self.table, what)
    }

    /// A transactional producer for the current sequence, with its transaction begun.
    fn open_transaction(&self) -> Result<Client, ConnectorError> {
        let id = transactional_id(&self.prefix, self.subtask, self.sequence);
        let p = new_producer(&self.table, &self.cfg, &self.context, self.subtask, Some(&id))?;
        p.init_transactions(REQUEST_TIMEOUT)
            .map_err(|e| self.err(format!("cannot start transactional producer '{id}': {}", hint(&e))))?;
        p.begin_transaction().map_err(|e| self.err(format!("cannot begin a transaction of '{id}': {e}")))?;
        Ok(p)
    }

    /// Waits until every record sent is acknowledged; fails on any failed delivery.
    fn flush(&self) -> Result<(), ConnectorError> {
        self.producer
            .flush(REQUEST_TIMEOUT)
            .map_err(|e| self.err(format!("cannot flush to topic '{}': {e}", self.topic)))?;
        match self.context.take_failure() {
            Some(f) => Err(self.err(format!("a record could not be written to topic '{}': {f}", self.topic))),
            None => Ok(()),
        }
    }

    /// Sends one record; a `None` value is a tombstone (an `upsert-kafka` delete).
    fn send(&mut self, key: Option<&[u8]>, value: Option<&[u8]>, timestamp: Option<i64>) -> Result<(), ConnectorError> {
        let partition = match self.cfg.partitioner {
            Partitioner::Default => None,
            Partitioner::Fixed => Some(self.subtask as i32 % self.partitions.max(1)),
            Partitioner::RoundRobin => {
                self.next_partition = (self.next_partition + 1) % self.partitions.max(1);
                Some(self.next_partition)
            }
        };
        let mut record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(&self.topic);
        if let Some(v) = value {
            record = record.payload(v);
        }
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(t) = timestamp {
            record = record.timestamp(t);
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // The client's queue is full: serve deliveries until there is room.
                    self.producer.poll(Duration::from_millis(10));
                    record = r;
                }
                Err((e, _)) => return Err(self.err(format!("cannot write to topic '{}': {e}", self.topic))),
            }
        }
        self.dirty = true;
        Ok(())
    }
}

/// Each row's text, from one encoding of the whole batch: JSON writes one line
/// per row; CSV, whose quoted fields may hold line breaks, is encoded row by row.
fn encode_rows(
    table: &str,
    encoder: &mut Encoder,
    batch: &RecordBatch,
    buf: &mut Vec<u8>,
) -> Result<Vec<(usize, usize)>, ConnectorError> {
    buf.clear();
    let mut spans = Vec::with_capacity(batch.num_rows());
    if matches!(encoder, Encoder::Json(_) | Encoder::Cdc(_)) {
        encoder.encode(table, batch, buf)?;
        let mut start = 0;
        for (i, b) in buf.iter().enumerate() {
            if *b == b'\n' {
                spans.push((start, i));
                start = i + 1;
            }
        }
    } else {
        for r in 0..batch.num_rows() {
            let start = buf.len();
            encoder.encode(table, &batch.slice(r, 1), buf)?;
            let end = if buf.last() == Some(&b'\n') { buf.len() - 1 } else { buf.len() };
            let end = if end > start && buf[end - 1] == b'\r' { end - 1 } else { end };
            spans.push((start, end));
        }
    }
    Ok(spans)
}

/// A `timestamp` metadata column as milliseconds since the epoch: a
/// `TIMESTAMP(3)` is a local time in `table.local-time-zone`, as in Flink.
fn epoch_millis(column: &ArrayRef, local_time_zone: &str) -> Result<TimestampMillisecondArray, ArrowError> {
    let t = cast(column, &Meta::Timestamp.data_type(local_time_zone))?;
    t.as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .cloned()
        .ok_or_else(|| ArrowError::CastError(format!("a timestamp column of type {}", column.data_type())))
}

/// The bytes of a `raw` column's rows (None for NULL).
fn raw_rows(table: &str, batch: &RecordBatch, col: usize) -> Result<Vec<Option<Vec<u8>>>, ConnectorError> {
    let a = batch.column(col);
    if let Some(s) = a.as_any().downcast_ref::<StringArray>() {
        return Ok((0..s.len()).map(|i| s.is_valid(i).then(|| s.value(i).as_bytes().to_vec())).collect());
    }
    if let Some(b) = a.as_any().downcast_ref::<BinaryArray>() {
        return Ok((0..b.len()).map(|i| b.is_valid(i).then(|| b.value(i).to_vec())).collect());
    }
    Err(kafka_error(table, "format 'raw' needs a STRING or BYTES column"))
}

impl SinkWriter for KafkaSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let table = self.table.clone();
        // A changelog format writes each row's kind into its record.
        let changes = matches!(self.value_encoder, Some(Encoder::Cdc(_)));
        let mut value_columns = self.value_columns.clone();
        if changes && changelog::has_kinds(batch) {
            value_columns.push(batch.num_columns() - 1);
        }
        let values_batch = batch
            .project(&value_columns)
            .map_err(|e| ConnectorError::Batch { table: table.clone(), source: e.into() })?;
        let mut values_buf = std::mem::take(&mut self.values);
        let mut keys_buf = std::mem::take(&mut self.keys);
        let value_rows: Vec<Option<Vec<u8>>>;
        let value_spans = match &mut self.value_encoder {
            Some(e) => {
                value_rows = Vec::new();
                Some(encode_rows(&table, e, &values_batch, &mut values_buf)?)
            }
            None => {
                value_rows = raw_rows(&table, &values_batch, 0)?;
                None
            }
        };
        let mut key_rows: Option<Vec<Option<Vec<u8>>>> = None;
        let mut key_spans = None;
        if let Some((e, cols)) = &mut self.key_encoder {
            let kb =
                batch.project(cols).map_err(|e| ConnectorError::Batch { table: table.clone(), source: e.into() })?;
            key_spans = Some(encode_rows(&table, e, &kb, &mut keys_buf)?);
        } else if let Some(ValueFormat::Raw) = &self.cfg.key {
            key_rows = Some(raw_rows(&table, batch, self.cfg.layout.key[0])?);
        }
        let timestamps = match self.timestamp_column {
            Some(c) => Some(
                epoch_millis(batch.column(c), &self.local_time_zone)
                    .map_err(|e| ConnectorError::Batch { table: table.clone(), source: e.into() })?,
            ),
            None => None,
        };
        // Row kinds of an updating input: a changelog format writes every
        // row, its kind inside the record. For `upsert-kafka` an update's new
        // row is written under its key, a delete is a tombstone, and `-U` is
        // dropped, as Flink's upsert-kafka sink does.
        let kinds = changelog::kinds(batch);
        let mut result = Ok(());
        for (r, kind) in kinds.iter().enumerate() {
            if *kind == RowKind::UpdateBefore && !changes {
                continue;
            }
            let key: Option<Vec<u8>> = match (&key_spans, &key_rows) {
                (Some(s), _) => s.get(r).map(|(a, b)| keys_buf[*a..*b].to_vec()),
                (None, Some(k)) => k.get(r).cloned().flatten(),
                _ => None,
            };
            let value: &[u8] = match &value_spans {
                Some(s) => s.get(r).map_or(&[][..], |(a, b)| &values_buf[*a..*b]),
                None => value_rows.get(r).and_then(|v| v.as_deref()).unwrap_or_default(),
            };
            let timestamp = timestamps.as_ref().and_then(|t| t.is_valid(r).then(|| t.value(r)));
            let value = (changes || *kind != RowKind::Delete).then_some(value);
            if let Err(e) = self.send(key.as_deref(), value, timestamp) {
                result = Err(e);
                break;
            }
        }
        self.values = values_buf;
        self.keys = keys_buf;
        self.producer.poll(Duration::ZERO);
        if let Some(f) = self.context.take_failure() {
            return Err(self.err(format!("a record could not be written to topic '{}': {f}", self.topic)));
        }
        result
    }

    fn finish(&mut self) -> Result<(), ConnectorError> {
        self.flush()?;
        if self.cfg.guarantee == Guarantee::ExactlyOnce {
            // Without checkpoints (the engine calls finish only then), the end commits.
            self.producer
                .commit_transaction(REQUEST_TIMEOUT)
                .map_err(|e| self.err(format!("cannot commit the final transaction: {e}")))?;
        }
        Ok(())
    }

    fn pre_commit(&mut self, checkpoint_id: u64) -> Result<Vec<u8>, ConnectorError> {
        match self.cfg.guarantee {
            Guarantee::None => return Ok(Vec::new()),
            Guarantee::AtLeastOnce => {
                self.flush()?;
                return Ok(Vec::new());
            }
            Guarantee::ExactlyOnce => {}
        }
        if let Some(m) = sluice_api::failpoint::hit("kafka.before-pre-commit") {
            return Err(self.err(m));
        }
        if !self.dirty {
            // Nothing to commit: the open transaction carries on.
            return Ok(Vec::new());
        }
        self.flush()?;
        let id = transactional_id(&self.prefix, self.subtask, self.sequence);
        self.sequence += 1;
        let next = self.open_transaction()?;
        let done = std::mem::replace(&mut self.producer, next);
        self.pending.insert(id.clone(), done);
        self.dirty = false;
        TxnCommittable { checkpoint: checkpoint_id, transactional_id: id }
            .encode()
            .map_err(|source| ConnectorError::State { table: self.table.clone(), source })
    }

    fn commit(&mut self, committables: &[Vec<u8>]) -> Result<(), ConnectorError> {
        for c in committables {
            let c = TxnCommittable::decode(c)
                .map_err(|source| ConnectorError::State { table: self.table.clone(), source })?;
            if let Some(m) = sluice_api::failpoint::hit("kafka.before-commit") {
                return Err(self.err(m));
            }
            match self.pending.remove(&c.transactional_id) {
                Some(p) => p.commit_transaction(REQUEST_TIMEOUT).map_err(|e| {
                    self.err(format!(
                        "cannot commit transaction '{}' of checkpoint {}: {e}",
                        c.transactional_id, c.checkpoint
                    ))
                })?,
                // Not opened by this writer: committed through the coordinator.
                None => super::recover::commit_restored(&self.table, &self.cfg, &c)?,
            }
        }
        Ok(())
    }

    fn snapshot_state(&self) -> Result<Vec<u8>, ConnectorError> {
        // The sequence of the last pre-committed transaction: later ones are
        // aborted if the job comes back from this checkpoint.
        KafkaSinkState { prefix: self.prefix.clone(), subtask: self.subtask as u32, sequence: self.sequence - 1 }
            .encode()
            .map_err(|source| ConnectorError::State { table: self.table.clone(), source })
    }
}

/// `transaction.timeout.ms` must outlast a checkpoint interval. Without
/// periodic checkpoints, a bounded job's output is committed at its end.
fn check_transaction_timeout(ctx: &SinkContext, cfg: &KafkaConfig) -> Result<(), ConnectorError> {
    let Some(interval) = ctx.checkpoint_interval else { return Ok(()) };
    if u128::from(cfg.transaction_timeout_ms) <= interval.as_millis() {
        return Err(kafka_error(
            &ctx.table,
            format!(
                "'properties.transaction.timeout.ms' ({} ms) must be longer than the checkpoint interval ({} ms): a transaction stays open for an interval and until its checkpoint completes",
                cfg.transaction_timeout_ms,
                interval.as_millis()
            ),
        ));
    }
    Ok(())
}

/// What the client's error means, with the fix when it is a known one.
pub(super) fn hint(e: &KafkaError) -> String {
    let s = e.to_string();
    if s.contains("transaction.timeout")
        || s.contains("InvalidTransactionTimeout")
        || s.contains("INVALID_TRANSACTION_TIMEOUT")
    {
        return format!(
            "{s}; 'properties.transaction.timeout.ms' (default 900000, 15 min) must not exceed the broker's transaction.max.timeout.ms"
        );
    }
    s
}

pub(super) fn new_producer(
    table: &str,
    cfg: &KafkaConfig,
    context: &Deliveries,
    subtask: usize,
    transactional_id: Option<&str>,
) -> Result<Client, ConnectorError> {
    let timeout = cfg.transaction_timeout_ms.to_string();
    let client_id = format!("sluice-{table}-{subtask}");
    let mut defaults: Vec<(&str, &str)> = vec![
        // As the Java client: the same key goes to the same partition.
        ("partitioner", "murmur2_random"),
        ("client.id", &client_id),
        ("linger.ms", "5"),
    ];
    match cfg.guarantee {
        Guarantee::None => {}
        Guarantee::AtLeastOnce => defaults.push(("enable.idempotence", "true")),
        Guarantee::ExactlyOnce => defaults.push(("transaction.timeout.ms", &timeout)),
    }
    let mut c = cfg.client_config(&defaults);
    if let Some(id) = transactional_id {
        c.set("transactional.id", id);
    }
    c.create_with_context(context.clone()).map_err(|e| kafka_error(table, format!("cannot create a producer: {e}")))
}

fn partition_count(p: &Client, topic: &str) -> Result<i32, String> {
    let md = p.client().fetch_metadata(Some(topic), REQUEST_TIMEOUT).map_err(|e| format!("topic '{topic}': {e}"))?;
    let t = md.topics().iter().find(|t| t.name() == topic).ok_or_else(|| format!("topic '{topic}' does not exist"))?;
    if t.error().is_some() || t.partitions().is_empty() {
        return Err(format!("topic '{topic}' does not exist"));
    }
    Ok(t.partitions().len() as i32)
}
