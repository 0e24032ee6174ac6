//! Flink's `json` format: one JSON object per line.
//!
//! Writing follows Flink's `JsonRowDataSerializationSchema` (Jackson): keys in
//! column order, no spaces, NULL as `null`, DOUBLE as `Double.toString` with
//! non-finite values quoted (`"NaN"`), DECIMAL as a number with trailing zeros
//! stripped (with `json.encode.decimal-as-plain-number`: plainly, at the
//! column's scale), TIMESTAMP(3) as `"yyyy-MM-dd HH:mm:ss[.fff]"` and
//! TIMESTAMP_LTZ(3) as the same in UTC followed by `Z`.
//!
//! Reading follows Flink's `JsonParserToRowDataConverters`: keys match column
//! names exactly, missing keys are NULL, numbers and strings are coerced the
//! way Java would (`"12"` is a valid INT, `1.9` an INT of 1, a non-"true"
//! string a false BOOLEAN, an object a STRING of its JSON text).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::Array;
use arrow::datatypes::Field;
use arrow::record_batch::RecordBatch;

pub(crate) mod nested;
pub(crate) mod parse;

use parse::{JVal, Parser};

use super::RecordError;
use super::columns::{Col, ColBuilder, RowBuilders, Val, columns};
use crate::ConnectorError;
use crate::options::Options;
use sluice_format::number::{
    java_parse_boolean, java_parse_double, java_parse_float, parse_decimal, push_big_decimal, push_big_decimal_plain,
    push_i64, push_java_double, push_java_float, strip_trailing_zeros,
};
use sluice_format::time::{parse_date, parse_timestamp, push_local_date, push_sql_timestamp};
use sluice_format::types::ColType;

#[derive(Debug, Clone, Default)]
pub(crate) struct JsonOptions {
    pub(crate) ignore_parse_errors: bool,
    pub(crate) fail_on_missing_field: bool,
    /// `json.timestamp-format.standard` = 'ISO-8601' (a `T` instead of a space).
    pub(crate) iso8601: bool,
    pub(crate) decimal_as_plain_number: bool,
    pub(crate) ignore_null_fields: bool,
}

pub(crate) const JSON_OPTIONS: &str = "'json.ignore-parse-errors', 'json.fail-on-missing-field', \
'json.timestamp-format.standard', 'json.encode.decimal-as-plain-number', 'json.encode.ignore-null-fields', \
'json.map-null-key.mode', 'json.map-null-key.literal'";

impl JsonOptions {
    pub(crate) fn parse(o: &Options<'_>) -> Result<Self, ConnectorError> {
        let ignore_parse_errors = o.bool("json.ignore-parse-errors", false)?;
        let fail_on_missing_field = o.bool("json.fail-on-missing-field", false)?;
        if ignore_parse_errors && fail_on_missing_field {
            return Err(
                o.error("options 'json.ignore-parse-errors' and 'json.fail-on-missing-field' cannot both be true")
            );
        }
        let iso8601 = match o.get("json.timestamp-format.standard").map(str::trim) {
            None | Some("SQL") => false,
            Some("ISO-8601") => true,
            Some(other) => {
                return Err(o.error(format!(
                    "option 'json.timestamp-format.standard' = '{other}' is invalid: expected 'SQL' or 'ISO-8601'"
                )));
            }
        };
        // Maps are not supported column types, so the map-null-key options have
        // nothing to act on; they are accepted for compatibility.
        let _ = o.get("json.map-null-key.mode");
        let _ = o.get("json.map-null-key.literal");
        Ok(JsonOptions {
            ignore_parse_errors,
            fail_on_missing_field,
            iso8601,
            decimal_as_plain_number: o.bool("json.encode.decimal-as-plain-number", false)?,
            ignore_null_fields: o.bool("json.encode.ignore-null-fields", false)?,
        })
    }
}

// ---------------------------------------------------------------------------
// Writing

