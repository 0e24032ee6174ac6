use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion_physical_expr::expressions::Column;
use sluice_sql::plan::AggFunc;

use super::*;

fn agg(func: AggFunc, distinct: bool) -> AggDef {
    let arg: Option<Arc<dyn datafusion_physical_expr::PhysicalExpr>> = Some(Arc::new(Column::new("v", 1)));
    AggDef {
        func,
        arg,
        filter: None,
        distinct,
        input_type: Some(DataType::Int64),
        output_type: DataType::Int64,
        separator: None,
    }
}

/// `SELECT k, COUNT(v), SUM(v), MAX(v) ... GROUP BY k` over (k STRING, v BIGINT).
fn operator(retracting: bool) -> GroupAggregate {
    let keys = Keys::new(vec![Arc::new(Column::new("k", 0))], vec![DataType::Utf8]).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("c", DataType::Int64, false),
        Field::new("s", DataType::Int64, true),
        Field::new("m", DataType::Int64, true),
    ]));
    GroupAggregate::new(
        keys,
        vec![agg(AggFunc::Count, false), agg(AggFunc::Sum, false), agg(AggFunc::Max, false)],
        schema,
        vec![retracting; 3],
    )
}

/// Rows `("+I", "a", 1)`, as a batch (with kinds when any row is not `+I`).
fn batch(rows: &[(&str, &str, i64)]) -> RecordBatch {
    let schema =
        Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("v", DataType::Int64, true)]));
    let data = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
        ],
    )
    .unwrap();
    if rows.iter().all(|r| r.0 == "+I") {
        return data;
    }
    let kinds: Vec<RowKind> = rows
        .iter()
        .map(|r| match r.0 {
            "+I" => RowKind::Insert,
            "-U" => RowKind::UpdateBefore,
            "+U" => RowKind::UpdateAfter,
            _ => RowKind::Delete,
        })
        .collect();
    changelog::attach(&data, &kinds).unwrap()
}

fn run(op: &mut GroupAggregate, rows: &[(&str, &str, i64)]) -> Vec<String> {
    let mut out = Vec::new();
    op.process_batch(batch(rows), &mut out).unwrap();
    let mut lines = Vec::new();
    for ev in out {
        let StreamEvent::Batch(b) = ev else { continue };
        let (data, kinds) = changelog::split(&b);
        let k = data.column(0).as_string::<i32>();
        let cols: Vec<&Int64Array> = (1..4).map(|i| data.column(i).as_primitive::<Int64Type>()).collect();
        for (r, kind) in kinds.iter().enumerate() {
            let vals: Vec<String> =
                cols.iter().map(|c| if c.is_null(r) { "null".to_string() } else { c.value(r).to_string() }).collect();
            lines.push(format!("{}[{}, {}]", kind.short(), k.value(r), vals.join(", ")));
        }
    }
    lines
}

#[test]
fn inserts_emit_an_insert_then_update_pairs_per_key() {
    let mut op = operator(false);
    assert_eq!(
        run(&mut op, &[("+I", "a", 1), ("+I", "b", 2), ("+I", "a", 3)]),
        ["+I[a, 1, 1, 1]", "+I[b, 1, 2, 2]", "-U[a, 1, 1, 1]", "+U[a, 2, 4, 3]"]
    );
    assert_eq!(op.state_keys(), Some(2));
}

#[test]
fn retractions_update_delete_and_ignore_unknown_keys() {
    let mut op = operator(true);
    run(&mut op, &[("+I", "a", 5), ("+I", "a", 7)]);
    assert_eq!(
        run(&mut op, &[("-U", "a", 7), ("-D", "zz", 1), ("+U", "a", 6), ("-D", "a", 6), ("-D", "a", 5)]),
        [
            "-U[a, 2, 12, 7]",
            "+U[a, 1, 5, 5]",
            "-U[a, 1, 5, 5]",
            "+U[a, 2, 11, 6]",
            "-U[a, 2, 11, 6]",
            "+U[a, 1, 5, 5]",
            "-D[a, 1, 5, 5]",
        ]
    );
    assert_eq!(op.state_keys(), Some(0));
}

