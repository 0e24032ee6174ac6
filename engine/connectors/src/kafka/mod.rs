//! The `kafka` connector, as a source and as a sink, with Apache Flink's
//! option names and semantics, on librdkafka (the `rdkafka` crate).
//!
//! - [`source`]: each topic-partition is a split, owned by one subtask by
//!   Flink's rule; the split's state is the offset of the next record, so a
//!   restore (at any parallelism) continues exactly after the checkpoint.
//!   `read_committed` by default.
//! - [`sink`]: `none`, `at-least-once` (flush at each checkpoint) or
//!   `exactly-once` (one Kafka transaction per checkpoint, committed when the
//!   checkpoint completes); its protocol and invariants are stated there.
//! - [`columns`]: which column comes from a record's value, key or metadata;
//!   [`rows`]: a source's batch, decoded that way;
//! - `upsert-kafka` is this sink keyed by the table's primary key;
//! - [`recover`]: the recovery of an exactly-once sink before a job writes;
//! - [`protocol`]: the Kafka requests that the sink's recovery sends itself.
//!
//! Plaintext connections only: librdkafka is built without TLS and SASL.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow::datatypes::{DataType, SchemaRef};
use rdkafka::ClientConfig;

use crate::ConnectorError;
use crate::format::Format;
use crate::format::{cdc::CDC_OPTIONS, csv::CSV_OPTIONS, json::JSON_OPTIONS};
use crate::options::Options;
use columns::Layout;
pub(crate) use columns::Meta;

mod columns;
mod protocol;
mod recover;
mod rows;
mod sink;
mod source;

pub(crate) use recover::recover;
pub(crate) use sink::KafkaSink;
pub(crate) use source::KafkaSource;

/// How long a metadata or offset request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Flink's default of `scan.topic-partition-discovery.interval`.
const DEFAULT_DISCOVERY: Duration = Duration::from_secs(5 * 60);
/// The default `transaction.timeout.ms` of an exactly-once sink: the broker's
/// default `transaction.max.timeout.ms` (15 min). A checkpoint's transaction
/// stays open for a checkpoint interval plus the time to complete it, and
/// after a crash until the job is restored.
const DEFAULT_TRANSACTION_TIMEOUT_MS: u64 = 15 * 60 * 1000;

pub(crate) fn supported_options() -> String {
    format!(
        "'topic' or 'topic-pattern', 'properties.bootstrap.servers', 'properties.group.id', 'properties.*' (passed to the Kafka client), \
'format' or 'value.format' ('json', 'csv', 'raw', 'debezium-json', 'canal-json' or 'maxwell-json'), 'key.format', 'key.fields', 'key.fields-prefix', \
'value.fields-include', \
'scan.startup.mode', 'scan.startup.timestamp-millis', 'scan.startup.specific-offsets', 'scan.bounded.mode', \
'scan.bounded.timestamp-millis', 'scan.bounded.specific-offsets', 'scan.topic-partition-discovery.interval', \
'sink.delivery-guarantee', 'sink.transactional-id-prefix', 'sink.partitioner', and the format options \
{JSON_OPTIONS}, {CSV_OPTIONS}, {CDC_OPTIONS} (prefixed with 'value.' after 'value.format')"
    )
}

/// `topic-pattern`: a regular expression that a topic's whole name must
/// match, as Java's `Pattern.matches` in Flink. Internal topics (`__...`)
/// never match, as the admin client leaves them out of Flink's topic list.
#[derive(Debug, Clone)]
pub(crate) struct TopicPattern(regex::Regex);

impl TopicPattern {
    fn new(pattern: &str) -> Result<TopicPattern, String> {
        regex::Regex::new(&format!("^(?:{pattern})$"))
            .map(TopicPattern)
            .map_err(|e| format!("option 'topic-pattern' = '{pattern}' is not a valid regular expression: {e}"))
    }

    pub(crate) fn matches(&self, topic: &str) -> bool {
        !topic.starts_with("__") && self.0.is_match(topic)
    }
}

/// Where a source starts (`scan.startup.mode`) or stops (`scan.bounded.mode`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Position {
    Earliest,
    Latest,
    /// The consumer group's committed offsets; `properties.auto.offset.reset`
    /// (default `earliest`) for partitions without one.
    Group,
    /// The first record at or after this time (ms).
    Timestamp(i64),
    /// Offsets per partition; other partitions start at the earliest offset
    /// (or, as a bound, are read to their end at the start).
    Specific(BTreeMap<i32, i64>),
}

