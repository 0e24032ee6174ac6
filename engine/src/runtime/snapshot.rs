//! Asynchronous snapshots: the task thread takes views, a worker encodes and
//! uploads them.
//!
//! At an aligned barrier the task thread takes, for each operator, a
//! [`StateView`] of its keyed state (shared copy-on-write chunks, see
//! [`crate::state::cow`]), and the small sections that must be taken there: a
//! source's splits, a sink's pre-commit. It hands them to its subtask's
//! snapshot worker, forwards the barrier and goes on. The worker, one thread
//! per subtask started at its first snapshot, encodes the views into key-group
//! sections, streams them into the state file and only then acknowledges the
//! checkpoint.
//!
//! Invariants:
//! - **Consistency.** A view holds the state at its barrier: it is taken
//!   before the barrier is forwarded and before the next record, and later
//!   updates copy the chunks they write instead of changing the view's.
//! - **Durability before acknowledgement.** An `Ack` with a result of `Ok` is
//!   sent only after the state file is written, so a checkpoint whose
//!   `_metadata` exists covers only durable state (exactly-once is
//!   unchanged: the coordinator completes a checkpoint on every subtask's ack).
//! - **Bounded memory.** Keyed state goes to the state file as it is encoded,
//!   [`SPILL_BYTES`] at a time, so a key group may have several sections in
//!   one file, in the order written; restore reads them in that order. The
//!   sections are keyed, per operator, then splits, committables and sink
//!   state, with the file's checksum, so restore at any parallelism reads
//!   them as before.
//! - **A failure fails the checkpoint, not the job.** An error while encoding
//!   or writing is sent as that checkpoint's `Ack` with `Err`; the coordinator
//!   aborts the checkpoint and the job goes on.
//! - **Order.** A subtask's snapshots are written and acknowledged one at a
//!   time, in barrier order. So an acknowledgement never overtakes an earlier
//!   one of the same subtask, at most one upload per subtask holds its
//!   bandwidth, and state of checkpoint `n` is never written after that of
//!   `n + 1` has been acknowledged (what incremental checkpoints, which refer
//!   to earlier files, rely on). A subtask whose input ended encodes its final
//!   state itself (it has nothing left to process) and sends `Finished`
//!   directly, before `Exited`, as before: the coordinator counts it only for
//!   checkpoints after its last one, whose acknowledgement may come later.
//! - **Bounded lag.** A periodic checkpoint is abandoned, and acknowledged as
//!   failed, once a newer barrier (a checkpoint, or a savepoint that took
//!   precedence) has reached the subtask: before its upload starts if it is
//!   queued, between batches of keys if it is being encoded, before the write
//!   if it is encoded. The coordinator runs one snapshot at a time, so it has
//!   given up on the older one already; finishing it would only pin memory and
//!   hold up the newer one. Savepoints are never abandoned.
//! - **Incremental checkpoints.** State that can be written as entries
//!   ([`crate::state::EntryView`]) is written as a base of every record, then,
//!   at each later checkpoint, only as what changed since the subtask's
//!   previous written snapshot; the manifest entry refers to the base and
//!   the earlier changes in their checkpoints' files (the subtask's chain).
//!   A view's changes are relative to the previous view of the same state,
//!   so a chain holds only while every snapshot of the subtask is written:
//!   after a failed or abandoned one, a savepoint, a view that does not know
//!   its changes, or once the chain is long or its changes outweigh its base
//!   ([`builds_on`]), the next checkpoint writes a new base. The files of a
//!   chain are those of snapshots this worker wrote, which retention keeps
//!   while a retained checkpoint refers to them.
//! - **Savepoints stay self-contained.** A savepoint on a chain writes the
//!   changes and copies the chain's files into its own directory (on the
//!   server, for S3), so it refers to nothing outside it; a restore that
//!   already holds those files' content (a standby that pre-loaded the
//!   checkpoint) reads only the changes.
//!
//! The decisions ([`plan`], [`builds_on`]) are pure; the thread only follows them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

use sluice_storage::Storage;

use crate::checkpoint::metadata::{FileEntry, Section, SectionKind, SubtaskState};
use crate::checkpoint::store::{self, StateFile};
use crate::checkpoint::{CoordMsg, SnapshotKind, SubtaskSnapshot};
use crate::error::OpError;
use crate::operators::KeyGroupWriters;
use crate::state::{GoOn, StateView, abandoned};

