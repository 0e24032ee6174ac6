//! Reading `WITH (...)` options: typed getters that produce errors naming the
//! table, the option and what is accepted, and a check that every option given
//! was understood (Flink rejects unknown options too, which catches typos).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::ConnectorError;

/// Options that the engine, not the connector, interprets; every connector
/// accepts them.
const ENGINE_OPTIONS: &[&str] = &["connector", "sink.parallelism", "scan.parallelism"];
const ENGINE_OPTION_PREFIXES: &[&str] = &["scan.watermark."];

pub(crate) struct Options<'a> {
    table: &'a str,
    map: &'a BTreeMap<String, String>,
    used: RefCell<BTreeSet<String>>,
}

impl<'a> Options<'a> {
    pub(crate) fn new(table: &'a str, map: &'a BTreeMap<String, String>) -> Self {
        Options { table, map, used: RefCell::new(BTreeSet::new()) }
    }

    /// The table's name.
    pub(crate) fn table(&self) -> &'a str {
        self.table
    }

    /// An error about this table.
    pub(crate) fn error(&self, message: impl Into<String>) -> ConnectorError {
        ConnectorError::InvalidOption { table: self.table.to_string(), message: message.into() }
    }

    fn invalid(&self, key: &str, value: &str, expected: &str) -> ConnectorError {
        self.error(format!("option '{key}' = '{value}' is invalid: expected {expected}"))
    }

    /// The raw value of `key`, marking it as understood.
    pub(crate) fn get(&self, key: &str) -> Option<&'a str> {
        self.used.borrow_mut().insert(key.to_string());
        self.map.get(key).map(String::as_str)
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub(crate) fn required(&self, key: &str, accepted: &str) -> Result<&'a str, ConnectorError> {
        match self.get(key) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            Some(_) => Err(self.error(format!("option '{key}' is empty; expected {accepted}"))),
            None => Err(self.error(format!("missing required option '{key}' ({accepted})"))),
        }
    }

    pub(crate) fn bool(&self, key: &str, default: bool) -> Result<bool, ConnectorError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or_else(|| self.invalid(key, v, "'true' or 'false'")),
        }
    }

    pub(crate) fn u64(&self, key: &str) -> Result<Option<u64>, ConnectorError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| self.invalid(key, v, "a non-negative integer")),
        }
    }

    pub(crate) fn i64(&self, key: &str) -> Result<Option<i64>, ConnectorError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| self.invalid(key, v, "an integer")),
        }
    }

    pub(crate) fn f64(&self, key: &str) -> Result<Option<f64>, ConnectorError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(self.invalid(key, v, "a finite number")),
            },
        }
    }

    /// A duration in Flink's syntax (`'10 s'`, `'500 ms'`, `'1 min'`; a bare
    /// number is milliseconds).
    pub(crate) fn duration(&self, key: &str) -> Result<Option<Duration>, ConnectorError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => parse_duration(v)
                .map(Some)
                .ok_or_else(|| self.invalid(key, v, "a duration such as '500 ms', '1 s', '2 min', '1 h' or '1 d'")),
        }
    }

    /// A memory size in Flink's syntax (`'128MB'`, `'1 gb'`, `'4096'` bytes).
    pub(crate) fn memory_size(&self, key: &str) -> Result<Option<u64>, ConnectorError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => parse_memory_size(v)
                .map(Some)
                .ok_or_else(|| self.invalid(key, v, "a size such as '128mb', '1gb', '64kb' or bytes")),
        }
    }

    /// A single character (`'\t'` is accepted for a tab, as Flink's csv format does).
    pub(crate) fn char(&self, key: &str, default: char) -> Result<char, ConnectorError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_char(v).ok_or_else(|| self.invalid(key, v, "a single character")),
        }
    }

    /// Fails if an option was given that no getter asked for. `supported` lists
    /// the options of the connector for the message.
    pub(crate) fn check_all_used(&self, connector: &str, supported: &str) -> Result<(), ConnectorError> {
        let used = self.used.borrow();
        let unknown: Vec<&str> = self
            .map
            .keys()
            .map(String::as_str)
            .filter(|k| {
                !used.contains(*k)
                    && !ENGINE_OPTIONS.contains(k)
                    && !ENGINE_OPTION_PREFIXES.iter().any(|p| k.starts_with(p))
            })
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let list = unknown.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
        Err(self.error(format!(
            "unsupported option{} {list} for connector '{connector}'; supported options are: {supported}",
            if unknown.len() > 1 { "s" } else { "" }
        )))
    }

    /// Keys starting with `prefix`, for per-field options such as `fields.<f>.kind`.
    pub(crate) fn keys_with_prefix(&self, prefix: &str) -> Vec<&'a str> {
        self.map.keys().filter(|k| k.starts_with(prefix)).map(String::as_str).collect()
    }
}

pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Flink's `TimeUtils.parseDuration` (one parser for the whole project).
pub(crate) fn parse_duration(v: &str) -> Option<Duration> {
    sluice_api::duration::parse(v)
}

/// Flink's `MemorySize.parse`: binary units, no unit means bytes.
pub(crate) fn parse_memory_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let digits_end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    if digits_end == 0 {
        return None;
    }
    let n: u64 = v[..digits_end].parse().ok()?;
    let unit = v[digits_end..].trim().to_ascii_lowercase();
    let mult: u64 = match unit.as_str() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kibibytes" => 1 << 10,
        "m" | "mb" | "mebibytes" => 1 << 20,
        "g" | "gb" | "gibibytes" => 1 << 30,
        "t" | "tb" | "tebibytes" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn parse_char(v: &str) -> Option<char> {
    if v == "\\t" {
        return Some('\t');
    }
    let mut chars = v.chars();
    let c = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_flink_syntax() {
        assert_eq!(parse_duration("1 s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("500 ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("500"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2min"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1 H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1 d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("1 fortnight"), None);
    }

    #[test]
    fn memory_sizes_are_binary() {
        assert_eq!(parse_memory_size("128MB"), Some(128 << 20));
        assert_eq!(parse_memory_size("1 kb"), Some(1024));
        assert_eq!(parse_memory_size("77"), Some(77));
        assert_eq!(parse_memory_size("big"), None);
    }

    #[test]
    fn unknown_options_are_rejected_with_the_supported_list() {
        let mut m = BTreeMap::new();
        m.insert("connector".to_string(), "x".to_string());
        m.insert("pth".to_string(), "/tmp".to_string());
        m.insert("scan.watermark.idle-timeout".to_string(), "1 s".to_string());
        let o = Options::new("t", &m);
        let err = o.check_all_used("filesystem", "'path', 'format'").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "table `t`: unsupported option 'pth' for connector 'filesystem'; supported options are: 'path', 'format'"
            )
        );
    }
}
