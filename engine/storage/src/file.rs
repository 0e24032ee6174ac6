//! The local-directory backend. Writes are atomic: data goes to a hidden file in the target's
//! directory, is fsynced, and renamed over the target; the directory is fsynced after the rename.
//! Names starting with `.` are temporary or staging files and are invisible to readers.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::handle::HandleState;
use crate::store::{ObjectStore, UploadSink};
use crate::{ObjectInfo, StorageError, UploadHandle, location, unique_suffix};

const STAGING_MARK: &str = ".inprogress-";

pub(crate) struct FileStore {
    root: PathBuf,
}

impl FileStore {
    pub(crate) fn new(root: PathBuf) -> Self {
        FileStore { root }
    }

    fn path(&self, key: &str) -> PathBuf {
        if key.is_empty() { self.root.clone() } else { self.root.join(key) }
    }
}

fn path_uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

fn io_err(p: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |e| StorageError::from_io(path_uri(p), e)
}

/// Like `io_err`, but a missing file is an I/O error too (for paths that must exist).
fn io_err_strict(p: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io { uri: path_uri(p), source }
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

fn parent_of(p: &Path) -> Result<&Path, StorageError> {
    p.parent().ok_or_else(|| StorageError::InvalidUri { uri: path_uri(p), reason: "it has no parent directory".into() })
}

/// Makes a rename or create in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err_strict(dir))
}

fn create_dirs(dir: &Path) -> Result<(), StorageError> {
    fs::create_dir_all(dir).map_err(io_err_strict(dir))
}

/// Walks `dir` recursively; `visit(path, metadata)` sees every file. Hidden directories are
/// skipped; hidden files are passed on when `include_hidden`.
fn walk(dir: &Path, include_hidden: bool, visit: &mut dyn FnMut(&Path, &fs::Metadata)) -> Result<(), StorageError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        // Deleted concurrently, or never there: nothing to list.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StorageError::Io { uri: path_uri(dir), source: e }),
    };
    for entry in entries {
        let entry = entry.map_err(io_err_strict(dir))?;
        let path = entry.path();
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StorageError::Io { uri: path_uri(&path), source: e }),
        };
        let hidden = is_hidden(&entry.file_name());
        if meta.is_dir() {
            if !hidden {
                walk(&path, include_hidden, visit)?;
            }
        } else if !hidden || include_hidden {
            visit(&path, &meta);
        }
    }
    Ok(())
}

impl FileStore {
    /// The key of a path under the root.
    fn key_of(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .map(|r| r.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"))
            .unwrap_or_else(|_| p.to_string_lossy().into_owned())
    }
}

impl ObjectStore for FileStore {
    fn parent(&self) -> Option<std::sync::Arc<dyn ObjectStore>> {
        let up = self.root.parent()?;
        Some(std::sync::Arc::new(FileStore::new(up.to_path_buf())))
    }

    fn uri(&self, key: &str) -> String {
        path_uri(&self.path(key))
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let path = self.path(key);
        let dir = parent_of(&path)?;
        create_dirs(dir)?;
        let tmp = dir.join(format!(".{}.tmp-{}", location::file_name(key), unique_suffix()));
        let written = (|| {
            let mut f = File::create_new(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(StorageError::Io { uri: path_uri(&path), source: e });
        }
        sync_dir(dir)
    }

    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool, StorageError> {
        let path = self.path(key);
        let dir = parent_of(&path)?;
        create_dirs(dir)?;
        // A complete temporary file is hard-linked to the name: link(2) fails if the name
        // exists, so readers never see a partial object and only one writer wins.
        let tmp = dir.join(format!(".{}.tmp-{}", location::file_name(key), unique_suffix()));
        let linked = (|| {
            let mut f = File::create_new(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            match fs::hard_link(&tmp, &path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        })();
        let _ = fs::remove_file(&tmp);
        let created = linked.map_err(|e| StorageError::Io { uri: path_uri(&path), source: e })?;
        if created {
            sync_dir(dir)?;
        }
        Ok(created)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let path = self.path(key);
        fs::read(&path).map_err(io_err(&path))
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        let path = self.path(key);
        let mut f = File::open(&path).map_err(io_err(&path))?;
        let mut out = Vec::new();
        f.seek(SeekFrom::Start(offset)).and_then(|_| f.take(len).read_to_end(&mut out)).map_err(io_err(&path))?;
        Ok(out)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let path = self.path(prefix);
        let mut out = Vec::new();
        match fs::metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::Io { uri: path_uri(&path), source: e }),
            Ok(m) if m.is_file() => {
                if !path.file_name().is_some_and(is_hidden) {
                    out.push(ObjectInfo { path: prefix.to_string(), size: m.len() });
                }
            }
            Ok(_) => walk(&path, false, &mut |p, m| out.push(ObjectInfo { path: self.key_of(p), size: m.len() }))?,
        }
        Ok(out)
    }

    fn list_dirs(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        let path = self.path(dir);
        let entries = match fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(StorageError::Io { uri: path_uri(&path), source: e }),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err_strict(&path))?;
            let name = entry.file_name();
            if !is_hidden(&name) && fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
                out.push(name.to_string_lossy().into_owned());
            }
        }
        Ok(out)
    }

    fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path(key);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StorageError::Io { uri: path_uri(&path), source: e }),
        }
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StorageError::Io { uri: path_uri(&path), source: e }),
            _ => Ok(()),
        }
    }

    fn delete_prefix(&self, prefix: &str) -> Result<(), StorageError> {
        let path = self.path(prefix);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::Io { uri: path_uri(&path), source: e }),
        };
        let removed = if !meta.is_dir() {
            fs::remove_file(&path)
        } else if prefix.is_empty() {
            // Keep the root directory itself: it is the storage's base.
            fs::read_dir(&path).and_then(|entries| {
                for entry in entries {
                    let p = entry?.path();
                    if fs::symlink_metadata(&p)?.is_dir() { fs::remove_dir_all(&p)? } else { fs::remove_file(&p)? }
                }
                Ok(())
            })
        } else {
            fs::remove_dir_all(&path)
        };
        match removed {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StorageError::Io { uri: path_uri(&path), source: e }),
            _ => Ok(()),
        }
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let (src, dst) = (self.path(from), self.path(to));
        if !fs::metadata(&src).map_err(io_err(&src))?.is_file() {
            return Err(StorageError::NotFound { uri: path_uri(&src) });
        }
        let dst_dir = parent_of(&dst)?;
        create_dirs(dst_dir)?;
        fs::rename(&src, &dst).map_err(io_err(&src))?;
        sync_dir(dst_dir)?;
        match src.parent() {
            Some(src_dir) if src_dir != dst_dir => sync_dir(src_dir),
            _ => Ok(()),
        }
    }

    fn check(&self, prefix: &str) -> Result<(), StorageError> {
        create_dirs(&self.path(prefix))
    }

    fn begin_upload(&self, key: &str) -> Result<Box<dyn UploadSink>, StorageError> {
        let target = self.path(key);
        let dir = parent_of(&target)?;
        create_dirs(dir)?;
        let staging = dir.join(format!(".{}{STAGING_MARK}{}", location::file_name(key), unique_suffix()));
        let file = File::create_new(&staging).map_err(io_err_strict(&staging))?;
        Ok(Box::new(FileUpload { target, staging, file: BufWriter::with_capacity(1 << 20, file) }))
    }

    fn complete_recorded(&self, h: &UploadHandle) -> Result<(), StorageError> {
        let HandleState::File { target_path, staging_path } = &h.state else {
            return Err(h.wrong_backend("local file"));
        };
        let (target, staging) = (Path::new(target_path), Path::new(staging_path));
        match fs::rename(staging, target) {
            Ok(()) => sync_dir(parent_of(target)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if fs::metadata(target).is_ok_and(|m| m.is_file()) {
                    // Completed before (e.g. by the process that crashed after committing).
                    Ok(())
                } else {
                    Err(StorageError::UploadLost {
                        uri: path_uri(target),
                        detail: format!("its staging file {} is gone", staging.display()),
                    })
                }
            }
            Err(e) => Err(StorageError::Io { uri: path_uri(target), source: e }),
        }
    }

    fn abort_recorded(&self, h: &UploadHandle) -> Result<(), StorageError> {
        let HandleState::File { staging_path, .. } = &h.state else {
            return Err(h.wrong_backend("local file"));
        };
        remove_if_present(Path::new(staging_path))
    }

    fn list_pending_uploads(&self, prefix: &str) -> Result<Vec<UploadHandle>, StorageError> {
        let path = self.path(prefix);
        let mut out = Vec::new();
        let mut visit = |p: &Path, _: &fs::Metadata| {
            let Some(name) = p.file_name().and_then(|n| n.to_str()) else { return };
            let Some(idx) = name.rfind(STAGING_MARK) else { return };
            let (Some(target_name), Some(dir)) = (name.get(1..idx), p.parent()) else { return };
            if name.starts_with('.') && !target_name.is_empty() {
                let target = dir.join(target_name);
                out.push(UploadHandle::new(
                    path_uri(&target),
                    HandleState::File {
                        target_path: target.to_string_lossy().into_owned(),
                        staging_path: p.to_string_lossy().into_owned(),
                    },
                ));
            }
        };
        if fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            walk(&path, true, &mut visit)?;
        } else if let Some(dir) = path.parent() {
            // `prefix` names an object: its staging files sit next to it.
            let own = format!(".{}{STAGING_MARK}", location::file_name(prefix));
            walk_flat(dir, &mut |p, m| {
                if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&own)) {
                    visit(p, m)
                }
            })?;
        }
        Ok(out)
    }
}

/// The files (not directories) directly in `dir`.
fn walk_flat(dir: &Path, visit: &mut dyn FnMut(&Path, &fs::Metadata)) -> Result<(), StorageError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => return Ok(()),
        Err(e) => return Err(StorageError::Io { uri: path_uri(dir), source: e }),
    };
    for entry in entries {
        let p = entry.map_err(io_err_strict(dir))?.path();
        if let Ok(m) = fs::metadata(&p)
            && m.is_file()
        {
            visit(&p, &m);
        }
    }
    Ok(())
}

fn remove_if_present(p: &Path) -> Result<(), StorageError> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StorageError::Io { uri: path_uri(p), source: e }),
        _ => Ok(()),
    }
}

struct FileUpload {
    target: PathBuf,
    staging: PathBuf,
    file: BufWriter<File>,
}

impl UploadSink for FileUpload {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.file.write_all(data).map_err(io_err_strict(&self.staging))
    }

    fn prepare(self: Box<Self>) -> Result<UploadHandle, StorageError> {
        let FileUpload { target, staging, file } = *self;
        let synced = file.into_inner().map_err(|e| e.into_error()).and_then(|f| f.sync_all());
        if let Err(e) = synced {
            let _ = fs::remove_file(&staging);
            return Err(StorageError::Io { uri: path_uri(&staging), source: e });
        }
        sync_dir(parent_of(&staging)?)?;
        Ok(UploadHandle::new(
            path_uri(&target),
            HandleState::File {
                target_path: target.to_string_lossy().into_owned(),
                staging_path: staging.to_string_lossy().into_owned(),
            },
        ))
    }

    fn abort(self: Box<Self>) -> Result<(), StorageError> {
        let FileUpload { staging, file, .. } = *self;
        drop(file);
        remove_if_present(&staging)
    }
}
