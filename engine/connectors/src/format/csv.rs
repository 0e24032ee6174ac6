//! Flink's `csv` format (Jackson's CSV dialect).
//!
//! Writing follows Jackson's `CsvEncoder` as Flink configures it: a field is
//! quoted when it is a text value (STRING, TIMESTAMP) longer than 24 UTF-16
//! units, or contains a character below `max(delimiter, quote, '\n') + 1`
//! (for the default `,` and `"` that is any of ` !"#$%&'()*+,` and control
//! characters), the quote character, or a backslash; a quote inside quotes is
//! doubled. NULL is the null literal (empty by default); numbers and booleans
//! are never quoted. Values print as in the json format (DOUBLE `1.0E7`,
//! DECIMAL with trailing zeros stripped, timestamps `yyyy-MM-dd HH:mm:ss[.fff]`
//! and `...Z` for TIMESTAMP_LTZ).
//!
//! Reading accepts RFC 4180 quoting with the configured characters, quoted
//! fields spanning lines, `#` comments with `csv.allow-comments`, and trims
//! numbers and booleans as Flink does. An empty field is NULL for every type
//! but STRING, where it is the empty string (Flink writes NULL as an empty
//! field, so its own output reads back).

use arrow::record_batch::RecordBatch;

use std::borrow::Cow;
use std::sync::Arc;

use arrow::datatypes::Field;

use super::RecordError;
use super::columns::{Col, RowBuilders, Val, columns};
use crate::ConnectorError;
use crate::options::Options;
use sluice_format::number::{
    java_parse_boolean, java_parse_double, java_parse_float, parse_decimal, push_big_decimal, push_big_decimal_plain,
    push_i64, push_java_double, push_java_float, strip_trailing_zeros,
};
use sluice_format::time::{parse_date, parse_timestamp, push_local_date, push_sql_timestamp};
use sluice_format::types::ColType;

#[derive(Debug, Clone)]
pub(crate) struct CsvOptions {
    pub(crate) delimiter: char,
    pub(crate) quote: Option<char>,
    pub(crate) escape: Option<char>,
    pub(crate) allow_comments: bool,
    pub(crate) ignore_parse_errors: bool,
    pub(crate) null_literal: Option<String>,
    pub(crate) decimal_scientific: bool,
}

pub(crate) const CSV_OPTIONS: &str = "'csv.field-delimiter', 'csv.quote-character', 'csv.disable-quote-character', \
'csv.allow-comments', 'csv.ignore-parse-errors', 'csv.array-element-delimiter', 'csv.escape-character', \
'csv.null-literal', 'csv.write-bigdecimal-in-scientific-notation'";

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: ',',
            quote: Some('"'),
            escape: None,
            allow_comments: false,
            ignore_parse_errors: false,
            null_literal: None,
            decimal_scientific: true,
        }
    }
}

impl CsvOptions {
    pub(crate) fn parse(o: &Options<'_>) -> Result<Self, ConnectorError> {
        let delimiter = o.char("csv.field-delimiter", ',')?;
        let disable_quote = o.bool("csv.disable-quote-character", false)?;
        let quote = o.char("csv.quote-character", '"')?;
        if disable_quote && o.contains("csv.quote-character") {
            return Err(
                o.error("options 'csv.disable-quote-character' and 'csv.quote-character' cannot be used together")
            );
        }
        let escape = match o.get("csv.escape-character") {
            None => None,
            Some(_) => Some(o.char("csv.escape-character", '\\')?),
        };
        // Arrays are not supported column types, so the element delimiter has
        // nothing to act on; it is accepted for compatibility.
        let _ = o.get("csv.array-element-delimiter");
        let quote = if disable_quote { None } else { Some(quote) };
        if Some(delimiter) == quote || Some(delimiter) == escape || delimiter == '\n' || delimiter == '\r' {
            return Err(o.error(format!(
                "option 'csv.field-delimiter' = '{delimiter}' clashes with the quote or escape character or a line break"
            )));
        }
        Ok(CsvOptions {
            delimiter,
            quote,
            escape,
            allow_comments: o.bool("csv.allow-comments", false)?,
            ignore_parse_errors: o.bool("csv.ignore-parse-errors", false)?,
            null_literal: o.get("csv.null-literal").map(str::to_string),
            decimal_scientific: o.bool("csv.write-bigdecimal-in-scientific-notation", true)?,
        })
    }
}

// ---------------------------------------------------------------------------
// Writing

pub(crate) struct CsvEncoder {
    opts: CsvOptions,
    types: Vec<ColType>,
    delimiter: Vec<u8>,
    null: Vec<u8>,
    min_safe: u32,
    scratch: String,
    field: Vec<u8>,
}

