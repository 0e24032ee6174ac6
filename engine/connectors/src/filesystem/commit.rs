//! The filesystem sink's two-phase commit: the names of part files in each
//! state, committing a pre-committed part, and recovering the directory of a
//! restored (or re-run) sink.
//!
//! A part file goes through three states:
//!
//! | state | local file | on S3 |
//! | --- | --- | --- |
//! | in progress | `.part-<job>-<subtask>-<n>.inprogress` | a multipart upload being written |
//! | pending (pre-committed) | `.part-<job>-<subtask>-<n>.pending` | the upload prepared: its data durable, the object absent |
//! | committed | `part-<job>-<subtask>-<n>` | the upload completed: the object exists |
//!
//! Invariants:
//!
//! - Nothing is visible before its checkpoint completes. Readers ignore
//!   names starting with `.`, and an upload is no object until it is
//!   completed, so no reader ever sees a partial or uncommitted file. A part
//!   becomes visible only by `commit` of a completed checkpoint's
//!   committable, or by `finish()` at the end of a bounded job.
//! - A committable names durable data only: the sink syncs and renames its
//!   files and syncs the directory (or prepares its uploads) before it
//!   returns the committable.
//! - Committing is idempotent: a pending file already renamed (pending gone,
//!   final present) and an upload already completed are success, so a
//!   commit repeated by a recovery is harmless.
//! - `recover_sink` commits the restored checkpoint's committables and
//!   deletes every other hidden part file of the job
//!   (`.part-<job>-<subtask>-<n>.pending` or `.inprogress`), never another
//!   job's or a visible file.
//! - A restore that passed over newer complete checkpoints (damaged ones)
//!   first withdraws what those committed ([`withdraw`]): the replay writes
//!   those rows again, under new names. Readers that listed the directory in
//!   between saw them once already; the directory ends exactly-once.
//! - Names are never reused: part numbers continue after those already in
//!   the directory and after every restored subtask's counter, so neither a
//!   re-run nor a restore at another parallelism ever reuses a name.
//! - A subtask that received no rows writes no file; a committable that
//!   names no file is the empty blob.
//!
//! On S3, `recover_sink` completes the committables' uploads and aborts this
//! job's pending uploads under the prefix. AWS S3 lists pending uploads by
//! prefix; MinIO lists them only for an exact key, so recovery also asks for
//! the exact keys the job's subtasks would have used next (the
//! [`S3_PROBE_PARTS`] part numbers after each subtask's last visible part and
//! after each restored counter, for the subtasks of the old and the new
//! parallelism). Uploads it cannot find stay invisible and cost storage until
//! MinIO drops them after 24 h (`MINIO_API_STALE_UPLOADS_EXPIRY`) or an AWS
//! lifecycle rule aborts them.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use sluice_storage::Storage;

use super::commit_log::{self, CommitKind, CommitRecord};
use super::{FsConfig, fsio, sink_storage, storage_error};
use crate::state::StateError;
use crate::state::filesystem::{Pending, PendingPart, decode_committable, decode_sink_state};
use crate::{ConnectorError, SinkContext};

/// On S3 recovery, how many part numbers are asked for by exact key after
/// each subtask's last visible part and after each restored counter (MinIO
/// lists pending multipart uploads only for exact keys).
pub(crate) const S3_PROBE_PARTS: u64 = 4;
/// At most this many exact-key lookups per recovery.
const S3_MAX_PROBES: usize = 2048;

/// The hidden name of part `name` while it is being written.
pub(super) fn in_progress_name(name: &str) -> String {
    format!(".{name}.inprogress")
}

/// The hidden name of part `name` once pre-committed.
pub(super) fn pending_name(name: &str) -> String {
    format!(".{name}.pending")
}

