//! The decisions of the regular join for one input row, as Flink 2.3's
//! `StreamingJoinOperator.processElement`: what the row does to its side's
//! state, to the match counts of the other side's rows, and which rows it
//! emits with which kinds. No Arrow here: rows are opaque encoded bytes and the
//! caller assembles the output.
//!
//! Invariants (per join key):
//! - each side keeps its rows with their multiplicity (`count`); a retraction
//!   removes one copy, and a retraction of a row the side does not hold changes
//!   nothing in state (Flink's `retractRecord` ignores it) but still emits;
//! - a row of an outer side keeps `assoc`, the number of rows of the other side
//!   that match one copy of it: it was emitted null-padded while `assoc` is 0;
//! - an inner join forwards the input's kind (`+I`/`+U`, `-U`/`-D`); an outer
//!   join emits only `+I` and `-D`, as Flink does;
//! - all copies of a duplicated row see the `assoc` the row had before the
//!   input row came (Flink's iterator hands out one snapshot per distinct row),
//!   so each copy emits its padded retraction, and `assoc` moves by one;
//! - `written` is the processing time of an entry's last change (its state
//!   TTL clock, as Flink's `OnCreateAndWrite`): set when the entry is added,
//!   when a copy is retracted and when its `assoc` changes.

use sluice_format::changelog::RowKind;

/// One distinct row of a side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The row's columns, row-encoded.
    pub row: Box<[u8]>,
    /// Copies of the row.
    pub count: u32,
    /// For an outer side: rows of the other side that match one copy.
    pub assoc: u32,
    /// When the entry last changed (processing time, ms), for the state TTL.
    pub written: i64,
}

/// The rows of both sides under one join key: `rows[0]` left, `rows[1]` right.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sides {
    pub rows: [Vec<Entry>; 2],
}

impl Sides {
    pub fn is_empty(&self) -> bool {
        self.rows[0].is_empty() && self.rows[1].is_empty()
    }
}

/// One output row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emit {
    pub kind: RowKind,
    /// Whether the input row is in it (else its side is null-padded).
    pub input: bool,
    /// The other side's row (an index into its entries), or null padding.
    pub other: Option<usize>,
}

/// Which sides of the join are outer (kept null-padded without a match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    pub input: bool,
    pub other: bool,
}

/// One input row of side `own` (its rows in `mine`) against the other side's
/// rows (`theirs`), of which `matched` (indices, each once) satisfy the join
/// condition. `store` is false for a row that can match nothing (a null key):
/// it is emitted as it would be but not kept. `merge` keeps identical rows as
/// one entry with a count (for an updating input, whose retractions look rows
/// up); otherwise each row is its own entry.
#[allow(clippy::too_many_arguments)]
pub fn process(
    mine: &mut Vec<Entry>,
    theirs: &mut [Entry],
    outer: Outer,
    kind: RowKind,
    row: &[u8],
    matched: &[usize],
    store: bool,
    merge: bool,
    now: i64,
    out: &mut Vec<Emit>,
) {
    if kind.is_accumulate() {
        let mut associations = 0u32;
        for &m in matched {
            let Some(e) = theirs.get_mut(m) else { continue };
            let before = e.assoc;
            for _ in 0..e.count {
                if outer.other && before == 0 {
                    out.push(Emit { kind: RowKind::Delete, input: false, other: Some(m) });
                }
                let k = if outer.input || outer.other { RowKind::Insert } else { kind };
                out.push(Emit { kind: k, input: true, other: Some(m) });
                associations += 1;
            }
            if outer.other {
                e.assoc = before + 1;
                e.written = now;
            }
        }
        if associations == 0 && outer.input {
            out.push(Emit { kind: RowKind::Insert, input: true, other: None });
        }
        if store {
            add(mine, row, if outer.input { associations } else { 0 }, merge, now);
        }
    } else {
        if store {
            retract(mine, row, now);
        }
        let mut any = false;
        for &m in matched {
            let Some(e) = theirs.get_mut(m) else { continue };
            let before = e.assoc;
            for _ in 0..e.count {
                any = true;
                let k = if outer.input { RowKind::Delete } else { kind };
                out.push(Emit { kind: k, input: true, other: Some(m) });
                if outer.other && before == 1 {
                    out.push(Emit { kind: RowKind::Insert, input: false, other: Some(m) });
                }
            }
            if outer.other {
                e.assoc = before.saturating_sub(1);
                e.written = now;
            }
        }
        if !any && outer.input {
            out.push(Emit { kind: RowKind::Delete, input: true, other: None });
        }
    }
}

