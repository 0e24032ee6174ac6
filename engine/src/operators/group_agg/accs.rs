//! Retractable accumulators of the non-windowed aggregation, one per aggregate
//! call and group, with Flink's results (the same types and rounding as the
//! window aggregation's, see `operators::aggregate`):
//!
//! - COUNT keeps a count, SUM and AVG a sum and the count of values summed
//!   (a SUM of no values is NULL, as Flink's `SumWithRetractAggFunction`);
//! - MIN and MAX keep every value with its multiplicity when the input can
//!   retract (Flink's `MinWithRetractAggFunction`), else only the extreme;
//! - COUNT(DISTINCT) keeps each value with its multiplicity;
//! - FIRST_VALUE, LAST_VALUE, LISTAGG and SUM/AVG(DISTINCT) keep values (see
//!   `operators::aggregate::rowwise`);
//! - STDDEV_POP, STDDEV_SAMP, VAR_POP and VAR_SAMP keep Flink's Welford
//!   accumulator, which retracts (see `operators::aggregate::welford`).
//!
//! An accumulator takes 24 bytes: COUNT, SUM and AVG of integers and doubles,
//! and MIN and MAX of integers, are inline, and the rest are boxed, since a
//! group's accumulators are most of a GROUP BY's memory per key.

use std::collections::BTreeMap;

use arrow::datatypes::DataType;
use hashbrown::HashMap;
use sluice_sql::plan::AggFunc;

use crate::error::OpError;
use crate::operators::aggregate::rowwise::RowAcc;
use crate::operators::aggregate::welford::{Welford, as_f64};
use crate::operators::aggregate::{AggDef, div_half_up};
use crate::state::codec::{Reader, Writer};
use crate::state::value::{Val, block};

// The boxed maps are deliberate: inline, they would make every accumulator 32
// bytes or more (see `an_accumulator_takes_24_bytes`).
#[allow(clippy::box_collection)]
#[derive(Debug, Clone)]
pub enum Acc {
    Count(i64),
    SumI64 {
        sum: i64,
        n: i64,
    },
    SumF64 {
        sum: f64,
        n: i64,
    },
    /// A DECIMAL sum and the count of values summed.
    SumI128(Box<(i128, i64)>),
    /// MIN/MAX over an input that may retract: every value, counted.
    Values {
        max: bool,
        values: Box<BTreeMap<Val, i64>>,
    },
    /// MIN/MAX of integers (and times) over an append-only input.
    ExtremeI64 {
        max: bool,
        value: Option<i64>,
    },
    /// MIN/MAX of strings over an append-only input.
    ExtremeStr {
        max: bool,
        value: Option<Box<str>>,
    },
    /// MIN/MAX over an append-only input: the extreme so far.
    Extreme {
        max: bool,
        value: Option<Box<Val>>,
    },
    Distinct(Box<HashMap<Val, i64>>),
    /// FIRST_VALUE, LAST_VALUE, LISTAGG, SUM/AVG(DISTINCT).
    Rows(Box<RowAcc>),
    /// STDDEV_POP, STDDEV_SAMP, VAR_POP, VAR_SAMP, and a DECIMAL argument's
    /// precision and scale (how its values read as DOUBLE).
    Welford(Box<(Welford, Option<(u8, i8)>)>),
}

impl Acc {
    /// The heap bytes the accumulator holds besides itself: a string
    /// extreme's block; a boxed kind's (maps of values, row accumulators),
    /// taken at three times its encoding, as the disk backend takes values
    /// that cannot tell.
    pub fn heap_size(&self) -> usize {
        match self {
            Acc::Count(_)
            | Acc::SumI64 { .. }
            | Acc::SumF64 { .. }
            | Acc::ExtremeI64 { .. }
            | Acc::ExtremeStr { value: None, .. } => 0,
            Acc::ExtremeStr { value: Some(s), .. } => block(s.len()),
            Acc::Extreme { value, .. } => {
                value.as_ref().map_or(0, |v| block(std::mem::size_of::<Val>()) + v.heap_size())
            }
            _ => {
                let mut w = Writer::new();
                self.encode(&mut w);
                3 * w.buf.len()
            }
        }
    }

