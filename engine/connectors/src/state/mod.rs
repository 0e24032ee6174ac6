//! The byte encoding of connector checkpoint state: source splits, sink
//! committables and sink states.
//!
//! Every blob starts with a format version and a tag naming its kind, then
//! fixed-width little-endian integers and length-prefixed byte strings:
//!
//! | tag | blob | fields after `[version, tag]` |
//! | --- | --- | --- |
//! | `D` | datagen split | split `u64`, stride `u64`, produced `u64`, has-limit `u8`, limit `u64`; from version 2, the schedule: rows behind `u64`, has-time `u8`, snapshot time `u64` (unix ms); from version 3, has-origin `u8`, the schedule's origin `u64` (unix ms of the source's first start) |
//! | `N` | nexmark split | kind `u8` (0 person, 1 auction, 2 bid), then as datagen |
//! | `F` | filesystem source split (one file) | status `u8` (0 queued, 1 reading, 2 done), byte offset `u64`, line `u64`, path bytes |
//! | `C` | filesystem sink committable | count `u32`, then per file: pending name bytes, final name bytes |
//! | `U` | filesystem sink committable on S3 | count `u32`, then per file: final name bytes, upload handle bytes (`sluice_storage::UploadHandle::to_bytes`, JSON) |
//! | `S` | filesystem sink state | next part number `u64` |
//! | `K` | kafka source split (one topic-partition) | partition `u32`, next offset `u64`, stop offset `opt u64` (flag `u8`, `u64`), topic bytes |
//! | `T` | kafka sink committable (one transaction) | checkpoint `u64`, transactional id bytes |
//! | `X` | kafka sink state | subtask `u32`, sequence of the last pre-committed transaction `u64`, transactional-id prefix bytes |
//!
//! Versions are per kind ([`version_of`]): every kind is at version 1 but
//! the datagen and nexmark splits, at version 3: version 2 added their
//! schedule (the rows a rate-limited generator was behind at the snapshot,
//! and when), version 3 the schedule's origin (so that a rate that changes by
//! schedule time goes on where it was). A version-1 generator split is read
//! with no backlog, a version-2 one with its schedule counted from the
//! snapshot. A blob of a newer
//! version than its kind's is refused with a clear error.
//!
//! Byte strings are a `u32` length and the bytes. A filesystem sink's
//! committable that describes no file is the empty blob (local or S3).
//!
//! The blobs of each connector, with the types they encode:
//!
//! - [`stride`]: the splits of datagen and nexmark (`D`, `N`), and how a
//!   restored subtask takes and merges them;
//! - [`filesystem`]: the filesystem source's splits and the sink's
//!   committables and state (`F`, `C`, `U`, `S`);
//! - [`kafka`]: the kafka source's splits and the sink's committables and
//!   state (`K`, `T`, `X`).

pub(crate) mod filesystem;
pub(crate) mod kafka;
mod stride;

pub(crate) use stride::{Behind, StrideSplit, merge_plan, merged_batch, next_with_rows, total_remaining};

/// The format version of blobs of kind `tag` that this engine writes, and
/// the newest it reads.
pub(crate) fn version_of(tag: u8) -> u8 {
    match tag {
        TAG_DATAGEN | TAG_NEXMARK => 3,
        _ => 1,
    }
}

pub(crate) const TAG_DATAGEN: u8 = b'D';
pub(crate) const TAG_NEXMARK: u8 = b'N';
pub(crate) const TAG_FS_SPLIT: u8 = b'F';
pub(crate) const TAG_FS_COMMITTABLE: u8 = b'C';
pub(crate) const TAG_FS_SINK_STATE: u8 = b'S';
pub(crate) const TAG_FS_S3_COMMITTABLE: u8 = b'U';
pub(crate) const TAG_KAFKA_SPLIT: u8 = b'K';
pub(crate) const TAG_KAFKA_TXN: u8 = b'T';
pub(crate) const TAG_KAFKA_SINK_STATE: u8 = b'X';

