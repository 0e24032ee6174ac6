//! Flink's ARRAY and MAP functions. Indexes are 1-based; elements compare by
//! value with NULL equal to NULL (ARRAY_CONTAINS(a, NULL) finds a NULL
//! element); a NULL array gives NULL.
//!
//! - `ELEMENT(a)`: the only element, NULL for an empty array, an error for more.
//! - `ARRAY_APPEND(a, x)`, `ARRAY_PREPEND(a, x)`, `ARRAY_CONCAT(a, b, ...)`.
//! - `ARRAY_CONTAINS(a, x)`, `ARRAY_POSITION(a, x)` (INT, 0 when absent).
//! - `ARRAY_DISTINCT(a)`, `ARRAY_UNION(a, b)`: first occurrences, in order.
//! - `ARRAY_REMOVE(a, x)`: without every element equal to `x`.
//! - `ARRAY_REVERSE(a)`.
//! - `ARRAY_SLICE(a, start [, end])`: elements `start..=end`; negative offsets
//!   count from the end, 0 is the start, `end` defaults to the last element.
//! - `ARRAY_SORT(a [, ascending [, nulls_first]])`: ascending with NULLs first
//!   by default; descending puts NULLs last unless `nulls_first` says otherwise.
//! - `ARRAY_MAX(a)`, `ARRAY_MIN(a)`: NULL for an empty or all-NULL array.
//! - `ARRAY_JOIN(a, delimiter [, null_replacement])`: STRING; NULL elements are
//!   skipped unless replaced.
//! - `ARRAY_EXCEPT(a, b)`, `ARRAY_INTERSECT(a, b)`: the distinct elements of `a`
//!   not in / also in `b`, in `a`'s order.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder, Int32Array, ListArray, StringArray, UInt32Array,
    new_null_array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::{SortOptions, cast, concat, take};
use arrow::datatypes::{DataType, Field, FieldRef};
use arrow::row::{RowConverter, Rows, SortField};
use datafusion_common::{Result, ScalarValue};

use super::udf::{Ctx, Def, def, element_type, exec_err, is_array, is_boolean, is_integer, is_string, long_at, longs};

pub const DEFS: &[Def] = &[
    def("element", "(array)", (1, 1), ret_element, element),
    def("array_append", "(array, element)", (2, 2), ret_with_element, |_, a, r| add(a, r, false)),
    def("array_prepend", "(array, element)", (2, 2), ret_with_element, |_, a, r| add(a, r, true)),
    def("array_contains", "(array, element)", (2, 2), ret_contains, contains),
    def("array_position", "(array, element)", (2, 2), ret_position, position),
    def("array_distinct", "(array)", (1, 1), ret_same_array, |c, a, r| distinct(c, &a[..1], r)),
    def("array_union", "(array1, array2)", (2, 2), ret_arrays, distinct),
    def("array_concat", "(array, ...)", (1, usize::MAX), ret_arrays, concat_arrays),
    def("array_remove", "(array, element)", (2, 2), ret_with_element, remove),
    def("array_reverse", "(array)", (1, 1), ret_same_array, reverse),
    def("array_slice", "(array, start offset [, end offset])", (2, 3), ret_slice, slice),
    def("array_sort", "(array [, ascending [, nulls first]])", (1, 3), ret_sort, sort),
    def("array_max", "(array)", (1, 1), ret_element, |_, a, r| extreme(a, r, true)),
    def("array_min", "(array)", (1, 1), ret_element, |_, a, r| extreme(a, r, false)),
    def("array_join", "(array, delimiter [, null replacement])", (2, 3), ret_join, join),
    def("array_except", "(array1, array2)", (2, 2), ret_arrays, |_, a, r| except_or_intersect(a, r, false)),
    def("array_intersect", "(array1, array2)", (2, 2), ret_arrays, |_, a, r| except_or_intersect(a, r, true)),
];

fn ret_same_array(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "an ARRAY", is_array)?;
    Ok(args[0].clone())
}

fn ret_element(d: &Def, args: &[DataType], s: &[Option<&ScalarValue>], tz: &str) -> Result<DataType> {
    let t = ret_same_array(d, args, s, tz)?;
    Ok(element_type(&t).cloned().unwrap_or(DataType::Null))
}

/// The array's type, when the element can be cast to its element type.
fn ret_with_element(d: &Def, args: &[DataType], s: &[Option<&ScalarValue>], tz: &str) -> Result<DataType> {
    let t = ret_same_array(d, args, s, tz)?;
    if let (Some(e), Some(x)) = (element_type(&t), args.get(1))
        && !arrow::compute::can_cast_types(x, e)
    {
        return Err(d.err(format_args!(
            "cannot compare a {} with the elements of an {}",
            crate::types::flink_name(x),
            crate::types::flink_name(&t)
        )));
    }
    Ok(t)
}

