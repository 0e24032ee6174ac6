//! The filesystem connector's checkpoint state and its encoding (the `F`,
//! `C`, `U` and `S` blobs of the table in [`super`]): a source split per
//! file, a sink's committable (the part files it pre-committed at one
//! checkpoint) and a sink's state (its next part number).

use std::path::{Path, PathBuf};

use sluice_storage::UploadHandle;

use super::{Dec, Enc, StateError, TAG_FS_COMMITTABLE, TAG_FS_S3_COMMITTABLE, TAG_FS_SINK_STATE, TAG_FS_SPLIT};

#[cfg(unix)]
fn path_to_bytes(p: &Path) -> Result<Vec<u8>, StateError> {
    use std::os::unix::ffi::OsStrExt;
    Ok(p.as_os_str().as_bytes().to_vec())
}

#[cfg(unix)]
fn path_from_bytes(b: &[u8]) -> Result<PathBuf, StateError> {
    use std::os::unix::ffi::OsStrExt;
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(b)))
}

#[cfg(not(unix))]
fn path_to_bytes(p: &Path) -> Result<Vec<u8>, StateError> {
    p.to_str().map(|s| s.as_bytes().to_vec()).ok_or_else(|| StateError::PathNotUtf8(p.display().to_string()))
}

#[cfg(not(unix))]
fn path_from_bytes(b: &[u8]) -> Result<PathBuf, StateError> {
    std::str::from_utf8(b).map(PathBuf::from).map_err(StateError::SplitPathNotUtf8)
}

/// Where a file of a source split stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileStatus {
    Queued = 0,
    Reading = 1,
    Done = 2,
}

/// One file of a source: the unit of its checkpoint state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileSplit {
    pub(crate) path: PathBuf,
    pub(crate) status: FileStatus,
    /// The byte offset and the line number of the next unread record.
    pub(crate) offset: u64,
    pub(crate) line: u64,
}

impl FileSplit {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, StateError> {
        Ok(Enc::new(TAG_FS_SPLIT)
            .u8(self.status as u8)
            .u64(self.offset)
            .u64(self.line)
            .bytes(&path_to_bytes(&self.path)?)?
            .finish())
    }

    pub(crate) fn decode(blob: &[u8]) -> Result<Self, StateError> {
        let mut d = Dec::new(blob, TAG_FS_SPLIT)?;
        let status = match d.u8()? {
            0 => FileStatus::Queued,
            1 => FileStatus::Reading,
            2 => FileStatus::Done,
            other => return Err(StateError::InvalidFileStatus(other)),
        };
        let offset = d.u64()?;
        let line = d.u64()?;
        let path = path_from_bytes(d.bytes()?)?;
        d.end()?;
        Ok(FileSplit { path, status, offset, line })
    }
}

/// One committed-to-be file: its hidden pending name and its final name,
/// both in the sink directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) pending: String,
    pub(crate) fin: String,
}

/// One file of a committable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PendingPart {
    /// A local hidden pending file, renamed at commit.
    File(Pending),
    /// A prepared multipart upload to `<prefix>/<fin>`, completed at commit.
    Upload { fin: String, handle: UploadHandle },
}

impl PendingPart {
    /// The part's final (visible) name.
    pub(crate) fn fin(&self) -> &str {
        match self {
            PendingPart::File(p) => &p.fin,
            PendingPart::Upload { fin, .. } => fin,
        }
    }
}

pub(crate) fn encode_committable(files: &[PendingPart]) -> Result<Vec<u8>, StateError> {
    let Some(first) = files.first() else {
        return Ok(Vec::new());
    };
    let count = u32::try_from(files.len()).map_err(|_| StateError::TooManyFiles)?;
    let s3 = matches!(first, PendingPart::Upload { .. });
    let mut e = Enc::new(if s3 { TAG_FS_S3_COMMITTABLE } else { TAG_FS_COMMITTABLE }).u32(count);
    for f in files {
        e = match f {
            PendingPart::File(p) if !s3 => e.bytes(p.pending.as_bytes())?.bytes(p.fin.as_bytes())?,
            PendingPart::Upload { fin, handle } if s3 => e.bytes(fin.as_bytes())?.bytes(&handle.to_bytes())?,
            _ => return Err(StateError::MixedCommittable),
        };
    }
    Ok(e.finish())
}

