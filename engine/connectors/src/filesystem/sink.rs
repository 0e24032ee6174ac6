//! The filesystem sink: writes rows into part files in the `path` directory
//! (on S3: under the prefix), which the two-phase commit of [`super::commit`]
//! makes visible.
//!
//! A file being written is named `.part-<job>-<subtask>-<n>.inprogress`; a
//! file rolls at `sink.rolling-policy.file-size` (default 128 MB), and,
//! checked when rows arrive, when it has been open for
//! `sink.rolling-policy.rollover-interval` or has had no rows for
//! `sink.rolling-policy.inactivity-interval` (both 30 min by default, as in
//! Flink). Rolled files stay hidden. On S3 each part file is a multipart
//! upload to `<prefix>/part-<job>-<subtask>-<n>`; rolling prepares the upload
//! (its data is durable, the object does not exist yet).
//!
//! The sink's side of the two-phase commit, whose invariants
//! [`super::commit`] states:
//!
//! - `pre_commit` (a checkpoint barrier) closes the open file, renames it and
//!   every rolled file to `.part-<job>-<subtask>-<n>.pending` and syncs the
//!   directory (on S3: prepares the open upload), then returns them as the
//!   committable. Rows written after it go into new files.
//! - `commit` (the checkpoint completed) renames each pending file to
//!   `part-<job>-<subtask>-<n>` (on S3: completes the upload).
//! - Without checkpoints, `finish()` makes every file visible at the end
//!   (including files pre-committed and not yet committed).
//! - The sink's state is its next part number, so that a restored sink never
//!   reuses a name.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use sluice_storage::{Storage, Upload, UploadHandle};

use super::commit::{commit_part, in_progress_name, parse_part_name, pending_name, sanitize};
use super::commit_log::{self, CommitKind, CommitRecord};
use super::{FsConfig, connector_io_error, fsio, sink_storage, storage_error};
use crate::format::Encoder;
use crate::state::filesystem::{
    Pending, PendingPart, decode_committable, decode_sink_state, encode_committable, encode_sink_state,
};
use crate::{Committer, ConnectorError, SinkContext, SinkWriter};

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
    /// Files pre-committed and not yet known to be committed, with the
    /// checkpoint that pre-committed them; `finish()` commits them.
    uncommitted: Vec<(u64, PendingPart)>,
    next_part: u64,
    job_id: String,
    /// Who commits, when `sink.commit-log.enabled` records each commit.
    commit_log: Option<Committer>,
    buf: Vec<u8>,
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
            let n =
                decode_sink_state(blob).map_err(|source| ConnectorError::State { table: ctx.table.clone(), source })?;
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
            job_id: ctx.job_id.clone(),
            commit_log: cfg.commit_log.then(|| ctx.committer.clone()),
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

    /// Closes the open file and makes every closed one pending: a local file
    /// is renamed to its `.pending` name, an upload is already prepared.
    fn pend_closed(&mut self) -> Result<Vec<PendingPart>, ConnectorError> {
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
        Ok(files)
    }

    /// Commits `files` (one commit of this subtask), then records it in the
    /// commit log if there is one.
    fn commit_files(&self, files: &[PendingPart], kind: CommitKind) -> Result<(), ConnectorError> {
        let start_ms = commit_log::now_ms();
        for f in files {
            commit_part(&self.table, &self.dir, self.s3.as_ref(), f)?;
        }
        self.sync_dir()?;
        if let Some(committer) = &self.commit_log {
            let names: Vec<String> = files.iter().map(|f| f.fin().to_string()).collect();
            let record = CommitRecord {
                job: &self.job_id,
                committer,
                kind,
                start_ms,
                end_ms: commit_log::now_ms(),
                files: &names,
            };
            commit_log::write(&self.table, &self.dir, self.s3.as_ref(), &record)?;
        }
        Ok(())
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
        let mut files: Vec<PendingPart> = std::mem::take(&mut self.uncommitted).into_iter().map(|(_, f)| f).collect();
        files.extend(self.pend_closed()?);
        if files.is_empty() {
            return Ok(());
        }
        self.commit_files(&files, CommitKind::EndOfInput)
    }

    fn pre_commit(&mut self, checkpoint_id: u64) -> Result<Vec<u8>, ConnectorError> {
        let files = self.pend_closed()?;
        if files.is_empty() {
            return Ok(Vec::new());
        }
        self.sync_dir()?;
        let blob =
            encode_committable(&files).map_err(|source| ConnectorError::State { table: self.table.clone(), source })?;
        self.uncommitted.extend(files.into_iter().map(|f| (checkpoint_id, f)));
        Ok(blob)
    }

    fn commit(&mut self, committables: &[Vec<u8>]) -> Result<(), ConnectorError> {
        for blob in committables {
            let files = decode_committable(blob)
                .map_err(|source| ConnectorError::State { table: self.table.clone(), source })?;
            let Some(first) = files.first() else { continue };
            // A committable is one checkpoint's pre-commit of this subtask.
            let checkpoint = self.uncommitted.iter().find(|(_, u)| u == first).map_or(0, |(id, _)| *id);
            self.commit_files(&files, CommitKind::Checkpoint(checkpoint))?;
            self.uncommitted.retain(|(_, u)| !files.contains(u));
        }
        Ok(())
    }

    fn snapshot_state(&self) -> Result<Vec<u8>, ConnectorError> {
        Ok(encode_sink_state(self.next_part))
    }
}