/// `sink.delivery-guarantee`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Guarantee {
    None,
    AtLeastOnce,
    ExactlyOnce,
}

/// `sink.partitioner`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Partitioner {
    /// The Kafka client's partitioner: by the key's murmur2 hash, as the Java
    /// client does, and sticky without a key.
    Default,
    /// Each sink subtask writes to one partition (`subtask % partitions`).
    Fixed,
    RoundRobin,
}

/// The value (or key) format.
#[derive(Debug, Clone)]
pub(crate) enum ValueFormat {
    Text(Format),
    /// One column of type STRING or BYTES: the record's bytes.
    Raw,
}

#[derive(Debug, Clone)]
pub(crate) struct KafkaConfig {
    /// An `upsert-kafka` table: its source reads a record as an upsert of its
    /// key and a tombstone as a delete (rows with row kinds).
    pub upsert: bool,
    /// `topic`: empty with `topic-pattern`.
    pub topics: Vec<String>,
    pub pattern: Option<TopicPattern>,
    pub bootstrap: String,
    /// Every `properties.*` option without the prefix, for the client.
    pub properties: BTreeMap<String, String>,
    pub value: ValueFormat,
    /// `key.format`; its columns are `layout.key`.
    pub key: Option<ValueFormat>,
    /// Which columns come from the value, the key and the record's metadata.
    pub layout: Layout,
    pub startup: Position,
    pub bounded: Option<Position>,
    pub discovery: Option<Duration>,
    pub guarantee: Guarantee,
    pub transactional_id_prefix: Option<String>,
    pub partitioner: Partitioner,
    pub transaction_timeout_ms: u64,
}

