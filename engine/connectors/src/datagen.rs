//! The `datagen` source, with Flink's options.
//!
//! - `rows-per-second` (default 10000): the total rate, split evenly across subtasks.
//! - `number-of-rows`: the total, split across subtasks as Flink does (the
//!   first `n % p` subtasks make one more); unbounded when absent, unless a
//!   sequence field bounds it.
//! - `fields.<f>.kind`: `random` (default) or `sequence`.
//! - random: `.min`/`.max` (numeric types; defaults: the type's range, and
//!   for DOUBLE and DECIMAL Flink's `Double.MIN_VALUE`..`Double.MAX_VALUE`),
//!   `.length` (STRING, default 100) and `.var-len`, `.max-past` (timestamps,
//!   default 0: now), `.null-rate`. Random strings are lower-case hex, as
//!   Flink's `nextHexString`.
//! - sequence: `.start` and `.end` (required, inclusive). As Flink's
//!   `SequenceGenerator`, subtask `i` of `p` emits `start + i`, `start + i + p`,
//!   …; the source ends when a sequence ends.
//! - `seed` (Sluice's own): makes random values deterministic. Values are a
//!   pure function of (seed, column, global row number), where subtask `i`
//!   makes global rows `i, i + p, i + 2p, …`; so a seeded table holds the same
//!   rows at any parallelism and batch size (timestamps, which are relative to
//!   the wall clock, excepted).
//!
//! Checkpoints: the splits of datagen are the strides of the global row
//! stream. A fresh subtask `i` of `p` owns split `i` of stride `p`; its state
//! is (split, stride, rows produced, row limit of the split). After a restore
//! at parallelism `q`, subtask `j` owns every restored split whose index is `j`
//! modulo `q` and takes batches from them in turn, so that a seeded table
//! holds the same rows, each once, however often it is rescaled. The rate
//! stays `rows-per-second` split evenly across the new subtasks.
//!
//! Generation is column-wise into plain vectors, with no per-row allocation.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::{
    ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMillisecondArray,
};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::options::Options;
use crate::rng::{GOLDEN, below, mix64, seed_of, unit_f64};
use crate::state::{Dec, Enc, StrideSplit, TAG_DATAGEN, merge_plan, merged_batch, total_remaining};
use crate::throttle::Throttle;
use crate::{ConnectorError, SourceContext, SourceEvent, SourceReader};
use sluice_format::types::{ColType, column_types};

pub(crate) const OPTIONS: &str = "'rows-per-second', 'number-of-rows', 'seed', 'fields.<f>.kind', \
'fields.<f>.min', 'fields.<f>.max', 'fields.<f>.length', 'fields.<f>.var-len', 'fields.<f>.max-past', \
'fields.<f>.null-rate', 'fields.<f>.start', 'fields.<f>.end'";

const DEFAULT_ROWS_PER_SECOND: u64 = 10_000;
const DEFAULT_STRING_LENGTH: usize = 100;

#[derive(Debug, Clone)]
enum Gen {
    Boolean,
    Int { min: i64, max: i64 },
    Double { min: f64, max: f64 },
    Decimal { min: f64, max: f64, pow: f64, limit: i128 },
    String { length: usize, var_len: bool },
    Timestamp { max_past_ms: u64 },
    Sequence { start: i64, end: i64 },
}

#[derive(Debug, Clone)]
struct FieldGen {
    ty: ColType,
    data_type: DataType,
    generator: Gen,
    null_rate: f32,
}

#[derive(Debug, Clone)]
pub(crate) struct DatagenConfig {
    rows_per_second: u64,
    number_of_rows: Option<u64>,
    seed: Option<u64>,
    fields: Vec<FieldGen>,
}

/// The number of the `n` items a strided split gives subtask `i` of `p`.
pub(crate) fn share(n: u64, i: usize, p: usize) -> u64 {
    let p = p.max(1) as u64;
    n / p + u64::from(n % p > i as u64)
}

impl DatagenConfig {
    pub(crate) fn parse(o: &Options<'_>, schema: &SchemaRef) -> Result<Self, ConnectorError> {
        let rows_per_second = o.u64("rows-per-second")?.unwrap_or(DEFAULT_ROWS_PER_SECOND);
        if rows_per_second == 0 {
            return Err(o.error("option 'rows-per-second' must be at least 1"));
        }
        let number_of_rows = o.u64("number-of-rows")?;
        let seed = o.u64("seed")?;
        let types = column_types(schema.fields(), "datagen").map_err(|m| o.error(m))?;
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
        Ok(DatagenConfig { rows_per_second, number_of_rows, seed, fields })
    }