/// Appends `s` as a JSON string the way Jackson escapes it: `"` and `\`,
/// `\b \t \n \f \r` short forms, other control characters as `\u00XX`
/// (upper-case hex); everything else, including non-ASCII, as is.
pub(crate) fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0C => b"\\f",
            0..=0x1F => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 0xF)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

pub(crate) struct JsonEncoder {
    opts: JsonOptions,
    /// `"name":` for each column.
    keys: Vec<Vec<u8>>,
    types: Vec<ColType>,
    scratch: String,
}

impl JsonEncoder {
    pub(crate) fn new(opts: JsonOptions, fields: &[Arc<Field>], types: Vec<ColType>) -> Self {
        let keys = fields
            .iter()
            .map(|f| {
                let mut k = Vec::new();
                push_json_string(&mut k, f.name());
                k.push(b':');
                k
            })
            .collect();
        JsonEncoder { opts, keys, types, scratch: String::new() }
    }

    pub(crate) fn encode(&mut self, table: &str, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ConnectorError> {
        let cols = columns(table, batch, &self.types)?;
        for row in 0..batch.num_rows() {
            self.push_object(out, &cols, row);
            out.push(b'\n');
        }
        Ok(())
    }

    /// The columns of a batch, typed for [`JsonEncoder::push_object`].
    pub(crate) fn columns<'a>(&self, table: &str, batch: &'a RecordBatch) -> Result<Vec<Col<'a>>, ConnectorError> {
        columns(table, batch, &self.types)
    }

    /// Appends row `row` of `cols` as one JSON object, without a line break.
    pub(crate) fn push_object(&mut self, out: &mut Vec<u8>, cols: &[Col<'_>], row: usize) {
        let keys = std::mem::take(&mut self.keys);
        out.push(b'{');
        let mut first = true;
        for (c, key) in cols.iter().zip(&keys) {
            let null = c.is_null(row);
            if null && self.opts.ignore_null_fields {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(key);
            if null {
                out.extend_from_slice(b"null");
                continue;
            }
            self.push_col(out, c, row);
        }
        out.push(b'}');
        self.keys = keys;
    }

    /// Appends the JSON text of the non-null value at `row` of `c`.
    fn push_col(&mut self, out: &mut Vec<u8>, c: &Col<'_>, row: usize) {
        let sep = if self.opts.iso8601 { b'T' } else { b' ' };
        match c {
            Col::Boolean(a) => out.extend_from_slice(if a.value(row) { b"true" } else { b"false" }),
            Col::Int8(a) => push_i64(out, i64::from(a.value(row))),
            Col::Int16(a) => push_i64(out, i64::from(a.value(row))),
            Col::Int32(a) => push_i64(out, i64::from(a.value(row))),
            Col::Int64(a) => push_i64(out, a.value(row)),
            Col::Float32(a) => {
                let v = a.value(row);
                let quote = !v.is_finite();
                if quote {
                    out.push(b'"');
                }
                push_java_float(out, v, &mut self.scratch);
                if quote {
                    out.push(b'"');
                }
            }
            Col::Float64(a) => {
                let v = a.value(row);
                // Jackson quotes non-numeric doubles (QUOTE_NON_NUMERIC_NUMBERS).
                let quote = !v.is_finite();
                if quote {
                    out.push(b'"');
                }
                push_java_double(out, v, &mut self.scratch);
                if quote {
                    out.push(b'"');
                }
            }
            // Flink's Jackson node keeps the column's scale, and writes it
            // plainly (`12.50`) or, by default, stripped of trailing zeros
            // (`12.5`, `1E+2`).
            Col::Decimal(a, scale) => {
                if self.opts.decimal_as_plain_number {
                    push_big_decimal_plain(out, a.value(row), *scale);
                } else {
                    let (u, s) = strip_trailing_zeros(a.value(row), *scale);
                    push_big_decimal(out, u, s);
                }
            }
            Col::Utf8(a) => push_json_string(out, a.value(row)),
            Col::Date(a) => {
                out.push(b'"');
                push_local_date(out, a.value(row));
                out.push(b'"');
            }
            Col::Timestamp(a) => {
                out.push(b'"');
                push_sql_timestamp(out, a.value(row), sep);
                out.push(b'"');
            }
            Col::TimestampLtz(a) => {
                out.push(b'"');
                push_sql_timestamp(out, a.value(row), sep);
                out.extend_from_slice(b"Z\"");
            }
            Col::Nested(a) => nested::push_json(self, out, *a, row),
        }
    }
}

/// Appends the JSON text of the value at `row` of a scalar `arr` (an element
/// of an ARRAY or MAP).
pub(crate) fn push_scalar(enc: &mut JsonEncoder, out: &mut Vec<u8>, arr: &dyn Array, row: usize) {
    match sluice_format::columns::col_of(arr) {
        _ if arr.is_null(row) => out.extend_from_slice(b"null"),
        Some(c) => enc.push_col(out, &c, row),
        None => out.extend_from_slice(b"null"),
    }
}

// ---------------------------------------------------------------------------
// Reading

fn is_integral(n: &str) -> bool {
    !n.bytes().any(|c| matches!(c, b'.' | b'e' | b'E'))
}

/// Converts a JSON value to a column's type, as Flink's converters do.
pub(crate) fn convert<'a>(v: &JVal<'a>, t: ColType, scratch: &mut Vec<u8>) -> Result<Val<'a>, String> {
    let text_of = |v: &JVal<'a>| -> Option<Cow<'a, str>> {
        match v {
            JVal::Str(s) => Some(s.clone()),
            JVal::Num(n) => Some(Cow::Borrowed(*n)),
            JVal::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            _ => None,
        }
    };
    if *v == JVal::Null {
        return Ok(Val::Null);
    }
    Ok(match t {
        ColType::Boolean => Val::Boolean(match v {
            JVal::Bool(b) => *b,
            other => text_of(other).is_some_and(|s| java_parse_boolean(s.trim())),
        }),
        ColType::Int32 | ColType::Int64 => {
            let wide: i64 = match v {
                JVal::Num(n) if is_integral(n) => {
                    n.parse::<i64>().map_err(|_| format!("numeric value ({n}) out of range"))?
                }
                JVal::Num(n) => {
                    let d: f64 = n.parse().map_err(|_| format!("invalid number {n}"))?;
                    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&d) {
                        return Err(format!("numeric value ({n}) out of range"));
                    }
                    d.trunc() as i64
                }
                JVal::Str(s) => s.trim().parse::<i64>().map_err(|_| format!("for input string: \"{s}\""))?,
                _ => return Err(format!("cannot convert {} to {}", kind(v), t.sql_name())),
            };
            if t == ColType::Int32 {
                Val::Int32(i32::try_from(wide).map_err(|_| format!("numeric value ({wide}) out of range of INT"))?)
            } else {
                Val::Int64(wide)
            }
        }
        // Byte.parseByte and Short.parseShort of the node's text: `1.0` and
        // out-of-range values are errors.
        ColType::Int8 | ColType::Int16 => {
            let s = text_of(v).ok_or_else(|| format!("cannot convert {} to {}", kind(v), t.sql_name()))?;
            let bad = || format!("for input string: \"{s}\"");
            if t == ColType::Int8 {
                Val::Int8(s.trim().parse().map_err(|_| bad())?)
            } else {
                Val::Int16(s.trim().parse().map_err(|_| bad())?)
            }
        }
        // A JSON number is read as a double and narrowed; a string with
        // Float.parseFloat.
        ColType::Float32 => match v {
            JVal::Num(n) => {
                Val::Float32(java_parse_double(n).ok_or_else(|| format!("for input string: \"{n}\""))? as f32)
            }
            other => match text_of(other) {
                Some(s) => Val::Float32(java_parse_float(&s).ok_or_else(|| format!("for input string: \"{s}\""))?),
                None => return Err(format!("cannot convert {} to FLOAT", kind(v))),
            },
        },
        ColType::Float64 => match text_of(v) {
            Some(s) => Val::Float64(java_parse_double(&s).ok_or_else(|| format!("for input string: \"{s}\""))?),
            None => return Err(format!("cannot convert {} to DOUBLE", kind(v))),
        },
        ColType::Decimal { precision, scale } => match v {
            JVal::Num(_) | JVal::Str(_) => {
                let s = text_of(v).unwrap_or_default();
                match parse_decimal(&s, precision, scale).map_err(|e| e.to_string())? {
                    Some(u) => Val::Decimal(u),
                    None => Val::Null,
                }
            }
            _ => return Err(format!("cannot convert {} to {}", kind(v), t.sql_name())),
        },
        ColType::Utf8 => match v {
            JVal::Arr(_) | JVal::Obj(_) => {
                scratch.clear();
                v.write_compact(scratch);
                Val::Utf8(Cow::Owned(String::from_utf8_lossy(scratch).into_owned()))
            }
            other => Val::Utf8(text_of(other).unwrap_or_default()),
        },
        // ISO_LOCAL_DATE of the node's text.
        ColType::Date => match text_of(v) {
            Some(s) => {
                Val::Date(parse_date(&s, false).ok_or_else(|| format!("'{s}' is not a date; expected 'yyyy-MM-dd'"))?)
            }
            None => return Err(format!("cannot convert {} to DATE", kind(v))),
        },
        ColType::Timestamp | ColType::TimestampLtz => match v {
            JVal::Str(s) => match parse_timestamp(s) {
                Some((ms, _)) => Val::Timestamp(ms),
                None => {
                    return Err(format!(
                        "'{s}' is not a timestamp; expected 'yyyy-MM-dd HH:mm:ss[.SSS]'{}",
                        if t == ColType::TimestampLtz { " followed by 'Z'" } else { "" }
                    ));
                }
            },
            _ => return Err(format!("cannot convert {} to {}", kind(v), t.sql_name())),
        },
        // Nested values are read by `nested::NestedBuilder`.
        ColType::Nested => return Err(format!("cannot convert {} to an ARRAY or MAP here", kind(v))),
    })
}

