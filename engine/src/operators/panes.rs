//! The keyed state of the window aggregation: one pane per window, holding a
//! group per key, and the view of all panes that a checkpoint encodes off the
//! task thread.
//!
//! A pane's groups are only ever added (a pane goes away whole when its
//! window fires), so group `g`'s key is entry `g` of an append-only
//! copy-on-write column, and its accumulators are entry `g` of the aggregate
//! columns. A snapshot view shares those columns chunk by chunk
//! ([`CowVec::share`]): taking it costs an `Arc` per chunk, and it holds the
//! values of the barrier while the task thread goes on. The lookup from key to
//! group is a table of group ids hashed by the key they point to, so that each
//! key is stored once; the view does not need it.
//!
//! For incremental checkpoints a pane records which groups were written since
//! the last view (`group` marks them), and the operator records which panes
//! fired since; a view written as [`entries`] then holds only those.
//!
//! On the disk state backend a pane may have spilled groups to runs (see
//! [`super::window_spill`]); a view of such a pane merges them with its
//! groups in memory and writes the whole pane, each key once.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::KeyGroupWriters;
use super::aggregate::{AggDef, GroupAccs};
use super::window::Keys;
use super::window_spill::{Run, merged_batches};
use crate::error::OpError;
use crate::state::codec::{Reader, Writer};
use crate::state::cow::{CHUNK, CowVec};
use crate::state::entries::{self, IdSet};
use crate::state::key::KeyBytes;
use crate::state::{EntryView, GoOn, StateView, abandoned};

/// One window's groups.
pub struct Pane {
    pub start: i64,
    pub end: i64,
    /// Group ids, hashed by their key in `keys`.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// The key of each group, by group id; empty without keys (one group, 0).
    keys: CowVec<KeyBytes>,
    pub accs: GroupAccs,
    /// Groups written since the last view; `None`: every group (the pane is
    /// newer than the last view).
    written: Option<IdSet>,
    /// Groups spilled to disk, oldest first (see [`super::window_spill`]).
    runs: Vec<Arc<Run>>,
}

impl Pane {
    pub fn new(start: i64, end: i64, accs: GroupAccs) -> Pane {
        let (index, hasher, keys) = (HashTable::new(), DefaultHashBuilder::default(), CowVec::new());
        Pane { start, end, index, hasher, keys, accs, written: None, runs: Vec::new() }
    }

    /// The pane's runs on disk, oldest first.
    pub fn runs(&self) -> &[Arc<Run>] {
        &self.runs
    }

    /// Groups held in runs (a key in several runs counts in each).
    pub fn groups_on_disk(&self) -> u64 {
        self.runs.iter().map(|r| r.groups).sum()
    }

    /// The groups in memory, (key, group id), sorted by key.
    pub fn sorted_groups(&self) -> Vec<(&[u8], u32)> {
        sorted_groups(&self.keys)
    }

    /// Merges the pane's runs into one at `path` (see
    /// [`super::window_spill::MAX_RUNS`]).
    pub fn compact(&mut self, path: std::path::PathBuf, aggs: &[AggDef]) -> Result<(), OpError> {
        let run = Run::compact(path, &self.runs, aggs)?;
        self.runs = vec![Arc::new(run)];
        Ok(())
    }

    /// Writes the groups in memory to a run at `path` and starts afresh with
    /// `fresh` accumulators (see [`super::window_spill`]).
    pub fn spill(&mut self, path: std::path::PathBuf, fresh: GroupAccs) -> Result<(), OpError> {
        self.accs.fold();
        let accs = &self.accs;
        let run = Run::write(path, self.sorted_groups(), |g, w| accs.encode_group(g, w))?;
        self.runs.push(Arc::new(run));
        self.index = HashTable::new();
        self.keys = CowVec::new();
        self.accs = fresh;
        self.written = None;
        Ok(())
    }

    /// The group of `key`, added if it is new; it counts as written.
    pub fn group(&mut self, key: &[u8]) -> u32 {
        let h = self.hasher.hash_one(key);
        let keys = &self.keys;
        let g = match self.index.find(h, |&g| keys[g as usize].as_ref() == key) {
            Some(g) => *g,
            None => {
                let g = self.accs.add_group();
                self.add_key(h, key, g);
                g
            }
        };
        if let Some(w) = &mut self.written {
            w.insert(g as usize);
        }
        g
    }

