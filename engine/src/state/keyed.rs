//! Keyed state of the changelog operators (group aggregation, joins, Top-N,
//! deduplication): one value per key, where a key is the row-encoded key
//! columns ([`Keys`]) that the keyed exchange routes by.
//!
//! Invariants:
//! - values live in a copy-on-write slot vector, so [`KeyedState::view`] takes a
//!   checkpoint's view in O(chunks) and the view is encoded off the task thread;
//! - a removed key's slot is emptied and reused, never shifted, so a slot id
//!   stays valid for the key that holds it until the key is removed or spilled;
//! - a view writes one record per live key into the key group the key hashes
//!   to, the same key group the exchange routes the key's rows to, so a restore
//!   at another parallelism hands each subtask exactly its keys;
//! - once a view has been taken, every key written through `get_mut`,
//!   `slot_mut`, `insert` or `retain_mut` and every removed key is recorded
//!   until the next view, which then knows what changed since the previous
//!   one ([`StateView::entries`], incremental checkpoints). Reads through
//!   `get` are not. If removals outgrow the state, tracking stops and the
//!   next view counts as knowing nothing (a full base is written);
//! - with the disk backend ([`super::disk`]), a key on disk is loaded back on
//!   its first access, and the heap's coldest keys (CLOCK) are spilled when
//!   the deployment's heap budget is exceeded. A written key that is spilled
//!   before the next view is remembered by key (`Changes::spilled`), and the
//!   view reads its value from the disk snapshot. A disk error is kept and
//!   returned by [`KeyedState::health`], which the operator's caller checks
//!   after every call, before the call's output leaves the operator.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashSet, HashTable};

use super::codec::{Reader, Writer};
use super::cow::CowVec;
use super::disk::Spill;
use super::entries::IdSet;
use super::key::KeyBytes;
use super::keyed_view::KeyedView;
use crate::error::OpError;
use crate::operators::window::Keys;

/// A value kept per key, encodable with the state codec.
pub trait StateValue: Clone + Send + Sync + 'static {
    fn encode(&self, w: &mut Writer);
    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError>;

    /// The heap bytes the value holds outside its slot (its blocks, with the
    /// allocator's rounding: [`super::value::block`]), for the disk backend's
    /// memory budget; `None` when the value cannot tell, and the backend
    /// estimates it from the encoding (`encoded`, its length).
    fn heap_size(&self) -> Option<usize> {
        None
    }
}

#[derive(Clone)]
pub(super) struct Slot<V> {
    pub(super) key: KeyBytes,
    pub(super) value: V,
}

pub struct KeyedState<V: StateValue> {
    /// The slot of each key on the heap, hashed by the key's bytes, which
    /// only the slot holds (a key is kept once: [`Index`]).
    index: Index,
    slots: CowVec<Option<Slot<V>>>,
    free: Vec<u32>,
    /// What changed since the last view; `None` before the first view or
    /// after tracking overflowed.
    changes: Option<Changes>,
    /// The disk side, with the disk backend.
    spill: Option<Box<Spilling>>,
    /// The first error of the disk backend.
    failed: Option<String>,
}

/// Keys written and keys removed since a view.
#[derive(Default)]
pub(super) struct Changes {
    pub(super) written: IdSet,
    pub(super) removed: Vec<Box<[u8]>>,
    /// Written keys spilled to disk since: their values are in the disk view.
    pub(super) spilled: HashSet<Box<[u8]>>,
}

/// Slot ids in a hash table keyed by the bytes of the key in each slot, so
/// that a key's bytes are stored once, in its slot (an index of its own keys
/// took 24 bytes per bucket and a heap block per key more).
#[derive(Default)]
struct Index {
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

fn key_of<V: Clone>(slots: &CowVec<Option<Slot<V>>>, id: u32) -> &[u8] {
    slots.get(id as usize).and_then(Option::as_ref).map_or(&[], |s| &s.key)
}

impl Index {
    fn len(&self) -> usize {
        self.table.len()
    }

    fn get<V: Clone>(&self, slots: &CowVec<Option<Slot<V>>>, key: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.table.find(hash, |&id| key_of(slots, id) == key).copied()
    }

