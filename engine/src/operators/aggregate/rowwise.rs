//! Accumulators whose state is a group's values rather than a fixed-width
//! number, shared by the window aggregation (one per group, in a copy-on-write
//! column) and the non-windowed aggregation (one per key), with Flink's
//! semantics:
//!
//! - `FIRST_VALUE(x)` / `LAST_VALUE(x)`: the first / last non-NULL value in
//!   arrival order (Flink's `FirstValueAggFunction`, `LastValueAggFunction`).
//!   Over an input that retracts, every value is kept in arrival order, a
//!   retraction removes the first equal value, and the result is the first /
//!   last value left (Flink's `FirstValueWithRetractAggFunction` and
//!   `LastValueWithRetractAggFunction`, whose processing-time orders keep
//!   arrival order).
//! - `LISTAGG(x [, sep])`: the non-NULL values in arrival order joined by the
//!   separator, NULL when there are none; a retraction removes the first equal
//!   value (Flink's `ListAggWithRetractAggFunction`).
//! - `SUM(DISTINCT x)` / `AVG(DISTINCT x)`: each distinct value with its
//!   multiplicity; a value enters the sum when it first appears and leaves it
//!   when its last row is retracted, as Flink's distinct aggregation does.

use hashbrown::HashMap;
use sluice_sql::plan::AggFunc;

use super::AggDef;
use crate::error::OpError;
use crate::operators::group_agg::accs::{Acc, decode_counts, encode_counts};
use crate::state::codec::{Reader, Writer};
use crate::state::value::Val;

#[derive(Debug, Clone)]
pub enum RowAcc {
    /// FIRST_VALUE over an input that does not retract.
    First(Option<Val>),
    /// LAST_VALUE over an input that does not retract.
    Last(Option<Val>),
    /// FIRST_VALUE (`last` false) or LAST_VALUE over an input that retracts:
    /// every value, in arrival order.
    Ordered { last: bool, values: Vec<Val> },
    /// LISTAGG: the values in arrival order and the separator.
    List { sep: Box<str>, values: Vec<Box<str>> },
    /// SUM or AVG (DISTINCT x): the distinct values with their multiplicity,
    /// and the sum (and count) of the distinct values.
    Distinct { values: HashMap<Val, i64>, sum: Box<Acc> },
}

impl RowAcc {
    /// The accumulator of a call that needs one (see [`RowAcc::wanted`]);
    /// `retracting` when the input's retractions are applied.
    pub fn new(def: &AggDef, retracting: bool) -> RowAcc {
        match def.func {
            AggFunc::FirstValue if retracting => RowAcc::Ordered { last: false, values: Vec::new() },
            AggFunc::LastValue if retracting => RowAcc::Ordered { last: true, values: Vec::new() },
            AggFunc::FirstValue => RowAcc::First(None),
            AggFunc::LastValue => RowAcc::Last(None),
            AggFunc::ListAgg => {
                RowAcc::List { sep: def.separator.as_deref().unwrap_or(",").into(), values: Vec::new() }
            }
            _ => {
                let plain = AggDef { distinct: false, ..def.clone() };
                RowAcc::Distinct { values: HashMap::new(), sum: Box::new(Acc::new(&plain, retracting)) }
            }
        }
    }

    /// Whether a call is computed by a [`RowAcc`].
    pub fn wanted(def: &AggDef) -> bool {
        match def.func {
            AggFunc::FirstValue | AggFunc::LastValue | AggFunc::ListAgg => true,
            AggFunc::Sum | AggFunc::Avg => def.distinct,
            AggFunc::Count
            | AggFunc::Min
            | AggFunc::Max
            | AggFunc::StddevPop
            | AggFunc::StddevSamp
            | AggFunc::VarPop
            | AggFunc::VarSamp => false,
        }
    }

    /// Adds (`sign` 1) or retracts (`sign` -1) one value; NULL is ignored.
    pub fn apply(&mut self, v: &Val, sign: i64) -> Result<(), OpError> {
        if v.is_null() {
            return Ok(());
        }
        match self {
            RowAcc::First(first) => {
                if sign > 0 && first.is_none() {
                    *first = Some(v.clone());
                }
            }
            RowAcc::Last(last) => {
                if sign > 0 {
                    *last = Some(v.clone());
                }
            }
            RowAcc::Ordered { values, .. } => {
                if sign > 0 {
                    values.push(v.clone());
                } else if let Some(i) = values.iter().position(|x| x == v) {
                    values.remove(i);
                }
            }
            RowAcc::List { values, .. } => {
                let Val::Str(s) = v else {
                    return Err(OpError::Other(format!("LISTAGG input {v:?} is not a string")));
                };
                if sign > 0 {
                    values.push(s.clone());
                } else if let Some(i) = values.iter().position(|x| x == s) {
                    values.remove(i);
                }
            }
            RowAcc::Distinct { values, sum } => {
                let c = values.entry(v.clone()).or_insert(0);
                let before = *c;
                *c += sign;
                let after = *c;
                if after <= 0 {
                    values.remove(v);
                }
                if before <= 0 && after > 0 {
                    sum.apply(Some(v), 1)?;
                } else if before > 0 && after <= 0 {
                    sum.apply(Some(v), -1)?;
                }
            }
        }
        Ok(())
    }

