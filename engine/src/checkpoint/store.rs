//! Where snapshots live, and reading and writing them. This module owns every
//! object key under a checkpoint or savepoint directory:
//!
//! ```text
//! <checkpoint-dir>/<job-id>/chk-<n>/<vertex-uid>/<subtask>.state
//! <checkpoint-dir>/<job-id>/chk-<n>/_metadata        (written last)
//! <checkpoint-dir>/<job-id>/_terminal                (the job finished or stopped)
//! <savepoint-dir>/savepoint-<id>/...                 (same layout as chk-<n>)
//! ```
//!
//! A directory without `_metadata` is not a snapshot. A snapshot whose files
//! are missing, truncated or fail their checksum is never restored from.
//!
//! An incremental checkpoint's manifest also lists files of earlier
//! checkpoints of the job (`../chk-<k>/…`, see `metadata`). Retention never
//! deletes a checkpoint directory that a retained checkpoint refers to.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sluice_storage::{Storage, StorageError};

use super::cache::{Known, Use};
use super::error::SnapshotError;
pub use super::loaded::{Loaded, SectionRef};
use super::metadata::{FileEntry, Metadata};
pub use super::state_file::{StateFile, write_subtask};

pub use sluice_api::layout::{METADATA, TERMINAL, checkpoint_dir, savepoint_dir};

/// Writes one state file and returns its manifest entry.
pub fn write_file(dir: &Storage, rel: &str, bytes: &[u8]) -> Result<FileEntry, StorageError> {
    dir.put(rel, bytes)?;
    Ok(FileEntry { path: rel.to_string(), size: bytes.len() as u64, crc32: crc32fast::hash(bytes), origin: None })
}

/// Writes `value` as pretty JSON to `rel`.
fn put_json(dir: &Storage, rel: &str, value: &impl Serialize) -> Result<(), StorageError> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| StorageError::Other {
        uri: format!("{}/{rel}", dir.uri()),
        detail: format!("cannot encode: {e}"),
    })?;
    dir.put(rel, &text)
}

/// Writes `_metadata`, which makes the snapshot complete. It is never
/// replaced: a snapshot directory that already has one belongs to someone else.
pub fn write_metadata(dir: &Storage, m: &Metadata) -> Result<(), StorageError> {
    let text = m.encode().map_err(|e| StorageError::Other {
        uri: format!("{}/{METADATA}", dir.uri()),
        detail: format!("cannot encode: {e}"),
    })?;
    if dir.put_if_absent(METADATA, &text)? {
        return Ok(());
    }
    Err(StorageError::Other {
        uri: format!("{}/{METADATA}", dir.uri()),
        detail: "a complete snapshot is already there; it is left as it is".into(),
    })
}

/// Which state files a load keeps, given the manifest and a file's entry.
pub type Want<'a> = &'a dyn Fn(&Metadata, &FileEntry) -> bool;

/// Reads a snapshot directory (or its `_metadata` URI) and verifies every file.
pub fn load(dir: &Storage) -> Result<Loaded, SnapshotError> {
    load_with(dir, &|_, _| true, false, None)
}

/// Like [`load`], but reads and verifies only the state files that `want`
/// selects: a worker loads what its own subtasks restore, not the whole snapshot.
pub fn load_only(dir: &Storage, want: impl Fn(&Metadata, &FileEntry) -> bool) -> Result<Loaded, SnapshotError> {
    load_with(dir, &want, false, None)
}

/// [`load_only`], reading through `cache`: files it holds are not read again.
pub fn load_only_cached(
    dir: &Storage,
    want: impl Fn(&Metadata, &FileEntry) -> bool,
    cache: Use,
) -> Result<Loaded, SnapshotError> {
    load_with(dir, &want, false, Some(cache))
}

/// Reads and verifies every file, but keeps in memory only those that `keep`
/// selects: the distributed coordinator checks a snapshot whole without
/// holding its keyed state.
pub fn load_verified(dir: &Storage, keep: Want) -> Result<Loaded, SnapshotError> {
    load_with(dir, keep, true, None)
}