    fn add_key(&mut self, h: u64, key: &[u8], g: u32) {
        self.keys.push(key.into());
        let (keys, hasher) = (&self.keys, &self.hasher);
        self.index.insert_unique(h, g, |&g| hasher.hash_one(keys[g as usize].as_ref()));
    }

    /// Reads one restored group of `key` (keyed panes) or the pane's only
    /// group (without keys).
    pub fn restore_group(&mut self, key: Option<&[u8]>, r: &mut Reader) -> Result<(), OpError> {
        let g = self.accs.decode_group(r)?;
        if let Some(key) = key {
            let h = self.hasher.hash_one(key);
            self.add_key(h, key, g);
        }
        Ok(())
    }

    /// Groups with a key, by group id.
    pub fn keys(&self) -> &CowVec<KeyBytes> {
        &self.keys
    }

    /// A view of the pane now (see the module doc); what was written since
    /// the last view goes with it.
    fn share(&mut self, end_utc: i64) -> PaneView {
        let written = self.written.replace(IdSet::default());
        PaneView {
            end_utc,
            start: self.start,
            end: self.end,
            keys: self.keys.share(),
            accs: self.accs.share(),
            written,
            runs: self.runs.clone(),
        }
    }
}

/// Groups with a key, (key, group id), sorted by key.
fn sorted_groups(keys: &CowVec<KeyBytes>) -> Vec<(&[u8], u32)> {
    let mut groups: Vec<(&[u8], u32)> =
        (0..keys.len()).filter_map(|g| Some((keys.get(g)?.as_ref(), g as u32))).collect();
    groups.sort_unstable_by(|a, b| a.0.cmp(b.0));
    groups
}

struct PaneView {
    end_utc: i64,
    start: i64,
    end: i64,
    keys: CowVec<KeyBytes>,
    accs: GroupAccs,
    written: Option<IdSet>,
    runs: Vec<Arc<Run>>,
}

/// The window aggregation's state at a barrier.
pub struct WindowView {
    panes: Vec<PaneView>,
    keys: Arc<Keys>,
    /// End instants of the panes fired since the last view; `None` on the
    /// first view.
    fired: Option<Vec<i64>>,
    /// The aggregates, to merge the groups of spilled panes with (`None` when
    /// no pane has spilled).
    aggs: Option<Arc<Vec<AggDef>>>,
}

impl WindowView {
    /// Takes a view of `panes` (by end instant); `O(chunks)`, no copy of keys
    /// or accumulators. `fired`: the panes fired since the last view, if known.
    pub fn take<'a>(
        panes: impl Iterator<Item = (&'a i64, &'a mut Pane)>,
        keys: Arc<Keys>,
        fired: Option<Vec<i64>>,
        aggs: &[AggDef],
    ) -> WindowView {
        let panes: Vec<PaneView> = panes.map(|(end_utc, p)| p.share(*end_utc)).collect();
        let aggs = panes.iter().any(|p| !p.runs.is_empty()).then(|| Arc::new(aggs.to_vec()));
        WindowView { panes, keys, fired, aggs }
    }
}

/// Writes a record of a group: `encode` writes its accumulators.
type Write<'a> = dyn FnMut(u32, &PaneView, &[u8], &dyn Fn(&mut Writer)) + 'a;

/// Keys whose key groups are computed at once: bounds the memory of decoded
/// key columns while a large pane is encoded.
const KEY_BATCH: usize = 16 * CHUNK;

/// A record's key part: end instant, start, end, key (see [`entries`]).
fn key_part(w: &mut Writer, p: &PaneView, key: &[u8]) {
    w.i64(p.end_utc);
    w.i64(p.start);
    w.i64(p.end);
    w.bytes(key);
}

