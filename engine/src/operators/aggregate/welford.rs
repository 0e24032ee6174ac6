//! STDDEV_POP, STDDEV_SAMP, VAR_POP and VAR_SAMP as Flink 2.3 computes them.
//!
//! Flink's planner rewrites each of them (its copy of Calcite's
//! `AggregateReduceFunctionsRule`) into its internal `WELFORD_M2` aggregate
//! (`WelfordM2AggFunction`) and `COUNT(x)`, with the same FILTER:
//!
//! - `VAR_POP(x)` = `CAST(M2(x) / COUNT(x) AS t)`;
//! - `VAR_SAMP(x)` = `CAST(M2(x) / CASE COUNT(x) WHEN 1 THEN NULL ELSE COUNT(x) - 1 END AS t)`;
//! - `STDDEV_*` = the same under `POWER(.., 0.5)`;
//!
//! where `t` is the call's type (the AVG type of the argument), so an INT
//! variance is truncated toward zero and a DECIMAL one rounded half-up from
//! the DOUBLE's shortest decimal form (`BigDecimal.valueOf(double)`).
//! `M2(x)` is NULL when the count is not positive or M2 is negative. The
//! accumulator keeps the count, mean and M2 in DOUBLE; a value is read as a
//! DOUBLE (a DECIMAL rounded to the nearest DOUBLE). Its count also counts
//! retractions of values never added (it can go negative), like the COUNT it
//! stands in for; every step below follows `WelfordM2AggFunction` operation
//! for operation, as floating-point results depend on the order of operations.

use arrow::datatypes::DataType;
use sluice_sql::plan::AggFunc;

use crate::state::codec::{Reader, Writer};
use crate::state::value::Val;

/// Flink's `WelfordM2Accumulator`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Welford {
    pub n: i64,
    pub mean: f64,
    pub m2: f64,
}

impl Welford {
    pub fn accumulate(&mut self, x: f64) {
        self.n += 1;
        if self.n <= 0 {
            return;
        }
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        let delta2 = x - self.mean;
        self.m2 += delta * delta2;
    }

    pub fn retract(&mut self, x: f64) {
        self.n -= 1;
        if self.n <= 0 {
            if self.n == 0 {
                self.mean = 0.0;
                self.m2 = 0.0;
            }
            return;
        }
        let delta2 = x - self.mean;
        self.mean -= delta2 / self.n as f64;
        let delta = x - self.mean;
        self.m2 -= delta * delta2;
    }

    /// Merges `other` into this accumulator (Flink's `merge` with one other).
    pub fn merge(&mut self, other: &Welford) {
        let mut negative = 0;
        if other.n <= 0 {
            negative = other.n;
        } else if self.n == 0 {
            *self = *other;
        } else {
            let count = self.n + other.n;
            let delta_mean = other.mean - self.mean;
            let mean = self.mean + other.n as f64 / count as f64 * delta_mean;
            let m2 = self.m2 + other.m2 + self.n as f64 * other.n as f64 / count as f64 * delta_mean * delta_mean;
            *self = Welford { n: count, mean, m2 };
        }
        self.n += negative;
        if self.n <= 0 {
            self.mean = 0.0;
            self.m2 = 0.0;
        }
    }

    /// Whether the accumulator is as new (nothing added or retracted).
    pub fn is_empty(&self) -> bool {
        self.n == 0 && self.mean == 0.0 && self.m2 == 0.0
    }

    /// The variance or standard deviation `func` asks for, in DOUBLE.
    pub fn value(&self, func: AggFunc) -> Option<f64> {
        if self.n <= 0 || self.m2 < 0.0 {
            return None;
        }
        let samp = matches!(func, AggFunc::StddevSamp | AggFunc::VarSamp);
        let denominator = match self.n {
            1 if samp => return None,
            n if samp => n - 1,
            n => n,
        };
        let variance = self.m2 / denominator as f64;
        Some(match func {
            // POWER(v, 0.5): Java's Math.pow(v, 0.5) is the square root of a
            // non-negative v.
            AggFunc::StddevPop | AggFunc::StddevSamp => variance.sqrt(),
            _ => variance,
        })
    }

