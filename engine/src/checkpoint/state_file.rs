//! Writing a subtask's state file: its sections in order, streamed to
//! storage once they pass one upload part, with the file's CRC-32 and the
//! section index that its manifest entry carries (see `store` for where the
//! file lives).

use sluice_storage::{Storage, StorageError, Upload};

use super::metadata::{FileEntry, Section, SectionKind, SubtaskSnapshot, SubtaskState, state_file};

/// Writes a subtask's snapshot as its state file (none if it is empty) and
/// returns its manifest entries.
pub fn write_subtask(
    dir: &Storage,
    vertex_uid: &str,
    subtask: usize,
    snap: &SubtaskSnapshot,
) -> Result<(SubtaskState, Option<FileEntry>), StorageError> {
    let mut file = StateFile::new(dir, vertex_uid, subtask);
    for (kind, data) in &snap.sections {
        file.add(kind.clone(), data)?;
    }
    file.finish()
}

/// A subtask's state file written section by section, as the sections are
/// encoded. A small file is put whole; once its sections pass one upload part
/// ([`sluice_storage::PART_SIZE`]), the file is streamed, so that a large
/// state is never held in one buffer as large as itself. Dropped unfinished,
/// nothing becomes visible (the upload is aborted).
pub struct StateFile<'d> {
    dir: &'d Storage,
    rel: String,
    subtask: usize,
    sections: Vec<Section>,
    size: u64,
    crc: crc32fast::Hasher,
    /// The bytes so far, while the file is small.
    pending: Vec<u8>,
    upload: Option<Upload>,
}

impl<'d> StateFile<'d> {
    pub fn new(dir: &'d Storage, vertex_uid: &str, subtask: usize) -> Self {
        StateFile {
            dir,
            rel: state_file(vertex_uid, subtask),
            subtask,
            sections: Vec::new(),
            size: 0,
            crc: crc32fast::Hasher::new(),
            pending: Vec::new(),
            upload: None,
        }
    }

    /// Appends a section.
    pub fn add(&mut self, kind: SectionKind, data: &[u8]) -> Result<(), StorageError> {
        self.sections.push(Section { kind, offset: self.size, len: data.len() as u64, file: None });
        self.size += data.len() as u64;
        self.crc.update(data);
        if let Some(upload) = &mut self.upload {
            return upload.write(data);
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() > sluice_storage::PART_SIZE {
            let mut upload = self.dir.begin_upload(&self.rel)?;
            upload.write(&std::mem::take(&mut self.pending))?;
            self.upload = Some(upload);
        }
        Ok(())
    }

    /// Makes the file visible and returns its manifest entries; a file
    /// without sections is not written.
    pub fn finish(self) -> Result<(SubtaskState, Option<FileEntry>), StorageError> {
        let StateFile { dir, rel, subtask, sections, size, crc, pending, upload } = self;
        if sections.is_empty() {
            return Ok((SubtaskState { subtask, file: None, sections }, None));
        }
        match upload {
            Some(upload) => dir.complete_recorded(&upload.prepare()?)?,
            None => dir.put(&rel, &pending)?,
        }
        let entry = FileEntry { path: rel.clone(), size, crc32: crc.finalize(), origin: None };
        Ok((SubtaskState { subtask, file: Some(rel), sections }, Some(entry)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file's bytes as one buffer, and its section index.
    fn concatenated(snap: &SubtaskSnapshot) -> (Vec<u8>, Vec<Section>) {
        let mut bytes = Vec::new();
        let mut index = Vec::new();
        for (kind, data) in &snap.sections {
            index.push(Section { kind: kind.clone(), offset: bytes.len() as u64, len: data.len() as u64, file: None });
            bytes.extend_from_slice(data);
        }
        (bytes, index)
    }

    #[test]
    fn small_and_large_state_files_hold_their_sections_in_order_with_their_checksum() {
        let big: Vec<u8> = (0..sluice_storage::PART_SIZE + 1000).map(|i| (i % 251) as u8).collect();
        for first in [b"keyed".to_vec(), big] {
            let dir = Storage::in_memory().child("job/chk-1");
            let mut snap = SubtaskSnapshot::default();
            snap.sections.push((SectionKind::Entries { operator: 0, key_group: 3 }, first));
            snap.sections.push((SectionKind::Split, Vec::new()));
            snap.sections.push((SectionKind::Split, b"split".to_vec()));
            let (state, entry) = write_subtask(&dir, "v", 0, &snap).unwrap();
            let entry = entry.unwrap();
            let (bytes, index) = concatenated(&snap);
            assert_eq!(state.sections, index, "an empty split keeps its section");
            assert_eq!((entry.size, entry.crc32), (bytes.len() as u64, crc32fast::hash(&bytes)));
            assert_eq!(dir.get("v/0.state").unwrap(), bytes);
        }
    }

    #[test]
    fn a_state_file_dropped_unfinished_leaves_nothing() {
        let dir = Storage::in_memory().child("job/chk-1");
        let mut file = StateFile::new(&dir, "v", 0);
        file.add(SectionKind::Split, &vec![7u8; sluice_storage::PART_SIZE + 1]).unwrap();
        drop(file);
        assert!(dir.get("v/0.state").unwrap_err().is_not_found());
        let (state, entry) = StateFile::new(&dir, "v", 1).finish().unwrap();
        assert!(entry.is_none() && state.file.is_none(), "a subtask without sections writes no file");
    }
}
