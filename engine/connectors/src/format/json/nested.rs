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
use sluice_format::nested::{entries, flink_string_map_order};
use sluice_format::types::{ColType, describe_arrow};

/// Builds one ARRAY or MAP column (or an element column inside one) from
/// JSON values.
pub(crate) enum NestedBuilder {
    Leaf {
        t: ColType,
        data_type: DataType,
        b: ColBuilder,
    },
    List {
        field: FieldRef,
        offsets: Vec<i32>,
        valid: Vec<bool>,
        items: Box<NestedBuilder>,
    },
    Map {
        entries: FieldRef,
        sorted: bool,
        offsets: Vec<i32>,
        valid: Vec<bool>,
        keys: Box<NestedBuilder>,
        values: Box<NestedBuilder>,
    },
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
                let fields = flink_map_order(fields, keys);
                for (k, val) in &fields {
                    keys.append_json(&JVal::Str((*k).clone()), scratch);
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

/// A JSON object's entries as Flink's json format stores them: a key given
/// twice keeps its first place and its last value (a `HashMap` put), and
/// STRING keys are in the order of Flink's internal hash map, which UNNEST
/// and printing follow (see `sluice_format::nested`).
fn flink_map_order<'v, 'a>(
    fields: &'v [(std::borrow::Cow<'a, str>, JVal<'a>)],
    keys: &NestedBuilder,
) -> Vec<(&'v std::borrow::Cow<'a, str>, &'v JVal<'a>)> {
    let mut unique: Vec<(&std::borrow::Cow<'a, str>, &JVal<'a>)> = Vec::with_capacity(fields.len());
    for (k, v) in fields {
        match unique.iter_mut().find(|(u, _)| *u == k) {
            Some(slot) => slot.1 = v,
            None => unique.push((k, v)),
        }
    }
    if matches!(keys, NestedBuilder::Leaf { t: ColType::Utf8, .. }) {
        let names: Vec<&str> = unique.iter().map(|(k, _)| k.as_ref()).collect();
        return flink_string_map_order(&names).into_iter().map(|i| unique[i]).collect();
    }
    unique
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use arrow::datatypes::{Field, Schema};

    use super::super::{JsonDecoder, JsonEncoder, JsonOptions};
    use super::*;
    use sluice_format::types::column_types_nested;

    fn schema() -> Arc<Schema> {
        let list = DataType::List(Arc::new(Field::new("element", DataType::Int32, true)));
        let kv = arrow::datatypes::Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", list.clone(), true),
        ]);
        let map = DataType::Map(Arc::new(Field::new("entries", DataType::Struct(kv), false)), false);
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("m", map, true)]))
    }

    fn decoder(opts: JsonOptions) -> JsonDecoder {
        let s = schema();
        JsonDecoder::new(opts, s.fields(), column_types_nested(s.fields(), "filesystem").unwrap())
    }

    fn round_trip(lines: &[&str]) -> String {
        let s = schema();
        let mut d = decoder(JsonOptions::default());
        for l in lines {
            assert!(d.decode(l).unwrap());
        }
        let batch = d.builders.finish(&s).unwrap();
        let mut e = JsonEncoder::new(
            JsonOptions::default(),
            s.fields(),
            column_types_nested(s.fields(), "filesystem").unwrap(),
        );
        let mut out = Vec::new();
        e.encode("t", &batch, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn nested_maps_and_arrays_read_and_write_back() {
        let out = round_trip(&[
            r#"{"id":1,"m":{"color":[1,null,"3"],"weight":[]}}"#,
            r#"{"id":2,"m":{}}"#,
            r#"{"id":3,"m":null}"#,
            r#"{"id":4}"#,
            r#"{"id":5,"m":{"x":null}}"#,
        ]);
        // Keys in Flink's internal order ("weight" before "color"); "3" reads as an INT.
        assert_eq!(
            out,
            "{\"id\":1,\"m\":{\"weight\":[],\"color\":[1,null,3]}}\n{\"id\":2,\"m\":{}}\n{\"id\":3,\"m\":null}\n\
             {\"id\":4,\"m\":null}\n{\"id\":5,\"m\":{\"x\":null}}\n"
        );
    }

    #[test]
    fn a_value_of_the_wrong_shape_fails_the_record_or_is_null_when_ignored() {
        let mut d = decoder(JsonOptions::default());
        let e = d.decode(r#"{"id":1,"m":{"a":[1,"x"]}}"#).unwrap_err();
        assert!(matches!(&e, crate::format::RecordError::Field(m) if m.contains("field `m`")), "{e:?}");
        let e = d.decode(r#"{"m":{"a":[1]},"id":"x"}"#).unwrap_err();
        assert!(matches!(&e, crate::format::RecordError::Field(m) if m.contains("field `id`")), "{e:?}");
        let e = d.decode(r#"{"id":1,"m":[1]}"#).unwrap_err();
        assert!(matches!(&e, crate::format::RecordError::Field(m) if m.contains("an array to a MAP")), "{e:?}");
        assert_eq!(d.builders.len(), 0);
        assert!(d.decode(r#"{"id":1,"m":{"a":[1]}}"#).unwrap());
        assert_eq!(d.builders.finish(&schema()).unwrap().column(1).len(), 1);
        let mut d = decoder(JsonOptions { ignore_parse_errors: true, ..JsonOptions::default() });
        assert!(d.decode(r#"{"id":1,"m":{"a":[1,"x"]}}"#).unwrap());
        let batch = d.builders.finish(&schema()).unwrap();
        assert!(batch.column(1).is_null(0));
        assert_eq!(batch.column(1).len(), 1);
    }
}
