//! Where each column of a Kafka table comes from, as in Flink's Kafka
//! connector: the record's value (`value.format`), its key (`key.format` and
//! `key.fields`), or its metadata (`col TYPE METADATA FROM 'partition'`).
//!
//! - With `value.fields-include` = `ALL` (the default) the value holds every
//!   physical column, key fields included; a source takes them from the value
//!   (Flink decodes the key too and then overwrites it with the value's
//!   fields), so it does not decode keys. With `EXCEPT_KEY` the key fields come
//!   from the key alone.
//! - `key.fields-prefix`: the key format's field names are the columns' names
//!   without the prefix; it needs `EXCEPT_KEY`, as in Flink.
//! - Metadata columns are read by a source (every key below) and written by a
//!   sink (`timestamp` only; a `VIRTUAL` column is not among a sink's
//!   columns). A declared type must be castable from the key's type, as in
//!   Flink: `ts TIMESTAMP(3) METADATA FROM 'timestamp'` is fine.

use arrow::compute::can_cast_types;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};

use crate::ConnectorError;
use crate::format::cdc::CDC_FORMATS;
use crate::format::cdc_meta::{self, CdcMeta};
use crate::options::Options;

/// A metadata key of the Kafka connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meta {
    Topic,
    Partition,
    Offset,
    /// The record's timestamp: readable and writable.
    Timestamp,
    /// `NoTimestampType`, `CreateTime` or `LogAppendTime`.
    TimestampType,
    /// A key of the changelog value format (`value.source.timestamp`, ...),
    /// read by its decoder.
    Value(CdcMeta),
}

/// Metadata keys a source reads.
pub(crate) const READABLE: &str = "'topic', 'partition', 'offset', 'timestamp', 'timestamp-type'";
/// Metadata keys a sink writes.
pub(crate) const WRITABLE: &str = "'timestamp'";

impl Meta {
    fn parse(key: &str) -> Option<Meta> {
        Some(match key {
            "topic" => Meta::Topic,
            "partition" => Meta::Partition,
            "offset" => Meta::Offset,
            "timestamp" => Meta::Timestamp,
            "timestamp-type" => Meta::TimestampType,
            _ => return None,
        })
    }

    /// The type of the value, as Flink declares it (`TIMESTAMP_LTZ(3)` in the
    /// local time zone for `timestamp`).
    pub(crate) fn data_type(self, local_time_zone: &str) -> DataType {
        match self {
            Meta::Topic | Meta::TimestampType => DataType::Utf8,
            Meta::Partition => DataType::Int32,
            Meta::Offset => DataType::Int64,
            Meta::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some(local_time_zone.into())),
            Meta::Value(m) => m.data_type(local_time_zone),
        }
    }

    fn flink_type(self) -> &'static str {
        match self {
            Meta::Topic | Meta::TimestampType => "STRING NOT NULL",
            Meta::Partition => "INT NOT NULL",
            Meta::Offset => "BIGINT NOT NULL",
            Meta::Timestamp => "TIMESTAMP_LTZ(3) NOT NULL",
            Meta::Value(m) => m.flink_type(),
        }
    }
}

/// The columns of a Kafka table by origin, as indices into its schema.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layout {
    /// The columns of the value format, in schema order.
    pub value: Vec<usize>,
    /// `key.fields`, in their order; empty without a key format.
    pub key: Vec<usize>,
    /// Whether the value leaves the key fields out (`EXCEPT_KEY`).
    pub except_key: bool,
    /// `key.fields-prefix`.
    pub key_prefix: String,
    /// Metadata columns and their keys.
    pub metadata: Vec<(usize, Meta)>,
}

