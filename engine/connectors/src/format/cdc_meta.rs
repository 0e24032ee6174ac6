//! The changelog formats' metadata, as Flink 2.3's decoding formats read it
//! (`DebeziumJsonDecodingFormat.ReadableMetadata` and its canal and maxwell
//! siblings). A Kafka table declares them as `value.<key>` metadata columns:
//! `origin_ts TIMESTAMP_LTZ(3) METADATA FROM 'value.source.timestamp' VIRTUAL`.
//! Each row of a record gets the record's values. Flink's filesystem source
//! offers none of them (only its `file.*` keys), and neither does Sluice's.
//!
//! - debezium-json: `schema` (the `schema` object's JSON text), `ingestion-timestamp`
//!   (the payload's `ts_ms`), `source.timestamp`, `source.database`,
//!   `source.schema`, `source.table` (the payload's `source` object's `ts_ms`,
//!   `db`, `schema`, `table`);
//! - canal-json: `database`, `table`, `ingestion-timestamp` (`ts`, in ms);
//! - maxwell-json: `database`, `table`, `ingestion-timestamp` (`ts`, in seconds).
//!
//! Not yet: the keys whose types are a MAP or an ARRAY (debezium-json's
//! `source.properties`, canal-json's `sql-type` and `pk-names`, maxwell-json's
//! `primary-key-columns`); they are refused with an error naming them.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder, TimestampMillisecondBuilder};
use arrow::datatypes::{DataType, TimeUnit};

use super::json::parse::JVal;

/// A metadata key of a changelog format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CdcMeta {
    Schema,
    IngestionTimestamp,
    SourceTimestamp,
    SourceDatabase,
    SourceSchema,
    SourceTable,
    /// canal-json's and maxwell-json's `database`.
    Database,
    Table,
}

/// A key, its Flink type, and what Sluice reads for it (`None`: not yet).
type Key = (&'static str, &'static str, Option<CdcMeta>);

/// Each format's keys.
const KEYS: [(&str, &[Key]); 3] = [
    (
        "debezium-json",
        &[
            ("schema", "STRING", Some(CdcMeta::Schema)),
            ("ingestion-timestamp", "TIMESTAMP_LTZ(3)", Some(CdcMeta::IngestionTimestamp)),
            ("source.timestamp", "TIMESTAMP_LTZ(3)", Some(CdcMeta::SourceTimestamp)),
            ("source.database", "STRING", Some(CdcMeta::SourceDatabase)),
            ("source.schema", "STRING", Some(CdcMeta::SourceSchema)),
            ("source.table", "STRING", Some(CdcMeta::SourceTable)),
            ("source.properties", "MAP<STRING, STRING>", None),
        ],
    ),
    (
        "canal-json",
        &[
            ("database", "STRING", Some(CdcMeta::Database)),
            ("table", "STRING", Some(CdcMeta::Table)),
            ("sql-type", "MAP<STRING, INT>", None),
            ("pk-names", "ARRAY<STRING>", None),
            ("ingestion-timestamp", "TIMESTAMP_LTZ(3)", Some(CdcMeta::IngestionTimestamp)),
        ],
    ),
    (
        "maxwell-json",
        &[
            ("database", "STRING", Some(CdcMeta::Database)),
            ("table", "STRING", Some(CdcMeta::Table)),
            ("primary-key-columns", "ARRAY<STRING>", None),
            ("ingestion-timestamp", "TIMESTAMP_LTZ(3)", Some(CdcMeta::IngestionTimestamp)),
        ],
    ),
];

fn keys_of(format: &str) -> &'static [Key] {
    KEYS.iter().find(|(f, _)| *f == format).map_or(&[], |(_, k)| k)
}

/// The metadata keys of `format` as a Kafka table names them (`'value.schema'`, ...).
pub(crate) fn readable(format: &str) -> String {
    keys_of(format).iter().map(|(k, _, _)| format!("'value.{k}'")).collect::<Vec<_>>().join(", ")
}

impl CdcMeta {
    /// The key `key` (without `value.`) of `format`: `Err` with a message for
    /// a key that Flink has and Sluice does not read yet, `Ok(None)` for one
    /// that the format does not have.
    pub(crate) fn parse(format: &str, key: &str) -> Result<Option<CdcMeta>, String> {
        match keys_of(format).iter().find(|(k, _, _)| *k == key) {
            None => Ok(None),
            Some((_, _, Some(m))) => Ok(Some(*m)),
            Some((_, t, None)) => Err(format!(
                "metadata key 'value.{key}' of format '{format}' ({t}) is not supported yet; its STRING and TIMESTAMP_LTZ(3) keys are"
            )),
        }
    }