impl WindowView {
    /// Calls `write` for each group of each pane that `pick` selects (all of
    /// them without keys, and every key of a spilled pane, merged), with its
    /// key group.
    fn each(
        &self,
        max_parallelism: usize,
        go_on: GoOn,
        pick: impl Fn(&PaneView) -> Option<&IdSet>,
        write: &mut Write<'_>,
    ) -> Result<(), OpError> {
        for p in &self.panes {
            if self.keys.converter.is_none() {
                write(0, p, &[], &|w| p.accs.encode_group(0, w));
                continue;
            }
            if !p.runs.is_empty() {
                self.each_merged(p, max_parallelism, go_on, write)?;
                continue;
            }
            let only = pick(p);
            let mut groups: Box<dyn Iterator<Item = u32>> = match only {
                Some(ids) => Box::new(ids.iter().map(|g| g as u32)),
                None => Box::new(0..p.keys.len() as u32),
            };
            let mut batch: Vec<(u32, &[u8])> = Vec::with_capacity(KEY_BATCH.min(p.keys.len()));
            loop {
                if !go_on() {
                    return Err(abandoned());
                }
                batch.clear();
                batch.extend(
                    groups.by_ref().take(KEY_BATCH).filter_map(|g| Some((g, p.keys.get(g as usize)?.as_ref()))),
                );
                if batch.is_empty() {
                    break;
                }
                let keys: Vec<&[u8]> = batch.iter().map(|(_, k)| *k).collect();
                let kgs = self.keys.key_groups(&keys, max_parallelism)?;
                for ((g, key), kg) in batch.iter().zip(kgs) {
                    write(kg, p, key, &|w| p.accs.encode_group(*g, w));
                }
            }
        }
        Ok(())
    }

    /// Every key of a spilled pane once, its runs and memory merged, a batch
    /// at a time.
    fn each_merged(
        &self,
        p: &PaneView,
        max_parallelism: usize,
        go_on: GoOn,
        write: &mut Write<'_>,
    ) -> Result<(), OpError> {
        let aggs =
            self.aggs.as_ref().ok_or_else(|| OpError::Other("a spilled pane's view lacks its aggregates".into()))?;
        let memory = sorted_groups(&p.keys);
        merged_batches(
            &p.runs,
            &memory,
            |g, w| p.accs.encode_group(g, w),
            aggs,
            |m| {
                if !go_on() {
                    return Err(abandoned());
                }
                let kgs = self.keys.key_groups(&m.keys(), max_parallelism)?;
                for ((key, g), kg) in m.groups.iter().zip(kgs) {
                    write(kg, p, key, &|w| m.accs.encode_group(*g, w));
                }
                Ok(())
            },
        )
    }
}

impl StateView for WindowView {
    /// Entry per (window, key): end instant, start, end, key, accumulators.
    fn encode(&self, max_parallelism: usize, out: &mut KeyGroupWriters, go_on: GoOn) -> Result<(), OpError> {
        self.each(max_parallelism, go_on, |_| None, &mut |kg, p, key, accs| {
            let w = out.writer(kg);
            key_part(w, p, key);
            accs(w);
        })
    }

    fn entries(&self) -> Option<&dyn EntryView> {
        Some(self)
    }
}

impl EntryView for WindowView {
    fn encode_base(&self, max_parallelism: usize, out: &mut KeyGroupWriters, go_on: GoOn) -> Result<(), OpError> {
        self.each(max_parallelism, go_on, |_| None, &mut |kg, p, key, accs| {
            entries::put_with(out.writer(kg), |w| key_part(w, p, key), accs);
        })
    }

    fn knows_changes(&self) -> bool {
        self.fired.is_some()
    }

    /// A prefix delete per pane fired since the last view, in every owned key
    /// group; then the groups written since the last view (every group of a
    /// pane opened since).
    fn encode_changes(
        &self,
        max_parallelism: usize,
        owned: std::ops::Range<u32>,
        out: &mut KeyGroupWriters,
        go_on: GoOn,
    ) -> Result<(), OpError> {
        let Some(fired) = &self.fired else { return Err(OpError::Other("no changes were tracked".into())) };
        for end_utc in fired {
            for kg in owned.clone() {
                entries::delete_prefix(out.writer(kg), &end_utc.to_le_bytes());
            }
        }
        self.each(max_parallelism, go_on, |p| p.written.as_ref(), &mut |kg, p, key, accs| {
            entries::put_with(out.writer(kg), |w| key_part(w, p, key), accs);
        })
    }
}