    /// Rows subtask `i` of `p` produces, or `None` when unbounded.
    fn rows_for(&self, i: usize, p: usize) -> Option<u64> {
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
                ColType::Int32 => {
                    if i32::try_from(start).is_err() || i32::try_from(end).is_err() {
                        return Err(o.error(format!("sequence bounds of INT field `{name}` must fit in INT")));
                    }
                }
                ColType::Int64 | ColType::Float64 | ColType::Utf8 | ColType::Decimal { .. } => {}
                _ => {
                    return Err(o.error(format!(
                        "field `{name}` of type {tname} cannot be a sequence; sequences support INT, BIGINT, DOUBLE, DECIMAL and STRING"
                    )));
                }
            }
            Gen::Sequence { start, end }
        }
        "random" => {
            reject("start", "for a random field (it is for kind 'sequence')")?;
            reject("end", "for a random field (it is for kind 'sequence')")?;
            let numeric = matches!(ty, ColType::Int32 | ColType::Int64 | ColType::Float64 | ColType::Decimal { .. });
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
                ColType::Boolean => Gen::Boolean,
                ColType::Int32 => {
                    let min = o.i64(&key("min"))?.unwrap_or(i64::from(i32::MIN));
                    let max = o.i64(&key("max"))?.unwrap_or(i64::from(i32::MAX));
                    if i32::try_from(min).is_err() || i32::try_from(max).is_err() {
                        return Err(o.error(format!("min and max of INT field `{name}` must fit in INT")));
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

pub(crate) struct DatagenReader {
    table: String,
    schema: SchemaRef,
    fields: Vec<FieldGen>,
    /// Per column: the seeds of its value and null streams.
    seeds: Vec<(u64, u64)>,
    /// The strides of the global row stream this subtask makes: on a fresh
    /// start one, split `i` of stride `p`; after a restore, those it owns.
    splits: Vec<StrideSplit>,
    /// The split the next batch comes from (round robin).
    cursor: usize,
    /// Whether the table is bounded (a reader without splits then ends).
    bounded: bool,
    batch_size: usize,
    throttle: Throttle,
    hex: Vec<u8>,
}

impl DatagenReader {
    pub(crate) fn new(ctx: &SourceContext, cfg: DatagenConfig) -> Result<Self, ConnectorError> {
        let p = ctx.parallelism.max(1);
        let restored = match &ctx.restored_splits {
            None => None,
            Some(blobs) => Some(
                blobs
                    .iter()
                    .map(|b| decode_split(b))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|message| ConnectorError::State { table: ctx.table.clone(), message })?,
            ),
        };
        let splits = StrideSplit::assign(restored, ctx.subtask, p, |i, p| cfg.rows_for(i, p));
        let base_seed = cfg.seed.unwrap_or_else(|| {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
            // Without a seed, subtasks must differ: mix in the subtask.
            seed_of(&[now, ctx.subtask as u64])
        });
        let seeds =
            (0..cfg.fields.len() as u64).map(|c| (seed_of(&[base_seed, c, 1]), seed_of(&[base_seed, c, 2]))).collect();
        let rate = share(cfg.rows_per_second, ctx.subtask, p).max(1);
        Ok(DatagenReader {
            table: ctx.table.clone(),
            schema: ctx.schema.clone(),
            bounded: cfg.rows_for(0, 1).is_some(),
            fields: cfg.fields,
            seeds,
            splits,
            cursor: 0,
            batch_size: ctx.batch_size.max(1),
            throttle: Throttle::new(rate),
            hex: Vec::new(),
        })
    }

    /// Generates the next `n` rows of split `split`.
    fn generate(&mut self, split: usize, n: usize) -> Result<RecordBatch, ConnectorError> {
        let Some(&sp) = self.splits.get(split) else {
            return Err(ConnectorError::Arrow { table: self.table.clone(), message: format!("no split {split}") });
        };
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.fields.len());
        for (f, &(vseed, nseed)) in self.fields.iter().zip(&self.seeds) {
            // Global row number of the split's row k: index + k * stride.
            let g0 = sp.global(sp.produced);
            let step = sp.stride;
            let nulls = null_buffer(f.null_rate, nseed, g0, step, n);
            // Counter-based stream: value k is mix64(seed + (g0 + k*step) * GOLDEN).
            let s0 = vseed.wrapping_add(g0.wrapping_mul(GOLDEN));
            let ds = step.wrapping_mul(GOLDEN);
            let array: ArrayRef = match (&f.generator, f.ty) {
                (Gen::Sequence { start, .. }, ty) => {
                    let v0 = *start as i128 + g0 as i128;
                    let seq = (0..n as i128).map(move |k| (v0 + k * step as i128) as i64);
                    match ty {
                        ColType::Int32 => Arc::new(Int32Array::new(seq.map(|v| v as i32).collect(), nulls)),
                        ColType::Int64 => Arc::new(Int64Array::new(seq.collect(), nulls)),
                        ColType::Float64 => Arc::new(Float64Array::new(seq.map(|v| v as f64).collect(), nulls)),
                        ColType::Decimal { scale, .. } => {
                            let m = 10i128.pow(u32::try_from(scale).unwrap_or(0));
                            let vals: ScalarBuffer<i128> = seq.map(|v| i128::from(v) * m).collect();
                            Arc::new(Decimal128Array::new(vals, nulls).with_data_type(f.data_type.clone()))
                        }
                        _ => {
                            let mut offsets = Vec::with_capacity(n + 1);
                            let mut values = Vec::with_capacity(n * 8);
                            offsets.push(0i32);
                            for v in seq {
                                sluice_format::number::push_i64(&mut values, v);
                                offsets.push(values.len() as i32);
                            }
                            string_array(&self.table, offsets, values, nulls)?
                        }
                    }
                }
                (Gen::Boolean, _) => {
                    let bits = BooleanBuffer::collect_bool(n, |k| {
                        mix64(s0.wrapping_add((k as u64).wrapping_mul(ds))) >> 63 == 1
                    });
                    Arc::new(BooleanArray::new(bits, nulls))
                }
                (Gen::Int { min, max }, ty) => {
                    let span = (*max as i128 - *min as i128 + 1) as u128;
                    let min = *min;
                    let mut s = s0;
                    let mut draw = move || {
                        s = s.wrapping_add(ds);
                        let x = mix64(s.wrapping_sub(ds));
                        if span > u128::from(u64::MAX) {
                            x as i64
                        } else {
                            min.wrapping_add(below(x, span as u64) as i64)
                        }
                    };
                    if ty == ColType::Int32 {
                        Arc::new(Int32Array::new((0..n).map(|_| draw() as i32).collect(), nulls))
                    } else {
                        Arc::new(Int64Array::new((0..n).map(|_| draw()).collect(), nulls))
                    }
                }
                (Gen::Double { min, max }, _) => {
                    let (min, width) = (*min, *max - *min);
                    let vals: ScalarBuffer<f64> = (0..n as u64)
                        .map(|k| min + unit_f64(mix64(s0.wrapping_add(k.wrapping_mul(ds)))) * width)
                        .collect();
                    Arc::new(Float64Array::new(vals, nulls))
                }
                (Gen::Decimal { min, max, pow, limit }, _) => {
                    let (min, width, pow, limit) = (*min, *max - *min, *pow, *limit);
                    let vals: ScalarBuffer<i128> = (0..n as u64)
                        .map(|k| {
                            let v = min + unit_f64(mix64(s0.wrapping_add(k.wrapping_mul(ds)))) * width;
                            ((v * pow).trunc() as i128).clamp(-limit, limit)
                        })
                        .collect();
                    Arc::new(Decimal128Array::new(vals, nulls).with_data_type(f.data_type.clone()))
                }
                (Gen::Timestamp { max_past_ms }, _) => {
                    let past = *max_past_ms;
                    let vals: ScalarBuffer<i64> = (0..n as u64)
                        .map(|k| {
                            if past == 0 {
                                now_ms
                            } else {
                                now_ms - below(mix64(s0.wrapping_add(k.wrapping_mul(ds))), past + 1) as i64
                            }
                        })
                        .collect();
                    Arc::new(TimestampMillisecondArray::new(vals, nulls).with_data_type(f.data_type.clone()))
                }
                (Gen::String { length, var_len }, _) => {
                    let (length, var_len) = (*length, *var_len);
                    let mut offsets = Vec::with_capacity(n + 1);
                    let mut values = std::mem::take(&mut self.hex);
                    values.clear();
                    values.reserve(n * length);
                    offsets.push(0i32);
                    for k in 0..n as u64 {
                        let row_seed = mix64(s0.wrapping_add(k.wrapping_mul(ds)));
                        let len = if var_len && length > 1 {
                            1 + below(row_seed, length as u64 - 1) as usize
                        } else {
                            length
                        };
                        push_hex(&mut values, row_seed, len);
                        if values.len() > i32::MAX as usize {
                            return Err(ConnectorError::Arrow {
                                table: self.table.clone(),
                                message: "a batch of random strings exceeds 2 GiB; lower the batch size or the length"
                                    .into(),
                            });
                        }
                        offsets.push(values.len() as i32);
                    }
                    string_array(&self.table, offsets, values, nulls)?
                }
            };
            arrays.push(array);
        }
        if let Some(s) = self.splits.get_mut(split) {
            s.produced += n as u64;
        }
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )
        .map_err(|e| ConnectorError::Arrow { table: self.table.clone(), message: e.to_string() })
    }
}