    pub fn new(def: &AggDef, retracting: bool) -> Acc {
        let max = def.func == AggFunc::Max;
        if RowAcc::wanted(def) {
            return Acc::Rows(Box::new(RowAcc::new(def, retracting)));
        }
        match def.func {
            AggFunc::Count if def.distinct => Acc::Distinct(Box::default()),
            AggFunc::Count => Acc::Count(0),
            AggFunc::Sum | AggFunc::Avg => match def.input_type {
                Some(DataType::Float64 | DataType::Float32) => Acc::SumF64 { sum: 0.0, n: 0 },
                Some(DataType::Decimal128(_, _)) => Acc::SumI128(Box::new((0, 0))),
                _ => Acc::SumI64 { sum: 0, n: 0 },
            },
            AggFunc::Min | AggFunc::Max if retracting => Acc::Values { max, values: Box::default() },
            AggFunc::Min | AggFunc::Max if def.input_type.as_ref().is_some_and(is_i64) => {
                Acc::ExtremeI64 { max, value: None }
            }
            AggFunc::Min | AggFunc::Max if matches!(def.input_type, Some(DataType::Utf8 | DataType::LargeUtf8)) => {
                Acc::ExtremeStr { max, value: None }
            }
            AggFunc::Min | AggFunc::Max => Acc::Extreme { max, value: None },
            // Computed by a `RowAcc` (see `RowAcc::wanted`).
            AggFunc::FirstValue | AggFunc::LastValue | AggFunc::ListAgg => {
                Acc::Rows(Box::new(RowAcc::new(def, retracting)))
            }
            AggFunc::StddevPop | AggFunc::StddevSamp | AggFunc::VarPop | AggFunc::VarSamp => {
                let decimal = match def.input_type {
                    Some(DataType::Decimal128(p, s)) => Some((p, s)),
                    _ => None,
                };
                Acc::Welford(Box::new((Welford::default(), decimal)))
            }
        }
    }

    /// Adds (`sign` 1) or retracts (`sign` -1) one value; `None` is a row
    /// without a value (`COUNT(*)`); a NULL value is ignored, as in SQL.
    pub fn apply(&mut self, value: Option<&Val>, sign: i64) -> Result<(), OpError> {
        let v = match value {
            None => {
                if let Acc::Count(c) = self {
                    *c += sign;
                }
                return Ok(());
            }
            Some(Val::Null) => return Ok(()),
            Some(v) => v,
        };
        match self {
            Acc::Count(c) => *c += sign,
            Acc::SumI64 { sum, n } => {
                let Val::I64(x) = v else { return Err(mismatch(v, "an integer")) };
                *sum = if sign > 0 { sum.wrapping_add(*x) } else { sum.wrapping_sub(*x) };
                *n += sign;
            }
            Acc::SumF64 { sum, n } => {
                let Val::F64(x) = v else { return Err(mismatch(v, "a DOUBLE")) };
                *sum = if sign > 0 { *sum + x } else { *sum - x };
                *n += sign;
            }
            Acc::SumI128(b) => {
                let Val::I128(x) = v else { return Err(mismatch(v, "a DECIMAL")) };
                let (sum, n) = &mut **b;
                *sum = if sign > 0 { sum.wrapping_add(x.get()) } else { sum.wrapping_sub(x.get()) };
                *n += sign;
            }
            Acc::Values { values, .. } => {
                let c = values.entry(v.clone()).or_insert(0);
                *c += sign;
                if *c == 0 {
                    values.remove(v);
                }
            }
            Acc::ExtremeI64 { max, value } => match v {
                Val::I64(x) => {
                    let better = value.is_none_or(|o| if *max { *x > o } else { *x < o });
                    if sign > 0 && better {
                        *value = Some(*x);
                    }
                }
                // Not an integer after all: kept as any value from here on.
                _ => {
                    let value = value.map(|o| Box::new(Val::I64(o)));
                    *self = Acc::Extreme { max: *max, value };
                    return self.apply(Some(v), sign);
                }
            },
            Acc::ExtremeStr { max, value } => match v {
                Val::Str(x) => {
                    let better = value.as_deref().is_none_or(|o| if *max { &**x > o } else { &**x < o });
                    if sign > 0 && better {
                        *value = Some(x.clone());
                    }
                }
                _ => {
                    let value = value.take().map(|o| Box::new(Val::Str(o)));
                    *self = Acc::Extreme { max: *max, value };
                    return self.apply(Some(v), sign);
                }
            },
            Acc::Extreme { max, value } => {
                let better = value.as_deref().is_none_or(|o| if *max { v > o } else { v < o });
                if sign > 0 && better {
                    match value {
                        Some(o) => **o = v.clone(),
                        None => *value = Some(Box::new(v.clone())),
                    }
                }
            }
            Acc::Distinct(values) => {
                let c = values.entry(v.clone()).or_insert(0);
                *c += sign;
                if *c == 0 {
                    values.remove(v);
                }
            }
            Acc::Rows(r) => r.apply(v, sign)?,
            Acc::Welford(b) => {
                let (w, t) = &mut **b;
                match as_f64(v, t.map(|(p, s)| DataType::Decimal128(p, s)).as_ref()) {
                    Some(x) if sign > 0 => w.accumulate(x),
                    Some(x) => w.retract(x),
                    None => return Err(mismatch(v, "a number")),
                }
            }
        }
        Ok(())
    }