    /// Folds `other` (a later group: a later session or slice) into this one.
    pub fn merge(&mut self, other: RowAcc) -> Result<(), OpError> {
        match (self, other) {
            (RowAcc::First(a), RowAcc::First(b)) => {
                if a.is_none() {
                    *a = b;
                }
            }
            (RowAcc::Last(a), RowAcc::Last(b)) => {
                if b.is_some() {
                    *a = b;
                }
            }
            (RowAcc::Ordered { values: a, .. }, RowAcc::Ordered { values: b, .. }) => a.extend(b),
            (RowAcc::List { values: a, .. }, RowAcc::List { values: b, .. }) => a.extend(b),
            (RowAcc::Distinct { values: a, sum }, RowAcc::Distinct { values: b, .. }) => {
                for (v, c) in b {
                    let e = a.entry(v.clone()).or_insert(0);
                    if *e <= 0 && *e + c > 0 {
                        sum.apply(Some(&v), 1)?;
                    }
                    *e += c;
                }
            }
            (a, b) => {
                return Err(OpError::Other(format!("cannot merge aggregate state {} into {}", b.layout(), a.layout())));
            }
        }
        Ok(())
    }

    /// The aggregate's result, of `def.output_type`.
    pub fn result(&self, def: &AggDef) -> Val {
        match self {
            RowAcc::First(v) | RowAcc::Last(v) => v.clone().unwrap_or(Val::Null),
            RowAcc::Ordered { last, values } => {
                let v = if *last { values.last() } else { values.first() };
                v.cloned().unwrap_or(Val::Null)
            }
            RowAcc::List { values, .. } if values.is_empty() => Val::Null,
            RowAcc::List { sep, values } => Val::Str(values.join(sep).into()),
            RowAcc::Distinct { sum, .. } => sum.result(&AggDef { distinct: false, ..def.clone() }),
        }
    }

