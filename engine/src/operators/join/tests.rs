//! The join operator on Arrow batches: keys and the residual evaluated, the
//! output assembled with its kinds, and the state through a snapshot and a
//! restore.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::array_value_to_string;
use datafusion_common::ScalarValue;
use datafusion_expr::Operator;
use datafusion_physical_expr::expressions::{BinaryExpr, Column, Literal};

use super::*;
use crate::operators::KeyGroupWriters;

fn schema(names: [&str; 2], second: DataType) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(names[0], DataType::Int64, true), Field::new(names[1], second, true)]))
}

fn join(kind: JoinKind, residual: bool) -> Join {
    join_of(kind, residual, kind != JoinKind::Inner)
}

fn join_of(kind: JoinKind, residual: bool, updating: bool) -> Join {
    let left = schema(["k", "v"], DataType::Utf8);
    let right = schema(["k2", "w"], DataType::Int64);
    let out = Arc::new(Schema::new([left.fields().to_vec(), right.fields().to_vec()].concat()));
    // Right's w > 10, over the output columns (k, v, k2, w).
    let residual: Option<Arc<dyn PhysicalExpr>> = residual.then(|| {
        Arc::new(BinaryExpr::new(
            Arc::new(Column::new("w", 3)),
            Operator::Gt,
            Arc::new(Literal::new(ScalarValue::Int64(Some(10)))),
        )) as Arc<dyn PhysicalExpr>
    });
    Join::new(JoinDef {
        kind,
        keys: [vec![Arc::new(Column::new("k", 0))], vec![Arc::new(Column::new("k2", 0))]],
        key_types: vec![DataType::Int64],
        inputs: [left, right],
        residual,
        schema: out,
        updating,
        ttl: 0,
    })
    .unwrap()
}

fn left(rows: &[(Option<i64>, &str)]) -> RecordBatch {
    let k: ArrayRef = Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()));
    let v: ArrayRef = Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()));
    RecordBatch::try_new(schema(["k", "v"], DataType::Utf8), vec![k, v]).unwrap()
}

fn right(rows: &[(i64, i64)], kinds: Option<&[RowKind]>) -> RecordBatch {
    let k: ArrayRef = Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()));
    let w: ArrayRef = Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()));
    let b = RecordBatch::try_new(schema(["k2", "w"], DataType::Int64), vec![k, w]).unwrap();
    match kinds {
        Some(k) => changelog::attach(&b, k).unwrap(),
        None => b,
    }
}

/// Each output row as `+I[k, v, k2, w]`.
fn show(out: Vec<StreamEvent>) -> Vec<String> {
    let mut lines = Vec::new();
    for ev in out {
        let StreamEvent::Batch(b) = ev else { continue };
        let (data, kinds) = changelog::split(&b);
        for (r, kind) in kinds.iter().enumerate() {
            let vals: Vec<String> = data
                .columns()
                .iter()
                .map(|c| if c.is_null(r) { "null".into() } else { array_value_to_string(c, r).unwrap() })
                .collect();
            lines.push(format!("{}[{}]", kind.short(), vals.join(", ")));
        }
    }
    lines
}

fn feed(j: &mut Join, input: usize, batch: RecordBatch) -> Vec<String> {
    let mut out = Vec::new();
    j.process_batch_from(input, batch, &mut out).unwrap();
    show(out)
}

#[test]
fn a_left_join_pads_retracts_and_re_pads_as_matches_come_and_go() {
    let mut j = join(JoinKind::Left, true);
    assert_eq!(
        feed(&mut j, 0, left(&[(Some(1), "a"), (None, "n"), (Some(1), "b")])),
        ["+I[1, a, null, null]", "+I[null, n, null, null]", "+I[1, b, null, null]"]
    );
    // w = 5 fails the residual: no match, nothing emitted.
    assert!(feed(&mut j, 1, right(&[(1, 5)], None)).is_empty());
    assert_eq!(
        feed(&mut j, 1, right(&[(1, 20)], None)),
        ["-D[1, a, null, null]", "+I[1, a, 1, 20]", "-D[1, b, null, null]", "+I[1, b, 1, 20]"]
    );
    assert_eq!(feed(&mut j, 0, left(&[(Some(1), "c")])), ["+I[1, c, 1, 20]"]);
    // The right row retracted (an updating input): the left rows lose their only match.
    assert_eq!(
        feed(&mut j, 1, right(&[(1, 20)], Some(&[RowKind::Delete]))),
        [
            "-D[1, a, 1, 20]",
            "+I[1, a, null, null]",
            "-D[1, b, 1, 20]",
            "+I[1, b, null, null]",
            "-D[1, c, 1, 20]",
            "+I[1, c, null, null]"
        ]
    );
}

#[test]
fn an_inner_join_of_append_only_inputs_emits_inserts_without_a_kind_column() {
    let mut j = join(JoinKind::Inner, false);
    assert!(feed(&mut j, 1, right(&[(2, 1), (2, 2), (3, 3)], None)).is_empty());
    let mut out = Vec::new();
    j.process_batch_from(0, left(&[(Some(2), "x"), (Some(4), "y")]), &mut out).unwrap();
    let StreamEvent::Batch(b) = &out[0] else { panic!("a batch") };
    assert!(!changelog::has_kinds(b));
    assert_eq!(show(out), ["+I[2, x, 2, 1]", "+I[2, x, 2, 2]"]);
    // Updates of an updating input keep their kinds through an inner join
    // (whose output is then updating).
    let mut j = join_of(JoinKind::Inner, false, true);
    feed(&mut j, 0, left(&[(Some(2), "x")]));
    assert_eq!(
        feed(&mut j, 1, right(&[(2, 1), (2, 9)], Some(&[RowKind::UpdateBefore, RowKind::UpdateAfter]))),
        ["-U[2, x, 2, 1]", "+U[2, x, 2, 9]"]
    );
}