    /// The aggregate's current result, of `def.output_type`.
    pub fn result(&self, def: &AggDef) -> Val {
        let avg = def.func == AggFunc::Avg;
        match self {
            Acc::Count(c) => Val::I64(*c),
            Acc::Distinct(values) => Val::I64(values.len() as i64),
            Acc::SumI64 { n: 0, .. } | Acc::SumF64 { n: 0, .. } => Val::Null,
            Acc::SumI128(b) if b.1 == 0 => Val::Null,
            Acc::SumI64 { sum, n } => {
                let v = if avg { sum.wrapping_div(*n) } else { *sum };
                // Java's int, short and byte arithmetic wraps at their width.
                Val::I64(match def.output_type {
                    DataType::Int32 => v as i32 as i64,
                    DataType::Int16 => v as i16 as i64,
                    DataType::Int8 => v as i8 as i64,
                    _ => v,
                })
            }
            Acc::SumF64 { sum, n } => Val::F64(if avg { sum / *n as f64 } else { *sum }),
            Acc::SumI128(b) => {
                let (sum, n) = &**b;
                if !avg {
                    return Val::I128((*sum).into());
                }
                let in_scale = match &def.input_type {
                    Some(DataType::Decimal128(_, s)) => *s,
                    _ => 0,
                };
                let out_scale = match &def.output_type {
                    DataType::Decimal128(_, s) => *s,
                    _ => in_scale,
                };
                match sum.checked_mul(10i128.pow((out_scale - in_scale).max(0) as u32)) {
                    Some(scaled) => Val::I128(div_half_up(scaled, *n as i128).into()),
                    None => Val::Null,
                }
            }
            Acc::Values { max, values } => {
                let v = if *max { values.keys().next_back() } else { values.keys().next() };
                v.cloned().unwrap_or(Val::Null)
            }
            Acc::ExtremeI64 { value, .. } => value.map_or(Val::Null, Val::I64),
            Acc::ExtremeStr { value, .. } => value.clone().map_or(Val::Null, Val::Str),
            Acc::Extreme { value, .. } => value.as_deref().cloned().unwrap_or(Val::Null),
            Acc::Rows(r) => r.result(def),
            Acc::Welford(b) => b.0.result(def.func, &def.output_type),
        }
    }

