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
//! All file-system access goes through the few functions of [`fsio`], so that
//! another storage backend is a local change.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::format::{Decoder, Encoder, Format, RecordError, csv::CSV_OPTIONS, json::JSON_OPTIONS};
use crate::options::Options;
use crate::state::{Dec, Enc, TAG_FS_COMMITTABLE, TAG_FS_SINK_STATE, TAG_FS_SPLIT};
use crate::types::{ColType, column_types};
use crate::{ConnectorError, SinkContext, SinkWriter, SourceContext, SourceEvent, SourceReader};

const DEFAULT_ROLL_SIZE: u64 = 128 << 20;
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
    path: PathBuf,
    format: Format,
    monitor_interval: Option<Duration>,
    roll_size: u64,
    rollover_interval: Duration,
    inactivity_interval: Duration,
    types: Vec<ColType>,
}

impl FsConfig {
    pub(crate) fn parse(o: &Options<'_>, schema: &SchemaRef) -> Result<Self, ConnectorError> {
        let path = PathBuf::from(o.required("path", "a file or directory path")?.trim());
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
        Ok(FsConfig { path, format, monitor_interval, roll_size, rollover_interval, inactivity_interval, types })
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
        let mut s = FsSource {
            table: ctx.table.clone(),
            schema: ctx.schema.clone(),
            root: cfg.path.clone(),
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
        ConnectorError::Io { table: self.table.clone(), path: path.to_path_buf(), source: e }
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
        let files = fsio::list_files(&self.root).map_err(|e| self.io_error(&self.root, e))?;
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
                    let reader = fsio::open_read(&q.path, q.offset).map_err(|e| self.io_error(&q.path, e))?;
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

/// The part file being written.
struct PartFile {
    /// The final name, `part-<job>-<subtask>-<n>`.
    name: String,
    tmp: PathBuf,
    out: fsio::OutFile,
    size: u64,
    opened: Instant,
    last_write: Instant,
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

fn encode_committable(files: &[Pending]) -> Result<Vec<u8>, String> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let count = u32::try_from(files.len()).map_err(|_| "too many files in one committable".to_string())?;
    let mut e = Enc::new(TAG_FS_COMMITTABLE).u32(count);
    for f in files {
        e = e.bytes(f.pending.as_bytes())?.bytes(f.fin.as_bytes())?;
    }
    Ok(e.finish())
}

fn decode_committable(blob: &[u8]) -> Result<Vec<Pending>, String> {
    if blob.is_empty() {
        return Ok(Vec::new());
    }
    let mut d = Dec::new(blob, TAG_FS_COMMITTABLE)?;
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
        let pending = name(d.bytes()?)?;
        let fin = name(d.bytes()?)?;
        out.push(Pending { pending, fin });
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

pub(crate) struct FsSink {
    table: String,
    dir: PathBuf,
    prefix: String,
    encoder: Encoder,
    roll_size: u64,
    rollover_interval: Duration,
    inactivity_interval: Duration,
    current: Option<PartFile>,
    /// Final names of closed files, still `.inprogress`, not yet pre-committed.
    closed: Vec<String>,
    /// Files pre-committed and not yet known to be committed; `finish()`
    /// commits them.
    uncommitted: Vec<Pending>,
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

impl FsSink {
    pub(crate) fn new(ctx: &SinkContext, cfg: FsConfig) -> Result<Self, ConnectorError> {
        let dir = cfg.path.clone();
        let io = |e| ConnectorError::Io { table: ctx.table.clone(), path: dir.clone(), source: e };
        fsio::create_dir_all(&dir).map_err(io)?;
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
        for name in fsio::list_names(&dir).map_err(io)? {
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
        ConnectorError::Io { table: self.table.clone(), path: path.to_path_buf(), source: e }
    }

    /// Flushes and syncs the open file; it stays hidden.
    fn close_current(&mut self) -> Result<(), ConnectorError> {
        if let Some(f) = self.current.take() {
            f.out.close().map_err(|e| self.io(&f.tmp, e))?;
            self.closed.push(f.name);
        }
        Ok(())
    }

    /// A name not used by any file in the directory.
    fn next_name(&mut self) -> Result<String, ConnectorError> {
        loop {
            let name = format!("{}{}", self.prefix, self.next_part);
            self.next_part += 1;
            let mut taken = false;
            for candidate in [name.clone(), in_progress_name(&name), pending_name(&name)] {
                let path = self.dir.join(&candidate);
                taken |= fsio::exists(&path).map_err(|e| self.io(&path, e))?;
            }
            if !taken {
                return Ok(name);
            }
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
            let tmp = self.dir.join(in_progress_name(&name));
            let out = fsio::create(&tmp).map_err(|e| self.io(&tmp, e))?;
            let now = Instant::now();
            self.current = Some(PartFile { name, tmp, out, size: 0, opened: now, last_write: now });
        }
        let table = &self.table;
        if let Some(f) = &mut self.current {
            f.out.write_all(&self.buf).map_err(|e| ConnectorError::Io {
                table: table.clone(),
                path: f.tmp.clone(),
                source: e,
            })?;
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
        for name in std::mem::take(&mut self.closed) {
            let tmp = self.dir.join(in_progress_name(&name));
            fsio::rename(&tmp, &self.dir.join(&name)).map_err(|e| self.io(&tmp, e))?;
        }
        for f in std::mem::take(&mut self.uncommitted) {
            commit_file(&self.table, &self.dir, &f)?;
        }
        fsio::sync_dir(&self.dir).map_err(|e| self.io(&self.dir, e))
    }

    fn pre_commit(&mut self, _checkpoint_id: u64) -> Result<Vec<u8>, ConnectorError> {
        self.close_current()?;
        let mut files = Vec::with_capacity(self.closed.len());
        for name in std::mem::take(&mut self.closed) {
            let tmp = self.dir.join(in_progress_name(&name));
            let pending = pending_name(&name);
            fsio::rename(&tmp, &self.dir.join(&pending)).map_err(|e| self.io(&tmp, e))?;
            files.push(Pending { pending, fin: name });
        }
        if files.is_empty() {
            return Ok(Vec::new());
        }
        fsio::sync_dir(&self.dir).map_err(|e| self.io(&self.dir, e))?;
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
                commit_file(&self.table, &self.dir, f)?;
                self.uncommitted.retain(|u| u != f);
                any = true;
            }
        }
        if any {
            fsio::sync_dir(&self.dir).map_err(|e| self.io(&self.dir, e))?;
        }
        Ok(())
    }

    fn snapshot_state(&self) -> Result<Vec<u8>, ConnectorError> {
        Ok(Enc::new(TAG_FS_SINK_STATE).u64(self.next_part).finish())
    }
}

/// [`crate::recover_sink`] for a filesystem sink: commits `committables`,
/// then deletes every hidden part file of this job (pending or in progress)
/// that they do not name.
pub(crate) fn recover(ctx: &SinkContext, cfg: &FsConfig, committables: &[Vec<u8>]) -> Result<(), ConnectorError> {
    let dir = &cfg.path;
    let io = |path: &Path, e| ConnectorError::Io { table: ctx.table.clone(), path: path.to_path_buf(), source: e };
    let mut keep = HashSet::new();
    for blob in committables {
        let files =
            decode_committable(blob).map_err(|message| ConnectorError::State { table: ctx.table.clone(), message })?;
        for f in files {
            commit_file(&ctx.table, dir, &f)?;
            keep.insert(f.pending);
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
