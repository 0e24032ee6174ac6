//! The decisions of a semi or anti join for one input row, as Flink 2.3's
//! `StreamingSemiAntiJoinOperator`: the output is the left input's rows alone,
//! a semi join's while they have a match, an anti join's while they have none.
//! No Arrow here: rows are opaque encoded bytes (see [`super::logic`], whose
//! entries and state helpers these decisions share).
//!
//! Invariants (per join key):
//! - the left side keeps `assoc` per distinct row: the number of right rows
//!   (with their copies) that match it; the right side keeps its rows with
//!   their multiplicity and no `assoc`;
//! - a left row is emitted with its own kind when it arrives or is retracted,
//!   if it has a match (semi) or none (anti);
//! - a right row changes the output only for left rows whose `assoc` crosses
//!   zero: to 1, a semi join emits them with the right row's kind and an anti
//!   join retracts them (`-D`); back to 0, a semi join emits them with the
//!   right row's kind (`-D`/`-U`) and an anti join inserts them again (`+I`);
//!   each copy of a duplicated left row is emitted, as Flink does.

use sluice_format::changelog::RowKind;

use super::logic::{Emit, Entry, add, retract};

/// One input row of the left side (`mine` are the left rows, `theirs` the
/// right ones, of which `matched` satisfy the condition).
#[allow(clippy::too_many_arguments)]
pub fn process_left(
    mine: &mut Vec<Entry>,
    theirs: &[Entry],
    anti: bool,
    kind: RowKind,
    row: &[u8],
    matched: &[usize],
    store: bool,
    merge: bool,
    now: i64,
    out: &mut Vec<Emit>,
) {
    let associations: u32 = matched.iter().filter_map(|&m| theirs.get(m)).map(|e| e.count).sum();
    if (associations > 0) != anti {
        out.push(Emit { kind, input: true, other: None });
    }
    if !store {
        return;
    }
    if kind.is_accumulate() {
        add(mine, row, associations, merge, now);
    } else {
        retract(mine, row, now);
    }
}

