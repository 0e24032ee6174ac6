//! A group's row count and accumulators packed in one heap block, since a
//! GROUP BY's memory is mostly its groups: an [`Acc`] takes 24 bytes in a
//! block of its own, and a string extreme a second block, where packed they
//! take their bytes and a tag.
//!
//! The block holds the row count (`i64`), then one entry per aggregate, in
//! order: a tag byte, and
//! - COUNT: the count (`i64`);
//! - SUM or AVG of integers or doubles: the sum and the count of values summed;
//! - MIN or MAX of integers (and times) over an append-only input: the extreme
//!   (`i64`), when there is one;
//! - MIN or MAX of strings over an append-only input: the extreme's length
//!   (`u32`) and bytes, when there is one;
//! - any other accumulator: its index in [`Accs::boxed`], where it is kept as
//!   an [`Acc`] (maps of values, row accumulators, DECIMAL sums, Welford).
//!
//! Invariants:
//! - an entry behaves as the [`Acc`] it packs: packed entries are applied and
//!   read through `Acc`'s own code (`apply`, `result`, `encode`), except the
//!   string extreme, which compares and copies bytes and never allocates;
//! - the block is only ever built here, never read from storage: a snapshot
//!   holds `Acc`'s encoding (so old savepoints restore, and a restore packs
//!   what it decodes);
//! - an entry that can no longer be packed (an integer extreme that meets
//!   another type of value) moves to `boxed`, as `Acc` itself falls back to
//!   `Acc::Extreme`.

use std::cell::RefCell;

use crate::error::OpError;
use crate::operators::aggregate::AggDef;
use crate::state::codec::{Reader, Writer};
use crate::state::value::{Val, block};

use super::accs::{Acc, encode_extreme_str};

const COUNT: u8 = 1;
const SUM_I64: u8 = 2;
const SUM_F64: u8 = 3;
const EXTREME_I64: u8 = 4;
const EXTREME_STR: u8 = 5;
const BOXED: u8 = 6;
/// Flags of an extreme's tag.
const MAX: u8 = 0x10;
const SOME: u8 = 0x20;
const KIND: u8 = 0x0f;
/// Bytes before the first entry: the row count.
const HEAD: usize = 8;

/// The accumulators that are not packed, in a box so that a group takes 8
/// bytes for them where a `Vec` takes 24; `None` when there are none, so that a
/// group of packed ones takes no second block.
#[allow(clippy::box_collection)]
type Boxed = Option<Box<Vec<Acc>>>;

/// A group's row count and accumulators (see the module doc).
#[derive(Debug, Clone)]
pub struct Accs {
    bytes: Box<[u8]>,
    boxed: Boxed,
}

/// One entry, read.
enum Entry<'a> {
    /// A packed accumulator that reads without allocating.
    Plain(Acc),
    Str {
        max: bool,
        value: Option<&'a [u8]>,
    },
    Boxed(usize),
}

#[inline]
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut x = [0; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(x)
}

#[inline]
fn u32_at(b: &[u8], at: usize) -> usize {
    let mut x = [0; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x) as usize
}

/// The entry at `at`, and where the next one starts.
#[inline]
fn read(b: &[u8], at: usize) -> (Entry<'_>, usize) {
    let tag = b[at];
    let (max, some, p) = (tag & MAX != 0, tag & SOME != 0, at + 1);
    match tag & KIND {
        COUNT => (Entry::Plain(Acc::Count(i64_at(b, p))), p + 8),
        SUM_I64 => (Entry::Plain(Acc::SumI64 { sum: i64_at(b, p), n: i64_at(b, p + 8) }), p + 16),
        SUM_F64 => {
            let sum = f64::from_bits(i64_at(b, p) as u64);
            (Entry::Plain(Acc::SumF64 { sum, n: i64_at(b, p + 8) }), p + 16)
        }
        EXTREME_I64 if some => (Entry::Plain(Acc::ExtremeI64 { max, value: Some(i64_at(b, p)) }), p + 8),
        EXTREME_I64 => (Entry::Plain(Acc::ExtremeI64 { max, value: None }), p),
        EXTREME_STR if some => {
            let n = u32_at(b, p);
            (Entry::Str { max, value: Some(&b[p + 4..p + 4 + n]) }, p + 4 + n)
        }
        EXTREME_STR => (Entry::Str { max, value: None }, p),
        _ => (Entry::Boxed(u32_at(b, p)), p + 4),
    }
}

