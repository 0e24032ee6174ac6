//! Timestamps as Flink writes and reads them (proleptic Gregorian calendar,
//! milliseconds since the epoch in UTC). Verified against Flink 2.3's output:
//!
//! - TIMESTAMP(3) in json/csv: `yyyy-MM-dd HH:mm:ss` plus `.fff` with trailing
//!   zeros trimmed and no point when the fraction is zero (Flink's
//!   `SQL_TIMESTAMP_FORMAT`); TIMESTAMP_LTZ(3) the same in UTC with a `Z`.
//! - In `Row.toString` (the print sink): TIMESTAMP(3) is `LocalDateTime.toString`
//!   (`2024-01-01T00:00`, `2024-01-01T00:00:10`, `2024-01-01T00:00:10.500`) and
//!   TIMESTAMP_LTZ(3) is `Instant.toString` (`2024-01-01T00:00:10.500Z`).

/// Days since 1970-01-01 → (year, month, day). Howard Hinnant's algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
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
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
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

/// Appends a DATE (days since 1970-01-01) as `LocalDate.toString`, which is
/// how Flink's print, csv and json show it: `2024-01-01`.
pub fn push_local_date(out: &mut Vec<u8>, epoch_days: i32) {
    let (year, month, day) = civil_from_days(i64::from(epoch_days));
    push_date(out, &Parts { year, month, day, hour: 0, minute: 0, second: 0, millis: 0 });
}

/// Parses a DATE as Flink's formats do: `yyyy-MM-dd` (json's
/// `ISO_LOCAL_DATE`), or with `lenient` also one-digit months and days (csv's
/// `java.sql.Date.valueOf`, `yyyy-[m]m-[d]d`). Returns days since 1970-01-01.
pub fn parse_date(s: &str, lenient: bool) -> Option<i32> {
    let mut it = s.split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || y.len() != 4 {
        return None;
    }
    let two = |p: &str| if lenient { (1..=2).contains(&p.len()) } else { p.len() == 2 };
    if !two(m) || !two(d) || ![y, m, d].iter().all(|p| p.bytes().all(|c| c.is_ascii_digit())) {
        return None;
    }
    let (year, month, day): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    i32::try_from(days_from_civil(year, month, day)).ok()
}

/// Flink's `SQL_TIMESTAMP_FORMAT` (`sep` = ' ') or `ISO_LOCAL_DATE_TIME`
/// (`sep` = 'T'): seconds always, the fraction only when non-zero, trimmed.
pub fn push_sql_timestamp(out: &mut Vec<u8>, epoch_millis: i64, sep: u8) {
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
pub fn push_local_date_time(out: &mut Vec<u8>, epoch_millis: i64) {
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
pub fn push_instant(out: &mut Vec<u8>, epoch_millis: i64) {
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
pub fn parse_timestamp(s: &str) -> Option<(i64, bool)> {
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

    #[test]
    fn dates_print_and_parse_as_flink() {
        let show = |d: i32| {
            let mut v = Vec::new();
            push_local_date(&mut v, d);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(show(0), "1970-01-01");
        assert_eq!(show(-1), "1969-12-31");
        assert_eq!(show(19_782), "2024-02-29");
        assert_eq!(show(2_932_896), "9999-12-31");
        assert_eq!(parse_date("2024-02-29", false), Some(19_782));
        assert_eq!(parse_date("0001-01-01", false), Some(-719_162));
        assert_eq!(parse_date("2024-2-29", false), None);
        assert_eq!(parse_date("2024-2-29", true), Some(19_782));
        assert_eq!(parse_date("2023-02-29", true), None);
        assert_eq!(parse_date("2024-01-01 00:00", true), None);
        assert_eq!(parse_date("24-01-01", true), None);
    }
}