    /// Adds the slot `id`, which already holds its key, not yet indexed.
    fn insert<V: Clone>(&mut self, slots: &CowVec<Option<Slot<V>>>, id: u32) {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(key_of(slots, id));
        self.table.insert_unique(hash, id, |&other| hasher.hash_one(key_of(slots, other)));
    }

    /// Takes a key out of the index (its slot still holds it); its slot.
    fn remove<V: Clone>(&mut self, slots: &CowVec<Option<Slot<V>>>, key: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        match self.table.find_entry(hash, |&id| key_of(slots, id) == key) {
            Ok(entry) => Some(entry.remove().0),
            Err(_) => None,
        }
    }

    fn ids(&self) -> Vec<u32> {
        self.table.iter().copied().collect()
    }
}

/// Removed keys tracked at most, beyond the number of live keys.
const MAX_REMOVED: usize = 4096;

/// What the disk backend adds to a keyed state.
struct Spilling {
    disk: Spill,
    /// Slots accessed since the CLOCK hand last passed them.
    referenced: IdSet,
    /// Slots never spilled: the keys of the last [`KeyedState::pin`].
    pinned: IdSet,
    hand: usize,
    /// Estimated heap bytes per key ([`heap_bytes`]).
    per_key: usize,
    /// Accesses until the next value is measured for `per_key`.
    until_sample: u32,
}

/// Heap bytes of a key besides its slot and value: its index entry (a slot
/// id and a control byte, with the hash table's spare capacity).
const KEY_OVERHEAD: usize = 8;

/// Estimated heap bytes of a key and its value: the slot, the index entry, a
/// key longer than [`KeyBytes`] holds inline, and what the value holds
/// ([`StateValue::heap_size`]); a value that cannot tell is taken at three
/// times its `encoded` length (vectors of 24-byte values, boxed strings,
/// block rounding), which errs on the side of spilling early. `encoded` is
/// called only then.
fn heap_bytes<V: StateValue>(key: usize, value: &V, encoded: impl FnOnce() -> usize) -> usize {
    let key_block = if key > super::key::INLINE { super::value::block(key) } else { 0 };
    let value = value.heap_size().unwrap_or_else(|| 3 * encoded());
    std::mem::size_of::<Option<Slot<V>>>() + KEY_OVERHEAD + key_block + value
}
/// One value in this many written is measured.
const SAMPLE_EVERY: u32 = 512;

/// Keys from which a dropped state is freed on a thread of its own.
const FREE_APART_KEYS: usize = 65_536;

/// A large state is freed off the task's thread: freeing millions of values
/// takes seconds (a tenth of a Top-N task's time over Nexmark's 4.6M bids),
/// and a task's exit, which a finishing job and a restart wait for, need not
/// wait for it. Snapshot views share the chunks they read and keep them.
impl<V: StateValue> Drop for KeyedState<V> {
    fn drop(&mut self) {
        if self.slots.len() < FREE_APART_KEYS {
            return;
        }
        let slots = std::mem::take(&mut self.slots);
        // Should the thread not start, the closure and the slots it holds are freed here.
        let _ = std::thread::Builder::new().name("sluice-free".into()).spawn(move || drop(slots));
    }
}

impl<V: StateValue> Default for KeyedState<V> {
    /// An empty state, on the disk backend when one is current on this thread
    /// ([`super::disk::with_backend`]).
    fn default() -> Self {
        let mut s = KeyedState {
            index: Index::default(),
            slots: CowVec::new(),
            free: Vec::new(),
            changes: None,
            spill: None,
            failed: None,
        };
        if let Some(backend) = super::disk::current() {
            match backend.partition() {
                Ok(disk) => {
                    s.spill = Some(Box::new(Spilling {
                        disk,
                        referenced: IdSet::default(),
                        pinned: IdSet::default(),
                        hand: 0,
                        per_key: std::mem::size_of::<Option<Slot<V>>>() + KEY_OVERHEAD + 3 * 64,
                        until_sample: 0,
                    }))
                }
                Err(e) => s.failed = Some(e),
            }
        }
        s
    }
}

impl<V: StateValue> KeyedState<V> {
    /// Keys held, on the heap and on disk.
    pub fn len(&self) -> usize {
        self.index.len() + self.spill.as_ref().map_or(0, |s| s.disk.on_disk)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys held on disk.
    pub fn spilled(&self) -> usize {
        self.spill.as_ref().map_or(0, |s| s.disk.on_disk)
    }

    /// The disk backend's first error, if any: the state may have lost
    /// writes since, and the operator must fail.
    pub fn health(&self) -> Result<(), OpError> {
        match &self.failed {
            None => Ok(()),
            Some(e) => Err(OpError::Other(e.clone())),
        }
    }

    pub fn get(&mut self, key: &[u8]) -> Option<&V> {
        let id = self.slot(key)?;
        self.slots.get(id as usize).and_then(|s| s.as_ref()).map(|s| &s.value)
    }

    /// The value of a key on the heap, without loading a spilled one: a key
    /// that is on disk reads as absent unless [`KeyedState::pin`] loaded it.
    pub fn peek(&self, key: &[u8]) -> Option<&V> {
        let id = self.index.get(&self.slots, key)?;
        self.slots.get(id as usize).and_then(|s| s.as_ref()).map(|s| &s.value)
    }

    /// Loads `keys` from disk where they were spilled, and keeps them on the
    /// heap until the next `pin`, so that [`KeyedState::peek`] sees them all
    /// at once (a batch's keys, read while other keys are borrowed).
    pub fn pin<'a>(&mut self, keys: impl Iterator<Item = &'a [u8]>) {
        let Some(s) = &mut self.spill else { return };
        s.pinned = IdSet::default();
        for key in keys {
            if let Some(id) = self.slot(key)
                && let Some(s) = &mut self.spill
            {
                s.pinned.insert(id as usize);
            }
        }
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let id = self.slot(key)?;
        self.slot_mut(id)
    }

