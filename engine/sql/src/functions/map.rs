//! Flink's MAP functions. A NULL map gives NULL.
//!
//! - `MAP_KEYS(m)`, `MAP_VALUES(m)`: ARRAYs in the map's entry order.
//! - `MAP_FROM_ARRAYS(keys, values)`: a MAP of the pairs at equal positions;
//!   arrays of different lengths or a NULL key fail, as in Flink. A key that
//!   repeats keeps its first place and its last value.
//! - `MAP_UNION(m1, m2, ...)`: the entries of all maps, a later map's value
//!   winning for a key in several; NULL when any map is NULL. The entries are
//!   in Flink's order (a later map's first), which its printed maps show.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, MapArray, StructArray, UInt32Array, new_null_array};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::{SortOptions, cast, concat, take};
use arrow::datatypes::{DataType, Field};
use datafusion_common::{Result, ScalarValue};

use super::array::{element_field, list, range, rows_of};
use super::udf::{Ctx, Def, def, element_type, exec_err, is_array};

pub const DEFS: &[Def] = &[
    def("map_keys", "(map)", (1, 1), ret_map_part, |_, a, r| map_part(a, r, true)),
    def("map_values", "(map)", (1, 1), ret_map_part, |_, a, r| map_part(a, r, false)),
    def("map_from_arrays", "(keys array, values array)", (2, 2), ret_from_arrays, from_arrays),
    def("map_union", "(map, map, ...)", (2, usize::MAX), ret_union, union),
];

fn is_map(t: &DataType) -> bool {
    matches!(t, DataType::Map(_, _))
}

fn ret_map_part(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "a MAP", is_map)?;
    let (key, value) = match crate::types::map_entries(&args[0]) {
        Some((k, v)) => (k.data_type().clone(), v.data_type().clone()),
        None => (DataType::Null, DataType::Null),
    };
    Ok(crate::types::array_of(if d.name == "map_keys" { key } else { value }))
}

fn ret_from_arrays(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    d.expect(args, 0, "an ARRAY of keys", is_array)?;
    d.expect(args, 1, "an ARRAY of values", is_array)?;
    let key = element_type(&args[0]).cloned().unwrap_or(DataType::Null);
    let value = element_type(&args[1]).cloned().unwrap_or(DataType::Null);
    Ok(crate::types::map_of(key, value))
}

fn ret_union(d: &Def, args: &[DataType], _: &[Option<&ScalarValue>], _: &str) -> Result<DataType> {
    (0..args.len()).try_for_each(|i| d.expect(args, i, "a MAP", is_map))?;
    let t = args.iter().find(|t| is_map(t)).cloned().unwrap_or(DataType::Null);
    if let Some(other) = args.iter().find(|a| is_map(a) && !arrow::compute::can_cast_types(a, &t)) {
        return Err(d.err(format_args!(
            "cannot combine a {} with a {}",
            crate::types::flink_name(&t),
            crate::types::flink_name(other)
        )));
    }
    Ok(t)
}

fn map_part(args: &[ArrayRef], ret: &DataType, keys: bool) -> Result<ArrayRef> {
    let Some(m) = args[0].as_map_opt() else {
        return Ok(new_null_array(ret, args[0].len()));
    };
    let part = if keys { m.keys() } else { m.values() };
    let field = element_field(ret);
    let part = cast(part, field.data_type())?;
    Ok(Arc::new(ListArray::try_new(field, m.offsets().clone(), part, m.nulls().cloned())?))
}

