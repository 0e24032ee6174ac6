//! The filesystem source: lists a path and reads its files, each file one
//! split of the source's checkpoint state.
//!
//! `path` is a file or a directory. A directory is read recursively, in
//! sorted path order, skipping every file or directory whose name starts
//! with `.` or `_` (in-progress and metadata files). Subtask `i` of `p` reads
//! the files whose index in that order is `i` modulo `p`. With
//! `source.monitor-interval` the source is unbounded: it lists the directory
//! again at that interval and reads each new file once (a file is never read
//! twice); files are then assigned by a stable hash of their path (FNV-1a of
//! the path's bytes, modulo `p`), so that a new file does not move old ones
//! between subtasks.
//!
//! On S3 the source lists the objects under the prefix (skipping every name
//! with a path segment that starts with `.` or `_`, as for directories),
//! assigns and snapshots them exactly like local files (a split names the
//! object's `s3://bucket/key` URI) and reads them with ranged GETs, so a
//! restored split resumes at its byte offset.
//!
//! Checkpoints: a split is one file, with its state: queued, being read
//! (with the byte offset and line number just after the last record returned)
//! or done. A reader snapshots every file it owns, done ones included. After a
//! restore at parallelism `q`, subtask `j` owns the restored files whose path
//! hash is `j` modulo `q` (the same rule in bounded and monitored mode),
//! resumes each at its offset and carries the done ones on in its snapshots.
//! A bounded source reads exactly the files it listed when it first started;
//! a monitored one lists the path again and assigns new files by the hash
//! rule, and never reads a file that any restored split knows.
//!
//! Lag: the records in the bytes left unread, by the mean bytes per record
//! read so far (see the `lag` module); unknown until a record is read.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use sluice_storage::S3Options;

use super::lag::{BytesPerRecord, unread_bytes};
use super::s3io::{self, S3Root};
use super::{FsConfig, connector_io_error, fsio, storage_error};
use crate::format::{Decoder, RecordError};
use crate::state::StateError;
use crate::state::filesystem::{FileSplit, FileStatus};
use crate::{ConnectorError, SourceContext, SourceEvent, SourceReader};

/// FNV-1a of the path, for a stable file-to-subtask assignment.
fn path_hash(p: &Path) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in p.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A file to read, from `offset` (at line `line`).
struct QueuedFile {
    path: PathBuf,
    offset: u64,
    line: u64,
    /// Its size in bytes when listed (or restored); `None` when unknown.
    size: Option<u64>,
}

struct OpenFile {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    /// The byte offset and line number just after the last record read.
    offset: u64,
    line: u64,
    size: Option<u64>,
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
    /// Every file of the source this reader knows, any subtask's: listed, or
    /// in the restored splits. Its size is the source's splits.
    known: HashSet<PathBuf>,
    current: Option<OpenFile>,
    monitor: Option<(Duration, Instant)>,
    /// Restored from a checkpoint: files are owned by the path hash.
    restored: bool,
    subtask: u64,
    parallelism: u64,
    had_files: bool,
    skipped: u64,
    /// The bytes and records read so far, for the lag estimate.
    per_record: BytesPerRecord,
    batch_size: usize,
    /// `execution.batch-size`: what [`SourceReader::set_batch_size`] never exceeds.
    max_batch: usize,
    line_buf: Vec<u8>,
}

