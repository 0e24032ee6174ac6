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

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::KeyGroupWriters;
use super::aggregate::GroupAccs;
use super::window::Keys;
use crate::error::OpError;
use crate::state::codec::Reader;
use crate::state::cow::{CHUNK, CowVec};
use crate::state::{GoOn, StateView, abandoned};

/// One window's groups.
pub struct Pane {
    pub start: i64,
    pub end: i64,
    /// Group ids, hashed by their key in `keys`.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// The key of each group, by group id; empty without keys (one group, 0).
    keys: CowVec<Box<[u8]>>,
    pub accs: GroupAccs,
}

impl Pane {
    pub fn new(start: i64, end: i64, accs: GroupAccs) -> Pane {
        Pane { start, end, index: HashTable::new(), hasher: DefaultHashBuilder::default(), keys: CowVec::new(), accs }
    }

    /// The group of `key`, added if it is new.
    pub fn group(&mut self, key: &[u8]) -> u32 {
        let h = self.hasher.hash_one(key);
        let keys = &self.keys;
        if let Some(g) = self.index.find(h, |&g| keys[g as usize].as_ref() == key) {
            return *g;
        }
        let g = self.accs.add_group();
        self.add_key(h, key, g);
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
    pub fn keys(&self) -> &CowVec<Box<[u8]>> {
        &self.keys
    }

    /// A view of the pane now (see the module doc).
    fn share(&mut self, end_utc: i64) -> PaneView {
        PaneView { end_utc, start: self.start, end: self.end, keys: self.keys.share(), accs: self.accs.share() }
    }
}

struct PaneView {
    end_utc: i64,
    start: i64,
    end: i64,
    keys: CowVec<Box<[u8]>>,
    accs: GroupAccs,
}

/// The window aggregation's state at a barrier.
pub struct WindowView {
    panes: Vec<PaneView>,
    keys: Arc<Keys>,
}

impl WindowView {
    /// Takes a view of `panes` (by end instant); `O(chunks)`, no copy of keys
    /// or accumulators.
    pub fn take<'a>(panes: impl Iterator<Item = (&'a i64, &'a mut Pane)>, keys: Arc<Keys>) -> WindowView {
        WindowView { panes: panes.map(|(end_utc, p)| p.share(*end_utc)).collect(), keys }
    }
}

/// Keys whose key groups are computed at once: bounds the memory of decoded
/// key columns while a large pane is encoded.
const KEY_BATCH: usize = 16 * CHUNK;

impl StateView for WindowView {
    /// Entry per (window, key): end instant, start, end, key, accumulators.
    fn encode(&self, max_parallelism: usize, out: &mut KeyGroupWriters, go_on: GoOn) -> Result<(), OpError> {
        for p in &self.panes {
            let mut write = |kg: u32, key: &[u8], g: u32| {
                let w = out.entry(kg).or_default();
                w.i64(p.end_utc);
                w.i64(p.start);
                w.i64(p.end);
                w.bytes(key);
                p.accs.encode_group(g, w);
            };
            if self.keys.converter.is_none() {
                write(0, &[], 0);
                continue;
            }
            let mut batch: Vec<&[u8]> = Vec::with_capacity(KEY_BATCH.min(p.keys.len()));
            let mut first = 0u32;
            let mut keys = p.keys.iter().peekable();
            while keys.peek().is_some() {
                if !go_on() {
                    return Err(abandoned());
                }
                batch.clear();
                batch.extend(keys.by_ref().take(KEY_BATCH).map(|k| k.as_ref()));
                let kgs = self.keys.key_groups(&batch, max_parallelism)?;
                for (i, (key, kg)) in batch.iter().zip(kgs).enumerate() {
                    write(kg, key, first + i as u32);
                }
                first += batch.len() as u32;
            }
        }
        Ok(())
    }
}
