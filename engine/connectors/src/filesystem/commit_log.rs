//! The filesystem sink's commit log (`sink.commit-log.enabled`, off by
//! default): an audit of which deployment of the job made each part file
//! visible, and when.
//!
//! Every commit that makes files visible writes one record, a small JSON
//! object, to `_sluice-commits/<job>-<subtask>-<part>-g<generation>.json`
//! under the sink's path, where `<part>` is the number of the first file it
//! names. Readers skip it: names starting with `_` are hidden, as in Flink
//! and Hadoop.
//!
//! Invariants:
//!
//! - A record is written after its files are visible, so `endMs` is an upper
//!   bound of their commit time and `startMs` a lower bound.
//! - Each visible file is named by exactly one record. A recovery commits a
//!   restored checkpoint's files again (idempotently); it records only the
//!   files that were not visible before it, so a file already committed by
//!   the deployment that wrote it keeps that deployment's record.
//! - A record's name is unique: a subtask's part numbers are never reused,
//!   and a recovery by another generation gets another name.
//!
//! Times are the committing host's wall clock, in ms since the epoch; across
//! hosts they are as good as the clocks' synchronisation.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sluice_storage::Storage;

use super::commit::{parse_part_name, sanitize};
use super::{fsio, storage_error};
use crate::{Committer, ConnectorError};

/// The directory of the records, under the sink's path.
pub const COMMIT_LOG_DIR: &str = "_sluice-commits";

/// What made files visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CommitKind {
    /// The completion of this checkpoint (or stop-with-savepoint).
    Checkpoint(u64),
    /// A restored sink's recovery, which commits the restored snapshot's files.
    Recovery,
    /// The end of a bounded job's input, without checkpoints.
    EndOfInput,
}

/// One commit of one subtask's files.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CommitRecord<'a> {
    pub(super) job: &'a str,
    pub(super) committer: &'a Committer,
    pub(super) kind: CommitKind,
    pub(super) start_ms: u64,
    pub(super) end_ms: u64,
    /// The final names of the files made visible, all of one subtask.
    pub(super) files: &'a [String],
}

impl CommitRecord<'_> {
    /// The record's path under the sink's path; None when it names no file
    /// (or a file that is not a part file of the job).
    pub(super) fn name(&self) -> Option<String> {
        let (_, subtask, part, _) = parse_part_name(self.files.first()?)?;
        Some(format!("{COMMIT_LOG_DIR}/{}-{subtask}-{part}-g{}.json", sanitize(self.job), self.committer.generation))
    }

    /// The record as one line of JSON.
    pub(super) fn encode(&self) -> String {
        let subtask = self.files.first().and_then(|f| parse_part_name(f)).map_or(0, |(_, s, _, _)| s);
        let (kind, checkpoint) = match self.kind {
            CommitKind::Checkpoint(id) => ("checkpoint", id.to_string()),
            CommitKind::Recovery => ("recovery", "null".into()),
            CommitKind::EndOfInput => ("end-of-input", "null".into()),
        };
        let files = self.files.iter().map(|f| json_string(f)).collect::<Vec<_>>().join(",");
        format!(
            "{{\"job\":{},\"deployment\":{},\"generation\":{},\"subtask\":{subtask},\"kind\":\"{kind}\",\
             \"checkpoint\":{checkpoint},\"startMs\":{},\"endMs\":{},\"files\":[{files}]}}\n",
            json_string(self.job),
            json_string(&self.committer.deployment),
            self.committer.generation,
            self.start_ms,
            self.end_ms,
        )
    }
}

/// Writes `record` under the sink's path: `dir` locally, or `s3`.
pub(super) fn write(
    table: &str,
    dir: &Path,
    s3: Option<&Storage>,
    record: &CommitRecord<'_>,
) -> Result<(), ConnectorError> {
    let Some(name) = record.name() else { return Ok(()) };
    let body = record.encode();
    if let Some(storage) = s3 {
        return storage.put(&name, body.as_bytes()).map_err(|e| storage_error(table, e));
    }
    let path = dir.join(&name);
    let io = |e| ConnectorError::Io { table: table.to_string(), path: path.clone(), source: e };
    let log_dir = dir.join(COMMIT_LOG_DIR);
    fsio::create_dir_all(&log_dir).map_err(io)?;
    let mut out = fsio::create(&path).map_err(io)?;
    out.write_all(body.as_bytes()).map_err(io)?;
    out.close().map_err(io)?;
    fsio::sync_dir(&log_dir).map_err(io)
}

/// Now, in ms since the epoch.
pub(super) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `s` as a JSON string.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn committer() -> Committer {
        Committer { deployment: "3-\"green\"".into(), generation: 7 }
    }

    #[test]
    fn a_record_is_named_by_its_first_part_and_generation_and_encodes_as_json() {
        let c = committer();
        let files = vec!["part-job_1-2-5".to_string(), "part-job_1-2-6".to_string()];
        let r = CommitRecord {
            job: "job/1",
            committer: &c,
            kind: CommitKind::Checkpoint(12),
            start_ms: 10,
            end_ms: 11,
            files: &files,
        };
        assert_eq!(r.name().as_deref(), Some("_sluice-commits/job_1-2-5-g7.json"));
        assert_eq!(
            r.encode(),
            "{\"job\":\"job/1\",\"deployment\":\"3-\\\"green\\\"\",\"generation\":7,\"subtask\":2,\"kind\":\"checkpoint\",\
             \"checkpoint\":12,\"startMs\":10,\"endMs\":11,\"files\":[\"part-job_1-2-5\",\"part-job_1-2-6\"]}\n"
        );
        let recovery = CommitRecord { kind: CommitKind::Recovery, ..r.clone() };
        assert!(recovery.encode().contains("\"kind\":\"recovery\",\"checkpoint\":null,"));
    }

    #[test]
    fn a_record_of_no_files_has_no_name_and_is_not_written() {
        let c = committer();
        let r =
            CommitRecord { job: "j", committer: &c, kind: CommitKind::EndOfInput, start_ms: 0, end_ms: 0, files: &[] };
        assert_eq!(r.name(), None);
        let dir = tempfile::tempdir().unwrap();
        write("t", dir.path(), None, &r).unwrap();
        assert!(!dir.path().join(COMMIT_LOG_DIR).exists());
    }

    #[test]
    fn a_record_is_written_durably_under_the_hidden_directory() {
        let c = committer();
        let files = vec!["part-j-0-3".to_string()];
        let r = CommitRecord {
            job: "j",
            committer: &c,
            kind: CommitKind::Checkpoint(1),
            start_ms: 1,
            end_ms: 2,
            files: &files,
        };
        let dir = tempfile::tempdir().unwrap();
        write("t", dir.path(), None, &r).unwrap();
        let body = std::fs::read_to_string(dir.path().join("_sluice-commits/j-0-3-g7.json")).unwrap();
        assert_eq!(body, r.encode());
    }
}
