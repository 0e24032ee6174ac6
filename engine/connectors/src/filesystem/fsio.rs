//! The file-system operations of the connector, and nothing else touches the
//! file system: listing, reading from an offset, writing, renaming, deleting.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::is_hidden;

/// Every visible file under `root` (or `root` itself if it is a file), sorted,
/// with its size in bytes.
pub(crate) fn list_files(root: &Path) -> std::io::Result<Vec<(PathBuf, u64)>> {
    let meta = std::fs::metadata(root)?;
    if meta.is_file() {
        return Ok(vec![(root.to_path_buf(), meta.len())]);
    }
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if is_hidden(&entry.file_name()) {
                continue;
            }
            let ft = entry.file_type()?;
            let p = entry.path();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() || (ft.is_symlink() && p.is_file()) {
                let size = std::fs::metadata(&p)?.len();
                out.push((p, size));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The size in bytes of the file at `path`.
pub(crate) fn file_size(path: &Path) -> std::io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

/// The names of the entries of one directory (not recursive), hidden
/// ones included; names that are not UTF-8 are left out.
pub(crate) fn list_names(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string() {
            out.push(name);
        }
    }
    Ok(out)
}

/// Opens `path` for reading from byte `offset`.
pub(crate) fn open_read(path: &Path, offset: u64) -> std::io::Result<Box<dyn BufRead + Send>> {
    let mut file = File::open(path)?;
    if offset > 0 {
        file.seek(SeekFrom::Start(offset))?;
    }
    Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
}

/// A file being written.
pub(crate) struct OutFile {
    writer: BufWriter<File>,
}

impl OutFile {
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Flushes and syncs: the bytes are durable when this returns.
    pub(crate) fn close(self) -> std::io::Result<()> {
        let file = self.writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

/// Creates (or truncates) `path` for writing.
pub(crate) fn create(path: &Path) -> std::io::Result<OutFile> {
    let file = File::options().write(true).create(true).truncate(true).open(path)?;
    Ok(OutFile { writer: BufWriter::with_capacity(1 << 20, file) })
}

pub(crate) fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

pub(crate) fn rename(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)
}

pub(crate) fn delete(path: &Path) -> std::io::Result<()> {
    std::fs::remove_file(path)
}

pub(crate) fn exists(path: &Path) -> std::io::Result<bool> {
    path.try_exists()
}

/// Makes the renames in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