pub(crate) fn decode_committable(blob: &[u8]) -> Result<Vec<PendingPart>, StateError> {
    if blob.is_empty() {
        return Ok(Vec::new());
    }
    let s3 = blob.get(1) == Some(&TAG_FS_S3_COMMITTABLE);
    let mut d = Dec::new(blob, if s3 { TAG_FS_S3_COMMITTABLE } else { TAG_FS_COMMITTABLE })?;
    let count = d.u32()?;
    let mut out = Vec::new();
    let name = |b: &[u8]| -> Result<String, StateError> {
        let s = std::str::from_utf8(b).map_err(StateError::FileNameNotUtf8)?;
        // Only plain names inside the sink directory.
        if s.is_empty() || s.contains('/') || s.contains('\\') || s == "." || s == ".." {
            return Err(StateError::InvalidFileName(s.to_string()));
        }
        Ok(s.to_string())
    };
    for _ in 0..count {
        if s3 {
            let fin = name(d.bytes()?)?;
            let handle = UploadHandle::from_bytes(d.bytes()?).map_err(StateError::UploadHandle)?;
            if !handle.target_uri().ends_with(&format!("/{fin}")) {
                return Err(StateError::UploadMismatch { uri: handle.target_uri().to_string(), file: fin });
            }
            out.push(PendingPart::Upload { fin, handle });
        } else {
            let pending = name(d.bytes()?)?;
            let fin = name(d.bytes()?)?;
            out.push(PendingPart::File(Pending { pending, fin }));
        }
    }
    d.end()?;
    Ok(out)
}

pub(crate) fn decode_sink_state(blob: &[u8]) -> Result<u64, StateError> {
    let mut d = Dec::new(blob, TAG_FS_SINK_STATE)?;
    let next = d.u64()?;
    d.end()?;
    Ok(next)
}

/// The blob of a sink's state: its next part number.
pub(crate) fn encode_sink_state(next_part: u64) -> Vec<u8> {
    Enc::new(TAG_FS_SINK_STATE).u64(next_part).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_splits_round_trip_and_a_bad_status_is_an_error() {
        let split =
            FileSplit { path: PathBuf::from("/data/in/a.json"), status: FileStatus::Reading, offset: 120, line: 7 };
        let blob = split.encode().unwrap();
        assert_eq!(&blob[..3], &[1, TAG_FS_SPLIT, FileStatus::Reading as u8]);
        assert_eq!(FileSplit::decode(&blob).unwrap(), split);
        let mut bad = blob.clone();
        bad[2] = 3;
        assert_eq!(
            FileSplit::decode(&bad).unwrap_err().to_string(),
            "a filesystem source split has the invalid status 3"
        );
    }

    #[test]
    fn committables_round_trip_and_name_only_files_of_the_directory() {
        let files = vec![
            PendingPart::File(Pending { pending: ".part-j-0-3.pending".into(), fin: "part-j-0-3".into() }),
            PendingPart::File(Pending { pending: ".part-j-0-4.pending".into(), fin: "part-j-0-4".into() }),
        ];
        let blob = encode_committable(&files).unwrap();
        assert_eq!(&blob[..2], &[1, TAG_FS_COMMITTABLE]);
        assert_eq!(decode_committable(&blob).unwrap(), files);
        assert_eq!(encode_committable(&[]).unwrap(), Vec::<u8>::new());
        assert_eq!(decode_committable(&[]).unwrap(), vec![]);
        let outside = vec![PendingPart::File(Pending { pending: "../x".into(), fin: "part-j-0-3".into() })];
        let blob = encode_committable(&outside).unwrap();
        assert_eq!(decode_committable(&blob).unwrap_err().to_string(), "a committable names the invalid file '../x'");
    }

    #[test]
    fn the_sink_state_is_the_next_part_number() {
        let blob = encode_sink_state(42);
        assert_eq!(blob, [&[1, TAG_FS_SINK_STATE][..], &42u64.to_le_bytes()].concat());
        assert_eq!(decode_sink_state(&blob).unwrap(), 42);
        let split = FileSplit { path: PathBuf::from("a"), status: FileStatus::Done, offset: 0, line: 0 };
        assert_eq!(
            decode_sink_state(&split.encode().unwrap()).unwrap_err().to_string(),
            "expected a filesystem sink state but found a filesystem source split"
        );
    }
}
