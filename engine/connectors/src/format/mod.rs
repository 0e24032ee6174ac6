//! Text formats (Flink's `json` and `csv`), as row encoders for sinks and
//! line decoders for sources. The text of each value, and the print sink's
//! `Row.toString`, come from `sluice-format`.

pub(crate) mod cdc;
pub(crate) mod cdc_encode;
pub(crate) mod cdc_meta;
pub(crate) mod columns;
pub(crate) mod csv;
pub(crate) mod json;

use std::sync::Arc;

use arrow::datatypes::Field;
use arrow::record_batch::RecordBatch;

use crate::ConnectorError;
use crate::options::Options;
use sluice_format::types::{ColType, column_types, column_types_nested};

pub(crate) const FORMATS: &str =
    "'json', 'csv', and the changelog formats 'debezium-json', 'canal-json' and 'maxwell-json'";

/// A parsed `format` option and its format options.
#[derive(Debug, Clone)]
pub(crate) enum Format {
    Json(json::JsonOptions),
    Csv(csv::CsvOptions),
    /// A changelog format: read by [`cdc`], written by [`cdc_encode`].
    Cdc(cdc::CdcOptions),
}

impl Format {
    /// Reads `format` and the `json.*` / `csv.*` options.
    pub(crate) fn parse(o: &Options<'_>) -> Result<Format, ConnectorError> {
        let name = o.required("format", "the file format: 'json' or 'csv'")?;
        match name.trim() {
            "json" => Ok(Format::Json(json::JsonOptions::parse(o)?)),
            "csv" => Ok(Format::Csv(csv::CsvOptions::parse(o)?)),
            cdc if cdc::CDC_FORMATS.contains(&cdc) => Ok(Format::Cdc(cdc::CdcOptions::parse(o, cdc)?)),
            other => {
                Err(o
                    .error(format!("unsupported format '{other}' in option 'format'; supported formats are {FORMATS}")))
            }
        }
    }

    /// The column types of a table in this format, or an error naming a
    /// column it cannot hold (csv has no ARRAY or MAP).
    pub(crate) fn column_types(
        &self,
        fields: &[Arc<Field>],
        connector: &str,
    ) -> Result<Vec<ColType>, sluice_format::types::UnsupportedType> {
        match self {
            Format::Json(_) | Format::Cdc(_) => column_types_nested(fields, connector),
            Format::Csv(_) => column_types(fields, connector),
        }
    }

    pub(crate) fn ignore_parse_errors(&self) -> bool {
        match self {
            Format::Json(j) => j.ignore_parse_errors,
            Format::Csv(c) => c.ignore_parse_errors,
            Format::Cdc(c) => c.json.ignore_parse_errors,
        }
    }