/// [`load_verified`], skipping files that `cache` knows to be intact.
pub fn load_verified_cached(dir: &Storage, keep: Want, cache: Use) -> Result<Loaded, SnapshotError> {
    load_with(dir, keep, true, Some(cache))
}

/// Whether a state file holds anything but keyed state: splits, committables
/// or a sink writer's state (what a coordinator needs to recover sinks).
pub fn holds_unkeyed(m: &Metadata, f: &FileEntry) -> bool {
    m.vertices
        .iter()
        .flat_map(|v| &v.subtasks)
        .any(|s| s.sections_in(&f.path).any(|sec| sec.len > 0 && sec.kind.key_group().is_none()))
}

/// Where a manifest's file is: `path` below `dir`, or below a sibling of
/// `dir` for a file of an earlier checkpoint (`../chk-<k>/…`).
pub fn locate(dir: &Storage, path: &str) -> Result<(Storage, String), SnapshotError> {
    match path.strip_prefix("../") {
        None => Ok((dir.clone(), path.to_string())),
        Some(rest) => match dir.parent() {
            Some(up) => Ok((up, rest.to_string())),
            None => Err(SnapshotError::Access {
                context: format!("{}/{path}", dir.uri()),
                source: StorageError::Other {
                    uri: dir.uri(),
                    detail: "the snapshot refers to a file of an earlier checkpoint, but its directory has no parent"
                        .into(),
                },
            }),
        },
    }
}