    /// The accumulator's layout, compared on restore.
    pub fn layout(&self) -> &'static str {
        match self {
            RowAcc::First(_) => "first-value",
            RowAcc::Last(_) => "last-value",
            RowAcc::Ordered { last: false, .. } => "first-value-retract",
            RowAcc::Ordered { last: true, .. } => "last-value-retract",
            RowAcc::List { .. } => "listagg",
            RowAcc::Distinct { sum, .. } => match sum.layout() {
                "sum-f64" => "distinct-sum-f64",
                "sum-i128" => "distinct-sum-i128",
                _ => "distinct-sum-i64",
            },
        }
    }

    pub fn encode(&self, w: &mut Writer) {
        match self {
            RowAcc::First(v) => {
                w.u8(0);
                w.opt(v, |w, v| v.encode(w));
            }
            RowAcc::Last(v) => {
                w.u8(1);
                w.opt(v, |w, v| v.encode(w));
            }
            RowAcc::Ordered { last, values } => {
                w.u8(2);
                w.bool(*last);
                w.u32(values.len() as u32);
                values.iter().for_each(|v| v.encode(w));
            }
            RowAcc::List { sep, values } => {
                w.u8(3);
                w.str(sep);
                w.u32(values.len() as u32);
                values.iter().for_each(|v| w.str(v));
            }
            RowAcc::Distinct { values, sum } => {
                w.u8(4);
                encode_counts(w, values.iter());
                sum.encode(w);
            }
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<RowAcc, OpError> {
        Ok(match r.u8()? {
            0 => RowAcc::First(r.opt(Val::decode)?),
            1 => RowAcc::Last(r.opt(Val::decode)?),
            2 => {
                let last = r.bool()?;
                let n = r.u32()? as usize;
                RowAcc::Ordered { last, values: (0..n).map(|_| Val::decode(r)).collect::<Result<_, _>>()? }
            }
            3 => {
                let sep = r.str()?.into_boxed_str();
                let n = r.u32()? as usize;
                let values = (0..n).map(|_| r.str().map(String::into_boxed_str)).collect::<Result<_, _>>()?;
                RowAcc::List { sep, values }
            }
            4 => {
                let values = decode_counts(r)?.into_iter().collect();
                RowAcc::Distinct { values, sum: Box::new(Acc::decode(r)?) }
            }
            t => return Err(OpError::Other(format!("aggregate state holds an unknown value accumulator tag {t}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::DataType;

    use super::*;

    fn int_def(func: AggFunc, distinct: bool, out: DataType) -> AggDef {
        AggDef {
            func,
            arg: None,
            filter: None,
            distinct,
            input_type: Some(out.clone()),
            output_type: out,
            separator: None,
        }
    }

    fn s(x: &str) -> Val {
        Val::Str(x.into())
    }

    fn roundtrip(a: &RowAcc) -> RowAcc {
        let mut w = Writer::new();
        a.encode(&mut w);
        let buf = w.buf;
        RowAcc::decode(&mut Reader::new(&buf)).unwrap()
    }

    #[test]
    fn first_and_last_skip_nulls_and_keep_arrival_order() {
        let def = int_def(AggFunc::FirstValue, false, DataType::Int64);
        let mut first = RowAcc::new(&def, false);
        let mut last = RowAcc::new(&AggDef { func: AggFunc::LastValue, ..def.clone() }, false);
        for v in [Val::Null, Val::I64(3), Val::I64(1), Val::Null] {
            first.apply(&v, 1).unwrap();
            last.apply(&v, 1).unwrap();
        }
        assert_eq!(first.result(&def), Val::I64(3));
        assert_eq!(last.result(&def), Val::I64(1));
        assert_eq!(roundtrip(&last).result(&def), Val::I64(1));
    }

    #[test]
    fn retracting_first_and_last_remove_the_first_equal_value() {
        let def = int_def(AggFunc::FirstValue, false, DataType::Int64);
        let mut first = RowAcc::new(&def, true);
        let mut last = RowAcc::new(&AggDef { func: AggFunc::LastValue, ..def.clone() }, true);
        for v in [1, 2, 1, 3] {
            first.apply(&Val::I64(v), 1).unwrap();
            last.apply(&Val::I64(v), 1).unwrap();
        }
        first.apply(&Val::I64(1), -1).unwrap();
        last.apply(&Val::I64(3), -1).unwrap();
        // [2, 1, 3] and [1, 2, 1]
        assert_eq!(first.result(&def), Val::I64(2));
        assert_eq!(last.result(&def), Val::I64(1));
        last.apply(&Val::I64(1), -1).unwrap();
        // [2, 1]: the first 1 went, the last value is still 1
        assert_eq!(last.result(&def), Val::I64(1));
        let restored = roundtrip(&first);
        assert_eq!(restored.layout(), "first-value-retract");
        assert_eq!(restored.result(&def), Val::I64(2));
        for v in [2, 1, 3] {
            first.apply(&Val::I64(v), -1).unwrap();
        }
        assert_eq!(first.result(&def), Val::Null);
    }

    #[test]
    fn listagg_joins_with_the_separator_and_retracts() {
        let def = AggDef { separator: Some("|".into()), ..int_def(AggFunc::ListAgg, false, DataType::Utf8) };
        let mut a = RowAcc::new(&def, true);
        assert_eq!(a.result(&def), Val::Null);
        for v in [s("x"), Val::Null, s("y"), s("x")] {
            a.apply(&v, 1).unwrap();
        }
        assert_eq!(a.result(&def), s("x|y|x"));
        a.apply(&s("x"), -1).unwrap();
        assert_eq!(a.result(&def), s("y|x"));
        let mut b = RowAcc::new(&def, false);
        b.apply(&s("z"), 1).unwrap();
        a.merge(b).unwrap();
        assert_eq!(roundtrip(&a).result(&def), s("y|x|z"));
        let dflt = int_def(AggFunc::ListAgg, false, DataType::Utf8);
        let mut c = RowAcc::new(&dflt, false);
        c.apply(&s("a"), 1).unwrap();
        c.apply(&s("b"), 1).unwrap();
        assert_eq!(c.result(&dflt), s("a,b"));
    }

    #[test]
    fn distinct_sum_and_avg_count_each_value_once() {
        let sum = int_def(AggFunc::Sum, true, DataType::Int32);
        let avg = int_def(AggFunc::Avg, true, DataType::Int32);
        let mut a = RowAcc::new(&sum, true);
        let mut b = RowAcc::new(&avg, true);
        for v in [4, 4, 1, 2] {
            a.apply(&Val::I64(v), 1).unwrap();
            b.apply(&Val::I64(v), 1).unwrap();
        }
        assert_eq!(a.result(&sum), Val::I64(7));
        // (4 + 1 + 2) / 3, truncated as Flink's AVG of INT
        assert_eq!(b.result(&avg), Val::I64(2));
        a.apply(&Val::I64(4), -1).unwrap();
        assert_eq!(a.result(&sum), Val::I64(7), "one 4 is left");
        a.apply(&Val::I64(4), -1).unwrap();
        assert_eq!(a.result(&sum), Val::I64(3));
        let mut other = RowAcc::new(&sum, false);
        other.apply(&Val::I64(1), 1).unwrap();
        other.apply(&Val::I64(10), 1).unwrap();
        a.merge(other).unwrap();
        assert_eq!(roundtrip(&a).result(&sum), Val::I64(13));
        for v in [1, 1, 2, 10] {
            a.apply(&Val::I64(v), -1).unwrap();
        }
        assert_eq!(a.result(&sum), Val::Null);
    }
}
