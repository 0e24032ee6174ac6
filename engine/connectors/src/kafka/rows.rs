//! The rows of the batch a Kafka source is building: each record's value,
//! key and metadata decoded into the columns that [`Layout`] gives them.
//!
//! A record adds a row only when its value does: a tombstone (no value) and,
//! with `*.ignore-parse-errors`, a malformed value add nothing, as in Flink's
//! formats. An `upsert-kafka` source is the exception: each row carries a row
//! kind (`sluice_format::changelog`), `+U` for a record with a value and `-D`
//! for a tombstone, whose row has the key's fields and NULL elsewhere. A
//! changelog value format (`debezium-json`, ...) gives its rows their kinds,
//! and a record may hold several rows, each with the record's key and
//! metadata. The value is decoded first, so a record that adds no row leaves
//! the key and metadata columns untouched. A missing or, with the key format's
//! `ignore-parse-errors`, malformed key gives NULL key fields.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanArray, Int32Builder, Int64Builder, StringBuilder, TimestampMillisecondArray,
    TimestampMillisecondBuilder,
};
use arrow::compute::cast;
use arrow::compute::kernels::zip::zip;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use rdkafka::Timestamp;
use sluice_format::changelog::{self, RowKind};

use super::columns::{Layout, Meta};
use super::{KafkaConfig, ValueFormat, kafka_error};
use crate::format::{Decoder, RecordError};
use crate::{BatchError, ConnectorError};

/// Where a record came from, for metadata columns and error messages.
pub(super) struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Timestamp,
}

/// One part of the record (its value or its key) decoded by its format.
struct Part {
    /// None: the `raw` format.
    decoder: Option<Decoder>,
    raw: Vec<Option<Vec<u8>>>,
    /// The part's columns, named as its format sees them.
    schema: SchemaRef,
    ignore_parse_errors: bool,
}

impl Part {
    fn new(table: &str, format: &ValueFormat, fields: Vec<Field>) -> Result<Part, ConnectorError> {
        let schema = Arc::new(Schema::new(fields));
        let invalid = |e: sluice_format::types::UnsupportedType| ConnectorError::InvalidOption {
            table: table.to_string(),
            message: e.to_string(),
        };
        let (decoder, ignore_parse_errors) = match format {
            ValueFormat::Text(f) => {
                (Some(Decoder::new(f, schema.fields(), "kafka").map_err(invalid)?), f.ignore_parse_errors())
            }
            ValueFormat::Raw => (None, false),
        };
        Ok(Part { decoder, raw: Vec::new(), schema, ignore_parse_errors })
    }

    fn len(&self) -> usize {
        self.decoder.as_ref().map_or(self.raw.len(), Decoder::len)
    }

    /// Decodes one record's bytes; `Ok(false)` when they hold no row (no
    /// bytes, or a blank text).
    fn add(&mut self, bytes: Option<&[u8]>) -> Result<bool, RecordError> {
        let Some(bytes) = bytes else { return Ok(false) };
        let Some(decoder) = &mut self.decoder else {
            self.raw.push(Some(bytes.to_vec()));
            return Ok(true);
        };
        match std::str::from_utf8(bytes) {
            Ok(text) => decoder.decode(text.strip_suffix('\n').unwrap_or(text)),
            Err(e) => Err(RecordError::Malformed(format!("invalid UTF-8: {e}"))),
        }
    }

    fn add_null(&mut self) {
        match &mut self.decoder {
            Some(d) => d.append_null_row(),
            None => self.raw.push(None),
        }
    }

    /// The part's columns, and for a changelog format the rows' kinds.
    fn finish(&mut self) -> Result<(Vec<ArrayRef>, Option<Vec<RowKind>>), BatchError> {
        if let Some(d) = &mut self.decoder {
            let batch = d.finish(&self.schema)?;
            if !changelog::has_kinds(&batch) {
                return Ok((batch.columns().to_vec(), None));
            }
            let (data, kinds) = changelog::split(&batch);
            return Ok((data.columns().to_vec(), Some(kinds.to_vec())));
        }
        let rows = std::mem::take(&mut self.raw);
        let col: ArrayRef = match self.schema.field(0).data_type() {
            DataType::Binary => {
                let mut b = BinaryBuilder::new();
                rows.iter().for_each(|r| b.append_option(r.as_deref()));
                Arc::new(b.finish())
            }
            _ => {
                let mut b = StringBuilder::new();
                rows.iter().for_each(|r| b.append_option(r.as_deref().map(String::from_utf8_lossy)));
                Arc::new(b.finish())
            }
        };
        Ok((vec![col], None))
    }
}

/// The builder of one metadata column, in the key's own type.
enum MetaBuilder {
    Str(StringBuilder),
    I32(Int32Builder),
    I64(Int64Builder),
    Ts(TimestampMillisecondBuilder),
    /// A changelog format's key: the value decoder's column of this index.
    Value(usize),
}

