//! Flink's temporal functions over TIMESTAMP(3) and TIMESTAMP_LTZ(3).
//!
//! - `TIMESTAMPDIFF(unit, t1, t2)`: INT, `t2 - t1` in whole units, truncated
//!   toward zero; MONTH, QUARTER and YEAR count calendar months as Calcite's
//!   `DateTimeUtils.subtractMonths` does.
//! - `TIMESTAMPADD(unit, n, t)`: `t` plus `n` units, of `t`'s type; adding
//!   months keeps the day of month, clamped to the month's last day.
//! - `UNIX_TIMESTAMP()`: BIGINT epoch seconds now; `UNIX_TIMESTAMP(str [, format])`
//!   parses `str` (default `yyyy-MM-dd HH:mm:ss`) in the session time zone.
//! - `FROM_UNIXTIME(seconds [, format])`: STRING, the wall-clock time of an
//!   epoch second in the session time zone (default `yyyy-MM-dd HH:mm:ss`).
//! - `DAYOFWEEK(t)`: BIGINT, 1 for Sunday to 7 for Saturday.
//! - `CONVERT_TZ(str, from_tz, to_tz)`: STRING `yyyy-MM-dd HH:mm:ss`.
//! - `LOCALTIMESTAMP`: TIMESTAMP(3), the wall-clock time in the session time zone.
//! - `CURRENT_DATE`: DATE, today in the session time zone.
//!
//! TIMESTAMPDIFF and TIMESTAMPADD count the months of a TIMESTAMP_LTZ in UTC,
//! as Flink does; DAYOFWEEK reads it in the session time zone. A wall-clock
//! time that a DST gap skips is read with the offset before the gap, as Java does.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int64Array, StringBuilder, TimestampMillisecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use datafusion_common::{Result, ScalarValue};

use super::java_to_chrono;
use super::udf::{Ctx, Def, is_integer, is_string, is_timestamp, long_at, longs, str_at, strings};

pub const DEFS: &[Def] = &[
    Def {
        name: "timestampdiff",
        usage: "(unit, timestamp1, timestamp2)",
        min_args: 3,
        max_args: 3,
        volatile: false,
        ret: ret_timestampdiff,
        eval: timestampdiff,
    },
    Def {
        name: "timestampadd",
        usage: "(unit, count, timestamp)",
        min_args: 3,
        max_args: 3,
        volatile: false,
        ret: ret_timestampadd,
        eval: timestampadd,
    },
    Def {
        name: "unix_timestamp",
        usage: "([string [, format]])",
        min_args: 0,
        max_args: 2,
        volatile: true,
        ret: ret_unix_timestamp,
        eval: unix_timestamp,
    },
    Def {
        name: "from_unixtime",
        usage: "(epoch seconds [, format])",
        min_args: 1,
        max_args: 2,
        volatile: false,
        ret: ret_from_unixtime,
        eval: from_unixtime,
    },
    Def {
        name: "dayofweek",
        usage: "(timestamp)",
        min_args: 1,
        max_args: 1,
        volatile: false,
        ret: ret_dayofweek,
        eval: dayofweek,
    },
    Def {
        name: "convert_tz",
        usage: "(string, from_time_zone, to_time_zone)",
        min_args: 3,
        max_args: 3,
        volatile: false,
        ret: ret_convert_tz,
        eval: convert_tz,
    },
    Def {
        name: LOCALTIMESTAMP,
        usage: "no arguments",
        min_args: 0,
        max_args: 0,
        volatile: true,
        ret: |_, _, _, _| Ok(DataType::Timestamp(TimeUnit::Millisecond, None)),
        eval: localtimestamp,
    },
    Def {
        name: "current_date",
        usage: "no arguments",
        min_args: 0,
        max_args: 0,
        volatile: true,
        ret: |_, _, _, _| Ok(DataType::Date32),
        eval: current_date,
    },
];

/// The function `LOCALTIMESTAMP` (written without parentheses) is planned as.
pub const LOCALTIMESTAMP: &str = "localtimestamp";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Unit {
    fn parse(s: &str) -> Option<Unit> {
        Some(match s.to_ascii_uppercase().as_str() {
            "SECOND" => Unit::Second,
            "MINUTE" => Unit::Minute,
            "HOUR" => Unit::Hour,
            "DAY" => Unit::Day,
            "WEEK" => Unit::Week,
            "MONTH" => Unit::Month,
            "QUARTER" => Unit::Quarter,
            "YEAR" => Unit::Year,
            _ => return None,
        })
    }

    /// Milliseconds in one unit, or the months in one unit as `Err`.
    fn size(self) -> std::result::Result<i64, i32> {
        match self {
            Unit::Second => Ok(1_000),
            Unit::Minute => Ok(60_000),
            Unit::Hour => Ok(3_600_000),
            Unit::Day => Ok(86_400_000),
            Unit::Week => Ok(7 * 86_400_000),
            Unit::Month => Err(1),
            Unit::Quarter => Err(3),
            Unit::Year => Err(12),
        }
    }
}

