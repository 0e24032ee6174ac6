//! The `filesystem` connector, as a source and as a sink.
//!
//! Source: `path` is a file or a directory. A directory is read recursively,
//! in sorted path order, skipping every file or directory whose name starts
//! with `.` or `_` (in-progress and metadata files). Subtask `i` of `p` reads
//! the files whose index in that order is `i` modulo `p`. With
//! `source.monitor-interval` the source is unbounded: it lists the directory
//! again at that interval and reads each new file once (a file is never read
//! twice); files are then assigned by a stable hash of their path (FNV-1a of
//! the path's bytes, modulo `p`), so that a new file does not move old ones
//! between subtasks.
//!
//! Source checkpoints: a split is one file, with its state: queued, being read
//! (with the byte offset and line number just after the last record returned)
//! or done. A reader snapshots every file it owns, done ones included. After a
//! restore at parallelism `q`, subtask `j` owns the restored files whose path
//! hash is `j` modulo `q` (the same rule in bounded and monitored mode),
//! resumes each at its offset and carries the done ones on in its snapshots.
//! A bounded source reads exactly the files it listed when it first started;
//! a monitored one lists the path again and assigns new files by the hash
//! rule, and never reads a file that any restored split knows.
//!
//! Sink: writes part files into the `path` directory. A file being written is
//! named `.part-<job>-<subtask>-<n>.inprogress`; a file rolls at
//! `sink.rolling-policy.file-size` (default 128 MB), and, checked when rows
//! arrive, when it has been open for `sink.rolling-policy.rollover-interval`
//! or has had no rows for `sink.rolling-policy.inactivity-interval` (both 30
//! min by default, as in Flink). Rolled files stay hidden. Exactly-once output
//! is a two-phase commit: at a checkpoint barrier `pre_commit` closes the open
//! file and renames it and every rolled file to
//! `.part-<job>-<subtask>-<n>.pending`, and returns them as the committable;
//! when the checkpoint completes, `commit` renames each to
//! `part-<job>-<subtask>-<n>`. Without checkpoints, `finish()` makes every file
//! visible at the end (including files pre-committed and not yet committed).
//! `recover_sink` commits the restored checkpoint's committables and deletes
//! every other hidden part file of the job (`.part-<job>-<subtask>-<n>.pending`
//! or `.inprogress`), never another job's or a visible file. Readers ignore names starting with `.`, so no reader
//! ever sees a partial or uncommitted file. A subtask that received no rows
//! writes no file. Part numbers continue after those already in the
//! directory and after every restored subtask's counter, so neither a re-run
//! nor a restore at another parallelism ever reuses a name.
//!
//! S3: `path` may be `s3://bucket/prefix` (also `s3a://`, `s3p://`), reached
//! through `sluice-storage` with the engine's S3 settings
//! ([`SourceContext::s3`], [`SinkContext::s3`]). The source lists the objects
//! under the prefix (skipping every name with a path segment that starts with
//! `.` or `_`, as for directories), assigns and snapshots them exactly like
//! local files (a split names the object's `s3://bucket/key` URI) and reads
//! them with ranged GETs, so a restored split resumes at its byte offset. The
//! sink writes each part file as a multipart upload to
//! `<prefix>/part-<job>-<subtask>-<n>`; rolling prepares the upload (its data
//! is durable, the object does not exist yet), `pre_commit` prepares the open
//! one and returns the upload handles as the committable, and `commit`
//! completes them: a part becomes visible only then, atomically, and
//! completing again is a no-op. `finish()` completes everything. Part numbers
//! continue after the visible parts of the job and subtask and after the
//! restored counters. `recover_sink` completes the committables and aborts
//! this job's pending uploads under the prefix. AWS S3 lists pending uploads
//! by prefix; MinIO lists them only for an exact key, so recovery also asks
//! for the exact keys the job's subtasks would have used next (the
//! [`S3_PROBE_PARTS`] part numbers after each subtask's last visible part and
//! after each restored counter, for the subtasks of the old and the new
//! parallelism). Uploads it cannot find stay invisible and cost storage until
//! MinIO drops them after 24 h (`MINIO_API_STALE_UPLOADS_EXPIRY`) or an AWS
//! lifecycle rule aborts them.
//!
//! All local file-system access goes through the few functions of [`fsio`],
//! and all S3 access through [`s3io`].

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::format::{Decoder, Encoder, Format, RecordError, csv::CSV_OPTIONS, json::JSON_OPTIONS};
use crate::options::Options;
use sluice_storage::{S3Options, Storage, StorageError, Upload, UploadHandle};

use crate::state::{Dec, Enc, TAG_FS_COMMITTABLE, TAG_FS_S3_COMMITTABLE, TAG_FS_SINK_STATE, TAG_FS_SPLIT};
use crate::{ConnectorError, SinkContext, SinkWriter, SourceContext, SourceEvent, SourceReader};
use sluice_format::types::{ColType, column_types};

mod s3io;

use s3io::S3Root;