impl Layout {
    /// Reads `key.fields` (or, for `upsert-kafka`, the primary key),
    /// `key.fields-prefix`, `value.fields-include` and the schema's metadata
    /// columns. `has_key_format`: whether `key.format` is set.
    pub(crate) fn parse(
        o: &Options<'_>,
        schema: &SchemaRef,
        sink: bool,
        has_key_format: bool,
        primary_key: Option<&str>,
    ) -> Result<Layout, ConnectorError> {
        let metadata = metadata_columns(o, schema, sink)?;
        let physical: Vec<usize> =
            (0..schema.fields().len()).filter(|i| metadata.iter().all(|(m, _)| m != i)).collect();
        let key_prefix = o.get("key.fields-prefix").unwrap_or_default().to_string();
        let except_key = match o.get("value.fields-include").map(str::trim) {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("ALL") => false,
            Some(v) if v.eq_ignore_ascii_case("EXCEPT_KEY") => true,
            Some(v) => {
                return Err(o.error(format!(
                    "option 'value.fields-include' = '{v}' is invalid: expected 'ALL' or 'EXCEPT_KEY'"
                )));
            }
        };
        let key_fields = match primary_key {
            Some(pk) => Some(pk),
            None => o.get("key.fields"),
        };
        let key = match (key_fields, has_key_format) {
            (Some(_), false) => return Err(o.error("'key.fields' needs 'key.format'")),
            (None, true) => return Err(o.error("'key.format' needs 'key.fields'")),
            (None, false) => Vec::new(),
            (Some(fields), true) => {
                let mut idx = Vec::new();
                for name in fields.split(';').map(str::trim).filter(|f| !f.is_empty()) {
                    let i = physical.iter().copied().find(|i| schema.field(*i).name() == name).ok_or_else(|| {
                        o.error(format!("'key.fields' names '{name}', which is not a physical column"))
                    })?;
                    if !name.starts_with(&key_prefix) {
                        return Err(o.error(format!(
                            "key field '{name}' does not start with 'key.fields-prefix' '{key_prefix}'"
                        )));
                    }
                    idx.push(i);
                }
                if idx.is_empty() {
                    return Err(o.error("'key.fields' is empty"));
                }
                idx
            }
        };
        if except_key && key.is_empty() {
            return Err(o.error("'value.fields-include' = 'EXCEPT_KEY' needs 'key.fields'"));
        }
        if !key_prefix.is_empty() && !except_key {
            return Err(o.error(
                "'key.fields-prefix' needs 'value.fields-include' = 'EXCEPT_KEY', as in Flink (with 'ALL' the value's fields would carry the prefix)",
            ));
        }
        let value = physical.iter().copied().filter(|i| !except_key || !key.contains(i)).collect();
        Ok(Layout { value, key, except_key, key_prefix, metadata })
    }

    /// The name of a key column as the key format sees it.
    pub(crate) fn key_name<'a>(&self, column: &'a str) -> &'a str {
        column.strip_prefix(self.key_prefix.as_str()).unwrap_or(column)
    }
}