/// Checks the unit argument, which the front end passes as a string literal.
fn check_unit(d: &Def, scalars: &[Option<&ScalarValue>]) -> Result<()> {
    let unit = match scalars.first() {
        Some(Some(ScalarValue::Utf8(Some(u)))) => u.clone(),
        // Argument types are checked before the constants are known.
        None => return Ok(()),
        _ => return Err(d.err("takes a time unit (SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER, YEAR) first")),
    };
    match Unit::parse(&unit) {
        Some(_) => Ok(()),
        None => Err(d.err(format_args!(
            "does not support the unit {unit}: use SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER or YEAR"
        ))),
    }
}

fn ret_timestampdiff(d: &Def, args: &[DataType], scalars: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    check_unit(d, scalars)?;
    d.expect(args, 1, "a TIMESTAMP", is_timestamp)?;
    d.expect(args, 2, "a TIMESTAMP", is_timestamp)?;
    Ok(DataType::Int32)
}

fn ret_timestampadd(d: &Def, args: &[DataType], scalars: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    check_unit(d, scalars)?;
    d.expect(args, 1, "an integer count", is_integer)?;
    d.expect(args, 2, "a TIMESTAMP", is_timestamp)?;
    Ok(match &args[2] {
        DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Millisecond, tz.clone()),
        _ => DataType::Timestamp(TimeUnit::Millisecond, None),
    })
}

fn ret_unix_timestamp(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "a STRING", is_string)?;
    d.expect(args, 1, "a STRING format", is_string)?;
    Ok(DataType::Int64)
}

fn ret_from_unixtime(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "an integer number of seconds", is_integer)?;
    d.expect(args, 1, "a STRING format", is_string)?;
    Ok(DataType::Utf8)
}

fn ret_dayofweek(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "a TIMESTAMP", is_timestamp)?;
    Ok(DataType::Int64)
}

fn ret_convert_tz(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    for i in 0..3 {
        d.expect(args, i, "a STRING", is_string)?;
    }
    Ok(DataType::Utf8)
}