const DEFAULT_ROLL_SIZE: u64 = 128 << 20;
/// On S3 recovery, how many part numbers are asked for by exact key after
/// each subtask's last visible part and after each restored counter (MinIO
/// lists pending multipart uploads only for exact keys).
pub(crate) const S3_PROBE_PARTS: u64 = 4;
/// At most this many exact-key lookups per recovery.
const S3_MAX_PROBES: usize = 2048;
/// Flink's defaults of `sink.rolling-policy.rollover-interval` and
/// `sink.rolling-policy.inactivity-interval`.
const DEFAULT_ROLLOVER_INTERVAL: Duration = Duration::from_secs(30 * 60);
const DEFAULT_INACTIVITY_INTERVAL: Duration = Duration::from_secs(30 * 60);

pub(crate) fn supported_options() -> String {
    format!(
        "'path', 'format', 'source.monitor-interval', 'sink.rolling-policy.file-size', \
'sink.rolling-policy.rollover-interval', 'sink.rolling-policy.check-interval', \
'sink.rolling-policy.inactivity-interval', and the format options {JSON_OPTIONS}, {CSV_OPTIONS}"
    )
}

#[derive(Debug, Clone)]
pub(crate) struct FsConfig {
    /// The local path, or the `s3://` URI as written.
    path: PathBuf,
    /// Whether `path` is an S3 URI.
    s3: bool,
    format: Format,
    monitor_interval: Option<Duration>,
    roll_size: u64,
    rollover_interval: Duration,
    inactivity_interval: Duration,
    types: Vec<ColType>,
}

impl FsConfig {
    pub(crate) fn parse(o: &Options<'_>, schema: &SchemaRef) -> Result<Self, ConnectorError> {
        let raw = o.required("path", "a file or directory path")?.trim();
        let s3 = s3io::is_s3(raw);
        if s3 {
            // Syntax only (bucket name, no '..'); no I/O.
            S3Root::open(raw, &S3Options::default()).map_err(|e| o.error(format!("option 'path': {e}")))?;
        }
        let path = PathBuf::from(raw);
        let format = Format::parse(o)?;
        let monitor_interval = o.duration("source.monitor-interval")?;
        if monitor_interval == Some(Duration::ZERO) {
            return Err(o.error("option 'source.monitor-interval' must be greater than zero"));
        }
        let roll_size = o.memory_size("sink.rolling-policy.file-size")?.unwrap_or(DEFAULT_ROLL_SIZE);
        if roll_size == 0 {
            return Err(o.error("option 'sink.rolling-policy.file-size' must be greater than zero"));
        }
        let rollover_interval =
            o.duration("sink.rolling-policy.rollover-interval")?.unwrap_or(DEFAULT_ROLLOVER_INTERVAL);
        let inactivity_interval =
            o.duration("sink.rolling-policy.inactivity-interval")?.unwrap_or(DEFAULT_INACTIVITY_INTERVAL);
        // Sluice checks the time-based policies whenever rows arrive and closes
        // the open file at every checkpoint, so it needs no timer.
        o.duration("sink.rolling-policy.check-interval")?;
        let types = column_types(schema.fields(), "filesystem").map_err(|m| o.error(m))?;
        o.check_all_used("filesystem", &supported_options())?;
        Ok(FsConfig { path, s3, format, monitor_interval, roll_size, rollover_interval, inactivity_interval, types })
    }
}

/// The file-system operations of the connector, and nothing else touches the
/// file system: listing, reading from an offset, writing, renaming, deleting.
pub(crate) mod fsio {
    use std::fs::File;
    use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
    use std::path::{Path, PathBuf};

    use super::is_hidden;

    /// Every visible file under `root` (or `root` itself if it is a file), sorted.
    pub(crate) fn list_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
        let meta = std::fs::metadata(root)?;
        if meta.is_file() {
            return Ok(vec![root.to_path_buf()]);
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
                    out.push(p);
                }
            }
        }
        out.sort();
        Ok(out)
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
}

/// An I/O error on `path`; a storage error carried inside it (reading an S3
/// object) becomes [`ConnectorError::Storage`], whose message names the URI.
fn connector_io_error(table: &str, path: &Path, e: std::io::Error) -> ConnectorError {
    if e.get_ref().is_some_and(|inner| inner.is::<StorageError>()) {
        match e.into_inner().map(|inner| inner.downcast::<StorageError>()) {
            Some(Ok(source)) => return storage_error(table, *source),
            Some(Err(other)) => {
                return ConnectorError::Io {
                    table: table.to_string(),
                    path: path.to_path_buf(),
                    source: std::io::Error::other(other),
                };
            }
            None => {
                return ConnectorError::Io {
                    table: table.to_string(),
                    path: path.to_path_buf(),
                    source: std::io::Error::other("unknown error"),
                };
            }
        }
    }
    ConnectorError::Io { table: table.to_string(), path: path.to_path_buf(), source: e }
}

fn storage_error(table: &str, source: StorageError) -> ConnectorError {
    ConnectorError::Storage { table: table.to_string(), source }
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    let b = name.as_encoded_bytes();
    b.first().is_some_and(|c| *c == b'.' || *c == b'_')
}

/// FNV-1a of the path, for a stable file-to-subtask assignment.
fn path_hash(p: &Path) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in p.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(unix)]
fn path_to_bytes(p: &Path) -> Result<Vec<u8>, String> {
    use std::os::unix::ffi::OsStrExt;
    Ok(p.as_os_str().as_bytes().to_vec())
}

#[cfg(unix)]
fn path_from_bytes(b: &[u8]) -> Result<PathBuf, String> {
    use std::os::unix::ffi::OsStrExt;
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(b)))
}