fn flags(max: bool, some: bool) -> u8 {
    (if max { MAX } else { 0 }) | (if some { SOME } else { 0 })
}

fn put_str_extreme(out: &mut Vec<u8>, max: bool, value: Option<&[u8]>) {
    out.push(EXTREME_STR | flags(max, value.is_some()));
    if let Some(v) = value {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
}

/// The tag and payload of an accumulator packed at a fixed width (`None` for
/// the other kinds).
#[inline]
fn fixed(acc: &Acc) -> Option<(u8, [u8; 16], usize)> {
    let mut p = [0u8; 16];
    let mut two = |a: i64, b: i64| {
        p[..8].copy_from_slice(&a.to_le_bytes());
        p[8..].copy_from_slice(&b.to_le_bytes());
        p
    };
    Some(match *acc {
        Acc::Count(c) => (COUNT, two(c, 0), 8),
        Acc::SumI64 { sum, n } => (SUM_I64, two(sum, n), 16),
        Acc::SumF64 { sum, n } => (SUM_F64, two(sum.to_bits() as i64, n), 16),
        Acc::ExtremeI64 { max, value } => {
            (EXTREME_I64 | flags(max, value.is_some()), two(value.unwrap_or(0), 0), if value.is_some() { 8 } else { 0 })
        }
        _ => return None,
    })
}

/// Appends `acc` packed, or its index in `boxed` after pushing it there.
fn put(out: &mut Vec<u8>, boxed: &mut Boxed, acc: Acc) {
    if let Some((tag, payload, n)) = fixed(&acc) {
        out.push(tag);
        out.extend_from_slice(&payload[..n]);
        return;
    }
    match acc {
        Acc::ExtremeStr { max, value } => put_str_extreme(out, max, value.as_deref().map(str::as_bytes)),
        other => {
            let list = boxed.get_or_insert_with(Box::default);
            out.push(BOXED);
            out.extend_from_slice(&(list.len() as u32).to_le_bytes());
            list.push(other);
        }
    }
}

/// An accumulator of a packed kind, decoded without allocating.
enum Packed<'a> {
    Fixed(Acc),
    Str { max: bool, value: &'a str },
}

/// Decodes the next accumulator of `r` when it is of a packed kind (`r` then
/// moves past it); `None`, with `r` unmoved, for the other kinds.
fn decode_packed<'a>(r: &mut Reader<'a>) -> Result<Option<Packed<'a>>, OpError> {
    let mut look = r.clone();
    let acc = match look.u8()? {
        0 => Packed::Fixed(Acc::Count(look.i64()?)),
        1 => Packed::Fixed(Acc::SumI64 { sum: look.i64()?, n: look.i64()? }),
        2 => Packed::Fixed(Acc::SumF64 { sum: look.f64()?, n: look.i64()? }),
        // A MIN or MAX with a value: an integer or a string is packed.
        5 => {
            let max = look.bool()?;
            if !look.bool()? {
                return Ok(None);
            }
            match look.u8()? {
                t if t == Val::I64(0).rank() => Packed::Fixed(Acc::ExtremeI64 { max, value: Some(look.i64()?) }),
                t if t == Val::Str(Box::default()).rank() => Packed::Str { max, value: look.str_ref()? },
                _ => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    *r = look;
    Ok(Some(acc))
}

fn str_of(v: &[u8]) -> Result<&str, OpError> {
    std::str::from_utf8(v).map_err(|e| OpError::Other(format!("a packed string extreme is not UTF-8: {e}")))
}

/// Replaces the entry `at..end` of `b` with `acc` packed; returns where the
/// entry after it now starts.
fn replace(b: &mut Vec<u8>, boxed: &mut Boxed, at: usize, end: usize, acc: Acc) -> usize {
    // The common case: the same kind, at the same width, written in place.
    if let Some((tag, payload, n)) = fixed(&acc)
        && b[at] == tag
        && end - at == 1 + n
    {
        b[at + 1..end].copy_from_slice(&payload[..n]);
        return end;
    }
    let mut entry = Vec::new();
    put(&mut entry, boxed, acc);
    if entry.len() == end - at {
        b[at..end].copy_from_slice(&entry);
    } else {
        b.splice(at..end, entry.iter().copied());
    }
    at + entry.len()
}

/// Applies one row to the entries of `b` for which `applies(i)`: `values[i]`
/// is the `i`th aggregate's value (`None` for `COUNT(*)`), `sign` 1 adds and
/// -1 retracts, as [`Acc::apply`].
fn apply(
    b: &mut Vec<u8>,
    boxed: &mut Boxed,
    values: &[Option<&Val>],
    sign: i64,
    applies: impl Fn(usize) -> bool,
) -> Result<(), OpError> {
    let (mut at, mut i) = (HEAD, 0);
    while at < b.len() {
        let (entry, end) = read(b, at);
        let value = values[i];
        if !applies(i) {
            at = end;
        } else {
            at = match entry {
                Entry::Plain(mut acc) => {
                    acc.apply(value, sign)?;
                    replace(b, boxed, at, end, acc)
                }
                Entry::Str { max, value: old } => match value {
                    None | Some(Val::Null) => end,
                    Some(Val::Str(x)) => {
                        let better = old.is_none_or(|o| if max { x.as_bytes() > o } else { x.as_bytes() < o });
                        if sign > 0 && better {
                            let mut entry = Vec::with_capacity(5 + x.len());
                            put_str_extreme(&mut entry, max, Some(x.as_bytes()));
                            b.splice(at..end, entry.iter().copied());
                            at + entry.len()
                        } else {
                            end
                        }
                    }
                    // Not a string after all: an `Acc` from here on, which
                    // falls back as it does.
                    Some(v) => {
                        let old = old.map(str_of).transpose()?;
                        let mut acc = Acc::ExtremeStr { max, value: old.map(Box::from) };
                        acc.apply(Some(v), sign)?;
                        replace(b, boxed, at, end, acc)
                    }
                },
                Entry::Boxed(j) => {
                    boxed.as_mut().and_then(|l| l.get_mut(j)).ok_or_else(lost)?.apply(value, sign)?;
                    end
                }
            };
        }
        i += 1;
    }
    Ok(())
}

fn lost() -> OpError {
    OpError::Other("a packed group lost one of its accumulators".into())
}

impl Accs {
    /// Packs a row count and accumulators.
    pub fn new(rows: i64, accs: Vec<Acc>) -> Accs {
        let mut bytes = Vec::with_capacity(HEAD + 17 * accs.len());
        bytes.extend_from_slice(&rows.to_le_bytes());
        let mut boxed = None;
        for acc in accs {
            put(&mut bytes, &mut boxed, acc);
        }
        Accs { bytes: bytes.into_boxed_slice(), boxed }
    }

    /// Decodes `n` accumulators in `Acc`'s encoding (see [`Accs::encode`]) and
    /// packs them with `rows`: the packed kinds straight from their bytes, so
    /// that a restore allocates one block per group as the task does.
    pub fn decode(rows: i64, n: usize, r: &mut Reader<'_>) -> Result<Accs, OpError> {
        thread_local! {
            static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        SCRATCH.with_borrow_mut(|b| {
            b.clear();
            b.extend_from_slice(&rows.to_le_bytes());
            let mut boxed = None;
            for _ in 0..n {
                let acc = match decode_packed(r)? {
                    Some(Packed::Str { max, value }) => {
                        put_str_extreme(b, max, Some(value.as_bytes()));
                        continue;
                    }
                    Some(Packed::Fixed(acc)) => acc,
                    None => Acc::decode(r)?,
                };
                put(b, &mut boxed, acc);
            }
            Ok(Accs { bytes: b.as_slice().into(), boxed })
        })
    }

    /// A new group: `proto` (the accumulators of no rows) with one row
    /// applied (see [`Accs::apply`]), built in `scratch` so that the group
    /// takes one allocation.
    pub fn first(
        proto: &Accs,
        scratch: &mut Vec<u8>,
        values: &[Option<&Val>],
        sign: i64,
        applies: impl Fn(usize) -> bool,
    ) -> Result<Accs, OpError> {
        scratch.clear();
        scratch.extend_from_slice(&proto.bytes);
        let mut boxed = proto.boxed.clone();
        apply(scratch, &mut boxed, values, sign, applies)?;
        let mut accs = Accs { bytes: scratch.as_slice().into(), boxed };
        accs.add_rows(sign);
        Ok(accs)
    }

    pub fn rows(&self) -> i64 {
        i64_at(&self.bytes, 0)
    }

    pub fn add_rows(&mut self, n: i64) {
        let rows = self.rows() + n;
        self.bytes[..HEAD].copy_from_slice(&rows.to_le_bytes());
    }

    /// Applies one row to the aggregates `i` for which `applies(i)`: `values[i]`
    /// is its value (`None` for `COUNT(*)`), and `sign` 1 adds, -1 retracts.
    /// The row count is not changed (see [`Accs::add_rows`]).
    pub fn apply(
        &mut self,
        values: &[Option<&Val>],
        sign: i64,
        applies: impl Fn(usize) -> bool,
    ) -> Result<(), OpError> {
        let mut b = std::mem::take(&mut self.bytes).into_vec();
        let done = apply(&mut b, &mut self.boxed, values, sign, applies);
        // Put back even after an error: the entries applied so far stay.
        self.bytes = b.into_boxed_slice();
        done
    }

    /// Appends each aggregate's current result (of `defs[i].output_type`).
    pub fn results(&self, defs: &[AggDef], out: &mut Vec<Val>) -> Result<(), OpError> {
        let (mut at, mut i) = (HEAD, 0);
        while at < self.bytes.len() {
            let (entry, end) = read(&self.bytes, at);
            out.push(match entry {
                Entry::Plain(acc) => acc.result(&defs[i]),
                Entry::Str { value: Some(v), .. } => Val::Str(str_of(v)?.into()),
                Entry::Str { value: None, .. } => Val::Null,
                Entry::Boxed(j) => self.boxed.as_ref().and_then(|l| l.get(j)).ok_or_else(lost)?.result(&defs[i]),
            });
            (at, i) = (end, i + 1);
        }
        Ok(())
    }

    /// The number of accumulators.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let (mut at, mut n) = (HEAD, 0);
        while at < self.bytes.len() {
            (at, n) = (read(&self.bytes, at).1, n + 1);
        }
        n
    }

    /// Writes the count of accumulators and each one in `Acc`'s encoding.
    pub fn encode(&self, w: &mut Writer) {
        // The count is written once the entries are counted: one walk.
        let count_at = w.buf.len();
        w.u32(0);
        let (mut at, mut n) = (HEAD, 0u32);
        while at < self.bytes.len() {
            n += 1;
            let (entry, end) = read(&self.bytes, at);
            match entry {
                Entry::Plain(acc) => acc.encode(w),
                Entry::Str { max, value } => encode_extreme_str(w, max, value),
                Entry::Boxed(j) => {
                    if let Some(acc) = self.boxed.as_ref().and_then(|l| l.get(j)) {
                        acc.encode(w);
                    }
                }
            }
            at = end;
        }
        w.buf[count_at..count_at + 4].copy_from_slice(&n.to_le_bytes());
    }

    /// The heap bytes the group holds besides itself.
    pub fn heap_size(&self) -> usize {
        let boxed = self.boxed.as_ref().map_or(0, |l| {
            let accs = block(l.capacity() * std::mem::size_of::<Acc>());
            block(std::mem::size_of::<Vec<Acc>>()) + accs + l.iter().map(Acc::heap_size).sum::<usize>()
        });
        block(self.bytes.len()) + boxed
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow::datatypes::DataType;
    use sluice_sql::plan::AggFunc;

    use super::*;

    fn def(func: AggFunc, t: DataType) -> AggDef {
        let output_type = if func == AggFunc::Count { DataType::Int64 } else { t.clone() };
        AggDef { func, arg: None, filter: None, distinct: false, input_type: Some(t), output_type, separator: None }
    }

    fn encoded(accs: &[Acc]) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(accs.len() as u32);
        accs.iter().for_each(|a| a.encode(&mut w));
        w.buf
    }

    /// Every kind of accumulator, packed or not, with the aggregate it serves.
    fn kinds() -> Vec<(AggDef, Acc)> {
        let s = |v: &str| Some(Box::<str>::from(v));
        vec![
            (def(AggFunc::Count, DataType::Int64), Acc::Count(0)),
            (def(AggFunc::Sum, DataType::Int64), Acc::SumI64 { sum: 0, n: 0 }),
            (def(AggFunc::Avg, DataType::Float64), Acc::SumF64 { sum: 0.0, n: 0 }),
            (def(AggFunc::Max, DataType::Int64), Acc::ExtremeI64 { max: true, value: None }),
            (def(AggFunc::Min, DataType::Int64), Acc::ExtremeI64 { max: false, value: Some(4) }),
            (def(AggFunc::Max, DataType::Utf8), Acc::ExtremeStr { max: true, value: None }),
            (def(AggFunc::Min, DataType::Utf8), Acc::ExtremeStr { max: false, value: s("m") }),
            (def(AggFunc::Max, DataType::Int64), Acc::Values { max: true, values: Box::new(BTreeMap::new()) }),
            (def(AggFunc::Sum, DataType::Decimal128(10, 2)), Acc::SumI128(Box::new((0, 0)))),
        ]
    }

    /// The rows applied: each aggregate's value, and the sign.
    fn rows() -> Vec<(Vec<Val>, i64)> {
        let row = |i: i64, s: &str, sign| {
            let v = vec![
                Val::I64(i),
                Val::I64(i * 3),
                Val::F64(i as f64 / 2.0),
                Val::I64(10 - i),
                Val::I64(i),
                Val::Str(s.into()),
                Val::Str(s.into()),
                Val::I64(i % 4),
                Val::I128((i as i128 * 100).into()),
            ];
            (v, sign)
        };
        vec![
            row(1, "kiwi", 1),
            row(7, "a", 1),
            row(3, "zebra crossing", 1),
            (vec![Val::Null; 9], 1),
            row(7, "a", -1),
            row(-2, "", 1),
            row(5, "mango", 1),
        ]
    }

    #[test]
    fn packed_groups_follow_their_accumulators_and_encode_as_they_do() {
        let (defs, mut plain): (Vec<AggDef>, Vec<Acc>) = kinds().into_iter().unzip();
        let mut packed = Accs::new(0, plain.clone());
        assert_eq!(packed.len(), plain.len());
        assert_eq!(packed.boxed.as_ref().map(|b| b.len()), Some(2), "{packed:?}");
        // The extremes over an append-only input do not retract.
        let append_only: Vec<bool> =
            plain.iter().map(|a| matches!(a, Acc::ExtremeI64 { .. } | Acc::ExtremeStr { .. })).collect();
        for (n, (values, sign)) in rows().into_iter().enumerate() {
            let values: Vec<Option<&Val>> = values.iter().map(Some).collect();
            let applies = |i: usize| sign > 0 || !append_only[i];
            for (i, acc) in plain.iter_mut().enumerate() {
                if applies(i) {
                    acc.apply(values[i], sign).unwrap();
                }
            }
            packed.apply(&values, sign, applies).unwrap();
            packed.add_rows(sign);
            let want: Vec<Val> = plain.iter().zip(&defs).map(|(a, d)| a.result(d)).collect();
            let mut got = Vec::new();
            packed.results(&defs, &mut got).unwrap();
            assert_eq!(got, want, "after row {n}");
            assert_eq!(packed.rows(), rows()[..=n].iter().map(|r| r.1).sum::<i64>());
            let mut w = Writer::new();
            packed.encode(&mut w);
            assert_eq!(w.buf, encoded(&plain), "encoding after row {n}");
            // Decoded, the packed kinds pack again (every extreme has a
            // value by now), and the group reads and encodes the same.
            let mut r = Reader::new(&w.buf);
            let count = r.u32().unwrap() as usize;
            let again = Accs::decode(packed.rows(), count, &mut r).unwrap();
            assert!(r.is_empty());
            assert_eq!(again.boxed.as_ref().map(|b| b.len()), Some(2), "{again:?}");
            let mut w2 = Writer::new();
            again.encode(&mut w2);
            assert_eq!(w2.buf, w.buf);
            assert_eq!(results_of(&again, &defs), got);
        }
        // COUNT(*) (no value) counts the row and nothing else.
        let before = plain.clone();
        packed.apply(&[None; 9], 1, |_| true).unwrap();
        let mut got = Vec::new();
        packed.results(&defs, &mut got).unwrap();
        let mut want: Vec<Val> = before.iter().zip(&defs).map(|(a, d)| a.result(d)).collect();
        want[0] = Val::I64(before.iter().map(|a| if let Acc::Count(c) = a { *c } else { 0 }).sum::<i64>() + 1);
        assert_eq!(got, want);
    }

    fn results_of(g: &Accs, defs: &[AggDef]) -> Vec<Val> {
        let mut out = Vec::new();
        g.results(defs, &mut out).unwrap();
        out
    }

    #[test]
    fn a_new_group_takes_one_block_and_a_mismatched_value_unpacks_its_extreme() {
        let (defs, protos): (Vec<AggDef>, Vec<Acc>) = kinds().into_iter().take(7).unzip();
        let proto = Accs::new(0, protos);
        let mut scratch = Vec::new();
        let (values, _) = &rows()[2];
        let values: Vec<Option<&Val>> = values.iter().map(Some).collect();
        let g = Accs::first(&proto, &mut scratch, &values, 1, |_| true).unwrap();
        assert!(g.boxed.is_none());
        assert_eq!(g.rows(), 1);
        // The row count, COUNT, two sums, two integer extremes, and the
        // strings "zebra crossing" and "m" with their lengths.
        assert_eq!(g.bytes.len(), 8 + 9 + 17 + 17 + 9 + 9 + (5 + 14) + (5 + 1));
        assert_eq!(g.heap_size(), 96);

        // An integer extreme given a string, and a string extreme given an
        // integer, become `Acc::Extreme`, as `Acc` does.
        let mut g2 = g.clone();
        let s = Val::Str("text".into());
        let mut odd: Vec<Option<&Val>> = vec![None; 7];
        (odd[4], odd[6]) = (Some(&s), Some(&Val::I64(1)));
        g2.apply(&odd, 1, |i| i == 4 || i == 6).unwrap();
        assert_eq!(g2.boxed.as_ref().map(|b| b.len()), Some(2));
        let mut got = Vec::new();
        g2.results(&defs, &mut got).unwrap();
        let mut plain = Acc::ExtremeI64 { max: false, value: Some(3) };
        plain.apply(Some(&s), 1).unwrap();
        assert_eq!(got[4], plain.result(&defs[4]));
        let mut plain = Acc::ExtremeStr { max: false, value: Some("m".into()) };
        plain.apply(Some(&Val::I64(1)), 1).unwrap();
        assert_eq!(got[6], plain.result(&defs[6]));
        assert_eq!(got[..4], results_of(&g, &defs)[..4]);
        let mut w = Writer::new();
        g2.encode(&mut w);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.u32().unwrap(), 7);
        let decoded: Vec<Acc> = (0..7).map(|_| Acc::decode(&mut r).unwrap()).collect();
        assert!(r.is_empty());
        assert_eq!(Accs::new(1, decoded).len(), 7);
    }
}