    /// The slot of a key, loading it from disk if it was spilled: valid until
    /// the key is removed, or the next `insert`.
    pub fn slot(&mut self, key: &[u8]) -> Option<u32> {
        match self.index.get(&self.slots, key) {
            Some(id) => {
                if let Some(s) = &mut self.spill {
                    s.referenced.insert(id as usize);
                }
                Some(id)
            }
            None => self.load(key),
        }
    }

    /// The value in a slot (see [`KeyedState::slot`]), to read: not counted
    /// as written.
    pub fn value(&self, slot: u32) -> Option<&V> {
        self.slots.get(slot as usize).and_then(|s| s.as_ref()).map(|s| &s.value)
    }

    /// Sets the value of a key whose slot is `slot` (from [`KeyedState::slot`],
    /// `None`: the key is absent), adding the key if it is new; returns its slot.
    pub fn put(&mut self, slot: Option<u32>, key: &[u8], value: V) -> u32 {
        if let Some(id) = slot
            && let Some(v) = self.slot_mut(id)
        {
            *v = value;
            return id;
        }
        self.insert(key, value)
    }

    /// The value in a slot (see [`KeyedState::slot`]).
    pub fn slot_mut(&mut self, slot: u32) -> Option<&mut V> {
        self.written(slot);
        self.slots.get_mut(slot as usize).and_then(|s| s.as_mut()).map(|s| &mut s.value)
    }

    /// Sets the value of a key, adding the key if it is new; returns its slot.
    pub fn insert(&mut self, key: &[u8], value: V) -> u32 {
        if let Some(id) = self.slot(key)
            && let Some(v) = self.slot_mut(id)
        {
            *v = value;
            return id;
        }
        let id = self.place(KeyBytes::from(key), value);
        self.written(id);
        self.make_room(id);
        id
    }

    /// Puts a key that is in neither the index nor on disk into a slot.
    fn place(&mut self, key: KeyBytes, value: V) -> u32 {
        let slot = Some(Slot { key, value });
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(&self.slots, id);
        if let Some(s) = &mut self.spill {
            s.referenced.insert(id as usize);
        }
        id
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let value = match self.index.remove(&self.slots, key) {
            Some(id) => {
                self.free.push(id);
                self.removed(key);
                self.slots.get_mut(id as usize).and_then(Option::take).map(|s| s.value)
            }
            None => {
                let value = self.take_from_disk(key)?;
                self.removed(key);
                Some(value)
            }
        };
        if let Some(c) = &mut self.changes
            && !c.spilled.is_empty()
        {
            c.spilled.remove(key);
        }
        value
    }

