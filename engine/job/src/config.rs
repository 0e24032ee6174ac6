//! A job's configuration: Flink-style keys from `--config FILE` (YAML), `--set
//! key=value`, `SET` statements in the job, and flags.
//!
//! Precedence, lowest first: the job's `SET` statements, the config file,
//! `--set`, then dedicated flags such as `--parallelism`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::JobError;

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub values: BTreeMap<String, String>,
}

impl Config {
    /// Reads a YAML map of keys to scalar values. Nested maps are flattened with dots.
    pub fn from_file(path: &Path) -> Result<Config, JobError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| JobError::Io { path: path.display().to_string(), source })?;
        let value: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| JobError::Config(format!("{}: {e}", path.display())))?;
        let mut values = BTreeMap::new();
        flatten("", &value, &mut values).map_err(|m| JobError::Config(format!("{}: {m}", path.display())))?;
        Ok(Config { values })
    }

    /// Applies `key=value` overrides.
    pub fn set_all(&mut self, pairs: &[String]) -> Result<(), JobError> {
        for p in pairs {
            let (k, v) =
                p.split_once('=').ok_or_else(|| JobError::Config(format!("--set expects key=value, got '{p}'")))?;
            self.values.insert(k.trim().to_string(), v.trim().to_string());
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn usize(&self, key: &str, default: usize) -> Result<usize, JobError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| JobError::Config(format!("'{key}' must be a positive integer, not '{v}'"))),
        }
    }

    pub fn bool(&self, key: &str) -> Result<bool, JobError> {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(JobError::Config(format!("'{key}' must be true or false, not '{v}'"))),
        }
    }

    /// A memory size in Flink's syntax: a number and an optional unit, `b`,
    /// `k`/`kb`, `m`/`mb`, `g`/`gb` or `t`/`tb` (powers of 1024), e.g. `512m`
    /// or `1 gb`.
    pub fn memory_bytes(&self, key: &str, default: u64) -> Result<u64, JobError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_memory_size(v).ok_or_else(|| {
                JobError::Config(format!("'{key}': '{v}' is not a memory size such as '512m', '1 gb' or '1048576'"))
            }),
        }
    }

    pub fn duration_ms(&self, key: &str, default: u64) -> Result<u64, JobError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => {
                sluice_api::duration::parse_ms(v).ok_or_else(|| JobError::Config(sluice_api::duration::invalid(key, v)))
            }
        }
    }
}

/// Flink's `MemorySize` syntax; `None` when it is not one.
pub fn parse_memory_size(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_lowercase();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v[..digits].parse().ok()?;
    let shift = match v[digits..].trim() {
        "" | "b" | "bytes" => 0,
        "k" | "kb" | "kibibytes" => 10,
        "m" | "mb" | "mebibytes" => 20,
        "g" | "gb" | "gibibytes" => 30,
        "t" | "tb" | "tebibytes" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

fn flatten(prefix: &str, v: &serde_yaml::Value, out: &mut BTreeMap<String, String>) -> Result<(), String> {
    match v {
        serde_yaml::Value::Null if prefix.is_empty() => Ok(()),
        serde_yaml::Value::Mapping(m) => {
            for (k, v) in m {
                let k = match k {
                    serde_yaml::Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other).map_err(|e| e.to_string())?.trim().to_string(),
                };
                let key = if prefix.is_empty() { k } else { format!("{prefix}.{k}") };
                flatten(&key, v, out)?;
            }
            Ok(())
        }
        serde_yaml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
            Ok(())
        }
        serde_yaml::Value::Number(n) => {
            out.insert(prefix.to_string(), n.to_string());
            Ok(())
        }
        serde_yaml::Value::Bool(b) => {
            out.insert(prefix.to_string(), b.to_string());
            Ok(())
        }
        _ => Err(format!("'{prefix}' must be a scalar value")),
    }
}
