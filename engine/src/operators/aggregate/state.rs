//! Checkpointing of aggregates: each group's accumulator value, encoded and
//! decoded with the state codec, and the accumulator's layout name, checked on
//! restore so that a changed query never reads state written for another
//! aggregate.

use super::Acc;
use super::rowwise::RowAcc;
use super::welford::Welford;
use crate::error::OpError;
use crate::state::codec::{Reader, Writer};

/// Checkpointing: one group's accumulator value, encoded and decoded.
impl Acc {
    /// A short name of the accumulator's layout, checked on restore so that a
    /// changed query cannot read state written for another aggregate.
    pub fn layout(&self) -> &'static str {
        match self {
            Acc::Count(_) => "count",
            Acc::CountDistinct { .. } => "count-distinct",
            Acc::SumI64 { .. } => "sum-i64",
            Acc::SumF64 { .. } => "sum-f64",
            Acc::SumI128 { .. } => "sum-i128",
            Acc::ExtI64 { max, .. } => {
                if *max {
                    "max-i64"
                } else {
                    "min-i64"
                }
            }
            Acc::ExtF64 { max, .. } => {
                if *max {
                    "max-f64"
                } else {
                    "min-f64"
                }
            }
            Acc::ExtI128 { max, .. } => {
                if *max {
                    "max-i128"
                } else {
                    "min-i128"
                }
            }
            Acc::ExtStr { max, .. } => {
                if *max {
                    "max-str"
                } else {
                    "min-str"
                }
            }
            Acc::ExtBool { max, .. } => {
                if *max {
                    "max-bool"
                } else {
                    "min-bool"
                }
            }
            Acc::Rows { init, .. } => init.layout(),
            Acc::Welford { .. } => "welford-m2",
        }
    }

    pub(super) fn encode_group(&self, g: usize, w: &mut Writer) {
        match self {
            Acc::Count(c) => w.i64(c[g]),
            Acc::CountDistinct { sets, .. } => {
                w.u32(sets[g].len() as u32);
                for v in &sets[g] {
                    w.bytes(v);
                }
            }
            Acc::SumI64 { sum, count } => {
                w.i64(sum[g]);
                w.i64(count[g]);
            }
            Acc::SumF64 { sum, count, partial } => {
                w.f64(sum[g]);
                w.i64(count[g]);
                w.f64(partial.as_ref().map_or(0.0, |p| p[g]));
            }
            Acc::SumI128 { sum, count } => {
                w.i128(sum[g]);
                w.i64(count[g]);
            }
            Acc::ExtI64 { v, .. } => w.opt(&v[g], |w, x| w.i64(*x)),
            Acc::ExtF64 { v, .. } => w.opt(&v[g], |w, x| w.f64(*x)),
            Acc::ExtI128 { v, .. } => w.opt(&v[g], |w, x| w.i128(*x)),
            Acc::ExtStr { v, .. } => w.opt(&v[g], |w, x| w.str(x)),
            Acc::ExtBool { v, .. } => w.opt(&v[g], |w, x| w.bool(*x)),
            Acc::Rows { v, .. } => v[g].encode(w),
            Acc::Welford { v, partial } => {
                v[g].encode(w);
                partial.as_ref().map_or_else(Welford::default, |p| p[g]).encode(w);
            }
        }
    }

    pub(super) fn decode_group(&mut self, g: usize, r: &mut Reader) -> Result<(), OpError> {
        match self {
            Acc::Count(c) => c[g] = r.i64()?,
            Acc::CountDistinct { sets, .. } => {
                let n = r.u32()?;
                for _ in 0..n {
                    sets[g].insert(r.bytes()?.into());
                }
            }
            Acc::SumI64 { sum, count } => {
                sum[g] = r.i64()?;
                count[g] = r.i64()?;
            }
            Acc::SumF64 { sum, count, partial } => {
                sum[g] = r.f64()?;
                count[g] = r.i64()?;
                let p = r.f64()?;
                match partial {
                    Some(v) => v[g] = p,
                    None => sum[g] += p,
                }
            }
            Acc::SumI128 { sum, count } => {
                sum[g] = r.i128()?;
                count[g] = r.i64()?;
            }
            Acc::ExtI64 { v, .. } => v[g] = r.opt(|r| r.i64())?,
            Acc::ExtF64 { v, .. } => v[g] = r.opt(|r| r.f64())?,
            Acc::ExtI128 { v, .. } => v[g] = r.opt(|r| r.i128())?,
            Acc::ExtStr { v, .. } => v[g] = r.opt(|r| r.str().map(String::into_boxed_str))?,
            Acc::ExtBool { v, .. } => v[g] = r.opt(|r| r.bool())?,
            Acc::Rows { v, .. } => v[g] = RowAcc::decode(r)?,
            Acc::Welford { v, partial } => {
                v[g] = Welford::decode(r)?;
                let p = Welford::decode(r)?;
                match partial {
                    Some(x) => x[g] = p,
                    None => v[g].merge(&p),
                }
            }
        }
        Ok(())
    }
}
