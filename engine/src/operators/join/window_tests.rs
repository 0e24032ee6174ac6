use arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion_expr::Operator;
use datafusion_physical_expr::expressions::{BinaryExpr, Column};

use super::*;
use crate::operators::KeyGroupWriters;
use crate::operators::join::test_util::show;

/// One input: a key, a value, the window end.
fn input(side: usize) -> SchemaRef {
    let p = if side == 0 { "l" } else { "r" };
    Arc::new(Schema::new(vec![
        Field::new(format!("{p}k"), DataType::Int64, true),
        Field::new(format!("{p}v"), DataType::Utf8, true),
        Field::new(format!("{p}end"), DataType::Timestamp(TimeUnit::Millisecond, None), false),
    ]))
}

/// Joined on the keys; with `residual`, also on `lv <> rv`.
fn join(kind: JoinKind, residual: bool) -> WindowJoin {
    let (l, r) = (input(0), input(1));
    let out: SchemaRef = Arc::new(Schema::new([l.fields().to_vec(), r.fields().to_vec()].concat()));
    let residual: Option<Arc<dyn PhysicalExpr>> = residual.then(|| {
        Arc::new(BinaryExpr::new(Arc::new(Column::new("lv", 1)), Operator::NotEq, Arc::new(Column::new("rv", 4))))
            as Arc<dyn PhysicalExpr>
    });
    WindowJoin::new(
        JoinDef {
            kind,
            keys: [vec![Arc::new(Column::new("lk", 0))], vec![Arc::new(Column::new("rk", 0))]],
            key_types: vec![DataType::Int64],
            inputs: [l, r],
            residual,
            schema: out,
            updating: false,
            ttl: 0,
        },
        [2, 2],
        TimeShift::new(None).unwrap(),
    )
    .unwrap()
}

fn batch(side: usize, rows: &[(Option<i64>, &str, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        input(side),
        vec![
            Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
            Arc::new(TimestampMillisecondArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
        ],
    )
    .unwrap()
}

fn feed(j: &mut WindowJoin, side: usize, rows: &[(Option<i64>, &str, i64)]) {
    let mut out = Vec::new();
    j.process_batch_from(side, batch(side, rows), &mut out).unwrap();
    assert!(out.is_empty(), "a window join emits only when windows fire");
}

fn watermark(j: &mut WindowJoin, w: i64) -> Vec<String> {
    let mut out = Vec::new();
    j.process_watermark(w, &mut out).unwrap();
    show(out)
}

/// Key 1 on both sides (two left rows), key 2 left only, key 3 right only,
/// all in the window ending at 10; key 1 again in the window ending at 20.
fn fill(j: &mut WindowJoin) {
    feed(j, 0, &[(Some(1), "a", 10), (Some(2), "b", 10), (Some(1), "c", 10), (Some(1), "x", 20)]);
    feed(j, 1, &[(Some(1), "p", 10), (Some(3), "q", 10), (Some(1), "y", 20)]);
}

#[test]
fn windows_fire_at_their_end_with_outer_sides_padded() {
    let cases: [(JoinKind, &[&str]); 4] = [
        (JoinKind::Inner, &["[1, a, 10, 1, p, 10]", "[1, c, 10, 1, p, 10]"]),
        (JoinKind::Left, &["[1, a, 10, 1, p, 10]", "[1, c, 10, 1, p, 10]", "[2, b, 10, null, null, null]"]),
        (JoinKind::Right, &["[1, a, 10, 1, p, 10]", "[1, c, 10, 1, p, 10]", "[null, null, null, 3, q, 10]"]),
        (
            JoinKind::Full,
            &[
                "[1, a, 10, 1, p, 10]",
                "[1, c, 10, 1, p, 10]",
                "[2, b, 10, null, null, null]",
                "[null, null, null, 3, q, 10]",
            ],
        ),
    ];
    for (kind, want) in cases {
        let mut j = join(kind, false);
        fill(&mut j);
        // Nothing before the watermark reaches end - 1.
        assert_eq!(watermark(&mut j, 8), ["W8"], "{kind}");
        let mut got = watermark(&mut j, 9);
        assert_eq!(got.pop().as_deref(), Some("W9"), "{kind}: the watermark follows the rows it fired");
        got.sort();
        let mut want = want.to_vec();
        want.sort();
        assert_eq!(got, want, "{kind}");
        // The fired windows' rows are gone; key 1's next window is kept.
        assert_eq!(j.state_keys(), Some(1), "{kind}");
        assert_eq!(watermark(&mut j, i64::MAX), ["[1, x, 20, 1, y, 20]", &format!("W{}", i64::MAX)], "{kind}");
        assert_eq!(j.state_keys(), Some(0), "{kind}");
    }
}

#[test]
fn rows_of_fired_windows_are_late_and_dropped() {
    let mut j = join(JoinKind::Full, false);
    fill(&mut j);
    watermark(&mut j, 9);
    // End 10 has fired (9 >= 10 - 1): dropped; end 20 joins.
    feed(&mut j, 1, &[(Some(2), "late", 10), (Some(1), "z", 20)]);
    assert_eq!(j.late_records_dropped(), 1);
    assert_eq!(watermark(&mut j, 19), ["[1, x, 20, 1, y, 20]", "[1, x, 20, 1, z, 20]", "W19"]);
}

#[test]
fn the_residual_decides_matches_and_null_keys_match_nothing() {
    let mut j = join(JoinKind::Full, true);
    // lv <> rv: "a" matches "b" only; a null key is padded on each (outer) side.
    feed(&mut j, 0, &[(Some(1), "a", 10), (None, "n", 10)]);
    feed(&mut j, 1, &[(Some(1), "a", 10), (Some(1), "b", 10), (None, "m", 10)]);
    let mut got = watermark(&mut j, 9);
    got.sort();
    assert_eq!(
        got,
        [
            "W9",
            "[1, a, 10, 1, b, 10]",
            "[null, n, 10, null, null, null]",
            "[null, null, null, 1, a, 10]",
            "[null, null, null, null, m, 10]"
        ]
    );
    // An inner join does not even keep rows with null keys.
    let mut j = join(JoinKind::Inner, false);
    feed(&mut j, 0, &[(None, "n", 10)]);
    assert_eq!(j.state_keys(), Some(0));
}

#[test]
fn windows_and_their_timers_survive_a_restore() {
    let mut j = join(JoinKind::Left, false);
    fill(&mut j);
    let mut groups = KeyGroupWriters::new();
    j.snapshot().unwrap().unwrap().encode(128, &mut groups, &|| true).unwrap();
    let mut back = join(JoinKind::Left, false);
    for (kg, w) in &groups {
        back.restore(*kg, &w.buf).unwrap();
    }
    assert_eq!(back.state_keys(), Some(3));
    feed(&mut back, 1, &[(Some(2), "r", 10)]);
    let mut got = watermark(&mut back, i64::MAX);
    got.sort();
    assert_eq!(
        got,
        [
            "W9223372036854775807",
            "[1, a, 10, 1, p, 10]",
            "[1, c, 10, 1, p, 10]",
            "[1, x, 20, 1, y, 20]",
            "[2, b, 10, 2, r, 10]"
        ]
    );
    assert_eq!(back.state_keys(), Some(0));
}
