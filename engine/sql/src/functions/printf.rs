//! `PRINTF(format, args...)`: STRING, Java's `String.format`.
//!
//! Conversions `%s %S %d %x %X %o %f %e %E %b %c %% %n` with the flags
//! `- 0 + , space`, a width and a precision. A NULL argument prints `null`
//! (`false` for `%b`), cut by the precision as Java does; numbers round half
//! up on their shortest decimal text. A conversion that does not fit its
//! argument (`%d` of a STRING) or a missing argument fails, as in Flink.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType};
use datafusion_common::{Result, ScalarValue};

use super::udf::{Ctx, Def, exec_err, is_string, str_at, strings};

pub const DEFS: &[Def] = &[Def {
    name: "printf",
    usage: "(format, value, ...)",
    min_args: 1,
    max_args: usize::MAX,
    volatile: false,
    ret: ret_printf,
    eval: printf,
}];

fn ret_printf(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "a STRING format", is_string)?;
    Ok(DataType::Utf8)
}

/// One argument of one row, as Java would see it.
#[derive(Clone)]
enum Arg {
    Null,
    Int(i64, bool),
    Double(f64),
    Decimal(String),
    Bool(bool),
    Text(String),
}

fn arg_at(a: &ArrayRef, i: usize) -> Result<Arg> {
    if a.is_null(i) {
        return Ok(Arg::Null);
    }
    Ok(match a.data_type() {
        DataType::Null => Arg::Null,
        DataType::Int8 | DataType::Int16 | DataType::Int32 => {
            Arg::Int(cast(a, &DataType::Int64)?.as_primitive::<Int64Type>().value(i), false)
        }
        DataType::Int64 => Arg::Int(a.as_primitive::<Int64Type>().value(i), true),
        DataType::Float32 | DataType::Float64 => {
            Arg::Double(cast(a, &DataType::Float64)?.as_primitive::<Float64Type>().value(i))
        }
        DataType::Decimal128(_, _) => Arg::Decimal(cast(a, &DataType::Utf8)?.as_string::<i32>().value(i).to_string()),
        DataType::Boolean => Arg::Bool(a.as_boolean().value(i)),
        DataType::Timestamp(_, _) => {
            // LocalDateTime.toString: seconds and millis only when not zero.
            let t = cast(a, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
            let ms = t.as_primitive::<TimestampMillisecondType>().value(i);
            let dt = chrono::DateTime::from_timestamp_millis(ms).map(|d| d.naive_utc());
            Arg::Text(dt.map_or_else(String::new, |dt| {
                let f = match (ms.rem_euclid(60_000), ms.rem_euclid(1000)) {
                    (0, _) => "%Y-%m-%dT%H:%M",
                    (_, 0) => "%Y-%m-%dT%H:%M:%S",
                    _ => "%Y-%m-%dT%H:%M:%S%.3f",
                };
                dt.format(f).to_string()
            }))
        }
        _ => Arg::Text(super::to_flink_string(a, "UTC")?.as_string::<i32>().value(i).to_string()),
    })
}

/// Rounds the decimal text of `v` half up to `places` decimals.
fn fixed(v: f64, places: usize) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let text = format!("{:e}", v.abs());
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
    // digits[0] is the 10^exp place; keep those down to 10^-places.
    let keep = exp + 1 + places as i64;
    let mut kept: Vec<u8> = (0..keep.max(0)).map(|k| digits.get(k as usize).copied().unwrap_or(0)).collect();
    let round_up = keep >= 0 && digits.get(keep as usize).is_some_and(|d| *d >= 5);
    let mut int_len = exp + 1;
    if round_up {
        let mut k = kept.len();
        loop {
            if k == 0 {
                kept.insert(0, 1);
                int_len += 1;
                break;
            }
            k -= 1;
            if kept[k] == 9 {
                kept[k] = 0;
            } else {
                kept[k] += 1;
                break;
            }
        }
    }
    // Left-pad so that the integer part has at least one digit.
    while int_len < 1 {
        kept.insert(0, 0);
        int_len += 1;
    }
    let total = int_len as usize + places;
    kept.resize(total, 0);
    let s: String = kept.iter().map(|d| (b'0' + d) as char).collect();
    let (i, f) = s.split_at(int_len as usize);
    // Java keeps the sign of a negative number that rounds to zero, and of -0.0.
    let sign = if v.is_sign_negative() { "-" } else { "" };
    if places == 0 { format!("{sign}{i}") } else { format!("{sign}{i}.{f}") }
}

