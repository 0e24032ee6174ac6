//! The options of a datagen table: the table's rate and size, and the
//! generator of each column, checked against the column's type.

use arrow::datatypes::{DataType, SchemaRef};
use sluice_format::types::{ColType, column_types};

use std::time::Duration;

use crate::ConnectorError;
use crate::options::{Options, parse_duration};
use crate::throttle::Rate;

const SCHEDULE: &str = "rows-per-second.schedule";

pub(crate) const OPTIONS: &str = "'rows-per-second', 'rows-per-second.schedule', 'number-of-rows', 'seed', 'fields.<f>.kind', \
'fields.<f>.min', 'fields.<f>.max', 'fields.<f>.length', 'fields.<f>.var-len', 'fields.<f>.max-past', \
'fields.<f>.null-rate', 'fields.<f>.start', 'fields.<f>.end'";

const DEFAULT_ROWS_PER_SECOND: u64 = 10_000;
const DEFAULT_STRING_LENGTH: usize = 100;

#[derive(Debug, Clone)]
pub(super) enum Gen {
    Boolean,
    Int { min: i64, max: i64 },
    Double { min: f64, max: f64 },
    Decimal { min: f64, max: f64, pow: f64, limit: i128 },
    String { length: usize, var_len: bool },
    Timestamp { max_past_ms: u64 },
    Sequence { start: i64, end: i64 },
}

#[derive(Debug, Clone)]
pub(super) struct FieldGen {
    pub(super) ty: ColType,
    pub(super) data_type: DataType,
    pub(super) generator: Gen,
    pub(super) null_rate: f32,
}

#[derive(Debug, Clone)]
pub(crate) struct DatagenConfig {
    /// The whole table's rate: `rows-per-second`, or its schedule.
    pub(super) rate: Rate,
    pub(super) number_of_rows: Option<u64>,
    pub(super) seed: Option<u64>,
    pub(super) fields: Vec<FieldGen>,
}

/// The number of the `n` items a strided split gives subtask `i` of `p`.
pub(crate) fn share(n: u64, i: usize, p: usize) -> u64 {
    let p = p.max(1) as u64;
    n / p + u64::from(n % p > i as u64)
}