pub(crate) fn kind(v: &JVal<'_>) -> &'static str {
    match v {
        JVal::Null => "null",
        JVal::Bool(_) => "a boolean",
        JVal::Num(_) => "a number",
        JVal::Str(_) => "a string",
        JVal::Arr(_) => "an array",
        JVal::Obj(_) => "an object",
    }
}

pub(crate) struct JsonDecoder {
    opts: JsonOptions,
    names: HashMap<String, usize>,
    field_names: Vec<String>,
    types: Vec<ColType>,
    pub(crate) builders: RowBuilders,
    scratch: Vec<u8>,
}

impl JsonDecoder {
    pub(crate) fn new(opts: JsonOptions, fields: &[Arc<Field>], types: Vec<ColType>) -> Self {
        let names = fields.iter().enumerate().map(|(i, f)| (f.name().clone(), i)).collect();
        let builders = RowBuilders::new(fields, &types);
        JsonDecoder {
            opts,
            names,
            field_names: fields.iter().map(|f| f.name().clone()).collect(),
            types,
            builders,
            scratch: Vec::new(),
        }
    }

    pub(crate) fn decode(&mut self, text: &str) -> Result<bool, RecordError> {
        if text.trim().is_empty() {
            return Ok(false);
        }
        let doc = Parser::new(text).document().map_err(RecordError::Malformed)?;
        let JVal::Obj(fields) = doc else {
            return Err(RecordError::Malformed(format!("expected a JSON object but found {}", kind(&doc))));
        };
        self.append_object(&fields)?;
        Ok(true)
    }

    /// Appends the row of a parsed JSON object's fields (the table's columns by
    /// name; others ignored); on an error nothing is appended.
    pub(crate) fn append_object(&mut self, fields: &[(Cow<'_, str>, JVal<'_>)]) -> Result<(), RecordError> {
        let mut vals: Vec<Val<'_>> = vec![Val::Null; self.types.len()];
        let mut seen = vec![false; self.types.len()];
        // Nested values are checked here and appended once the whole record
        // converted; the last of a field given twice wins, as in Flink.
        let mut nested: Vec<Option<&JVal<'_>>> = vec![None; self.types.len()];
        for (k, v) in fields {
            let Some(&idx) = self.names.get(k.as_ref()) else {
                continue;
            };
            seen[idx] = true;
            if let ColBuilder::Nested(b) = &self.builders.cols[idx] {
                match b.check_json(v, &mut self.scratch) {
                    Ok(()) => nested[idx] = Some(v),
                    Err(e) if self.opts.ignore_parse_errors => {
                        let _ = e;
                        nested[idx] = None;
                    }
                    Err(e) => return Err(RecordError::Field(format!("field `{k}`: {e}"))),
                }
                continue;
            }
            match convert(v, self.types[idx], &mut self.scratch) {
                Ok(x) => vals[idx] = x,
                Err(e) if self.opts.ignore_parse_errors => {
                    let _ = e;
                    vals[idx] = Val::Null;
                }
                Err(e) => return Err(RecordError::Field(format!("field `{k}`: {e}"))),
            }
        }
        if self.opts.fail_on_missing_field
            && let Some(i) = seen.iter().position(|s| !s)
        {
            return Err(RecordError::Malformed(format!("field `{}` is missing", self.field_names[i])));
        }
        for ((b, v), n) in self.builders.cols.iter_mut().zip(&vals).zip(&nested) {
            match (b, n) {
                (ColBuilder::Nested(b), Some(n)) => b.append_json(n, &mut self.scratch),
                (ColBuilder::Nested(b), None) => b.append_null(),
                (b, _) => b.append(v),
            }
        }
        self.builders.row_done();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_like_jackson() {
        let mut out = Vec::new();
        push_json_string(&mut out, "a\"b\\c\nd\re\tf\u{1}g/ü");
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\nd\re\tf\u0001g/ü""#);
    }

    #[test]
    fn small_integers_and_floats_convert_as_flink_reads_them() {
        let mut scratch = Vec::new();
        let mut conv = |v: JVal<'static>, t: ColType| convert(&v, t, &mut scratch);
        assert_eq!(conv(JVal::Num("-128"), ColType::Int8), Ok(Val::Int8(-128)));
        assert_eq!(conv(JVal::Str(" 100 ".into()), ColType::Int8), Ok(Val::Int8(100)));
        // Byte.parseByte: out of range, or not an integer, is an error.
        assert!(conv(JVal::Num("128"), ColType::Int8).is_err());
        assert!(conv(JVal::Num("1.0"), ColType::Int8).is_err());
        assert!(conv(JVal::Bool(true), ColType::Int16).is_err());
        assert_eq!(conv(JVal::Num("32767"), ColType::Int16), Ok(Val::Int16(32767)));
        assert!(conv(JVal::Num("32768"), ColType::Int16).is_err());
        assert_eq!(conv(JVal::Num("0.1"), ColType::Float32), Ok(Val::Float32(0.1)));
        assert_eq!(conv(JVal::Num("1e-3"), ColType::Float32), Ok(Val::Float32(0.001)));
        assert_eq!(conv(JVal::Str("2.5".into()), ColType::Float32), Ok(Val::Float32(2.5)));
        assert!(conv(JVal::Str("x".into()), ColType::Float32).is_err());
        assert_eq!(conv(JVal::Null, ColType::Float32), Ok(Val::Null));
    }

    #[test]
    fn floats_write_as_jackson_does() {
        use arrow::array::Float32Array;
        let mut e = JsonEncoder::new(JsonOptions::default(), &[], vec![]);
        let a = Float32Array::from(vec![0.1, 1e10, f32::MAX, f32::NAN]);
        let col = Col::Float32(&a);
        let mut out = Vec::new();
        for row in 0..a.len() {
            e.push_col(&mut out, &col, row);
            out.push(b' ');
        }
        assert_eq!(String::from_utf8(out).unwrap(), "0.1 1.0E10 3.4028235E38 \"NaN\" ");
    }
}
