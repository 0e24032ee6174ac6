//! Numbers as Java writes and reads them, which is how Flink's formats and
//! `CAST(... AS STRING)` show them. Verified against Flink 2.3's output (see
//! the tests here and the connectors' `tests/flink_formats.rs`):
//!
//! - FLOAT: `Float.toString`, the same layout with the shortest digits of
//!   the 32-bit value (`0.1`, `1.0E10`, `3.4028235E38`).
//! - DOUBLE: `Double.toString` — plain notation for 1e-3 <= |x| < 1e7 with at
//!   least one fractional digit (`1.0`, `0.001`, `123456.789`), otherwise
//!   `d.dddE[-]n` (`1.0E7`, `1.234E-5`, `4.9E-324`); `NaN`, `Infinity`.
//! - DECIMAL: `BigDecimal.toString` (scientific when the adjusted exponent is
//!   below -6: `1E-10`, `0E-10`); the json and csv formats first strip trailing
//!   zeros as Jackson's `JsonNodeFactory` does (`12.50` → `12.5`, `0.00` → `0`,
//!   `100.00` → `1E+2`).
//! - Reading: Java's `Boolean.parseBoolean`, `Float.parseFloat` and `Double.parseDouble`, and
//!   decimals rescaled with HALF_UP as Flink's `DecimalData.fromBigDecimal`.

use std::fmt::Write as _;

/// Appends Java's `Double.toString(v)`.
pub fn push_java_double(out: &mut Vec<u8>, v: f64, scratch: &mut String) {
    push_java_fp(out, v, scratch)
}

/// Appends Java's `Float.toString(v)`: the same layout as `Double.toString`,
/// with the shortest digits that round-trip as a 32-bit float (`0.1`, not the
/// widened double's `0.10000000149011612`; `3.4028235E38`, `1.4E-45`).
pub fn push_java_float(out: &mut Vec<u8>, v: f32, scratch: &mut String) {
    push_java_fp(out, v, scratch)
}

/// Java's `Float.toString` of `v`, as Flink prints FLOAT values.
pub fn java_float(v: f32) -> String {
    let mut out = Vec::new();
    push_java_float(&mut out, v, &mut String::new());
    String::from_utf8(out).unwrap_or_default()
}

/// A binary floating-point type, for the shared Java `toString` layout.
trait JavaFp: Copy + std::fmt::LowerExp + std::str::FromStr + PartialEq {
    fn is_nan(self) -> bool;
    fn is_infinite(self) -> bool;
    fn is_zero(self) -> bool;
    fn is_sign_negative(self) -> bool;
    fn abs(self) -> Self;
}

macro_rules! java_fp {
    ($t:ty) => {
        impl JavaFp for $t {
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn is_infinite(self) -> bool {
                <$t>::is_infinite(self)
            }
            fn is_zero(self) -> bool {
                self == 0.0
            }
            fn is_sign_negative(self) -> bool {
                <$t>::is_sign_negative(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
        }
    };
}
java_fp!(f32);
java_fp!(f64);

fn push_java_fp<F: JavaFp>(out: &mut Vec<u8>, v: F, scratch: &mut String) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v.is_sign_negative() { b"-Infinity" } else { b"Infinity" });
        return;
    }
    if v.is_zero() {
        out.extend_from_slice(if v.is_sign_negative() { b"-0.0" } else { b"0.0" });
        return;
    }
    if v.is_sign_negative() {
        out.push(b'-');
    }
    scratch.clear();
    // Rust prints the shortest digits that round-trip, as Java does since JDK 19.
    let _ = write!(scratch, "{:e}", v.abs());
    if !scratch.contains('.') {
        // One significant digit: Java prints two (`d.d`), choosing the two-digit
        // decimal closest to the exact value, which differs from `d.0` for
        // subnormals (Double.MIN_VALUE is `4.9E-324`, not `5.0E-324`).
        let shortest_len = scratch.len();
        let _ = write!(scratch, "|{:.1e}", v.abs());
        let two = scratch[shortest_len + 1..].to_string();
        scratch.truncate(shortest_len);
        if two.parse::<F>().ok() == Some(v.abs()) {
            scratch.clear();
            scratch.push_str(&two);
        }
    }
    let (mantissa, exp) = scratch.split_once('e').unwrap_or((scratch.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits = [0u8; 32];
    let mut n = 0;
    for b in mantissa.bytes().filter(u8::is_ascii_digit) {
        if n < digits.len() {
            digits[n] = b;
            n += 1;
        }
    }
    // The two-digit form of a one-digit value may end in a zero (`5.0`).
    while n > 1 && digits[n - 1] == b'0' {
        n -= 1;
    }
    let digits = &digits[..n];
    if (-3..7).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            for i in 0..int_len {
                out.push(*digits.get(i).unwrap_or(&b'0'));
            }
            out.push(b'.');
            if digits.len() > int_len {
                out.extend_from_slice(&digits[int_len..]);
            } else {
                out.push(b'0');
            }
        } else {
            out.extend_from_slice(b"0.");
            for _ in 0..(-exp - 1) {
                out.push(b'0');
            }
            out.extend_from_slice(digits);
        }
    } else {
        out.push(digits[0]);
        out.push(b'.');
        if digits.len() > 1 {
            out.extend_from_slice(&digits[1..]);
        } else {
            out.push(b'0');
        }
        out.push(b'E');
        push_i64(out, i64::from(exp));
    }
}

