//! Aggregate functions with Flink's result types, stored column-wise per group.
//!
//! A [`GroupAccs`] holds, for each aggregate call, one accumulator column indexed
//! by group id. Groups are added as keys appear, merged (session windows) and
//! emitted as Arrow arrays when a window fires.
//!
//! | function | input | result |
//! | --- | --- | --- |
//! | COUNT(*), COUNT(x), COUNT(DISTINCT x) | any | BIGINT |
//! | SUM | INT, BIGINT, DOUBLE | same type (wrapping, as Java) |
//! | SUM | DECIMAL(p, s) | DECIMAL(38, s) |
//! | AVG | INT, BIGINT | same type, sum / count truncated |
//! | AVG | DOUBLE | DOUBLE |
//! | AVG | DECIMAL(p, s) | DECIMAL(38, max(6, s)), rounded half-up |
//! | MIN, MAX | numeric, STRING, BOOLEAN, TIMESTAMP | same type |
//! | FIRST_VALUE, LAST_VALUE | as MIN | same type |
//! | LISTAGG | STRING | STRING |
//! | SUM, AVG (DISTINCT) | as SUM, AVG | as SUM, AVG |
//!
//! | STDDEV_POP, STDDEV_SAMP, VAR_POP, VAR_SAMP | as AVG | as AVG, from a DOUBLE |
//!
//! FIRST_VALUE, LAST_VALUE, LISTAGG and the DISTINCT SUM and AVG keep values
//! per group ([`rowwise::RowAcc`]); the variances keep Flink's Welford
//! accumulator ([`welford::Welford`]).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Float64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use arrow::row::{RowConverter, SortField};
use datafusion_physical_expr::PhysicalExpr;
use sluice_sql::plan::AggFunc;

use super::epoch_millis;
use crate::error::OpError;
use crate::state::codec::{Reader, Writer};
use crate::state::cow::CowVec;
use crate::state::value::column_values;

mod emit;
pub(crate) mod rowwise;
mod state;
pub(crate) mod welford;

use rowwise::RowAcc;
use welford::Welford;

/// An aggregate call, lowered.
#[derive(Clone)]
pub struct AggDef {
    pub func: AggFunc,
    pub arg: Option<Arc<dyn PhysicalExpr>>,
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    pub distinct: bool,
    pub input_type: Option<DataType>,
    pub output_type: DataType,
    /// `LISTAGG`'s separator.
    pub separator: Option<String>,
}

/// The evaluated input of one aggregate over a batch.
pub struct AggInput {
    pub values: Option<ArrayRef>,
    pub filter: Option<BooleanArray>,
}

impl AggDef {
    pub fn evaluate(&self, batch: &arrow::record_batch::RecordBatch) -> Result<AggInput, OpError> {
        let n = batch.num_rows();
        let values = match &self.arg {
            Some(e) => Some(e.evaluate(batch)?.into_array(n)?),
            None => None,
        };
        let filter = match &self.filter {
            Some(f) => {
                let a = f.evaluate(batch)?.into_array(n)?;
                Some(a.as_boolean_opt().ok_or_else(|| OpError::Other("FILTER is not boolean".into()))?.clone())
            }
            None => None,
        };
        Ok(AggInput { values, filter })
    }

