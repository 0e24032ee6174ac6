//! Changelog formats: Flink's `debezium-json`, `canal-json` and
//! `maxwell-json`, read here and written by [`super::cdc_encode`]. Each record is one change of a database row, read into rows
//! with a row kind (Flink's `RowKind`), so a table in such a format is an
//! updating table:
//!
//! | format | insert | update | delete |
//! | --- | --- | --- | --- |
//! | debezium-json | `op` `c` or `r`: `+I` of `after` | `u`: `-U` of `before`, `+U` of `after` | `d`: `-D` of `before` |
//! | canal-json | `type` `INSERT`: `+I` of each `data` row | `UPDATE`: per row `-U` of `data` with `old`'s fields, `+U` of `data` | `DELETE`: `-D` of each `data` row |
//! | maxwell-json | `type` `insert`: `+I` of `data` | `update`: `-U` of `data` with `old`'s fields, `+U` of `data` | `delete`: `-D` of `data` |
//!
//! As in Flink: a Debezium update or delete without `before` (a Postgres table
//! without `REPLICA IDENTITY FULL`) is an error; `old` gives the changed fields
//! only (a null in it is an old NULL); canal-json skips `CREATE` records (DDL)
//! and those of databases and tables that its include options leave out, and
//! any other `type` is an error; `<format>.ignore-parse-errors` skips a record
//! that cannot be read. A record is read whole before any of its rows
//! is appended, so a bad one leaves nothing behind.

use std::borrow::Cow;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_format::changelog::{self, RowKind};

use super::RecordError;
use super::cdc_meta::MetaColumns;
use super::json::parse::{JVal, Parser};
use super::json::{JsonDecoder, JsonOptions};
use crate::ConnectorError;
use crate::options::Options;

/// The changelog formats, as the `format` option names them.
pub(crate) const CDC_FORMATS: [&str; 3] = ["debezium-json", "canal-json", "maxwell-json"];

/// The options of the changelog formats, for the connectors' option lists.
pub(crate) const CDC_OPTIONS: &str = "'debezium-json.schema-include', 'canal-json.database.include', \
'canal-json.table.include', and for each of 'debezium-json', 'canal-json' and 'maxwell-json' the options \
'<format>.ignore-parse-errors', '<format>.timestamp-format.standard', '<format>.encode.decimal-as-plain-number', \
'<format>.encode.ignore-null-fields', '<format>.map-null-key.mode' and '<format>.map-null-key.literal'";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `debezium-json.schema-include`: each record is `{"schema": ..., "payload": {...}}`.
    Debezium {
        schema_include: bool,
    },
    /// Only records of these databases and tables (regular expressions, whole names).
    Canal {
        database: Option<String>,
        table: Option<String>,
    },
    Maxwell,
}

#[derive(Debug, Clone)]
pub(crate) struct CdcOptions {
    pub(crate) flavor: Flavor,
    pub(crate) json: JsonOptions,
    pub(crate) name: &'static str,
}

impl CdcOptions {
    /// Reads the options of format `name` (one of [`CDC_FORMATS`]).
    pub(crate) fn parse(o: &Options<'_>, name: &str) -> Result<Self, ConnectorError> {
        let name = CDC_FORMATS.into_iter().find(|f| *f == name).unwrap_or("debezium-json");
        let key = |k: &str| format!("{name}.{k}");
        let iso8601 = match o.get(&key("timestamp-format.standard")).map(str::trim) {
            None | Some("SQL") => false,
            Some("ISO-8601") => true,
            Some(other) => {
                return Err(o.error(format!(
                    "option '{}' = '{other}' is invalid: expected 'SQL' or 'ISO-8601'",
                    key("timestamp-format.standard")
                )));
            }
        };
        // Arrow map keys are never null, so the map-null-key options have
        // nothing to act on; their values are checked as Flink checks them.
        match o.get(&key("map-null-key.mode")).map(str::trim) {
            None | Some("FAIL" | "DROP" | "LITERAL") => {}
            Some(other) => {
                return Err(o.error(format!(
                    "option '{}' = '{other}' is invalid: expected 'FAIL', 'DROP' or 'LITERAL'",
                    key("map-null-key.mode")
                )));
            }
        }
        let _ = o.get(&key("map-null-key.literal"));
        let json = JsonOptions {
            ignore_parse_errors: o.bool(&key("ignore-parse-errors"), false)?,
            iso8601,
            decimal_as_plain_number: o.bool(&key("encode.decimal-as-plain-number"), false)?,
            ignore_null_fields: o.bool(&key("encode.ignore-null-fields"), false)?,
            ..Default::default()
        };
        let flavor = match name {
            "debezium-json" => Flavor::Debezium { schema_include: o.bool(&key("schema-include"), false)? },
            "canal-json" => {
                let pattern = |k: &str| -> Result<Option<String>, ConnectorError> {
                    match o.get(&key(k)) {
                        None => Ok(None),
                        Some(p) => {
                            let anchored = format!("^(?:{p})$");
                            regex_lite_check(&anchored).map_err(|e| o.error(format!("option '{}': {e}", key(k))))?;
                            Ok(Some(anchored))
                        }
                    }
                };
                Flavor::Canal { database: pattern("database.include")?, table: pattern("table.include")? }
            }
            _ => Flavor::Maxwell,
        };
        Ok(CdcOptions { flavor, json, name })
    }
}