/// Jackson quotes any text value longer than this without looking at it.
const MAX_QUOTE_CHECK: usize = 24;

impl CsvEncoder {
    pub(crate) fn new(opts: CsvOptions, types: Vec<ColType>) -> Self {
        let mut max = u32::from(opts.delimiter).max(u32::from('\n'));
        if let Some(q) = opts.quote {
            max = max.max(u32::from(q));
        }
        let delimiter = opts.delimiter.to_string().into_bytes();
        let null = opts.null_literal.clone().unwrap_or_default().into_bytes();
        CsvEncoder { opts, types, delimiter, null, min_safe: max + 1, scratch: String::new(), field: Vec::new() }
    }

    fn needs_quotes(&self, s: &str) -> bool {
        if self.opts.quote.is_none() {
            return false;
        }
        if s.len() > MAX_QUOTE_CHECK && s.encode_utf16().count() > MAX_QUOTE_CHECK {
            return true;
        }
        let special = self.opts.escape.unwrap_or('\\');
        s.chars().any(|c| u32::from(c) < self.min_safe || Some(c) == self.opts.quote || c == special)
    }

    /// Writes a text value, quoted when Jackson would quote it.
    fn push_text(&self, out: &mut Vec<u8>, s: &str) {
        let Some(q) = self.opts.quote.filter(|_| self.needs_quotes(s)) else {
            out.extend_from_slice(s.as_bytes());
            return;
        };
        let mut buf = [0u8; 4];
        let q = q.encode_utf8(&mut buf).as_bytes().to_vec();
        out.extend_from_slice(&q);
        for c in s.chars() {
            let mut cb = [0u8; 4];
            let bytes = c.encode_utf8(&mut cb).as_bytes();
            if bytes == q.as_slice() {
                out.extend_from_slice(&q);
            } else if Some(c) == self.opts.escape {
                out.extend_from_slice(bytes);
            }
            out.extend_from_slice(bytes);
        }
        out.extend_from_slice(&q);
    }