    pub fn encode(&self, w: &mut Writer) {
        match self {
            Acc::Count(c) => {
                w.u8(0);
                w.i64(*c);
            }
            Acc::SumI64 { sum, n } => {
                w.u8(1);
                w.i64(*sum);
                w.i64(*n);
            }
            Acc::SumF64 { sum, n } => {
                w.u8(2);
                w.f64(*sum);
                w.i64(*n);
            }
            Acc::SumI128(b) => {
                w.u8(3);
                w.i128(b.0);
                w.i64(b.1);
            }
            Acc::Values { max, values } => {
                w.u8(4);
                w.bool(*max);
                encode_counts(w, values.iter());
            }
            // Encoded alike: a restore picks the variant by the value.
            Acc::ExtremeI64 { max, value } => {
                w.u8(5);
                w.bool(*max);
                w.opt(&value.map(Val::I64), |w, v| v.encode(w));
            }
            Acc::ExtremeStr { max, value } => encode_extreme_str(w, *max, value.as_deref().map(str::as_bytes)),
            Acc::Extreme { max, value } => {
                w.u8(5);
                w.bool(*max);
                w.opt(value, |w, v| v.encode(w));
            }
            Acc::Distinct(values) => {
                w.u8(6);
                encode_counts(w, values.iter());
            }
            Acc::Rows(r) => {
                w.u8(7);
                r.encode(w);
            }
            Acc::Welford(b) => {
                let (x, decimal) = &**b;
                w.u8(8);
                x.encode(w);
                w.opt(decimal, |w, (p, s)| {
                    w.u8(*p);
                    w.u8(*s as u8);
                });
            }
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Acc, OpError> {
        Ok(match r.u8()? {
            0 => Acc::Count(r.i64()?),
            1 => Acc::SumI64 { sum: r.i64()?, n: r.i64()? },
            2 => Acc::SumF64 { sum: r.f64()?, n: r.i64()? },
            3 => Acc::SumI128(Box::new((r.i128()?, r.i64()?))),
            4 => Acc::Values { max: r.bool()?, values: Box::new(decode_counts(r)?.into_iter().collect()) },
            5 => {
                let max = r.bool()?;
                match r.opt(Val::decode)? {
                    None => Acc::Extreme { max, value: None },
                    Some(Val::I64(x)) => Acc::ExtremeI64 { max, value: Some(x) },
                    Some(Val::Str(x)) => Acc::ExtremeStr { max, value: Some(x) },
                    Some(v) => Acc::Extreme { max, value: Some(Box::new(v)) },
                }
            }
            6 => Acc::Distinct(Box::new(decode_counts(r)?.into_iter().collect())),
            7 => Acc::Rows(Box::new(RowAcc::decode(r)?)),
            8 => Acc::Welford(Box::new((Welford::decode(r)?, r.opt(|r| Ok((r.u8()?, r.u8()? as i8)))?))),
            t => return Err(OpError::Other(format!("aggregate state holds an unknown accumulator tag {t}"))),
        })
    }

    /// The accumulator's layout, compared on restore.
    pub fn layout(&self) -> &'static str {
        match self {
            Acc::Count(_) => "count",
            Acc::SumI64 { .. } => "sum-i64",
            Acc::SumF64 { .. } => "sum-f64",
            Acc::SumI128 { .. } => "sum-i128",
            Acc::Values { max: true, .. } => "max-retract",
            Acc::Values { max: false, .. } => "min-retract",
            Acc::Extreme { max: true, .. } | Acc::ExtremeI64 { max: true, .. } | Acc::ExtremeStr { max: true, .. } => {
                "max"
            }
            Acc::Extreme { max: false, .. }
            | Acc::ExtremeI64 { max: false, .. }
            | Acc::ExtremeStr { max: false, .. } => "min",
            Acc::Distinct(_) => "count-distinct",
            Acc::Rows(r) => r.layout(),
            Acc::Welford(..) => "welford-m2",
        }
    }
}

/// A string MIN or MAX in the encoding of a MIN or MAX (tag 5) whose value,
/// when there is one, is a `Val::Str` of these UTF-8 bytes.
pub(crate) fn encode_extreme_str(w: &mut Writer, max: bool, value: Option<&[u8]>) {
    w.u8(5);
    w.bool(max);
    w.opt(&value, |w, v| {
        w.u8(Val::Str(Box::default()).rank());
        w.bytes(v);
    });
}

/// Whether a column's values are `Val::I64`s: integers, dates and times.
fn is_i64(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Date32
            | DataType::Timestamp(_, _)
    )
}