/// Checks a regular expression's syntax.
fn regex_lite_check(pattern: &str) -> Result<(), String> {
    regex::Regex::new(pattern).map(|_| ()).map_err(|e| e.to_string())
}

/// Reads records of a changelog format into rows and their kinds.
pub(crate) struct CdcDecoder {
    pub(crate) rows: JsonDecoder,
    opts: CdcOptions,
    kinds: Vec<RowKind>,
    database: Option<regex::Regex>,
    table: Option<regex::Regex>,
    /// The format's metadata columns that the table reads.
    pub(crate) meta: MetaColumns,
}

type Object<'a> = Vec<(Cow<'a, str>, JVal<'a>)>;

fn field<'a, 'b>(obj: &'b [(Cow<'a, str>, JVal<'a>)], name: &str) -> Option<&'b JVal<'a>> {
    obj.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn object<'a>(v: Option<&JVal<'a>>) -> Option<Object<'a>> {
    match v {
        Some(JVal::Obj(o)) => Some(o.clone()),
        _ => None,
    }
}

fn text<'a>(v: Option<&'a JVal<'_>>) -> Option<&'a str> {
    match v {
        Some(JVal::Str(s)) => Some(s.as_ref()),
        _ => None,
    }
}

/// The row before an update: `data` (the row after it) with the fields that
/// `old` holds. A field that `old` leaves out did not change; one it gives as
/// null was NULL (what Flink 2.3 reads, whatever its code comment says).
fn before_update<'a>(data: &Object<'a>, old: Option<&JVal<'a>>) -> Object<'a> {
    let mut row = data.clone();
    if let Some(JVal::Obj(old)) = old {
        for (k, v) in old {
            match row.iter_mut().find(|(name, _)| name == k) {
                Some(slot) => slot.1 = v.clone(),
                None => row.push((k.clone(), v.clone())),
            }
        }
    }
    row
}

impl CdcDecoder {
    pub(crate) fn new(opts: CdcOptions, rows: JsonDecoder) -> Self {
        let compile = |p: &Option<String>| p.as_deref().and_then(|p| regex::Regex::new(p).ok());
        let (database, table) = match &opts.flavor {
            Flavor::Canal { database, table } => (compile(database), compile(table)),
            _ => (None, None),
        };
        CdcDecoder { rows, opts, kinds: Vec::new(), database, table, meta: MetaColumns::new(Vec::new()) }
    }

    /// Appends the rows of one record; `Ok(false)` for a record with none.
    pub(crate) fn decode(&mut self, line: &str) -> Result<bool, RecordError> {
        if line.trim().is_empty() {
            return Ok(false);
        }
        let doc = Parser::new(line).document().map_err(RecordError::Malformed)?;
        let changes = self.changes(&doc)?;
        let rows = changes.len();
        for (kind, row) in changes {
            self.rows.append_object(&row)?;
            self.kinds.push(kind);
        }
        if rows > 0
            && !self.meta.is_empty()
            && let JVal::Obj(record) = &doc
        {
            let payload = match (&self.opts.flavor, field(record, "payload")) {
                (Flavor::Debezium { schema_include: true }, Some(JVal::Obj(p))) => p.as_slice(),
                _ => record.as_slice(),
            };
            self.meta.append(self.opts.name, record, payload, rows);
        }
        Ok(rows > 0)
    }

