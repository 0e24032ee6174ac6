//! The Top-N decisions replayed on sequences whose output Flink 2.3 printed
//! (the `topn_ties` golden case, team x).

use super::*;
use crate::operators::rows::{Emit, SortPart};
use crate::state::value::Val;

fn row(player: &str, score: i64) -> (SortKey, PackedRow) {
    let key: SortKey =
        vec![SortPart { val: Val::I64(score), dir: Direction { asc: false, nulls_first: false } }].into();
    (key, PackedRow::pack(&[Val::Str(player.into()), Val::I64(score)]))
}

fn text(e: &Emit) -> String {
    let Val::Str(p) = &e.row[0] else { return "?".into() };
    match e.rank {
        Some(r) => format!("{}[{r}, {p}]", e.kind.short()),
        None => format!("{}[{p}]", e.kind.short()),
    }
}

const INPUT: [(&str, i64); 13] = [
    ("p1", 10),
    ("p2", 10),
    ("p3", 10),
    ("p4", 10),
    ("p5", 20),
    ("p6", 10),
    ("p7", 30),
    ("p8", 30),
    ("p9", 5),
    ("p10", 40),
    ("p11", 40),
    ("p12", 40),
    ("p13", 40),
];

fn replay(f: impl Fn(&mut Buffer, SortKey, PackedRow, &mut Emitted)) -> (Vec<String>, Buffer) {
    let mut buf = Buffer::default();
    let mut out = Emitted::new(&[DataType::Utf8, DataType::Int64], 0, 0);
    for (p, s) in INPUT {
        let (k, r) = row(p, s);
        f(&mut buf, k, r, &mut out);
    }
    (out.rows().iter().map(text).collect(), buf)
}

#[test]
fn top3_with_row_numbers_shifts_ranks_as_flink_does() {
    let (out, buf) = replay(|b, k, r, o| top_n(b, k, r, RankRange { start: 1, end: 3 }, true, o));
    let want = "+I[1, p1] +I[2, p2] +I[3, p3] \
        -U[1, p1] +U[1, p5] -U[2, p2] +U[2, p1] -U[3, p3] +U[3, p2] \
        -U[1, p5] +U[1, p7] -U[2, p1] +U[2, p5] -U[3, p2] +U[3, p1] \
        -U[2, p5] +U[2, p8] -U[3, p1] +U[3, p5] \
        -U[1, p7] +U[1, p10] -U[2, p8] +U[2, p7] -U[3, p5] +U[3, p8] \
        -U[2, p7] +U[2, p11] -U[3, p8] +U[3, p7] \
        -U[3, p7] +U[3, p12]";
    assert_eq!(out.join(" "), want);
    let top: Vec<String> = buf.rows().take(3).map(|r| format!("{:?}", r.unpack().unwrap()[0])).collect();
    assert_eq!(top, ["Str(\"p10\")", "Str(\"p11\")", "Str(\"p12\")"]);
}

#[test]
fn top3_without_row_numbers_inserts_and_deletes_as_flink_does() {
    let (out, buf) = replay(|b, k, r, o| top_n(b, k, r, RankRange { start: 1, end: 3 }, false, o));
    let want = "+I[p1] +I[p2] +I[p3] -D[p3] +I[p5] -D[p2] +I[p7] -D[p1] +I[p8] \
        -D[p5] +I[p10] -D[p8] +I[p11] -D[p7] +I[p12]";
    assert_eq!(out.join(" "), want);
    assert_eq!(buf.count, 3);
}

#[test]
fn top1_replaces_only_on_a_strictly_better_key() {
    let (out, _) = replay(|b, k, r, o| top1(b, k, r, false, true, o));
    assert_eq!(out.join(" "), "+I[p1] -U[p1] +U[p5] -U[p5] +U[p7] -U[p7] +U[p10]");
    let (out, _) = replay(|b, k, r, o| top1(b, k, r, true, true, o));
    assert_eq!(out[..3].join(" "), "+I[1, p1] -U[1, p1] +U[1, p5]");
}

#[test]
fn top1_without_update_before_emits_lone_update_afters() {
    let (out, _) = replay(|b, k, r, o| top1(b, k, r, false, false, o));
    assert_eq!(out.join(" "), "+I[p1] +U[p5] +U[p7] +U[p10]");
}

#[test]
fn only_one_descending_order_key_retracts_the_replaced_top_row() {
    let desc = Direction { asc: false, nulls_first: false };
    let asc = Direction { asc: true, nulls_first: true };
    assert!(top1_update_before(&[desc]));
    assert!(!top1_update_before(&[asc]));
    assert!(!top1_update_before(&[desc, asc]));
    assert!(!top1_update_before(&[desc, desc]));
}

#[test]
fn a_range_after_the_first_rank_emits_only_its_ranks() {
    // rn 2..=3: the same shifts as the top 3, without rank 1.
    let (out, _) = replay(|b, k, r, o| top_n(b, k, r, RankRange { start: 2, end: 3 }, true, o));
    assert_eq!(out[..6].join(" "), "+I[2, p2] +I[3, p3] -U[2, p2] +U[2, p1] -U[3, p3] +U[3, p2]");
    assert!(out.iter().all(|e| !e.contains("[1,")));
}

#[test]
fn rows_that_do_not_fit_leave_the_buffer_unchanged() {
    let mut buf = Buffer::default();
    let mut out = Emitted::new(&[DataType::Utf8, DataType::Int64], 0, 0);
    for (p, s) in [("a", 5), ("b", 4), ("c", 3)] {
        let (k, r) = row(p, s);
        top_n(&mut buf, k, r, RankRange { start: 1, end: 2 }, false, &mut out);
    }
    // c (3) ranks after a full top 2: not buffered, nothing emitted.
    assert_eq!(out.rows().iter().map(text).collect::<Vec<_>>(), ["+I[a]", "+I[b]"]);
    assert_eq!(buf.count, 2);
    // A buffer survives the state codec.
    let mut w = Writer::new();
    buf.encode(&mut w);
    assert_eq!(Buffer::decode(&mut Reader::new(&w.buf)).unwrap(), buf);
}