    /// The aggregate's result, cast to `out` as Flink casts the DOUBLE.
    pub fn result(&self, func: AggFunc, out: &DataType) -> Val {
        let Some(v) = self.value(func) else { return Val::Null };
        match out {
            // Java's narrowing: to int (saturating, NaN to 0), then wrapping.
            DataType::Int64 => Val::I64(v as i64),
            DataType::Int32 => Val::I64(v as i32 as i64),
            DataType::Int16 => Val::I64(v as i32 as i16 as i64),
            DataType::Int8 => Val::I64(v as i32 as i8 as i64),
            DataType::Float32 => Val::F64(v as f32 as f64),
            DataType::Decimal128(p, s) => decimal_from_f64(v, *p, *s).map_or(Val::Null, |v| Val::I128(v.into())),
            _ => Val::F64(v),
        }
    }

    pub fn encode(&self, w: &mut Writer) {
        w.i64(self.n);
        w.f64(self.mean);
        w.f64(self.m2);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Welford, crate::error::OpError> {
        Ok(Welford { n: r.i64()?, mean: r.f64()?, m2: r.f64()? })
    }
}

/// A value of the argument as Flink's `WelfordM2AggFunction` reads it:
/// `Number.doubleValue()`, or `DecimalDataUtils.doubleValue` for a DECIMAL
/// (the unscaled long divided by 10^s up to precision 18, else the nearest
/// DOUBLE to the decimal).
pub fn as_f64(v: &Val, input: Option<&DataType>) -> Option<f64> {
    match (v, input) {
        (Val::I64(x), _) => Some(*x as f64),
        (Val::F64(x), _) => Some(*x),
        (Val::I128(x), Some(DataType::Decimal128(p, s))) if *p <= 18 => Some(x.get() as f64 / 10f64.powi(*s as i32)),
        (Val::I128(x), Some(DataType::Decimal128(_, s))) => format!("{}e-{s}", x.get()).parse().ok(),
        (Val::I128(x), _) => Some(x.get() as f64),
        _ => None,
    }
}

/// `CAST(v AS DECIMAL(p, s))` of a DOUBLE as Flink: `BigDecimal.valueOf(v)`
/// (the shortest decimal that reads back as `v`) rounded half-up to scale
/// `s`; NULL when it needs more than `p` digits or `v` is not finite.
pub fn decimal_from_f64(v: f64, p: u8, s: i8) -> Option<i128> {
    if !v.is_finite() {
        return None;
    }
    // `{:e}` writes the shortest round-trip digits: "-1.2345e-3".
    let text = format!("{:e}", v.abs());
    let (mantissa, exp) = text.split_once('e')?;
    let exp: i32 = exp.parse().ok()?;
    let frac_digits = mantissa.split_once('.').map_or(0, |(_, f)| f.len()) as i32;
    let digits: i128 = mantissa.replace('.', "").parse().ok()?;
    // v = digits * 10^(exp - frac_digits); the unscaled value at scale s:
    let shift = exp - frac_digits + s as i32;
    let unscaled = if shift >= 0 {
        digits.checked_mul(10i128.checked_pow(shift as u32)?)?
    } else if -shift > 38 {
        0
    } else {
        let div = 10i128.pow((-shift) as u32);
        let (q, r) = (digits / div, digits % div);
        if r * 2 >= div { q + 1 } else { q }
    };
    if unscaled >= 10i128.checked_pow(p as u32)? {
        return None;
    }
    Some(if v < 0.0 { -unscaled } else { unscaled })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[f64]) -> Welford {
        let mut w = Welford::default();
        values.iter().for_each(|v| w.accumulate(*v));
        w
    }

    #[test]
    fn variances_of_a_small_set() {
        // 1, 2, 4, 4: mean 2.75; Welford's steps give M2 6.749999999999999,
        // not 6.75, as in Flink.
        let w = of(&[1.0, 2.0, 4.0, 4.0]);
        assert_eq!((w.n, w.mean, w.m2), (4, 2.75, 6.749999999999999));
        assert_eq!(w.value(AggFunc::VarPop), Some(1.6874999999999998));
        assert_eq!(w.value(AggFunc::VarSamp), Some(2.2499999999999996));
        assert_eq!(w.value(AggFunc::StddevSamp), Some(1.4999999999999998));
        assert_eq!(w.result(AggFunc::VarSamp, &DataType::Int32), Val::I64(2), "INT results are truncated");
        assert_eq!(w.result(AggFunc::StddevSamp, &DataType::Int64), Val::I64(1));
        assert_eq!(w.result(AggFunc::VarPop, &DataType::Decimal128(38, 6)), Val::I128(1_687_500.into()));
        assert_eq!(w.result(AggFunc::StddevPop, &DataType::Float64), Val::F64(1.6874999999999998f64.sqrt()));
    }