/// The schema's metadata columns, checked against the keys a Kafka source
/// reads or a sink writes and against their types.
fn metadata_columns(o: &Options<'_>, schema: &SchemaRef, sink: bool) -> Result<Vec<(usize, Meta)>, ConnectorError> {
    // A changelog value format's own keys, prefixed with `value.` as in Flink.
    let cdc = o.get("value.format").or_else(|| o.get("format")).map(str::trim).filter(|f| CDC_FORMATS.contains(f));
    let mut out = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        let Some(key) = sluice_api::columns::metadata_key(f.metadata()) else { continue };
        let (what, mut keys) = if sink { ("writing", WRITABLE.to_string()) } else { ("reading", READABLE.to_string()) };
        let mut format_meta = None;
        if let Some(format) = cdc
            && !sink
        {
            keys = format!("{keys}, {}", cdc_meta::readable(format));
            if let Some(k) = key.strip_prefix("value.") {
                format_meta = CdcMeta::parse(format, k)
                    .map_err(|m| o.error(format!("column `{}`: {m}", f.name())))?
                    .map(Meta::Value);
            }
        }
        let meta = format_meta.or_else(|| Meta::parse(key).filter(|m| !sink || *m == Meta::Timestamp)).ok_or_else(|| {
            let hint = match key {
                "key" | "value" => {
                    " (the record's key is read with 'key.format' and 'key.fields', as in Flink)".to_string()
                }
                "headers" | "leader-epoch" => format!(" ('{key}' is not supported yet)"),
                _ => String::new(),
            };
            o.error(format!(
                "column `{}`: invalid metadata key '{key}'; the Kafka connector supports these metadata keys for {what}: {keys}{hint}",
                f.name()
            ))
        })?;
        if !can_cast_types(&meta.data_type("UTC"), f.data_type()) {
            return Err(o.error(format!(
                "column `{}`: metadata key '{key}' is {}, which cannot be cast to the column's type",
                f.name(),
                meta.flink_type()
            )));
        }
        out.push((i, meta));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;

    use arrow::datatypes::{Field, Schema};
    use sluice_api::columns::METADATA_KEY;

    use super::*;

    fn schema(cols: &[(&str, DataType, Option<&str>)]) -> SchemaRef {
        Arc::new(Schema::new(
            cols.iter()
                .map(|(n, t, m)| {
                    let f = Field::new(*n, t.clone(), true);
                    match m {
                        Some(k) => f.with_metadata(HashMap::from([(METADATA_KEY.to_string(), k.to_string())])),
                        None => f,
                    }
                })
                .collect::<Vec<_>>(),
        ))
    }

    fn layout(s: &SchemaRef, opts: &[(&str, &str)], sink: bool) -> Result<Layout, String> {
        let map: BTreeMap<String, String> = opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let o = Options::new("t", &map);
        Layout::parse(&o, s, sink, map.contains_key("key.format"), None).map_err(|e| e.to_string())
    }

    #[test]
    fn columns_come_from_the_value_the_key_or_the_metadata() {
        let s = schema(&[
            ("k_id", DataType::Int64, None),
            ("v", DataType::Utf8, None),
            ("p", DataType::Int64, Some("partition")),
            ("ts", DataType::Timestamp(TimeUnit::Millisecond, None), Some("timestamp")),
        ]);
        let l = layout(&s, &[], false).unwrap();
        assert_eq!((l.value, l.metadata), (vec![0, 1], vec![(2, Meta::Partition), (3, Meta::Timestamp)]));
        let opts = [
            ("key.format", "json"),
            ("key.fields", "k_id"),
            ("key.fields-prefix", "k_"),
            ("value.fields-include", "EXCEPT_KEY"),
        ];
        let l = layout(&s, &opts, false).unwrap();
        assert_eq!((l.value.clone(), l.key.clone()), (vec![1], vec![0]));
        assert_eq!(l.key_name("k_id"), "id");
        let e = layout(&s, &[("key.format", "json"), ("key.fields", "k_id"), ("key.fields-prefix", "k_")], false);
        assert!(e.unwrap_err().contains("needs 'value.fields-include' = 'EXCEPT_KEY'"));
        let e = layout(&s, &[("key.format", "json"), ("key.fields", "p")], false).unwrap_err();
        assert!(e.contains("'p', which is not a physical column"), "{e}");
    }

    #[test]
    fn a_changelog_value_formats_keys_are_value_prefixed_metadata() {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let s = schema(&[
            ("id", DataType::Int64, None),
            ("origin", ts.clone(), Some("value.source.timestamp")),
            ("tb", DataType::Utf8, Some("value.source.table")),
        ]);
        let l = layout(&s, &[("format", "debezium-json")], false).unwrap();
        assert_eq!(l.metadata, [(1, Meta::Value(CdcMeta::SourceTimestamp)), (2, Meta::Value(CdcMeta::SourceTable))]);
        // Only with a changelog value format, and only its own keys.
        let e = layout(&s, &[("format", "json")], false).unwrap_err();
        assert!(e.contains("invalid metadata key 'value.source.timestamp'"), "{e}");
        let canal = schema(&[("tb", DataType::Utf8, Some("value.source.table"))]);
        let e = layout(&canal, &[("value.format", "canal-json")], false).unwrap_err();
        assert!(
            e.contains("invalid metadata key 'value.source.table'")
                && e.contains(
                    "'value.database', 'value.table', 'value.sql-type', 'value.pk-names', 'value.ingestion-timestamp'"
                ),
            "{e}"
        );
        let pk = schema(&[("pk", DataType::Utf8, Some("value.pk-names"))]);
        let e = layout(&pk, &[("value.format", "canal-json")], false).unwrap_err();
        assert!(
            e.contains(
                "column `pk`: metadata key 'value.pk-names' of format 'canal-json' (ARRAY<STRING>) is not supported yet"
            ),
            "{e}"
        );
        let wrong = schema(&[("origin", DataType::Boolean, Some("value.ingestion-timestamp"))]);
        let e = layout(&wrong, &[("format", "maxwell-json")], false).unwrap_err();
        assert!(e.contains("'value.ingestion-timestamp' is TIMESTAMP_LTZ(3), which cannot be cast"), "{e}");
        // A sink writes none of them, as Flink's encoding formats declare none.
        let e = layout(&s, &[("format", "debezium-json")], true).unwrap_err();
        assert!(e.contains("metadata keys for writing: 'timestamp'"), "{e}");
    }

    #[test]
    fn metadata_keys_and_types_are_checked_as_in_flink() {
        let bad = schema(&[("k", DataType::Utf8, Some("key"))]);
        let e = layout(&bad, &[], false).unwrap_err();
        assert!(e.contains("invalid metadata key 'key'") && e.contains("'key.format' and 'key.fields'"), "{e}");
        let offset = schema(&[("o", DataType::Int64, Some("offset"))]);
        let e = layout(&offset, &[], true).unwrap_err();
        assert!(e.contains("metadata keys for writing: 'timestamp'"), "{e}");
        let wrong_type = schema(&[("o", DataType::Boolean, Some("timestamp"))]);
        let e = layout(&wrong_type, &[], false).unwrap_err();
        assert!(e.contains("TIMESTAMP_LTZ(3) NOT NULL, which cannot be cast"), "{e}");
    }
}
