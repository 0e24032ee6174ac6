//! Text forms of values exactly as Apache Flink (that is, Java and Jackson)
//! writes them. Verified against Flink 2.3's output (see the crate's tests):
//!
//! - DOUBLE: `Double.toString` — plain notation for 1e-3 <= |x| < 1e7 with at
//!   least one fractional digit (`1.0`, `0.001`, `123456.789`), otherwise
//!   `d.dddE[-]n` (`1.0E7`, `1.234E-5`, `4.9E-324`); `NaN`, `Infinity`.
//! - DECIMAL: `BigDecimal.toString` (scientific when the adjusted exponent is
//!   below -6: `1E-10`, `0E-10`); the json and csv formats first strip trailing
//!   zeros as Jackson's `JsonNodeFactory` does (`12.50` → `12.5`, `0.00` → `0`,
//!   `100.00` → `1E+2`).
//! - TIMESTAMP(3) in json/csv: `yyyy-MM-dd HH:mm:ss` plus `.fff` with trailing
//!   zeros trimmed and no point when the fraction is zero (Flink's
//!   `SQL_TIMESTAMP_FORMAT`); TIMESTAMP_LTZ(3) the same in UTC with a `Z`.
//! - In `Row.toString` (the print sink): TIMESTAMP(3) is `LocalDateTime.toString`
//!   (`2024-01-01T00:00`, `2024-01-01T00:00:10`, `2024-01-01T00:00:10.500`) and
//!   TIMESTAMP_LTZ(3) is `Instant.toString` (`2024-01-01T00:00:10.500Z`).

use std::fmt::Write as _;

