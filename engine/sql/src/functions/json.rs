//! Flink's JSON query functions in their default form (lax paths, NULL ON
//! EMPTY, NULL ON ERROR, no array wrapper).
//!
//! - `JSON_VALUE(json, path)`: STRING, the scalar at `path` (a string without
//!   its quotes, a number as written); NULL for a missing, null, object or
//!   array value, or text that is not JSON.
//! - `JSON_QUERY(json, path)`: STRING, the object or array at `path` as compact
//!   JSON with its keys sorted (as Flink writes them); a path with a wildcard
//!   gives the array of what it finds. NULL for a scalar or a missing value.
//! - `JSON_EXISTS(json, path)`: whether `path` finds a value; FALSE for text
//!   that is not JSON.
//!
//! Paths: `$`, `.key`, `['key']`, `[index]` (0-based), `[*]` and `.*`, after
//! an optional `lax` or `strict` mode word.

use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, StringArray};
use arrow::datatypes::DataType;
use datafusion_common::{Result, ScalarValue};

use super::udf::{Ctx, Def, is_string, str_at, strings};

pub const DEFS: &[Def] = &[
    Def {
        name: "json_value",
        usage: "(json, path)",
        min_args: 2,
        max_args: 2,
        volatile: false,
        ret: ret_string,
        eval: json_value,
    },
    Def {
        name: "json_query",
        usage: "(json, path)",
        min_args: 2,
        max_args: 2,
        volatile: false,
        ret: ret_string,
        eval: json_query,
    },
    Def {
        name: "json_exists",
        usage: "(json, path)",
        min_args: 2,
        max_args: 2,
        volatile: false,
        ret: ret_exists,
        eval: json_exists,
    },
];

fn ret_string(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "a STRING of JSON", is_string)?;
    d.expect(args, 1, "a STRING path", is_string)?;
    Ok(DataType::Utf8)
}

fn ret_exists(d: &Def, args: &[DataType], s: &[Option<&ScalarValue>], tz: &str) -> Result<DataType> {
    ret_string(d, args, s, tz).map(|_| DataType::Boolean)
}

/// A parsed JSON value that keeps its keys' order and its numbers' text.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

/// Deeper nesting is not JSON this module reads: it bounds the recursion.
const MAX_DEPTH: usize = 512;

impl Parser<'_> {
    fn parse(text: &str) -> Option<Json> {
        let mut p = Parser { s: text.as_bytes(), i: 0, depth: 0 };
        let v = p.value()?;
        p.ws();
        (p.i == p.s.len()).then_some(v)
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.s.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &str, v: Json) -> Option<Json> {
        self.s[self.i..].starts_with(word.as_bytes()).then(|| {
            self.i += word.len();
            v
        })
    }

    fn value(&mut self) -> Option<Json> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let v = self.nested();
        self.depth -= 1;
        v
    }

    fn nested(&mut self) -> Option<Json> {
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut fields = Vec::new();
                if self.eat(b'}').is_some() {
                    return Some(Json::Object(fields));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.eat(b':')?;
                    fields.push((key, self.value()?));
                    if self.eat(b',').is_none() {
                        self.eat(b'}')?;
                        return Some(Json::Object(fields));
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                if self.eat(b']').is_some() {
                    return Some(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    if self.eat(b',').is_none() {
                        self.eat(b']')?;
                        return Some(Json::Array(items));
                    }
                }
            }
            b'"' => self.string().map(Json::Str),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'n' => self.literal("null", Json::Null),
            _ => self.number(),
        }
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_digit() || b"+-.eE".contains(c)) {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        text.parse::<f64>().ok().filter(|_| !text.starts_with('+')).map(|_| Json::Number(text.to_string()))
    }

    fn string(&mut self) -> Option<String> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match *self.s.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return String::from_utf8(out).ok();
                }
                b'\\' => {
                    let c = *self.s.get(self.i + 1)?;
                    self.i += 2;
                    let ch = match c {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi) && self.s.get(self.i..self.i + 2) == Some(b"\\u") {
                                self.i += 2;
                                let lo = self.hex4()?;
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo.checked_sub(0xDC00)?))?
                            } else {
                                char::from_u32(hi)?
                            }
                        }
                        other => other as char,
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }
}

/// A JSON string literal, escaped as Jackson escapes it.
pub(super) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Compact JSON text, as Jackson writes it.
fn write_json(out: &mut String, v: &Json) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(n),
        Json::Str(s) => write_str(out, s),
        Json::Array(items) => {
            out.push('[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Json::Object(fields) => {
            out.push('{');
            let mut fields: Vec<&(String, Json)> = fields.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, (key, item)) in fields.into_iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                write_str(out, key);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
    AnyKey,
    AnyIndex,
}