#[cfg(not(unix))]
fn path_to_bytes(p: &Path) -> Result<Vec<u8>, String> {
    p.to_str().map(|s| s.as_bytes().to_vec()).ok_or_else(|| format!("path {} is not UTF-8", p.display()))
}

#[cfg(not(unix))]
fn path_from_bytes(b: &[u8]) -> Result<PathBuf, String> {
    std::str::from_utf8(b).map(PathBuf::from).map_err(|e| format!("a path in a filesystem split is not UTF-8: {e}"))
}

/// Where a file of a source split stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileStatus {
    Queued = 0,
    Reading = 1,
    Done = 2,
}

/// One file of a source: the unit of its checkpoint state.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileSplit {
    path: PathBuf,
    status: FileStatus,
    /// The byte offset and the line number of the next unread record.
    offset: u64,
    line: u64,
}

impl FileSplit {
    fn encode(&self) -> Result<Vec<u8>, String> {
        Ok(Enc::new(TAG_FS_SPLIT)
            .u8(self.status as u8)
            .u64(self.offset)
            .u64(self.line)
            .bytes(&path_to_bytes(&self.path)?)?
            .finish())
    }

    fn decode(blob: &[u8]) -> Result<Self, String> {
        let mut d = Dec::new(blob, TAG_FS_SPLIT)?;
        let status = match d.u8()? {
            0 => FileStatus::Queued,
            1 => FileStatus::Reading,
            2 => FileStatus::Done,
            other => return Err(format!("a filesystem source split has the invalid status {other}")),
        };
        let offset = d.u64()?;
        let line = d.u64()?;
        let path = path_from_bytes(d.bytes()?)?;
        d.end()?;
        Ok(FileSplit { path, status, offset, line })
    }
}

/// A file to read, from `offset` (at line `line`).
struct QueuedFile {
    path: PathBuf,
    offset: u64,
    line: u64,
}

struct OpenFile {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    /// The byte offset and line number just after the last record read.
    offset: u64,
    line: u64,
}

pub(crate) struct FsSource {
    table: String,
    schema: SchemaRef,
    root: PathBuf,
    /// Set when `root` is an `s3://` URI.
    s3_root: Option<S3Root>,
    /// The engine's S3 settings, also for restored splits in other buckets.
    s3: S3Options,
    decoder: Decoder,
    ignore_parse_errors: bool,
    queue: VecDeque<QueuedFile>,
    /// Files already assigned, to this subtask or (after a restore) to any:
    /// a monitored source never queues them again.
    seen: HashSet<PathBuf>,
    /// Files this subtask owns and has read to the end.
    done: Vec<PathBuf>,
    current: Option<OpenFile>,
    monitor: Option<(Duration, Instant)>,
    /// Restored from a checkpoint: files are owned by the path hash.
    restored: bool,
    subtask: u64,
    parallelism: u64,
    had_files: bool,
    skipped: u64,
    batch_size: usize,
    line_buf: Vec<u8>,
}

impl FsSource {
    pub(crate) fn new(ctx: &SourceContext, cfg: FsConfig) -> Result<Self, ConnectorError> {
        let decoder = Decoder::new(&cfg.format, ctx.schema.fields(), "filesystem")
            .map_err(|m| ConnectorError::InvalidOption { table: ctx.table.clone(), message: m })?;
        let s3_root = if cfg.s3 {
            Some(S3Root::open(&cfg.path.to_string_lossy(), &ctx.s3).map_err(|e| storage_error(&ctx.table, e))?)
        } else {
            None
        };
        let mut s = FsSource {
            table: ctx.table.clone(),
            schema: ctx.schema.clone(),
            root: cfg.path.clone(),
            s3_root,
            s3: ctx.s3.clone(),
            decoder,
            ignore_parse_errors: cfg.format.ignore_parse_errors(),
            queue: VecDeque::new(),
            seen: HashSet::new(),
            done: Vec::new(),
            current: None,
            monitor: cfg.monitor_interval.map(|d| (d, Instant::now())),
            restored: ctx.restored_splits.is_some(),
            subtask: ctx.subtask as u64,
            parallelism: ctx.parallelism.max(1) as u64,
            had_files: false,
            skipped: 0,
            batch_size: ctx.batch_size.max(1),
            line_buf: Vec::new(),
        };
        match &ctx.restored_splits {
            Some(blobs) => {
                s.restore(blobs)?;
                // A bounded source reads what it listed when it first started;
                // a monitored one also looks for new files.
                if s.monitor.is_some() {
                    s.scan()?;
                }
            }
            None => s.scan()?,
        }
        Ok(s)
    }

    fn io_error(&self, path: &Path, e: std::io::Error) -> ConnectorError {
        connector_io_error(&self.table, path, e)
    }

    /// Every visible file under the path, sorted: local paths, or the
    /// `s3://bucket/key` URIs of objects.
    fn list_files(&self) -> Result<Vec<PathBuf>, ConnectorError> {
        match &self.s3_root {
            Some(root) => root.list_files().map_err(|e| storage_error(&self.table, e)),
            None => fsio::list_files(&self.root).map_err(|e| self.io_error(&self.root, e)),
        }
    }

