//! The keyed state of session windows: each key's open sessions, and the view
//! of them that a checkpoint encodes off the task thread.
//!
//! Keys live in slots of a copy-on-write column ([`CowVec`]), each slot
//! holding one key and its sessions; a slot whose sessions have all fired is
//! freed and reused. The lookup from key to slot is a table of slot ids hashed
//! by the key they hold, so each key is stored once. A snapshot view shares
//! the slots and the accumulator columns chunk by chunk: taking it costs an
//! `Arc` per chunk, and while it is alive the task thread copies only the
//! chunks it writes.
//!
//! Incremental checkpoints: from the first view on, the state records which
//! slots were written and which keys lost their last session since the
//! previous view. A view then writes, as entries (see
//! [`crate::state::entries`]), a delete per such key and a put per written
//! slot: a record is a key and its sessions, so the entry's key part is the
//! key as the ordinary record writes it. A slot freed and reused within one
//! interval is both: its old key is deleted and its new one put.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::KeyGroupWriters;
use super::aggregate::GroupAccs;
use super::window::Keys;
use crate::error::OpError;
use crate::state::codec::Writer;
use crate::state::cow::{CHUNK, CowVec};
use crate::state::entries::{self, IdSet};
use crate::state::{EntryView, GoOn, StateView, abandoned};

#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub start: i64,
    pub end: i64,
    pub end_utc: i64,
    pub gid: u32,
}

/// One key and its open sessions.
#[derive(Debug, Clone)]
pub struct KeySessions {
    key: Box<[u8]>,
    list: Vec<Session>,
}

/// Every key's open sessions.
#[derive(Default)]
pub struct Sessions {
    /// Slot ids, hashed by the key in their slot.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    slots: CowVec<Option<KeySessions>>,
    free: Vec<u32>,
    /// What changed since the last view; `None` before the first one.
    changes: Option<Changes>,
}

/// What changed since a view: the slots written, and the keys whose last
/// session fired (their slots were freed).
#[derive(Default)]
pub struct Changes {
    written: IdSet,
    removed: Vec<Box<[u8]>>,
}

/// A session that fired: its end instant, the session, its key.
pub type Fired = (i64, Session, Box<[u8]>);

impl Sessions {
    /// Keys with open sessions.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The slot of `key`, if it has sessions.
    pub fn find(&self, key: &[u8]) -> Option<u32> {
        let slots = &self.slots;
        let held = |s: &u32| slots[*s as usize].as_ref().is_some_and(|k| k.key.as_ref() == key);
        self.index.find(self.hasher.hash_one(key), held).copied()
    }

    /// The sessions in slot `slot` (none for a free slot).
    pub fn list(&self, slot: u32) -> &[Session] {
        self.slots.get(slot as usize).and_then(|s| s.as_ref()).map_or(&[], |k| &k.list)
    }

    /// The sessions in slot `slot`, writable; `None` for a free slot.
    pub fn list_mut(&mut self, slot: u32) -> Option<&mut Vec<Session>> {
        self.mark(slot);
        self.slots.get_mut(slot as usize).and_then(|s| s.as_mut()).map(|k| &mut k.list)
    }

    /// Adds sessions to `key`'s.
    pub fn add(&mut self, key: &[u8], sessions: impl IntoIterator<Item = Session>) {
        if let Some(slot) = self.find(key) {
            if let Some(l) = self.list_mut(slot) {
                l.extend(sessions);
            }
            return;
        }
        let entry = Some(KeySessions { key: key.into(), list: sessions.into_iter().collect() });
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = entry;
                s
            }
            None => {
                self.slots.push(entry);
                (self.slots.len() - 1) as u32
            }
        };
        self.mark(slot);
        let (slots, hasher) = (&self.slots, &self.hasher);
        let rehash = |s: &u32| hasher.hash_one(slots[*s as usize].as_ref().map_or(&[][..], |k| k.key.as_ref()));
        self.index.insert_unique(hasher.hash_one(key), slot, rehash);
    }

    /// Takes out every session with `end_utc - 1 <= watermark` into `fired`;
    /// returns the smallest end instant of those left (`i64::MAX` if none).
    /// Only slots with a session that fires are written.
    pub fn fire(&mut self, watermark: i64, fired: &mut Vec<Fired>) -> i64 {
        let mut min_end = i64::MAX;
        for slot in 0..self.slots.len() {
            let Some(k) = self.slots[slot].as_ref() else { continue };
            if k.list.iter().all(|s| s.end_utc - 1 > watermark) {
                min_end = k.list.iter().fold(min_end, |m, s| m.min(s.end_utc));
                continue;
            }
            if let Some(c) = &mut self.changes {
                c.written.insert(slot);
            }
            let Some(k) = self.slots[slot].as_mut() else { continue };
            let key = &k.key;
            k.list.retain(|s| {
                if s.end_utc - 1 <= watermark {
                    fired.push((s.end_utc, *s, key.clone()));
                    false
                } else {
                    min_end = min_end.min(s.end_utc);
                    true
                }
            });
            if k.list.is_empty() {
                if let Some(c) = &mut self.changes {
                    c.removed.push(k.key.clone());
                }
                let h = self.hasher.hash_one(k.key.as_ref());
                self.slots[slot] = None;
                if let Ok(e) = self.index.find_entry(h, |s| *s as usize == slot) {
                    e.remove();
                }
                self.free.push(slot as u32);
            }
        }
        min_end
    }

    /// A view of every key's sessions now, with what changed since the last
    /// view (`None` for the first); tracking starts here (see the module doc).
    pub fn share(&mut self) -> (CowVec<Option<KeySessions>>, Option<Changes>) {
        let changes = self.changes.replace(Changes::default());
        (self.slots.share(), changes)
    }

    fn mark(&mut self, slot: u32) {
        if let Some(c) = &mut self.changes {
            c.written.insert(slot as usize);
        }
    }
}