#[test]
fn the_state_goes_through_a_snapshot_and_a_restore() {
    let mut j = join(JoinKind::Full, false);
    feed(&mut j, 0, left(&[(Some(1), "a"), (Some(2), "b")]));
    feed(&mut j, 1, right(&[(1, 10), (7, 70)], None));
    assert_eq!(j.state_keys(), Some(3));
    let view = j.snapshot().unwrap().unwrap();
    let mut groups = KeyGroupWriters::new();
    view.encode(128, &mut groups, &|| true).unwrap();
    let mut back = join(JoinKind::Full, false);
    for (kg, w) in &groups {
        back.restore(*kg, &w.buf).unwrap();
    }
    assert_eq!(back.state_layout(), j.state_layout());
    assert_eq!(back.state_keys(), Some(3));
    // The restored join knows the matches and padded rows of before.
    let next = right(&[(2, 20), (1, 10)], Some(&[RowKind::Insert, RowKind::Delete]));
    let expected = ["-D[2, b, null, null]", "+I[2, b, 2, 20]", "-D[1, a, 1, 10]", "+I[1, a, null, null]"];
    assert_eq!(feed(&mut back, 1, next.clone()), expected);
    assert_eq!(feed(&mut j, 1, next), expected);
    // A retraction of the right row without matches retracts its padded row.
    assert_eq!(feed(&mut back, 1, right(&[(7, 70)], Some(&[RowKind::Delete]))), ["-D[null, null, 7, 70]"]);
}

#[test]
fn rows_expire_after_the_state_ttl_without_retractions() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let now = Arc::new(AtomicI64::new(0));
    let clock = now.clone();
    let mut j = join(JoinKind::Left, false);
    j.ttl = 100;
    let mut j = j.with_clock(Arc::new(move || clock.load(Ordering::Relaxed)));
    let at = |t: i64| now.store(t, Ordering::Relaxed);
    assert_eq!(feed(&mut j, 0, left(&[(Some(1), "a")])), ["+I[1, a, null, null]"]);
    at(50);
    assert_eq!(feed(&mut j, 1, right(&[(1, 20)], None)), ["-D[1, a, null, null]", "+I[1, a, 1, 20]"]);
    // Both rows were last written at 50: at 200 they are gone, silently.
    at(200);
    assert!(feed(&mut j, 1, right(&[(1, 30)], None)).is_empty());
    at(210);
    assert_eq!(feed(&mut j, 0, left(&[(Some(1), "b")])), ["+I[1, b, 1, 30]"]);
    // A sweep removes keys that no batch touches any more.
    at(1000);
    assert_eq!(feed(&mut j, 0, left(&[(Some(2), "c")])), ["+I[2, c, null, null]"]);
    assert_eq!(j.state_keys(), Some(1));
}

/// An output whose other-side rows come from the residual's decoded
/// candidates, from copied bytes and from null padding, in any mix, assembles
/// each row from its own source.
#[test]
fn output_takes_decoded_candidates_copied_rows_and_padding() {
    let j = join(JoinKind::Inner, false);
    let converter = &j.rows[1];
    let encode = |rows: &[(i64, i64)]| converter.convert_columns(right(rows, None).columns()).unwrap();
    // Candidates as a residual decodes them: (1, 11), (2, 22), (3, 33).
    let cands = encode(&[(1, 11), (2, 22), (3, 33)]);
    let theirs = right(&[(1, 11), (2, 22), (3, 33)], None).columns().to_vec();
    let copied = encode(&[(7, 77), (8, 88)]);
    let data = left(&[(Some(1), "a"), (Some(2), "b")]);
    for decoded in [true, false] {
        let mut o = if decoded { Output::with_decoded(theirs.clone()) } else { Output::default() };
        o.push_candidate(0, RowKind::Insert, true, 2, cands.row(2).as_ref());
        o.push_row(1, RowKind::Insert, true, Some(copied.row(1).as_ref()));
        o.push_row(0, RowKind::Delete, true, None);
        o.push_candidate(1, RowKind::Insert, false, 0, cands.row(0).as_ref());
        o.push_row(1, RowKind::Insert, true, Some(copied.row(0).as_ref()));
        let batch = o.assemble(&j.schema, converter, 0, &data, true).unwrap();
        assert_eq!(
            test_util::show(vec![StreamEvent::Batch(batch)]),
            [
                "[1, a, 3, 33, +I]",
                "[2, b, 8, 88, +I]",
                "[1, a, null, null, -D]",
                "[null, null, 1, 11, +I]",
                "[2, b, 7, 77, +I]"
            ]
            .map(|l| l.replace(", +I", ", 0").replace(", -D", ", 3")),
            "decoded candidates: {decoded}"
        );
    }
}