    /// Opens a split's file (local) or object (`s3://` URI) at `offset`.
    fn open_read(&self, path: &Path, offset: u64) -> Result<Box<dyn BufRead + Send>, ConnectorError> {
        if !s3io::is_s3_path(path) {
            return fsio::open_read(path, offset).map_err(|e| self.io_error(path, e));
        }
        let uri = path.to_string_lossy();
        let opened = match &self.s3_root {
            Some(root) => root.open_read(&uri, offset, &self.s3),
            // A split restored after `path` changed from S3 to local.
            None => S3Root::open(&uri, &self.s3).and_then(|root| root.open_read(&uri, offset, &self.s3)),
        };
        opened.map_err(|e| storage_error(&self.table, e))
    }

    fn owns_by_hash(&self, path: &Path) -> bool {
        path_hash(path) % self.parallelism == self.subtask
    }

    /// Takes the restored files this subtask owns by the path hash; every
    /// restored file counts as seen.
    fn restore(&mut self, blobs: &[Vec<u8>]) -> Result<(), ConnectorError> {
        let mut files: BTreeMap<PathBuf, FileSplit> = BTreeMap::new();
        for blob in blobs {
            let f = FileSplit::decode(blob)
                .map_err(|message| ConnectorError::State { table: self.table.clone(), message })?;
            // A file is listed once; should it be listed twice, done wins,
            // then the furthest offset.
            let replace = match files.get(&f.path) {
                None => true,
                Some(old) => old.status != FileStatus::Done && (f.status == FileStatus::Done || f.offset > old.offset),
            };
            if replace {
                files.insert(f.path.clone(), f);
            }
        }
        for (path, f) in files {
            self.seen.insert(path.clone());
            if !self.owns_by_hash(&path) {
                continue;
            }
            if f.status == FileStatus::Done {
                self.done.push(path);
            } else {
                self.queue.push_back(QueuedFile { path, offset: f.offset, line: f.line });
                self.had_files = true;
            }
        }
        Ok(())
    }

    /// Lists the path and queues this subtask's files not seen before.
    fn scan(&mut self) -> Result<(), ConnectorError> {
        let files = self.list_files()?;
        let by_hash = self.monitor.is_some() || self.restored;
        for (i, f) in files.into_iter().enumerate() {
            let owner = if by_hash { path_hash(&f) } else { i as u64 } % self.parallelism;
            if owner == self.subtask && !self.seen.contains(&f) {
                self.seen.insert(f.clone());
                self.queue.push_back(QueuedFile { path: f, offset: 0, line: 0 });
                self.had_files = true;
            }
        }
        Ok(())
    }

    fn parse_error(&self, path: &Path, line: u64, message: String) -> ConnectorError {
        ConnectorError::Parse { table: self.table.clone(), path: path.to_path_buf(), line, message }
    }

    fn batch(&mut self) -> Result<SourceEvent, ConnectorError> {
        let b = self
            .decoder
            .finish(&self.schema)
            .map_err(|m| ConnectorError::Arrow { table: self.table.clone(), message: m })?;
        Ok(SourceEvent::Batch(b))
    }

    /// Reads records from the open file until the batch is full or the file
    /// ends. Returns true at the end of the file, which is then done.
    fn read_some(&mut self) -> Result<bool, ConnectorError> {
        let Some(mut f) = self.current.take() else {
            return Ok(true);
        };
        let mut eof = false;
        while self.decoder.len() < self.batch_size {
            self.line_buf.clear();
            let n = f.reader.read_until(b'\n', &mut self.line_buf).map_err(|e| self.io_error(&f.path, e))?;
            if n == 0 {
                eof = true;
                break;
            }
            let mut consumed = n as u64;
            let start_line = f.line + 1;
            let mut lines = 1;
            while self.decoder.needs_more(&self.line_buf) {
                let more = f.reader.read_until(b'\n', &mut self.line_buf).map_err(|e| self.io_error(&f.path, e))?;
                if more == 0 {
                    break;
                }
                consumed += more as u64;
                lines += 1;
            }
            let result = match std::str::from_utf8(&self.line_buf) {
                Ok(text) => {
                    let text = text.strip_suffix('\n').unwrap_or(text);
                    let text = text.strip_suffix('\r').unwrap_or(text);
                    self.decoder.decode(text)
                }
                Err(e) => Err(RecordError::Malformed(format!("invalid UTF-8: {e}"))),
            };
            match result {
                Ok(_) => {}
                Err(RecordError::Malformed(_)) if self.ignore_parse_errors => self.skipped += 1,
                Err(RecordError::Malformed(m) | RecordError::Field(m)) => {
                    return Err(self.parse_error(&f.path, start_line, m));
                }
            }
            // The record is consumed: a snapshot now resumes after it.
            f.offset += consumed;
            f.line += lines;
        }
        if eof {
            self.done.push(f.path);
        } else {
            self.current = Some(f);
        }
        Ok(eof)
    }
}