/// Builds a map of type `ret` whose row `i` holds the pairs
/// `(keys[j], values[j])` for `j` in `rows[i]`, a repeated key keeping its
/// first place and its last value; None rows are NULL.
fn build(ret: &DataType, keys: &ArrayRef, values: &ArrayRef, rows: Vec<Option<Vec<usize>>>) -> Result<ArrayRef> {
    let DataType::Map(entries, sorted) = ret else {
        return Ok(new_null_array(ret, rows.len()));
    };
    let DataType::Struct(fields) = entries.data_type() else {
        return Ok(new_null_array(ret, rows.len()));
    };
    let (key_type, value_type) = (fields[0].data_type(), fields[1].data_type());
    let keys = cast(keys, key_type)?;
    let values = cast(values, value_type)?;
    let key_rows = rows_of(&keys, SortOptions::default())?;
    let (mut key_idx, mut value_idx, mut offsets, mut valid) = (Vec::new(), Vec::new(), vec![0i32], Vec::new());
    for row in &rows {
        valid.push(row.is_some());
        let start = key_idx.len();
        for &j in row.iter().flatten() {
            if keys.is_null(j) {
                return Err(exec_err("map", "keys cannot be NULL"));
            }
            match (start..key_idx.len()).find(|&k| key_rows.row(key_idx[k] as usize) == key_rows.row(j)) {
                Some(k) => value_idx[k] = j as u32,
                None => {
                    key_idx.push(j as u32);
                    value_idx.push(j as u32);
                }
            }
        }
        offsets.push(i32::try_from(key_idx.len()).map_err(|_| exec_err("map", "result is too large"))?);
    }
    let k = take(&keys, &UInt32Array::from(key_idx), None)?;
    let v = take(&values, &UInt32Array::from(value_idx), None)?;
    let entries_array = StructArray::try_new(fields.clone(), vec![k, v], None)?;
    let entries_field = Arc::new(Field::new(entries.name(), entries.data_type().clone(), false));
    Ok(Arc::new(MapArray::try_new(
        entries_field,
        OffsetBuffer::new(offsets.into()),
        entries_array,
        Some(NullBuffer::from(valid)),
        *sorted,
    )?))
}

fn from_arrays(_: &Ctx, args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let Some((key_type, value_type)) = crate::types::map_entries(ret).map(|(k, v)| (k.data_type(), v.data_type()))
    else {
        return Ok(new_null_array(ret, args[0].len()));
    };
    let keys = list(&args[0], &crate::types::array_of(key_type.clone()))?;
    let values = list(&args[1], &crate::types::array_of(value_type.clone()))?;
    // Row i's pairs, as positions in the keys' and the values' arrays.
    let mut pairs = Vec::with_capacity(keys.len());
    for i in 0..keys.len() {
        if keys.is_null(i) || values.is_null(i) {
            pairs.push(None);
            continue;
        }
        let (kr, vr) = (range(&keys, i), range(&values, i));
        if kr.len() != vr.len() {
            return Err(exec_err(
                "map_from_arrays",
                format_args!("takes arrays of one length, not {} keys and {} values", kr.len(), vr.len()),
            ));
        }
        pairs.push(Some(kr.zip(vr).collect::<Vec<_>>()));
    }
    let key_idx: Vec<u32> = pairs.iter().flatten().flatten().map(|(k, _)| *k as u32).collect();
    let value_idx: Vec<u32> = pairs.iter().flatten().flatten().map(|(_, v)| *v as u32).collect();
    let k = take(keys.values(), &UInt32Array::from(key_idx), None)?;
    let v = take(values.values(), &UInt32Array::from(value_idx), None)?;
    let mut next = 0;
    let rows = pairs
        .iter()
        .map(|row| {
            row.as_ref().map(|p| {
                let r = (next..next + p.len()).collect();
                next += p.len();
                r
            })
        })
        .collect();
    build(ret, &k, &v, rows)
}

fn union(_: &Ctx, args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let maps: Vec<MapArray> = args.iter().map(|a| Ok(cast(a, ret)?.as_map().clone())).collect::<Result<_>>()?;
    let keys: Vec<&dyn Array> = maps.iter().map(|m| m.keys().as_ref()).collect();
    let values: Vec<&dyn Array> = maps.iter().map(|m| m.values().as_ref()).collect();
    let (keys, values) = (concat(&keys)?, concat(&values)?);
    let starts: Vec<usize> = maps
        .iter()
        .scan(0, |acc, m| {
            let s = *acc;
            *acc += m.keys().len();
            Some(s)
        })
        .collect();
    let key_rows = rows_of(&keys, SortOptions::default())?;
    let rows = (0..maps[0].len())
        .map(|i| {
            if maps.iter().any(|m| m.is_null(i)) {
                return None;
            }
            let entries = |k: usize| {
                let (o, start) = (maps[k].value_offsets(), starts[k]);
                (o[i] as usize..o[i + 1] as usize).map(move |j| start + j)
            };
            // Flink's order: each later non-empty map's entries, then the
            // entries so far whose keys it does not have.
            let mut order: Vec<usize> = entries(0).collect();
            for k in 1..maps.len() {
                let later: Vec<usize> = entries(k).collect();
                if later.is_empty() {
                    continue;
                }
                let kept = order.into_iter().filter(|&j| !later.iter().any(|&l| key_rows.row(l) == key_rows.row(j)));
                order = later.iter().copied().chain(kept).collect();
            }
            Some(order)
        })
        .collect();
    build(ret, &keys, &values, rows)
}