    pub fn new_column(&self, bundled: bool) -> Result<Acc, OpError> {
        let in_t = self.input_type.clone().unwrap_or(DataType::Null);
        if RowAcc::wanted(self) {
            return Ok(Acc::Rows { init: Box::new(RowAcc::new(self, false)), v: CowVec::new() });
        }
        Ok(match self.func {
            AggFunc::Count if self.distinct => Acc::CountDistinct {
                conv: Arc::new(RowConverter::new(vec![SortField::new(in_t)])?),
                sets: CowVec::new(),
            },
            AggFunc::Count => Acc::Count(CowVec::new()),
            AggFunc::Sum | AggFunc::Avg => match in_t {
                DataType::Float64 | DataType::Float32 => {
                    Acc::SumF64 { sum: CowVec::new(), count: CowVec::new(), partial: bundled.then(CowVec::new) }
                }
                DataType::Decimal128(_, _) => Acc::SumI128 { sum: CowVec::new(), count: CowVec::new() },
                _ => Acc::SumI64 { sum: CowVec::new(), count: CowVec::new() },
            },
            AggFunc::Min | AggFunc::Max => {
                let max = self.func == AggFunc::Max;
                match in_t {
                    DataType::Float64 | DataType::Float32 => Acc::ExtF64 { max, v: CowVec::new() },
                    DataType::Decimal128(_, _) => Acc::ExtI128 { max, v: CowVec::new() },
                    DataType::Utf8 => Acc::ExtStr { max, v: CowVec::new() },
                    DataType::Boolean => Acc::ExtBool { max, v: CowVec::new() },
                    _ => Acc::ExtI64 { max, v: CowVec::new() },
                }
            }
            AggFunc::FirstValue | AggFunc::LastValue | AggFunc::ListAgg => {
                Acc::Rows { init: Box::new(RowAcc::new(self, false)), v: CowVec::new() }
            }
            AggFunc::StddevPop | AggFunc::StddevSamp | AggFunc::VarPop | AggFunc::VarSamp => {
                Acc::Welford { v: CowVec::new(), partial: bundled.then(CowVec::new) }
            }
        })
    }
}

/// One aggregate's state for every group, in copy-on-write columns that a
/// snapshot shares (see [`GroupAccs::share`]).
pub enum Acc {
    Count(CowVec<i64>),
    CountDistinct {
        conv: Arc<RowConverter>,
        sets: CowVec<hashbrown::HashSet<Box<[u8]>>>,
    },
    SumI64 {
        sum: CowVec<i64>,
        count: CowVec<i64>,
    },
    /// `partial` holds the current bundle's sums when bundling is on: Flink's
    /// two-phase window aggregation sums each bundle from 0.0 and then adds it
    /// to the window's sum, and floating-point results depend on that grouping.
    SumF64 {
        sum: CowVec<f64>,
        count: CowVec<i64>,
        partial: Option<CowVec<f64>>,
    },
    SumI128 {
        sum: CowVec<i128>,
        count: CowVec<i64>,
    },
    ExtI64 {
        max: bool,
        v: CowVec<Option<i64>>,
    },
    ExtF64 {
        max: bool,
        v: CowVec<Option<f64>>,
    },
    ExtI128 {
        max: bool,
        v: CowVec<Option<i128>>,
    },
    ExtStr {
        max: bool,
        /// Boxed, not a `String`: a group's value takes 16 bytes, not 24.
        v: CowVec<Option<Box<str>>>,
    },
    ExtBool {
        max: bool,
        v: CowVec<Option<bool>>,
    },
    /// FIRST_VALUE, LAST_VALUE, LISTAGG, SUM/AVG(DISTINCT): each group's
    /// values; `init` is an empty group's.
    Rows {
        init: Box<RowAcc>,
        v: CowVec<RowAcc>,
    },
    /// STDDEV_POP, STDDEV_SAMP, VAR_POP, VAR_SAMP: Flink's Welford
    /// accumulator; `partial` holds the current bundle's when bundling is on,
    /// merged into `v` at the bundle's end as Flink's global window
    /// aggregation merges each local bundle's accumulator.
    Welford {
        v: CowVec<Welford>,
        partial: Option<CowVec<Welford>>,
    },
}

fn float64(a: &ArrayRef) -> Result<Float64Array, OpError> {
    Ok(cast(a, &DataType::Float64)?.as_primitive::<Float64Type>().clone())
}

fn better<T: PartialOrd>(max: bool, new: &T, old: &T) -> bool {
    if max { new > old } else { new < old }
}

/// Keeps the larger (`max`) or smaller value in `slot`.
fn keep<T: PartialOrd>(max: bool, slot: &mut Option<T>, x: T) {
    if slot.as_ref().is_none_or(|o| better(max, &x, o)) {
        *slot = Some(x);
    }
}