#[test]
fn an_unchanged_result_emits_nothing() {
    // MAX alone: a smaller value changes nothing.
    let keys = Keys::new(vec![Arc::new(Column::new("k", 0))], vec![DataType::Utf8]).unwrap();
    let schema =
        Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("m", DataType::Int64, true)]));
    let mut op = GroupAggregate::<()>::new(keys, vec![agg(AggFunc::Max, false)], schema, vec![false]);
    let mut out = Vec::new();
    op.process_batch(batch(&[("+I", "a", 5), ("+I", "a", 3)]), &mut out).unwrap();
    let StreamEvent::Batch(b) = &out[0] else { panic!("no batch") };
    assert_eq!(b.num_rows(), 1);
}

#[test]
fn state_survives_a_snapshot_and_restore() {
    let mut op = operator(true);
    run(&mut op, &[("+I", "a", 5), ("+I", "b", 1)]);
    let view = op.snapshot().unwrap().unwrap();
    run(&mut op, &[("+I", "a", 100)]);
    let mut groups = crate::operators::KeyGroupWriters::new();
    view.encode(128, &mut groups, &|| true).unwrap();
    let mut restored = operator(true);
    for (kg, w) in &groups {
        restored.restore(*kg, &w.buf).unwrap();
    }
    assert_eq!(restored.state_keys(), Some(2));
    assert_eq!(run(&mut restored, &[("+I", "a", 1)]), ["-U[a, 1, 5, 5]", "+U[a, 2, 6, 5]"]);
    assert_eq!(restored.state_layout(), op.state_layout());
}

static NOW: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn fixed_clock() -> i64 {
    NOW.load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn state_not_written_for_the_ttl_expires() {
    let mut op = operator(true).with_ttl(Ttl::new(std::time::Duration::from_millis(1000)).with_clock(fixed_clock));
    NOW.store(10_000, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(run(&mut op, &[("+I", "a", 5), ("+I", "b", 1)]), ["+I[a, 1, 5, 5]", "+I[b, 1, 1, 1]"]);
    // Within the TTL an unchanged result is still emitted (a MAX alone would not change).
    NOW.store(10_999, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(run(&mut op, &[("+I", "a", 0)]), ["-U[a, 1, 5, 5]", "+U[a, 2, 5, 5]"]);
    // `b` was written at 10 000 and expired at 11 000; `a` at 10 999 lives on.
    NOW.store(11_000, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        run(&mut op, &[("-U", "b", 1), ("+I", "b", 7), ("+I", "a", 1)]),
        ["+I[b, 1, 7, 7]", "-U[a, 2, 5, 5]", "+U[a, 3, 6, 5]"]
    );
    // A sweep removes keys that expired without being read again.
    NOW.store(20_000, std::sync::atomic::Ordering::Relaxed);
    run(&mut op, &[("+I", "c", 1)]);
    assert_eq!(op.state_keys(), Some(1));
}

/// Without a TTL a group keeps no write time: 24 bytes beside its key, where
/// it takes 32 with one; both encode alike, so a snapshot restores either way.
#[test]
fn a_group_without_a_ttl_keeps_no_write_time() {
    assert_eq!(std::mem::size_of::<Group<()>>(), 24);
    assert_eq!(std::mem::size_of::<Group<i64>>(), 32);
    let timed = Group { accs: Accs::new(3, vec![Acc::Count(3)]), written: 77 };
    let mut w = Writer::new();
    timed.encode(&mut w);
    let plain = Group::<()>::decode(&mut Reader::new(&w.buf)).unwrap();
    assert_eq!((plain.accs.rows(), plain.accs.len()), (3, 1));
    let mut w2 = Writer::new();
    plain.encode(&mut w2);
    let again = Group::<i64>::decode(&mut Reader::new(&w2.buf)).unwrap();
    assert_eq!((again.accs.rows(), again.written), (3, 0));
}