    fn removed(&mut self, key: &[u8]) {
        if let Some(c) = &mut self.changes {
            c.removed.push(key.into());
            if c.removed.len() > MAX_REMOVED.max(self.index.len()) {
                self.changes = None;
            }
        }
    }

    fn written(&mut self, slot: u32) {
        if let Some(c) = &mut self.changes {
            c.written.insert(slot as usize);
        }
        if let Some(s) = &mut self.spill {
            s.referenced.insert(slot as usize);
        }
    }

    /// Calls `f` with every key and value, on the heap and on disk.
    pub fn scan(&mut self, mut f: impl FnMut(&[u8], &V)) {
        for s in self.slots.iter().flatten() {
            f(&s.key, &s.value);
        }
        let Some(s) = &self.spill else { return };
        let result = s.disk.each(|k, v| {
            f(k, &V::decode(&mut Reader::new(v))?);
            Ok(())
        });
        self.fail(result);
    }

    /// The keys whose values `pred` holds for, on the heap and on disk.
    pub fn keys_where(&mut self, mut pred: impl FnMut(&V) -> bool) -> Vec<Box<[u8]>> {
        let mut out = Vec::new();
        self.scan(|k, v| {
            if pred(v) {
                out.push(Box::from(k));
            }
        });
        out
    }

    /// Every key and value, on the heap and on disk, as `scan` collects
    /// them; for tests and small states.
    pub fn entries(&mut self) -> Vec<(Box<[u8]>, V)> {
        let mut out = Vec::new();
        self.scan(|k, v| out.push((Box::from(k), v.clone())));
        out
    }

    /// Updates every value with `f` (each counts as written), and removes the
    /// keys for which it returns `false`.
    pub fn retain_mut(&mut self, mut f: impl FnMut(&mut V) -> bool) {
        let mut gone: Vec<Box<[u8]>> = Vec::new();
        for id in self.index.ids() {
            if let Some(slot) = self.slots.get_mut(id as usize).and_then(|s| s.as_mut())
                && !f(&mut slot.value)
            {
                gone.push(Box::from(&*slot.key));
            }
            self.written(id);
        }
        if let Some(s) = &mut self.spill {
            let mut rewrite: Vec<(Box<[u8]>, Option<V>)> = Vec::new();
            let result = s.disk.each(|k, v| {
                let mut v = V::decode(&mut Reader::new(v))?;
                let keep = f(&mut v);
                rewrite.push((Box::from(k), keep.then_some(v)));
                Ok(())
            });
            self.fail(result);
            for (k, v) in rewrite {
                match v {
                    None => gone.push(k),
                    Some(v) => self.rewrite_on_disk(&k, &v),
                }
            }
        }
        for k in gone {
            self.remove(&k);
        }
    }

    /// A view for a checkpoint; O(chunks) plus the changes since the last
    /// view. `keys` computes key groups.
    pub fn view(&mut self, keys: Arc<Keys>) -> KeyedView<V> {
        let changes = self.changes.replace(Changes::default());
        let disk = self.spill.as_ref().map(|s| s.disk.snapshot());
        KeyedView::new(self.slots.share(), keys, changes, disk)
    }

    /// Loads the records a view wrote for one key group.
    pub fn restore(&mut self, state: &[u8]) -> Result<(), OpError> {
        let mut r = Reader::new(state);
        while !r.is_empty() {
            let key = r.bytes()?.to_vec();
            let value = V::decode(&mut r)?;
            self.insert(&key, value);
        }
        self.health()
    }