impl KafkaConfig {
    /// The options of a `kafka` table, or with `upsert` of an `upsert-kafka` one:
    /// keyed by its primary key, with `key.format` and `value.format`.
    pub(crate) fn parse(o: &Options<'_>, schema: &SchemaRef, sink: bool, upsert: bool) -> Result<Self, ConnectorError> {
        let primary_key = sluice_api::columns::primary_key(schema.metadata()).join(";");
        if upsert {
            if primary_key.is_empty() {
                return Err(o.error(
                    "'upsert-kafka' tables require to define a PRIMARY KEY constraint. The PRIMARY KEY specifies which columns should be read from or write to the Kafka message key. The PRIMARY KEY also defines records in the 'upsert-kafka' table should update or delete on which keys.",
                ));
            }
            for key in ["key.format", "value.format"] {
                if !o.contains(key) {
                    return Err(o.error(format!("'upsert-kafka' needs option '{key}'")));
                }
            }
            if o.contains("key.fields") {
                o.get("key.fields");
                return Err(o.error("'upsert-kafka' takes its key fields from the PRIMARY KEY; remove 'key.fields'"));
            }
        } else if !primary_key.is_empty() {
            let format = o.get("value.format").or(o.get("format")).unwrap_or_default();
            return Err(o.error(format!(
                "The Kafka table with '{format}' format doesn't support defining PRIMARY KEY constraint on the table, because it can't guarantee the semantic of primary key (use 'upsert-kafka' for a table keyed by its primary key)"
            )));
        }
        let (topics, pattern) = match (o.get("topic"), o.get("topic-pattern")) {
            (Some(_), Some(_)) => return Err(o.error("set either 'topic' or 'topic-pattern', not both")),
            (None, None) => {
                return Err(o.error(
                    "missing required option 'topic' (a topic name, or topics separated by ';') or 'topic-pattern' (a regular expression over topic names)",
                ));
            }
            (None, Some(_)) if sink => {
                return Err(o.error("a Kafka sink writes to one 'topic'; 'topic-pattern' is for sources"));
            }
            (None, Some(p)) => (Vec::new(), Some(TopicPattern::new(p).map_err(|m| o.error(m))?)),
            (Some(topic), None) => {
                (topic.split(';').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(), None)
            }
        };
        if sink && topics.len() != 1 {
            return Err(o.error(format!("a Kafka sink writes to one topic, but 'topic' lists {}", topics.len())));
        }
        if pattern.is_none() && topics.is_empty() {
            return Err(o.error("option 'topic' names no topic"));
        }
        let bootstrap =
            o.required("properties.bootstrap.servers", "the brokers, as host:port[,host:port...]")?.trim().to_string();
        let mut properties = BTreeMap::new();
        for key in o.keys_with_prefix("properties.") {
            let value = o.get(key).unwrap_or_default();
            properties.insert(key["properties.".len()..].to_string(), value.to_string());
        }
        if let Some(p) = properties.get("security.protocol").filter(|p| !p.eq_ignore_ascii_case("plaintext")) {
            return Err(o.error(format!(
                "'properties.security.protocol' = '{p}' is not supported yet: Sluice's Kafka client is built without TLS and SASL; use a PLAINTEXT listener"
            )));
        }
        let layout = Layout::parse(o, schema, sink, o.contains("key.format"), upsert.then_some(primary_key.as_str()))?;
        let value = value_format(o, schema, &layout.value)?;
        if let ValueFormat::Text(f) = &value {
            if let Some(cdc) = f.changelog()
                && upsert
            {
                return Err(o.error(format!(
                    "'upsert-kafka' connector doesn't support '{cdc}' as value format, because '{cdc}' is not in insert-only mode"
                )));
            }
            if sink {
                f.check_sink().map_err(|m| o.error(m))?;
            }
        }
        let key = match o.contains("key.format") {
            true => Some(text_or_raw(o, "key.format", "key.", schema, &layout.key)?),
            false => None,
        };
        let startup = match o.get("scan.startup.mode").map(str::trim) {
            // An upsert-kafka source reads the whole (compacted) topic, as in Flink.
            None if upsert => Position::Earliest,
            None | Some("group-offsets") => Position::Group,
            Some(m) => position(o, m, "scan.startup")?,
        };
        if startup == Position::Group && !properties.contains_key("group.id") && !sink {
            return Err(o.error(
                "'scan.startup.mode' is 'group-offsets' (the default) but 'properties.group.id' is not set; set a group id or a startup mode such as 'earliest-offset'",
            ));
        }
        let bounded = match o.get("scan.bounded.mode").map(str::trim) {
            None | Some("unbounded") => None,
            Some("earliest-offset") => return Err(o.error("'scan.bounded.mode' cannot be 'earliest-offset'")),
            Some(m) => Some(position(o, m, "scan.bounded")?),
        };
        // A bounded read takes the partitions there are at its start, as in Flink.
        let discovery = match o.duration("scan.topic-partition-discovery.interval")? {
            _ if bounded.is_some() => None,
            None => Some(DEFAULT_DISCOVERY),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        };
        let guarantee = match o.get("sink.delivery-guarantee").map(str::trim) {
            None | Some("at-least-once") => Guarantee::AtLeastOnce,
            Some("exactly-once") => Guarantee::ExactlyOnce,
            Some("none") => Guarantee::None,
            Some(v) => {
                return Err(o.error(format!(
                    "option 'sink.delivery-guarantee' = '{v}' is invalid: expected 'exactly-once', 'at-least-once' or 'none'"
                )));
            }
        };
        let transactional_id_prefix = o.get("sink.transactional-id-prefix").map(|p| p.trim().to_string());
        if transactional_id_prefix.as_deref().is_some_and(str::is_empty) {
            return Err(o.error("option 'sink.transactional-id-prefix' is empty"));
        }
        let partitioner = match o.get("sink.partitioner").map(str::trim) {
            None | Some("default") => Partitioner::Default,
            Some("fixed") => Partitioner::Fixed,
            Some("round-robin") => Partitioner::RoundRobin,
            Some(v) => {
                return Err(o.error(format!(
                    "option 'sink.partitioner' = '{v}' is invalid: expected 'default', 'fixed' or 'round-robin' (custom partitioner classes are Java)"
                )));
            }
        };
        let transaction_timeout_ms = match properties.get("transaction.timeout.ms") {
            None => DEFAULT_TRANSACTION_TIMEOUT_MS,
            Some(v) => v.trim().parse().map_err(|_| {
                o.error(format!("'properties.transaction.timeout.ms' = '{v}' is not a number of milliseconds"))
            })?,
        };
        o.check_all_used(if upsert { "upsert-kafka" } else { "kafka" }, &supported_options())?;
        Ok(KafkaConfig {
            upsert,
            topics,
            pattern,
            bootstrap,
            properties,
            value,
            key,
            layout,
            startup,
            bounded,
            discovery,
            guarantee,
            transactional_id_prefix,
            partitioner,
            transaction_timeout_ms,
        })
    }

