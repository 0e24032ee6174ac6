//! The `_metadata` manifest of a checkpoint or savepoint, and the layout of the
//! per-subtask state files it points to.
//!
//! A snapshot directory holds one state file per subtask that had something to
//! write (`<vertex-uid>/<subtask>.state`) and `_metadata`, written last. The
//! manifest lists every file with its size and CRC-32, and, inside each file,
//! the byte range of every section: an operator's state for one key group, a
//! source split, a sink committable or a sink's own state. Paths are relative
//! to the snapshot directory, so a snapshot can be moved.
//!
//! From format 2 on, the manifest carries its own checksum (`checksum`, the
//! CRC-32 of its pretty JSON without that member), so that a bit flip in it is
//! found as surely as one in a state file.
//!
//! From format 3 on, keyed state may be written as entries
//! ([`SectionKind::Entries`], see `state::entries`), and a checkpoint may be
//! incremental: a section may live in a file of an earlier checkpoint of the
//! same job (`Section::file`, a path such as `../chk-5/<uid>/0.state`), and
//! the entries sections of one operator and key group, in manifest order, are
//! a base followed by the changes of each later checkpoint. Such files are
//! listed in `files` like the snapshot's own. Savepoints never refer to other
//! snapshots.
//!
//! A key group's state in one snapshot may lie in several sections of its
//! file, in order (state goes to the file as it is encoded, see
//! `state::writers`); a reader takes them one after the other. Readers of
//! format 3 always did, so the format version is unchanged.

use serde::{Deserialize, Serialize};

use super::error::SnapshotError;
use crate::state::codec::Writer;

/// The snapshot format this engine writes. It reads this one and the previous
/// one, and refuses newer ones.
pub const FORMAT_VERSION: u32 = 3;
/// The first format whose manifest carries its own checksum.
const CHECKSUMMED: u32 = 2;
/// The oldest format this engine still reads.
pub const MIN_FORMAT_VERSION: u32 = 1;

pub use sluice_api::rest::SnapshotKind;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub format_version: u32,
    /// The coordinator generation that wrote it (see `lineage`); 0 before generations.
    #[serde(default)]
    pub generation: u64,
    pub job_id: String,
    pub checkpoint_id: u64,
    pub kind: SnapshotKind,
    pub max_parallelism: usize,
    /// RFC 3339.
    pub timestamp: String,
    pub vertices: Vec<VertexState>,
    pub files: Vec<FileEntry>,
    /// `crc32:<hex>` of the manifest without this member; set by [`Metadata::encode`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VertexState {
    pub uid: String,
    pub name: String,
    pub parallelism: usize,
    /// The operators of the vertex that keep keyed state, by position in the chain.
    pub operators: Vec<OperatorState>,
    pub subtasks: Vec<SubtaskState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorState {
    pub index: usize,
    pub name: String,
    pub layout: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubtaskState {
    pub subtask: usize,
    /// The state file, relative to the snapshot directory; none if empty.
    pub file: Option<String>,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    pub kind: SectionKind,
    pub offset: u64,
    pub len: u64,
    /// The file holding the section, relative to the snapshot directory, when
    /// it is not the subtask's own file (an earlier checkpoint's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum SectionKind {
    /// Keyed state of the operator at `operator` in the chain, for one key group.
    Keyed { operator: usize, key_group: u32 },
    /// Keyed state as entries (a base, or the changes since the previous
    /// checkpoint) of the operator at `operator`, for one key group.
    Entries { operator: usize, key_group: u32 },
    /// One split of a source.
    Split,
    /// Output pending commit, pre-committed at `checkpoint`.
    Committable { checkpoint: u64 },
    /// A sink writer's own state.
    SinkState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub crc32: u32,
    /// Where the file was first written, if this is a copy (a savepoint's
    /// copy of a checkpoint's file): a reader that has the original skips it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl SectionKind {
    /// The key group of keyed state, in either form.
    pub fn key_group(&self) -> Option<u32> {
        match self {
            SectionKind::Keyed { key_group, .. } | SectionKind::Entries { key_group, .. } => Some(*key_group),
            _ => None,
        }
    }
}

impl SubtaskState {
    /// The file a section is in: its own, else the subtask's.
    pub fn file_of<'a>(&'a self, sec: &'a Section) -> Option<&'a str> {
        sec.file.as_deref().or(self.file.as_deref())
    }

    /// The sections in the file at `path`.
    pub fn sections_in<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| self.file_of(s) == Some(path))
    }
}

/// One subtask's snapshot before it is written: its sections' bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SubtaskSnapshot {
    pub sections: Vec<(SectionKind, Vec<u8>)>,
}

impl SubtaskSnapshot {
    /// Adds the non-empty buffers of an operator's keyed state, trimmed to
    /// their length (a buffer grown by doubling can hold twice what it holds).
    pub fn add_keyed(&mut self, operator: usize, writers: impl IntoIterator<Item = (u32, Writer)>) {
        self.add(writers, |key_group| SectionKind::Keyed { operator, key_group });
    }