/// `len` lower-case hex characters from a per-row stream seeded by `seed`.
#[inline]
fn push_hex(out: &mut Vec<u8>, seed: u64, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = seed;
    let mut remaining = len;
    while remaining > 0 {
        s = s.wrapping_add(GOLDEN);
        let mut x = mix64(s);
        let take = remaining.min(16);
        for _ in 0..take {
            out.push(HEX[(x & 15) as usize]);
            x >>= 4;
        }
        remaining -= take;
    }
}

fn null_buffer(rate: f32, seed: u64, g0: u64, step: u64, n: usize) -> Option<NullBuffer> {
    if rate <= 0.0 {
        return None;
    }
    let s0 = seed.wrapping_add(g0.wrapping_mul(GOLDEN));
    let ds = step.wrapping_mul(GOLDEN);
    // Flink: a value is generated when nextFloat() > nullRate.
    let valid = BooleanBuffer::collect_bool(n, |k| {
        let u = (mix64(s0.wrapping_add((k as u64).wrapping_mul(ds))) >> 40) as f32 / (1u64 << 24) as f32;
        u > rate
    });
    Some(NullBuffer::new(valid))
}

fn string_array(
    table: &str,
    offsets: Vec<i32>,
    values: Vec<u8>,
    nulls: Option<NullBuffer>,
) -> Result<ArrayRef, ConnectorError> {
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    StringArray::try_new(offsets, Buffer::from_vec(values), nulls)
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| ConnectorError::Arrow { table: table.to_string(), message: e.to_string() })
}