fn mismatch(v: &Val, want: &str) -> OpError {
    OpError::Other(format!("aggregate input {v:?} is not {want}"))
}

pub(crate) fn encode_counts<'a>(w: &mut Writer, values: impl ExactSizeIterator<Item = (&'a Val, &'a i64)>) {
    w.u32(values.len() as u32);
    for (v, c) in values {
        v.encode(w);
        w.i64(*c);
    }
}

pub(crate) fn decode_counts(r: &mut Reader<'_>) -> Result<Vec<(Val, i64)>, OpError> {
    let n = r.u32()? as usize;
    let mut out = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        out.push((Val::decode(r)?, r.i64()?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(func: AggFunc, input: DataType, output: DataType) -> AggDef {
        AggDef {
            func,
            arg: None,
            filter: None,
            distinct: false,
            input_type: Some(input),
            output_type: output,
            separator: None,
        }
    }

    #[test]
    fn an_accumulator_takes_24_bytes() {
        assert_eq!(std::mem::size_of::<Acc>(), 24);
    }

    #[test]
    fn an_integer_extreme_takes_other_values_and_round_trips() {
        let d = def(AggFunc::Max, DataType::Int64, DataType::Int64);
        let mut a = Acc::new(&d, false);
        assert!(matches!(a, Acc::ExtremeI64 { .. }));
        for v in [3, 9, 5] {
            a.apply(Some(&Val::I64(v)), 1).unwrap();
        }
        assert_eq!(a.result(&d), Val::I64(9));
        let mut w = Writer::new();
        a.encode(&mut w);
        let mut back = Acc::decode(&mut Reader::new(&w.buf)).unwrap();
        assert!(matches!(back, Acc::ExtremeI64 { value: Some(9), .. }));
        assert_eq!(back.layout(), "max");
        back.apply(Some(&Val::F64(10.5)), 1).unwrap();
        assert_eq!(back.result(&d), Val::F64(10.5));
        let d = def(AggFunc::Min, DataType::Utf8, DataType::Utf8);
        let mut a = Acc::new(&d, false);
        assert!(matches!(a, Acc::ExtremeStr { .. }));
        for v in ["b", "a", "c"] {
            a.apply(Some(&Val::Str(v.into())), 1).unwrap();
        }
        assert_eq!(a.result(&d), Val::Str("a".into()));
        let mut w = Writer::new();
        a.encode(&mut w);
        let back = Acc::decode(&mut Reader::new(&w.buf)).unwrap();
        assert!(matches!(&back, Acc::ExtremeStr { value: Some(v), .. } if &**v == "a"));
        assert_eq!(back.layout(), "min");
    }

    #[test]
    fn retracting_the_extreme_falls_back_to_the_next_value() {
        let d = def(AggFunc::Max, DataType::Int64, DataType::Int64);
        let mut a = Acc::new(&d, true);
        for v in [3, 7, 7, 5] {
            a.apply(Some(&Val::I64(v)), 1).unwrap();
        }
        assert_eq!(a.result(&d), Val::I64(7));
        a.apply(Some(&Val::I64(7)), -1).unwrap();
        assert_eq!(a.result(&d), Val::I64(7));
        a.apply(Some(&Val::I64(7)), -1).unwrap();
        assert_eq!(a.result(&d), Val::I64(5));
        for v in [3, 5] {
            a.apply(Some(&Val::I64(v)), -1).unwrap();
        }
        assert_eq!(a.result(&d), Val::Null);
    }

    #[test]
    fn sums_wrap_as_java_and_are_null_without_values() {
        let d = def(AggFunc::Sum, DataType::Int32, DataType::Int32);
        let mut a = Acc::new(&d, true);
        assert_eq!(a.result(&d), Val::Null);
        a.apply(Some(&Val::I64(i32::MAX as i64)), 1).unwrap();
        a.apply(Some(&Val::I64(1)), 1).unwrap();
        assert_eq!(a.result(&d), Val::I64(i32::MIN as i64));
        a.apply(Some(&Val::Null), 1).unwrap();
        a.apply(Some(&Val::I64(1)), -1).unwrap();
        assert_eq!(a.result(&d), Val::I64(i32::MAX as i64));
        let avg = def(AggFunc::Avg, DataType::Decimal128(10, 2), DataType::Decimal128(38, 6));
        let mut a = Acc::new(&avg, false);
        for v in [100, 200, 200] {
            a.apply(Some(&Val::I128(v.into())), 1).unwrap();
        }
        // (1.00 + 2.00 + 2.00) / 3 = 1.666667, half-up at scale 6.
        assert_eq!(a.result(&avg), Val::I128(1_666_667.into()));
    }

    #[test]
    fn accumulators_round_trip_through_the_codec() {
        let d = def(AggFunc::Min, DataType::Utf8, DataType::Utf8);
        let mut a = Acc::new(&d, true);
        a.apply(Some(&Val::Str("b".into())), 1).unwrap();
        a.apply(Some(&Val::Str("a".into())), 1).unwrap();
        let mut w = Writer::new();
        a.encode(&mut w);
        let back = Acc::decode(&mut Reader::new(&w.buf)).unwrap();
        assert_eq!(back.result(&d), Val::Str("a".into()));
        assert_eq!(back.layout(), "min-retract");
    }

    #[test]
    fn variance_of_decimals_retracts_and_round_trips_with_its_scale() {
        let d = def(AggFunc::VarSamp, DataType::Decimal128(10, 2), DataType::Decimal128(38, 6));
        let mut a = Acc::new(&d, true);
        assert_eq!(a.layout(), "welford-m2");
        // 1.00, 2.00, 4.00, 4.00 and a NULL; then 9.99 comes and goes.
        for v in [100, 200, 400, 400, 999] {
            a.apply(Some(&Val::I128(v.into())), 1).unwrap();
        }
        a.apply(Some(&Val::Null), 1).unwrap();
        a.apply(Some(&Val::I128(999.into())), -1).unwrap();
        let mut w = Writer::new();
        a.encode(&mut w);
        let mut back = Acc::decode(&mut Reader::new(&w.buf)).unwrap();
        assert_eq!(back.layout(), "welford-m2");
        // M2 / 3 = 2.25 up to rounding, half-up at scale 6.
        assert_eq!(back.result(&d), Val::I128(2_250_000.into()));
        // The decoded accumulator still reads DECIMAL(10, 2) values.
        for v in [100, 200, 400] {
            back.apply(Some(&Val::I128(v.into())), -1).unwrap();
        }
        assert_eq!(back.result(&d), Val::Null, "the sample variance of one value is NULL");
    }

    #[test]
    fn value_accumulators_are_chosen_by_retraction_and_round_trip() {
        let d = def(AggFunc::LastValue, DataType::Utf8, DataType::Utf8);
        assert_eq!(Acc::new(&d, false).layout(), "last-value");
        let mut a = Acc::new(&d, true);
        for v in ["x", "y", "z"] {
            a.apply(Some(&Val::Str(v.into())), 1).unwrap();
        }
        a.apply(Some(&Val::Str("z".into())), -1).unwrap();
        let mut w = Writer::new();
        a.encode(&mut w);
        let back = Acc::decode(&mut Reader::new(&w.buf)).unwrap();
        assert_eq!(back.layout(), "last-value-retract");
        assert_eq!(back.result(&d), Val::Str("y".into()));
        let sum = AggDef { distinct: true, ..def(AggFunc::Sum, DataType::Float64, DataType::Float64) };
        assert_eq!(Acc::new(&sum, true).layout(), "distinct-sum-f64");
    }
}
