//! The state of a strided generator (datagen, nexmark): a split is one
//! stride of the generated stream. A restored subtask takes the splits whose
//! index is its own modulo the new parallelism, and emits their rows merged in
//! the order of the original stream.

use super::{Dec, Enc, StateError};

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

    pub(crate) fn encode(&self, e: Enc) -> Vec<u8> {
        e.u64(self.index).u64(self.stride).u64(self.produced).opt_u64(self.limit).finish()
    }

    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<Self, StateError> {
        let index = d.u64()?;
        let stride = d.u64()?;
        let produced = d.u64()?;
        let limit = d.opt_u64()?;
        if stride == 0 || index >= stride {
            return Err(StateError::InvalidStride { index, stride });
        }
        Ok(StrideSplit { index, stride, produced, limit })
    }

    /// The splits subtask `i` of `p` owns: on a fresh start the one split
    /// `i` of stride `p` (with `limit_of(i, p)` items); after a restore every
    /// restored split whose index is `i` modulo `p`, sorted by index.
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
                let mut mine: Vec<StrideSplit> = all.into_iter().filter(|s| s.index % p as u64 == i as u64).collect();
                mine.sort_by_key(|s| (s.index, s.stride));
                mine
            }
        }
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
    for _ in 0..n {
        let mut best: Option<(u64, usize)> = None;
        for (i, s) in splits.iter().enumerate() {
            let k = s.produced + counts[i] as u64;
            if s.limit.is_some_and(|l| k >= l) {
                continue;
            }
            let g = s.global(k);
            if best.is_none_or(|(bg, _)| g < bg) {
                best = Some((g, i));
            }
        }
        let Some((_, i)) = best else { break };
        order.push((i, counts[i]));
        counts[i] += 1;
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
    fn restored_splits_are_assigned_by_index_modulo_parallelism() {
        let split = |index| StrideSplit { index, stride: 5, produced: 0, limit: None };
        let all: Vec<StrideSplit> = [4, 0, 3, 1, 2].into_iter().map(split).collect();
        let of = |i| StrideSplit::assign(Some(all.clone()), i, 2, |_, _| None);
        assert_eq!(of(0), vec![split(0), split(2), split(4)]);
        assert_eq!(of(1), vec![split(1), split(3)]);
        let fresh = StrideSplit::assign(None, 1, 3, |i, p| Some((i * 10 + p) as u64));
        assert_eq!(fresh, vec![StrideSplit { index: 1, stride: 3, produced: 0, limit: Some(13) }]);
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