/// Appends Java's `Double.toString(v)`.
pub(crate) fn push_java_double(out: &mut Vec<u8>, v: f64, scratch: &mut String) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"Infinity" } else { b"-Infinity" });
        return;
    }
    if v == 0.0 {
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
        if two.parse::<f64>().ok() == Some(v.abs()) {
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

#[inline]
pub(crate) fn push_i64(out: &mut Vec<u8>, v: i64) {
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
pub(crate) fn push_big_decimal(out: &mut Vec<u8>, unscaled: i128, scale: i32) {
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
pub(crate) fn push_big_decimal_plain(out: &mut Vec<u8>, unscaled: i128, scale: i32) {
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
pub(crate) fn strip_trailing_zeros(mut unscaled: i128, mut scale: i32) -> (i128, i32) {
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
pub(crate) fn big_decimal(unscaled: i128, scale: i32) -> String {
    let mut out = Vec::new();
    push_big_decimal(&mut out, unscaled, scale);
    String::from_utf8(out).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Dates and times (proleptic Gregorian, UTC millis).

/// Days since 1970-01-01 → (year, month, day). Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
}

fn parts(epoch_millis: i64) -> Parts {
    let days = epoch_millis.div_euclid(86_400_000);
    let ms_of_day = epoch_millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let secs = (ms_of_day / 1000) as u32;
    Parts {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
        millis: (ms_of_day % 1000) as u32,
    }
}

#[inline]
fn push2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

/// `ISO_LOCAL_DATE`: four-digit years, a sign beyond 9999 or before year 0.
fn push_date(out: &mut Vec<u8>, p: &Parts) {
    if (0..=9999).contains(&p.year) {
        let y = p.year as u32;
        push2(out, y / 100);
        push2(out, y % 100);
    } else {
        if p.year > 9999 {
            out.push(b'+');
        } else {
            out.push(b'-');
        }
        let a = p.year.unsigned_abs();
        let s = format!("{a:04}");
        out.extend_from_slice(s.as_bytes());
    }
    out.push(b'-');
    push2(out, p.month);
    out.push(b'-');
    push2(out, p.day);
}

/// Flink's `SQL_TIMESTAMP_FORMAT` (`sep` = ' ') or `ISO_LOCAL_DATE_TIME`
/// (`sep` = 'T'): seconds always, the fraction only when non-zero, trimmed.
pub(crate) fn push_sql_timestamp(out: &mut Vec<u8>, epoch_millis: i64, sep: u8) {
    let p = parts(epoch_millis);
    push_date(out, &p);
    out.push(sep);
    push2(out, p.hour);
    out.push(b':');
    push2(out, p.minute);
    out.push(b':');
    push2(out, p.second);
    if p.millis != 0 {
        out.push(b'.');
        let mut m = p.millis;
        let mut digits = 3;
        while m.is_multiple_of(10) {
            m /= 10;
            digits -= 1;
        }
        let mut buf = [0u8; 3];
        let mut v = m;
        for i in (0..digits).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend_from_slice(&buf[..digits]);
    }
}

/// Java's `LocalDateTime.toString()` for a millisecond timestamp.
pub(crate) fn push_local_date_time(out: &mut Vec<u8>, epoch_millis: i64) {
    let p = parts(epoch_millis);
    push_date(out, &p);
    out.push(b'T');
    push2(out, p.hour);
    out.push(b':');
    push2(out, p.minute);
    if p.second != 0 || p.millis != 0 {
        out.push(b':');
        push2(out, p.second);
        if p.millis != 0 {
            push_millis3(out, p.millis);
        }
    }
}

/// Java's `Instant.toString()` for a millisecond instant.
pub(crate) fn push_instant(out: &mut Vec<u8>, epoch_millis: i64) {
    let p = parts(epoch_millis);
    push_date(out, &p);
    out.push(b'T');
    push2(out, p.hour);
    out.push(b':');
    push2(out, p.minute);
    out.push(b':');
    push2(out, p.second);
    if p.millis != 0 {
        push_millis3(out, p.millis);
    }
    out.push(b'Z');
}

fn push_millis3(out: &mut Vec<u8>, millis: u32) {
    out.push(b'.');
    out.push(b'0' + (millis / 100) as u8);
    out.push(b'0' + (millis / 10 % 10) as u8);
    out.push(b'0' + (millis % 10) as u8);
}

/// Parses `yyyy-MM-dd[ T]HH:mm[:ss[.fffffffff]]` with an optional trailing
/// `Z` (or `+00:00`-style offset). Returns epoch millis (fraction truncated to
/// milliseconds) and whether a zone was given. The local date-time is read as
/// UTC.
pub(crate) fn parse_timestamp(s: &str) -> Option<(i64, bool)> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        let mut v = 0u32;
        for &c in part {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let year = num(0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = num(5, 2)?;
    let day = num(8, 2)?;
    if !matches!(b.get(10), Some(b' ') | Some(b'T')) {
        return None;
    }
    let hour = num(11, 2)?;
    if b.get(13) != Some(&b':') {
        return None;
    }
    let minute = num(14, 2)?;
    let mut i = 16;
    let mut second = 0;
    let mut millis = 0;
    if b.get(i) == Some(&b':') {
        second = num(i + 1, 2)?;
        i += 3;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 3 {
                    millis = millis * 10 + u32::from(b[i] - b'0');
                }
                i += 1;
            }
            let n = i - start;
            if n > 9 {
                return None;
            }
            for _ in n..3 {
                millis *= 10;
            }
        }
    }
    let mut zoned = false;
    let mut offset_secs: i64 = 0;
    match &b[i.min(b.len())..] {
        [] => {}
        [b'Z'] | [b'z'] => zoned = true,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let rest = std::str::from_utf8(rest).ok()?;
            let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
            let h: i64 = h.parse().ok()?;
            let m: i64 = m.parse().ok()?;
            offset_secs = (h * 3600 + m * 60) * if *sign == b'-' { -1 } else { 1 };
            zoned = true;
        }
        _ => return None,
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(i64::from(year), month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    Some((secs * 1000 + i64::from(millis), zoned))
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
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
    fn timestamps_print_like_flink() {
        let t = 1_704_067_210_000; // 2024-01-01 00:00:10 UTC
        assert_eq!(s(|o| push_sql_timestamp(o, t, b' ')), "2024-01-01 00:00:10");
        assert_eq!(s(|o| push_sql_timestamp(o, t + 500, b' ')), "2024-01-01 00:00:10.5");
        assert_eq!(s(|o| push_sql_timestamp(o, t + 120, b' ')), "2024-01-01 00:00:10.12");
        assert_eq!(s(|o| push_sql_timestamp(o, t + 123, b'T')), "2024-01-01T00:00:10.123");
        assert_eq!(s(|o| push_sql_timestamp(o, -1, b' ')), "1969-12-31 23:59:59.999");
        assert_eq!(s(|o| push_local_date_time(o, t)), "2024-01-01T00:00:10");
        assert_eq!(s(|o| push_local_date_time(o, t - 10_000)), "2024-01-01T00:00");
        assert_eq!(s(|o| push_local_date_time(o, t + 500)), "2024-01-01T00:00:10.500");
        assert_eq!(s(|o| push_instant(o, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(s(|o| push_instant(o, t + 120)), "2024-01-01T00:00:10.120Z");
    }

    #[test]
    fn timestamps_parse_in_flink_and_iso_forms() {
        let t = 1_704_067_210_000;
        assert_eq!(parse_timestamp("2024-01-01 00:00:10"), Some((t, false)));
        assert_eq!(parse_timestamp("2024-01-01 00:00:10.5"), Some((t + 500, false)));
        assert_eq!(parse_timestamp("2024-01-01 00:00:10.123"), Some((t + 123, false)));
        assert_eq!(parse_timestamp("2024-01-01 00:00:10.123456"), Some((t + 123, false)));
        assert_eq!(parse_timestamp("2024-01-01T00:00:10"), Some((t, false)));
        assert_eq!(parse_timestamp("2024-01-01 00:00:10Z"), Some((t, true)));
        assert_eq!(parse_timestamp("2024-01-01T02:00:10+02:00"), Some((t, true)));
        assert_eq!(parse_timestamp("2024-01-01 00:00"), Some((t - 10_000, false)));
        assert_eq!(parse_timestamp("2024-02-30 00:00:00"), None);
        assert_eq!(parse_timestamp("2024-01-01"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2024-01-01 00:00:10 junk"), None);
    }

    #[test]
    fn civil_round_trips() {
        for d in [-800_000i64, -1, 0, 1, 19_723, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }
}