/// The checkpoint directories (`chk-<k>`) whose files a manifest refers to.
pub fn referenced_checkpoints(m: &Metadata) -> Vec<u64> {
    let mut ids: Vec<u64> = m
        .files
        .iter()
        .filter_map(|f| f.path.strip_prefix("../")?.split('/').next().and_then(sluice_api::layout::checkpoint_id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn load_with(dir: &Storage, want: Want, verify_all: bool, cache: Option<Use>) -> Result<Loaded, SnapshotError> {
    let location = dir.uri();
    let raw = dir.get(METADATA).map_err(|e| {
        if e.is_not_found() { SnapshotError::Incomplete { location: location.clone() } } else { e.into() }
    })?;
    let metadata = Metadata::decode(&raw, &location, &format!("{location}/{METADATA}"))?;
    let mut files = HashMap::new();
    let mut read_bytes = 0;
    for f in metadata.files.iter() {
        let wanted = want(&metadata, f);
        if !wanted && !verify_all {
            continue;
        }
        let (at, rel) = locate(dir, &f.path)?;
        let uri = format!("{}/{rel}", at.uri());
        let known_as = f.origin.clone().unwrap_or_else(|| uri.clone());
        if let Some(c) = cache {
            let known =
                if c.keep { c.cache.get(&known_as, f.size, f.crc32) } else { c.cache.take(&known_as, f.size, f.crc32) };
            match known {
                Some(Known::Bytes(b)) => {
                    if wanted {
                        files.insert(f.path.clone(), b);
                    }
                    continue;
                }
                Some(Known::Verified) if !wanted => continue,
                _ => {}
            }
        }
        read_bytes += f.size;
        let bytes = match at.get(&rel) {
            Ok(b) => b,
            Err(source) => return Err(SnapshotError::Access { context: uri, source }),
        };
        if bytes.len() as u64 != f.size {
            return Err(SnapshotError::Truncated { uri, size: bytes.len() as u64, expected: f.size });
        }
        if crc32fast::hash(&bytes) != f.crc32 {
            return Err(SnapshotError::Checksum { uri });
        }
        if let Some(c) = cache {
            c.cache.put(&known_as, f.size, f.crc32, (c.keep && wanted).then_some(bytes.as_slice()));
        }
        if wanted {
            files.insert(f.path.clone(), Arc::new(bytes));
        }
    }
    Ok(Loaded::new(metadata, location, files, read_bytes))
}

/// Ids of the `chk-<n>` directories under a job's directory, newest first.
pub fn checkpoint_ids(job_dir: &Storage) -> Result<Vec<u64>, StorageError> {
    let mut ids: Vec<u64> =
        job_dir.list_dirs("")?.iter().filter_map(|d| sluice_api::layout::checkpoint_id(d)).collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    Ok(ids)
}

/// The newest complete and intact checkpoint of a job. Incomplete or damaged
/// ones are skipped, and the reason is logged.
pub fn load_latest(job_dir: &Storage) -> Result<Option<Loaded>, SnapshotError> {
    load_latest_keeping(job_dir, &|_, _| true)
}

/// [`load_latest`], keeping in memory only the files that `keep` selects.
pub fn load_latest_keeping(job_dir: &Storage, keep: Want) -> Result<Option<Loaded>, SnapshotError> {
    load_latest_of(job_dir, None, keep)
}

/// The newest complete and intact checkpoint written by `generation` (by
/// any, if `None`), keeping in memory only the files that `keep` selects.
/// Damaged ones are skipped with a warning that names the file, and listed in
/// [`Loaded::passed_over`] of the one restored.
pub fn load_latest_of(job_dir: &Storage, generation: Option<u64>, keep: Want) -> Result<Option<Loaded>, SnapshotError> {
    let mut passed_over = Vec::new();
    for id in checkpoint_ids(job_dir)? {
        let dir = job_dir.child(&checkpoint_dir(id));
        if let Some(g) = generation {
            match written_by(&dir) {
                Ok(Some(w)) if w != g => continue,
                Ok(_) => {}
                Err(why) if why.is_damage() => {
                    tracing::warn!("not restoring from checkpoint {id}: {why}; trying an older one");
                    passed_over.push(id);
                    continue;
                }
                Err(why) => return Err(why),
            }
        }
        match load_verified(&dir, keep) {
            Ok(mut l) => {
                l.passed_over = passed_over;
                return Ok(Some(l));
            }
            Err(SnapshotError::Incomplete { .. }) => {}
            Err(why) if why.is_damage() => {
                tracing::warn!("not restoring from checkpoint {id}: {why}; trying an older one");
                passed_over.push(id);
            }
            // The storage failed, not the checkpoint: the attempt fails and is retried,
            // instead of rewinding the job past a good checkpoint.
            Err(why) => return Err(why),
        }
    }
    if !passed_over.is_empty() {
        tracing::warn!(
            "no intact checkpoint older than the damaged ones ({passed_over:?}) under {}: output they committed stays, and the job writes those rows again",
            job_dir.uri()
        );
    }
    Ok(None)
}

/// The generation that wrote the checkpoint in `dir` (0 before generations),
/// or `None` if it has no manifest (it is incomplete). A manifest that cannot be
/// read is an error that names it, not a checkpoint of another generation.
fn written_by(dir: &Storage) -> Result<Option<u64>, SnapshotError> {
    let uri = format!("{}/{METADATA}", dir.uri());
    let raw = match dir.get(METADATA) {
        Ok(raw) => raw,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let m: serde_json::Value = serde_json::from_slice(&raw).map_err(|source| SnapshotError::Unreadable {
        uri,
        what: "unreadable manifest",
        source,
    })?;
    Ok(Some(m.get("generation").and_then(serde_json::Value::as_u64).unwrap_or(0)))
}

/// Deletes all but the newest `keep` complete checkpoints, and incomplete ones
/// older than the newest complete one, except those whose files a kept
/// checkpoint refers to (incremental checkpoints). `keep_id` is never deleted.
pub fn retain(job_dir: &Storage, keep: usize, keep_id: u64) -> Result<usize, StorageError> {
    let mut complete = 0;
    let mut deleted = 0;
    let mut referenced = std::collections::HashSet::new();
    // Below this id everything stays (a kept manifest could not be read).
    let mut keep_below = 0;
    for id in checkpoint_ids(job_dir)? {
        let dir = checkpoint_dir(id);
        let has_metadata = job_dir.child(&dir).exists(METADATA)?;
        if id > keep_id {
            continue; // in flight
        }
        if has_metadata && complete < keep || id == keep_id {
            complete += usize::from(has_metadata);
            match references(&job_dir.child(&dir))? {
                Some(ids) => referenced.extend(ids),
                None => keep_below = keep_below.max(id),
            }
            continue;
        }
        if referenced.contains(&id) || id < keep_below {
            continue;
        }
        job_dir.delete_prefix(&dir)?;
        deleted += 1;
    }
    Ok(deleted)
}

/// The earlier checkpoints a checkpoint's manifest refers to. A manifest that
/// cannot be read keeps every older directory: deleting state that a
/// checkpoint might need is worse than keeping some too long.
fn references(dir: &Storage) -> Result<Option<Vec<u64>>, StorageError> {
    let raw = match dir.get(METADATA) {
        Ok(raw) => raw,
        Err(e) if e.is_not_found() => return Ok(Some(Vec::new())),
        Err(e) => return Err(e),
    };
    match Metadata::decode(&raw, &dir.uri(), &format!("{}/{METADATA}", dir.uri())) {
        Ok(m) => Ok(Some(referenced_checkpoints(&m))),
        Err(e) => {
            tracing::warn!("{e}; keeping every older checkpoint");
            Ok(None)
        }
    }
}

/// Written when a job finished or stopped with a savepoint, before the last
/// commit: a restarted coordinator of that deployment stays in that terminal
/// state instead of running past it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Terminal {
    /// `FINISHED` (a bounded job ended) or `STOPPED` (stop with savepoint).
    pub reason: String,
    /// The savepoint or final checkpoint.
    pub location: String,
    pub time: String,
    /// The generation that wrote it (see `lineage`); 0 before generations.
    #[serde(default)]
    pub generation: u64,
}

pub fn write_terminal(job_dir: &Storage, t: &Terminal) -> Result<(), StorageError> {
    put_json(job_dir, TERMINAL, t)
}

pub fn read_terminal(job_dir: &Storage) -> Result<Option<Terminal>, SnapshotError> {
    match job_dir.get(TERMINAL) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|source| SnapshotError::Unreadable {
            uri: format!("{}/{TERMINAL}", job_dir.uri()),
            what: "unreadable terminal marker",
            source,
        }),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A restore URI may name the snapshot directory or its `_metadata`.
pub fn snapshot_root(uri: &str) -> &str {
    let u = uri.trim_end_matches('/');
    u.strip_suffix(METADATA).map(|d| d.trim_end_matches('/')).unwrap_or(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::metadata::{FORMAT_VERSION, SnapshotKind};

    fn meta(id: u64, files: Vec<FileEntry>) -> Metadata {
        Metadata {
            format_version: FORMAT_VERSION,
            generation: 0,
            job_id: "j".into(),
            checkpoint_id: id,
            kind: SnapshotKind::Checkpoint,
            max_parallelism: 128,
            timestamp: String::new(),
            vertices: vec![],
            files,
            checksum: None,
        }
    }

    fn write_chk(job: &Storage, id: u64, data: &[u8]) {
        let dir = job.child(&checkpoint_dir(id));
        let f = write_file(&dir, "v/0.state", data).unwrap();
        write_metadata(&dir, &meta(id, vec![f])).unwrap();
    }

    #[test]
    fn a_coordinator_keeps_only_what_it_asks_for_but_verifies_everything() {
        let job = Storage::in_memory().child("job");
        write_chk(&job, 1, b"one");
        write_chk(&job, 2, b"two");
        let keep_nothing = |_: &Metadata, _: &FileEntry| false;
        let l = load_latest_keeping(&job, &keep_nothing).unwrap().unwrap();
        assert_eq!(l.metadata.checkpoint_id, 2);
        assert_eq!(l.in_memory().0, 0);
        // A damaged file it does not keep still disqualifies the checkpoint.
        job.child("chk-2").put("v/0.state", b"tWo").unwrap();
        let l = load_latest_keeping(&job, &keep_nothing).unwrap().unwrap();
        assert_eq!(l.metadata.checkpoint_id, 1);
        // A worker reads only what it wants, so it does not notice.
        assert!(load_only(&job.child("chk-2"), |_, _| false).is_ok());
    }

    #[test]
    fn latest_skips_incomplete_and_damaged_checkpoints() {
        let job = Storage::in_memory().child("job");
        write_chk(&job, 1, b"one");
        write_chk(&job, 2, b"two");
        write_chk(&job, 3, b"three");
        // 4 has no _metadata; 3 is damaged.
        job.child("chk-4").put("v/0.state", b"four").unwrap();
        job.child("chk-3").put("v/0.state", b"thrEe").unwrap();
        let l = load_latest(&job).unwrap().unwrap();
        assert_eq!(l.metadata.checkpoint_id, 2);
        assert_eq!(l.file("v/0.state").unwrap().as_slice(), b"two");
        let e = load(&job.child("chk-3")).err().unwrap().to_string();
        assert!(e.contains("checksum mismatch"), "{e}");
        let e = load(&job.child("chk-4")).err().unwrap().to_string();
        assert!(e.contains("no _metadata"), "{e}");
        job.child("chk-2").put("v/0.state", b"tw").unwrap();
        let e = load(&job.child("chk-2")).err().unwrap().to_string();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn latest_of_a_generation_skips_other_generations_and_metadata_is_never_replaced() {
        let job = Storage::in_memory().child("job");
        for (id, generation) in [(1, 1), (2, 2), (3, 1)] {
            let dir = job.child(&checkpoint_dir(id));
            let f = write_file(&dir, "v/0.state", b"x").unwrap();
            write_metadata(&dir, &Metadata { generation, ..meta(id, vec![f]) }).unwrap();
        }
        let of = |g| load_latest_of(&job, g, &|_, _| true).unwrap().map(|l| l.metadata.checkpoint_id);
        assert_eq!(of(Some(2)), Some(2));
        assert_eq!(of(Some(1)), Some(3));
        assert_eq!(of(Some(7)), None);
        assert_eq!(of(None), Some(3));
        let e = write_metadata(&job.child("chk-2"), &meta(2, vec![])).unwrap_err();
        assert!(e.to_string().contains("already there"), "{e}");
        assert_eq!(load(&job.child("chk-2")).unwrap().metadata.generation, 2);
    }

    #[test]
    fn damaged_checkpoints_passed_over_are_listed_and_an_unreadable_manifest_is_not_another_generations() {
        let job = Storage::in_memory().child("job");
        for id in 1..=4 {
            let dir = job.child(&checkpoint_dir(id));
            let f = write_file(&dir, "v/0.state", b"x").unwrap();
            write_metadata(&dir, &Metadata { generation: 5, ..meta(id, vec![f]) }).unwrap();
        }
        // 4's manifest is cut short, 3's state file flipped; 5 is in flight.
        let raw = job.child("chk-4").get(METADATA).unwrap();
        job.child("chk-4").put(METADATA, &raw[..raw.len() / 2]).unwrap();
        job.child("chk-3").put("v/0.state", b"y").unwrap();
        job.child("chk-5").put("v/0.state", b"x").unwrap();
        for generation in [Some(5), None] {
            let l = load_latest_of(&job, generation, &|_, _| true).unwrap().unwrap();
            assert_eq!((l.metadata.checkpoint_id, l.passed_over.clone()), (2, vec![4, 3]), "{generation:?}");
        }
        // Nothing newer was damaged: nothing passed over.
        assert!(load_latest_of(&job.child("none"), Some(5), &|_, _| true).unwrap().is_none());
        job.delete_prefix("chk-4").unwrap();
        job.delete_prefix("chk-3").unwrap();
        assert!(load_latest(&job).unwrap().unwrap().passed_over.is_empty());
    }

    #[test]
    fn only_damage_is_passed_over_not_a_storage_that_fails() {
        let missing = SnapshotError::Access {
            context: "s3://b/chk-3/v/0.state".into(),
            source: StorageError::NotFound { uri: "s3://b/chk-3/v/0.state".into() },
        };
        assert!(missing.is_damage());
        assert!(SnapshotError::Checksum { uri: "x".into() }.is_damage());
        let down = SnapshotError::Storage(StorageError::Other { uri: "s3://b".into(), detail: "503".into() });
        assert!(!down.is_damage());
    }

    #[test]
    fn retention_keeps_the_newest_complete_checkpoints() {
        let job = Storage::in_memory().child("job");
        for id in 1..=5 {
            write_chk(&job, id, b"x");
        }
        job.child("chk-6").put("v/0.state", b"in flight").unwrap();
        assert_eq!(retain(&job, 2, 5).unwrap(), 3);
        assert_eq!(checkpoint_ids(&job).unwrap(), vec![6, 5, 4]);
    }

    #[test]
    fn restore_uris() {
        assert_eq!(snapshot_root("s3://b/sp/savepoint-1/_metadata"), "s3://b/sp/savepoint-1");
        assert_eq!(snapshot_root("/tmp/c/job/chk-3/"), "/tmp/c/job/chk-3");
        assert_eq!(savepoint_dir("up/7"), "savepoint-up_7");
    }

    #[test]
    fn terminal_marker_round_trip() {
        let job = Storage::in_memory().child("job");
        assert_eq!(read_terminal(&job).unwrap(), None);
        let t = Terminal { reason: "STOPPED".into(), location: "file:///sp".into(), time: "t".into(), generation: 3 };
        write_terminal(&job, &t).unwrap();
        assert_eq!(read_terminal(&job).unwrap(), Some(t));
    }

    /// Checkpoint `id` with its own file and one of `base`'s, as an
    /// incremental checkpoint refers to it.
    fn write_incremental(job: &Storage, id: u64, base: u64) {
        let dir = job.child(&checkpoint_dir(id));
        let own = write_file(&dir, "v/0.state", b"changes").unwrap();
        let bytes = job.child(&checkpoint_dir(base)).get("v/0.state").unwrap();
        let earlier = FileEntry {
            origin: None,
            path: format!("../{}/v/0.state", checkpoint_dir(base)),
            size: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        };
        write_metadata(&dir, &meta(id, vec![earlier, own])).unwrap();
    }

    #[test]
    fn an_incremental_checkpoint_reads_the_earlier_files_it_refers_to() {
        let job = Storage::in_memory().child("job");
        write_chk(&job, 1, b"base");
        write_incremental(&job, 2, 1);
        let l = load_latest(&job).unwrap().unwrap();
        assert_eq!(l.metadata.checkpoint_id, 2);
        assert_eq!(l.file("../chk-1/v/0.state").unwrap().as_slice(), b"base");
        assert_eq!(l.metadata.written_size(), 7);
        assert_eq!(referenced_checkpoints(&l.metadata), [1]);
        // Opened at its own directory, as a restore URI names it.
        assert_eq!(load(&job.child("chk-2")).unwrap().in_memory().0, 2);
    }

    #[test]
    fn a_missing_or_damaged_earlier_file_is_named_and_an_older_checkpoint_restored() {
        let job = Storage::in_memory().child("job");
        write_chk(&job, 1, b"old");
        write_chk(&job, 2, b"base");
        write_incremental(&job, 3, 2);
        job.child("chk-2").put("v/0.state", b"bAse").unwrap();
        let e = load(&job.child("chk-3")).err().unwrap().to_string();
        assert!(e.contains("chk-2/v/0.state") && e.contains("checksum mismatch"), "{e}");
        job.child("chk-2").delete("v/0.state").unwrap();
        let e = load(&job.child("chk-3")).err().unwrap().to_string();
        assert!(e.contains("chk-2/v/0.state"), "{e}");
        assert_eq!(load_latest(&job).unwrap().unwrap().metadata.checkpoint_id, 1);
    }

    #[test]
    fn retention_keeps_the_checkpoints_a_kept_one_refers_to() {
        let job = Storage::in_memory().child("job");
        write_chk(&job, 1, b"base");
        write_incremental(&job, 2, 1);
        // 3 failed after this subtask wrote its changes, which 4 refers to.
        job.child("chk-3").put("v/0.state", b"three").unwrap();
        write_incremental(&job, 4, 3);
        write_chk(&job, 5, b"other");
        assert_eq!(retain(&job, 1, 4).unwrap(), 2, "chk-1 and chk-2 go; chk-3 stays for chk-4");
        assert_eq!(checkpoint_ids(&job).unwrap(), [5, 4, 3]);
        assert!(load(&job.child("chk-4")).is_ok());
        // Once nothing kept refers to it, it goes.
        write_chk(&job, 6, b"six");
        assert_eq!(retain(&job, 1, 6).unwrap(), 3);
        assert_eq!(checkpoint_ids(&job).unwrap(), [6]);
    }
}