/// Java's `%e`: one digit, the fraction, and a signed exponent of two digits or more.
fn scientific(v: f64, places: usize) -> String {
    if v == 0.0 {
        return format!("{}e+00", fixed(v, places));
    }
    let exp = v.abs().log10().floor() as i32;
    let mut exp = exp;
    let mut mantissa = fixed(v / 10f64.powi(exp), places);
    if mantissa.trim_start_matches('-').starts_with("10") {
        exp += 1;
        mantissa = fixed(v / 10f64.powi(exp), places);
    }
    format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

fn group_thousands(int: &str) -> String {
    let bytes = int.as_bytes();
    let mut out = String::new();
    for (k, c) in bytes.iter().enumerate() {
        if k > 0 && (bytes.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(*c as char);
    }
    out
}

struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    comma: bool,
    width: usize,
    precision: Option<usize>,
}

impl Spec {
    fn pad(&self, s: String) -> String {
        let len = s.chars().count();
        if len >= self.width {
            return s;
        }
        let fill = self.width - len;
        if self.left {
            format!("{s}{}", " ".repeat(fill))
        } else if self.zero {
            let (sign, digits) = if s.starts_with(['-', '+', ' ']) { s.split_at(1) } else { ("", s.as_str()) };
            format!("{sign}{}{digits}", "0".repeat(fill))
        } else {
            format!("{}{s}", " ".repeat(fill))
        }
    }

    /// A sign and grouping for a decimal number's text.
    fn number(&self, text: String) -> String {
        let (neg, body) = match text.strip_prefix('-') {
            Some(b) => (true, b.to_string()),
            None => (false, text),
        };
        let body = if self.comma {
            let (i, f) = body.split_once('.').map_or((body.as_str(), None), |(i, f)| (i, Some(f)));
            let g = group_thousands(i);
            f.map_or(g.clone(), |f| format!("{g}.{f}"))
        } else {
            body
        };
        let sign = if neg {
            "-"
        } else if self.plus {
            "+"
        } else if self.space {
            " "
        } else {
            ""
        };
        format!("{sign}{body}")
    }
}

fn format_row(fmt: &str, args: &[Arg]) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec =
            Spec { left: false, zero: false, plus: false, space: false, comma: false, width: 0, precision: None };
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.left = true,
                '0' => spec.zero = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                ',' => spec.comma = true,
                _ => break,
            }
            chars.next();
        }
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            spec.width = spec.width * 10 + d as usize;
            chars.next();
        }
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = 0;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                p = p * 10 + d as usize;
                chars.next();
            }
            spec.precision = Some(p);
        }
        let conv = chars.next().ok_or_else(|| format!("the format '{fmt}' ends inside a conversion"))?;
        match conv {
            '%' => {
                out.push_str(&spec.pad("%".into()));
                continue;
            }
            'n' => {
                out.push('\n');
                continue;
            }
            _ => {}
        }
        let arg = args.get(next).ok_or_else(|| format!("the format '{fmt}' needs more arguments"))?;
        next += 1;
        let mismatch = |what: &str| format!("%{conv} cannot format {what}");
        let text = match (conv, arg) {
            ('b' | 'B', Arg::Null) => "false".to_string(),
            ('b' | 'B', Arg::Bool(b)) => b.to_string(),
            ('b' | 'B', _) => "true".to_string(),
            (_, Arg::Null) => "null".to_string(),
            ('s' | 'S', a) => match a {
                Arg::Int(n, _) => n.to_string(),
                Arg::Double(v) => sluice_format::java_double(*v),
                Arg::Decimal(s) | Arg::Text(s) => s.clone(),
                Arg::Bool(b) => b.to_string(),
                Arg::Null => "null".to_string(),
            },
            ('d', Arg::Int(n, _)) => spec.number(n.to_string()),
            ('x' | 'X' | 'o', Arg::Int(n, long)) => {
                let bits = if *long { *n as u64 } else { u64::from(*n as i32 as u32) };
                match conv {
                    'o' => format!("{bits:o}"),
                    _ => format!("{bits:x}"),
                }
            }
            ('f' | 'e' | 'E', Arg::Double(v)) => {
                let p = spec.precision.unwrap_or(6);
                spec.number(if conv == 'f' { fixed(*v, p) } else { scientific(*v, p) })
            }
            ('f' | 'e' | 'E', Arg::Decimal(s)) => {
                let v: f64 = s.parse().map_err(|_| mismatch("this DECIMAL"))?;
                let p = spec.precision.unwrap_or(6);
                spec.number(if conv == 'f' { fixed(v, p) } else { scientific(v, p) })
            }
            ('c', Arg::Int(n, _)) => {
                char::from_u32(*n as u32).map(String::from).ok_or_else(|| mismatch("this code point"))?
            }
            ('c', Arg::Text(s)) if s.chars().count() == 1 => s.clone(),
            (_, Arg::Text(_)) => return Err(mismatch("a STRING")),
            (_, Arg::Bool(_)) => return Err(mismatch("a BOOLEAN")),
            (_, Arg::Double(_) | Arg::Decimal(_)) => return Err(mismatch("a non-integer number")),
            (_, Arg::Int(..)) => return Err(mismatch("an integer")),
        };
        // The precision cuts text conversions (and `null`), not numbers.
        let text = match (conv, spec.precision, arg) {
            ('s' | 'S' | 'b' | 'B', Some(p), _) | (_, Some(p), Arg::Null) => text.chars().take(p).collect(),
            _ => text,
        };
        let text = if conv.is_ascii_uppercase() { text.to_uppercase() } else { text };
        out.push_str(&spec.pad(text));
    }
    Ok(out)
}