fn ret_contains(d: &Def, args: &[DataType], s: &[Option<&ScalarValue>], tz: &str) -> Result<DataType> {
    ret_with_element(d, args, s, tz).map(|_| DataType::Boolean)
}

fn ret_position(d: &Def, args: &[DataType], s: &[Option<&ScalarValue>], tz: &str) -> Result<DataType> {
    ret_with_element(d, args, s, tz).map(|_| DataType::Int32)
}

/// The type of the first ARRAY argument; the others are cast to it.
fn ret_arrays(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    (0..args.len()).try_for_each(|i| d.expect(args, i, "an ARRAY", is_array))?;
    let t = args.iter().find(|t| is_array(t)).cloned().unwrap_or(DataType::Null);
    if let Some(other) = args.iter().find(|a| is_array(a) && !arrow::compute::can_cast_types(a, &t)) {
        return Err(d.err(format_args!(
            "cannot combine an {} with an {}",
            crate::types::flink_name(&t),
            crate::types::flink_name(other)
        )));
    }
    Ok(t)
}

fn ret_slice(d: &Def, args: &[DataType], s: &[Option<&ScalarValue>], tz: &str) -> Result<DataType> {
    d.expect(args, 1, "an integer offset", is_integer)?;
    d.expect(args, 2, "an integer offset", is_integer)?;
    ret_same_array(d, args, s, tz)
}

fn ret_sort(d: &Def, args: &[DataType], s: &[Option<&ScalarValue>], tz: &str) -> Result<DataType> {
    d.expect(args, 1, "a BOOLEAN (ascending)", is_boolean)?;
    d.expect(args, 2, "a BOOLEAN (nulls first)", is_boolean)?;
    ret_same_array(d, args, s, tz)
}

fn ret_join(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "an ARRAY<STRING>", |t| element_type(t).is_some_and(is_string))?;
    d.expect(args, 1, "a STRING delimiter", is_string)?;
    d.expect(args, 2, "a STRING null replacement", is_string)?;
    Ok(DataType::Utf8)
}

/// An argument as a list of `list_type` (a NULL literal becomes a NULL list).
pub(super) fn list(a: &ArrayRef, list_type: &DataType) -> Result<ListArray> {
    Ok(cast(a, list_type)?.as_list::<i32>().clone())
}

pub(super) fn element_field(list_type: &DataType) -> FieldRef {
    match list_type {
        DataType::List(f) => f.clone(),
        other => Arc::new(Field::new("element", other.clone(), true)),
    }
}

/// The element range of row `i`.
pub(super) fn range(l: &ListArray, i: usize) -> std::ops::Range<usize> {
    let o = l.value_offsets();
    o[i] as usize..o[i + 1] as usize
}

/// Builds a list of `field` whose row `i` holds `values[j]` for each `j` of
/// `rows[i]`, or NULL.
fn gather(field: FieldRef, values: &ArrayRef, rows: Vec<Option<Vec<usize>>>) -> Result<ArrayRef> {
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    offsets.push(0i32);
    let mut valid = BooleanBufferBuilder::new(rows.len());
    let mut indices = Vec::new();
    for row in &rows {
        valid.append(row.is_some());
        indices.extend(row.iter().flatten().map(|&j| j as u32));
        offsets.push(i32::try_from(indices.len()).map_err(|_| exec_err("array", "result is too large"))?);
    }
    let taken = take(values, &UInt32Array::from(indices), None)?;
    let nulls = NullBuffer::new(valid.finish());
    Ok(Arc::new(ListArray::try_new(field, OffsetBuffer::new(offsets.into()), taken, Some(nulls))?))
}

/// The rows of `values`, which compare and hash by value.
pub(super) fn rows_of(values: &ArrayRef, options: SortOptions) -> Result<Rows> {
    let converter = RowConverter::new(vec![SortField::new_with_options(values.data_type().clone(), options)])?;
    Ok(converter.convert_columns(std::slice::from_ref(values))?)
}

/// The list's values followed by the needle's, as rows of one converter, so
/// that element `j` and needle `i` compare.
fn with_needle(l: &ListArray, needle: &ArrayRef) -> Result<(Rows, usize)> {
    let needle = cast(needle, element_field(l.data_type()).data_type())?;
    let both = concat(&[l.values().as_ref(), needle.as_ref()])?;
    Ok((rows_of(&both, SortOptions::default())?, l.values().len()))
}