/// The session aggregation's state at a barrier.
pub struct SessionView {
    pub slots: CowVec<Option<KeySessions>>,
    pub accs: GroupAccs,
    pub keys: Arc<Keys>,
    /// What changed since the previous view; `None` on the first.
    pub changes: Option<Changes>,
}

impl SessionView {
    /// Calls `write` for each of `items` with the key group of its key
    /// (`key_of`), computing key groups a batch of keys at a time.
    fn each<T>(
        &self,
        max_parallelism: usize,
        go_on: GoOn,
        items: &[T],
        key_of: impl Fn(&T) -> &[u8],
        mut write: impl FnMut(u32, &T),
    ) -> Result<(), OpError> {
        for batch in items.chunks(16 * CHUNK) {
            if !go_on() {
                return Err(abandoned());
            }
            let keys: Vec<&[u8]> = batch.iter().map(&key_of).collect();
            for (item, kg) in batch.iter().zip(self.keys.key_groups(&keys, max_parallelism)?) {
                write(kg, item);
            }
        }
        Ok(())
    }

    /// The live slots.
    fn live(&self) -> Vec<&KeySessions> {
        self.slots.iter().flatten().collect()
    }

    /// The sessions of a key's record (the part after the key).
    fn value(&self, k: &KeySessions, w: &mut Writer) {
        w.u32(k.list.len() as u32);
        for s in &k.list {
            w.i64(s.start);
            w.i64(s.end);
            w.i64(s.end_utc);
            self.accs.encode_group(s.gid, w);
        }
    }

    /// A put of each key's record, as entries.
    fn put_all(
        &self,
        max_parallelism: usize,
        go_on: GoOn,
        keys: &[&KeySessions],
        out: &mut KeyGroupWriters,
    ) -> Result<(), OpError> {
        self.each(
            max_parallelism,
            go_on,
            keys,
            |k| &k.key,
            |kg, k| {
                entries::put_with(out.writer(kg), |w| w.bytes(&k.key), |w| self.value(k, w));
            },
        )
    }
}

impl StateView for SessionView {
    /// Entry per key: the key, then its sessions with their accumulators.
    fn encode(&self, max_parallelism: usize, out: &mut KeyGroupWriters, go_on: GoOn) -> Result<(), OpError> {
        self.each(
            max_parallelism,
            go_on,
            &self.live(),
            |k| &k.key,
            |kg, k| {
                let w = out.writer(kg);
                w.bytes(&k.key);
                self.value(k, w);
            },
        )
    }

    fn entries(&self) -> Option<&dyn EntryView> {
        Some(self)
    }
}

impl EntryView for SessionView {
    fn encode_base(&self, max_parallelism: usize, out: &mut KeyGroupWriters, go_on: GoOn) -> Result<(), OpError> {
        self.put_all(max_parallelism, go_on, &self.live(), out)
    }

    fn knows_changes(&self) -> bool {
        self.changes.is_some()
    }

    /// A delete per key whose last session fired, then a put per slot written.
    fn encode_changes(
        &self,
        max_parallelism: usize,
        _owned: std::ops::Range<u32>,
        out: &mut KeyGroupWriters,
        go_on: GoOn,
    ) -> Result<(), OpError> {
        let Some(c) = &self.changes else { return Err(OpError::Other("no changes were tracked".into())) };
        self.each(
            max_parallelism,
            go_on,
            &c.removed,
            |k| k,
            |kg, key| {
                // The record's key part, as the ordinary record writes it.
                let mut record_key = Writer::default();
                record_key.bytes(key);
                entries::delete(out.writer(kg), &record_key.buf);
            },
        )?;
        let written: Vec<&KeySessions> =
            c.written.iter().filter_map(|slot| self.slots.get(slot).and_then(|s| s.as_ref())).collect();
        self.put_all(max_parallelism, go_on, &written, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(end_utc: i64, gid: u32) -> Session {
        Session { start: end_utc - 10, end: end_utc, end_utc, gid }
    }

    #[test]
    fn keys_are_found_fired_freed_and_their_slots_reused() {
        let mut ss = Sessions::default();
        ss.add(b"a", [s(10, 0)]);
        ss.add(b"b", [s(20, 1)]);
        ss.add(b"a", [s(30, 2)]);
        assert_eq!(ss.len(), 2);
        let a = ss.find(b"a").unwrap();
        assert_eq!(ss.list(a).iter().map(|x| x.gid).collect::<Vec<_>>(), [0, 2]);
        let (view, _) = ss.share();
        let mut fired = Vec::new();
        assert_eq!(ss.fire(20, &mut fired), 30);
        assert_eq!(fired.iter().map(|f| (f.0, f.2.as_ref())).collect::<Vec<_>>(), [(10, &b"a"[..]), (20, &b"b"[..])]);
        assert_eq!((ss.len(), ss.find(b"b")), (1, None));
        // The view still holds both keys with all their sessions.
        assert_eq!(view.iter().flatten().map(|k| k.list.len()).sum::<usize>(), 3);
        ss.add(b"c", [s(40, 3)]);
        assert_eq!(ss.slots.len(), 2, "b's slot is reused");
        assert_eq!(ss.list(ss.find(b"c").unwrap())[0].gid, 3);
        assert_eq!(ss.list(ss.find(b"a").unwrap())[0].gid, 2);
    }
}