    /// The type of the value (`TIMESTAMP_LTZ(3)` in the local time zone).
    pub(crate) fn data_type(self, local_time_zone: &str) -> DataType {
        match self {
            CdcMeta::IngestionTimestamp | CdcMeta::SourceTimestamp => {
                DataType::Timestamp(TimeUnit::Millisecond, Some(local_time_zone.into()))
            }
            _ => DataType::Utf8,
        }
    }

    pub(crate) fn flink_type(self) -> &'static str {
        match self {
            CdcMeta::IngestionTimestamp | CdcMeta::SourceTimestamp => "TIMESTAMP_LTZ(3)",
            _ => "STRING",
        }
    }
}

type Fields<'a> = [(Cow<'a, str>, JVal<'a>)];

fn get<'a, 'b>(obj: &'b Fields<'a>, name: &str) -> Option<&'b JVal<'a>> {
    obj.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A JSON value as Flink's STRING converter reads it: a string's text, any
/// other node's JSON text; null for null.
fn text(v: Option<&JVal<'_>>) -> Option<String> {
    match v {
        None | Some(JVal::Null) => None,
        Some(JVal::Str(s)) => Some(s.to_string()),
        Some(JVal::Num(n)) => Some(n.to_string()),
        Some(other) => {
            let mut buf = Vec::new();
            other.write_compact(&mut buf);
            Some(String::from_utf8_lossy(&buf).into_owned())
        }
    }
}

/// A JSON value as a BIGINT, as Flink reads it (a number or a numeric string).
fn long(v: Option<&JVal<'_>>) -> Option<i64> {
    match v {
        Some(JVal::Num(n)) => n.parse::<i64>().ok().or_else(|| n.parse::<f64>().ok().map(|d| d.trunc() as i64)),
        Some(JVal::Str(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The value of one key for one record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MetaVal {
    Str(Option<String>),
    Millis(Option<i64>),
}

/// The value of `meta` in a record: `record` is the whole record, `payload`
/// Debezium's payload (the record itself without the schema wrapper).
pub(crate) fn value(meta: CdcMeta, format: &str, record: &Fields<'_>, payload: &Fields<'_>) -> MetaVal {
    let source = match get(payload, "source") {
        Some(JVal::Obj(s)) => Some(s.as_slice()),
        _ => None,
    };
    let from_source = |k: &str| source.and_then(|s| text(get(s, k)));
    match meta {
        CdcMeta::Schema => MetaVal::Str(text(get(record, "schema"))),
        CdcMeta::IngestionTimestamp if format == "debezium-json" => MetaVal::Millis(long(get(payload, "ts_ms"))),
        CdcMeta::IngestionTimestamp if format == "maxwell-json" => {
            MetaVal::Millis(long(get(record, "ts")).map(|s| s.saturating_mul(1000)))
        }
        CdcMeta::IngestionTimestamp => MetaVal::Millis(long(get(record, "ts"))),
        // Flink reads `source` as a MAP<STRING, STRING> and parses `ts_ms`.
        CdcMeta::SourceTimestamp => MetaVal::Millis(from_source("ts_ms").and_then(|t| t.trim().parse().ok())),
        CdcMeta::SourceDatabase => MetaVal::Str(from_source("db")),
        CdcMeta::SourceSchema => MetaVal::Str(from_source("schema")),
        CdcMeta::SourceTable => MetaVal::Str(from_source("table")),
        CdcMeta::Database => MetaVal::Str(text(get(record, "database"))),
        CdcMeta::Table => MetaVal::Str(text(get(record, "table"))),
    }
}

/// The values of the requested keys, one per row.
pub(crate) struct MetaColumns {
    keys: Vec<CdcMeta>,
    builders: Vec<Builder>,
}

enum Builder {
    Str(StringBuilder),
    Millis(TimestampMillisecondBuilder),
}

impl MetaColumns {
    pub(crate) fn new(keys: Vec<CdcMeta>) -> Self {
        let builders = keys
            .iter()
            .map(|k| match k.data_type("UTC") {
                DataType::Utf8 => Builder::Str(StringBuilder::new()),
                _ => Builder::Millis(TimestampMillisecondBuilder::new()),
            })
            .collect();
        MetaColumns { keys, builders }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Appends a record's values `rows` times.
    pub(crate) fn append(&mut self, format: &str, record: &Fields<'_>, payload: &Fields<'_>, rows: usize) {
        for (k, b) in self.keys.iter().zip(&mut self.builders) {
            let v = value(*k, format, record, payload);
            for _ in 0..rows {
                match (&v, &mut *b) {
                    (MetaVal::Str(s), Builder::Str(b)) => b.append_option(s.as_deref()),
                    (MetaVal::Millis(t), Builder::Millis(b)) => b.append_option(*t),
                    (_, Builder::Str(b)) => b.append_null(),
                    (_, Builder::Millis(b)) => b.append_null(),
                }
            }
        }
    }

    /// The columns of the rows appended since the last call (timestamps in UTC).
    pub(crate) fn finish(&mut self) -> Vec<ArrayRef> {
        self.builders
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    Builder::Str(b) => Arc::new(b.finish()),
                    Builder::Millis(b) => Arc::new(b.finish()),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::json::parse::Parser;
    use super::*;

    fn values(format: &str, line: &str, keys: &[CdcMeta]) -> Vec<MetaVal> {
        let doc = Parser::new(line).document().unwrap();
        let JVal::Obj(record) = &doc else { panic!("{line}") };
        let payload = match get(record, "payload") {
            Some(JVal::Obj(p)) => p.as_slice(),
            _ => record.as_slice(),
        };
        keys.iter().map(|k| value(*k, format, record, payload)).collect()
    }

    #[test]
    fn debezium_metadata_comes_from_the_payload_and_its_source() {
        let line = r#"{"schema":{"type":"struct","fields":[]},"payload":{"before":null,"after":{"id":1},"op":"c","ts_ms":1589362330904,
            "source":{"ts_ms":1589362330000,"db":"inventory","schema":"public","table":"products","lsn":33}}}"#;
        let keys = [
            CdcMeta::Schema,
            CdcMeta::IngestionTimestamp,
            CdcMeta::SourceTimestamp,
            CdcMeta::SourceDatabase,
            CdcMeta::SourceSchema,
            CdcMeta::SourceTable,
        ];
        assert_eq!(
            values("debezium-json", line, &keys),
            [
                MetaVal::Str(Some(r#"{"type":"struct","fields":[]}"#.into())),
                MetaVal::Millis(Some(1_589_362_330_904)),
                MetaVal::Millis(Some(1_589_362_330_000)),
                MetaVal::Str(Some("inventory".into())),
                MetaVal::Str(Some("public".into())),
                MetaVal::Str(Some("products".into())),
            ]
        );
        // Without the wrapper or a source, the values are NULL.
        let bare = values("debezium-json", r#"{"before":null,"after":{"id":1},"op":"c"}"#, &keys);
        assert!(bare.iter().all(|v| matches!(v, MetaVal::Str(None) | MetaVal::Millis(None))), "{bare:?}");
    }

    #[test]
    fn canal_takes_milliseconds_and_maxwell_seconds() {
        let canal =
            r#"{"data":[{"id":1}],"database":"inventory","table":"products","ts":1589362330904,"type":"INSERT"}"#;
        let keys = [CdcMeta::Database, CdcMeta::Table, CdcMeta::IngestionTimestamp];
        assert_eq!(
            values("canal-json", canal, &keys),
            [
                MetaVal::Str(Some("inventory".into())),
                MetaVal::Str(Some("products".into())),
                MetaVal::Millis(Some(1_589_362_330_904))
            ]
        );
        let maxwell = r#"{"database":"test","table":"product","type":"insert","ts":1596684883,"data":{"id":1}}"#;
        assert_eq!(values("maxwell-json", maxwell, &keys)[2], MetaVal::Millis(Some(1_596_684_883_000)));
    }

    #[test]
    fn keys_are_those_flink_declares() {
        assert_eq!(CdcMeta::parse("debezium-json", "source.table"), Ok(Some(CdcMeta::SourceTable)));
        assert_eq!(CdcMeta::parse("canal-json", "source.table"), Ok(None));
        let e = CdcMeta::parse("canal-json", "pk-names").unwrap_err();
        assert!(e.contains("'value.pk-names' of format 'canal-json' (ARRAY<STRING>) is not supported yet"), "{e}");
        assert_eq!(
            readable("maxwell-json"),
            "'value.database', 'value.table', 'value.primary-key-columns', 'value.ingestion-timestamp'"
        );
    }
}
