//! A small JSON parser for the `json` format's reader: one document per line,
//! strings and numbers borrowed from the line where they can be, and
//! Jackson's compact text of a value (for a STRING column given an object).

use std::borrow::Cow;

use super::push_json_string;

/// A parsed JSON value; strings and numbers borrow from the line when they can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JVal<'a> {
    Null,
    Bool(bool),
    /// The number's text, validated as JSON number syntax.
    Num(&'a str),
    Str(Cow<'a, str>),
    Arr(Vec<JVal<'a>>),
    Obj(Vec<(Cow<'a, str>, JVal<'a>)>),
}

impl JVal<'_> {
    /// Compact JSON text, as Jackson's `JsonNode.toString()`.
    pub(crate) fn write_compact(&self, out: &mut Vec<u8>) {
        match self {
            JVal::Null => out.extend_from_slice(b"null"),
            JVal::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            JVal::Num(n) => out.extend_from_slice(n.as_bytes()),
            JVal::Str(s) => push_json_string(out, s),
            JVal::Arr(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    v.write_compact(out);
                }
                out.push(b']');
            }
            JVal::Obj(fields) => {
                out.push(b'{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    push_json_string(out, k);
                    out.push(b':');
                    v.write_compact(out);
                }
                out.push(b'}');
            }
        }
    }
}

/// A small recursive-descent JSON parser over one line.
pub(crate) struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 256;

impl<'a> Parser<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Parser { s, b: s.as_bytes(), i: 0, depth: 0 }
    }

    fn ws(&mut self) {
        while let Some(c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn err(&self, what: &str) -> String {
        format!("malformed JSON at column {}: {what}", self.i + 1)
    }

    /// Parses one complete document (only whitespace may follow).
    pub(crate) fn document(mut self) -> Result<JVal<'a>, String> {
        self.ws();
        let v = self.value()?;
        self.ws();
        if self.i != self.b.len() {
            return Err(self.err("unexpected text after the value"));
        }
        Ok(v)
    }

    fn value(&mut self) -> Result<JVal<'a>, String> {
        match self.b.get(self.i) {
            None => Err(self.err("unexpected end of line")),
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(JVal::Str(self.string()?)),
            Some(b't') => self.literal("true", JVal::Bool(true)),
            Some(b'f') => self.literal("false", JVal::Bool(false)),
            Some(b'n') => self.literal("null", JVal::Null),
            Some(c) if *c == b'-' || c.is_ascii_digit() => self.number(),
            Some(_) => Err(self.err("expected a value")),
        }
    }

    fn literal(&mut self, word: &str, v: JVal<'a>) -> Result<JVal<'a>, String> {
        if self.b[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("expected a value"))
        }
    }

    fn number(&mut self) -> Result<JVal<'a>, String> {
        let start = self.i;
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.b.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i - s
        };
        if digits(self) == 0 {
            return Err(self.err("invalid number"));
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("invalid number"));
            }
        }
        Ok(JVal::Num(&self.s[start..self.i]))
    }

    fn string(&mut self) -> Result<Cow<'a, str>, String> {
        self.i += 1; // opening quote
        let start = self.i;
        loop {
            match self.b.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    let s = &self.s[start..self.i];
                    self.i += 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(b'\\') => break,
                Some(c) if *c < 0x20 => return Err(self.err("control character in string")),
                Some(_) => self.i += 1,
            }
        }
        let mut owned = String::from(&self.s[start..self.i]);
        loop {
            match self.b.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(Cow::Owned(owned));
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = match self.b.get(self.i) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi) && self.b[self.i + 1..].starts_with(b"\\u") {
                                self.i += 2;
                                let lo = self.hex4()?;
                                let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF);
                                char::from_u32(cp).unwrap_or('\u{FFFD}')
                            } else {
                                char::from_u32(hi).unwrap_or('\u{FFFD}')
                            }
                        }
                        _ => return Err(self.err("invalid escape in string")),
                    };
                    owned.push(c);
                    self.i += 1;
                }
                Some(c) if *c < 0x20 => return Err(self.err("control character in string")),
                Some(_) => {
                    // Copy a run of plain characters (keeps UTF-8 sequences whole).
                    let run_start = self.i;
                    while self.b.get(self.i).is_some_and(|c| *c != b'"' && *c != b'\\' && *c >= 0x20) {
                        self.i += 1;
                    }
                    owned.push_str(&self.s[run_start..self.i]);
                }
            }
        }
    }

    /// Reads the 4 hex digits after `\u`; leaves `i` on the last digit.
    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.b.get(self.i + 1..self.i + 5).ok_or_else(|| self.err("invalid \\u escape"))?;
        let mut v = 0u32;
        for d in digits {
            v = v * 16 + (*d as char).to_digit(16).ok_or_else(|| self.err("invalid \\u escape"))?;
        }
        self.i += 4;
        Ok(v)
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH { Err(self.err("nesting too deep")) } else { Ok(()) }
    }

    fn array(&mut self) -> Result<JVal<'a>, String> {
        self.enter()?;
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            self.depth -= 1;
            return Ok(JVal::Arr(items));
        }
        loop {
            self.ws();
            items.push(self.value()?);
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(JVal::Arr(items));
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self) -> Result<JVal<'a>, String> {
        self.enter()?;
        self.i += 1;
        let mut fields = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(JVal::Obj(fields));
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return Err(self.err("expected a field name"));
            }
            let key = self.string()?;
            self.ws();
            if self.b.get(self.i) != Some(&b':') {
                return Err(self.err("expected ':'"));
            }
            self.i += 1;
            self.ws();
            let v = self.value()?;
            fields.push((key, v));
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(JVal::Obj(fields));
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_handles_escapes_nesting_and_errors() {
        let v = Parser::new(r#" {"a": "x\"y\u00e9\n", "b": [1, -2.5e3, true, null], "c": {}} "#).document().unwrap();
        let JVal::Obj(f) = v else { panic!() };
        assert_eq!(f[0].1, JVal::Str(Cow::Owned("x\"yé\n".into())));
        assert_eq!(f[1].1, JVal::Arr(vec![JVal::Num("1"), JVal::Num("-2.5e3"), JVal::Bool(true), JVal::Null]));
        assert!(Parser::new("{bad").document().is_err());
        assert!(Parser::new(r#"{"a":1} x"#).document().is_err());
        assert!(Parser::new(r#"{"a":01.}"#).document().is_err());
        assert_eq!(Parser::new(r#""\ud83d\ude00""#).document().unwrap(), JVal::Str(Cow::Owned("😀".into())));
    }
}