/// Why checkpoint state cannot be written or read: the blob is damaged, of
/// another kind or of a newer format, or names what the connector cannot use.
/// Each message names the blob; [`crate::ConnectorError::State`] adds the
/// table.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{what} is truncated ({len} bytes)")]
    Truncated { what: &'static str, len: usize },
    #[error("{what} has format version {version}; this engine reads up to version {max}")]
    NewerVersion { what: &'static str, version: u8, max: u8 },
    #[error("{what} has the invalid format version 0")]
    VersionZero { what: &'static str },
    #[error("expected {expected} but found {found}")]
    OtherKind { expected: &'static str, found: &'static str },
    #[error("{what} has an invalid flag {flag}")]
    InvalidFlag { what: &'static str, flag: u8 },
    #[error("{what} has {count} unexpected trailing bytes")]
    TrailingBytes { what: &'static str, count: usize },
    #[error("a string of more than 4 GiB in checkpoint state")]
    TooLong,
    /// A datagen or nexmark split whose index is not below its stride.
    #[error("split {index} of stride {stride} is invalid")]
    InvalidStride { index: u64, stride: u64 },
    #[error("a nexmark split of another table than '{table}' (kind code {code})")]
    OtherNexmarkTable { table: &'static str, code: u8 },
    #[error("a filesystem source split has the invalid status {0}")]
    InvalidFileStatus(u8),
    /// A path that cannot be stored (only where paths need not be UTF-8).
    #[error("path {0} is not UTF-8")]
    PathNotUtf8(String),
    #[error("a path in a filesystem split is not UTF-8: {0}")]
    SplitPathNotUtf8(#[source] std::str::Utf8Error),
    #[error("too many files in one committable")]
    TooManyFiles,
    #[error("a committable cannot mix local files and S3 uploads")]
    MixedCommittable,
    #[error("a file name in a committable is not UTF-8: {0}")]
    FileNameNotUtf8(#[source] std::str::Utf8Error),
    #[error("a committable names the invalid file '{0}'")]
    InvalidFileName(String),
    /// An S3 committable's upload handle that cannot be read.
    #[error("{0}")]
    UploadHandle(#[source] sluice_storage::StorageError),
    #[error("a committable's upload to {uri} does not match its file '{file}'")]
    UploadMismatch { uri: String, file: String },
    #[error("a committable names the local file '{file}', but the sink path {dir} is on S3")]
    LocalFileOnS3 { file: String, dir: String },
    #[error("a committable names an S3 upload to {uri}, but the sink path {dir} is local")]
    UploadOnLocalPath { uri: String, dir: String },
    /// The engine snapshots a reader between polls; a reader holding
    /// decoded rows would lose them.
    #[error("a snapshot was taken in the middle of a poll")]
    MidPoll,
    #[error("{what} holds a name that is not UTF-8")]
    NameNotUtf8 { what: &'static str },
}

fn tag_name(tag: u8) -> &'static str {
    match tag {
        TAG_DATAGEN => "a datagen split",
        TAG_NEXMARK => "a nexmark split",
        TAG_FS_SPLIT => "a filesystem source split",
        TAG_FS_COMMITTABLE => "a filesystem sink committable",
        TAG_FS_SINK_STATE => "a filesystem sink state",
        TAG_FS_S3_COMMITTABLE => "a filesystem sink committable on S3",
        TAG_KAFKA_SPLIT => "a kafka source split",
        TAG_KAFKA_TXN => "a kafka sink committable",
        TAG_KAFKA_SINK_STATE => "a kafka sink state",
        _ => "unknown state",
    }
}

/// Builds one blob.
pub(crate) struct Enc(Vec<u8>);

impl Enc {
    pub(crate) fn new(tag: u8) -> Self {
        Enc(vec![version_of(tag), tag])
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

    pub(crate) fn bytes(mut self, b: &[u8]) -> Result<Self, StateError> {
        let len = u32::try_from(b.len()).map_err(|_| StateError::TooLong)?;
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
    version: u8,
}

impl<'a> Dec<'a> {
    /// Checks the version and the tag.
    pub(crate) fn new(buf: &'a [u8], tag: u8) -> Result<Self, StateError> {
        let what = tag_name(tag);
        match buf {
            [] | [_] => Err(StateError::Truncated { what, len: buf.len() }),
            [v, _, ..] if *v > version_of(tag) => {
                Err(StateError::NewerVersion { what, version: *v, max: version_of(tag) })
            }
            [0, _, ..] => Err(StateError::VersionZero { what }),
            [_, t, ..] if *t != tag => Err(StateError::OtherKind { expected: what, found: tag_name(*t) }),
            [v, ..] => Ok(Dec { buf, pos: 2, what, version: *v }),
        }
    }

    /// The blob's format version.
    pub(crate) fn version(&self) -> u8 {
        self.version
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return Err(StateError::Truncated { what: self.what, len: self.buf.len() });
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, StateError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, StateError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    pub(crate) fn opt_u64(&mut self) -> Result<Option<u64>, StateError> {
        let some = self.u8()?;
        let v = self.u64()?;
        match some {
            0 => Ok(None),
            1 => Ok(Some(v)),
            flag => Err(StateError::InvalidFlag { what: self.what, flag }),
        }
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], StateError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    /// Fails if bytes are left over.
    pub(crate) fn end(self) -> Result<(), StateError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(StateError::TrailingBytes { what: self.what, count: self.buf.len() - self.pos })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_errors_are_clear() {
        let s = StrideSplit { index: 2, stride: 3, produced: 17, limit: Some(40) };
        let behind = Behind { rows: 5, at_ms: Some(1_700_000_000_000), origin_ms: Some(1_699_999_000_000) };
        let blob = s.encode(Enc::new(TAG_DATAGEN), behind);
        let mut d = Dec::new(&blob, TAG_DATAGEN).unwrap();
        assert_eq!(StrideSplit::decode(&mut d).unwrap(), (s, behind));
        d.end().unwrap();
        assert_eq!(
            Dec::new(&blob, TAG_NEXMARK).err().unwrap().to_string(),
            "expected a nexmark split but found a datagen split"
        );
        let mut newer = blob.clone();
        newer[0] = 9;
        assert_eq!(
            Dec::new(&newer, TAG_DATAGEN).err().unwrap().to_string(),
            "a datagen split has format version 9; this engine reads up to version 3"
        );
        let mut d = Dec::new(&blob[..10], TAG_DATAGEN).unwrap();
        assert_eq!(StrideSplit::decode(&mut d).unwrap_err().to_string(), "a datagen split is truncated (10 bytes)");
        let e = Enc::new(TAG_FS_SPLIT).bytes(b"abc").unwrap().u8(7).finish();
        let mut d = Dec::new(&e, TAG_FS_SPLIT).unwrap();
        assert_eq!(d.bytes().unwrap(), b"abc");
        assert_eq!(d.u8().unwrap(), 7);
        d.end().unwrap();
    }

    #[test]
    fn a_version_1_generator_split_restores_with_no_backlog() {
        // As version 1 wrote it: the split's fields and nothing after them.
        let v1 = Enc(vec![1, TAG_DATAGEN]).u64(2).u64(3).u64(17).opt_u64(Some(40)).finish();
        let mut d = Dec::new(&v1, TAG_DATAGEN).unwrap();
        let (s, behind) = StrideSplit::decode(&mut d).unwrap();
        d.end().unwrap();
        assert_eq!(s, StrideSplit { index: 2, stride: 3, produced: 17, limit: Some(40) });
        assert_eq!(behind, Behind::default());
    }

    #[test]
    fn a_version_2_generator_split_restores_with_no_origin() {
        let v2 = Enc(vec![2, TAG_DATAGEN]).u64(2).u64(3).u64(17).opt_u64(None).u64(40).opt_u64(Some(9)).finish();
        let mut d = Dec::new(&v2, TAG_DATAGEN).unwrap();
        let (_, behind) = StrideSplit::decode(&mut d).unwrap();
        d.end().unwrap();
        assert_eq!(behind, Behind { rows: 40, at_ms: Some(9), origin_ms: None });
    }
}
