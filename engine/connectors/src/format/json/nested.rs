//! ARRAY and MAP columns in the `json` format, as Flink's converters read
//! and write them: an ARRAY is a JSON array, a MAP a JSON object whose keys
//! are the map's keys as text (converted to the key type on reading). Null
//! elements and values are `null`. Entries are written in stored order.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, MapArray, StructArray};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, FieldRef};

use super::parse::JVal;
use super::{convert, kind, push_json_string, push_scalar};
use crate::BatchError;
use crate::format::columns::{ColBuilder, Val};
use sluice_format::nested::entries;
use sluice_format::types::{ColType, describe_arrow};

/// Builds one ARRAY or MAP column (or an element column inside one) from
/// JSON values.
pub(crate) enum NestedBuilder {
    Leaf { t: ColType, data_type: DataType, b: ColBuilder },
    List { field: FieldRef, offsets: Vec<i32>, valid: Vec<bool>, items: Box<NestedBuilder> },
    Map { entries: FieldRef, sorted: bool, offsets: Vec<i32>, valid: Vec<bool>, keys: Box<NestedBuilder>, values: Box<NestedBuilder> },
}

impl NestedBuilder {
    /// A builder for `dt`, if it is a supported type.
    pub(crate) fn new(dt: &DataType) -> Option<NestedBuilder> {
        Some(match dt {
            DataType::List(f) => NestedBuilder::List {
                field: f.clone(),
                offsets: vec![0],
                valid: Vec::new(),
                items: Box::new(NestedBuilder::new(f.data_type())?),
            },
            DataType::Map(entries, sorted) => {
                let DataType::Struct(kv) = entries.data_type() else { return None };
                NestedBuilder::Map {
                    entries: entries.clone(),
                    sorted: *sorted,
                    offsets: vec![0],
                    valid: Vec::new(),
                    keys: Box::new(NestedBuilder::new(kv.first()?.data_type())?),
                    values: Box::new(NestedBuilder::new(kv.get(1)?.data_type())?),
                }
            }
            other => {
                let t = ColType::from_arrow(other)?;
                NestedBuilder::Leaf { t, data_type: other.clone(), b: ColBuilder::new(t, other) }
            }
        })
    }

    pub(crate) fn append_null(&mut self) {
        match self {
            NestedBuilder::Leaf { b, .. } => b.append_null(),
            NestedBuilder::List { offsets, valid, .. } | NestedBuilder::Map { offsets, valid, .. } => {
                offsets.push(offsets.last().copied().unwrap_or(0));
                valid.push(false);
            }
        }
    }

    /// Whether a JSON value converts to this builder's type, as Flink's
    /// `JsonParserToRowDataConverters` convert it; nothing is appended.
    pub(crate) fn check_json(&self, v: &JVal<'_>, scratch: &mut Vec<u8>) -> Result<(), String> {
        if *v == JVal::Null {
            return Ok(());
        }
        match self {
            NestedBuilder::Leaf { t, .. } => convert(v, *t, scratch).map(|_| ()),
            NestedBuilder::List { items, field, .. } => match v {
                JVal::Arr(elements) => elements.iter().try_for_each(|e| items.check_json(e, scratch)),
                _ => Err(format!("cannot convert {} to ARRAY<{}>", kind(v), describe_arrow(field.data_type()))),
            },
            NestedBuilder::Map { keys, values, .. } => match v {
                JVal::Obj(fields) => fields.iter().try_for_each(|(k, val)| {
                    keys.check_json(&JVal::Str(k.clone()), scratch)?;
                    values.check_json(val, scratch)
                }),
                _ => Err(format!("cannot convert {} to a MAP", kind(v))),
            },
        }
    }

    /// Appends a JSON value that [`Self::check_json`] accepted (anything
    /// else is appended as NULL where it does not convert).
    pub(crate) fn append_json(&mut self, v: &JVal<'_>, scratch: &mut Vec<u8>) {
        if *v == JVal::Null {
            self.append_null();
            return;
        }
        match self {
            NestedBuilder::Leaf { t, b, .. } => b.append(&convert(v, *t, scratch).unwrap_or(Val::Null)),
            NestedBuilder::List { offsets, valid, items, .. } => {
                let JVal::Arr(elements) = v else {
                    self.append_null();
                    return;
                };
                for e in elements {
                    items.append_json(e, scratch);
                }
                offsets.push(offsets.last().copied().unwrap_or(0) + elements.len() as i32);
                valid.push(true);
            }
            NestedBuilder::Map { offsets, valid, keys, values, .. } => {
                let JVal::Obj(fields) = v else {
                    self.append_null();
                    return;
                };
                for (k, val) in fields {
                    keys.append_json(&JVal::Str(k.clone()), scratch);
                    values.append_json(val, scratch);
                }
                offsets.push(offsets.last().copied().unwrap_or(0) + fields.len() as i32);
                valid.push(true);
            }
        }
    }

    pub(crate) fn finish(&mut self) -> Result<ArrayRef, BatchError> {
        Ok(match self {
            NestedBuilder::Leaf { b, data_type, .. } => b.finish(data_type)?,
            NestedBuilder::List { field, offsets, valid, items } => {
                let values = items.finish()?;
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                let nulls = NullBuffer::from(std::mem::take(valid));
                Arc::new(ListArray::try_new(field.clone(), offsets, values, Some(nulls))?)
            }
            NestedBuilder::Map { entries, sorted, offsets, valid, keys, values } => {
                let DataType::Struct(kv) = entries.data_type() else {
                    return Err(BatchError::Arrow(arrow::error::ArrowError::InvalidArgumentError(
                        "a map's entries are not a struct".into(),
                    )));
                };
                let (k, v) = (keys.finish()?, values.finish()?);
                let structs = StructArray::try_new(kv.clone(), vec![k, v], None)?;
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                let nulls = NullBuffer::from(std::mem::take(valid));
                Arc::new(MapArray::try_new(entries.clone(), offsets, structs, Some(nulls), *sorted)?)
            }
        })
    }
}

/// Appends the JSON text of a non-null ARRAY or MAP value (or of an element
/// of one, null or not).
pub(crate) fn push_json(enc: &mut super::JsonEncoder, out: &mut Vec<u8>, arr: &dyn Array, row: usize) {
    if arr.is_null(row) {
        out.extend_from_slice(b"null");
        return;
    }
    match arr.data_type() {
        DataType::List(_) => {
            let items: ArrayRef = arr.as_list::<i32>().value(row);
            out.push(b'[');
            for i in 0..items.len() {
                if i > 0 {
                    out.push(b',');
                }
                push_json(enc, out, items.as_ref(), i);
            }
            out.push(b']');
        }
        DataType::Map(_, _) => {
            let map: &MapArray = arr.as_map();
            let (keys, values) = entries(map, row);
            out.push(b'{');
            for i in 0..keys.len() {
                if i > 0 {
                    out.push(b',');
                }
                // Keys are written as text, as Flink's map converter does.
                let mut key = Vec::new();
                sluice_format::nested::push_row_string(&mut key, keys.as_ref(), i, &mut enc.scratch);
                push_json_string(out, &String::from_utf8_lossy(&key));
                out.push(b':');
                push_json(enc, out, values.as_ref(), i);
            }
            out.push(b'}');
        }
        _ => push_scalar(enc, out, arr, row),
    }
}