    /// Whether the source reads this topic.
    pub(crate) fn reads_topic(&self, topic: &str) -> bool {
        match &self.pattern {
            Some(p) => p.matches(topic),
            None => self.topics.iter().any(|t| t == topic),
        }
    }

    /// The client configuration: `properties.*` as given, over Sluice's defaults.
    pub(crate) fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c.set("bootstrap.servers", &self.bootstrap);
        c
    }
}

/// `format` or `value.format`, with its options (prefixed with `value.` in the latter case, as in Flink).
fn value_format(o: &Options<'_>, schema: &SchemaRef, columns: &[usize]) -> Result<ValueFormat, ConnectorError> {
    match (o.contains("format"), o.contains("value.format")) {
        (true, true) => Err(o.error("set either 'format' or 'value.format', not both")),
        (false, false) => Err(o.error("missing required option 'format' (or 'value.format'): 'json', 'csv' or 'raw'")),
        (true, false) => text_or_raw(o, "format", "", schema, columns),
        (false, true) => text_or_raw(o, "value.format", "value.", schema, columns),
    }
}

/// Parses a format option; `prefix` is what precedes `json.*`/`csv.*` option keys.
fn text_or_raw(
    o: &Options<'_>,
    key: &str,
    prefix: &str,
    schema: &SchemaRef,
    columns: &[usize],
) -> Result<ValueFormat, ConnectorError> {
    let name = o.get(key).unwrap_or_default().trim().to_string();
    if name == "raw" {
        let ok = columns.len() == 1
            && matches!(schema.field(columns[0]).data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary);
        if !ok {
            return Err(o.error(format!("'{key}' = 'raw' needs exactly one column of type STRING or BYTES")));
        }
        return Ok(ValueFormat::Raw);
    }
    // The format's own options, with the prefix taken off, parsed as `format`.
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    map.insert("format".into(), name);
    for k in o.keys_with_prefix(prefix).into_iter().filter(|k| {
        let rest = &k[prefix.len()..];
        rest.starts_with("json.")
            || rest.starts_with("csv.")
            || crate::format::cdc::CDC_FORMATS.iter().any(|f| rest.strip_prefix(f).is_some_and(|r| r.starts_with('.')))
    }) {
        map.insert(k[prefix.len()..].to_string(), o.get(k).unwrap_or_default().to_string());
    }
    let inner = Options::new(o.table(), &map);
    let f = Format::parse(&inner).map_err(|e| match e {
        ConnectorError::InvalidOption { table, message } => ConnectorError::InvalidOption {
            table,
            message: message.replace("option 'format'", &format!("option '{key}'")),
        },
        e => e,
    })?;
    if let Some(cdc) = f.changelog()
        && key == "key.format"
    {
        return Err(o.error(format!("option 'key.format' = '{cdc}': a changelog format is a value format")));
    }
    Ok(ValueFormat::Text(f))
}

fn position(o: &Options<'_>, mode: &str, prefix: &str) -> Result<Position, ConnectorError> {
    match mode {
        "earliest-offset" => Ok(Position::Earliest),
        "latest-offset" => Ok(Position::Latest),
        "group-offsets" => Ok(Position::Group),
        "timestamp" => {
            let key = format!("{prefix}.timestamp-millis");
            let t = o.i64(&key)?.ok_or_else(|| o.error(format!("'{prefix}.mode' = 'timestamp' needs '{key}'")))?;
            Ok(Position::Timestamp(t))
        }
        "specific-offsets" => {
            let key = format!("{prefix}.specific-offsets");
            let v = o.get(&key).ok_or_else(|| o.error(format!("'{prefix}.mode' = 'specific-offsets' needs '{key}'")))?;
            Ok(Position::Specific(specific_offsets(v).map_err(|m| o.error(format!("option '{key}': {m}")))?))
        }
        m => Err(o.error(format!(
            "option '{prefix}.mode' = '{m}' is invalid: expected 'earliest-offset', 'latest-offset', 'group-offsets', 'timestamp' or 'specific-offsets'"
        ))),
    }
}

/// Flink's `partition:0,offset:42;partition:1,offset:300`.
fn specific_offsets(v: &str) -> Result<BTreeMap<i32, i64>, String> {
    let mut out = BTreeMap::new();
    for part in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let mut partition = None;
        let mut offset = None;
        for kv in part.split(',') {
            match kv.split_once(':').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("partition", p)) => partition = p.parse::<i32>().ok().filter(|p| *p >= 0),
                Some(("offset", o)) => offset = o.parse::<i64>().ok().filter(|o| *o >= 0),
                _ => {}
            }
        }
        match (partition, offset) {
            (Some(p), Some(o)) => {
                out.insert(p, o);
            }
            _ => return Err(format!("'{part}' is not of the form 'partition:<n>,offset:<n>'")),
        }
    }
    if out.is_empty() {
        return Err("no offsets given".into());
    }
    Ok(out)
}

