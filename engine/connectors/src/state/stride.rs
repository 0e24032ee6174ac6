//! The state of a strided generator (datagen, nexmark): a split is one
//! stride of the generated stream. A restored subtask takes its share of the
//! splits and emits their rows merged in the order of the original stream.
//!
//! Restoring at another parallelism `q` first divides the splits so that
//! every subtask gets an equal share of the stream: each split of stride `s`
//! becomes `S / s` splits of stride `S = lcm(q, every s)`, which together make
//! exactly the items it had left (see [`StrideSplit::divide`]), and subtask `j`
//! takes the `j`-th, `(j+q)`-th, … split in order of index. A generator
//! therefore scales to any parallelism, up and down, with no subtask idle and
//! each at the same pace through the stream. When `S` would exceed
//! [`MAX_SPLITS`] the splits are only divided evenly enough that every subtask
//! gets one.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Dec, Enc, StateError};

/// The most splits that dividing restored splits to a common stride makes.
pub(crate) const MAX_SPLITS: u64 = 1024;

/// Where a rate-limited generator stood against its schedule at a snapshot:
/// the rows due and not yet made (`rows`), at `at_ms` (unix ms, the
/// snapshot's wall time), of a schedule started at `origin_ms`. A subtask writes its own on its first split and 0
/// rows on the others; a restore sums them over every split (see
/// [`Behind::restored`]), as the splits themselves are divided anew.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Behind {
    pub(crate) rows: u64,
    /// `None`: not rate-limited, or written before version 2.
    pub(crate) at_ms: Option<u64>,
    /// The schedule's origin (unix ms): the source's first start. `None`: not
    /// rate-limited, or written before version 3.
    pub(crate) origin_ms: Option<u64>,
}

impl Behind {
    /// The whole source's schedule at the snapshot: the rows behind summed
    /// over every restored split, at the latest snapshot time, of the
    /// earliest origin (each subtask started its schedule at its first poll).
    pub(crate) fn restored<'a>(all: impl IntoIterator<Item = &'a Behind>) -> Behind {
        all.into_iter().fold(Behind::default(), |acc, b| Behind {
            rows: acc.rows.saturating_add(b.rows),
            at_ms: acc.at_ms.max(b.at_ms),
            origin_ms: match (acc.origin_ms, b.origin_ms) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            },
        })
    }
}

/// A split of a strided generator (datagen, nexmark): it makes the items
/// `index`, `index + stride`, `index + 2 * stride`, … of the whole stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StrideSplit {
    pub(crate) index: u64,
    pub(crate) stride: u64,
    /// Items this split has made so far.
    pub(crate) produced: u64,
    /// Items this split makes in total; `None`: unbounded.
    pub(crate) limit: Option<u64>,
}

impl StrideSplit {
    pub(crate) fn remaining(&self) -> Option<u64> {
        self.limit.map(|l| l.saturating_sub(self.produced))
    }

    /// The global number of this split's `k`-th item.
    pub(crate) fn global(&self, k: u64) -> u64 {
        self.index.wrapping_add(k.wrapping_mul(self.stride))
    }

    /// The split and its share of its subtask's schedule.
    pub(crate) fn encode(&self, e: Enc, behind: Behind) -> Vec<u8> {
        let e = e.u64(self.index).u64(self.stride).u64(self.produced).opt_u64(self.limit);
        e.u64(behind.rows).opt_u64(behind.at_ms).opt_u64(behind.origin_ms).finish()
    }

    /// A split and its schedule; a version-1 split has none (no backlog), a
    /// version-2 one no origin.
    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<(Self, Behind), StateError> {
        let index = d.u64()?;
        let stride = d.u64()?;
        let produced = d.u64()?;
        let limit = d.opt_u64()?;
        if stride == 0 || index >= stride {
            return Err(StateError::InvalidStride { index, stride });
        }
        let mut behind = Behind::default();
        if d.version() >= 2 {
            behind.rows = d.u64()?;
            behind.at_ms = d.opt_u64()?;
        }
        if d.version() >= 3 {
            behind.origin_ms = d.opt_u64()?;
        }
        Ok((StrideSplit { index, stride, produced, limit }, behind))
    }

