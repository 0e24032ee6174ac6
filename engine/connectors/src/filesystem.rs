//! The `filesystem` connector, as a source and as a sink.
//!
//! Source: `path` is a file or a directory. A directory is read recursively,
//! in sorted path order, skipping every file or directory whose name starts
//! with `.` or `_` (in-progress and metadata files). Subtask `i` of `p` reads
//! the files whose index in that order is `i` modulo `p`. With
//! `source.monitor-interval` the source is unbounded: it lists the directory
//! again at that interval and reads each new file once (a file is never read
//! twice); files are then assigned by a stable hash of their path, so that a
//! new file does not move old ones between subtasks.
//!
//! Sink: writes part files into the `path` directory. A file being written is
//! named `.part-<job>-<subtask>-<n>.inprogress`; a file rolls at
//! `sink.rolling-policy.file-size` (default 128 MB) and then waits, still
//! hidden, until `finish()`, which renames every file to
//! `part-<job>-<subtask>-<n>`. Readers ignore names starting with `.`, so no
//! reader ever sees a partial file. A subtask that received no rows writes no
//! file. Part numbers continue after those already in the directory, so a
//! re-run never overwrites earlier output.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::format::{Decoder, Encoder, Format, RecordError, csv::CSV_OPTIONS, json::JSON_OPTIONS};
use crate::options::Options;
use crate::types::{ColType, column_types};
use crate::{ConnectorError, SinkContext, SinkWriter, SourceContext, SourceEvent, SourceReader};

const DEFAULT_ROLL_SIZE: u64 = 128 << 20;

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
        // Time-based rolling only matters once files are committed by
        // checkpoints; until then every file becomes visible at the end.
        for k in [
            "sink.rolling-policy.rollover-interval",
            "sink.rolling-policy.check-interval",
            "sink.rolling-policy.inactivity-interval",
        ] {
            o.duration(k)?;
        }
        let types = column_types(schema.fields(), "filesystem").map_err(|m| o.error(m))?;
        o.check_all_used("filesystem", &supported_options())?;
        Ok(FsConfig { path, format, monitor_interval, roll_size, types })
    }
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    let b = name.as_encoded_bytes();
    b.first().is_some_and(|c| *c == b'.' || *c == b'_')
}

/// Every visible file under `root` (or `root` itself if it is a file), sorted.
fn list_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
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

/// FNV-1a of the path, for a stable file-to-subtask assignment.
fn path_hash(p: &Path) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in p.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

struct OpenFile {
    path: PathBuf,
    reader: BufReader<File>,
    line: u64,
}

