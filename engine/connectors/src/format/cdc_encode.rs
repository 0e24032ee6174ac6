//! Changelog formats for sinks: each row of an updating (or append-only)
//! stream becomes one record, as Flink 2.3's `DebeziumJsonSerializationSchema`,
//! `CanalJsonSerializationSchema` and `MaxwellJsonSerializationSchema` write
//! them (the row itself is the `json` format's object, see [`JsonEncoder`]):
//!
//! | format | `+I`, `+U` | `-U`, `-D` |
//! | --- | --- | --- |
//! | debezium-json | `{"before":null,"after":{...},"op":"c"}` | `{"before":{...},"after":null,"op":"d"}` |
//! | canal-json | `{"data":[{...}],"type":"INSERT"}` | `{"data":[{...}],"type":"DELETE"}` |
//! | maxwell-json | `{"data":{...},"type":"insert"}` | `{"data":{...},"type":"delete"}` |
//!
//! So an update is two records, a delete of the old row and an insert of the
//! new one: Flink writes no `u`/`UPDATE` record. With
//! `<format>.encode.ignore-null-fields`, Flink's Jackson writer leaves out
//! every null field, the envelope's `before`/`after` included.

use std::sync::Arc;

use arrow::datatypes::Field;
use arrow::record_batch::RecordBatch;
use sluice_format::changelog;
use sluice_format::types::ColType;

use super::cdc::{CdcOptions, Flavor};
use super::json::JsonEncoder;
use crate::ConnectorError;

/// Writes rows and their kinds as records of a changelog format.
pub(crate) struct CdcEncoder {
    rows: JsonEncoder,
    flavor: Flavor,
    ignore_null_fields: bool,
}

impl CdcEncoder {
    pub(crate) fn new(opts: &CdcOptions, fields: &[Arc<Field>], types: Vec<ColType>) -> Self {
        CdcEncoder {
            rows: JsonEncoder::new(opts.json.clone(), fields, types),
            flavor: opts.flavor.clone(),
            ignore_null_fields: opts.json.ignore_null_fields,
        }
    }

    /// Appends one line per row; the batch's row kinds (all inserts without
    /// a kind column) choose each record's operation.
    pub(crate) fn encode(&mut self, table: &str, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ConnectorError> {
        let (data, kinds) = changelog::split(batch);
        let cols = self.rows.columns(table, &data)?;
        for (row, kind) in kinds.iter().enumerate() {
            let adds = kind.is_accumulate();
            match self.flavor {
                Flavor::Debezium { .. } => {
                    out.push(b'{');
                    if adds {
                        if !self.ignore_null_fields {
                            out.extend_from_slice(b"\"before\":null,");
                        }
                        out.extend_from_slice(b"\"after\":");
                        self.rows.push_object(out, &cols, row);
                        out.extend_from_slice(b",\"op\":\"c\"}");
                    } else {
                        out.extend_from_slice(b"\"before\":");
                        self.rows.push_object(out, &cols, row);
                        if !self.ignore_null_fields {
                            out.extend_from_slice(b",\"after\":null");
                        }
                        out.extend_from_slice(b",\"op\":\"d\"}");
                    }
                }
                Flavor::Canal { .. } => {
                    out.extend_from_slice(b"{\"data\":[");
                    self.rows.push_object(out, &cols, row);
                    out.extend_from_slice(if adds { b"],\"type\":\"INSERT\"}" } else { b"],\"type\":\"DELETE\"}" });
                }
                Flavor::Maxwell => {
                    out.extend_from_slice(b"{\"data\":");
                    self.rows.push_object(out, &cols, row);
                    out.extend_from_slice(if adds { b",\"type\":\"insert\"}" } else { b",\"type\":\"delete\"}" });
                }
            }
            out.push(b'\n');
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Decimal128Array, Int64Array, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Schema, TimeUnit};
    use sluice_format::types::column_types_nested;

    use sluice_format::changelog::RowKind;

    use super::super::json::JsonOptions;
    use super::*;

    fn batch(kinds: &[RowKind]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("d", DataType::Decimal128(10, 4), true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let n = kinds.len();
        let data = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from((1..=n as i64).collect::<Vec<_>>())),
                Arc::new(StringArray::from((0..n).map(|i| (i % 2 == 0).then_some("a\"b")).collect::<Vec<_>>())),
                Arc::new(Decimal128Array::from(vec![Some(1_234_500); n]).with_precision_and_scale(10, 4).unwrap()),
                Arc::new(TimestampMillisecondArray::from(vec![Some(1_704_164_645_100); n])),
            ],
        )
        .unwrap();
        changelog::attach(&data, kinds).unwrap()
    }