impl SourceReader for FsSource {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        loop {
            if self.current.is_none() {
                if let Some(q) = self.queue.pop_front() {
                    let reader = self.open_read(&q.path, q.offset)?;
                    self.current = Some(OpenFile { path: q.path, reader, offset: q.offset, line: q.line });
                } else if self.decoder.len() > 0 {
                    return self.batch();
                } else if let Some((interval, last)) = self.monitor {
                    let since = last.elapsed();
                    if since >= interval {
                        self.monitor = Some((interval, Instant::now()));
                        self.scan()?;
                        if !self.queue.is_empty() {
                            continue;
                        }
                    } else {
                        std::thread::sleep((interval - since).min(Duration::from_millis(50)));
                    }
                    return Ok(SourceEvent::Idle);
                } else {
                    return Ok(SourceEvent::End);
                }
            }
            let eof = self.read_some()?;
            if self.decoder.len() >= self.batch_size || (eof && self.decoder.len() > 0) {
                return self.batch();
            }
        }
    }

    fn has_work(&self) -> bool {
        self.had_files
    }

    fn skipped_records(&self) -> u64 {
        self.skipped
    }

    /// One split per file this subtask owns: done, being read (at the offset
    /// after the last record returned) and queued. Every poll returns its
    /// records as soon as it has decoded them, so none is buffered between
    /// polls.
    fn snapshot(&self) -> Result<Vec<Vec<u8>>, ConnectorError> {
        let state = |e: String| ConnectorError::State { table: self.table.clone(), message: e };
        if self.decoder.len() > 0 {
            return Err(state("a snapshot was taken in the middle of a poll".into()));
        }
        let mut out = Vec::with_capacity(self.done.len() + self.queue.len() + 1);
        for path in &self.done {
            let split = FileSplit { path: path.clone(), status: FileStatus::Done, offset: 0, line: 0 };
            out.push(split.encode().map_err(state)?);
        }
        if let Some(f) = &self.current {
            let split = FileSplit { path: f.path.clone(), status: FileStatus::Reading, offset: f.offset, line: f.line };
            out.push(split.encode().map_err(state)?);
        }
        for q in &self.queue {
            let split = FileSplit { path: q.path.clone(), status: FileStatus::Queued, offset: q.offset, line: q.line };
            out.push(split.encode().map_err(state)?);
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------

/// Where a part file's bytes go.
enum PartOut {
    /// A hidden local `.part-….inprogress` file.
    Local { tmp: PathBuf, out: fsio::OutFile },
    /// A multipart upload to `<prefix>/part-…`, invisible until completed.
    S3(Upload),
}

/// The part file being written.
struct PartFile {
    /// The final name, `part-<job>-<subtask>-<n>`.
    name: String,
    out: PartOut,
    size: u64,
    opened: Instant,
    last_write: Instant,
}

/// A part file closed (rolled) and not yet pre-committed: a local
/// `.inprogress` file (`upload` None) or a prepared upload.
struct ClosedPart {
    name: String,
    upload: Option<UploadHandle>,
}

fn in_progress_name(name: &str) -> String {
    format!(".{name}.inprogress")
}

fn pending_name(name: &str) -> String {
    format!(".{name}.pending")
}

/// The job, subtask and part number of a part-file name of any state
/// (`part-…`, `.part-….inprogress`, `.part-….pending`), and whether it is
/// hidden. The job id may itself contain `-`; subtask and part are the last
/// two numbers.
fn parse_part_name(name: &str) -> Option<(&str, u64, u64, bool)> {
    let (rest, hidden) = match name.strip_prefix('.') {
        Some(h) => (h.strip_suffix(".inprogress").or_else(|| h.strip_suffix(".pending"))?, true),
        None => (name, false),
    };
    let rest = rest.strip_prefix("part-")?;
    let mut it = rest.rsplitn(3, '-');
    let part = it.next()?;
    let subtask = it.next()?;
    let job = it.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(part) || !digits(subtask) || job.is_empty() {
        return None;
    }
    Some((job, subtask.parse().ok()?, part.parse().ok()?, hidden))
}

/// One committed-to-be file: its hidden pending name and its final name,
/// both in the sink directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    pending: String,
    fin: String,
}

/// One file of a committable.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PendingPart {
    /// A local hidden pending file, renamed at commit.
    File(Pending),
    /// A prepared multipart upload to `<prefix>/<fin>`, completed at commit.
    Upload { fin: String, handle: UploadHandle },
}

fn encode_committable(files: &[PendingPart]) -> Result<Vec<u8>, String> {
    let Some(first) = files.first() else {
        return Ok(Vec::new());
    };
    let count = u32::try_from(files.len()).map_err(|_| "too many files in one committable".to_string())?;
    let s3 = matches!(first, PendingPart::Upload { .. });
    let mut e = Enc::new(if s3 { TAG_FS_S3_COMMITTABLE } else { TAG_FS_COMMITTABLE }).u32(count);
    for f in files {
        e = match f {
            PendingPart::File(p) if !s3 => e.bytes(p.pending.as_bytes())?.bytes(p.fin.as_bytes())?,
            PendingPart::Upload { fin, handle } if s3 => e.bytes(fin.as_bytes())?.bytes(&handle.to_bytes())?,
            _ => return Err("a committable cannot mix local files and S3 uploads".into()),
        };
    }
    Ok(e.finish())
}