    #[test]
    fn a_single_value_has_no_sample_variance_and_no_value_none_at_all() {
        let w = of(&[7.0]);
        assert_eq!(w.value(AggFunc::VarPop), Some(0.0));
        assert_eq!(w.value(AggFunc::StddevSamp), None);
        assert_eq!(Welford::default().value(AggFunc::VarPop), None);
    }

    #[test]
    fn follows_flinks_operation_order() {
        // Welford's steps: 0.1, 0.2, 0.3 give M2 0.01999999999999999 (a
        // sum-of-squares M2 differs).
        let w = of(&[0.1, 0.2, 0.3]);
        assert_eq!(w.mean, 0.2);
        assert_eq!(w.m2, 0.01999999999999999);
        assert_eq!(w.value(AggFunc::VarSamp), Some(0.009999999999999995));
    }

    #[test]
    fn retraction_undoes_an_accumulation_and_the_count_can_go_negative() {
        let mut w = of(&[1.0, 2.0, 4.0]);
        w.retract(4.0);
        // 1, 2 again, up to the rounding of the mean
        assert_eq!((w.n, w.mean, w.m2), (2, 1.5000000000000002, 0.5));
        w.retract(1.0);
        w.retract(2.0);
        assert!(w.is_empty());
        w.retract(5.0);
        assert_eq!(w.n, -1);
        assert_eq!(w.value(AggFunc::VarPop), None);
        // The value that comes back is not counted (n goes back to 0).
        w.accumulate(5.0);
        assert!(w.is_empty());
        w.accumulate(3.0);
        assert_eq!(w, of(&[3.0]));
    }

    #[test]
    fn merge_copies_into_an_empty_accumulator_and_combines_otherwise() {
        let mut a = Welford::default();
        a.merge(&of(&[0.1, 0.2]));
        assert_eq!(a, of(&[0.1, 0.2]));
        a.merge(&of(&[0.3]));
        // n = 3, mean 0.15 + 1/3 * 0.15, M2 0.005 + 0 + 2/3 * 0.15^2
        assert_eq!(a.n, 3);
        let d = 0.3 - of(&[0.1, 0.2]).mean;
        assert_eq!(a.mean, of(&[0.1, 0.2]).mean + 1.0 / 3.0 * d);
        assert_eq!(a.m2, of(&[0.1, 0.2]).m2 + 0.0 + 2.0 * 1.0 / 3.0 * d * d);
        let mut neg = Welford::default();
        neg.retract(1.0);
        a.merge(&neg);
        assert_eq!(a.n, 2);
    }

    #[test]
    fn decimal_casts_round_half_up_from_the_shortest_digits() {
        assert_eq!(decimal_from_f64(1.0000005, 38, 6), Some(1_000_001));
        assert_eq!(decimal_from_f64(-1.0000005, 38, 6), Some(-1_000_001));
        assert_eq!(decimal_from_f64(0.1 + 0.2, 38, 6), Some(300_000));
        assert_eq!(decimal_from_f64(123456.0, 38, 6), Some(123_456_000_000));
        assert_eq!(decimal_from_f64(1e-9, 38, 6), Some(0));
        assert_eq!(decimal_from_f64(1e40, 38, 6), None);
        assert_eq!(decimal_from_f64(100.0, 4, 2), None);
        assert_eq!(as_f64(&Val::I128(12345.into()), Some(&DataType::Decimal128(10, 2))), Some(123.45));
        assert_eq!(as_f64(&Val::I128(12345.into()), Some(&DataType::Decimal128(38, 2))), Some(123.45));
    }

    #[test]
    fn codec_round_trips() {
        let w = of(&[0.1, 0.7, -3.0]);
        let mut out = Writer::new();
        w.encode(&mut out);
        let buf = out.buf;
        assert_eq!(Welford::decode(&mut Reader::new(&buf)).unwrap(), w);
    }
}