    fn encode(flavor: Flavor, json: JsonOptions, kinds: &[RowKind]) -> String {
        let b = batch(kinds);
        let schema = b.schema();
        let fields = &schema.fields()[..4];
        let types = column_types_nested(fields, "filesystem").unwrap();
        let opts = CdcOptions { flavor, json, name: "x" };
        let mut out = Vec::new();
        CdcEncoder::new(&opts, fields, types).encode("t", &b, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const KINDS: [RowKind; 4] = [RowKind::Insert, RowKind::UpdateBefore, RowKind::UpdateAfter, RowKind::Delete];

    #[test]
    fn debezium_writes_an_update_as_a_delete_and_an_insert() {
        let out = encode(Flavor::Debezium { schema_include: false }, JsonOptions::default(), &KINDS);
        let row = |i: usize| {
            let s = if i % 2 == 1 { "\"a\\\"b\"" } else { "null" };
            format!("{{\"id\":{i},\"s\":{s},\"d\":123.45,\"ts\":\"2024-01-02 03:04:05.1\"}}")
        };
        assert_eq!(
            out,
            format!(
                "{{\"before\":null,\"after\":{},\"op\":\"c\"}}\n{{\"before\":{},\"after\":null,\"op\":\"d\"}}\n\
                 {{\"before\":null,\"after\":{},\"op\":\"c\"}}\n{{\"before\":{},\"after\":null,\"op\":\"d\"}}\n",
                row(1),
                row(2),
                row(3),
                row(4)
            )
        );
    }

    #[test]
    fn canal_and_maxwell_write_inserts_and_deletes() {
        let opts = JsonOptions { iso8601: true, decimal_as_plain_number: true, ..Default::default() };
        let canal = encode(Flavor::Canal { database: None, table: None }, opts.clone(), &KINDS[1..3]);
        assert_eq!(
            canal,
            "{\"data\":[{\"id\":1,\"s\":\"a\\\"b\",\"d\":123.4500,\"ts\":\"2024-01-02T03:04:05.1\"}],\"type\":\"DELETE\"}\n\
             {\"data\":[{\"id\":2,\"s\":null,\"d\":123.4500,\"ts\":\"2024-01-02T03:04:05.1\"}],\"type\":\"INSERT\"}\n"
        );
        let maxwell = encode(Flavor::Maxwell, JsonOptions::default(), &KINDS[..1]);
        assert_eq!(
            maxwell,
            "{\"data\":{\"id\":1,\"s\":\"a\\\"b\",\"d\":123.45,\"ts\":\"2024-01-02 03:04:05.1\"},\"type\":\"insert\"}\n"
        );
    }

    #[test]
    fn ignore_null_fields_leaves_out_the_envelopes_nulls_too() {
        let opts = JsonOptions { ignore_null_fields: true, ..Default::default() };
        let out = encode(Flavor::Debezium { schema_include: false }, opts, &[RowKind::Delete, RowKind::Insert]);
        assert_eq!(
            out,
            "{\"before\":{\"id\":1,\"s\":\"a\\\"b\",\"d\":123.45,\"ts\":\"2024-01-02 03:04:05.1\"},\"op\":\"d\"}\n\
             {\"after\":{\"id\":2,\"d\":123.45,\"ts\":\"2024-01-02 03:04:05.1\"},\"op\":\"c\"}\n"
        );
    }
}