pub(super) fn add(mine: &mut Vec<Entry>, row: &[u8], assoc: u32, merge: bool, now: i64) {
    if merge && let Some(e) = mine.iter_mut().find(|e| *e.row == *row) {
        e.count += 1;
        e.assoc = assoc;
        e.written = now;
        return;
    }
    mine.push(Entry { row: row.into(), count: 1, assoc, written: now });
}

pub(super) fn retract(mine: &mut Vec<Entry>, row: &[u8], now: i64) {
    if let Some(i) = mine.iter().position(|e| *e.row == *row) {
        if mine[i].count > 1 {
            mine[i].count -= 1;
            mine[i].written = now;
        } else {
            mine.remove(i);
        }
    }
}

/// Drops the entries whose TTL (`ttl` ms since `written`) has passed at
/// `now`, as Flink's state TTL does (never returning expired state); a `ttl`
/// of 0 keeps everything.
pub fn expire(sides: &mut Sides, ttl: i64, now: i64) {
    if ttl > 0 {
        for side in sides.rows.iter_mut() {
            side.retain(|e| e.written.saturating_add(ttl) > now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RowKind::{Delete as D, Insert as I, UpdateAfter as UA, UpdateBefore as UB};

    /// An emitted row as text: `+I[in, x]`, `-D[null, x]`, `+I[in, null]`
    /// (the input side first, whichever side it is).
    fn show(theirs: &[Entry], e: &Emit) -> String {
        let other = e.other.map_or("null".to_string(), |i| String::from_utf8_lossy(&theirs[i].row).into_owned());
        format!("{}[{}, {other}]", e.kind.short(), if e.input { "in" } else { "null" })
    }

    fn entries(rows: &[(&str, u32, u32)]) -> Vec<Entry> {
        rows.iter()
            .map(|(r, count, assoc)| Entry { row: r.as_bytes().into(), count: *count, assoc: *assoc, written: 0 })
            .collect()
    }

    struct Case {
        name: &'static str,
        outer: Outer,
        kind: RowKind,
        mine: Vec<Entry>,
        theirs: Vec<Entry>,
        matched: Vec<usize>,
        emits: &'static [&'static str],
        mine_after: Vec<Entry>,
        theirs_after: Vec<Entry>,
    }

    const INNER: Outer = Outer { input: false, other: false };
    const INPUT_OUTER: Outer = Outer { input: true, other: false };
    const OTHER_OUTER: Outer = Outer { input: false, other: true };
    const BOTH_OUTER: Outer = Outer { input: true, other: true };

    #[test]
    fn decisions_follow_flinks_streaming_join() {
        let cases = vec![
            Case {
                name: "inner: a new row joins every copy of each match, keeping its kind",
                outer: INNER,
                kind: UA,
                mine: vec![],
                theirs: entries(&[("x", 2, 0), ("y", 1, 0)]),
                matched: vec![0, 1],
                emits: &["+U[in, x]", "+U[in, x]", "+U[in, y]"],
                mine_after: entries(&[("r", 1, 0)]),
                theirs_after: entries(&[("x", 2, 0), ("y", 1, 0)]),
            },
            Case {
                name: "inner: no match emits nothing but keeps the row",
                outer: INNER,
                kind: I,
                mine: entries(&[("r", 1, 0)]),
                theirs: entries(&[("x", 1, 0)]),
                matched: vec![],
                emits: &[],
                mine_after: entries(&[("r", 2, 0)]),
                theirs_after: entries(&[("x", 1, 0)]),
            },
            Case {
                name: "inner: a retraction keeps its kind and removes one copy",
                outer: INNER,
                kind: UB,
                mine: entries(&[("r", 2, 0)]),
                theirs: entries(&[("x", 1, 0)]),
                matched: vec![0],
                emits: &["-U[in, x]"],
                mine_after: entries(&[("r", 1, 0)]),
                theirs_after: entries(&[("x", 1, 0)]),
            },
            Case {
                name: "outer input without a match: padded +I, kept with 0 matches",
                outer: INPUT_OUTER,
                kind: I,
                mine: vec![],
                theirs: entries(&[("x", 1, 0)]),
                matched: vec![],
                emits: &["+I[in, null]"],
                mine_after: entries(&[("r", 1, 0)]),
                theirs_after: entries(&[("x", 1, 0)]),
            },
            Case {
                name: "outer input with matches: +I per match (never +U), kept with their number",
                outer: INPUT_OUTER,
                kind: UA,
                mine: vec![],
                theirs: entries(&[("x", 2, 0)]),
                matched: vec![0],
                emits: &["+I[in, x]", "+I[in, x]"],
                mine_after: entries(&[("r", 1, 2)]),
                theirs_after: entries(&[("x", 2, 0)]),
            },
            Case {
                name: "a first match retracts the other side's padded rows, one per copy",
                outer: OTHER_OUTER,
                kind: I,
                mine: vec![],
                theirs: entries(&[("x", 2, 0), ("y", 1, 3)]),
                matched: vec![0, 1],
                emits: &["-D[null, x]", "+I[in, x]", "-D[null, x]", "+I[in, x]", "+I[in, y]"],
                mine_after: entries(&[("r", 1, 0)]),
                theirs_after: entries(&[("x", 2, 1), ("y", 1, 4)]),
            },
            Case {
                name: "outer input: retraction without a match retracts its padded row",
                outer: INPUT_OUTER,
                kind: D,
                mine: entries(&[("r", 1, 0)]),
                theirs: vec![],
                matched: vec![],
                emits: &["-D[in, null]"],
                mine_after: vec![],
                theirs_after: vec![],
            },
            Case {
                name: "the last match retracted re-emits the other side's padded row",
                outer: OTHER_OUTER,
                kind: UB,
                mine: entries(&[("r", 1, 0)]),
                theirs: entries(&[("x", 1, 1), ("y", 1, 2)]),
                matched: vec![0, 1],
                emits: &["-U[in, x]", "+I[null, x]", "-U[in, y]"],
                mine_after: vec![],
                theirs_after: entries(&[("x", 1, 0), ("y", 1, 1)]),
            },
            Case {
                name: "full: retraction emits -D joined rows whatever the input kind",
                outer: BOTH_OUTER,
                kind: UB,
                mine: entries(&[("r", 1, 1)]),
                theirs: entries(&[("x", 1, 1)]),
                matched: vec![0],
                emits: &["-D[in, x]", "+I[null, x]"],
                mine_after: vec![],
                theirs_after: entries(&[("x", 1, 0)]),
            },
            Case {
                name: "a retraction of a row never kept still emits",
                outer: INNER,
                kind: D,
                mine: vec![],
                theirs: entries(&[("x", 1, 0)]),
                matched: vec![0],
                emits: &["-D[in, x]"],
                mine_after: vec![],
                theirs_after: entries(&[("x", 1, 0)]),
            },
        ];
        for c in cases {
            let (mut mine, mut theirs) = (c.mine, c.theirs);
            let mut out = Vec::new();
            process(&mut mine, &mut theirs, c.outer, c.kind, b"r", &c.matched, true, true, 0, &mut out);
            let shown: Vec<String> = out.iter().map(|e| show(&theirs, e)).collect();
            assert_eq!(shown, c.emits, "{}", c.name);
            assert_eq!(mine, c.mine_after, "{}: own side", c.name);
            assert_eq!(theirs, c.theirs_after, "{}: other side", c.name);
        }
    }

    #[test]
    fn without_merging_each_row_is_its_own_entry_and_a_null_key_is_not_kept() {
        let mut mine = entries(&[("r", 1, 0)]);
        let mut out = Vec::new();
        process(&mut mine, &mut [], INNER, I, b"r", &[], true, false, 0, &mut out);
        assert_eq!(mine, entries(&[("r", 1, 0), ("r", 1, 0)]));
        process(&mut mine, &mut [], INPUT_OUTER, I, b"n", &[], false, false, 0, &mut out);
        assert_eq!(mine.len(), 2);
        assert_eq!(out, [Emit { kind: I, input: true, other: None }]);
    }

    #[test]
    fn the_ttl_drops_entries_not_written_for_that_long() {
        let mut mine = Vec::new();
        let mut out = Vec::new();
        process(&mut mine, &mut [], INNER, I, b"a", &[], true, true, 100, &mut out);
        process(&mut mine, &mut [], INNER, I, b"b", &[], true, true, 150, &mut out);
        // A second copy of `a` rewrites it.
        process(&mut mine, &mut [], INNER, I, b"a", &[], true, true, 160, &mut out);
        let mut sides = Sides { rows: [mine, vec![]] };
        expire(&mut sides, 50, 205);
        assert_eq!(sides.rows[0].iter().map(|e| &*e.row).collect::<Vec<_>>(), [b"a"]);
        expire(&mut sides, 0, i64::MAX);
        assert_eq!(sides.rows[0].len(), 1, "no TTL keeps everything");
        expire(&mut sides, 50, 210);
        assert!(sides.is_empty());
    }
}
