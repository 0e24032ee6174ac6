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

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::KeyGroupWriters;
use super::aggregate::GroupAccs;
use super::window::Keys;
use crate::error::OpError;
use crate::state::cow::{CHUNK, CowVec};
use crate::state::{GoOn, StateView, abandoned};

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

    /// A view of every key's sessions now (see the module doc).
    pub fn share(&mut self) -> CowVec<Option<KeySessions>> {
        self.slots.share()
    }
}

/// The session aggregation's state at a barrier.
pub struct SessionView {
    pub slots: CowVec<Option<KeySessions>>,
    pub accs: GroupAccs,
    pub keys: Arc<Keys>,
}

impl StateView for SessionView {
    /// Entry per key: the key, then its sessions with their accumulators.
    fn encode(&self, max_parallelism: usize, out: &mut KeyGroupWriters, go_on: GoOn) -> Result<(), OpError> {
        let mut live = self.slots.iter().flatten().peekable();
        let mut batch: Vec<&KeySessions> = Vec::new();
        while live.peek().is_some() {
            if !go_on() {
                return Err(abandoned());
            }
            batch.clear();
            batch.extend(live.by_ref().take(16 * CHUNK));
            let keys: Vec<&[u8]> = batch.iter().map(|k| k.key.as_ref()).collect();
            let kgs = self.keys.key_groups(&keys, max_parallelism)?;
            for (k, kg) in batch.iter().zip(kgs) {
                let w = out.entry(kg).or_default();
                w.bytes(&k.key);
                w.u32(k.list.len() as u32);
                for s in &k.list {
                    w.i64(s.start);
                    w.i64(s.end);
                    w.i64(s.end_utc);
                    self.accs.encode_group(s.gid, w);
                }
            }
        }
        Ok(())
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
        let view = ss.share();
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
