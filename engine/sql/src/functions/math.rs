//! Flink's numeric functions that DataFusion names or types differently.
//!
//! - `TRUNCATE(x [, n])`: `x` cut (toward zero) to `n` decimal places
//!   (default 0; negative `n` zeroes digits left of the point). Integers keep
//!   their type, a DECIMAL(p, s) becomes DECIMAL(p - s + n + 1, n) as Flink's
//!   rounding type rule says, and a DOUBLE is cut in decimal, as Java's
//!   `BigDecimal` does, so TRUNCATE(-0.5) is 0.0.
//! - `SIGN(x)`: -1, 0 or 1 of `x`'s own type.
//! - `E()`: DOUBLE 2.718281828459045.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Decimal128Type, Float64Type};
use datafusion_common::{Result, ScalarValue};

use super::udf::{Ctx, Def, is_integer, is_numeric, long_at, longs};

pub const DEFS: &[Def] = &[
    Def {
        name: "truncate",
        usage: "(number [, decimal places])",
        min_args: 1,
        max_args: 2,
        volatile: false,
        ret: ret_truncate,
        eval: truncate,
    },
    Def { name: "sign", usage: "(number)", min_args: 1, max_args: 1, volatile: false, ret: ret_sign, eval: sign },
    Def {
        name: "e",
        usage: "no arguments",
        min_args: 0,
        max_args: 0,
        volatile: false,
        ret: |_, _, _, _| Ok(DataType::Float64),
        eval: |ctx, _, _| Ok(Arc::new(Float64Array::from(vec![std::f64::consts::E; ctx.rows]))),
    },
];

/// The number's own type, with FLOAT widened to DOUBLE.
fn number_type(d: &Def, args: &[DataType]) -> Result<DataType> {
    d.expect(args, 0, "a number", is_numeric)?;
    Ok(match &args[0] {
        DataType::Float32 | DataType::Float16 | DataType::Null => DataType::Float64,
        t => t.clone(),
    })
}

fn ret_truncate(d: &Def, args: &[DataType], scalars: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 1, "an integer number of decimal places", is_integer)?;
    let t = number_type(d, args)?;
    let places = match scalars.get(1) {
        Some(Some(v)) => v.cast_to(&DataType::Int64).ok().and_then(|v| match v {
            ScalarValue::Int64(n) => n,
            _ => None,
        }),
        _ => None,
    };
    Ok(match (t, places.or(if args.len() == 1 { Some(0) } else { None })) {
        (DataType::Decimal128(p, s), Some(r)) if r < i64::from(s) => {
            let r = r.max(0) as i8;
            let p = (i16::from(p) - i16::from(s) + i16::from(r) + 1).clamp(1, 38) as u8;
            DataType::Decimal128(p, r)
        }
        (t, _) => t,
    })
}

/// `10^e` as an i128, saturating.
fn pow10(e: u32) -> i128 {
    10i128.checked_pow(e).unwrap_or(i128::MAX)
}

fn truncate(_: &Ctx, args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let places = match args.get(1) {
        Some(p) => longs(p)?,
        None => Int64Array::from(vec![0; args[0].len()]),
    };
    let x = &args[0];
    let out: ArrayRef = match x.data_type() {
        DataType::Decimal128(_, s) => {
            let s = i64::from(*s);
            let v = x.as_primitive::<Decimal128Type>();
            let cut: Decimal128Array = (0..v.len())
                .map(|i| {
                    let r = long_at(&places, i)?;
                    let v = (!v.is_null(i)).then(|| v.value(i))?;
                    let drop = u32::try_from((s - r).clamp(0, 38)).ok()?;
                    Some(v / pow10(drop) * pow10(drop))
                })
                .collect();
            let cut = cut.with_precision_and_scale(38, s as i8)?;
            cast(&(Arc::new(cut) as ArrayRef), ret)?
        }
        DataType::Float64 | DataType::Float32 | DataType::Float16 | DataType::Null => {
            let f = cast(x, &DataType::Float64)?;
            let f = f.as_primitive::<Float64Type>();
            let out: Float64Array = (0..f.len())
                .map(|i| {
                    let r = long_at(&places, i)?;
                    (!f.is_null(i)).then(|| truncate_double(f.value(i), r))
                })
                .collect();
            Arc::new(out)
        }
        _ => {
            let n = longs(x)?;
            let out: Int64Array = (0..n.len())
                .map(|i| {
                    let r = long_at(&places, i)?;
                    let v = long_at(&n, i)?;
                    if r >= 0 {
                        return Some(v);
                    }
                    let unit = 10i64.checked_pow(u32::try_from(-r).ok()?).unwrap_or(i64::MAX);
                    Some(v / unit * unit)
                })
                .collect();
            cast(&(Arc::new(out) as ArrayRef), ret)?
        }
    };
    Ok(out)
}

/// Cuts `v` to `places` decimals on its shortest decimal text, as
/// `BigDecimal.valueOf(v).setScale(places, DOWN)` does.
fn truncate_double(v: f64, places: i64) -> f64 {
    if !v.is_finite() {
        return v;
    }
    let text = format!("{v:e}");
    let Some((mantissa, exp)) = text.split_once('e') else { return v };
    let exp: i64 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    // The value is 0.digits * 10^(exp + 1): keep the digits before position exp + 1 + places.
    let keep = (exp + 1 + places).clamp(0, digits.len() as i64) as usize;
    let kept = &digits[..keep];
    if kept.is_empty() || kept.chars().all(|c| c == '0') {
        return 0.0;
    }
    let cut: f64 = format!("{}0.{kept}e{}", if negative { "-" } else { "" }, exp + 1).parse().unwrap_or(v);
    cut
}

fn ret_sign(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    number_type(d, args)
}

fn sign(_: &Ctx, args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let x = &args[0];
    let out: ArrayRef = match x.data_type() {
        DataType::Decimal128(_, s) => {
            let one = pow10(u32::from(s.unsigned_abs()));
            let v = x.as_primitive::<Decimal128Type>();
            let out: Decimal128Array = v.iter().map(|v| v.map(|v| v.signum() * one)).collect();
            Arc::new(out.with_data_type(ret.clone()))
        }
        t if t.is_integer() => {
            let out: Int64Array = longs(x)?.iter().map(|v| v.map(i64::signum)).collect();
            cast(&(Arc::new(out) as ArrayRef), ret)?
        }
        _ => {
            let f = cast(x, &DataType::Float64)?;
            let out: Float64Array = f
                .as_primitive::<Float64Type>()
                .iter()
                .map(|v| v.map(|v| if v == 0.0 || v.is_nan() { v } else { v.signum() }))
                .collect();
            Arc::new(out)
        }
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::truncate_double;

    #[test]
    fn doubles_are_cut_in_decimal() {
        let cases: [(f64, i64, f64); 6] = [
            (1.23456, 2, 1.23),
            (-0.5, 0, 0.0),
            (-2.75, 0, -2.0),
            (1e10, 2, 1e10),
            (0.29, 2, 0.29),
            (1234.5, -2, 1200.0),
        ];
        for (v, places, want) in cases {
            let got = truncate_double(v, places);
            assert_eq!(got.to_bits(), want.to_bits(), "TRUNCATE({v}, {places}) = {got}");
        }
    }
}