/// Calls `apply(group, value)` for each row that passes the filter and has a value.
fn each_value<T>(
    rows: &[u32],
    groups: &[u32],
    pass: &impl Fn(usize) -> bool,
    value: impl Fn(usize) -> Option<T>,
    mut apply: impl FnMut(usize, T),
) {
    for (&r, &g) in rows.iter().zip(groups) {
        let r = r as usize;
        if pass(r)
            && let Some(x) = value(r)
        {
            apply(g as usize, x);
        }
    }
}

impl Acc {
    fn grow(&mut self, groups: usize) {
        match self {
            Acc::Count(v) => v.resize(groups, 0),
            Acc::CountDistinct { sets, .. } => sets.resize_with(groups, Default::default),
            Acc::SumI64 { sum, count } => {
                sum.resize(groups, 0);
                count.resize(groups, 0)
            }
            Acc::SumF64 { sum, count, partial } => {
                sum.resize(groups, 0.0);
                count.resize(groups, 0);
                if let Some(p) = partial {
                    p.resize(groups, 0.0)
                }
            }
            Acc::SumI128 { sum, count } => {
                sum.resize(groups, 0);
                count.resize(groups, 0)
            }
            Acc::ExtI64 { v, .. } => v.resize(groups, None),
            Acc::ExtF64 { v, .. } => v.resize(groups, None),
            Acc::ExtI128 { v, .. } => v.resize(groups, None),
            Acc::ExtStr { v, .. } => v.resize(groups, None),
            Acc::ExtBool { v, .. } => v.resize(groups, None),
            Acc::Rows { init, v } => v.resize(groups, (**init).clone()),
            Acc::Welford { v, partial } => {
                v.resize(groups, Welford::default());
                if let Some(p) = partial {
                    p.resize(groups, Welford::default())
                }
            }
        }
    }