/// The rows of the batch being built.
pub(super) struct Rows {
    table: String,
    schema: SchemaRef,
    layout: Layout,
    local_time_zone: String,
    value: Part,
    /// With `EXCEPT_KEY` only: otherwise the value holds the key fields.
    key: Option<Part>,
    /// `upsert-kafka` without `EXCEPT_KEY`: the key fields of tombstones
    /// (NULL for the other rows, whose value holds them).
    tombstone_key: Option<Part>,
    /// `upsert-kafka`: each row's kind.
    kinds: Option<Vec<RowKind>>,
    metadata: Vec<(usize, Meta, MetaBuilder)>,
    /// Records skipped because they could not be parsed.
    pub skipped: u64,
}

impl Rows {
    pub(super) fn new(
        table: &str,
        schema: &SchemaRef,
        cfg: &KafkaConfig,
        local_time_zone: &str,
    ) -> Result<Rows, ConnectorError> {
        let layout = cfg.layout.clone();
        let fields = |cols: &[usize], rename: &dyn Fn(&str) -> String| -> Vec<Field> {
            cols.iter()
                .map(|i| {
                    let f = schema.field(*i);
                    Field::new(rename(f.name()), f.data_type().clone(), f.is_nullable())
                })
                .collect()
        };
        let mut value = Part::new(table, &cfg.value, fields(&layout.value, &|n| n.to_string()))?;
        let format_keys: Vec<_> =
            layout.metadata.iter().filter_map(|(_, m)| if let Meta::Value(k) = m { Some(*k) } else { None }).collect();
        if let Some(d) = &mut value.decoder {
            d.read_metadata(format_keys);
        }
        let mut format_columns = 0..;
        let key_part = |format| Part::new(table, format, fields(&layout.key, &|n| layout.key_name(n).to_string()));
        let key = match &cfg.key {
            Some(format) if layout.except_key => Some(key_part(format)?),
            _ => None,
        };
        let tombstone_key = match &cfg.key {
            Some(format) if cfg.upsert && !layout.except_key => Some(key_part(format)?),
            _ => None,
        };
        let metadata = layout
            .metadata
            .iter()
            .map(|(i, m)| {
                let b = match m {
                    Meta::Topic | Meta::TimestampType => MetaBuilder::Str(StringBuilder::new()),
                    Meta::Partition => MetaBuilder::I32(Int32Builder::new()),
                    Meta::Offset => MetaBuilder::I64(Int64Builder::new()),
                    Meta::Timestamp => MetaBuilder::Ts(TimestampMillisecondBuilder::new()),
                    Meta::Value(_) => MetaBuilder::Value(format_columns.next().unwrap_or_default()),
                };
                (*i, *m, b)
            })
            .collect();
        Ok(Rows {
            table: table.to_string(),
            schema: schema.clone(),
            layout,
            local_time_zone: local_time_zone.to_string(),
            value,
            key,
            tombstone_key,
            kinds: cfg.upsert.then(Vec::new),
            metadata,
            skipped: 0,
        })
    }

    pub(super) fn len(&self) -> usize {
        self.value.len()
    }

    /// Appends one record.
    pub(super) fn add(
        &mut self,
        at: &Origin<'_>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<(), ConnectorError> {
        let tombstone = self.kinds.is_some() && value.is_none();
        if tombstone {
            self.value.add_null();
            if let Some(part) = &mut self.tombstone_key {
                add_key(part, key).map_err(|m| self.error(at, "key: ", &m))?;
            }
        }
        let before = self.value.len();
        match if tombstone { Ok(true) } else { self.value.add(value) } {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(RecordError::Malformed(_)) if self.value.ignore_parse_errors => {
                self.skipped += 1;
                return Ok(());
            }
            Err(RecordError::Malformed(m) | RecordError::Field(m)) => return Err(self.error(at, "", &m)),
        }
        // A changelog format's record may hold several rows (an update's two):
        // each gets the record's key and metadata.
        let rows = if tombstone { 1 } else { self.value.len() - before };
        for _ in 1..rows {
            self.repeat_key_and_metadata(at, key)?;
        }
        if let Some(part) = &mut self.key {
            add_key(part, key).map_err(|m| self.error(at, "key: ", &m))?;
        }
        if let Some(kinds) = &mut self.kinds {
            kinds.push(if tombstone { RowKind::Delete } else { RowKind::UpdateAfter });
            if !tombstone && let Some(part) = &mut self.tombstone_key {
                part.add_null();
            }
        }
        self.add_metadata(at);
        Ok(())
    }

    /// The key and metadata of one more row of the record (not its last).
    fn repeat_key_and_metadata(&mut self, at: &Origin<'_>, key: Option<&[u8]>) -> Result<(), ConnectorError> {
        if let Some(part) = &mut self.key {
            add_key(part, key).map_err(|m| self.error(at, "key: ", &m))?;
        }
        self.add_metadata(at);
        Ok(())
    }