impl DatagenConfig {
    pub(crate) fn parse(o: &Options<'_>, schema: &SchemaRef) -> Result<Self, ConnectorError> {
        let rows_per_second = o.u64("rows-per-second")?;
        if rows_per_second == Some(0) {
            return Err(o.error("option 'rows-per-second' must be at least 1"));
        }
        let rate = match (o.get(SCHEDULE), rows_per_second) {
            (Some(_), Some(_)) => {
                return Err(o.error(format!(
                    "options 'rows-per-second' and '{SCHEDULE}' exclude each other: a schedule gives every rate"
                )));
            }
            (Some(v), None) => {
                Rate::schedule(&parse_schedule(v).map_err(|why| o.error(format!("option '{SCHEDULE}' = '{v}' {why}")))?)
            }
            (None, r) => Rate::constant(r.unwrap_or(DEFAULT_ROWS_PER_SECOND)),
        };
        let number_of_rows = o.u64("number-of-rows")?;
        let seed = o.u64("seed")?;
        let types = column_types(schema.fields(), "datagen").map_err(|e| o.error(e.to_string()))?;
        let mut fields = Vec::with_capacity(types.len());
        for (f, ty) in schema.fields().iter().zip(types) {
            fields.push(parse_field(o, f.name(), ty, f.data_type())?);
        }
        // Options for fields that do not exist are typos; say so precisely.
        for key in o.keys_with_prefix("fields.") {
            let rest = &key["fields.".len()..];
            let known = schema
                .fields()
                .iter()
                .any(|f| rest.strip_prefix(f.name().as_str()).is_some_and(|r| r.starts_with('.')));
            if !known {
                return Err(o.error(format!(
                    "option '{key}' names no column of the table; columns are {}",
                    schema.fields().iter().map(|f| format!("`{}`", f.name())).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        o.check_all_used("datagen", OPTIONS)?;
        Ok(DatagenConfig { rate, number_of_rows, seed, fields })
    }

    /// Rows subtask `i` of `p` produces, or `None` when unbounded.
    pub(super) fn rows_for(&self, i: usize, p: usize) -> Option<u64> {
        let mut limit = self.number_of_rows.map(|n| share(n, i, p));
        for f in &self.fields {
            if let Gen::Sequence { start, end } = f.generator {
                let total = (end as i128 - start as i128 + 1) as u64;
                let s = share(total, i, p);
                limit = Some(limit.map_or(s, |l| l.min(s)));
            }
        }
        limit
    }
}

/// `'0s:1750, 2min:700'`: steps of (schedule time, rows per second), the
/// first at 0, times increasing, rates at least 1. The error completes
/// "option '…' = '…' ".
pub(super) fn parse_schedule(v: &str) -> Result<Vec<(Duration, u64)>, String> {
    const FORM: &str = "steps `<time>:<rows per second>` separated by commas, as '0s:1750, 2min:700'";
    let mut steps: Vec<(Duration, u64)> = Vec::new();
    for entry in v.split(',').map(str::trim) {
        let Some((at, rate)) = entry.rsplit_once(':') else {
            return Err(format!("is invalid: step '{entry}' is not `<time>:<rows per second>`; expected {FORM}"));
        };
        let at = parse_duration(at.trim()).ok_or_else(|| {
            format!("is invalid: '{}' in step '{entry}' is not a duration such as '0s' or '2min'", at.trim())
        })?;
        let rate: u64 = rate.trim().parse().map_err(|_| {
            format!("is invalid: '{}' in step '{entry}' is not a whole number of rows per second", rate.trim())
        })?;
        if rate == 0 {
            return Err(format!("is invalid: step '{entry}' has rate 0; every rate must be at least 1"));
        }
        match steps.last() {
            None if !at.is_zero() => {
                return Err(format!("is invalid: the first step is at {at:?}; a schedule starts at '0s'"));
            }
            Some((before, _)) if at <= *before => {
                return Err(format!(
                    "is invalid: step '{entry}' is not after the step at {before:?}; times must increase"
                ));
            }
            _ => steps.push((at, rate)),
        }
    }
    Ok(steps)
}

/// The values of an integer column type narrower than BIGINT.
fn int_range(ty: ColType) -> (i64, i64) {
    match ty {
        ColType::Int8 => (i64::from(i8::MIN), i64::from(i8::MAX)),
        ColType::Int16 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        _ => (i64::from(i32::MIN), i64::from(i32::MAX)),
    }
}

fn parse_field(o: &Options<'_>, name: &str, ty: ColType, data_type: &DataType) -> Result<FieldGen, ConnectorError> {
    let key = |k: &str| format!("fields.{name}.{k}");
    let kind = o.get(&key("kind")).map(str::trim).unwrap_or("random");
    let tname = ty.sql_name();
    let reject = |k: &str, why: &str| -> Result<(), ConnectorError> {
        if o.contains(&key(k)) {
            return Err(o.error(format!("option '{}' is not supported {why}", key(k))));
        }
        Ok(())
    };
    let null_rate = match o.f64(&key("null-rate"))? {
        None => 0.0,
        Some(r) if (0.0..=1.0).contains(&r) => r as f32,
        Some(r) => {
            return Err(o.error(format!("option '{}' = '{r}' must be between 0 and 1", key("null-rate"))));
        }
    };
    let generator = match kind {
        "sequence" => {
            for k in ["min", "max", "length", "var-len", "max-past"] {
                reject(k, "for a sequence field; use 'start' and 'end'")?;
            }
            let start = o.i64(&key("start"))?;
            let end = o.i64(&key("end"))?;
            let (Some(start), Some(end)) = (start, end) else {
                return Err(o.error(format!(
                    "field `{name}` is a sequence and needs both '{}' and '{}'",
                    key("start"),
                    key("end")
                )));
            };
            if end < start {
                return Err(o.error(format!(
                    "option '{}' = {end} is below '{}' = {start}; a sequence needs start <= end",
                    key("end"),
                    key("start")
                )));
            }
            match ty {
                ColType::Int8 | ColType::Int16 | ColType::Int32 => {
                    let (lo, hi) = int_range(ty);
                    if !(lo..=hi).contains(&start) || !(lo..=hi).contains(&end) {
                        return Err(o.error(format!("sequence bounds of {tname} field `{name}` must fit in {tname}")));
                    }
                }
                ColType::Int64 | ColType::Float32 | ColType::Float64 | ColType::Utf8 | ColType::Decimal { .. } => {}
                _ => {
                    return Err(o.error(format!(
                        "field `{name}` of type {tname} cannot be a sequence; sequences support TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, DECIMAL and STRING"
                    )));
                }
            }
            Gen::Sequence { start, end }
        }
        "random" => {
            reject("start", "for a random field (it is for kind 'sequence')")?;
            reject("end", "for a random field (it is for kind 'sequence')")?;
            let numeric = matches!(
                ty,
                ColType::Int8
                    | ColType::Int16
                    | ColType::Int32
                    | ColType::Int64
                    | ColType::Float32
                    | ColType::Float64
                    | ColType::Decimal { .. }
            );
            if !numeric {
                reject("min", &format!("for field `{name}` of type {tname}"))?;
                reject("max", &format!("for field `{name}` of type {tname}"))?;
            }
            if ty != ColType::Utf8 {
                reject("length", &format!("for field `{name}` of type {tname}"))?;
                reject("var-len", &format!("for field `{name}` of type {tname}"))?;
            }
            if !matches!(ty, ColType::Timestamp | ColType::TimestampLtz) {
                reject("max-past", &format!("for field `{name}` of type {tname}"))?;
            }
            let check = |min: f64, max: f64| -> Result<(), ConnectorError> {
                if min > max {
                    return Err(o.error(format!(
                        "option '{}' is greater than '{}' for field `{name}`",
                        key("min"),
                        key("max")
                    )));
                }
                Ok(())
            };
            match ty {
                // `column_types` refuses ARRAY and MAP columns above.
                ColType::Nested => {
                    return Err(o.error(format!("datagen cannot generate ARRAY or MAP field `{name}`")));
                }
                ColType::Date => {
                    return Err(o.error(format!(
                        "datagen cannot generate DATE field `{name}` yet; generate a TIMESTAMP(3) and CAST it AS DATE"
                    )));
                }
                ColType::Boolean => Gen::Boolean,
                ColType::Int8 | ColType::Int16 | ColType::Int32 => {
                    let (lo, hi) = int_range(ty);
                    let min = o.i64(&key("min"))?.unwrap_or(lo);
                    let max = o.i64(&key("max"))?.unwrap_or(hi);
                    if !(lo..=hi).contains(&min) || !(lo..=hi).contains(&max) {
                        return Err(o.error(format!("min and max of {tname} field `{name}` must fit in {tname}")));
                    }
                    check(min as f64, max as f64)?;
                    Gen::Int { min, max }
                }
                ColType::Int64 => {
                    let min = o.i64(&key("min"))?.unwrap_or(i64::MIN);
                    let max = o.i64(&key("max"))?.unwrap_or(i64::MAX);
                    if min > max {
                        check(1.0, 0.0)?;
                    }
                    Gen::Int { min, max }
                }
                ColType::Float64 => {
                    let min = o.f64(&key("min"))?.unwrap_or(f64::from_bits(1)); // Double.MIN_VALUE
                    let max = o.f64(&key("max"))?.unwrap_or(f64::MAX);
                    check(min, max)?;
                    Gen::Double { min, max }
                }
                ColType::Float32 => {
                    // Float.MIN_VALUE and Float.MAX_VALUE.
                    let min = o.f64(&key("min"))?.unwrap_or(f64::from(f32::from_bits(1)));
                    let max = o.f64(&key("max"))?.unwrap_or(f64::from(f32::MAX));
                    check(min, max)?;
                    Gen::Double { min, max }
                }
                ColType::Decimal { precision, scale } => {
                    let largest = 10f64.powi(i32::from(precision) - i32::from(scale)) - 10f64.powi(-i32::from(scale));
                    let min = o.f64(&key("min"))?.unwrap_or(f64::from_bits(1)).max(-largest);
                    let max = o.f64(&key("max"))?.unwrap_or(f64::MAX).min(largest);
                    check(min, max)?;
                    Gen::Decimal {
                        min,
                        max,
                        pow: 10f64.powi(i32::from(scale)),
                        limit: 10i128.pow(u32::from(precision.min(38))) - 1,
                    }
                }
                ColType::Utf8 => {
                    let length = match o.u64(&key("length"))? {
                        None => DEFAULT_STRING_LENGTH,
                        Some(0) => {
                            return Err(o.error(format!("option '{}' must be at least 1", key("length"))));
                        }
                        Some(n) => usize::try_from(n).map_err(|_| o.error("length too large"))?,
                    };
                    Gen::String { length, var_len: o.bool(&key("var-len"), false)? }
                }
                ColType::Timestamp | ColType::TimestampLtz => {
                    let max_past_ms = o.duration(&key("max-past"))?.map_or(0, |d| d.as_millis() as u64);
                    Gen::Timestamp { max_past_ms }
                }
            }
        }
        other => {
            return Err(
                o.error(format!("option '{}' = '{other}' is invalid: expected 'random' or 'sequence'", key("kind")))
            );
        }
    };
    Ok(FieldGen { ty, data_type: data_type.clone(), generator, null_rate })
}