    /// Adds rows `rows[i]` of the input to groups `groups[i]`.
    fn update(&mut self, input: &AggInput, rows: &[u32], groups: &[u32]) -> Result<(), OpError> {
        let pass = |r: usize| input.filter.as_ref().is_none_or(|f| f.is_valid(r) && f.value(r));
        let valid = |r: usize| input.values.as_ref().is_none_or(|v| v.is_valid(r));
        match self {
            Acc::Count(c) => {
                for (&r, &g) in rows.iter().zip(groups) {
                    let r = r as usize;
                    if pass(r) && valid(r) {
                        c[g as usize] += 1;
                    }
                }
            }
            Acc::CountDistinct { conv, sets } => {
                let Some(values) = &input.values else { return Ok(()) };
                let encoded = conv.convert_columns(std::slice::from_ref(values))?;
                for (&r, &g) in rows.iter().zip(groups) {
                    let r = r as usize;
                    if pass(r) && valid(r) {
                        let set = &mut sets[g as usize];
                        let row = encoded.row(r);
                        if !set.contains(row.as_ref()) {
                            set.insert(row.as_ref().into());
                        }
                    }
                }
            }
            Acc::SumI64 { sum, count } => {
                let Some(values) = &input.values else { return Ok(()) };
                let a = epoch_millis(values)?;
                each_value(
                    rows,
                    groups,
                    &pass,
                    |r| a.is_valid(r).then(|| a.value(r)),
                    |g, x| {
                        sum[g] = sum[g].wrapping_add(x);
                        count[g] += 1;
                    },
                );
            }
            Acc::SumF64 { sum, count, partial } => {
                let Some(values) = &input.values else { return Ok(()) };
                let a = float64(values)?;
                let target = match partial {
                    Some(p) => p,
                    None => sum,
                };
                each_value(
                    rows,
                    groups,
                    &pass,
                    |r| a.is_valid(r).then(|| a.value(r)),
                    |g, x| {
                        target[g] += x;
                        count[g] += 1;
                    },
                );
            }
            Acc::SumI128 { sum, count } => {
                let Some(values) = &input.values else { return Ok(()) };
                let a: &Decimal128Array = values.as_primitive();
                each_value(
                    rows,
                    groups,
                    &pass,
                    |r| a.is_valid(r).then(|| a.value(r)),
                    |g, x| {
                        sum[g] = sum[g].wrapping_add(x);
                        count[g] += 1;
                    },
                );
            }
            Acc::ExtI64 { max, v } => {
                let Some(values) = &input.values else { return Ok(()) };
                let a = epoch_millis(values)?;
                each_value(rows, groups, &pass, |r| a.is_valid(r).then(|| a.value(r)), |g, x| keep(*max, &mut v[g], x));
            }
            Acc::ExtF64 { max, v } => {
                let Some(values) = &input.values else { return Ok(()) };
                let a = float64(values)?;
                each_value(rows, groups, &pass, |r| a.is_valid(r).then(|| a.value(r)), |g, x| keep(*max, &mut v[g], x));
            }
            Acc::ExtI128 { max, v } => {
                let Some(values) = &input.values else { return Ok(()) };
                let a: &Decimal128Array = values.as_primitive();
                each_value(rows, groups, &pass, |r| a.is_valid(r).then(|| a.value(r)), |g, x| keep(*max, &mut v[g], x));
            }
            Acc::ExtStr { max, v } => {
                let Some(values) = &input.values else { return Ok(()) };
                let a = cast(values, &DataType::Utf8)?;
                let a: &StringArray = a.as_string();
                for (&r, &g) in rows.iter().zip(groups) {
                    let r = r as usize;
                    if pass(r) && a.is_valid(r) {
                        let x = a.value(r);
                        let slot = &mut v[g as usize];
                        if slot.as_deref().is_none_or(|o| better(*max, &x, &o)) {
                            *slot = Some(x.into());
                        }
                    }
                }
            }
            Acc::ExtBool { max, v } => {
                let Some(values) = &input.values else { return Ok(()) };
                let a: &BooleanArray = values.as_boolean();
                each_value(rows, groups, &pass, |r| a.is_valid(r).then(|| a.value(r)), |g, x| keep(*max, &mut v[g], x));
            }
            Acc::Rows { v, .. } => {
                let Some(values) = &input.values else { return Ok(()) };
                let vals = column_values(values)?;
                for (&r, &g) in rows.iter().zip(groups) {
                    if pass(r as usize) {
                        v[g as usize].apply(&vals[r as usize], 1)?;
                    }
                }
            }
            Acc::Welford { v, partial } => {
                let Some(values) = &input.values else { return Ok(()) };
                let in_t = values.data_type().clone();
                let vals = column_values(values)?;
                let target = match partial {
                    Some(p) => p,
                    None => v,
                };
                for (&r, &g) in rows.iter().zip(groups) {
                    if pass(r as usize)
                        && let Some(x) = welford::as_f64(&vals[r as usize], Some(&in_t))
                    {
                        target[g as usize].accumulate(x);
                    }
                }
            }
        }
        Ok(())
    }

    /// Folds group `src` into group `dst` and clears `src`.
    fn merge(&mut self, dst: usize, src: usize) -> Result<(), OpError> {
        fn ext<T: PartialOrd + Clone>(max: bool, v: &mut CowVec<Option<T>>, dst: usize, src: usize) {
            if let Some(s) = v[src].take()
                && v[dst].as_ref().is_none_or(|d| better(max, &s, d))
            {
                v[dst] = Some(s);
            }
        }
        match self {
            Acc::Count(c) => {
                c[dst] += c[src];
                c[src] = 0;
            }
            Acc::CountDistinct { sets, .. } => {
                let s = std::mem::take(&mut sets[src]);
                sets[dst].extend(s);
            }
            Acc::SumI64 { sum, count } => {
                sum[dst] = sum[dst].wrapping_add(sum[src]);
                count[dst] += count[src];
                sum[src] = 0;
                count[src] = 0;
            }
            Acc::SumF64 { sum, count, .. } => {
                sum[dst] += sum[src];
                count[dst] += count[src];
                sum[src] = 0.0;
                count[src] = 0;
            }
            Acc::SumI128 { sum, count } => {
                sum[dst] = sum[dst].wrapping_add(sum[src]);
                count[dst] += count[src];
                sum[src] = 0;
                count[src] = 0;
            }
            Acc::ExtI64 { max, v } => ext(*max, v, dst, src),
            Acc::ExtF64 { max, v } => ext(*max, v, dst, src),
            Acc::ExtI128 { max, v } => ext(*max, v, dst, src),
            Acc::ExtStr { max, v } => ext(*max, v, dst, src),
            Acc::ExtBool { max, v } => ext(*max, v, dst, src),
            Acc::Rows { init, v } => {
                let s = std::mem::replace(&mut v[src], (**init).clone());
                v[dst].merge(s)?;
            }
            Acc::Welford { v, partial } => {
                let s = std::mem::take(&mut v[src]);
                v[dst].merge(&s);
                if let Some(p) = partial {
                    let s = std::mem::take(&mut p[src]);
                    p[dst].merge(&s);
                }
            }
        }
        Ok(())
    }