    /// Keeps the first disk error.
    fn fail<T>(&mut self, result: Result<T, OpError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                if self.failed.is_none() {
                    self.failed = Some(e.to_string());
                }
                None
            }
        }
    }

    /// Takes a spilled key's value off the disk.
    fn take_from_disk(&mut self, key: &[u8]) -> Option<V> {
        let s = self.spill.as_mut()?;
        let taken = s.disk.take(key);
        let bytes = self.fail(taken)??;
        let value = V::decode(&mut Reader::new(&bytes))
            .map_err(|e| OpError::Other(format!("state backend 'disk': a spilled value does not decode: {e}")));
        self.fail(value)
    }

    /// Brings a spilled key back onto the heap; its slot.
    fn load(&mut self, key: &[u8]) -> Option<u32> {
        let value = self.take_from_disk(key)?;
        let changed = self.changes.as_mut().is_some_and(|c| c.spilled.remove(key));
        let id = self.place(KeyBytes::from(key), value);
        if changed {
            self.written(id);
        }
        self.make_room(id);
        Some(id)
    }

    /// Writes a value of a key that stays on disk (and counts it as written).
    fn rewrite_on_disk(&mut self, key: &[u8], value: &V) {
        let Some(s) = &self.spill else { return };
        let mut w = Writer::new();
        value.encode(&mut w);
        let result = s.disk.replace(key, w.buf);
        if self.fail(result).is_some()
            && let Some(c) = &mut self.changes
        {
            c.spilled.insert(Box::from(key));
        }
    }

    /// With the disk backend, after a key came onto the heap: measures a value
    /// now and then, and spills cold keys while the heap is over its budget.
    /// `keep` (the slot just placed) is not spilled.
    fn make_room(&mut self, keep: u32) {
        let Some(s) = &mut self.spill else { return };
        if s.until_sample == 0 {
            s.until_sample = SAMPLE_EVERY;
            if let Some(slot) = self.slots.get(keep as usize).and_then(Option::as_ref) {
                let encoded = || {
                    let mut w = Writer::new();
                    slot.value.encode(&mut w);
                    w.buf.len()
                };
                let measured = heap_bytes(slot.key.len(), &slot.value, encoded);
                s.per_key = (s.per_key * 7 + measured) / 8;
            }
        }
        s.until_sample -= 1;
        s.disk.publish(self.index.len() * s.per_key);
        if !s.disk.backend().over_budget() {
            return;
        }
        let excess = s.disk.backend().excess();
        let n = (excess / s.per_key.max(1)).clamp(1, (self.index.len() / 4).max(1));
        let result = self.spill_cold(n, keep);
        self.fail(result);
    }

    /// Spills up to `n` keys that the CLOCK hand finds unreferenced.
    fn spill_cold(&mut self, n: usize, keep: u32) -> Result<(), OpError> {
        let Some(s) = &mut self.spill else { return Ok(()) };
        let len = self.slots.len();
        let mut out: Vec<(Box<[u8]>, Vec<u8>)> = Vec::with_capacity(n);
        let mut measured = 0;
        // Two turns of the hand clear every reference bit, so this ends.
        let mut steps = 2 * len + 1;
        while out.len() < n && self.index.len() > 1 && steps > 0 {
            steps -= 1;
            let id = s.hand;
            s.hand = if s.hand + 1 >= len { 0 } else { s.hand + 1 };
            if id as u32 == keep || s.pinned.contains(id) || self.slots.get(id).is_none_or(Option::is_none) {
                continue;
            }
            if s.referenced.contains(id) {
                s.referenced.remove(id);
                continue;
            }
            let key: Box<[u8]> = Box::from(key_of(&self.slots, id as u32));
            self.index.remove(&self.slots, &key);
            let Some(slot) = self.slots.get_mut(id).and_then(Option::take) else { continue };
            self.free.push(id as u32);
            if let Some(c) = &mut self.changes
                && c.written.contains(id)
            {
                c.spilled.insert(key.clone());
            }
            let mut w = Writer::new();
            slot.value.encode(&mut w);
            measured += heap_bytes(slot.key.len(), &slot.value, || w.buf.len());
            out.push((key, w.buf));
        }
        if !out.is_empty() {
            s.per_key = (s.per_key + measured / out.len()) / 2;
        }
        s.disk.put_all(out)?;
        s.disk.publish(self.index.len() * s.per_key);
        Ok(())
    }
}

impl StateValue for i64 {
    fn encode(&self, w: &mut Writer) {
        w.i64(*self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError> {
        r.i64()
    }
}