fn element(_: &Ctx, args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    if ret.is_null() {
        return Ok(new_null_array(ret, args[0].len()));
    }
    let l = list(&args[0], &crate::types::array_of(ret.clone()))?;
    let mut picks = Vec::with_capacity(l.len());
    for i in 0..l.len() {
        let r = range(&l, i);
        if l.is_null(i) || r.is_empty() {
            picks.push(None);
        } else if r.len() == 1 {
            picks.push(Some(r.start as u32));
        } else {
            return Err(exec_err("element", format_args!("takes an array of at most one element, not {}", r.len())));
        }
    }
    Ok(take(l.values(), &UInt32Array::from(picks), None)?)
}

fn add(args: &[ArrayRef], ret: &DataType, front: bool) -> Result<ArrayRef> {
    let l = list(&args[0], ret)?;
    let field = element_field(ret);
    let x = cast(&args[1], field.data_type())?;
    let values = concat(&[l.values().as_ref(), x.as_ref()])?;
    let base = l.values().len();
    let rows = (0..l.len())
        .map(|i| {
            (!l.is_null(i)).then(|| {
                let r = range(&l, i);
                if front {
                    std::iter::once(base + i).chain(r).collect()
                } else {
                    r.chain(std::iter::once(base + i)).collect()
                }
            })
        })
        .collect();
    gather(field, &values, rows)
}

fn contains(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let l = list(&args[0], args[0].data_type())?;
    let (rows, base) = with_needle(&l, &args[1])?;
    let out: BooleanArray = (0..l.len())
        .map(|i| (!l.is_null(i)).then(|| range(&l, i).any(|j| rows.row(j) == rows.row(base + i))))
        .collect();
    Ok(Arc::new(out))
}

fn position(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let l = list(&args[0], args[0].data_type())?;
    let (rows, base) = with_needle(&l, &args[1])?;
    let out: Int32Array = (0..l.len())
        .map(|i| {
            if l.is_null(i) || args[1].is_null(i) {
                return None;
            }
            let r = range(&l, i);
            let found = r.clone().position(|j| rows.row(j) == rows.row(base + i));
            Some(found.map_or(0, |p| p as i32 + 1))
        })
        .collect();
    Ok(Arc::new(out))
}

fn remove(_: &Ctx, args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let l = list(&args[0], ret)?;
    let (rows, base) = with_needle(&l, &args[1])?;
    let kept = (0..l.len())
        .map(|i| (!l.is_null(i)).then(|| range(&l, i).filter(|&j| rows.row(j) != rows.row(base + i)).collect()))
        .collect();
    gather(element_field(ret), l.values(), kept)
}

/// All lists of `args` as one values array, with each list's start in it.
fn combined(args: &[ArrayRef], ret: &DataType) -> Result<(Vec<ListArray>, ArrayRef, Vec<usize>)> {
    let lists: Vec<ListArray> = args.iter().map(|a| list(a, ret)).collect::<Result<_>>()?;
    let parts: Vec<&dyn Array> = lists.iter().map(|l| l.values().as_ref()).collect();
    let values = concat(&parts)?;
    let starts = lists
        .iter()
        .scan(0, |acc, l| {
            let start = *acc;
            *acc += l.values().len();
            Some(start)
        })
        .collect();
    Ok((lists, values, starts))
}

/// Each row's elements from every list in turn; NULL when any list is NULL.
fn each_row(lists: &[ListArray], starts: &[usize]) -> Vec<Option<Vec<usize>>> {
    let n = lists.first().map_or(0, |l| l.len());
    (0..n)
        .map(|i| {
            if lists.iter().any(|l| l.is_null(i)) {
                return None;
            }
            Some(lists.iter().zip(starts).flat_map(|(l, s)| range(l, i).map(move |j| s + j)).collect())
        })
        .collect()
}

fn concat_arrays(_: &Ctx, args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let (lists, values, starts) = combined(args, ret)?;
    gather(element_field(ret), &values, each_row(&lists, &starts))
}

fn distinct(_: &Ctx, args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let (lists, values, starts) = combined(args, ret)?;
    let rows = rows_of(&values, SortOptions::default())?;
    let picked = each_row(&lists, &starts)
        .into_iter()
        .map(|row| {
            row.map(|elems| {
                let mut seen = HashSet::new();
                elems.into_iter().filter(|&j| seen.insert(rows.row(j))).collect()
            })
        })
        .collect();
    gather(element_field(ret), &values, picked)
}

fn except_or_intersect(args: &[ArrayRef], ret: &DataType, keep_common: bool) -> Result<ArrayRef> {
    let (lists, values, starts) = combined(args, ret)?;
    let rows = rows_of(&values, SortOptions::default())?;
    let picked = (0..lists[0].len())
        .map(|i| {
            if lists.iter().any(|l| l.is_null(i)) {
                return None;
            }
            let other: HashSet<_> = range(&lists[1], i).map(|j| rows.row(starts[1] + j)).collect();
            let mut seen = HashSet::new();
            Some(
                range(&lists[0], i)
                    .map(|j| starts[0] + j)
                    .filter(|&j| other.contains(&rows.row(j)) == keep_common && seen.insert(rows.row(j)))
                    .collect(),
            )
        })
        .collect();
    gather(element_field(ret), &values, picked)
}

