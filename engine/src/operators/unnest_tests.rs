#![allow(clippy::unwrap_used)]

use arrow::array::{Int32Builder, Int64Array, ListBuilder, MapBuilder, StringBuilder};
use arrow::datatypes::{Field, Schema};
use datafusion_physical_expr::expressions::Column;
use sluice_format::changelog::{RowKind, attach, kind_array};
use sluice_format::row::RowStringEncoder;
use sluice_format::types::column_types_nested;

use super::*;

fn tags() -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    b.append_value([Some("a"), Some("b")]);
    b.append_value::<[Option<&str>; 0], _>([]);
    b.append_null();
    b.append_value([Some("c"), None]);
    Arc::new(b.finish())
}

fn attrs() -> ArrayRef {
    let mut b = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
    for (k, v) in [("x", Some(1)), ("y", None)] {
        b.keys().append_value(k);
        b.values().append_option(v);
    }
    b.append(true).unwrap();
    b.append(false).unwrap();
    b.append(true).unwrap();
    b.keys().append_value("z");
    b.values().append_value(3);
    b.append(true).unwrap();
    Arc::new(b.finish())
}

fn input(coll: ArrayRef) -> RecordBatch {
    let schema =
        Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("c", coll.data_type().clone(), true)]);
    RecordBatch::try_new(Arc::new(schema), vec![Arc::new(Int64Array::from(vec![1, 2, 3, 4])), coll]).unwrap()
}

fn op(batch: &RecordBatch, ordinality: bool, outer: bool) -> Unnest {
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    match batch.column(1).data_type() {
        DataType::List(f) => fields.push(Field::new("x", f.data_type().clone(), true)),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) => {
                fields.push(Field::new("k", kv[0].data_type().clone(), true));
                fields.push(Field::new("v", kv[1].data_type().clone(), true));
            }
            _ => unreachable!(),
        },
        _ => unreachable!(),
    }
    if ordinality {
        fields.push(Field::new("o", DataType::Int32, true));
    }
    Unnest { expr: Arc::new(Column::new("c", 1)), ordinality, outer, schema: Arc::new(Schema::new(fields)) }
}

/// The output as the print sink shows it.
fn printed(batch: &RecordBatch) -> Vec<String> {
    let (data, _) = changelog::split(batch);
    let mut enc = RowStringEncoder::new(column_types_nested(data.schema().fields(), "print").unwrap(), String::new());
    let mut out = Vec::new();
    enc.encode(batch, &mut out).unwrap();
    String::from_utf8(out).unwrap().lines().map(String::from).collect()
}

#[test]
fn an_array_gives_a_row_per_element_and_none_for_null_or_empty() {
    let b = input(tags());
    let out = op(&b, false, false).expand(&b).unwrap();
    assert_eq!(
        printed(&out),
        ["+I[1, [a, b], a]", "+I[1, [a, b], b]", "+I[4, [c, null], c]", "+I[4, [c, null], null]"]
    );
}

#[test]
fn left_unnest_pads_null_and_empty_collections() {
    let b = input(tags());
    let out = op(&b, true, true).expand(&b).unwrap();
    assert_eq!(
        printed(&out),
        [
            "+I[1, [a, b], a, 1]",
            "+I[1, [a, b], b, 2]",
            "+I[2, [], null, null]",
            "+I[3, null, null, null]",
            "+I[4, [c, null], c, 1]",
            "+I[4, [c, null], null, 2]"
        ]
    );
}

#[test]
fn a_map_gives_a_row_per_entry_with_key_and_value() {
    let b = input(attrs());
    let out = op(&b, true, false).expand(&b).unwrap();
    assert_eq!(
        printed(&out),
        ["+I[1, {x=1, y=null}, x, 1, 1]", "+I[1, {x=1, y=null}, y, null, 2]", "+I[4, {z=3}, z, 3, 1]"]
    );
}

#[test]
fn each_element_row_keeps_its_input_rows_kind() {
    let data = input(tags());
    let kinds = [RowKind::Insert, RowKind::UpdateBefore, RowKind::UpdateAfter, RowKind::Delete];
    let b = attach(&data, &kinds).unwrap();
    assert_eq!(b.column(2).as_ref(), kind_array(&kinds).as_ref());
    let mut out = Vec::new();
    op(&data, false, true).process_batch(b, &mut out).unwrap();
    let [StreamEvent::Batch(out)] = out.as_slice() else { panic!("one batch expected") };
    assert_eq!(
        printed(out),
        [
            "+I[1, [a, b], a]",
            "+I[1, [a, b], b]",
            "-U[2, [], null]",
            "+U[3, null, null]",
            "-D[4, [c, null], c]",
            "-D[4, [c, null], null]"
        ]
    );
}

#[test]
fn a_batch_without_elements_emits_nothing() {
    let b = input(tags()).slice(1, 2);
    let mut out = Vec::new();
    op(&b, false, false).process_batch(b, &mut out).unwrap();
    assert!(out.is_empty());
}
