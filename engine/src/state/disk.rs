//! The disk state backend (`state.backend.type: disk`; Flink's `rocksdb` is
//! read as it): keyed state of the changelog operators keeps its hot keys on
//! the heap and spills the others to an LSM on local disk (fjall), so that
//! state larger than `taskmanager.memory.managed.size` runs instead of dying
//! of OOM.
//!
//! This module owns the disk side: one fjall keyspace per deployment, one
//! partition per keyed state, and the memory budget they share.
//! [`super::keyed::KeyedState`] decides what to spill and when.
//!
//! Invariants:
//! - a key lives on the heap or on disk, never both: loading a key deletes it
//!   from disk, evicting it deletes it from the heap;
//! - the disk holds each value as `StateValue::encode` wrote it, under the
//!   key's bytes, so a checkpoint copies disk records without decoding them;
//! - a checkpoint's view is the heap's copy-on-write view plus a snapshot of
//!   the partition taken at the same barrier; since a key is in one place,
//!   their union is the state at the barrier, and later loads and evictions
//!   change neither;
//! - the local disk is scratch space, never restored from: a restart restores
//!   from the checkpoint, as Flink's RocksDB backend does without local
//!   recovery. The directory (every partition in it) is deleted when the
//!   deployment's last state is dropped, and directories of dead processes
//!   are deleted at the next open;
//! - the budget is the deployment's, shared by all its keyed states: a state
//!   whose growth takes the total over it evicts its own coldest keys.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::error::OpError;

/// The share of the budget the heap keeps state in; fjall's block cache and
/// write buffers get the rest.
const HEAP_SHARE: f64 = 0.75;

/// The LSM's block size. Spilled keys are read one at a time (`get`), and a
/// read copies its whole block, so blocks are smaller than fjall's 4 KiB, and
/// not compressed: decompressing a block per read cost more than the bytes it
/// saved. On `scripts/bench_spill.py` (state 4x the budget) 2 KiB blocks
/// without compression ran 1.2x as fast as 4 KiB LZ4 ones, with no more RSS;
/// 1 KiB blocks ran faster still, but their larger block index took 20 MiB
/// more at a 15 MiB budget, memory the budget does not bound.
const BLOCK_SIZE: u32 = 2048;

/// The disk backend of one deployment.
pub struct DiskBackend {
    keyspace: fjall::Keyspace,
    dir: PathBuf,
    /// Bytes of state the heap may hold, all keyed states together.
    heap_budget: usize,
    /// The LSM's block cache, and its write buffers, in bytes.
    lsm: u64,
    /// Bytes the keyed states hold on the heap, by their estimates.
    used: AtomicUsize,
    next_partition: AtomicU64,
}

impl std::fmt::Debug for DiskBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskBackend").field("dir", &self.dir).field("heap_budget", &self.heap_budget).finish()
    }
}

/// The prefix of a backend's directory; the process id follows.
const DIR_PREFIX: &str = "sluice-state-";

