//! Durations as Flink writes them (`TimeUtils.parseDuration`): a number,
//! optional spaces, and an optional unit; no unit means milliseconds. `10 s`,
//! `10s`, `1 min`, `500 ms`, `2h`, `1d`. One parser for the engine's
//! configuration, the SQL front end's `SET` keys, connector options and the
//! operator's CRD fields, so that what the operator accepts the engine runs.

use std::time::Duration;

/// The units and their names, as Flink's `TimeUtils.TimeUnit` spells them.
const UNITS: &[(&[&str], u64)] = &[
    (&["d", "day", "days"], 86_400_000_000_000),
    (&["h", "hour", "hours"], 3_600_000_000_000),
    (&["min", "m", "minute", "minutes"], 60_000_000_000),
    (&["s", "sec", "secs", "second", "seconds"], 1_000_000_000),
    (&["ms", "milli", "millis", "millisecond", "milliseconds"], 1_000_000),
    (&["µs", "micro", "micros", "microsecond", "microseconds"], 1_000),
    (&["ns", "nano", "nanos", "nanosecond", "nanoseconds"], 1),
];

/// The JSON-schema pattern of a duration in the CRDs: the canonical spelling
/// (lowercase unit, no surrounding spaces) of what [`parse`] accepts. A test
/// checks, on a corpus, that the two agree on every canonical string.
pub const PATTERN: &str = r"^[0-9]+ *(d|day|days|h|hour|hours|min|m|minute|minutes|s|sec|secs|second|seconds|ms|milli|millis|millisecond|milliseconds|µs|micro|micros|microsecond|microseconds|ns|nano|nanos|nanosecond|nanoseconds)?$";

/// Parses a Flink duration; `None` if it is not one (or overflows).
pub fn parse(s: &str) -> Option<Duration> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits == 0 {
        return None;
    }
    let n: u64 = s[..digits].parse().ok()?;
    let unit = s[digits..].trim_start_matches(' ');
    if unit.is_empty() {
        return Some(Duration::from_millis(n));
    }
    let unit = unit.to_ascii_lowercase();
    let nanos = UNITS.iter().find(|(names, _)| names.contains(&unit.as_str())).map(|(_, n)| *n)?;
    let total = u128::from(n) * u128::from(nanos);
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Milliseconds of a Flink duration.
pub fn parse_ms(s: &str) -> Option<u64> {
    parse(s).and_then(|d| u64::try_from(d.as_millis()).ok())
}

/// The error message for a value that is not a duration, naming the key.
pub fn invalid(key: &str, value: &str) -> String {
    format!("'{key}': '{value}' is not a duration such as '10 s', '500 ms' or '1 min'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_durations() {
        let ms = |s| parse(s).map(|d| d.as_millis());
        assert_eq!(ms("10 s"), Some(10_000));
        assert_eq!(ms("10s"), Some(10_000));
        assert_eq!(ms("1 min"), Some(60_000));
        assert_eq!(ms("5m"), Some(300_000));
        assert_eq!(ms("500 ms"), Some(500));
        assert_eq!(ms("250"), Some(250));
        assert_eq!(ms("2h"), Some(7_200_000));
        assert_eq!(ms("1 d"), Some(86_400_000));
        assert_eq!(ms(" 3 SECONDS "), Some(3_000));
        assert_eq!(parse("1500µs"), Some(Duration::from_micros(1500)));
        assert_eq!(parse("7ns"), Some(Duration::from_nanos(7)));
        for bad in ["", "s", "1h30m", "-1s", "1.5s", "10 parsecs", "ten seconds", "99999999999999999999 d"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    /// On canonical strings (no surrounding spaces, lowercase units) the CRD
    /// pattern and the parser agree exactly; the parser also accepts what
    /// Flink does beyond that (surrounding spaces, upper-case units).
    #[test]
    fn the_crd_pattern_accepts_exactly_what_the_parser_accepts() {
        let pattern = regex::Regex::new(PATTERN).unwrap();
        let mut corpus: Vec<String> =
            ["", "s", "10", "0", "10 s", "10  s", "1h30m", "-1s", "1.5s", "10 parsecs", "5 mins", "m5"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        for (names, _) in UNITS {
            for n in *names {
                corpus.push(format!("3{n}"));
                corpus.push(format!("42 {n}"));
                corpus.push(format!("7{n}x"));
            }
        }
        for s in &corpus {
            assert_eq!(pattern.is_match(s), parse(s).is_some(), "the pattern and the parser disagree on {s:?}");
        }
    }
}