/// Java's `Double.toString` of `v`, as Flink prints DOUBLE values.
pub fn java_double(v: f64) -> String {
    let mut out = Vec::new();
    push_java_double(&mut out, v, &mut String::new());
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the decimal digits of `v`, as Java's `Long.toString`.
#[inline]
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let neg = v < 0;
    let mut u = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if neg {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

fn u128_digits(v: u128, buf: &mut [u8; 40]) -> &[u8] {
    let mut i = buf.len();
    let mut u = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Appends Java's `BigDecimal.toString()` of `unscaled × 10^-scale`.
pub fn push_big_decimal(out: &mut Vec<u8>, unscaled: i128, scale: i32) {
    let mut buf = [0u8; 40];
    let digits = u128_digits(unscaled.unsigned_abs(), &mut buf);
    if unscaled < 0 {
        out.push(b'-');
    }
    let len = digits.len() as i64;
    let adjusted = -i64::from(scale) + (len - 1);
    if scale >= 0 && adjusted >= -6 {
        let scale = scale as i64;
        if scale == 0 {
            out.extend_from_slice(digits);
        } else if len > scale {
            let point = (len - scale) as usize;
            out.extend_from_slice(&digits[..point]);
            out.push(b'.');
            out.extend_from_slice(&digits[point..]);
        } else {
            out.extend_from_slice(b"0.");
            for _ in 0..(scale - len) {
                out.push(b'0');
            }
            out.extend_from_slice(digits);
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        if adjusted != 0 {
            out.push(b'E');
            if adjusted > 0 {
                out.push(b'+');
            }
            push_i64(out, adjusted);
        }
    }
}

/// Appends Java's `BigDecimal.toPlainString()`.
pub fn push_big_decimal_plain(out: &mut Vec<u8>, unscaled: i128, scale: i32) {
    let mut buf = [0u8; 40];
    let digits = u128_digits(unscaled.unsigned_abs(), &mut buf);
    if unscaled < 0 {
        out.push(b'-');
    }
    if scale <= 0 {
        out.extend_from_slice(digits);
        if unscaled != 0 {
            for _ in 0..(-scale) {
                out.push(b'0');
            }
        }
        return;
    }
    let len = digits.len() as i64;
    let scale = i64::from(scale);
    if len > scale {
        let point = (len - scale) as usize;
        out.extend_from_slice(&digits[..point]);
        out.push(b'.');
        out.extend_from_slice(&digits[point..]);
    } else {
        out.extend_from_slice(b"0.");
        for _ in 0..(scale - len) {
            out.push(b'0');
        }
        out.extend_from_slice(digits);
    }
}

/// Jackson's `JsonNodeFactory.numberNode(BigDecimal)` normalization: zero
/// becomes `0` (scale 0), anything else loses its trailing zeros.
pub fn strip_trailing_zeros(mut unscaled: i128, mut scale: i32) -> (i128, i32) {
    if unscaled == 0 {
        return (0, 0);
    }
    while unscaled % 10 == 0 {
        unscaled /= 10;
        scale -= 1;
    }
    (unscaled, scale)
}

#[cfg(test)]
fn big_decimal(unscaled: i128, scale: i32) -> String {
    let mut out = Vec::new();
    push_big_decimal(&mut out, unscaled, scale);
    String::from_utf8(out).unwrap_or_default()
}

/// Java's `Boolean.parseBoolean`: "true" in any case is true, anything else false.
pub fn java_parse_boolean(s: &str) -> bool {
    s.eq_ignore_ascii_case("true")
}

/// Java's `Double.parseDouble` (after trimming): decimal and exponent forms,
/// `NaN`, `[+-]Infinity`, and an optional `d`/`f` suffix.
pub fn java_parse_double(s: &str) -> Option<f64> {
    let s = s.trim();
    match s {
        "NaN" | "+NaN" | "-NaN" => return Some(f64::NAN),
        "Infinity" | "+Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let s = s.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(s);
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')) {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Java's `Float.parseFloat` (after trimming): as [`java_parse_double`], but
/// rounded once, straight to the nearest 32-bit float.
pub fn java_parse_float(s: &str) -> Option<f32> {
    let s = s.trim();
    match s {
        "NaN" | "+NaN" | "-NaN" => return Some(f32::NAN),
        "Infinity" | "+Infinity" => return Some(f32::INFINITY),
        "-Infinity" => return Some(f32::NEG_INFINITY),
        _ => {}
    }
    let s = s.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(s);
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')) {
        return None;
    }
    s.parse::<f32>().ok()
}

/// Text that [`parse_decimal`] cannot read as a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotADecimal(pub String);

impl std::fmt::Display for NotADecimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "'{}' is not a decimal number", self.0)
    }
}

impl std::error::Error for NotADecimal {}

/// Parses a decimal number (`[+-]digits[.digits][e[+-]digits]`) and rescales it
/// to `scale` with HALF_UP rounding, as Flink's `DecimalData.fromBigDecimal`
/// does. `Ok(None)` means the value does not fit `precision` (Flink makes it
/// NULL).
pub fn parse_decimal(s: &str, precision: u8, scale: i8) -> Result<Option<i128>, NotADecimal> {
    let bad = || NotADecimal(s.to_string());
    let t = s.trim();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|c| c.is_ascii_digit())
        || !frac_part.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    // value = digits × 10^(exp - frac_len); we want unscaled = value × 10^scale.
    let shift = exp - frac_part.len() as i32 + i32::from(scale);
    let limit = 10i128.pow(u32::from(precision.min(38)));
    let mut unscaled: i128 = 0;
    let mut round_digit: u8 = 0; // first dropped digit, for HALF_UP
    let digits = int_part.bytes().chain(frac_part.bytes());
    let total = int_part.len() + frac_part.len();
    // Keep total + shift digits (when shift < 0 the last -shift digits are dropped).
    let keep = total as i64 + i64::from(shift.min(0));
    for (i, c) in digits.enumerate() {
        let d = c - b'0';
        if (i as i64) < keep {
            unscaled = match unscaled.checked_mul(10).and_then(|u| u.checked_add(i128::from(d))) {
                Some(u) if u < limit * 10 => u,
                _ => return Ok(None),
            };
        } else if i as i64 == keep {
            round_digit = d;
        }
    }
    for _ in 0..shift.max(0) {
        unscaled = match unscaled.checked_mul(10) {
            Some(u) if u < limit * 10 => u,
            _ => return Ok(None),
        };
    }
    if round_digit >= 5 {
        unscaled += 1;
    }
    if unscaled >= limit {
        return Ok(None);
    }
    Ok(Some(if neg { -unscaled } else { unscaled }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn doubles_print_like_java() {
        let table: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (0.5, "0.5"),
            (1.0e7, "1.0E7"),
            (9_999_999.0, "9999999.0"),
            (1.234e-5, "1.234E-5"),
            (0.001, "0.001"),
            (0.002, "0.002"),
            (0.000_999, "9.99E-4"),
            (123_456.789, "123456.789"),
            (100.0, "100.0"),
            (1.0e21, "1.0E21"),
            (4.9e-324, "4.9E-324"),
            (-3.25, "-3.25"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.7976931348623157e308, "1.7976931348623157E308"),
            (12_345_678.9, "1.23456789E7"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (v, want) in table {
            assert_eq!(java_double(*v), *want, "for {v:e}");
        }
    }

    #[test]
    fn floats_print_like_java() {
        let table: &[(f32, &str)] = &[
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1.0, "1.0"),
            (1.0e10, "1.0E10"),
            (1.0e7, "1.0E7"),
            (9_999_999.0, "9999999.0"),
            (0.001, "0.001"),
            (3.402_823_5e38, "3.4028235E38"),
            (1.175_494_4e-38, "1.1754944E-38"),
            (1.4e-45, "1.4E-45"),
            (-2.5, "-2.5"),
            (-0.0, "-0.0"),
            (16_777_216.0, "1.6777216E7"),
            (f32::NAN, "NaN"),
            (f32::NEG_INFINITY, "-Infinity"),
        ];
        for (v, want) in table {
            assert_eq!(java_float(*v), *want, "for {v:e}");
        }
    }

    #[test]
    fn floats_parse_like_java() {
        assert_eq!(java_parse_float(" 0.1 "), Some(0.1f32));
        assert_eq!(java_parse_float("1e10"), Some(1.0e10f32));
        assert_eq!(java_parse_float("3.4028235E38"), Some(f32::MAX));
        assert_eq!(java_parse_float("1e39"), Some(f32::INFINITY));
        assert_eq!(java_parse_float("1.5f"), Some(1.5));
        assert_eq!(java_parse_float("abc"), None);
    }

    #[test]
    fn decimals_print_like_java_big_decimal() {
        assert_eq!(big_decimal(1250, 2), "12.50");
        assert_eq!(big_decimal(0, 2), "0.00");
        assert_eq!(big_decimal(1, 10), "1E-10");
        assert_eq!(big_decimal(0, 10), "0E-10");
        assert_eq!(big_decimal(1000, 10), "1.000E-7");
        assert_eq!(big_decimal(1_234_560_000_000, 10), "123.4560000000");
        assert_eq!(big_decimal(-314, 2), "-3.14");
        assert_eq!(big_decimal(1, -2), "1E+2");
        assert_eq!(big_decimal(1, 6), "0.000001");
        assert_eq!(big_decimal(1, 7), "1E-7");
        let (u, sc) = strip_trailing_zeros(10_000, 2);
        assert_eq!(big_decimal(u, sc), "1E+2");
        let (u, sc) = strip_trailing_zeros(1250, 2);
        assert_eq!(big_decimal(u, sc), "12.5");
        assert_eq!(strip_trailing_zeros(0, 2), (0, 0));
        assert_eq!(s(|o| push_big_decimal_plain(o, 1, -2)), "100");
        assert_eq!(s(|o| push_big_decimal_plain(o, 1, 10)), "0.0000000001");
        assert_eq!(s(|o| push_big_decimal_plain(o, -1234, 2)), "-12.34");
    }

    #[test]
    fn decimals_parse_and_round_half_up() {
        assert_eq!(parse_decimal("12.5", 10, 2), Ok(Some(1250)));
        assert_eq!(parse_decimal("1.005", 5, 2), Ok(Some(101)));
        assert_eq!(parse_decimal("-1.005", 5, 2), Ok(Some(-101)));
        assert_eq!(parse_decimal("1.004", 5, 2), Ok(Some(100)));
        assert_eq!(parse_decimal("1E+2", 5, 2), Ok(Some(10000)));
        assert_eq!(parse_decimal("1e-10", 20, 10), Ok(Some(1)));
        assert_eq!(parse_decimal(" 7 ", 3, 0), Ok(Some(7)));
        assert_eq!(parse_decimal(".5", 3, 1), Ok(Some(5)));
        assert_eq!(parse_decimal("123456.789", 5, 2), Ok(None));
        assert_eq!(parse_decimal("999.995", 5, 2), Ok(None));
        assert_eq!(parse_decimal("abc", 5, 2).unwrap_err().to_string(), "'abc' is not a decimal number");
        assert!(parse_decimal("", 5, 2).is_err());
    }

    #[test]
    fn doubles_parse_like_java() {
        assert_eq!(java_parse_double(" 1.5 "), Some(1.5));
        assert_eq!(java_parse_double("1e3"), Some(1000.0));
        assert_eq!(java_parse_double("2d"), Some(2.0));
        assert_eq!(java_parse_double("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(java_parse_double("NaN").is_some_and(f64::is_nan));
        assert_eq!(java_parse_double("inf"), None);
        assert_eq!(java_parse_double(""), None);
    }
}