    fn add_metadata(&mut self, at: &Origin<'_>) {
        for (_, meta, b) in &mut self.metadata {
            match (meta, b) {
                (Meta::Topic, MetaBuilder::Str(b)) => b.append_value(at.topic),
                (Meta::TimestampType, MetaBuilder::Str(b)) => b.append_value(match at.timestamp {
                    Timestamp::NotAvailable => "NoTimestampType",
                    Timestamp::CreateTime(_) => "CreateTime",
                    Timestamp::LogAppendTime(_) => "LogAppendTime",
                }),
                (_, MetaBuilder::I32(b)) => b.append_value(at.partition),
                (_, MetaBuilder::I64(b)) => b.append_value(at.offset),
                (_, MetaBuilder::Ts(b)) => b.append_option(at.timestamp.to_millis()),
                (_, MetaBuilder::Str(b)) => b.append_null(),
                (_, MetaBuilder::Value(_)) => {}
            }
        }
    }

    fn error(&self, at: &Origin<'_>, part: &str, message: &str) -> ConnectorError {
        kafka_error(
            &self.table,
            format!(
                "topic '{}' partition {} offset {}: {part}{message} (set 'json.ignore-parse-errors' or 'csv.ignore-parse-errors' to skip such records)",
                at.topic, at.partition, at.offset
            ),
        )
    }

    /// The batch of every row added since the last one.
    pub(super) fn finish(&mut self) -> Result<RecordBatch, BatchError> {
        let rows = self.len();
        let mut columns: Vec<Option<ArrayRef>> = vec![None; self.schema.fields().len()];
        let (value, changes) = self.value.finish()?;
        for (i, a) in self.layout.value.iter().zip(value) {
            columns[*i] = Some(a);
        }
        if let Some(key) = &mut self.key {
            for (i, a) in self.layout.key.iter().zip(key.finish()?.0) {
                columns[*i] = Some(a);
            }
        }
        let kinds = self.kinds.as_mut().map(std::mem::take).or(changes);
        if let (Some(part), Some(kinds)) = (&mut self.tombstone_key, &kinds) {
            // A tombstone's key fields come from its key, the others' from their value.
            let deleted = BooleanArray::from(kinds.iter().map(|k| *k == RowKind::Delete).collect::<Vec<_>>());
            for (i, a) in self.layout.key.iter().zip(part.finish()?.0) {
                if let Some(v) = columns[*i].take() {
                    columns[*i] = Some(zip(&deleted, &a, &v)?);
                }
            }
        }
        let format_meta = self.value.decoder.as_mut().map(Decoder::finish_metadata).unwrap_or_default();
        for (i, meta, b) in &mut self.metadata {
            let a: ArrayRef = match b {
                MetaBuilder::Value(c) => {
                    let a = format_meta.get(*c).cloned().ok_or_else(|| {
                        ArrowError::InvalidArgumentError(format!("column {} has no metadata", *i + 1))
                    })?;
                    match a.as_any().downcast_ref::<TimestampMillisecondArray>() {
                        Some(t) => Arc::new(t.clone().with_timezone(self.local_time_zone.as_str())),
                        None => a,
                    }
                }
                MetaBuilder::Str(b) => Arc::new(b.finish()),
                MetaBuilder::I32(b) => Arc::new(b.finish()),
                MetaBuilder::I64(b) => Arc::new(b.finish()),
                MetaBuilder::Ts(b) => Arc::new(b.finish().with_data_type(meta.data_type(&self.local_time_zone))),
            };
            let declared = self.schema.field(*i).data_type();
            columns[*i] = Some(if a.data_type() == declared { a } else { cast(&a, declared)? });
        }
        // The layout gives every column an origin; a gap would be a bug, reported as such.
        let columns = columns
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                c.ok_or_else(|| ArrowError::InvalidArgumentError(format!("column {} has no origin", i + 1)).into())
            })
            .collect::<Result<Vec<_>, BatchError>>()?;
        let batch = RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        match kinds {
            Some(kinds) => Ok(changelog::attach(&batch, &kinds)?),
            None => Ok(batch),
        }
    }
}

/// Decodes a record's key into its part; a missing key, or a malformed one
/// with `ignore-parse-errors`, gives NULL key fields.
fn add_key(part: &mut Part, key: Option<&[u8]>) -> Result<(), String> {
    match part.add(key) {
        Ok(true) => Ok(()),
        Ok(false) => {
            part.add_null();
            Ok(())
        }
        Err(RecordError::Malformed(_)) if part.ignore_parse_errors => {
            part.add_null();
            Ok(())
        }
        Err(RecordError::Malformed(m) | RecordError::Field(m)) => Err(m),
    }
}
