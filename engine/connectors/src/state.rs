//! The byte encoding of connector checkpoint state: source splits, sink
//! committables and sink states.
//!
//! Every blob starts with a format version and a tag naming its kind, then
//! fixed-width little-endian integers and length-prefixed byte strings:
//!
//! | tag | blob | fields after `[VERSION, tag]` |
//! | --- | --- | --- |
//! | `D` | datagen split | split `u64`, stride `u64`, produced `u64`, has-limit `u8`, limit `u64` |
//! | `N` | nexmark split | kind `u8` (0 person, 1 auction, 2 bid), then as datagen |
//! | `F` | filesystem source split (one file) | status `u8` (0 queued, 1 reading, 2 done), byte offset `u64`, line `u64`, path bytes |
//! | `C` | filesystem sink committable | count `u32`, then per file: pending name bytes, final name bytes |
//! | `U` | filesystem sink committable on S3 | count `u32`, then per file: final name bytes, upload handle bytes (`sluice_storage::UploadHandle::to_bytes`, JSON) |
//! | `S` | filesystem sink state | next part number `u64` |
//!
//! Byte strings are a `u32` length and the bytes. A filesystem sink's
//! committable that describes no file is the empty blob (local or S3).

/// The current format version; a newer one is refused with a clear error.
pub(crate) const VERSION: u8 = 1;

pub(crate) const TAG_DATAGEN: u8 = b'D';
pub(crate) const TAG_NEXMARK: u8 = b'N';
pub(crate) const TAG_FS_SPLIT: u8 = b'F';
pub(crate) const TAG_FS_COMMITTABLE: u8 = b'C';
pub(crate) const TAG_FS_SINK_STATE: u8 = b'S';
pub(crate) const TAG_FS_S3_COMMITTABLE: u8 = b'U';

fn tag_name(tag: u8) -> &'static str {
    match tag {
        TAG_DATAGEN => "a datagen split",
        TAG_NEXMARK => "a nexmark split",
        TAG_FS_SPLIT => "a filesystem source split",
        TAG_FS_COMMITTABLE => "a filesystem sink committable",
        TAG_FS_SINK_STATE => "a filesystem sink state",
        TAG_FS_S3_COMMITTABLE => "a filesystem sink committable on S3",
        _ => "unknown state",
    }
}

/// Builds one blob.
pub(crate) struct Enc(Vec<u8>);

impl Enc {
    pub(crate) fn new(tag: u8) -> Self {
        Enc(vec![VERSION, tag])
    }

    pub(crate) fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }

    pub(crate) fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn opt_u64(self, v: Option<u64>) -> Self {
        self.u8(u8::from(v.is_some())).u64(v.unwrap_or(0))
    }

    pub(crate) fn bytes(mut self, b: &[u8]) -> Result<Self, String> {
        let len = u32::try_from(b.len()).map_err(|_| "a string of more than 4 GiB in checkpoint state".to_string())?;
        self = self.u32(len);
        self.0.extend_from_slice(b);
        Ok(self)
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads one blob; every error says what was expected.
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Dec<'a> {
    /// Checks the version and the tag.
    pub(crate) fn new(buf: &'a [u8], tag: u8) -> Result<Self, String> {
        let what = tag_name(tag);
        match buf {
            [] | [_] => Err(format!("{what} is truncated ({} bytes)", buf.len())),
            [v, _, ..] if *v > VERSION => {
                Err(format!("{what} has format version {v}; this engine reads up to version {VERSION}"))
            }
            [0, _, ..] => Err(format!("{what} has the invalid format version 0")),
            [_, t, ..] if *t != tag => Err(format!("expected {what} but found {}", tag_name(*t))),
            _ => Ok(Dec { buf, pos: 2, what }),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return Err(format!("{} is truncated ({} bytes)", self.what, self.buf.len()));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    pub(crate) fn opt_u64(&mut self) -> Result<Option<u64>, String> {
        let some = self.u8()?;
        let v = self.u64()?;
        match some {
            0 => Ok(None),
            1 => Ok(Some(v)),
            other => Err(format!("{} has an invalid flag {other}", self.what)),
        }
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    /// Fails if bytes are left over.
    pub(crate) fn end(self) -> Result<(), String> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(format!("{} has {} unexpected trailing bytes", self.what, self.buf.len() - self.pos))
        }
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

    pub(crate) fn encode(&self, e: Enc) -> Vec<u8> {
        e.u64(self.index).u64(self.stride).u64(self.produced).opt_u64(self.limit).finish()
    }

    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<Self, String> {
        let index = d.u64()?;
        let stride = d.u64()?;
        let produced = d.u64()?;
        let limit = d.opt_u64()?;
        if stride == 0 || index >= stride {
            return Err(format!("split {index} of stride {stride} is invalid"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_errors_are_clear() {
        let s = StrideSplit { index: 2, stride: 3, produced: 17, limit: Some(40) };
        let blob = s.encode(Enc::new(TAG_DATAGEN));
        let mut d = Dec::new(&blob, TAG_DATAGEN).unwrap();
        assert_eq!(StrideSplit::decode(&mut d).unwrap(), s);
        d.end().unwrap();
        assert_eq!(Dec::new(&blob, TAG_NEXMARK).err().unwrap(), "expected a nexmark split but found a datagen split");
        let mut newer = blob.clone();
        newer[0] = 9;
        assert_eq!(
            Dec::new(&newer, TAG_DATAGEN).err().unwrap(),
            "a datagen split has format version 9; this engine reads up to version 1"
        );
        let mut d = Dec::new(&blob[..10], TAG_DATAGEN).unwrap();
        assert_eq!(StrideSplit::decode(&mut d).unwrap_err(), "a datagen split is truncated (10 bytes)");
        let e = Enc::new(TAG_FS_SPLIT).bytes(b"abc").unwrap().u8(7).finish();
        let mut d = Dec::new(&e, TAG_FS_SPLIT).unwrap();
        assert_eq!(d.bytes().unwrap(), b"abc");
        assert_eq!(d.u8().unwrap(), 7);
        d.end().unwrap();
    }

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
        Err(e) => Err(crate::ConnectorError::Arrow { table: table.to_string(), message: e.to_string() }),
    }
}

#[cfg(test)]
mod merge_tests {
    use super::*;

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