#[test]
fn an_updating_input_changes_the_ranks_it_moves() {
    use RowKind::{Delete, Insert, UpdateAfter, UpdateBefore};
    // (kind, player, score) of an updating input, as a GROUP BY emits it.
    let input = [
        (Insert, "a", 10),
        (Insert, "b", 20),
        (Insert, "c", 5),
        (UpdateBefore, "c", 5),
        (UpdateAfter, "c", 30),
        (Delete, "b", 20),
        (Delete, "zz", 1),
    ];
    let replay = |output_rank: bool| {
        let mut buf = Buffer::default();
        let mut out = Emitted::new(&[DataType::Utf8, DataType::Int64], 0, 0);
        for (kind, p, s) in input {
            let (k, r) = row(p, s);
            retract_top_n(&mut buf, k, r, kind, RankRange { start: 1, end: 2 }, output_rank, &mut out);
        }
        (out.rows().iter().map(text).collect::<Vec<_>>().join(" "), buf.count)
    };
    // c leaves (nothing: it was third), comes back first and pushes a out; b
    // leaves and a comes back; retracting a row never seen changes nothing.
    assert_eq!(
        replay(true),
        ("+I[1, a] -U[1, a] +U[1, b] +I[2, a] -U[1, b] +U[1, c] -U[2, a] +U[2, b] -U[2, b] +U[2, a]".to_string(), 2)
    );
    assert_eq!(replay(false), ("+I[a] +I[b] -D[a] +I[c] -D[b] +I[a]".to_string(), 2));
}

/// `ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) <= 2` over (k STRING,
/// v BIGINT) with a 1 s state TTL measured with `clock`; feeds `rows` and
/// returns the emitted lines and the number of output batches.
fn top2_with_ttl(
    op: Option<TopN>,
    clock: crate::state::ttl::Clock,
    rows: &[(&str, i64)],
) -> (TopN, Vec<String>, usize) {
    use arrow::array::{AsArray, Int64Array, StringArray};
    use arrow::datatypes::{Field, Int64Type, Schema};
    use datafusion_physical_expr::expressions::Column;

    let schema =
        Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("v", DataType::Int64, true)]));
    let mut op = op.unwrap_or_else(|| {
        let keys = Keys::new(vec![Arc::new(Column::new("k", 0))], vec![DataType::Utf8]).unwrap();
        let order: Vec<(Arc<dyn PhysicalExpr>, Direction)> =
            vec![(Arc::new(Column::new("v", 1)), Direction { asc: false, nulls_first: false })];
        TopN::new(
            keys,
            order,
            RankRange { start: 1, end: 2 },
            false,
            vec![DataType::Utf8, DataType::Int64],
            schema.clone(),
        )
        .with_ttl(Ttl::new(std::time::Duration::from_millis(1000)).with_clock(clock))
    });
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        ],
    )
    .unwrap();
    let mut out = Vec::new();
    op.process_batch(batch, &mut out).unwrap();
    let mut lines = Vec::new();
    let batches = out.len();
    for ev in out {
        let StreamEvent::Batch(b) = ev else { continue };
        let (data, kinds) = changelog::split(&b);
        let (k, v) = (data.column(0).as_string::<i32>(), data.column(1).as_primitive::<Int64Type>());
        lines.extend((0..data.num_rows()).map(|r| format!("{}[{}, {}]", kinds[r].short(), k.value(r), v.value(r))));
    }
    (op, lines, batches)
}

#[test]
fn a_partition_not_written_for_the_ttl_starts_over() {
    use std::sync::atomic::{AtomicI64, Ordering};
    static NOW: AtomicI64 = AtomicI64::new(0);
    let clock = || NOW.load(Ordering::Relaxed);
    let (op, lines, _) = top2_with_ttl(None, clock, &[("a", 5), ("a", 3), ("b", 1)]);
    assert_eq!(lines, ["+I[a, 5]", "+I[a, 3]", "+I[b, 1]"]);
    // A row that does not enter the top 2 does not write the partition's state.
    NOW.store(500, Ordering::Relaxed);
    let (op, lines, _) = top2_with_ttl(Some(op), clock, &[("a", 1)]);
    assert!(lines.is_empty());
    // At 1 s the partition (last written at 0) is forgotten, not retracted, as
    // in Flink: its next row is a top row again.
    NOW.store(1000, Ordering::Relaxed);
    let (op, lines, _) = top2_with_ttl(Some(op), clock, &[("a", 1)]);
    assert_eq!(lines, ["+I[a, 1]"]);
    assert_eq!(op.state.len(), 1, "b, never written again, is swept");
}

/// One input batch whose rows move many ranks is output in batches of at most
/// `OUTPUT_ROWS` rows, in order.
#[test]
fn output_batches_stay_bounded() {
    let names: Vec<String> = (0..OUTPUT_ROWS + 100).map(|i| format!("k{i}")).collect();
    let rows: Vec<(&str, i64)> = names.iter().map(|n| (n.as_str(), 1)).collect();
    let (_, lines, batches) = top2_with_ttl(None, || 0, &rows);
    assert_eq!(batches, 2);
    assert_eq!(lines.len(), rows.len());
    assert_eq!(lines[OUTPUT_ROWS], format!("+I[k{OUTPUT_ROWS}, 1]"));
}