    /// Why a sink cannot write this format, as Flink words it.
    pub(crate) fn check_sink(&self) -> Result<(), String> {
        match self {
            Format::Cdc(cdc::CdcOptions { flavor: cdc::Flavor::Debezium { schema_include: true }, .. }) => Err(
                "Debezium JSON serialization doesn't support 'debezium-json.schema-include' option been set to true"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    /// The changelog format's name, for a format that reads changes.
    pub(crate) fn changelog(&self) -> Option<&'static str> {
        match self {
            Format::Cdc(c) => Some(c.name),
            _ => None,
        }
    }
}

/// Serializes batches to lines of text.
pub(crate) enum Encoder {
    Json(json::JsonEncoder),
    Csv(csv::CsvEncoder),
    /// Writes each row with its row kind; every format writes one line per row.
    Cdc(cdc_encode::CdcEncoder),
}

impl Encoder {
    pub(crate) fn new(format: &Format, fields: &[Arc<Field>], types: Vec<ColType>) -> Encoder {
        match format {
            Format::Json(o) => Encoder::Json(json::JsonEncoder::new(o.clone(), fields, types)),
            Format::Cdc(o) => Encoder::Cdc(cdc_encode::CdcEncoder::new(o, fields, types)),
            Format::Csv(o) => Encoder::Csv(csv::CsvEncoder::new(o.clone(), types)),
        }
    }

    pub(crate) fn encode(&mut self, table: &str, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ConnectorError> {
        match self {
            Encoder::Json(e) => e.encode(table, batch, out),
            Encoder::Csv(e) => e.encode(table, batch, out),
            Encoder::Cdc(e) => e.encode(table, batch, out),
        }
    }
}

/// Why a record could not be read.
#[derive(Debug)]
pub(crate) enum RecordError {
    /// The record is malformed as a whole (bad JSON, wrong field count): with
    /// ignore-parse-errors it is skipped.
    Malformed(String),
    /// A value could not be converted to its column's type: with
    /// ignore-parse-errors it becomes NULL, as in Flink.
    Field(String),
}

/// Parses records of text into columns.
pub(crate) enum Decoder {
    Json(json::JsonDecoder),
    Csv(csv::CsvDecoder),
    Cdc(Box<cdc::CdcDecoder>),
}

impl Decoder {
    pub(crate) fn new(
        format: &Format,
        fields: &[Arc<Field>],
        connector: &str,
    ) -> Result<Decoder, sluice_format::types::UnsupportedType> {
        let types = format.column_types(fields, connector)?;
        Ok(match format {
            Format::Json(o) => Decoder::Json(json::JsonDecoder::new(o.clone(), fields, types)),
            Format::Csv(o) => Decoder::Csv(csv::CsvDecoder::new(o.clone(), fields, types)),
            Format::Cdc(o) => Decoder::Cdc(Box::new(cdc::CdcDecoder::new(
                o.clone(),
                json::JsonDecoder::new(o.json.clone(), fields, types),
            ))),
        })
    }

    /// Reads these metadata keys of a changelog format (see [`cdc_meta`]);
    /// other formats have none.
    pub(crate) fn read_metadata(&mut self, keys: Vec<cdc_meta::CdcMeta>) {
        if let Decoder::Cdc(d) = self {
            d.meta = cdc_meta::MetaColumns::new(keys);
        }
    }

    /// The metadata columns of the rows read since the last call, in the
    /// order of [`Decoder::read_metadata`]'s keys.
    pub(crate) fn finish_metadata(&mut self) -> Vec<arrow::array::ArrayRef> {
        match self {
            Decoder::Cdc(d) => d.meta.finish(),
            _ => Vec::new(),
        }
    }

    /// Converts only the columns marked `true`; the others are NULL (csv only:
    /// the json formats convert every column).
    pub(crate) fn read_only(&mut self, columns: &[bool]) {
        if let Decoder::Csv(d) = self {
            d.read_only(columns);
        }
    }

    /// Whether `text` (one or more lines) is still an incomplete record (a csv
    /// quoted field continues on the next line).
    pub(crate) fn needs_more(&self, text: &[u8]) -> bool {
        match self {
            Decoder::Json(_) | Decoder::Cdc(_) => false,
            Decoder::Csv(d) => d.needs_more(text),
        }
    }

    /// Appends one record; on a malformed record nothing is appended.
    /// Returns `Ok(false)` for a line that holds no record (blank, comment).
    pub(crate) fn decode(&mut self, text: &str) -> Result<bool, RecordError> {
        match self {
            Decoder::Json(d) => d.decode(text),
            Decoder::Csv(d) => d.decode(text),
            Decoder::Cdc(d) => d.decode(text),
        }
    }

    /// Appends a row of NULLs (a Kafka record without a key, for its key fields).
    pub(crate) fn append_null_row(&mut self) {
        match self {
            Decoder::Json(d) => d.builders.append_null_row(),
            Decoder::Csv(d) => d.builders.append_null_row(),
            Decoder::Cdc(d) => d.rows.builders.append_null_row(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Decoder::Json(d) => d.builders.len(),
            Decoder::Csv(d) => d.builders.len(),
            Decoder::Cdc(d) => d.len(),
        }
    }

    pub(crate) fn finish(&mut self, schema: &arrow::datatypes::SchemaRef) -> Result<RecordBatch, crate::BatchError> {
        match self {
            Decoder::Json(d) => d.builders.finish(schema),
            Decoder::Csv(d) => d.builders.finish(schema),
            Decoder::Cdc(d) => d.finish(schema),
        }
    }
}