impl DiskBackend {
    /// Opens a fresh backend in a new directory under `parent` (the system's
    /// temporary directory by default), with `budget` bytes of memory.
    pub fn open(parent: Option<&Path>, budget: u64) -> Result<Arc<DiskBackend>, String> {
        let parent = parent.map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&parent)
            .map_err(|e| format!("state backend 'disk': cannot create its directory {}: {e}", parent.display()))?;
        remove_dead(&parent);
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = parent.join(format!("{DIR_PREFIX}{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        let budget = usize::try_from(budget).unwrap_or(usize::MAX);
        let lsm = (((budget as f64) * (1.0 - HEAP_SHARE)) as u64 / 2).max(4 << 20);
        let keyspace = fjall::Config::new(&dir)
            .temporary(true)
            // Scratch space: no journal fsyncs (a crash restores from the checkpoint).
            .manual_journal_persist(true)
            .cache_size(lsm)
            .max_write_buffer_size(lsm)
            .flush_workers(1)
            .compaction_workers(1)
            .open()
            .map_err(|e| format!("state backend 'disk': cannot open {}: {e}", dir.display()))?;
        Ok(Arc::new(DiskBackend {
            keyspace,
            dir,
            heap_budget: ((budget as f64) * HEAP_SHARE) as usize,
            lsm,
            used: AtomicUsize::new(0),
            next_partition: AtomicU64::new(0),
        }))
    }

    /// The backend of a deployment whose job asks for the disk one
    /// (`state.backend.type: disk`): one directory and one memory budget
    /// for all its local subtasks; `None` for the heap backend.
    pub fn for_job(settings: &sluice_job::StateBackendSettings) -> Result<Option<Arc<DiskBackend>>, String> {
        if settings.kind != sluice_job::StateBackendKind::Disk {
            return Ok(None);
        }
        let backend = DiskBackend::open(settings.local_dir.as_deref(), settings.managed_memory)?;
        crate::say!(
            "state backend 'disk': keyed state beyond {} MiB of memory spills to {}",
            settings.managed_memory.div_ceil(1 << 20),
            backend.dir().display()
        );
        Ok(Some(backend))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new partition for one keyed state.
    pub(crate) fn partition(self: &Arc<Self>) -> Result<Spill, String> {
        let name = format!("s{}", self.next_partition.fetch_add(1, Ordering::Relaxed));
        // A partition's memtable is at most half the write buffers (fjall's default is 16 MiB).
        let memtable = u32::try_from(self.lsm / 2).unwrap_or(u32::MAX).clamp(1 << 20, 16 << 20);
        let opts = fjall::PartitionCreateOptions::default()
            .manual_journal_persist(true)
            .max_memtable_size(memtable)
            .block_size(BLOCK_SIZE)
            .compression(fjall::CompressionType::None);
        let part = self.keyspace.open_partition(&name, opts).map_err(|e| {
            format!("state backend 'disk': cannot create partition {name} in {}: {e}", self.dir.display())
        })?;
        Ok(Spill { backend: self.clone(), part, on_disk: 0, published: 0 })
    }

    /// A new file name in the backend's directory, for a state that spills to
    /// files of its own (the window aggregation's runs, see
    /// `operators::window_spill`).
    pub(crate) fn file(&self, prefix: &str) -> PathBuf {
        self.dir.join(format!("{prefix}-{}", self.next_partition.fetch_add(1, Ordering::Relaxed)))
    }

    /// The bytes of state the heap may hold, all states together.
    pub(crate) fn heap_budget(&self) -> usize {
        self.heap_budget
    }

    /// Publishes one state's heap bytes (`published` is what it last added to
    /// the backend's total) when they moved by more than 256 KiB (or a 16th
    /// of the budget).
    pub(crate) fn publish(&self, published: &mut usize, heap_bytes: usize) {
        if heap_bytes.abs_diff(*published) > (self.heap_budget / 16).clamp(1, 256 << 10) {
            self.set(published, heap_bytes);
        }
    }

    /// Publishes one state's heap bytes now (see [`DiskBackend::publish`]).
    pub(crate) fn set(&self, published: &mut usize, heap_bytes: usize) {
        if heap_bytes > *published {
            self.used.fetch_add(heap_bytes - *published, Ordering::Relaxed);
        } else {
            self.used.fetch_sub((*published - heap_bytes).min(self.used.load(Ordering::Relaxed)), Ordering::Relaxed);
        }
        *published = heap_bytes;
    }

    /// Takes back what a state published, when it goes away.
    pub(crate) fn unpublish(&self, published: usize) {
        self.used.fetch_sub(published.min(self.used.load(Ordering::Relaxed)), Ordering::Relaxed);
    }

    /// Whether the heap is over its budget.
    pub(crate) fn over_budget(&self) -> bool {
        self.used.load(Ordering::Relaxed) > self.heap_budget
    }

    /// How many bytes the heap holds over the budget's 90%.
    pub(crate) fn excess(&self) -> usize {
        self.used.load(Ordering::Relaxed).saturating_sub(self.heap_budget / 10 * 9)
    }
}

/// Deletes the directories that processes no longer running left behind
/// (after `kill -9`, `temporary` never ran).
fn remove_dead(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The disk side of one keyed state: its partition, and what it holds.
pub(crate) struct Spill {
    backend: Arc<DiskBackend>,
    part: fjall::PartitionHandle,
    /// Keys on disk.
    pub(crate) on_disk: usize,
    /// This state's heap bytes, as last added to the backend's `used`.
    published: usize,
}

/// The error of a disk operation, naming the backend's directory.
fn disk_error(backend: &DiskBackend, what: &str, e: impl std::fmt::Display) -> OpError {
    OpError::Other(format!("state backend 'disk' ({}): {what}: {e}", backend.dir.display()))
}

impl Spill {
    fn part(&self) -> &fjall::PartitionHandle {
        &self.part
    }

    pub(crate) fn backend(&self) -> &DiskBackend {
        &self.backend
    }

    /// Publishes this state's heap bytes when they moved by more than 256 KiB
    /// (or a 16th of the budget).
    pub(crate) fn publish(&mut self, heap_bytes: usize) {
        self.backend.publish(&mut self.published, heap_bytes);
    }

    /// Writes evicted records in one batch.
    pub(crate) fn put_all(&mut self, records: Vec<(Box<[u8]>, Vec<u8>)>) -> Result<(), OpError> {
        let n = records.len();
        let mut batch = self.backend.keyspace.batch();
        for (k, v) in records {
            batch.insert(self.part(), k.as_ref(), v);
        }
        batch.commit().map_err(|e| disk_error(&self.backend, "writing evicted keys", e))?;
        self.on_disk += n;
        Ok(())
    }

    /// Rewrites one record that is on disk.
    pub(crate) fn replace(&self, key: &[u8], value: Vec<u8>) -> Result<(), OpError> {
        self.part().insert(key, value).map_err(|e| disk_error(&self.backend, "writing a key", e))
    }

    /// Takes a key's record off the disk, if it is there.
    pub(crate) fn take(&mut self, key: &[u8]) -> Result<Option<fjall::Slice>, OpError> {
        if self.on_disk == 0 {
            return Ok(None);
        }
        let v = self.part().get(key).map_err(|e| disk_error(&self.backend, "reading a key", e))?;
        if v.is_some() {
            self.part().remove(key).map_err(|e| disk_error(&self.backend, "deleting a loaded key", e))?;
            self.on_disk -= 1;
        }
        Ok(v)
    }

    /// Every record on disk now, in key order, a batch at a time.
    pub(crate) fn each(&self, mut f: impl FnMut(&[u8], &[u8]) -> Result<(), OpError>) -> Result<(), OpError> {
        if self.on_disk == 0 {
            return Ok(());
        }
        for kv in self.part().iter() {
            let (k, v) = kv.map_err(|e| disk_error(&self.backend, "scanning", e))?;
            f(&k, &v)?;
        }
        Ok(())
    }

    /// A consistent view of the disk records as they are now.
    pub(crate) fn snapshot(&self) -> DiskView {
        DiskView { snap: self.part().snapshot(), backend: self.backend.clone(), empty: self.on_disk == 0 }
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        self.backend.unpublish(self.published);
        // The partition is not deleted here: fjall 2.11's `delete_partition`
        // races its flusher thread (which then panics on an empty queue, seen
        // in CI when a job's operators were dropped mid-flush). Its files go
        // with the deployment's directory, when the last state is dropped.
    }
}

/// The disk records of a keyed state at a checkpoint barrier.
pub(crate) struct DiskView {
    snap: fjall::Snapshot,
    backend: Arc<DiskBackend>,
    empty: bool,
}

impl DiskView {
    /// Every record of the view, in key order.
    pub(crate) fn each(&self, mut f: impl FnMut(&[u8], &[u8]) -> Result<(), OpError>) -> Result<(), OpError> {
        if self.empty {
            return Ok(());
        }
        for kv in self.snap.iter() {
            let (k, v) = kv.map_err(|e| disk_error(&self.backend, "reading a checkpoint's view", e))?;
            f(&k, &v)?;
        }
        Ok(())
    }

    /// One record of the view.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<fjall::Slice>, OpError> {
        if self.empty {
            return Ok(None);
        }
        self.snap.get(key).map_err(|e| disk_error(&self.backend, "reading a checkpoint's view", e))
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<DiskBackend>>> = const { RefCell::new(None) };
}

/// Runs `f` with `backend` as the backend of every keyed state created in it
/// on this thread (the operators of a subtask, when they are instantiated).
pub fn with_backend<T>(backend: Option<&Arc<DiskBackend>>, f: impl FnOnce() -> T) -> T {
    let before = CURRENT.with(|c| c.replace(backend.cloned()));
    let out = f();
    CURRENT.with(|c| *c.borrow_mut() = before);
    out
}

/// The backend of keyed states created now on this thread, if it is the disk one.
pub(crate) fn current() -> Option<Arc<DiskBackend>> {
    CURRENT.with(|c| c.borrow().clone())
}
