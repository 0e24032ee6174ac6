//! The results of aggregates: each group's accumulator as a value of the
//! call's output type, with Flink's result types (see the parent module).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use sluice_sql::plan::AggFunc;

use super::{Acc, AggDef, div_half_up};
use crate::error::OpError;
use crate::state::value::{Val, to_array};

impl Acc {
    /// The results of `groups`, as an array of the definition's output type.
    pub(super) fn emit(&self, def: &AggDef, groups: &[u32]) -> Result<ArrayRef, OpError> {
        let g = |i: &u32| *i as usize;
        let out_t = &def.output_type;
        let arr: ArrayRef = match self {
            Acc::Count(c) => Arc::new(Int64Array::from_iter_values(groups.iter().map(|i| c[g(i)]))),
            Acc::CountDistinct { sets, .. } => {
                Arc::new(Int64Array::from_iter_values(groups.iter().map(|i| sets[g(i)].len() as i64)))
            }
            Acc::SumI64 { sum, count } => {
                let avg = def.func == AggFunc::Avg;
                let a: Int64Array = groups
                    .iter()
                    .map(|i| {
                        let (s, c) = (sum[g(i)], count[g(i)]);
                        if c == 0 {
                            None
                        } else if avg {
                            Some(s.wrapping_div(c))
                        } else {
                            Some(s)
                        }
                    })
                    .collect();
                // SUM(INT), SUM(SMALLINT) and SUM(TINYINT) wrap at their
                // width, as Java's int, short and byte do.
                match out_t {
                    DataType::Int32 => {
                        Arc::new(a.iter().map(|v| v.map(|v| v as i32)).collect::<arrow::array::Int32Array>())
                    }
                    DataType::Int16 => {
                        Arc::new(a.iter().map(|v| v.map(|v| v as i16)).collect::<arrow::array::Int16Array>())
                    }
                    DataType::Int8 => {
                        Arc::new(a.iter().map(|v| v.map(|v| v as i8)).collect::<arrow::array::Int8Array>())
                    }
                    _ => Arc::new(a),
                }
            }
            Acc::SumF64 { sum, count, .. } => {
                let avg = def.func == AggFunc::Avg;
                let a: Float64Array = groups
                    .iter()
                    .map(|i| {
                        let (s, c) = (sum[g(i)], count[g(i)]);
                        if c == 0 {
                            None
                        } else if avg {
                            Some(s / c as f64)
                        } else {
                            Some(s)
                        }
                    })
                    .collect();
                Arc::new(a)
            }
            Acc::SumI128 { sum, count } => {
                let in_scale = match &def.input_type {
                    Some(DataType::Decimal128(_, s)) => *s,
                    _ => 0,
                };
                let (p, out_scale) = match out_t {
                    DataType::Decimal128(p, s) => (*p, *s),
                    _ => (38, in_scale),
                };
                let avg = def.func == AggFunc::Avg;
                let a: Decimal128Array = groups
                    .iter()
                    .map(|i| {
                        let (s, c) = (sum[g(i)], count[g(i)]);
                        if c == 0 {
                            None
                        } else if avg {
                            let scaled = s.checked_mul(10i128.pow((out_scale - in_scale).max(0) as u32))?;
                            Some(div_half_up(scaled, c as i128))
                        } else {
                            Some(s)
                        }
                    })
                    .collect();
                Arc::new(a.with_precision_and_scale(p, out_scale)?)
            }
            Acc::ExtI64 { v, .. } => Arc::new(groups.iter().map(|i| v[g(i)]).collect::<Int64Array>()),
            Acc::ExtF64 { v, .. } => Arc::new(groups.iter().map(|i| v[g(i)]).collect::<Float64Array>()),
            Acc::ExtI128 { v, .. } => {
                let a = groups.iter().map(|i| v[g(i)]).collect::<Decimal128Array>();
                match out_t {
                    DataType::Decimal128(p, s) => Arc::new(a.with_precision_and_scale(*p, *s)?),
                    _ => Arc::new(a),
                }
            }
            Acc::ExtStr { v, .. } => Arc::new(groups.iter().map(|i| v[g(i)].as_deref()).collect::<StringArray>()),
            Acc::ExtBool { v, .. } => Arc::new(groups.iter().map(|i| v[g(i)]).collect::<BooleanArray>()),
            Acc::Rows { v, .. } => {
                let vals: Vec<Val> = groups.iter().map(|i| v[g(i)].result(def)).collect();
                return to_array(out_t, vals.iter());
            }
            // A window's result is taken after its last bundle is folded.
            Acc::Welford { v, .. } => {
                let vals: Vec<Val> = groups.iter().map(|i| v[g(i)].result(def.func, out_t)).collect();
                return to_array(out_t, vals.iter());
            }
        };
        if arr.data_type() == out_t {
            return Ok(arr);
        }
        // Timestamps and narrower integers are kept as i64 and cast back; a
        // timestamp with a zone is rebuilt from its epoch value.
        match out_t {
            DataType::Timestamp(unit, Some(tz)) => {
                let plain = cast(&arr, &DataType::Timestamp(*unit, None))?;
                Ok(cast(&plain, &DataType::Timestamp(*unit, Some(tz.clone())))?)
            }
            _ => Ok(cast(&arr, out_t)?),
        }
    }
}
