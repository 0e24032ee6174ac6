//! Flink's encoding functions: URLs, base64, binary and hex text.
//!
//! - `URL_ENCODE(s)` / `URL_DECODE(s)`: Java's `URLEncoder` / `URLDecoder` in
//!   UTF-8 (a space is `+`); text that does not decode gives NULL.
//! - `PARSE_URL(url, part [, key])`: HOST, PATH, QUERY, REF, PROTOCOL, FILE,
//!   AUTHORITY or USERINFO of `url` as `java.net.URL` splits it; with a key,
//!   the value of that query parameter. NULL when absent or not a URL.
//! - `TO_BASE64(s)` / `FROM_BASE64(s)`: base64 of the UTF-8 bytes and back;
//!   FROM_BASE64 of text that is not base64 fails, as in Flink.
//! - `BIN(n)` / `HEX(n)`: a BIGINT in binary / upper-case hex, negative numbers
//!   in 64-bit two's complement; `HEX(s)`: the UTF-8 bytes of `s` in hex.

use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::DataType;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use datafusion_common::{Result, ScalarValue};

use super::udf::{Ctx, Def, def, exec_err, is_integer, is_string, longs, str_at, strings};

pub const DEFS: &[Def] = &[
    def("url_encode", "(string)", (1, 1), ret_string, |_, a, _| map_strings(a, |s| Some(url_encode(s)))),
    def("url_decode", "(string)", (1, 1), ret_string, |_, a, _| map_strings(a, url_decode)),
    def("parse_url", "(url, part [, query key])", (2, 3), ret_string, parse_url),
    def("to_base64", "(string)", (1, 1), ret_string, |_, a, _| map_strings(a, |s| Some(STANDARD.encode(s)))),
    def("from_base64", "(string)", (1, 1), ret_string, from_base64),
    def("bin", "(integer)", (1, 1), ret_bin, |_, a, _| map_longs(a, |n| format!("{:b}", n as u64))),
    def("hex", "(integer or string)", (1, 1), ret_hex, hex),
];

fn ret_string(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    (0..args.len()).try_for_each(|i| d.expect(args, i, "a STRING", is_string))?;
    Ok(DataType::Utf8)
}

fn ret_bin(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "an integer", is_integer)?;
    Ok(DataType::Utf8)
}

fn ret_hex(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "an integer or a STRING", |t| is_integer(t) || is_string(t))?;
    Ok(DataType::Utf8)
}

fn map_strings(args: &[ArrayRef], f: fn(&str) -> Option<String>) -> Result<ArrayRef> {
    let s = strings(&args[0])?;
    let out: StringArray = s.iter().map(|v| v.and_then(f)).collect();
    Ok(Arc::new(out))
}

fn map_longs(args: &[ArrayRef], f: fn(i64) -> String) -> Result<ArrayRef> {
    let n = longs(&args[0])?;
    let out: StringArray = n.iter().map(|v| v.map(f)).collect();
    Ok(Arc::new(out))
}

fn hex(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    if args[0].data_type().is_integer() {
        return map_longs(args, |n| format!("{:X}", n as u64));
    }
    map_strings(args, |s| {
        Some(s.bytes().fold(String::with_capacity(s.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02X}");
            out
        }))
    })
}

/// Text that is not base64 fails the job, as in Flink.
fn from_base64(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let s = strings(&args[0])?;
    let out: StringArray = s
        .iter()
        .map(|v| {
            v.map(|v| match STANDARD.decode(v) {
                Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
                Err(e) => Err(exec_err("from_base64", format_args!("cannot decode '{v}': {e}"))),
            })
            .transpose()
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out))
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn url_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// A URL split as `java.net.URL` splits it.
#[derive(Debug, PartialEq)]
struct Url<'a> {
    protocol: &'a str,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

/// The protocols a JVM has handlers for: others are malformed URLs.
const PROTOCOLS: [&str; 6] = ["http", "https", "ftp", "file", "jar", "mailto"];

fn split_url(url: &str) -> Option<Url<'_>> {
    let (protocol, rest) = url.split_once(':')?;
    if !PROTOCOLS.contains(&protocol.to_ascii_lowercase().as_str()) {
        return None;
    }
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(r) => {
            let end = r.find('/').unwrap_or(r.len());
            (Some(&r[..end]), &r[end..])
        }
        None => (None, rest),
    };
    Some(Url { protocol, authority, path, query, fragment })
}

fn url_part(url: &str, part: &str, key: Option<&str>) -> Option<String> {
    let u = split_url(url)?;
    let userinfo = u.authority.and_then(|a| a.rsplit_once('@')).map(|(user, _)| user);
    let host = u.authority.map(|a| {
        let host_port = a.rsplit_once('@').map_or(a, |(_, h)| h);
        match host_port.rsplit_once(':') {
            Some((h, port)) if !h.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host_port,
        }
    });
    match part {
        "HOST" => host.map(str::to_string),
        "PATH" => Some(u.path.to_string()),
        "QUERY" => match key {
            None => u.query.map(str::to_string),
            Some(k) => u.query.and_then(|q| {
                q.split('&').find_map(|p| p.strip_prefix(k).and_then(|v| v.strip_prefix('=')).map(str::to_string))
            }),
        },
        "REF" => u.fragment.map(str::to_string),
        "PROTOCOL" => Some(u.protocol.to_string()),
        "FILE" => Some(match u.query {
            Some(q) => format!("{}?{q}", u.path),
            None => u.path.to_string(),
        }),
        "AUTHORITY" => u.authority.map(str::to_string),
        "USERINFO" => userinfo.map(str::to_string),
        _ => None,
    }
}

fn parse_url(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (url, part) = (strings(&args[0])?, strings(&args[1])?);
    let key = args.get(2).map(strings).transpose()?;
    let out: StringArray = (0..url.len())
        .map(|i| {
            let key = match &key {
                Some(k) => Some(str_at(k, i)?),
                None => None,
            };
            url_part(str_at(&url, i)?, str_at(&part, i)?, key)
        })
        .collect();
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_as_java_does() {
        let url = "https://user:pw@www.example.com:8080/dir/p.html?k1=v1&k2=v%202#frag";
        let parts = [
            ("HOST", Some("www.example.com")),
            ("PATH", Some("/dir/p.html")),
            ("QUERY", Some("k1=v1&k2=v%202")),
            ("REF", Some("frag")),
            ("PROTOCOL", Some("https")),
            ("FILE", Some("/dir/p.html?k1=v1&k2=v%202")),
            ("AUTHORITY", Some("user:pw@www.example.com:8080")),
            ("USERINFO", Some("user:pw")),
        ];
        for (part, want) in parts {
            assert_eq!(url_part(url, part, None).as_deref(), want, "{part}");
        }
        assert_eq!(url_part(url, "QUERY", Some("k2")).as_deref(), Some("v%202"));
        assert_eq!(url_part(url, "QUERY", Some("k")).as_deref(), None);
        assert_eq!(url_part("not a url", "HOST", None), None);
        assert_eq!(url_part("http://example.com", "PATH", None).as_deref(), Some(""));
    }

    #[test]
    fn url_coding_round_trips() {
        assert_eq!(url_encode("a b&c=ä*"), "a+b%26c%3D%C3%A4*");
        assert_eq!(url_decode("a+b%26c%3D%C3%A4*").as_deref(), Some("a b&c=ä*"));
        assert_eq!(url_decode("bad%2"), None);
    }
}