fn decode_split(blob: &[u8]) -> Result<StrideSplit, String> {
    let mut d = Dec::new(blob, TAG_DATAGEN)?;
    let s = StrideSplit::decode(&mut d)?;
    d.end()?;
    Ok(s)
}

impl DatagenReader {
    /// `n` rows from several splits, in global order (see [`merge_plan`]).
    fn merged(&mut self, n: usize) -> Result<SourceEvent, ConnectorError> {
        let plan = merge_plan(&self.splits, n);
        let table = self.table.clone();
        merged_batch(plan, &table, |split, rows| self.generate(split, rows))
    }
}

impl SourceReader for DatagenReader {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        // The next split with rows left, in turn from the cursor.
        let len = self.splits.len();
        let Some(split) = (0..len).map(|k| (self.cursor + k) % len).find(|&s| self.splits[s].remaining() != Some(0))
        else {
            return Ok(if self.bounded { SourceEvent::End } else { SourceEvent::Idle });
        };
        let remaining = if len > 1 { total_remaining(&self.splits) } else { self.splits[split].remaining() };
        let want = remaining.map_or(self.batch_size, |r| r.min(self.batch_size as u64) as usize);
        let n = self.throttle.acquire(want);
        if n == 0 {
            return Ok(SourceEvent::Idle);
        }
        self.cursor = (split + 1) % len;
        if len == 1 {
            return Ok(SourceEvent::Batch(self.generate(split, n)?));
        }
        self.merged(n)
    }

    fn has_work(&self) -> bool {
        self.splits.iter().any(|s| s.remaining() != Some(0))
    }

    fn pending_records(&self) -> Option<u64> {
        self.splits.iter().map(StrideSplit::remaining).sum()
    }

    fn snapshot(&self) -> Result<Vec<Vec<u8>>, ConnectorError> {
        Ok(self.splits.iter().map(|s| s.encode(Enc::new(TAG_DATAGEN))).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Field, Int64Type, Schema};

    use super::*;
    use crate::{Role, validate_table};

    fn ctx(
        fields: Vec<Field>,
        opts: &[(&str, &str)],
        subtask: usize,
        parallelism: usize,
        batch: usize,
    ) -> SourceContext {
        let mut options: BTreeMap<String, String> = opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        options.insert("connector".into(), "datagen".into());
        options.entry("rows-per-second".into()).or_insert_with(|| "1000000000".into());
        SourceContext {
            table: "gen".into(),
            options,
            schema: Arc::new(Schema::new(fields)),
            subtask,
            parallelism,
            batch_size: batch,
            local_time_zone: "UTC".into(),
            restored_splits: None,
            s3: crate::S3Options::default(),
        }
    }

    fn drain(c: &SourceContext) -> Vec<RecordBatch> {
        let mut r = crate::create_source(c).unwrap();
        let mut out = Vec::new();
        loop {
            match r.poll().unwrap() {
                SourceEvent::Batch(b) => out.push(b),
                SourceEvent::Idle => {}
                SourceEvent::End => return out,
            }
        }
    }

    fn longs(batches: &[RecordBatch], col: usize) -> Vec<i64> {
        batches.iter().flat_map(|b| b.column(col).as_primitive::<Int64Type>().values().to_vec()).collect()
    }

    #[test]
    fn sequence_is_split_like_flinks_sequence_generator() {
        let f = || vec![Field::new("id", DataType::Int64, false)];
        let opts = [("fields.id.kind", "sequence"), ("fields.id.start", "1"), ("fields.id.end", "10")];
        let per: Vec<Vec<i64>> = (0..3).map(|i| longs(&drain(&ctx(f(), &opts, i, 3, 2)), 0)).collect();
        assert_eq!(per, vec![vec![1, 4, 7, 10], vec![2, 5, 8], vec![3, 6, 9]]);
    }

    #[test]
    fn number_of_rows_is_split_with_the_remainder_first() {
        let f = || vec![Field::new("x", DataType::Int64, false)];
        let counts: Vec<usize> = (0..3)
            .map(|i| drain(&ctx(f(), &[("number-of-rows", "10")], i, 3, 3)).iter().map(|b| b.num_rows()).sum())
            .collect();
        assert_eq!(counts, vec![4, 3, 3]);
    }

    #[test]
    fn seeded_output_is_independent_of_batch_size_and_parallelism() {
        let f = || {
            vec![
                Field::new("a", DataType::Int64, true),
                Field::new("s", DataType::Utf8, true),
                Field::new("d", DataType::Float64, true),
            ]
        };
        let opts =
            [("number-of-rows", "1000"), ("seed", "42"), ("fields.s.length", "5"), ("fields.a.null-rate", "0.2")];
        let rows = |batches: &[RecordBatch]| -> Vec<String> {
            let mut v = Vec::new();
            for b in batches {
                for r in 0..b.num_rows() {
                    let a = b.column(0).as_primitive::<Int64Type>();
                    let a = if a.is_null(r) { "null".to_string() } else { a.value(r).to_string() };
                    let s = b.column(1).as_string::<i32>().value(r);
                    let d = b.column(2).as_primitive::<arrow::datatypes::Float64Type>().value(r);
                    v.push(format!("{a}|{s}|{d}"));
                }
            }
            v
        };
        let one = rows(&drain(&ctx(f(), &opts, 0, 1, 1000)));
        assert_eq!(one.len(), 1000);
        assert_eq!(rows(&drain(&ctx(f(), &opts, 0, 1, 7))), one, "batch size changed the rows");
        let mut three: Vec<String> = (0..3).flat_map(|i| rows(&drain(&ctx(f(), &opts, i, 3, 64)))).collect();
        let mut sorted = one.clone();
        three.sort();
        sorted.sort();
        assert_eq!(three, sorted, "parallelism changed the rows");
        let other = rows(&drain(&ctx(f(), &[("number-of-rows", "1000"), ("seed", "43")], 0, 1, 1000)));
        assert_ne!(other, one);
        let nulls = one.iter().filter(|r| r.starts_with("null|")).count();
        assert!((120..280).contains(&nulls), "null-rate 0.2 gave {nulls} nulls in 1000");
    }

    #[test]
    fn random_values_respect_min_max_and_length() {
        let fields = vec![
            Field::new("i", DataType::Int32, false),
            Field::new("s", DataType::Utf8, false),
            Field::new("d", DataType::Float64, false),
            Field::new("m", DataType::Decimal128(5, 2), false),
            Field::new("b", DataType::Boolean, false),
        ];
        let opts = [
            ("number-of-rows", "5000"),
            ("fields.i.min", "-3"),
            ("fields.i.max", "3"),
            ("fields.s.length", "12"),
            ("fields.d.min", "0.5"),
            ("fields.d.max", "0.75"),
        ];
        let batches = drain(&ctx(fields, &opts, 0, 1, 1024));
        let mut seen = std::collections::BTreeSet::new();
        let mut trues = 0;
        for b in &batches {
            seen.extend(b.column(0).as_primitive::<arrow::datatypes::Int32Type>().values().iter().copied());
            for s in b.column(1).as_string::<i32>().iter().flatten() {
                assert_eq!(s.len(), 12);
                assert!(s.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{s}");
            }
            for d in b.column(2).as_primitive::<arrow::datatypes::Float64Type>().values() {
                assert!((0.5..0.75).contains(d), "{d}");
            }
            for m in b.column(3).as_primitive::<arrow::datatypes::Decimal128Type>().values() {
                assert!(m.abs() <= 99_999, "{m}");
            }
            trues += b.column(4).as_boolean().true_count();
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![-3, -2, -1, 0, 1, 2, 3]);
        assert!((2200..2800).contains(&trues), "{trues} trues of 5000");
    }

    #[test]
    fn default_double_range_is_flinks_positive_range() {
        let batches =
            drain(&ctx(vec![Field::new("d", DataType::Float64, false)], &[("number-of-rows", "100")], 0, 1, 100));
        let d = batches[0].column(0).as_primitive::<arrow::datatypes::Float64Type>();
        assert!(d.values().iter().all(|v| *v > 0.0 && v.is_finite()));
    }

    #[test]
    fn a_slow_rate_returns_idle_instead_of_sleeping_long() {
        let c = ctx(vec![Field::new("x", DataType::Int64, false)], &[("rows-per-second", "1")], 0, 1, 100);
        let mut r = crate::create_source(&c).unwrap();
        match r.poll().unwrap() {
            SourceEvent::Batch(b) => assert_eq!(b.num_rows(), 1),
            other => panic!("expected one row, got {other:?}"),
        }
        // The next row is due in a second: the reader waits at most 100 ms.
        assert!(matches!(r.poll().unwrap(), SourceEvent::Idle));
        assert_eq!(r.pending_records(), None);
    }

    fn err(fields: Vec<Field>, opts: &[(&str, &str)]) -> String {
        let mut options: BTreeMap<String, String> = opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        options.insert("connector".into(), "datagen".into());
        validate_table("gen", &options, &Arc::new(Schema::new(fields)), Role::Source).unwrap_err().to_string()
    }

    #[test]
    fn bad_options_are_clear_errors() {
        let id = || vec![Field::new("id", DataType::Int64, false)];
        assert_eq!(
            err(id(), &[("fields.id.kind", "sequence"), ("fields.id.start", "1")]),
            "table `gen`: field `id` is a sequence and needs both 'fields.id.start' and 'fields.id.end'"
        );
        assert_eq!(
            err(id(), &[("fields.id.kind", "cyclic")]),
            "table `gen`: option 'fields.id.kind' = 'cyclic' is invalid: expected 'random' or 'sequence'"
        );
        assert_eq!(
            err(id(), &[("rows-per-second", "fast")]),
            "table `gen`: option 'rows-per-second' = 'fast' is invalid: expected a non-negative integer"
        );
        assert!(err(id(), &[("fields.idd.min", "1")]).contains("option 'fields.idd.min' names no column of the table"));
        assert!(
            err(vec![Field::new("s", DataType::Utf8, false)], &[("fields.s.min", "1")])
                .contains("option 'fields.s.min' is not supported for field `s` of type STRING")
        );
        assert!(
            err(vec![Field::new("t", DataType::Date32, false)], &[])
                .contains("column `t` has type DATE, which connector 'datagen' does not support")
        );
        assert!(
            err(id(), &[("rows-per-sec", "5")]).contains("unsupported option 'rows-per-sec' for connector 'datagen'")
        );
        let mut sink = BTreeMap::new();
        sink.insert("connector".to_string(), "datagen".to_string());
        let e = validate_table("g", &sink, &Arc::new(Schema::new(id())), Role::Sink).unwrap_err().to_string();
        assert_eq!(e, "table `g`: connector 'datagen' can only be used as a source");
    }

    #[test]
    fn boundedness_follows_rows_and_sequences() {
        let o = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert!(!crate::is_bounded(&o(&[("connector", "datagen")])));
        assert!(crate::is_bounded(&o(&[("connector", "datagen"), ("number-of-rows", "5")])));
        assert!(crate::is_bounded(&o(&[("connector", "datagen"), ("fields.id.kind", "sequence")])));
    }
}