/// A subtask's snapshot as the task thread takes it at a barrier.
#[derive(Default)]
pub struct Taken {
    /// Views of keyed state, by the operator's position in the chain.
    pub keyed: Vec<(usize, Box<dyn StateView>)>,
    /// Sections taken on the task thread: splits, committables, sink state.
    pub sections: Vec<(SectionKind, Vec<u8>)>,
}

impl Taken {
    /// Encodes the views in their own format, whole: a finished subtask's
    /// final state.
    pub fn encode(self, max_parallelism: usize, go_on: GoOn) -> Result<SubtaskSnapshot, OpError> {
        let mut snap = SubtaskSnapshot::default();
        for (operator, view) in self.keyed {
            let mut w = KeyGroupWriters::new();
            view.encode(max_parallelism, &mut w, go_on)?;
            snap.add_keyed(operator, w.finish().map_err(OpError::Other)?);
        }
        snap.sections.extend(self.sections);
        Ok(snap)
    }

    /// Whether every view that can be written as entries knows what changed
    /// since its previous view.
    fn knows_changes(&self) -> bool {
        self.keyed.iter().filter_map(|(_, v)| v.entries()).all(|e| e.knows_changes())
    }

    /// Encodes the views for a checkpoint or savepoint into `file`, as they
    /// are encoded ([`SPILL_BYTES`] at a time): as entries where a view can
    /// be (only the changes when `changes`, else a base), else in the
    /// operator's own format. `owned`: the subtask's key groups.
    fn write_entries(
        self,
        file: &mut StateFile,
        max_parallelism: usize,
        changes: bool,
        owned: std::ops::Range<u32>,
        go_on: GoOn,
    ) -> Result<(), String> {
        for (operator, view) in self.keyed {
            let entries = view.entries();
            let kind = |key_group| match entries {
                Some(_) => SectionKind::Entries { operator, key_group },
                None => SectionKind::Keyed { operator, key_group },
            };
            let to = |kg, bytes: &[u8]| file.add(kind(kg), bytes).map_err(|e| e.to_string());
            let mut w = KeyGroupWriters::spilling(spill_bytes(), Box::new(to));
            let encoded = match entries {
                Some(e) if changes => e.encode_changes(max_parallelism, owned.clone(), &mut w, go_on),
                Some(e) => e.encode_base(max_parallelism, &mut w, go_on),
                None => view.encode(max_parallelism, &mut w, go_on),
            };
            encoded.map_err(|e| format!("cannot encode the state: {e}"))?;
            w.finish().map_err(|e| format!("cannot write the state: {e}"))?;
        }
        for (kind, data) in self.sections {
            file.add(kind, &data).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Encoded keyed state held at most before it goes to the state file (see
/// [`crate::state::writers`]): a full snapshot no longer holds a copy of the
/// whole state in memory. `SLUICE_SPILL_BYTES` sets another amount, so that
/// tests can make small state spill.
pub const SPILL_BYTES: usize = 64 << 20;

fn spill_bytes() -> usize {
    static BYTES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BYTES.get_or_init(|| {
        std::env::var("SLUICE_SPILL_BYTES").ok().and_then(|v| v.parse().ok()).filter(|b| *b > 0).unwrap_or(SPILL_BYTES)
    })
}

/// A written state file's manifest entries, or why it could not be written.
type Written = Result<(SubtaskState, Vec<FileEntry>), String>;

/// Changes are written on top of a chain until it holds this many.
pub const MAX_CHANGES: usize = 100;

/// What a subtask's next checkpoint can build on: the entries sections of
/// its snapshots since its last base, each with the checkpoint whose
/// directory holds it.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    /// The job's checkpoint directory, which holds every `chk-<k>` of the chain.
    home: Option<Storage>,
    /// (checkpoint id, section with its file's path in that checkpoint).
    sections: Vec<(u64, Section)>,
    /// (checkpoint id, file entry with its path in that checkpoint).
    files: Vec<(u64, FileEntry)>,
    base_bytes: u64,
    change_bytes: u64,
    changes: usize,
}

impl Chain {
    /// The chain's sections and files as a snapshot in `chk-<id>` refers to them.
    fn referred(&self) -> (Vec<Section>, Vec<FileEntry>) {
        let rel = |k: u64, path: &str| format!("../{}/{path}", store::checkpoint_dir(k));
        let sections = self
            .sections
            .iter()
            .map(|(k, s)| Section { file: s.file.as_deref().map(|f| rel(*k, f)), ..s.clone() })
            .collect();
        let files = self.files.iter().map(|(k, f)| FileEntry { path: rel(*k, &f.path), ..f.clone() }).collect();
        (sections, files)
    }

    /// Adds what checkpoint `id` wrote into `dir`: its entries sections, in its own file.
    fn add(&mut self, id: u64, dir: &Storage, state: &SubtaskState, file: Option<&FileEntry>, base: bool) {
        self.home = dir.parent();
        let mut bytes = 0;
        for s in state.sections.iter().filter(|s| matches!(s.kind, SectionKind::Entries { .. }) && s.file.is_none()) {
            bytes += s.len;
            self.sections.push((id, Section { file: state.file.clone(), ..s.clone() }));
        }
        if let Some(f) = file.filter(|_| bytes > 0) {
            self.files.push((id, f.clone()));
        }
        if base {
            self.base_bytes = bytes;
        } else {
            self.change_bytes += bytes;
            self.changes += 1;
        }
    }
}

/// Whether a snapshot writes only the changes on top of `chain`: a snapshot
/// of a job with incremental checkpoints, whose views know their changes, on
/// a chain that is neither long nor heavier in changes than in its base (a
/// savepoint then copies the chain's files). Otherwise it writes a base.
pub fn builds_on(incremental: bool, chain: Option<&Chain>, views_know: bool) -> bool {
    incremental
        && views_know
        && chain.is_some_and(|c| c.home.is_some() && c.changes < MAX_CHANGES && c.change_bytes <= c.base_bytes)
}

/// A chain file's name in a savepoint that copies it.
fn copy_name(path: &str, checkpoint: u64) -> String {
    format!("{path}.chk-{checkpoint}")
}

/// The manifest entry of a savepoint written on top of `chain`: the chain's
/// files are copied into the savepoint's directory `dir`, and its sections
/// refer to the copies.
fn copied(dir: &Storage, state: SubtaskState, own: Option<FileEntry>, chain: &Chain) -> Written {
    let home = chain.home.as_ref().ok_or("the chain's checkpoint directory is unknown")?;
    let mut files = Vec::with_capacity(chain.files.len() + 1);
    for (k, f) in &chain.files {
        let name = copy_name(&f.path, *k);
        let from = home.child(&store::checkpoint_dir(*k));
        dir.copy_from(&from, &f.path, &name)
            .map_err(|e| format!("cannot copy {}/{} into the savepoint: {e}", from.uri(), f.path))?;
        let origin = Some(format!("{}/{}", from.uri(), f.path));
        files.push(FileEntry { path: name, origin, ..f.clone() });
    }
    let sections: Vec<Section> = chain
        .sections
        .iter()
        .map(|(k, s)| Section { file: s.file.as_deref().map(|p| copy_name(p, *k)), ..s.clone() })
        .collect();
    Ok(on_top((sections, files), state, own))
}

/// What a job is, for [`plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Checkpoint(u64),
    Savepoint(u64),
}

/// What the worker does with its queue.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Queued jobs to abandon, by position, each with the checkpoint that supersedes it.
    pub abandon: Vec<(usize, u64)>,
}

/// Which queued jobs (oldest first) to abandon before the next upload: each
/// periodic checkpoint with a newer barrier queued behind it.
pub fn plan(queue: &[JobKind]) -> Plan {
    let newest = queue.iter().map(|k| match k {
        JobKind::Checkpoint(id) | JobKind::Savepoint(id) => *id,
    });
    let newest = newest.max();
    let abandon = queue
        .iter()
        .enumerate()
        .filter_map(|(i, k)| match (k, newest) {
            (JobKind::Checkpoint(id), Some(n)) if *id < n => Some((i, n)),
            _ => None,
        })
        .collect();
    Plan { abandon }
}

/// Whether the job goes on, given the newest barrier the subtask has seen: a
/// periodic checkpoint stops once a newer barrier has come.
pub fn goes_on(job: JobKind, newest_barrier: u64) -> bool {
    match job {
        JobKind::Checkpoint(id) => newest_barrier <= id,
        JobKind::Savepoint(_) => true,
    }
}

/// One snapshot for the worker.
pub struct Job {
    pub id: u64,
    pub kind: SnapshotKind,
    /// The barrier allows writing only the changes (see the module doc).
    pub incremental: bool,
    /// The snapshot directory.
    pub dir: Storage,
    pub taken: Taken,
    pub alignment_ms: u64,
    /// The task thread's pause to take `taken` (µs).
    pub pause_us: u64,
}

impl Job {
    fn kind(&self) -> JobKind {
        match self.kind {
            SnapshotKind::Checkpoint => JobKind::Checkpoint(self.id),
            SnapshotKind::Savepoint => JobKind::Savepoint(self.id),
        }
    }
}

/// Who the worker writes and reports for.
#[derive(Clone)]
pub struct Subtask {
    pub vertex: usize,
    pub subtask: usize,
    pub uid: String,
    pub max_parallelism: usize,
    pub parallelism: usize,
    pub coord: Sender<CoordMsg>,
    /// The scope of the worker's fault points (`snapshot.encode`,
    /// `snapshot.upload`): the job id.
    pub scope: String,
}

/// A subtask's snapshot worker; its thread starts with the first job and
/// ends when the subtask drops this and the queue is done.
#[derive(Default)]
pub struct SnapshotWorker {
    tx: Option<Sender<Job>>,
    /// The newest barrier submitted, for [`goes_on`].
    newest: Arc<AtomicU64>,
    /// The chain of jobs done on the caller's thread (without a worker thread).
    chain: Option<Chain>,
}

impl SnapshotWorker {
    /// Queues a job, starting the thread if needed. If it cannot start, the
    /// job is done here, on the caller's thread, so nothing is lost.
    pub fn submit(&mut self, who: &Subtask, job: Job) {
        self.newest.fetch_max(job.id, Ordering::SeqCst);
        if self.tx.is_none() {
            let (tx, rx) = channel();
            let (w, newest) = (who.clone(), self.newest.clone());
            let name = format!("snapshot-{}-{}", who.vertex, who.subtask);
            match std::thread::Builder::new().name(name).spawn(move || run(&w, rx, &newest)) {
                Ok(_) => self.tx = Some(tx),
                Err(e) => tracing::warn!("cannot start a snapshot thread ({e}); snapshotting on the task thread"),
            }
        }
        match &self.tx {
            Some(tx) => {
                if let Err(e) = tx.send(job) {
                    // The thread is gone, and its chain with it.
                    self.tx = None;
                    self.chain = None;
                    do_job(who, e.0, &self.newest, &mut self.chain);
                }
            }
            None => do_job(who, job, &self.newest, &mut self.chain),
        }
    }
}

fn run(who: &Subtask, rx: Receiver<Job>, newest: &AtomicU64) {
    let mut queue: VecDeque<Job> = VecDeque::new();
    let mut chain = None;
    loop {
        if queue.is_empty() {
            match rx.recv() {
                Ok(j) => queue.push_back(j),
                Err(_) => return,
            }
        }
        queue.extend(rx.try_iter());
        let kinds: Vec<JobKind> = queue.iter().map(Job::kind).collect();
        for (i, newer) in plan(&kinds).abandon.into_iter().rev() {
            if let Some(Job { id, alignment_ms, pause_us, .. }) = queue.remove(i) {
                let why = format!("superseded by snapshot {newer} before its upload started");
                let _ = who.coord.send(ack(who, id, Err(why), alignment_ms, pause_us));
                // Its views' changes are lost with it.
                chain = None;
            }
        }
        if let Some(job) = queue.pop_front() {
            do_job(who, job, newest, &mut chain);
        }
    }
}

fn ack(who: &Subtask, id: u64, result: Written, alignment_ms: u64, pause_us: u64) -> CoordMsg {
    CoordMsg::Ack { id, vertex: who.vertex, subtask: who.subtask, result, alignment_ms, pause_us }
}

/// Encodes and writes one job, then reports it; `chain` follows what it wrote.
fn do_job(who: &Subtask, job: Job, newest: &AtomicU64, chain: &mut Option<Chain>) {
    let kind = job.kind();
    let Job { id, dir, taken, alignment_ms, incremental, pause_us, .. } = job;
    let started = Instant::now();
    let changes = builds_on(incremental, chain.as_ref(), taken.knows_changes());
    let go_on = || goes_on(kind, newest.load(Ordering::SeqCst));
    let written = write(who, &dir, taken, changes, &go_on);
    let result = match (written, kind) {
        (Ok((state, own)), JobKind::Checkpoint(_)) if incremental => {
            let mut c = if changes { chain.take().unwrap_or_default() } else { Chain::default() };
            // What it builds on: the chain as it was before it.
            let earlier = c.referred();
            c.add(id, &dir, &state, own.as_ref(), !changes);
            *chain = Some(c);
            Ok(on_top(earlier, state, own))
        }
        // Its views took the changes since the last checkpoint: the next one writes a base.
        (Ok((state, own)), JobKind::Savepoint(_)) if changes => match chain.take() {
            Some(c) => copied(&dir, state, own, &c),
            None => Ok((state, own.into_iter().collect())),
        },
        (other, _) => {
            *chain = None;
            other.map(|(state, own)| (state, own.into_iter().collect()))
        }
    };
    tracing::debug!(
        "checkpoint {id}: vertex {} subtask {}: encoded and written off the task thread in {} ms",
        who.vertex,
        who.subtask,
        started.elapsed().as_millis()
    );
    let _ = who.coord.send(ack(who, id, result, alignment_ms, pause_us));
}

/// The manifest entry of a snapshot that builds on `earlier` (sections and
/// files, as it refers to them): those first, then its own.
fn on_top(
    earlier: (Vec<Section>, Vec<FileEntry>),
    state: SubtaskState,
    own: Option<FileEntry>,
) -> (SubtaskState, Vec<FileEntry>) {
    let (mut sections, mut files) = earlier;
    sections.extend(state.sections);
    files.extend(own);
    (SubtaskState { sections, ..state }, files)
}

fn write(
    who: &Subtask,
    dir: &Storage,
    taken: Taken,
    changes: bool,
    go_on: GoOn,
) -> Result<(SubtaskState, Option<FileEntry>), String> {
    // Before keyed state is encoded: where a test holds a snapshot.
    if !taken.keyed.is_empty()
        && let Some(e) = crate::failpoint::hit_in("snapshot.encode", &who.scope)
    {
        return Err(e);
    }
    let owned = crate::keygroup::range(who.subtask, who.max_parallelism, who.parallelism);
    let owned = owned.start as u32..owned.end as u32;
    let mut file = StateFile::new(dir, &who.uid, who.subtask);
    taken.write_entries(&mut file, who.max_parallelism, changes, owned, go_on)?;
    if !go_on() {
        return Err(abandoned().to_string());
    }
    if let Some(e) = crate::failpoint::hit_in("snapshot.upload", &who.scope) {
        return Err(e);
    }
    file.finish().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::JobKind::*;
    use super::*;

    #[test]
    fn an_older_checkpoint_queued_behind_a_slow_upload_is_abandoned() {
        assert_eq!(plan(&[Checkpoint(3)]).abandon, []);
        assert_eq!(plan(&[Checkpoint(3), Checkpoint(4)]).abandon, [(0, 4)]);
        assert_eq!(plan(&[Checkpoint(3), Checkpoint(4), Checkpoint(6)]).abandon, [(0, 6), (1, 6)]);
    }

    #[test]
    fn a_checkpoint_being_written_stops_once_a_newer_barrier_came() {
        assert!(goes_on(Checkpoint(3), 3));
        assert!(!goes_on(Checkpoint(3), 4));
        assert!(goes_on(Savepoint(3), 9), "a savepoint is never abandoned");
    }

    #[test]
    fn a_savepoint_that_took_precedence_supersedes_the_checkpoint_queued_before_it() {
        assert_eq!(plan(&[Checkpoint(3), Savepoint(4)]).abandon, [(0, 4)]);
    }

    #[test]
    fn savepoints_are_never_abandoned() {
        assert_eq!(plan(&[Savepoint(3), Checkpoint(4)]).abandon, []);
        assert_eq!(plan(&[Checkpoint(2), Savepoint(3), Checkpoint(4)]).abandon, [(0, 4)]);
    }

    fn state(file: Option<&str>, kinds: &[(SectionKind, u64)]) -> SubtaskState {
        let sections = kinds.iter().map(|(kind, len)| Section { kind: kind.clone(), offset: 0, len: *len, file: None });
        SubtaskState { subtask: 0, file: file.map(str::to_string), sections: sections.collect() }
    }

    fn chk(id: u64) -> Storage {
        Storage::in_memory().child("job").child(&store::checkpoint_dir(id))
    }

    fn entries(kg: u32) -> SectionKind {
        SectionKind::Entries { operator: 0, key_group: kg }
    }

    #[test]
    fn changes_build_on_a_short_chain_of_checkpoints_only() {
        let mut c = Chain::default();
        c.add(1, &chk(1), &state(Some("v/0.state"), &[(entries(0), 1000)]), Some(&file("v/0.state")), true);
        assert!(builds_on(true, Some(&c), true));
        assert!(!builds_on(false, Some(&c), true), "incremental checkpoints are off");
        assert!(!builds_on(true, None, true), "no chain: the last snapshot failed, or none yet");
        assert!(!builds_on(true, Some(&c), false), "a view does not know its changes");
        for id in 2..2 + MAX_CHANGES as u64 {
            assert!(builds_on(true, Some(&c), true));
            c.add(id, &chk(id), &state(Some("v/0.state"), &[(entries(0), 10)]), Some(&file("v/0.state")), false);
        }
        assert!(!builds_on(true, Some(&c), true), "the chain is long: a new base");
        let mut heavy = Chain::default();
        heavy.add(1, &chk(1), &state(Some("v/0.state"), &[(entries(0), 100)]), Some(&file("v/0.state")), true);
        heavy.add(2, &chk(2), &state(Some("v/0.state"), &[(entries(0), 101)]), Some(&file("v/0.state")), false);
        assert!(!builds_on(true, Some(&heavy), true), "changes outweigh the base");
    }

    fn file(path: &str) -> FileEntry {
        FileEntry { path: path.into(), size: 7, crc32: 1, origin: None }
    }

    #[test]
    fn a_snapshot_on_a_chain_refers_to_the_earlier_files_from_its_own_directory() {
        let mut c = Chain::default();
        c.add(
            4,
            &chk(4),
            &state(Some("v/1.state"), &[(entries(3), 50), (SectionKind::Split, 5)]),
            Some(&file("v/1.state")),
            true,
        );
        // Checkpoint 5 wrote changes and a split; checkpoint 6 wrote nothing of its own.
        let five = state(Some("v/1.state"), &[(entries(3), 4), (SectionKind::Split, 5)]);
        let earlier = c.referred();
        c.add(5, &chk(5), &five, Some(&file("v/1.state")), false);
        let (st, files) = on_top(earlier, five, Some(file("v/1.state")));
        let refs: Vec<_> = st.sections.iter().map(|s| (s.kind.clone(), s.file.clone(), s.len)).collect();
        assert_eq!(
            refs,
            [(entries(3), Some("../chk-4/v/1.state".into()), 50), (entries(3), None, 4), (SectionKind::Split, None, 5),],
            "the base's split is not carried: splits are taken anew at each checkpoint"
        );
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["../chk-4/v/1.state", "v/1.state"]);
        let six = state(None, &[]);
        let earlier = c.referred();
        c.add(6, &chk(6), &six, None, false);
        let (st, files) = on_top(earlier, six, None);
        assert_eq!(st.sections.len(), 2);
        assert_eq!(
            files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["../chk-4/v/1.state", "../chk-5/v/1.state"]
        );
    }