impl FsSource {
    pub(crate) fn new(ctx: &SourceContext, cfg: FsConfig) -> Result<Self, ConnectorError> {
        let decoder = Decoder::new(&cfg.format, ctx.schema.fields(), "filesystem")
            .map_err(|e| ConnectorError::InvalidOption { table: ctx.table.clone(), message: e.to_string() })?;
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
            known: HashSet::new(),
            current: None,
            monitor: cfg.monitor_interval.map(|d| (d, Instant::now())),
            restored: ctx.restored_splits.is_some(),
            subtask: ctx.subtask as u64,
            parallelism: ctx.parallelism.max(1) as u64,
            had_files: false,
            skipped: 0,
            per_record: BytesPerRecord::default(),
            batch_size: ctx.batch_size.max(1),
            max_batch: ctx.batch_size.max(1),
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

    /// Every visible file under the path, sorted, with its size: local paths,
    /// or the `s3://bucket/key` URIs of objects.
    fn list_files(&self) -> Result<Vec<(PathBuf, u64)>, ConnectorError> {
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
                .map_err(|source| ConnectorError::State { table: self.table.clone(), source })?;
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
        let mut listed: Option<BTreeMap<PathBuf, u64>> = None;
        for (path, f) in files {
            self.seen.insert(path.clone());
            self.known.insert(path.clone());
            if !self.owns_by_hash(&path) {
                continue;
            }
            if f.status == FileStatus::Done {
                self.done.push(path);
            } else {
                let size = self.restored_size(&path, &mut listed);
                self.queue.push_back(QueuedFile { path, offset: f.offset, line: f.line, size });
                self.had_files = true;
            }
        }
        Ok(())
    }

    /// The size of a restored file still to read, for the lag: a local file's
    /// by its metadata, an object's by one listing of the path (`listed`,
    /// made on first use). Unknown when it cannot be found: the lag is then
    /// unknown, and reading the file reports any real error.
    fn restored_size(&self, path: &Path, listed: &mut Option<BTreeMap<PathBuf, u64>>) -> Option<u64> {
        if !s3io::is_s3_path(path) {
            return fsio::file_size(path).ok();
        }
        let sizes =
            listed.get_or_insert_with(|| self.list_files().map(|l| l.into_iter().collect()).unwrap_or_default());
        sizes.get(path).copied()
    }

    /// Lists the path and queues this subtask's files not seen before.
    fn scan(&mut self) -> Result<(), ConnectorError> {
        let files = self.list_files()?;
        let by_hash = self.monitor.is_some() || self.restored;
        for (i, (f, size)) in files.into_iter().enumerate() {
            self.known.insert(f.clone());
            let owner = if by_hash { path_hash(&f) } else { i as u64 } % self.parallelism;
            if owner == self.subtask && !self.seen.contains(&f) {
                self.seen.insert(f.clone());
                self.queue.push_back(QueuedFile { path: f, offset: 0, line: 0, size: Some(size) });
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
            .map_err(|source| ConnectorError::Batch { table: self.table.clone(), source })?;
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
            self.per_record.read(consumed);
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
    fn read_only(&mut self, columns: &[bool]) {
        self.decoder.read_only(columns);
    }

    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        loop {
            if self.current.is_none() {
                if let Some(q) = self.queue.pop_front() {
                    let reader = self.open_read(&q.path, q.offset)?;
                    self.current =
                        Some(OpenFile { path: q.path, reader, offset: q.offset, line: q.line, size: q.size });
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

    /// The records in the bytes left unread (the open file's rest and every
    /// queued file's) by the mean bytes per record so far: see the `lag`
    /// module. Unknown until a record is read, never a guessed 0.
    fn pending_records(&self) -> Option<u64> {
        let open = self.current.iter().map(|f| (f.size, f.offset));
        let queued = self.queue.iter().map(|q| (q.size, q.offset));
        self.per_record.pending(unread_bytes(open.chain(queued)))
    }

    /// Every file it knows (listed, or restored), whichever subtask owns it.
    fn splits(&self) -> Option<u64> {
        Some(self.known.len() as u64)
    }

    /// One split per file this subtask owns: done, being read (at the offset
    /// after the last record returned) and queued. Every poll returns its
    /// records as soon as it has decoded them, so none is buffered between
    /// polls.
    fn set_batch_size(&mut self, rows: usize) {
        self.batch_size = rows.clamp(1, self.max_batch);
    }

    fn snapshot(&self) -> Result<Vec<Vec<u8>>, ConnectorError> {
        let state = |source| ConnectorError::State { table: self.table.clone(), source };
        if self.decoder.len() > 0 {
            return Err(state(StateError::MidPoll));
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