/// Flink's `KafkaSourceEnumerator.getSplitOwner`: the subtask that reads a
/// topic-partition. Partitions of one topic go round-robin from a start that
/// depends on the topic, so that several topics spread evenly.
pub(crate) fn split_owner(topic: &str, partition: i32, parallelism: usize) -> usize {
    let p = parallelism.max(1) as i64;
    let start = (i64::from(java_string_hash(topic).wrapping_mul(31)) & 0x7FFF_FFFF) % p;
    ((start + i64::from(partition)) % p) as usize
}

/// Java's `String.hashCode` (over UTF-16 code units).
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// An error from the Kafka client, naming the table.
pub(crate) fn kafka_error(table: &str, what: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Kafka { table: table.to_string(), message: what.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_sinks_write_changelog_formats_but_upsert_kafka_refuses_them() {
        use std::collections::HashMap;
        use std::sync::Arc;

        use arrow::datatypes::{Field, Schema};
        let fields = vec![Field::new("k", DataType::Int64, false)];
        let plain = Arc::new(Schema::new(fields.clone()));
        let keyed = Arc::new(Schema::new_with_metadata(
            fields,
            HashMap::from([(sluice_api::columns::PRIMARY_KEY.to_string(), "k".to_string())]),
        ));
        let parse = |schema: &SchemaRef, pairs: &[(&str, &str)], upsert: bool| {
            let mut map: BTreeMap<String, String> =
                [("topic", "t"), ("properties.bootstrap.servers", "localhost:9092")]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
            map.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            KafkaConfig::parse(&Options::new("t", &map), schema, true, upsert).map(|_| ()).map_err(|e| e.to_string())
        };
        for f in ["debezium-json", "canal-json", "maxwell-json"] {
            let plain_number = format!("value.{f}.encode.decimal-as-plain-number");
            assert_eq!(parse(&plain, &[("value.format", f), (&plain_number, "true")], false), Ok(()), "{f}");
            let e = parse(&keyed, &[("key.format", "json"), ("value.format", f)], true).unwrap_err();
            assert_eq!(
                e,
                format!(
                    "table `t`: 'upsert-kafka' connector doesn't support '{f}' as value format, because '{f}' is not in insert-only mode"
                )
            );
        }
        let e = parse(&plain, &[("format", "debezium-json"), ("debezium-json.schema-include", "true")], false);
        assert!(e.unwrap_err().contains("doesn't support 'debezium-json.schema-include' option been set to true"));
    }

    #[test]
    fn specific_offsets_parse_as_flink_writes_them() {
        let m = specific_offsets("partition:0,offset:42;partition:1,offset:300").unwrap();
        assert_eq!(m.into_iter().collect::<Vec<_>>(), [(0, 42), (1, 300)]);
        assert!(specific_offsets("partition:0").unwrap_err().contains("partition:<n>,offset:<n>"));
        assert!(specific_offsets("").is_err());
    }

    #[test]
    fn a_topic_pattern_matches_whole_names_and_no_internal_topic() {
        let p = TopicPattern::new("orders-.*").unwrap();
        assert!(p.matches("orders-eu") && !p.matches("old-orders-eu") && !p.matches("orders"));
        assert!(!TopicPattern::new(".*").unwrap().matches("__consumer_offsets"));
        assert!(TopicPattern::new("orders-(").unwrap_err().contains("not a valid regular expression"));
    }

    #[test]
    fn partitions_are_owned_as_in_flink() {
        // "abc".hashCode() = 96354 in Java.
        assert_eq!(java_string_hash("abc"), 96354);
        let start = ((96354i64 * 31) & 0x7FFF_FFFF) % 4;
        for p in 0..8 {
            assert_eq!(split_owner("abc", p, 4) as i64, (start + i64::from(p)) % 4);
        }
        // Every partition of a topic has one owner, and they spread evenly.
        let mut counts = [0; 3];
        for p in 0..9 {
            counts[split_owner("orders", p, 3)] += 1;
        }
        assert_eq!(counts, [3, 3, 3]);
    }
}