    #[test]
    fn a_savepoint_on_a_chain_copies_its_files_and_refers_to_nothing_outside() {
        let job = Storage::in_memory().child("job");
        let chk = |id| job.child(&store::checkpoint_dir(id));
        chk(4).put("v/0.state", b"base").unwrap();
        let mut c = Chain::default();
        c.add(4, &chk(4), &state(Some("v/0.state"), &[(entries(1), 4)]), Some(&file("v/0.state")), true);
        let sp = Storage::in_memory().child("savepoints/sp-1");
        let own = state(Some("v/0.state"), &[(entries(1), 2)]);
        let (st, files) = copied(&sp, own, Some(file("v/0.state")), &c).unwrap();
        assert_eq!(sp.get("v/0.state.chk-4").unwrap(), b"base");
        assert_eq!(files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["v/0.state.chk-4", "v/0.state"]);
        assert!(files.iter().all(|f| !f.path.starts_with("../")));
        assert_eq!(st.sections[0].file.as_deref(), Some("v/0.state.chk-4"));
        assert_eq!(st.sections[1].file, None);
        chk(4).delete("v/0.state").unwrap();
        let e = copied(&sp, state(None, &[]), None, &c).unwrap_err();
        assert!(e.contains("chk-4/v/0.state"), "{e}");
    }
}