fn reverse(_: &Ctx, args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let l = list(&args[0], ret)?;
    let rows = (0..l.len()).map(|i| (!l.is_null(i)).then(|| range(&l, i).rev().collect())).collect();
    gather(element_field(ret), l.values(), rows)
}

fn slice(_: &Ctx, args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let l = list(&args[0], ret)?;
    let start = longs(&args[1])?;
    let end = args.get(2).map(longs).transpose()?;
    let rows = (0..l.len())
        .map(|i| {
            if l.is_null(i) {
                return None;
            }
            let r = range(&l, i);
            let size = r.len() as i64;
            let from_end = |o: i64| if o < 0 { size + o + 1 } else { o };
            let first = from_end(long_at(&start, i)?).max(1);
            let last = match &end {
                Some(e) => from_end(long_at(e, i)?).min(size),
                None => size,
            };
            Some(if first > last { vec![] } else { (r.start + first as usize - 1..r.start + last as usize).collect() })
        })
        .collect();
    gather(element_field(ret), l.values(), rows)
}

fn sort(_: &Ctx, args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let l = list(&args[0], ret)?;
    let flag = |k: usize| -> Result<Option<BooleanArray>> {
        args.get(k).map(|a| Ok(cast(a, &DataType::Boolean)?.as_boolean().clone())).transpose()
    };
    let (asc, nulls_first) = (flag(1)?, flag(2)?);
    let flag_at = |f: &Option<BooleanArray>, i: usize, default: bool| match f {
        Some(f) if f.is_null(i) => None,
        Some(f) => Some(f.value(i)),
        None => Some(default),
    };
    // One converter per order that a row asks for, made when first needed.
    let mut orders: Vec<(SortOptions, Rows)> = Vec::new();
    let mut sorted = Vec::with_capacity(l.len());
    for i in 0..l.len() {
        let Some(ascending) = flag_at(&asc, i, true) else {
            sorted.push(None);
            continue;
        };
        let Some(nulls_first) = flag_at(&nulls_first, i, ascending) else {
            sorted.push(None);
            continue;
        };
        if l.is_null(i) {
            sorted.push(None);
            continue;
        }
        let options = SortOptions { descending: !ascending, nulls_first };
        if !orders.iter().any(|(o, _)| *o == options) {
            orders.push((options, rows_of(l.values(), options)?));
        }
        let rows = orders.iter().find(|(o, _)| *o == options).map(|(_, r)| r);
        let mut elems: Vec<usize> = range(&l, i).collect();
        if let Some(rows) = rows {
            elems.sort_by(|&a, &b| rows.row(a).cmp(&rows.row(b)));
        }
        sorted.push(Some(elems));
    }
    gather(element_field(ret), l.values(), sorted)
}

fn extreme(args: &[ArrayRef], ret: &DataType, max: bool) -> Result<ArrayRef> {
    if ret.is_null() {
        return Ok(new_null_array(ret, args[0].len()));
    }
    let l = list(&args[0], &crate::types::array_of(ret.clone()))?;
    let rows = rows_of(l.values(), SortOptions::default())?;
    let values = l.values();
    let picks: UInt32Array = (0..l.len())
        .map(|i| {
            let candidates = range(&l, i).filter(|&j| !values.is_null(j));
            let pick = if max {
                candidates.max_by(|&a, &b| rows.row(a).cmp(&rows.row(b)))
            } else {
                candidates.min_by(|&a, &b| rows.row(a).cmp(&rows.row(b)))
            };
            pick.filter(|_| !l.is_null(i)).map(|j| j as u32)
        })
        .collect();
    Ok(take(values, &picks, None)?)
}

fn join(_: &Ctx, args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let l = list(&args[0], &crate::types::array_of(DataType::Utf8))?;
    let values = l.values().as_string::<i32>();
    let delim = super::udf::strings(&args[1])?;
    let replacement = args.get(2).map(super::udf::strings).transpose()?;
    let out: StringArray = (0..l.len())
        .map(|i| {
            if l.is_null(i) || delim.is_null(i) || replacement.as_ref().is_some_and(|r| r.is_null(i)) {
                return None;
            }
            let parts: Vec<&str> = range(&l, i)
                .filter_map(|j| match (values.is_null(j), &replacement) {
                    (false, _) => Some(values.value(j)),
                    (true, Some(r)) => Some(r.value(i)),
                    (true, None) => None,
                })
                .collect();
            Some(parts.join(delim.value(i)))
        })
        .collect();
    Ok(Arc::new(out))
}