    pub(crate) fn encode(&mut self, table: &str, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ConnectorError> {
        let cols = columns(table, batch, &self.types)?;
        let mut field = std::mem::take(&mut self.field);
        for row in 0..batch.num_rows() {
            for (i, c) in cols.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(&self.delimiter);
                }
                if c.is_null(row) {
                    out.extend_from_slice(&self.null);
                    continue;
                }
                match c {
                    Col::Boolean(a) => out.extend_from_slice(if a.value(row) { b"true" } else { b"false" }),
                    Col::Int8(a) => push_i64(out, i64::from(a.value(row))),
                    Col::Int16(a) => push_i64(out, i64::from(a.value(row))),
                    Col::Int32(a) => push_i64(out, i64::from(a.value(row))),
                    Col::Int64(a) => push_i64(out, a.value(row)),
                    Col::Float32(a) => push_java_float(out, a.value(row), &mut self.scratch),
                    Col::Float64(a) => push_java_double(out, a.value(row), &mut self.scratch),
                    Col::Decimal(a, scale) => {
                        let (u, s) = strip_trailing_zeros(a.value(row), *scale);
                        if self.opts.decimal_scientific {
                            push_big_decimal(out, u, s);
                        } else {
                            push_big_decimal_plain(out, u, s);
                        }
                    }
                    Col::Utf8(a) => self.push_text(out, a.value(row)),
                    Col::Date(a) => push_local_date(out, a.value(row)),
                    Col::Timestamp(a) | Col::TimestampLtz(a) => {
                        field.clear();
                        push_sql_timestamp(&mut field, a.value(row), b' ');
                        if matches!(c, Col::TimestampLtz(_)) {
                            field.push(b'Z');
                        }
                        let text = std::str::from_utf8(&field).unwrap_or_default();
                        self.push_text(out, text);
                    }
                    // Tables refuse ARRAY and MAP columns with csv when they
                    // are defined; this is a batch that is not the table's.
                    Col::Nested(_) => {
                        return Err(ConnectorError::InvalidOption {
                            table: table.to_string(),
                            message: "the 'csv' format does not support ARRAY or MAP columns".into(),
                        });
                    }
                }
            }
            out.push(b'\n');
        }
        self.field = field;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Reading

pub(crate) struct CsvDecoder {
    opts: CsvOptions,
    types: Vec<ColType>,
    pub(crate) builders: RowBuilders,
    /// The columns to convert; empty: all. The others are NULL: a value in
    /// them is never parsed, so it cannot be malformed either.
    read: Vec<bool>,
    /// Reused by [`CsvDecoder::decode_plain`] from row to row: the fields'
    /// byte ranges, and the values of the columns that are not strings.
    bounds: Vec<(usize, usize)>,
    scalars: Vec<Val<'static>>,
}

/// Whether `text` holds the character `c` (when there is one). An ASCII
/// character is searched for as a byte, at memchr's speed.
fn holds(text: &str, c: Option<char>) -> bool {
    match c {
        None => false,
        Some(c) if c.is_ascii() => text.as_bytes().contains(&(c as u8)),
        Some(c) => text.contains(c),
    }
}

/// Splits one record into fields. `Err` for an unterminated quote.
fn split_record<'a>(opts: &CsvOptions, text: &'a str, out: &mut Vec<(Cow<'a, str>, bool)>) -> Result<(), String> {
    out.clear();
    // Most lines hold no quote and no escape character: split at the delimiter.
    if opts.delimiter.is_ascii() && !holds(text, opts.quote) && !holds(text, opts.escape) {
        out.extend(text.split(opts.delimiter).map(|f| (Cow::Borrowed(f), false)));
        return Ok(());
    }
    match (opts.delimiter, opts.quote) {
        (d, Some(q)) if d.is_ascii() && q.is_ascii() && !holds(text, opts.escape) => {
            split_bytes(d as u8, q as u8, text, out)
        }
        _ => split_quoted(opts, text, out),
    }
}

/// [`split_quoted`] on bytes, for an ASCII delimiter and quote and a line
/// without the escape character: a UTF-8 continuation byte is never ASCII,
/// so searching for the bytes finds the characters. A field without doubled
/// quotes is borrowed from the line.
fn split_bytes<'a>(d: u8, q: u8, text: &'a str, out: &mut Vec<(Cow<'a, str>, bool)>) -> Result<(), String> {
    let b = text.as_bytes();
    let find = |from: usize, byte: u8| memchr::memchr(byte, &b[from..]).map(|i| i + from);
    let mut start = 0;
    loop {
        let end;
        if b.get(start) == Some(&q) {
            let mut field = String::new();
            let mut seg = start + 1;
            let close = loop {
                let Some(k) = find(seg, q) else { return Err("a quoted field is not terminated".into()) };
                if b.get(k + 1) != Some(&q) {
                    break k;
                }
                // A doubled quote stands for one.
                field.push_str(&text[seg..=k]);
                seg = k + 2;
            };
            // Characters after the closing quote, up to the delimiter, are kept.
            end = find(close + 1, d).unwrap_or(b.len());
            let f = if field.is_empty() && end == close + 1 {
                Cow::Borrowed(&text[seg..close])
            } else {
                field.push_str(&text[seg..close]);
                field.push_str(&text[close + 1..end]);
                Cow::Owned(field)
            };
            out.push((f, true));
        } else {
            end = find(start, d).unwrap_or(b.len());
            out.push((Cow::Borrowed(&text[start..end]), false));
        }
        if end == b.len() {
            return Ok(());
        }
        start = end + 1;
    }
}

/// [`split_record`] character by character: quotes, doubled quotes and escapes.
fn split_quoted<'a>(opts: &CsvOptions, text: &'a str, out: &mut Vec<(Cow<'a, str>, bool)>) -> Result<(), String> {
    let mut chars = text.char_indices().peekable();
    let mut field = String::new();
    let mut quoted_field = false;
    let mut in_quotes = false;
    let mut start = 0;
    let mut simple = true; // the field is text[start..i] with no unescaping
    loop {
        let Some((i, c)) = chars.next() else {
            if in_quotes {
                return Err("a quoted field is not terminated".into());
            }
            let f = if simple { Cow::Borrowed(&text[start..]) } else { Cow::Owned(std::mem::take(&mut field)) };
            out.push((f, quoted_field));
            return Ok(());
        };
        if in_quotes {
            if Some(c) == opts.escape {
                if let Some((_, n)) = chars.next() {
                    field.push(n);
                }
            } else if Some(c) == opts.quote {
                if chars.peek().map(|(_, n)| Some(*n) == opts.quote).unwrap_or(false) {
                    chars.next();
                    field.push(c);
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        if c == opts.delimiter {
            let f = if simple { Cow::Borrowed(&text[start..i]) } else { Cow::Owned(std::mem::take(&mut field)) };
            out.push((f, quoted_field));
            start = i + c.len_utf8();
            simple = true;
            quoted_field = false;
            continue;
        }
        if Some(c) == opts.quote && simple && i == start {
            in_quotes = true;
            quoted_field = true;
            simple = false;
            field.clear();
            continue;
        }
        if Some(c) == opts.escape {
            if simple {
                field.clear();
                field.push_str(&text[start..i]);
                simple = false;
            }
            if let Some((_, n)) = chars.next() {
                field.push(n);
            }
            continue;
        }
        if !simple {
            field.push(c);
        }
    }
}

impl CsvDecoder {
    pub(crate) fn new(opts: CsvOptions, fields: &[Arc<Field>], types: Vec<ColType>) -> Self {
        let builders = RowBuilders::new(fields, &types);
        CsvDecoder { opts, types, builders, read: Vec::new(), bounds: Vec::new(), scalars: Vec::new() }
    }

    /// Converts only the columns marked `true` (all when the mask has another
    /// length than the row).
    pub(crate) fn read_only(&mut self, columns: &[bool]) {
        self.read = if columns.len() == self.types.len() { columns.to_vec() } else { Vec::new() };
    }

    /// Whether the text ends inside a quoted field.
    pub(crate) fn needs_more(&self, text: &[u8]) -> bool {
        let Some(q) = self.opts.quote.filter(char::is_ascii) else {
            return false;
        };
        let q = q as u8;
        let esc = self.opts.escape.filter(char::is_ascii).map(|e| e as u8);
        let d = self.opts.delimiter;
        if esc.is_some_and(|e| text.contains(&e)) {
            return ends_in_quotes(text, q, esc, d);
        }
        // Without escapes, only the quotes matter: jump from one to the next.
        let mut in_quotes = false;
        let mut doubled = usize::MAX;
        for i in memchr::memchr_iter(q, text) {
            if i == doubled {
                continue;
            }
            if in_quotes {
                if text.get(i + 1) == Some(&q) {
                    doubled = i + 1;
                } else {
                    in_quotes = false;
                }
            } else if i == 0 || (d.is_ascii() && text[i - 1] == d as u8) {
                in_quotes = true;
            }
        }
        in_quotes
    }
}

/// Whether `text` ends inside a quoted field, byte by byte (escapes included).
fn ends_in_quotes(text: &[u8], q: u8, esc: Option<u8>, d: char) -> bool {
    let mut in_quotes = false;
    let mut at_field_start = true;
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if in_quotes {
            if Some(c) == esc {
                i += 1;
            } else if c == q {
                if text.get(i + 1) == Some(&q) {
                    i += 1;
                } else {
                    in_quotes = false;
                }
            }
        } else if c == q && at_field_start {
            in_quotes = true;
        }
        at_field_start = d.is_ascii() && c == d as u8;
        i += 1;
    }
    in_quotes
}

impl CsvDecoder {
    pub(crate) fn decode(&mut self, text: &str) -> Result<bool, RecordError> {
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.is_empty() || (self.opts.allow_comments && text.starts_with('#')) {
            return Ok(false);
        }
        // Most lines hold no quote and no escape character: their fields are
        // the text between delimiters, read without building a list of them.
        if self.opts.delimiter.is_ascii() && !holds(text, self.opts.quote) && !holds(text, self.opts.escape) {
            return self.decode_plain(text);
        }
        self.decode_split(text)
    }

    /// [`CsvDecoder::decode`] of any record: split into fields (quotes,
    /// escapes), then converted.
    fn decode_split(&mut self, text: &str) -> Result<bool, RecordError> {
        let mut parts = Vec::with_capacity(self.types.len());
        split_record(&self.opts, text, &mut parts).map_err(RecordError::Malformed)?;
        self.check_length(parts.len())?;
        let mut vals: Vec<Val<'_>> = Vec::with_capacity(parts.len());
        for (i, (field, quoted)) in parts.iter().enumerate() {
            if !self.reads(i) {
                vals.push(Val::Null);
                continue;
            }
            vals.push(self.convert(i, field, *quoted)?);
        }
        for (b, v) in self.builders.cols.iter_mut().zip(&vals) {
            b.append(v);
        }
        self.builders.row_done();
        Ok(true)
    }

    /// [`CsvDecoder::decode`] of a line without quote or escape characters and
    /// with an ASCII delimiter. Every column that can fail is converted before
    /// anything is appended, so a malformed row appends nothing; strings,
    /// which cannot fail, are appended straight from the line.
    fn decode_plain(&mut self, text: &str) -> Result<bool, RecordError> {
        let mut bounds = std::mem::take(&mut self.bounds);
        let mut scalars = std::mem::take(&mut self.scalars);
        let result = self.decode_plain_with(text, &mut bounds, &mut scalars);
        self.bounds = bounds;
        self.scalars = scalars;
        result
    }

    fn decode_plain_with(
        &mut self,
        text: &str,
        bounds: &mut Vec<(usize, usize)>,
        scalars: &mut Vec<Val<'static>>,
    ) -> Result<bool, RecordError> {
        bounds.clear();
        let mut start = 0;
        for end in memchr::memchr_iter(self.opts.delimiter as u8, text.as_bytes()) {
            bounds.push((start, end));
            start = end + 1;
        }
        bounds.push((start, text.len()));
        self.check_length(bounds.len())?;
        scalars.clear();
        for (i, &(from, to)) in bounds.iter().enumerate() {
            let t = self.types[i];
            if t == ColType::Utf8 || !self.reads(i) {
                scalars.push(Val::Null);
                continue;
            }
            scalars.push(self.convert(i, &Cow::Borrowed(&text[from..to]), false)?.into_owned());
        }
        let null = self.opts.null_literal.as_deref();
        let cols = self.builders.cols.iter_mut().zip(&self.types).zip(&*scalars).zip(bounds.iter()).enumerate();
        for (i, (((b, t), v), &(from, to))) in cols {
            let field = &text[from..to];
            if *t == ColType::Utf8 && self.read.get(i) != Some(&false) && null != Some(field) {
                b.append(&Val::Utf8(Cow::Borrowed(field)));
            } else {
                b.append(v);
            }
        }
        self.builders.row_done();
        Ok(true)
    }

    /// Whether column `i` is converted (see [`CsvDecoder::read_only`]).
    fn reads(&self, i: usize) -> bool {
        self.read.get(i) != Some(&false)
    }

    fn check_length(&self, fields: usize) -> Result<(), RecordError> {
        if fields == self.types.len() {
            return Ok(());
        }
        Err(RecordError::Malformed(format!(
            "row length mismatch: {} fields expected but was {fields}",
            self.types.len()
        )))
    }

    /// Column `i`'s value from its field; a malformed one is NULL with
    /// `csv.ignore-parse-errors`, else an error naming the column.
    fn convert<'a>(&self, i: usize, field: &Cow<'a, str>, quoted: bool) -> Result<Val<'a>, RecordError> {
        match convert_text(field, quoted, self.types[i], self.opts.null_literal.as_deref()) {
            Ok(v) => Ok(v),
            Err(_) if self.opts.ignore_parse_errors => Ok(Val::Null),
            Err(e) => Err(RecordError::Field(format!("column {}: {e}", i + 1))),
        }
    }
}

/// Converts one csv field to a column type, as Flink's `CsvToRowDataConverters`.
pub(crate) fn convert_text<'a>(
    s: &Cow<'a, str>,
    quoted: bool,
    t: ColType,
    null_literal: Option<&str>,
) -> Result<Val<'a>, String> {
    if !quoted && null_literal == Some(s.as_ref()) {
        return Ok(Val::Null);
    }
    if s.is_empty() && t != ColType::Utf8 {
        return Ok(Val::Null);
    }
    let bad = || format!("'{s}' is not a valid {}", t.sql_name());
    Ok(match t {
        ColType::Utf8 => Val::Utf8(s.clone()),
        ColType::Boolean => Val::Boolean(java_parse_boolean(s.trim())),
        // Byte.parseByte and Short.parseShort: an out-of-range value is an error.
        ColType::Int8 => Val::Int8(s.trim().parse().map_err(|_| bad())?),
        ColType::Int16 => Val::Int16(s.trim().parse().map_err(|_| bad())?),
        ColType::Int32 => Val::Int32(s.trim().parse().map_err(|_| bad())?),
        ColType::Float32 => Val::Float32(java_parse_float(s).ok_or_else(bad)?),
        ColType::Int64 => Val::Int64(s.trim().parse().map_err(|_| bad())?),
        ColType::Float64 => Val::Float64(java_parse_double(s).ok_or_else(bad)?),
        ColType::Decimal { precision, scale } => match parse_decimal(s, precision, scale).map_err(|e| e.to_string())? {
            Some(u) => Val::Decimal(u),
            None => Val::Null,
        },
        ColType::Timestamp | ColType::TimestampLtz => Val::Timestamp(parse_timestamp(s.trim()).ok_or_else(bad)?.0),
        // java.sql.Date.valueOf: `yyyy-[m]m-[d]d`.
        ColType::Date => Val::Date(parse_date(s, true).ok_or_else(bad)?),
        ColType::Nested => return Err("the 'csv' format does not support ARRAY or MAP columns".into()),
    })
}

#[cfg(test)]
mod tests;