fn decode_committable(blob: &[u8]) -> Result<Vec<PendingPart>, String> {
    if blob.is_empty() {
        return Ok(Vec::new());
    }
    let s3 = blob.get(1) == Some(&TAG_FS_S3_COMMITTABLE);
    let mut d = Dec::new(blob, if s3 { TAG_FS_S3_COMMITTABLE } else { TAG_FS_COMMITTABLE })?;
    let count = d.u32()?;
    let mut out = Vec::new();
    let name = |b: &[u8]| -> Result<String, String> {
        let s = std::str::from_utf8(b).map_err(|e| format!("a file name in a committable is not UTF-8: {e}"))?;
        // Only plain names inside the sink directory.
        if s.is_empty() || s.contains('/') || s.contains('\\') || s == "." || s == ".." {
            return Err(format!("a committable names the invalid file '{s}'"));
        }
        Ok(s.to_string())
    };
    for _ in 0..count {
        if s3 {
            let fin = name(d.bytes()?)?;
            let handle = UploadHandle::from_bytes(d.bytes()?).map_err(|e| e.to_string())?;
            if !handle.target_uri().ends_with(&format!("/{fin}")) {
                return Err(format!(
                    "a committable's upload to {} does not match its file '{fin}'",
                    handle.target_uri()
                ));
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

/// Renames a pending file to its final name; a file already committed
/// (pending gone, final present) is left alone.
fn commit_file(table: &str, dir: &Path, f: &Pending) -> Result<(), ConnectorError> {
    let pending = dir.join(&f.pending);
    let fin = dir.join(&f.fin);
    let io = |path: &Path, e: std::io::Error| ConnectorError::Io {
        table: table.to_string(),
        path: path.to_path_buf(),
        source: e,
    };
    if fsio::exists(&pending).map_err(|e| io(&pending, e))? {
        return fsio::rename(&pending, &fin).map_err(|e| io(&pending, e));
    }
    if fsio::exists(&fin).map_err(|e| io(&fin, e))? {
        return Ok(());
    }
    Err(io(
        &pending,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("cannot commit: neither the pending file nor the final file {} exists", fin.display()),
        ),
    ))
}

/// Commits one part: renames a local pending file (`s3` None), or completes
/// a multipart upload (idempotent: an upload already completed is fine).
fn commit_part(table: &str, dir: &Path, s3: Option<&Storage>, part: &PendingPart) -> Result<(), ConnectorError> {
    let mismatch = |message: String| ConnectorError::State { table: table.to_string(), message };
    match (part, s3) {
        (PendingPart::File(f), None) => commit_file(table, dir, f),
        (PendingPart::Upload { handle, .. }, Some(storage)) => {
            storage.complete_recorded(handle).map_err(|e| storage_error(table, e))
        }
        (PendingPart::File(f), Some(_)) => Err(mismatch(format!(
            "a committable names the local file '{}', but the sink path {} is on S3",
            f.pending,
            dir.display()
        ))),
        (PendingPart::Upload { handle, .. }, None) => Err(mismatch(format!(
            "a committable names an S3 upload to {}, but the sink path {} is local",
            handle.target_uri(),
            dir.display()
        ))),
    }
}

pub(crate) struct FsSink {
    table: String,
    /// The local directory, or the `s3://` URI as written.
    dir: PathBuf,
    /// The storage at the sink's prefix when `dir` is an `s3://` URI.
    s3: Option<Storage>,
    prefix: String,
    encoder: Encoder,
    roll_size: u64,
    rollover_interval: Duration,
    inactivity_interval: Duration,
    current: Option<PartFile>,
    /// Closed files, still `.inprogress` or prepared uploads, not yet pre-committed.
    closed: Vec<ClosedPart>,
    /// Files pre-committed and not yet known to be committed; `finish()`
    /// commits them.
    uncommitted: Vec<PendingPart>,
    next_part: u64,
    buf: Vec<u8>,
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

fn decode_sink_state(blob: &[u8]) -> Result<u64, String> {
    let mut d = Dec::new(blob, TAG_FS_SINK_STATE)?;
    let next = d.u64()?;
    d.end()?;
    Ok(next)
}

/// The storage at an S3 sink's prefix.
fn sink_storage(ctx: &SinkContext, cfg: &FsConfig) -> Result<Storage, ConnectorError> {
    S3Root::open(&cfg.path.to_string_lossy(), &ctx.s3).map(|r| r.storage()).map_err(|e| storage_error(&ctx.table, e))
}

impl FsSink {
    pub(crate) fn new(ctx: &SinkContext, cfg: FsConfig) -> Result<Self, ConnectorError> {
        let dir = cfg.path.clone();
        let io = |e| ConnectorError::Io { table: ctx.table.clone(), path: dir.clone(), source: e };
        let job = sanitize(&ctx.job_id);
        let prefix = format!("part-{job}-{}-", ctx.subtask);
        // Part numbers start above every restored subtask's counter and above
        // every part of this job and subtask already in the directory.
        let mut next_part = 0;
        for blob in ctx.restored_states.iter().flatten().filter(|b| !b.is_empty()) {
            let n = decode_sink_state(blob)
                .map_err(|message| ConnectorError::State { table: ctx.table.clone(), message })?;
            next_part = next_part.max(n);
        }
        let (s3, names) = if cfg.s3 {
            let storage = sink_storage(ctx, &cfg)?;
            // Fails here, naming the URI, on a missing bucket or bad credentials.
            let listed = storage.list("").map_err(|e| storage_error(&ctx.table, e))?;
            let names = listed.into_iter().map(|o| o.path).filter(|p| !p.contains('/')).collect();
            (Some(storage), names)
        } else {
            fsio::create_dir_all(&dir).map_err(io)?;
            (None, fsio::list_names(&dir).map_err(io)?)
        };
        for name in names {
            if let Some((j, s, n, _)) = parse_part_name(&name)
                && j == job
                && s == ctx.subtask as u64
            {
                next_part = next_part.max(n + 1);
            }
        }
        let encoder = Encoder::new(&cfg.format, ctx.schema.fields(), cfg.types.clone());
        Ok(FsSink {
            table: ctx.table.clone(),
            dir,
            s3,
            prefix,
            encoder,
            roll_size: cfg.roll_size,
            rollover_interval: cfg.rollover_interval,
            inactivity_interval: cfg.inactivity_interval,
            current: None,
            closed: Vec::new(),
            uncommitted: Vec::new(),
            next_part,
            buf: Vec::new(),
        })
    }

    fn io(&self, path: &Path, e: std::io::Error) -> ConnectorError {
        connector_io_error(&self.table, path, e)
    }

    /// Closes the open file: a local file is flushed and synced and stays
    /// hidden; an upload is prepared (durable, still invisible).
    fn close_current(&mut self) -> Result<(), ConnectorError> {
        if let Some(f) = self.current.take() {
            let upload = match f.out {
                PartOut::Local { tmp, out } => {
                    out.close().map_err(|e| self.io(&tmp, e))?;
                    None
                }
                PartOut::S3(upload) => Some(upload.prepare().map_err(|e| storage_error(&self.table, e))?),
            };
            self.closed.push(ClosedPart { name: f.name, upload });
        }
        Ok(())
    }

    /// A name not used by any file in the directory (on S3: by any object).
    fn next_name(&mut self) -> Result<String, ConnectorError> {
        loop {
            let name = format!("{}{}", self.prefix, self.next_part);
            self.next_part += 1;
            let taken = match &self.s3 {
                Some(storage) => storage.exists(&name).map_err(|e| storage_error(&self.table, e))?,
                None => {
                    let mut taken = false;
                    for candidate in [name.clone(), in_progress_name(&name), pending_name(&name)] {
                        let path = self.dir.join(&candidate);
                        taken |= fsio::exists(&path).map_err(|e| self.io(&path, e))?;
                    }
                    taken
                }
            };
            if !taken {
                return Ok(name);
            }
        }
    }

    fn sync_dir(&self) -> Result<(), ConnectorError> {
        match self.s3 {
            Some(_) => Ok(()),
            None => fsio::sync_dir(&self.dir).map_err(|e| self.io(&self.dir, e)),
        }
    }
}

impl SinkWriter for FsSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if let Some(f) = &self.current
            && (f.opened.elapsed() >= self.rollover_interval || f.last_write.elapsed() >= self.inactivity_interval)
        {
            self.close_current()?;
        }
        self.buf.clear();
        self.encoder.encode(&self.table, batch, &mut self.buf)?;
        if self.current.is_none() {
            let name = self.next_name()?;
            let out = match &self.s3 {
                Some(storage) => PartOut::S3(storage.begin_upload(&name).map_err(|e| storage_error(&self.table, e))?),
                None => {
                    let tmp = self.dir.join(in_progress_name(&name));
                    let out = fsio::create(&tmp).map_err(|e| self.io(&tmp, e))?;
                    PartOut::Local { tmp, out }
                }
            };
            let now = Instant::now();
            self.current = Some(PartFile { name, out, size: 0, opened: now, last_write: now });
        }
        let table = &self.table;
        if let Some(f) = &mut self.current {
            match &mut f.out {
                PartOut::Local { tmp, out } => {
                    out.write_all(&self.buf).map_err(|e| connector_io_error(table, tmp, e))?;
                }
                PartOut::S3(upload) => upload.write(&self.buf).map_err(|e| storage_error(table, e))?,
            }
            f.size += self.buf.len() as u64;
            f.last_write = Instant::now();
            if f.size >= self.roll_size {
                self.close_current()?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ConnectorError> {
        self.close_current()?;
        for c in std::mem::take(&mut self.closed) {
            match c.upload {
                Some(handle) => {
                    let part = PendingPart::Upload { fin: c.name, handle };
                    commit_part(&self.table, &self.dir, self.s3.as_ref(), &part)?;
                }
                None => {
                    let tmp = self.dir.join(in_progress_name(&c.name));
                    fsio::rename(&tmp, &self.dir.join(&c.name)).map_err(|e| self.io(&tmp, e))?;
                }
            }
        }
        for f in std::mem::take(&mut self.uncommitted) {
            commit_part(&self.table, &self.dir, self.s3.as_ref(), &f)?;
        }
        self.sync_dir()
    }

    fn pre_commit(&mut self, _checkpoint_id: u64) -> Result<Vec<u8>, ConnectorError> {
        self.close_current()?;
        let mut files = Vec::with_capacity(self.closed.len());
        for c in std::mem::take(&mut self.closed) {
            match c.upload {
                Some(handle) => files.push(PendingPart::Upload { fin: c.name, handle }),
                None => {
                    let tmp = self.dir.join(in_progress_name(&c.name));
                    let pending = pending_name(&c.name);
                    fsio::rename(&tmp, &self.dir.join(&pending)).map_err(|e| self.io(&tmp, e))?;
                    files.push(PendingPart::File(Pending { pending, fin: c.name }));
                }
            }
        }
        if files.is_empty() {
            return Ok(Vec::new());
        }
        self.sync_dir()?;
        let blob = encode_committable(&files)
            .map_err(|message| ConnectorError::State { table: self.table.clone(), message })?;
        self.uncommitted.extend(files);
        Ok(blob)
    }

    fn commit(&mut self, committables: &[Vec<u8>]) -> Result<(), ConnectorError> {
        let mut any = false;
        for blob in committables {
            let files = decode_committable(blob)
                .map_err(|message| ConnectorError::State { table: self.table.clone(), message })?;
            for f in &files {
                commit_part(&self.table, &self.dir, self.s3.as_ref(), f)?;
                self.uncommitted.retain(|u| u != f);
                any = true;
            }
        }
        if any {
            self.sync_dir()?;
        }
        Ok(())
    }

    fn snapshot_state(&self) -> Result<Vec<u8>, ConnectorError> {
        Ok(Enc::new(TAG_FS_SINK_STATE).u64(self.next_part).finish())
    }
}

/// [`crate::recover_sink`] for a filesystem sink: commits `committables`,
/// then deletes every hidden part file of this job (pending or in progress)
/// that they do not name; on S3, aborts this job's pending uploads.
pub(crate) fn recover(ctx: &SinkContext, cfg: &FsConfig, committables: &[Vec<u8>]) -> Result<(), ConnectorError> {
    if cfg.s3 {
        return recover_s3(ctx, cfg, committables);
    }
    let dir = &cfg.path;
    let io = |path: &Path, e| ConnectorError::Io { table: ctx.table.clone(), path: path.to_path_buf(), source: e };
    let mut keep = HashSet::new();
    for blob in committables {
        let files =
            decode_committable(blob).map_err(|message| ConnectorError::State { table: ctx.table.clone(), message })?;
        for f in files {
            commit_part(&ctx.table, dir, None, &f)?;
            if let PendingPart::File(f) = f {
                keep.insert(f.pending);
            }
        }
    }
    if !fsio::exists(dir).map_err(|e| io(dir, e))? {
        return Ok(());
    }
    let job = sanitize(&ctx.job_id);
    for name in fsio::list_names(dir).map_err(|e| io(dir, e))? {
        if let Some((j, _, _, true)) = parse_part_name(&name)
            && j == job
            && !keep.contains(&name)
        {
            let path = dir.join(&name);
            fsio::delete(&path).map_err(|e| io(&path, e))?;
        }
    }
    fsio::sync_dir(dir).map_err(|e| io(dir, e))
}

/// [`recover`] on S3: completes the committables' uploads, then aborts every
/// pending multipart upload of this job directly under the prefix that can
/// be found: by prefix (AWS S3) and by the exact keys of the next
/// [`S3_PROBE_PARTS`] part numbers of each subtask (MinIO), see the module
/// docs.
fn recover_s3(ctx: &SinkContext, cfg: &FsConfig, committables: &[Vec<u8>]) -> Result<(), ConnectorError> {
    let table = ctx.table.as_str();
    let serr = |e| storage_error(table, e);
    let state = |message| ConnectorError::State { table: table.to_string(), message };
    let storage = sink_storage(ctx, cfg)?;
    for blob in committables {
        for f in decode_committable(blob).map_err(state)? {
            commit_part(table, &cfg.path, Some(&storage), &f)?;
        }
    }
    let job = sanitize(&ctx.job_id);
    // The part number after each subtask's last visible part of this job.
    let mut next_visible: BTreeMap<u64, u64> = BTreeMap::new();
    for o in storage.list("").map_err(serr)? {
        if let Some((j, s, n, false)) = parse_part_name(&o.path)
            && j == job
        {
            let next = next_visible.entry(s).or_insert(0);
            *next = (*next).max(n + 1);
        }
    }
    let mut counters = Vec::new();
    for blob in ctx.restored_states.iter().flatten().filter(|b| !b.is_empty()) {
        counters.push(decode_sink_state(blob).map_err(state)?);
    }
    counters.sort_unstable();
    counters.dedup();
    let old_parallelism = ctx.restored_states.as_ref().map_or(0, Vec::len);
    let subtasks = ctx.parallelism.max(old_parallelism).max(1) as u64;
    let mut probes = BTreeSet::new();
    'probe: for s in (0..subtasks).chain(next_visible.keys().copied()) {
        let first = next_visible.get(&s).copied().unwrap_or(0);
        for start in std::iter::once(first).chain(counters.iter().copied()) {
            for n in start..start.saturating_add(S3_PROBE_PARTS) {
                if probes.len() >= S3_MAX_PROBES {
                    break 'probe;
                }
                probes.insert(format!("part-{job}-{s}-{n}"));
            }
        }
    }
    let mut pending = storage.list_pending_uploads("").map_err(serr)?;
    for name in &probes {
        pending.extend(storage.list_pending_uploads(name).map_err(serr)?);
    }
    let base = storage.uri();
    let mut aborted = HashSet::new();
    for h in pending {
        let Some(name) = h.target_uri().strip_prefix(base.as_str()).and_then(|r| r.strip_prefix('/')) else {
            continue;
        };
        let ours = matches!(parse_part_name(name), Some((j, _, _, false)) if j == job);
        if ours && !name.contains('/') && aborted.insert(h.to_bytes()) {
            storage.abort_recorded(&h).map_err(serr)?;
        }
    }
    Ok(())
}