    /// Resets a group so that its id can be reused.
    fn reset(&mut self, g: usize) {
        match self {
            Acc::Count(c) => c[g] = 0,
            Acc::CountDistinct { sets, .. } => sets[g].clear(),
            Acc::SumI64 { sum, count } => {
                sum[g] = 0;
                count[g] = 0
            }
            Acc::SumF64 { sum, count, partial } => {
                sum[g] = 0.0;
                count[g] = 0;
                if let Some(p) = partial {
                    p[g] = 0.0
                }
            }
            Acc::SumI128 { sum, count } => {
                sum[g] = 0;
                count[g] = 0
            }
            Acc::ExtI64 { v, .. } => v[g] = None,
            Acc::ExtF64 { v, .. } => v[g] = None,
            Acc::ExtI128 { v, .. } => v[g] = None,
            Acc::ExtStr { v, .. } => v[g] = None,
            Acc::ExtBool { v, .. } => v[g] = None,
            Acc::Rows { init, v } => v[g] = (**init).clone(),
            Acc::Welford { v, partial } => {
                v[g] = Welford::default();
                if let Some(p) = partial {
                    p[g] = Welford::default()
                }
            }
        }
    }
}

impl Acc {
    /// Ends a bundle: adds each group's bundle sum to its total. Only groups
    /// with a bundle sum are written, so that chunks shared with a snapshot in
    /// flight are not copied for nothing.
    fn fold(&mut self) {
        if let Acc::SumF64 { sum, partial: Some(p), .. } = self {
            for g in 0..p.len() {
                let x = p[g];
                if x != 0.0 || x.is_sign_negative() {
                    sum[g] += x;
                    p[g] = 0.0;
                }
            }
        }
        if let Acc::Welford { v, partial: Some(p) } = self {
            for g in 0..p.len() {
                if !p[g].is_empty() {
                    let x = std::mem::take(&mut p[g]);
                    v[g].merge(&x);
                }
            }
        }
    }

    /// A view of every group's value now, which later updates do not change
    /// (see [`CowVec::share`]).
    fn share(&mut self) -> Acc {
        match self {
            Acc::Count(c) => Acc::Count(c.share()),
            Acc::CountDistinct { conv, sets } => Acc::CountDistinct { conv: conv.clone(), sets: sets.share() },
            Acc::SumI64 { sum, count } => Acc::SumI64 { sum: sum.share(), count: count.share() },
            Acc::SumF64 { sum, count, partial } => {
                Acc::SumF64 { sum: sum.share(), count: count.share(), partial: partial.as_mut().map(CowVec::share) }
            }
            Acc::SumI128 { sum, count } => Acc::SumI128 { sum: sum.share(), count: count.share() },
            Acc::ExtI64 { max, v } => Acc::ExtI64 { max: *max, v: v.share() },
            Acc::ExtF64 { max, v } => Acc::ExtF64 { max: *max, v: v.share() },
            Acc::ExtI128 { max, v } => Acc::ExtI128 { max: *max, v: v.share() },
            Acc::ExtStr { max, v } => Acc::ExtStr { max: *max, v: v.share() },
            Acc::ExtBool { max, v } => Acc::ExtBool { max: *max, v: v.share() },
            Acc::Rows { init, v } => Acc::Rows { init: init.clone(), v: v.share() },
            Acc::Welford { v, partial } => Acc::Welford { v: v.share(), partial: partial.as_mut().map(CowVec::share) },
        }
    }
}