/// The steps of a path, or None for a path this module does not read.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path.strip_prefix("lax").or_else(|| path.strip_prefix("strict")).unwrap_or(path).trim_start();
    let mut rest = path.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix(".*") {
            steps.push(Step::AnyKey);
            rest = r;
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = r[..end].trim_matches('"');
            if key.is_empty() {
                return None;
            }
            steps.push(Step::Key(key.to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let (inner, r) = r.split_once(']')?;
            let inner = inner.trim();
            steps.push(if inner == "*" {
                Step::AnyIndex
            } else if let Some(q) = inner.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')) {
                Step::Key(q.to_string())
            } else {
                Step::Index(inner.parse().ok()?)
            });
            rest = r;
        } else {
            return None;
        }
    }
    Some(steps)
}

/// Every value the path finds.
fn select<'a>(v: &'a Json, steps: &[Step]) -> Vec<&'a Json> {
    let Some((step, rest)) = steps.split_first() else { return vec![v] };
    let next: Vec<&Json> = match (step, v) {
        (Step::Key(k), Json::Object(fields)) => fields.iter().filter(|(f, _)| f == k).map(|(_, x)| x).collect(),
        (Step::AnyKey, Json::Object(fields)) => fields.iter().map(|(_, x)| x).collect(),
        (Step::Index(i), Json::Array(items)) => items.get(*i).into_iter().collect(),
        (Step::AnyIndex, Json::Array(items)) => items.iter().collect(),
        _ => vec![],
    };
    next.into_iter().flat_map(|x| select(x, rest)).collect()
}

/// The values `path` finds in `json`, with whether the path has a wildcard,
/// or None when either does not parse.
fn query(json: &str, path: &str, f: impl Fn(Vec<&Json>, bool) -> Option<String>) -> Option<String> {
    let doc = Parser::parse(json)?;
    let steps = parse_path(path)?;
    let wildcard = steps.iter().any(|s| matches!(s, Step::AnyKey | Step::AnyIndex));
    f(select(&doc, &steps), wildcard)
}

fn each_row(args: &[ArrayRef], f: impl Fn(&str, &str) -> Option<String>) -> Result<ArrayRef> {
    let (js, path) = (strings(&args[0])?, strings(&args[1])?);
    let out: StringArray = (0..js.len()).map(|i| f(str_at(&js, i)?, str_at(&path, i)?)).collect();
    Ok(Arc::new(out))
}

fn json_value(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    each_row(args, |js, path| {
        query(js, path, |found, _| match found.as_slice() {
            [Json::Str(s)] => Some(s.clone()),
            [Json::Number(n)] => Some(n.clone()),
            [Json::Bool(b)] => Some(b.to_string()),
            _ => None,
        })
    })
}

fn json_query(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    each_row(args, |js, path| {
        query(js, path, |found, wildcard| {
            let all;
            let v = match found.as_slice() {
                [] => return None,
                _ if wildcard => {
                    all = Json::Array(found.into_iter().cloned().collect());
                    &all
                }
                [v @ (Json::Array(_) | Json::Object(_))] => *v,
                _ => return None,
            };
            let mut out = String::new();
            write_json(&mut out, v);
            Some(out)
        })
    })
}

fn json_exists(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (js, path) = (strings(&args[0])?, strings(&args[1])?);
    let out: BooleanArray = (0..js.len())
        .map(|i| {
            let (js, path) = (str_at(&js, i)?, str_at(&path, i)?);
            Some(query(js, path, |found, _| (!found.is_empty()).then(String::new)).is_some())
        })
        .collect();
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_back_in_order() {
        let text = r#" {"b": [1, 2.50, {"c": "x\"\u00e9"}], "a": null, "t": true} "#;
        let v = Parser::parse(text).unwrap();
        let mut out = String::new();
        write_json(&mut out, &v);
        assert_eq!(out, r#"{"a":null,"b":[1,2.50,{"c":"x\"é"}],"t":true}"#);
        assert_eq!(Parser::parse("{\"a\":1} x"), None);
        assert_eq!(Parser::parse("not json"), None);
        let deep = "[".repeat(100_000);
        assert_eq!(Parser::parse(&deep), None);
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(Parser::parse(&ok).is_some());
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("lax $.a['b c'][2].*"),
            Some(vec![Step::Key("a".into()), Step::Key("b c".into()), Step::Index(2), Step::AnyKey])
        );
        assert_eq!(parse_path("a.b"), None);
        let doc = Parser::parse(r#"{"a":[{"k":1},{"k":2}]}"#).unwrap();
        assert_eq!(select(&doc, &parse_path("$.a[*].k").unwrap()).len(), 2);
    }
}
