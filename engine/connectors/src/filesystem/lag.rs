//! The filesystem source's lag: an estimate of the records it has yet to read.
//!
//! A file's records are not counted until they are read, but its bytes are
//! known: the source's lag is its unread bytes (the rest of the file being
//! read plus every queued file, from its offset) divided by the mean bytes
//! per record the reader has read so far, rounded up, so that a partial
//! record still counts as one. The estimate is:
//!
//! - known and 0 when nothing is left unread (every file read to its end);
//! - unknown (`None`, never 0) while bytes are unread but no record has been
//!   read yet, as there is no mean to divide by, or when a file's size is
//!   unknown (a restored split whose file could not be listed).
//!
//! A monitored source only knows the files it has listed: files that appear
//! before its next listing are not in the lag until then. Sizes are taken
//! when a file is listed (or restored); a file that grows while it is read
//! counts its new bytes once they are read.

/// The bytes and records the reader has consumed, skipped records included
/// (a skipped record is one the reader had to read).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BytesPerRecord {
    bytes: u64,
    records: u64,
}

impl BytesPerRecord {
    /// One more record of `bytes` bytes was read.
    pub(crate) fn read(&mut self, bytes: u64) {
        self.bytes = self.bytes.saturating_add(bytes);
        self.records = self.records.saturating_add(1);
    }

    /// The records in `unread` bytes (`None` when the size of some file left
    /// to read is unknown), by the mean so far.
    pub(crate) fn pending(&self, unread: Option<u64>) -> Option<u64> {
        match unread? {
            0 => Some(0),
            _ if self.records == 0 || self.bytes == 0 => None,
            u => {
                let n = (u128::from(u) * u128::from(self.records)).div_ceil(u128::from(self.bytes));
                Some(u64::try_from(n).unwrap_or(u64::MAX))
            }
        }
    }
}

/// The unread bytes of files read from `offset` with `size` bytes in all;
/// `None` when a size is unknown.
pub(crate) fn unread_bytes(files: impl IntoIterator<Item = (Option<u64>, u64)>) -> Option<u64> {
    files.into_iter().try_fold(0u64, |acc, (size, offset)| Some(acc.saturating_add(size?.saturating_sub(offset))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_until_a_record_is_read_then_unread_bytes_over_the_mean() {
        let mut m = BytesPerRecord::default();
        assert_eq!(m.pending(Some(1000)), None, "no mean yet: unknown, never 0");
        assert_eq!(m.pending(Some(0)), Some(0), "nothing unread is a known 0");
        m.read(10);
        m.read(30);
        // A mean of 20 bytes a record: 1000 bytes are 50 records.
        assert_eq!(m.pending(Some(1000)), Some(50));
        // A partial record counts as one.
        assert_eq!(m.pending(Some(1)), Some(1));
        assert_eq!(m.pending(Some(41)), Some(3));
        assert_eq!(m.pending(None), None);
    }

    #[test]
    fn unread_bytes_sum_the_files_from_their_offsets() {
        assert_eq!(unread_bytes([]), Some(0));
        assert_eq!(unread_bytes([(Some(100), 40), (Some(50), 0)]), Some(110));
        // A file that grew past the size it was listed with has nothing unread by that size.
        assert_eq!(unread_bytes([(Some(100), 120)]), Some(0));
        assert_eq!(unread_bytes([(Some(100), 0), (None, 0)]), None, "a size unknown");
    }

    #[test]
    fn the_estimate_falls_to_zero_as_the_input_is_read() {
        // Three files of 10 records of 12 bytes each, read a record at a time.
        let sizes = [120u64, 120, 120];
        let mut m = BytesPerRecord::default();
        let mut offsets = [0u64; 3];
        let mut last = u64::MAX;
        for f in 0..3 {
            for _ in 0..10 {
                offsets[f] += 12;
                m.read(12);
                let unread = unread_bytes(sizes.iter().zip(&offsets).map(|(s, o)| (Some(*s), *o)));
                let lag = m.pending(unread).unwrap();
                assert!(lag < last, "{lag} after {last}");
                last = lag;
            }
        }
        assert_eq!(last, 0);
    }
}