/// The job, subtask and part number of a part-file name of any state
/// (`part-…`, `.part-….inprogress`, `.part-….pending`), and whether it is
/// hidden. The job id may itself contain `-`; subtask and part are the last
/// two numbers.
pub(super) fn parse_part_name(name: &str) -> Option<(&str, u64, u64, bool)> {
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

/// The job id as part names carry it: characters other than ASCII letters,
/// digits, `-`, `_` and `.` become `_`.
pub(super) fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
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
pub(super) fn commit_part(
    table: &str,
    dir: &Path,
    s3: Option<&Storage>,
    part: &PendingPart,
) -> Result<(), ConnectorError> {
    let mismatch = |source| ConnectorError::State { table: table.to_string(), source };
    match (part, s3) {
        (PendingPart::File(f), None) => commit_file(table, dir, f),
        (PendingPart::Upload { handle, .. }, Some(storage)) => {
            storage.complete_recorded(handle).map_err(|e| storage_error(table, e))
        }
        (PendingPart::File(f), Some(_)) => {
            Err(mismatch(StateError::LocalFileOnS3 { file: f.pending.clone(), dir: dir.display().to_string() }))
        }
        (PendingPart::Upload { handle, .. }, None) => Err(mismatch(StateError::UploadOnLocalPath {
            uri: handle.target_uri().to_string(),
            dir: dir.display().to_string(),
        })),
    }
}

/// Commits one restored committable again (`s3`: the sink's storage on S3).
/// With a commit log, records the files that were not visible before: the
/// others were committed, and recorded, by the deployment that wrote them.
fn recommit(
    ctx: &SinkContext,
    cfg: &FsConfig,
    s3: Option<&Storage>,
    files: &[PendingPart],
) -> Result<(), ConnectorError> {
    let table = ctx.table.as_str();
    let start_ms = commit_log::now_ms();
    let mut fresh = Vec::new();
    for f in files {
        if cfg.commit_log {
            let visible = match s3 {
                Some(storage) => storage.exists(f.fin()).map_err(|e| storage_error(table, e))?,
                None => {
                    let path = cfg.path.join(f.fin());
                    fsio::exists(&path).map_err(|e| ConnectorError::Io { table: table.into(), path, source: e })?
                }
            };
            if !visible {
                fresh.push(f.fin().to_string());
            }
        }
        commit_part(table, &cfg.path, s3, f)?;
    }
    if fresh.is_empty() {
        return Ok(());
    }
    if s3.is_none() {
        let dir = &cfg.path;
        fsio::sync_dir(dir).map_err(|e| ConnectorError::Io { table: table.into(), path: dir.clone(), source: e })?;
    }
    let record = CommitRecord {
        job: &ctx.job_id,
        committer: &ctx.committer,
        kind: CommitKind::Recovery,
        start_ms,
        end_ms: commit_log::now_ms(),
        files: &fresh,
    };
    commit_log::write(table, &cfg.path, s3, &record)
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
            decode_committable(blob).map_err(|source| ConnectorError::State { table: ctx.table.clone(), source })?;
        recommit(ctx, cfg, None, &files)?;
        for f in files {
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

/// Deletes the visible part files of this job that subtasks committed after
/// the restored checkpoint: those of old subtask `s` numbered at or above its
/// restored counter (its `states` entry). Called only when the restored
/// checkpoint is older than complete ones that could not be restored (see the
/// module docs); returns the names deleted.
///
/// Within one deployment the parallelism and the subtask indexes do not change,
/// and every attempt numbers a subtask's parts above those of its restored
/// counter, so exactly the parts written after that checkpoint are at or above it.
pub(crate) fn withdraw(
    ctx: &SinkContext,
    cfg: &FsConfig,
    states: &[(usize, Vec<u8>)],
) -> Result<Vec<String>, ConnectorError> {
    let table = ctx.table.as_str();
    let state = |source| ConnectorError::State { table: table.to_string(), source };
    let mut from: BTreeMap<u64, u64> = BTreeMap::new();
    for (subtask, blob) in states.iter().filter(|(_, b)| !b.is_empty()) {
        from.insert(*subtask as u64, decode_sink_state(blob).map_err(state)?);
    }
    let job = sanitize(&ctx.job_id);
    let after = |name: &str| matches!(parse_part_name(name), Some((j, s, n, false)) if j == job && from.get(&s).is_some_and(|c| n >= *c));
    let mut withdrawn = Vec::new();
    if cfg.s3 {
        let storage = sink_storage(ctx, cfg)?;
        for o in storage.list("").map_err(|e| storage_error(table, e))? {
            if !o.path.contains('/') && after(&o.path) {
                storage.delete(&o.path).map_err(|e| storage_error(table, e))?;
                withdrawn.push(o.path);
            }
        }
        return Ok(withdrawn);
    }
    let dir = &cfg.path;
    let io = |path: &Path, e| ConnectorError::Io { table: table.to_string(), path: path.to_path_buf(), source: e };
    if !fsio::exists(dir).map_err(|e| io(dir, e))? {
        return Ok(withdrawn);
    }
    for name in fsio::list_names(dir).map_err(|e| io(dir, e))? {
        if after(&name) {
            let path = dir.join(&name);
            fsio::delete(&path).map_err(|e| io(&path, e))?;
            withdrawn.push(name);
        }
    }
    if !withdrawn.is_empty() {
        fsio::sync_dir(dir).map_err(|e| io(dir, e))?;
    }
    Ok(withdrawn)
}

/// [`recover`] on S3: completes the committables' uploads, then aborts every
/// pending multipart upload of this job directly under the prefix that can
/// be found: by prefix (AWS S3) and by the exact keys of the next
/// [`S3_PROBE_PARTS`] part numbers of each subtask (MinIO), see the module
/// docs.
fn recover_s3(ctx: &SinkContext, cfg: &FsConfig, committables: &[Vec<u8>]) -> Result<(), ConnectorError> {
    let table = ctx.table.as_str();
    let serr = |e| storage_error(table, e);
    let state = |source| ConnectorError::State { table: table.to_string(), source };
    let storage = sink_storage(ctx, cfg)?;
    for blob in committables {
        recommit(ctx, cfg, Some(&storage), &decode_committable(blob).map_err(state)?)?;
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