pub(crate) struct FsSource {
    table: String,
    schema: SchemaRef,
    root: PathBuf,
    decoder: Decoder,
    ignore_parse_errors: bool,
    queue: VecDeque<PathBuf>,
    seen: HashSet<PathBuf>,
    current: Option<OpenFile>,
    monitor: Option<(Duration, Instant)>,
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
            current: None,
            monitor: cfg.monitor_interval.map(|d| (d, Instant::now())),
            subtask: ctx.subtask as u64,
            parallelism: ctx.parallelism.max(1) as u64,
            had_files: false,
            skipped: 0,
            batch_size: ctx.batch_size.max(1),
            line_buf: Vec::new(),
        };
        s.scan()?;
        Ok(s)
    }

    fn io_error(&self, path: &Path, e: std::io::Error) -> ConnectorError {
        ConnectorError::Io { table: self.table.clone(), path: path.to_path_buf(), source: e }
    }

    /// Lists the path and queues this subtask's files not seen before.
    fn scan(&mut self) -> Result<(), ConnectorError> {
        let files = list_files(&self.root).map_err(|e| self.io_error(&self.root, e))?;
        let monitored = self.monitor.is_some();
        for (i, f) in files.into_iter().enumerate() {
            let owner = if monitored { path_hash(&f) } else { i as u64 } % self.parallelism;
            if owner == self.subtask && self.seen.insert(f.clone()) {
                self.queue.push_back(f);
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
    /// ends. Returns true at the end of the file.
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
            f.line += 1;
            let start_line = f.line;
            while self.decoder.needs_more(&self.line_buf) {
                let more = f.reader.read_until(b'\n', &mut self.line_buf).map_err(|e| self.io_error(&f.path, e))?;
                if more == 0 {
                    break;
                }
                f.line += 1;
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
        }
        if !eof {
            self.current = Some(f);
        }
        Ok(eof)
    }
}

impl SourceReader for FsSource {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        loop {
            if self.current.is_none() {
                if let Some(path) = self.queue.pop_front() {
                    let file = File::open(&path).map_err(|e| self.io_error(&path, e))?;
                    self.current = Some(OpenFile { path, reader: BufReader::with_capacity(1 << 16, file), line: 0 });
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
}

// ---------------------------------------------------------------------------

struct PartFile {
    tmp: PathBuf,
    fin: PathBuf,
    writer: BufWriter<File>,
    size: u64,
}

pub(crate) struct FsSink {
    table: String,
    dir: PathBuf,
    prefix: String,
    encoder: Encoder,
    roll_size: u64,
    current: Option<PartFile>,
    pending: Vec<(PathBuf, PathBuf)>,
    next_part: u64,
    buf: Vec<u8>,
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

impl FsSink {
    pub(crate) fn new(ctx: &SinkContext, cfg: FsConfig) -> Result<Self, ConnectorError> {
        let dir = cfg.path.clone();
        std::fs::create_dir_all(&dir).map_err(|e| ConnectorError::Io {
            table: ctx.table.clone(),
            path: dir.clone(),
            source: e,
        })?;
        let prefix = format!("part-{}-{}-", sanitize(&ctx.job_id), ctx.subtask);
        // Continue numbering after existing parts of this job and subtask.
        let mut next_part = 0;
        let entries = std::fs::read_dir(&dir).map_err(|e| ConnectorError::Io {
            table: ctx.table.clone(),
            path: dir.clone(),
            source: e,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let name = name.strip_prefix('.').unwrap_or(&name);
            let name = name.strip_suffix(".inprogress").unwrap_or(name);
            if let Some(n) = name.strip_prefix(&prefix).and_then(|n| n.parse::<u64>().ok()) {
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
            current: None,
            pending: Vec::new(),
            next_part,
            buf: Vec::new(),
        })
    }

    fn io(&self, path: &Path, e: std::io::Error) -> ConnectorError {
        ConnectorError::Io { table: self.table.clone(), path: path.to_path_buf(), source: e }
    }

    fn close_current(&mut self) -> Result<(), ConnectorError> {
        if let Some(mut f) = self.current.take() {
            f.writer.flush().map_err(|e| self.io(&f.tmp, e))?;
            self.pending.push((f.tmp, f.fin));
        }
        Ok(())
    }
}

impl SinkWriter for FsSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.buf.clear();
        self.encoder.encode(&self.table, batch, &mut self.buf)?;
        if self.current.is_none() {
            let name = format!("{}{}", self.prefix, self.next_part);
            self.next_part += 1;
            let tmp = self.dir.join(format!(".{name}.inprogress"));
            let fin = self.dir.join(&name);
            let file =
                File::options().write(true).create(true).truncate(true).open(&tmp).map_err(|e| self.io(&tmp, e))?;
            self.current = Some(PartFile { tmp, fin, writer: BufWriter::with_capacity(1 << 20, file), size: 0 });
        }
        let table = &self.table;
        if let Some(f) = &mut self.current {
            f.writer.write_all(&self.buf).map_err(|e| ConnectorError::Io {
                table: table.clone(),
                path: f.tmp.clone(),
                source: e,
            })?;
            f.size += self.buf.len() as u64;
            if f.size >= self.roll_size {
                self.close_current()?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ConnectorError> {
        self.close_current()?;
        for (tmp, fin) in std::mem::take(&mut self.pending) {
            std::fs::rename(&tmp, &fin).map_err(|e| self.io(&tmp, e))?;
        }
        Ok(())
    }
}