fn printf(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let fmt = strings(&args[0])?;
    let mut out = Vec::with_capacity(fmt.len());
    for i in 0..fmt.len() {
        let Some(f) = str_at(&fmt, i) else {
            out.push(None);
            continue;
        };
        let row: Vec<Arg> = args[1..].iter().map(|a| arg_at(a, i)).collect::<Result<_>>()?;
        out.push(Some(format_row(f, &row).map_err(|e| exec_err("printf", e))?));
    }
    Ok(Arc::new(StringArray::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_java_does() {
        let args = [Arg::Text("ab".into()), Arg::Int(-1, false), Arg::Double(1.5), Arg::Null, Arg::Double(1e10)];
        let cases = [
            ("%s|%d|%5.2f|%x", "ab|-1| 1.50|null"),
            ("%x|%s|%b|%b|%%", "ffffffff|1.5|true|false|%"),
            ("%-4s|%04d|%.1f|%5.2f", "ab  |-001|1.5|   nu"),
            ("%S %+,d %e", "AB -1 1.500000e+00"),
        ];
        for (fmt, want) in cases {
            let row = if fmt.starts_with("%x") {
                [Arg::Int(-1, false), Arg::Double(1.5), Arg::Bool(true), Arg::Null]
            } else {
                [args[0].clone(), args[1].clone(), args[2].clone(), Arg::Null]
            };
            let got = format_row(fmt, &row).unwrap();
            assert_eq!(got, want, "{fmt}");
        }
        assert_eq!(format_row("%.3f %e", &args[4..]).unwrap_err(), "the format '%.3f %e' needs more arguments");
        assert_eq!(fixed(0.125, 2), "0.13");
        assert_eq!(fixed(-0.001, 2), "-0.00");
        assert_eq!(fixed(9.995, 2), "10.00");
        assert_eq!(scientific(1e10, 6), "1.000000e+10");
        assert_eq!(scientific(1e-5, 6), "1.000000e-05");
        assert_eq!(format_row("%d", &[Arg::Text("x".into())]).unwrap_err(), "%d cannot format a STRING");
    }
}
