//! Flink's MAP value constructor, `MAP[k1, v1, k2, v2, ...]`.
//!
//! - The keys are coerced to one type and the values to another, as Flink
//!   finds the least restrictive type of each; the result is `MAP<K, V>`
//!   (Arrow's unsorted map with a non-null key, as a `MAP` column).
//! - The entries keep the order written. A key given twice keeps its first
//!   place and its last value, as Flink folds a constant map (Flink keeps both
//!   entries when the repeated keys are computed; see the README).
//! - Keys (and values) of different types, or an untyped NULL, are refused
//!   with Flink's "Parameters must be of the same type"; an odd number of
//!   arguments with its "Map requires an even number of arguments".
//! - A NULL value is kept. A key that evaluates to NULL fails the job, since
//!   an Arrow map cannot hold one (Flink's can).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, MapArray, StructArray};
use arrow::buffer::OffsetBuffer;
use arrow::compute::interleave;
use arrow::datatypes::{DataType, Fields};
use arrow::row::{RowConverter, SortField};
use datafusion_common::{DataFusionError, Result};
use datafusion_expr::type_coercion::binary::type_union_resolution;
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use crate::types::{flink_name, map_entries, map_of};

/// The function name plans show.
pub const MAP_VALUE: &str = "MAP";

/// The name the dialect calls for `MAP[...]`; not a name SQL can call.
pub const MAP_VALUE_CALL: &str = "__sluice_map_value";

/// The constructor as a function.
pub fn map_value_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MapValue::default()))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MapValue {
    signature: Signature,
}

impl Default for MapValue {
    fn default() -> Self {
        MapValue { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

fn plan_err(msg: String) -> DataFusionError {
    DataFusionError::Plan(msg)
}

/// The one type of the keys or of the values (`what`): Flink's least
/// restrictive type of numbers, or of strings, or one type; an untyped NULL
/// has none.
fn common_type(types: &[DataType], what: &str) -> Result<DataType> {
    let names = || types.iter().map(flink_name).collect::<Vec<_>>().join(", ");
    let same_family = types.iter().all(|t| t.is_numeric())
        || types.iter().all(|t| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View))
        || types.windows(2).all(|w| w[0] == w[1]);
    if types.iter().any(DataType::is_null) {
        return Err(plan_err(format!(
            "Parameters must be of the same type: MAP[...] {what} include an untyped NULL (CAST it)"
        )));
    }
    match type_union_resolution(types) {
        Some(t) if same_family => Ok(t),
        _ => Err(plan_err(format!("Parameters must be of the same type: MAP[...] {what} are {}", names()))),
    }
}

impl ScalarUDFImpl for MapValue {
    fn name(&self) -> &str {
        MAP_VALUE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.is_empty() || !arg_types.len().is_multiple_of(2) {
            return Err(plan_err("Map requires an even number of arguments".to_string()));
        }
        let keys: Vec<DataType> = arg_types.iter().step_by(2).cloned().collect();
        let values: Vec<DataType> = arg_types.iter().skip(1).step_by(2).cloned().collect();
        let (k, v) = (common_type(&keys, "keys")?, common_type(&values, "values")?);
        Ok(arg_types.iter().enumerate().map(|(i, _)| if i % 2 == 0 { k.clone() } else { v.clone() }).collect())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [k, v, ..] => Ok(map_of(k.clone(), v.clone())),
            _ => Err(plan_err("Map requires an even number of arguments".to_string())),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(n)).collect::<Result<_>>()?;
        Ok(ColumnarValue::Array(build(&arrays, args.return_field.data_type(), n)?))
    }
}

/// Each row's map from its key and value columns, alternating.
fn build(arrays: &[ArrayRef], out: &DataType, rows: usize) -> Result<ArrayRef> {
    let (DataType::Map(entries_field, sorted), Some((key_field, _))) = (out, map_entries(out)) else {
        return Err(DataFusionError::Internal(format!("MAP[...] returns a map, not {out}")));
    };
    let keys: Vec<&dyn Array> = arrays.iter().step_by(2).map(|a| a.as_ref()).collect();
    let values: Vec<&dyn Array> = arrays.iter().skip(1).step_by(2).map(|a| a.as_ref()).collect();
    // Keys compared by their row encoding: any key type, one comparison.
    let converter = RowConverter::new(vec![SortField::new(key_field.data_type().clone())])?;
    let encoded = arrays
        .iter()
        .step_by(2)
        .map(|k| converter.convert_columns(&[Arc::clone(k)]))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut key_at: Vec<(usize, usize)> = Vec::with_capacity(rows * keys.len());
    let mut value_at: Vec<(usize, usize)> = Vec::with_capacity(rows * keys.len());
    let mut offsets: Vec<i32> = Vec::with_capacity(rows + 1);
    offsets.push(0);
    for r in 0..rows {
        let start = key_at.len();
        for (i, k) in keys.iter().enumerate() {
            if k.is_null(r) {
                return Err(DataFusionError::Execution(
                    "a MAP[...] key is NULL: an Arrow map cannot hold a NULL key (Flink's can)".to_string(),
                ));
            }
            let same = (start..key_at.len()).find(|&e| encoded[key_at[e].0].row(key_at[e].1) == encoded[i].row(r));
            match same {
                Some(e) => value_at[e] = (i, r),
                None => {
                    key_at.push((i, r));
                    value_at.push((i, r));
                }
            }
        }
        offsets.push(i32::try_from(key_at.len()).map_err(|_| DataFusionError::Execution("MAP[...] too large".into()))?);
    }
    let DataType::Struct(fields) = entries_field.data_type() else {
        return Err(DataFusionError::Internal("a map's entries are a struct".into()));
    };
    let entries = StructArray::try_new(
        Fields::clone(fields),
        vec![interleave(&keys, &key_at)?, interleave(&values, &value_at)?],
        None,
    )?;
    Ok(Arc::new(MapArray::try_new(
        Arc::clone(entries_field),
        OffsetBuffer::new(offsets.into()),
        entries,
        None,
        *sorted,
    )?))
}