    /// The rows of a record, in order, with their kinds.
    fn changes<'a>(&self, doc: &JVal<'a>) -> Result<Vec<(RowKind, Object<'a>)>, RecordError> {
        let name = self.opts.name;
        let malformed = |m: String| RecordError::Malformed(format!("{name}: {m}"));
        let JVal::Obj(record) = doc else {
            return Err(malformed("a record must be a JSON object".into()));
        };
        match &self.opts.flavor {
            Flavor::Debezium { schema_include } => {
                let payload = if *schema_include {
                    match field(record, "payload") {
                        Some(JVal::Obj(p)) => p,
                        _ => {
                            return Err(malformed(
                                "no \"payload\" object; records without the schema wrapper need 'debezium-json.schema-include' = 'false'".into(),
                            ));
                        }
                    }
                } else {
                    record
                };
                let op =
                    text(field(payload, "op")).ok_or_else(|| malformed("no \"op\" field (c, r, u or d)".into()))?;
                let before = object(field(payload, "before"));
                let after = object(field(payload, "after"));
                let need = |v: Option<Object<'a>>, what: &str| {
                    v.ok_or_else(|| {
                        malformed(format!(
                            "the \"{what}\" field of an \"op\": \"{op}\" record is null (for a Postgres table, set its REPLICA IDENTITY to FULL)"
                        ))
                    })
                };
                Ok(match op {
                    "c" | "r" => vec![(RowKind::Insert, need(after, "after")?)],
                    "u" => {
                        let (b, a) = (need(before, "before")?, need(after, "after")?);
                        vec![(RowKind::UpdateBefore, b), (RowKind::UpdateAfter, a)]
                    }
                    "d" => vec![(RowKind::Delete, need(before, "before")?)],
                    other => return Err(malformed(format!("unknown \"op\" value \"{other}\" (c, r, u or d)"))),
                })
            }
            Flavor::Canal { .. } => {
                let keep = |re: &Option<regex::Regex>, key: &str| match re {
                    None => true,
                    Some(re) => text(field(record, key)).is_some_and(|v| re.is_match(v)),
                };
                if !keep(&self.database, "database") || !keep(&self.table, "table") {
                    return Ok(Vec::new());
                }
                let kind = text(field(record, "type")).unwrap_or_default();
                let data: Vec<Object<'a>> = match field(record, "data") {
                    Some(JVal::Arr(items)) => items.iter().filter_map(|v| object(Some(v))).collect(),
                    Some(JVal::Null) | None => Vec::new(),
                    Some(_) => return Err(malformed("\"data\" must be an array of objects".into())),
                };
                let old: Vec<JVal<'a>> = match field(record, "old") {
                    Some(JVal::Arr(items)) => items.clone(),
                    _ => Vec::new(),
                };
                Ok(match kind {
                    "INSERT" => data.into_iter().map(|d| (RowKind::Insert, d)).collect(),
                    "DELETE" => data.into_iter().map(|d| (RowKind::Delete, d)).collect(),
                    "UPDATE" => {
                        let mut out = Vec::with_capacity(2 * data.len());
                        for (i, d) in data.into_iter().enumerate() {
                            out.push((RowKind::UpdateBefore, before_update(&d, old.get(i))));
                            out.push((RowKind::UpdateAfter, d));
                        }
                        out
                    }
                    // A DDL record (`CREATE`, with no data).
                    "CREATE" => Vec::new(),
                    other => {
                        return Err(malformed(format!(
                            "unknown \"type\" value \"{other}\" (INSERT, UPDATE, DELETE or CREATE)"
                        )));
                    }
                })
            }
            Flavor::Maxwell => {
                let kind = text(field(record, "type")).unwrap_or_default();
                let data = object(field(record, "data")).ok_or_else(|| malformed("no \"data\" object".into()))?;
                Ok(match kind {
                    "insert" => vec![(RowKind::Insert, data)],
                    "delete" => vec![(RowKind::Delete, data)],
                    "update" => {
                        let before = before_update(&data, field(record, "old"));
                        vec![(RowKind::UpdateBefore, before), (RowKind::UpdateAfter, data)]
                    }
                    other => {
                        return Err(malformed(format!(
                            "unknown \"type\" value \"{other}\" (insert, update or delete)"
                        )));
                    }
                })
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.builders.len()
    }

    /// The rows read so far, with their kinds.
    pub(crate) fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, crate::BatchError> {
        let batch = self.rows.builders.finish(schema)?;
        let kinds = std::mem::take(&mut self.kinds);
        changelog::attach(&batch, &kinds).map_err(crate::BatchError::from)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use sluice_format::types::column_types_nested;

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("v", DataType::Int64, true)]))
    }

    fn decoder(flavor: Flavor, name: &'static str, ignore: bool) -> CdcDecoder {
        let s = schema();
        let json = JsonOptions { ignore_parse_errors: ignore, ..Default::default() };
        let rows = JsonDecoder::new(json.clone(), s.fields(), column_types_nested(s.fields(), "filesystem").unwrap());
        CdcDecoder::new(CdcOptions { flavor, json, name }, rows)
    }

    /// The rows read, as `kind[id, v]`.
    fn rows(d: &mut CdcDecoder) -> Vec<String> {
        let batch = d.finish(&schema()).unwrap();
        let (data, kinds) = changelog::split(&batch);
        let id = data.column(0).as_primitive::<Int64Type>();
        let v: &Int64Array = data.column(1).as_primitive::<Int64Type>();
        let show = |a: &Int64Array, i: usize| if a.is_null(i) { "null".to_string() } else { a.value(i).to_string() };
        (0..batch.num_rows()).map(|i| format!("{}[{}, {}]", kinds[i].short(), show(id, i), show(v, i))).collect()
    }

    #[test]
    fn debezium_ops_become_rows_of_their_kinds() {
        let mut d = decoder(Flavor::Debezium { schema_include: false }, "debezium-json", false);
        for line in [
            r#"{"before": null, "after": {"id": 1, "v": 10}, "op": "c"}"#,
            r#"{"before": null, "after": {"id": 2, "v": 20}, "op": "r"}"#,
            r#"{"before": {"id": 1, "v": 10}, "after": {"id": 1, "v": 11}, "op": "u"}"#,
            r#"{"before": {"id": 2, "v": 20}, "after": null, "op": "d"}"#,
        ] {
            assert!(d.decode(line).unwrap());
        }
        assert_eq!(rows(&mut d), ["+I[1, 10]", "+I[2, 20]", "-U[1, 10]", "+U[1, 11]", "-D[2, 20]"]);
        // The schema wrapper, when included.
        let mut d = decoder(Flavor::Debezium { schema_include: true }, "debezium-json", false);
        d.decode(r#"{"schema": {}, "payload": {"before": null, "after": {"id": 3, "v": 30}, "op": "c"}}"#).unwrap();
        assert_eq!(rows(&mut d), ["+I[3, 30]"]);
    }

    #[test]
    fn a_record_that_cannot_be_read_is_named_and_leaves_no_row() {
        let mut d = decoder(Flavor::Debezium { schema_include: false }, "debezium-json", false);
        let err = |d: &mut CdcDecoder, line: &str| match d.decode(line) {
            Err(RecordError::Malformed(m)) => m,
            other => panic!("{line}: {other:?}"),
        };
        let m = err(&mut d, r#"{"before": null, "after": {"id": 1, "v": 10}, "op": "u"}"#);
        assert!(m.contains("\"before\" field") && m.contains("REPLICA IDENTITY"), "{m}");
        let m = err(&mut d, r#"{"before": null, "after": {"id": 1}, "op": "x"}"#);
        assert!(m.contains("unknown \"op\" value \"x\""), "{m}");
        let m = err(&mut d, r#"{"after": {"id": 1}}"#);
        assert!(m.starts_with("debezium-json: no \"op\""), "{m}");
        assert_eq!(d.len(), 0);
        let mut c = decoder(Flavor::Canal { database: None, table: None }, "canal-json", false);
        let m = err(&mut c, r#"{"data": null, "type": "ALTER", "database": "d", "table": "t"}"#);
        assert!(m.contains("unknown \"type\" value \"ALTER\""), "{m}");
        let mut m = decoder(Flavor::Maxwell, "maxwell-json", false);
        let e = err(&mut m, r#"{"type": "insert"}"#);
        assert!(e.contains("no \"data\""), "{e}");
    }

    #[test]
    fn canal_and_maxwell_updates_take_the_changed_fields_from_old() {
        let mut c = decoder(Flavor::Canal { database: None, table: Some("^(?:orders)$".into()) }, "canal-json", false);
        for line in [
            r#"{"data": [{"id": 1, "v": 1}, {"id": 2, "v": 2}], "type": "INSERT", "database": "d", "table": "orders"}"#,
            r#"{"data": [{"id": 1, "v": 5}, {"id": 2, "v": 2}], "old": [{"v": 1}, {"v": null}], "type": "UPDATE", "database": "d", "table": "orders"}"#,
            r#"{"data": [{"id": 9, "v": 9}], "type": "INSERT", "database": "d", "table": "other"}"#,
            r#"{"data": null, "type": "CREATE", "database": "d", "table": "orders", "isDdl": true}"#,
            r#"{"data": [{"id": 1, "v": 5}], "type": "DELETE", "database": "d", "table": "orders"}"#,
        ] {
            c.decode(line).unwrap();
        }
        assert_eq!(
            rows(&mut c),
            ["+I[1, 1]", "+I[2, 2]", "-U[1, 1]", "+U[1, 5]", "-U[2, null]", "+U[2, 2]", "-D[1, 5]"]
        );
        let mut m = decoder(Flavor::Maxwell, "maxwell-json", false);
        for line in [
            r#"{"type": "insert", "data": {"id": 1, "v": 1}}"#,
            r#"{"type": "update", "data": {"id": 1, "v": 7}, "old": {"v": 1}}"#,
            r#"{"type": "delete", "data": {"id": 1, "v": 7}}"#,
        ] {
            m.decode(line).unwrap();
        }
        assert_eq!(rows(&mut m), ["+I[1, 1]", "-U[1, 1]", "+U[1, 7]", "-D[1, 7]"]);
    }
}