/// One input row of the right side (`mine` are the right rows, `theirs` the
/// left ones, of which `matched` satisfy the condition).
#[allow(clippy::too_many_arguments)]
pub fn process_right(
    mine: &mut Vec<Entry>,
    theirs: &mut [Entry],
    anti: bool,
    kind: RowKind,
    row: &[u8],
    matched: &[usize],
    store: bool,
    merge: bool,
    now: i64,
    out: &mut Vec<Emit>,
) {
    let accumulate = kind.is_accumulate();
    if store {
        if accumulate {
            add(mine, row, 0, merge, now);
        } else {
            retract(mine, row, now);
        }
    }
    for &m in matched {
        let Some(e) = theirs.get_mut(m) else { continue };
        let crossing = if accumulate { e.assoc == 0 } else { e.assoc == 1 };
        if crossing {
            let k = match (anti, accumulate) {
                (false, _) => kind,
                (true, true) => RowKind::Delete,
                (true, false) => RowKind::Insert,
            };
            for _ in 0..e.count {
                out.push(Emit { kind: k, input: false, other: Some(m) });
            }
        }
        e.assoc = if accumulate { e.assoc + 1 } else { e.assoc.saturating_sub(1) };
        e.written = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RowKind::{Delete as D, Insert as I, UpdateAfter as UA, UpdateBefore as UB};

    fn entries(rows: &[(&str, u32, u32)]) -> Vec<Entry> {
        rows.iter()
            .map(|(r, count, assoc)| Entry { row: r.as_bytes().into(), count: *count, assoc: *assoc, written: 0 })
            .collect()
    }

    /// Emitted rows as `kind[row]`, the row being the input (`in`) or a left row.
    fn show(left: &[Entry], out: &[Emit]) -> Vec<String> {
        out.iter()
            .map(|e| {
                let row = match e.other {
                    Some(i) => String::from_utf8_lossy(&left[i].row).into_owned(),
                    None => "in".into(),
                };
                format!("{}[{row}]", e.kind.short())
            })
            .collect()
    }

    #[test]
    fn a_left_row_is_emitted_with_its_kind_when_it_has_a_match_semi_or_none_anti() {
        for (anti, matched, expect) in [
            (false, vec![0], vec!["+I[in]"]),
            (false, vec![], vec![]),
            (true, vec![0], vec![]),
            (true, vec![], vec!["+I[in]"]),
        ] {
            let right = entries(&[("x", 2, 0)]);
            let (mut left, mut out) = (Vec::new(), Vec::new());
            process_left(&mut left, &right, anti, I, b"r", &matched, true, false, 5, &mut out);
            assert_eq!(show(&left, &out), expect, "anti {anti}, matched {matched:?}");
            // It is kept with the number of right rows (copies counted) it matches.
            assert_eq!(
                left,
                vec![Entry { row: b"r"[..].into(), count: 1, assoc: 2 * matched.len() as u32, written: 5 }]
            );
        }
        // A retraction keeps its kind and removes the row.
        let right = entries(&[("x", 1, 0)]);
        let (mut left, mut out) = (entries(&[("r", 1, 1)]), Vec::new());
        process_left(&mut left, &right, false, UB, b"r", &[0], true, true, 5, &mut out);
        assert_eq!((show(&left, &out), left.len()), (vec!["-U[in]".to_string()], 0));
        // A row that can match nothing (a null key) is emitted by an anti join, not kept.
        let (mut left, mut out) = (Vec::new(), Vec::new());
        process_left(&mut left, &[], true, I, b"r", &[], false, false, 5, &mut out);
        assert_eq!((show(&left, &out), left.len()), (vec!["+I[in]".to_string()], 0));
    }

    #[test]
    fn a_right_row_changes_the_output_only_where_a_left_rows_matches_cross_zero() {
        // Semi: the first match emits each copy with the right row's kind, later ones nothing.
        let mut left = entries(&[("a", 2, 0), ("b", 1, 1)]);
        let (mut right, mut out) = (Vec::new(), Vec::new());
        process_right(&mut right, &mut left, false, UA, b"x", &[0, 1], true, true, 7, &mut out);
        assert_eq!(show(&left, &out), ["+U[a]", "+U[a]"]);
        assert_eq!(left, {
            let mut e = entries(&[("a", 2, 1), ("b", 1, 2)]);
            e.iter_mut().for_each(|e| e.written = 7);
            e
        });
        assert_eq!(right, vec![Entry { row: b"x"[..].into(), count: 1, assoc: 0, written: 7 }]);
        // Semi: the last match going retracts with the right row's kind.
        out.clear();
        process_right(&mut right, &mut left, false, D, b"x", &[0, 1], true, true, 8, &mut out);
        assert_eq!(show(&left, &out), ["-D[a]", "-D[a]"]);
        assert_eq!((left[0].assoc, left[1].assoc, right.len()), (0, 1, 0));
        // Anti: the first match retracts the left row, the last one going inserts it again.
        let mut left = entries(&[("a", 1, 0)]);
        let (mut right, mut out) = (Vec::new(), Vec::new());
        process_right(&mut right, &mut left, true, I, b"x", &[0], true, false, 9, &mut out);
        process_right(&mut right, &mut left, true, I, b"y", &[0], true, false, 9, &mut out);
        assert_eq!(show(&left, &out), ["-D[a]"]);
        out.clear();
        process_right(&mut right, &mut left, true, D, b"x", &[0], true, false, 9, &mut out);
        assert!(out.is_empty(), "one match is left");
        process_right(&mut right, &mut left, true, UB, b"y", &[0], true, false, 9, &mut out);
        assert_eq!(show(&left, &out), ["+I[a]"]);
        assert_eq!((left[0].assoc, right.len()), (0, 0));
    }
}