/// A timestamp argument as epoch milliseconds, with the zone its wall-clock
/// fields are read in: UTC for TIMESTAMP; for TIMESTAMP_LTZ, the session zone
/// when `local` (DAYOFWEEK), else UTC, as Flink's TIMESTAMPDIFF and
/// TIMESTAMPADD count months of an instant.
fn millis(a: &ArrayRef, session_tz: &str, local: bool) -> Result<(TimestampMillisecondArray, String)> {
    let zone = match a.data_type() {
        DataType::Timestamp(_, Some(_)) if local => session_tz.to_string(),
        _ => "UTC".to_string(),
    };
    let plain = cast(a, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
    Ok((plain.as_primitive::<TimestampMillisecondType>().clone(), zone))
}

/// Epoch milliseconds as the wall-clock time in `zone`.
fn wall_clock(ms: i64, zone: &str) -> Option<NaiveDateTime> {
    let utc = DateTime::from_timestamp_millis(ms)?.naive_utc();
    Some(match parse_zone(zone) {
        Zone::Named(tz) => tz.from_utc_datetime(&utc).naive_local(),
        Zone::Fixed(off) => off.from_utc_datetime(&utc).naive_local(),
    })
}

/// Wall-clock time in `zone` as epoch milliseconds; a time that a DST gap
/// skips is taken with the offset before the gap, as Java does.
fn epoch_millis(t: NaiveDateTime, zone: &str) -> Option<i64> {
    let offset_secs = match parse_zone(zone) {
        Zone::Named(tz) => match tz.offset_from_local_datetime(&t) {
            chrono::LocalResult::Single(o) | chrono::LocalResult::Ambiguous(o, _) => o.fix().local_minus_utc(),
            // DST transitions are months apart: a day earlier is before the gap.
            chrono::LocalResult::None => {
                tz.offset_from_utc_datetime(&(t - chrono::Duration::days(1))).fix().local_minus_utc()
            }
        },
        Zone::Fixed(off) => off.local_minus_utc(),
    };
    Some(t.and_utc().timestamp_millis() - i64::from(offset_secs) * 1000)
}

enum Zone {
    Named(chrono_tz::Tz),
    Fixed(chrono::FixedOffset),
}

/// A Java time zone ID: a region (`Europe/Paris`), `UTC`, or `GMT+08:00`.
/// Java reads an unknown ID as GMT, and so does this.
fn parse_zone(s: &str) -> Zone {
    if let Ok(tz) = s.parse::<chrono_tz::Tz>() {
        return Zone::Named(tz);
    }
    let fixed = ["GMT", "UTC"].iter().find_map(|p| s.strip_prefix(p)).and_then(|rest| {
        let (sign, rest) = match rest.chars().next()? {
            '+' => (1, &rest[1..]),
            '-' => (-1, &rest[1..]),
            _ => return None,
        };
        let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
        let secs = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
        chrono::FixedOffset::east_opt(sign * secs)
    });
    match fixed {
        Some(off) => Zone::Fixed(off),
        None => Zone::Named(chrono_tz::UTC),
    }
}

fn add_months(d: NaiveDate, m: i32) -> Option<NaiveDate> {
    if m >= 0 {
        d.checked_add_months(Months::new(m as u32))
    } else {
        d.checked_sub_months(Months::new(m.unsigned_abs()))
    }
}

/// Whole months from `d1` to `d0` (Calcite's `subtractMonths(int, int)`).
fn months_between_dates(d0: NaiveDate, d1: NaiveDate) -> Option<i32> {
    if d0 < d1 {
        return months_between_dates(d1, d0).map(|m| -m);
    }
    // No month has more than 31 days, so this never overshoots.
    let mut m = i32::try_from((d0 - d1).num_days() / 31).ok()?;
    loop {
        if add_months(d1, m)? >= d0 || add_months(d1, m + 1)? > d0 {
            return Some(m);
        }
        m += 1;
    }
}

/// Whole months from `t1` to `t0` (Calcite's `subtractMonths(long, long)`).
fn months_between(t0: NaiveDateTime, t1: NaiveDateTime) -> Option<i32> {
    let mut x = months_between_dates(t0.date(), t1.date())?;
    if add_months(t1.date(), x)? == t0.date() && t0.time() < t1.time() {
        x -= 1;
    }
    Some(x)
}

fn unit_arg(a: &ArrayRef) -> Result<Vec<Option<Unit>>> {
    let s = strings(a)?;
    Ok((0..s.len()).map(|i| str_at(&s, i).and_then(Unit::parse)).collect())
}

fn timestampdiff(ctx: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let units = unit_arg(&args[0])?;
    let (t1, z1) = millis(&args[1], ctx.tz, false)?;
    let (t2, z2) = millis(&args[2], ctx.tz, false)?;
    let out: Int32Array = (0..t1.len())
        .map(|i| {
            let unit = units[i]?;
            if t1.is_null(i) || t2.is_null(i) {
                return None;
            }
            let (a, b) = (t1.value(i), t2.value(i));
            match unit.size() {
                // Java's narrowing of the long difference to INT.
                Ok(ms) => Some(((b - a) / ms) as i32),
                Err(months) => months_between(wall_clock(b, &z2)?, wall_clock(a, &z1)?).map(|m| m / months),
            }
        })
        .collect();
    Ok(Arc::new(out))
}

fn timestampadd(ctx: &Ctx, args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let units = unit_arg(&args[0])?;
    let n = longs(&args[1])?;
    let (t, zone) = millis(&args[2], ctx.tz, false)?;
    let out: TimestampMillisecondArray = (0..t.len())
        .map(|i| {
            let (unit, n) = (units[i]?, long_at(&n, i)?);
            let ms = (!t.is_null(i)).then(|| t.value(i))?;
            match unit.size() {
                Ok(size) => ms.checked_add(n.checked_mul(size)?),
                Err(months) => {
                    let wall = wall_clock(ms, &zone)?;
                    let date = add_months(wall.date(), i32::try_from(n).ok()?.checked_mul(months)?)?;
                    epoch_millis(date.and_time(wall.time()), &zone)
                }
            }
        })
        .collect();
    // The same instants, labelled with the argument's zone (a cast would
    // read them as wall-clock times in it).
    let zone = match ret {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    };
    Ok(Arc::new(out.with_timezone_opt(zone)))
}

/// Parses `s` with a Java date pattern, ignoring text after the pattern, as
/// `SimpleDateFormat.parse` does.
fn parse_with(s: &str, java_pattern: &str) -> Option<NaiveDateTime> {
    let f = java_to_chrono(java_pattern);
    NaiveDateTime::parse_and_remainder(s, &f)
        .map(|(t, _)| t)
        .ok()
        .or_else(|| NaiveDate::parse_and_remainder(s, &f).ok().and_then(|(d, _)| d.and_hms_opt(0, 0, 0)))
}

const DEFAULT_FORMAT: &str = "yyyy-MM-dd HH:mm:ss";

fn unix_timestamp(ctx: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let Some(s) = args.first() else {
        let now = Utc::now().timestamp();
        return Ok(Arc::new(Int64Array::from(vec![now; ctx.rows])));
    };
    let s = strings(s)?;
    let fmt = args.get(1).map(strings).transpose()?;
    let out: Int64Array = (0..s.len())
        .map(|i| {
            let text = str_at(&s, i)?;
            let pattern = match &fmt {
                Some(f) => str_at(f, i)?,
                None => DEFAULT_FORMAT,
            };
            // Flink answers Long.MIN_VALUE for text it cannot parse.
            Some(match parse_with(text, pattern).and_then(|t| epoch_millis(t, ctx.tz)) {
                Some(ms) => ms / 1000,
                None => i64::MIN,
            })
        })
        .collect();
    Ok(Arc::new(out))
}

fn from_unixtime(ctx: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let secs = longs(&args[0])?;
    let fmt = args.get(1).map(strings).transpose()?;
    let mut b = StringBuilder::with_capacity(secs.len(), secs.len() * 19);
    for i in 0..secs.len() {
        let text = (|| {
            let pattern = match &fmt {
                Some(f) => str_at(f, i)?,
                None => DEFAULT_FORMAT,
            };
            let wall = wall_clock(long_at(&secs, i)?.checked_mul(1000)?, ctx.tz)?;
            let mut out = String::new();
            std::fmt::Write::write_fmt(&mut out, format_args!("{}", wall.format(&java_to_chrono(pattern)))).ok()?;
            Some(out)
        })();
        b.append_option(text);
    }
    Ok(Arc::new(b.finish()))
}

fn dayofweek(ctx: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (t, zone) = millis(&args[0], ctx.tz, true)?;
    let out: Int64Array =
        t.iter().map(|ms| wall_clock(ms?, &zone).map(|w| i64::from(w.weekday().number_from_sunday()))).collect();
    Ok(Arc::new(out))
}

fn convert_tz(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (s, from, to) = (strings(&args[0])?, strings(&args[1])?, strings(&args[2])?);
    let mut b = StringBuilder::with_capacity(s.len(), s.len() * 19);
    for i in 0..s.len() {
        let converted = (|| {
            let t = parse_with(str_at(&s, i)?, DEFAULT_FORMAT)?;
            let ms = epoch_millis(t, str_at(&from, i)?)?;
            wall_clock(ms, str_at(&to, i)?)
        })();
        match converted {
            Some(t) => b.append_value(t.format("%Y-%m-%d %H:%M:%S").to_string()),
            None => b.append_null(),
        }
    }
    Ok(Arc::new(b.finish()))
}

fn localtimestamp(ctx: &Ctx, _: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let now = Utc::now().timestamp_millis();
    let local = wall_clock(now, ctx.tz).map(|t| t.and_utc().timestamp_millis());
    Ok(Arc::new(TimestampMillisecondArray::from(vec![local; ctx.rows])))
}

/// Flink's `CURRENT_DATE`: today in the session time zone, evaluated per
/// record in streaming mode.
fn current_date(ctx: &Ctx, _: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let now = Utc::now().timestamp_millis();
    let day = wall_clock(now, ctx.tz).map(|t| (t.and_utc().timestamp_millis().div_euclid(86_400_000)) as i32);
    Ok(Arc::new(arrow::array::Date32Array::from(vec![day; ctx.rows])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn months_between_follows_calcite() {
        let cases = [
            ("2024-03-31 00:00:00", "2024-01-31 00:00:00", 2),
            ("2024-02-29 00:00:00", "2024-01-31 00:00:00", 1),
            ("2024-02-28 00:00:00", "2024-01-31 00:00:00", 0),
            ("2024-02-01 00:00:00", "2024-01-01 00:00:01", 0),
            ("2024-02-01 00:00:01", "2024-01-01 00:00:00", 1),
            ("2023-01-01 00:00:00", "2024-01-01 00:00:00", -12),
        ];
        for (t0, t1, want) in cases {
            assert_eq!(months_between(ts(t0), ts(t1)), Some(want), "{t0} - {t1}");
        }
    }

    #[test]
    fn zones_parse_as_java_does() {
        let t = ts("2024-01-01 12:00:00");
        assert_eq!(epoch_millis(t, "GMT+08:00"), epoch_millis(ts("2024-01-01 04:00:00"), "UTC"));
        assert_eq!(epoch_millis(t, "Asia/Shanghai"), epoch_millis(t, "GMT+08:00"));
        assert_eq!(epoch_millis(t, "No/Such_Zone"), epoch_millis(t, "UTC"));
        // 02:30 does not exist in Paris on 2024-03-31: Java reads it as 01:30 UTC.
        assert_eq!(
            epoch_millis(ts("2024-03-31 02:30:00"), "Europe/Paris"),
            epoch_millis(ts("2024-03-31 01:30:00"), "UTC")
        );
    }
}
