//! The values of datagen's columns, generated column-wise into plain vectors
//! with no per-row allocation. Value `k` of a column is a pure function of
//! the column's seed and the row's global number (timestamps are relative to
//! the wall clock).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Decimal128Array, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array,
    StringArray, TimestampMillisecondArray,
};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use sluice_format::types::ColType;

use super::options::{FieldGen, Gen};
use crate::rng::{GOLDEN, below, mix64, unit_f64};
use crate::state::StrideSplit;
use crate::{BatchError, ConnectorError};

/// The values of column `f` for `n` rows of split `sp`, from its row
/// `sp.produced` on, drawn from the column's value and null streams
/// (`vseed`, `nseed`); timestamps are at most `max-past` before `now_ms`.
/// `hex` is reused for the bytes of random strings.
pub(super) fn column(
    table: &str,
    f: &FieldGen,
    (vseed, nseed): (u64, u64),
    sp: &StrideSplit,
    n: usize,
    now_ms: i64,
    hex: &mut Vec<u8>,
) -> Result<ArrayRef, ConnectorError> {
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
                ColType::Int8 => Arc::new(Int8Array::new(seq.map(|v| v as i8).collect(), nulls)),
                ColType::Int16 => Arc::new(Int16Array::new(seq.map(|v| v as i16).collect(), nulls)),
                ColType::Int32 => Arc::new(Int32Array::new(seq.map(|v| v as i32).collect(), nulls)),
                ColType::Int64 => Arc::new(Int64Array::new(seq.collect(), nulls)),
                ColType::Float32 => Arc::new(Float32Array::new(seq.map(|v| v as f32).collect(), nulls)),
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
                    string_array(table, offsets, values, nulls)?
                }
            }
        }
        (Gen::Boolean, _) => {
            let bits =
                BooleanBuffer::collect_bool(n, |k| mix64(s0.wrapping_add((k as u64).wrapping_mul(ds))) >> 63 == 1);
            Arc::new(BooleanArray::new(bits, nulls))
        }
        (Gen::Int { min, max }, ty) => {
            let span = (*max as i128 - *min as i128 + 1) as u128;
            let min = *min;
            let mut s = s0;
            let mut draw = move || {
                s = s.wrapping_add(ds);
                let x = mix64(s.wrapping_sub(ds));
                if span > u128::from(u64::MAX) { x as i64 } else { min.wrapping_add(below(x, span as u64) as i64) }
            };
            match ty {
                ColType::Int8 => Arc::new(Int8Array::new((0..n).map(|_| draw() as i8).collect(), nulls)),
                ColType::Int16 => Arc::new(Int16Array::new((0..n).map(|_| draw() as i16).collect(), nulls)),
                ColType::Int32 => Arc::new(Int32Array::new((0..n).map(|_| draw() as i32).collect(), nulls)),
                _ => Arc::new(Int64Array::new((0..n).map(|_| draw()).collect(), nulls)),
            }
        }
        (Gen::Double { min, max }, ty) => {
            let (min, width) = (*min, *max - *min);
            let vals = (0..n as u64).map(move |k| min + unit_f64(mix64(s0.wrapping_add(k.wrapping_mul(ds)))) * width);
            if ty == ColType::Float32 {
                // Within [min, max] of FLOAT, so the narrowing cannot overflow.
                Arc::new(Float32Array::new(vals.map(|v| v as f32).collect(), nulls))
            } else {
                Arc::new(Float64Array::new(vals.collect(), nulls))
            }
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
            let mut values = std::mem::take(hex);
            values.clear();
            values.reserve(n * length);
            offsets.push(0i32);
            for k in 0..n as u64 {
                let row_seed = mix64(s0.wrapping_add(k.wrapping_mul(ds)));
                let len = if var_len && length > 1 { 1 + below(row_seed, length as u64 - 1) as usize } else { length };
                push_hex(&mut values, row_seed, len);
                if values.len() > i32::MAX as usize {
                    return Err(ConnectorError::Batch {
                        table: table.to_string(),
                        source: BatchError::RandomStringsTooLarge,
                    });
                }
                offsets.push(values.len() as i32);
            }
            string_array(table, offsets, values, nulls)?
        }
    };
    Ok(array)
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
        .map_err(|e| ConnectorError::Batch { table: table.to_string(), source: e.into() })
}