    /// `m` splits of stride `m * stride` that together make exactly the items
    /// this split has left: split `c` makes this split's items `c`, `c + m`,
    /// `c + 2m`, … (global numbers `index + c * stride + u * m * stride`).
    pub(crate) fn divide(&self, m: u64) -> impl Iterator<Item = StrideSplit> + '_ {
        let m = m.max(1);
        // Of the first `n` items, those congruent to `c` modulo `m`.
        let of = move |n: u64, c: u64| n.saturating_add(m - 1 - c) / m;
        (0..m).map(move |c| StrideSplit {
            index: self.index + c * self.stride,
            stride: self.stride * m,
            produced: of(self.produced, c),
            limit: self.limit.map(|l| of(l, c)),
        })
    }

    /// The splits subtask `i` of `p` owns: on a fresh start the one split
    /// `i` of stride `p` (with `limit_of(i, p)` items); after a restore its
    /// share of the restored splits, divided as the module describes, sorted
    /// by index. Every subtask computes the same division from the same
    /// restored splits, so together they own each item left exactly once.
    pub(crate) fn assign(
        restored: Option<Vec<StrideSplit>>,
        i: usize,
        p: usize,
        limit_of: impl Fn(usize, usize) -> Option<u64>,
    ) -> Vec<StrideSplit> {
        let p = p.max(1);
        match restored {
            None => {
                vec![StrideSplit { index: i as u64, stride: p as u64, produced: 0, limit: limit_of(i, p) }]
            }
            Some(all) => {
                // Exhausted splits are carried on as they are (they make nothing).
                let (done, live): (Vec<StrideSplit>, Vec<StrideSplit>) =
                    all.into_iter().partition(|s| s.remaining() == Some(0));
                let mut mine = Vec::new();
                for mut group in [divide_for(live, p as u64), done] {
                    group.sort_by_key(|s| (s.index, s.stride));
                    mine.extend(group.into_iter().skip(i).step_by(p));
                }
                mine.sort_by_key(|s| (s.index, s.stride));
                mine
            }
        }
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Divides splits for `p` subtasks (see the module's documentation).
fn divide_for(live: Vec<StrideSplit>, p: u64) -> Vec<StrideSplit> {
    if live.is_empty() {
        return live;
    }
    let common = live.iter().try_fold(p, |acc, s| {
        let l = (acc / gcd(acc, s.stride)).checked_mul(s.stride)?;
        (l <= MAX_SPLITS).then_some(l)
    });
    match common {
        Some(stride) => live.iter().flat_map(|s| s.divide(stride / s.stride).collect::<Vec<_>>()).collect(),
        None if (live.len() as u64) < p => {
            let m = p.div_ceil(live.len() as u64);
            live.iter().flat_map(|s| s.divide(m).collect::<Vec<_>>()).collect()
        }
        None => live,
    }
}

/// The first split with rows left, in turn from `cursor`; `None` when every
/// split is exhausted.
pub(crate) fn next_with_rows(splits: &[StrideSplit], cursor: usize) -> Option<usize> {
    let len = splits.len();
    (0..len).map(|k| (cursor + k) % len).find(|&s| splits[s].remaining() != Some(0))
}

/// Which rows to take next from several strided splits: `n` rows in order of
/// their global number. A reader that owns several splits (after a restore at
/// a lower parallelism) thereby emits rows in the order of the original
/// sequence; taking whole batches from one split after another would push
/// event time ahead in jumps and make the other splits' rows late.
///
/// Returns the number of rows per split, and for each output row its split and
/// its position within that split's rows.
pub(crate) fn merge_plan(splits: &[StrideSplit], n: usize) -> (Vec<usize>, Vec<(usize, usize)>) {
    let mut counts = vec![0usize; splits.len()];
    let mut order = Vec::with_capacity(n);
    // The next item of each split with items left, by global number (the
    // splits' global numbers are disjoint).
    let next = |s: &StrideSplit, k: u64| s.limit.is_none_or(|l| k < l).then(|| s.global(k));
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> =
        splits.iter().enumerate().filter_map(|(i, s)| next(s, s.produced).map(|g| Reverse((g, i)))).collect();
    while order.len() < n {
        let Some(Reverse((_, i))) = heap.pop() else { break };
        order.push((i, counts[i]));
        counts[i] += 1;
        if let Some(g) = next(&splits[i], splits[i].produced + counts[i] as u64) {
            heap.push(Reverse((g, i)));
        }
    }
    (counts, order)
}

/// Rows left in all splits; `None` when any split is unbounded.
pub(crate) fn total_remaining(splits: &[StrideSplit]) -> Option<u64> {
    splits.iter().map(StrideSplit::remaining).sum()
}

/// Interleaves the per-split batches of a [`merge_plan`] into one batch.
/// `parts[i]` holds split `i`'s rows (an empty slot for splits without rows).
pub(crate) fn interleave_parts(
    parts: &[Option<arrow::record_batch::RecordBatch>],
    order: &[(usize, usize)],
) -> Result<Option<arrow::record_batch::RecordBatch>, arrow::error::ArrowError> {
    let present: Vec<(usize, &arrow::record_batch::RecordBatch)> =
        parts.iter().enumerate().filter_map(|(i, b)| b.as_ref().map(|b| (i, b))).collect();
    let Some((_, first)) = present.first() else { return Ok(None) };
    let mut slot = vec![usize::MAX; parts.len()];
    for (j, (i, _)) in present.iter().enumerate() {
        slot[*i] = j;
    }
    let indices: Vec<(usize, usize)> = order.iter().map(|(s, r)| (slot[*s], *r)).collect();
    let mut columns = Vec::with_capacity(first.num_columns());
    for c in 0..first.num_columns() {
        let arrays: Vec<&dyn arrow::array::Array> = present.iter().map(|(_, b)| b.column(c).as_ref()).collect();
        columns.push(arrow::compute::interleave(&arrays, &indices)?);
    }
    arrow::record_batch::RecordBatch::try_new_with_options(
        first.schema(),
        columns,
        &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(indices.len())),
    )
    .map(Some)
}

/// Generates a [`merge_plan`]'s rows split by split and interleaves them.
pub(crate) fn merged_batch(
    (counts, order): (Vec<usize>, Vec<(usize, usize)>),
    table: &str,
    mut generate: impl FnMut(usize, usize) -> Result<arrow::record_batch::RecordBatch, crate::ConnectorError>,
) -> Result<crate::SourceEvent, crate::ConnectorError> {
    let mut parts = Vec::with_capacity(counts.len());
    for (i, c) in counts.iter().enumerate() {
        parts.push(if *c > 0 { Some(generate(i, *c)?) } else { None });
    }
    match interleave_parts(&parts, &order) {
        Ok(Some(b)) => Ok(crate::SourceEvent::Batch(b)),
        Ok(None) => Ok(crate::SourceEvent::Idle),
        Err(e) => Err(crate::ConnectorError::Batch { table: table.to_string(), source: e.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_splits_are_divided_to_a_common_stride_and_dealt_out_in_order() {
        let split = |index, stride| StrideSplit { index, stride, produced: 0, limit: None };
        // Four strides of 4 at 2: no division, two each, by index modulo 2.
        let all: Vec<StrideSplit> = [3, 0, 2, 1].into_iter().map(|i| split(i, 4)).collect();
        let of = |all: &[StrideSplit], i, p| StrideSplit::assign(Some(all.to_vec()), i, p, |_, _| None);
        assert_eq!(of(&all, 0, 2), vec![split(0, 4), split(2, 4)]);
        assert_eq!(of(&all, 1, 2), vec![split(1, 4), split(3, 4)]);
        // Five strides of 5 at 2: ten strides of 10, five each; subtask 0 makes
        // the even items of the stream, as a fresh subtask 0 of 2 would.
        let all: Vec<StrideSplit> = [4, 0, 3, 1, 2].into_iter().map(|i| split(i, 5)).collect();
        assert_eq!(of(&all, 0, 2), (0..5).map(|k| split(2 * k, 10)).collect::<Vec<_>>());
        // One stride at 3: each subtask gets a third of it.
        assert_eq!(of(&[split(0, 1)], 2, 3), vec![split(2, 3)]);
        let fresh = StrideSplit::assign(None, 1, 3, |i, p| Some((i * 10 + p) as u64));
        assert_eq!(fresh, vec![StrideSplit { index: 1, stride: 3, produced: 0, limit: Some(13) }]);
    }

    /// The global numbers below `below` of the items a split has left.
    fn items(s: &StrideSplit, below: u64) -> Vec<u64> {
        (s.produced..s.limit.unwrap_or(u64::MAX)).map(|k| s.global(k)).take_while(|g| *g < below).collect()
    }

    #[test]
    fn a_divided_split_makes_exactly_the_items_it_had_left() {
        for (produced, limit) in [(0, Some(10)), (7, Some(23)), (23, Some(23)), (5, None), (6, Some(4))] {
            let s = StrideSplit { index: 2, stride: 3, produced, limit };
            for m in 1..6 {
                let parts: Vec<StrideSplit> = s.divide(m).collect();
                assert!(parts.iter().all(|p| p.stride == 3 * m && p.index < p.stride), "{parts:?}");
                let mut got: Vec<u64> = parts.iter().flat_map(|p| items(p, 200)).collect();
                got.sort_unstable();
                assert_eq!(got, items(&s, 200), "{s:?} in {m}");
                let left: u64 = parts.iter().filter_map(StrideSplit::remaining).sum();
                assert_eq!(s.remaining().map(|_| left), s.remaining(), "{s:?} in {m}");
            }
        }
    }

    #[test]
    fn every_item_left_is_owned_once_at_any_parallelism_and_shares_are_even() {
        // Two splits of stride 2 that drifted apart, one bounded.
        let restored = vec![
            StrideSplit { index: 0, stride: 2, produced: 10, limit: None },
            StrideSplit { index: 1, stride: 2, produced: 8, limit: Some(40) },
        ];
        let want: Vec<u64> = {
            let mut v: Vec<u64> = restored.iter().flat_map(|s| items(s, 300)).collect();
            v.sort_unstable();
            v
        };
        for q in 1..=7 {
            let owned: Vec<Vec<StrideSplit>> =
                (0..q).map(|j| StrideSplit::assign(Some(restored.clone()), j, q, |_, _| None)).collect();
            let mut got: Vec<u64> = owned.iter().flatten().flat_map(|s| items(s, 300)).collect();
            got.sort_unstable();
            assert_eq!(got, want, "q={q}: an item lost or owned twice");
            // Every subtask owns the same share of the stream (in 840ths).
            let shares: Vec<u64> = owned.iter().map(|o| o.iter().map(|s| 840 / s.stride).sum()).collect();
            assert!(shares.iter().all(|x| *x == shares[0] && *x > 0), "q={q}: {shares:?}");
        }
    }

    #[test]
    fn several_splits_merge_in_global_order() {
        // Two strides of 2 that drifted apart, and an exhausted one of stride 3.
        let splits = vec![
            StrideSplit { index: 0, stride: 2, produced: 10, limit: None },
            StrideSplit { index: 1, stride: 2, produced: 8, limit: Some(12) },
            StrideSplit { index: 2, stride: 3, produced: 5, limit: Some(5) },
        ];
        let (counts, order) = merge_plan(&splits, 8);
        let globals: Vec<u64> = order.iter().map(|(s, r)| splits[*s].global(splits[*s].produced + *r as u64)).collect();
        assert_eq!(globals, vec![17, 19, 20, 21, 22, 23, 24, 26]);
        assert_eq!(counts, vec![4, 4, 0]);
        assert_eq!(total_remaining(&splits), None);
    }
}