    fn add(&mut self, writers: impl IntoIterator<Item = (u32, Writer)>, kind: impl Fn(u32) -> SectionKind) {
        for (key_group, w) in writers {
            let mut buf = w.buf;
            if !buf.is_empty() {
                buf.shrink_to_fit();
                self.sections.push((kind(key_group), buf));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }
}

/// The relative path of a subtask's state file.
pub fn state_file(vertex_uid: &str, subtask: usize) -> String {
    format!("{vertex_uid}/{subtask}.state")
}

impl Metadata {
    pub fn vertex(&self, uid: &str) -> Option<&VertexState> {
        self.vertices.iter().find(|v| v.uid == uid)
    }

    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The size of the files in the snapshot's own directory: what it wrote.
    pub fn written_size(&self) -> u64 {
        self.files.iter().filter(|f| !f.path.starts_with("../")).map(|f| f.size).sum()
    }

    /// The manifest's bytes: pretty JSON with its checksum.
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut m = self.clone();
        m.checksum = Some(m.own_checksum()?);
        serde_json::to_vec_pretty(&m)
    }

    fn own_checksum(&self) -> Result<String, serde_json::Error> {
        let bare = Metadata { checksum: None, ..self.clone() };
        Ok(format!("crc32:{:08x}", crc32fast::hash(&serde_json::to_vec_pretty(&bare)?)))
    }

    /// Reads the manifest at `uri` (in snapshot `location`): its format version,
    /// then its checksum.
    pub fn decode(raw: &[u8], location: &str, uri: &str) -> Result<Metadata, SnapshotError> {
        let m: Metadata = serde_json::from_slice(raw).map_err(|source| SnapshotError::Unreadable {
            uri: uri.to_string(),
            what: "unreadable manifest",
            source,
        })?;
        m.check_version(location)?;
        if m.format_version >= CHECKSUMMED && m.checksum.as_deref() != m.own_checksum().ok().as_deref() {
            return Err(SnapshotError::Checksum { uri: uri.to_string() });
        }
        Ok(m)
    }

    /// Checks the format version; a newer format gets a clear error.
    pub fn check_version(&self, location: &str) -> Result<(), SnapshotError> {
        let (location, found) = (location.to_string(), self.format_version);
        if found > FORMAT_VERSION {
            return Err(SnapshotError::NewerFormat { location, found });
        }
        if found < MIN_FORMAT_VERSION {
            return Err(SnapshotError::OlderFormat { location, found });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(format_version: u32) -> Metadata {
        Metadata {
            generation: 3,
            format_version,
            job_id: "j".into(),
            checkpoint_id: 7,
            kind: SnapshotKind::Checkpoint,
            max_parallelism: 128,
            timestamp: "2026-12-05T00:00:00Z".into(),
            vertices: vec![],
            files: vec![FileEntry { path: "v/0.state".into(), size: 35, crc32: 12345, origin: None }],
            checksum: None,
        }
    }

    #[test]
    fn a_manifest_carries_its_checksum_and_any_changed_value_is_found() {
        let raw = manifest(FORMAT_VERSION).encode().unwrap();
        let m = Metadata::decode(&raw, "file:///ck/chk-7", "file:///ck/chk-7/_metadata").unwrap();
        assert_eq!(m.files[0].size, 35);
        let text = String::from_utf8(raw).unwrap();
        // Still valid JSON, but a size, a checksum or the checksum itself changed.
        for (from, to) in [("\"size\": 35", "\"size\": 37"), ("12345", "12344"), ("crc32:", "crc32:0")] {
            let damaged = text.replacen(from, to, 1);
            assert_ne!(damaged, text);
            let e = Metadata::decode(damaged.as_bytes(), "file:///ck/chk-7", "file:///ck/chk-7/_metadata").unwrap_err();
            assert_eq!(e.to_string(), "file:///ck/chk-7/_metadata: checksum mismatch; the file is damaged");
        }
        // A format-2 manifest without its checksum is damaged too.
        let bare = serde_json::to_vec_pretty(&manifest(FORMAT_VERSION)).unwrap();
        assert!(Metadata::decode(&bare, "l", "l/_metadata").is_err());
    }

    #[test]
    fn a_format_1_manifest_has_no_checksum_and_is_still_read() {
        let raw = serde_json::to_vec_pretty(&manifest(1)).unwrap();
        assert_eq!(Metadata::decode(&raw, "l", "l/_metadata").unwrap().checkpoint_id, 7);
    }

    #[test]
    fn newer_formats_are_refused() {
        let m = Metadata {
            generation: 0,
            format_version: FORMAT_VERSION + 1,
            job_id: "j".into(),
            checkpoint_id: 1,
            kind: SnapshotKind::Savepoint,
            max_parallelism: 128,
            timestamp: String::new(),
            vertices: vec![],
            files: vec![],
            checksum: None,
        };
        let e = m.check_version("s3://b/sp").unwrap_err().to_string();
        assert!(e.contains("newer than this engine"), "{e}");
        assert!(m.vertex("x").is_none());
    }
}