/// Integer division rounding half away from zero (Java's HALF_UP).
pub(crate) fn div_half_up(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    if (r.abs() * 2) >= d.abs() { q + n.signum() * d.signum() } else { q }
}

/// Accumulators for a set of groups, one column per aggregate call.
pub struct GroupAccs {
    pub accs: Vec<Acc>,
    pub groups: usize,
}

impl GroupAccs {
    /// Accumulators that add every value straight into the group's total.
    pub fn new(defs: &[AggDef]) -> Result<Self, OpError> {
        Self::with_bundles(defs, false)
    }

    /// With `bundled`, floating-point sums are kept per bundle until [`Self::fold`].
    pub fn with_bundles(defs: &[AggDef], bundled: bool) -> Result<Self, OpError> {
        Ok(GroupAccs { accs: defs.iter().map(|d| d.new_column(bundled)).collect::<Result<_, _>>()?, groups: 0 })
    }

    pub fn fold(&mut self) {
        for a in self.accs.iter_mut() {
            a.fold();
        }
    }

    /// A view of every group's accumulators now, for an asynchronous
    /// snapshot: it costs an `Arc` per chunk of each column, and later updates
    /// copy only the chunks they write while the view is alive.
    pub fn share(&mut self) -> GroupAccs {
        GroupAccs { accs: self.accs.iter_mut().map(Acc::share).collect(), groups: self.groups }
    }

    pub fn add_group(&mut self) -> u32 {
        let id = self.groups;
        self.groups += 1;
        for a in self.accs.iter_mut() {
            a.grow(self.groups);
        }
        id as u32
    }

    pub fn update(&mut self, inputs: &[AggInput], rows: &[u32], groups: &[u32]) -> Result<(), OpError> {
        for (a, i) in self.accs.iter_mut().zip(inputs) {
            a.update(i, rows, groups)?;
        }
        Ok(())
    }

    pub fn merge(&mut self, dst: u32, src: u32) -> Result<(), OpError> {
        for a in self.accs.iter_mut() {
            a.merge(dst as usize, src as usize)?;
        }
        Ok(())
    }

    pub fn reset(&mut self, g: u32) {
        for a in self.accs.iter_mut() {
            a.reset(g as usize);
        }
    }

    /// The layout of every accumulator, for state compatibility checks.
    pub fn layout(&self) -> String {
        self.accs.iter().map(|a| a.layout()).collect::<Vec<_>>().join(",")
    }

    /// Writes group `g`'s accumulators.
    pub fn encode_group(&self, g: u32, w: &mut Writer) {
        for a in &self.accs {
            a.encode_group(g as usize, w);
        }
    }

    /// Adds a group and reads its accumulators.
    pub fn decode_group(&mut self, r: &mut Reader) -> Result<u32, OpError> {
        let g = self.add_group();
        for a in self.accs.iter_mut() {
            a.decode_group(g as usize, r)?;
        }
        Ok(g)
    }

    pub fn emit(&self, defs: &[AggDef], groups: &[u32]) -> Result<Vec<ArrayRef>, OpError> {
        self.accs.iter().zip(defs).map(|(a, d)| a.emit(d, groups)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::div_half_up;

    #[test]
    fn half_up_rounds_away_from_zero() {
        assert_eq!(div_half_up(5, 2), 3);
        assert_eq!(div_half_up(-5, 2), -3);
        assert_eq!(div_half_up(4, 3), 1);
        assert_eq!(div_half_up(-4, 3), -1);
        assert_eq!(div_half_up(7, 7), 1);
    }
}
