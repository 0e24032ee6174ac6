//! Keyed state of the changelog operators (group aggregation, joins, Top-N,
//! deduplication): one value per key, where a key is the row-encoded key
//! columns ([`Keys`]) that the keyed exchange routes by.
//!
//! Invariants:
//! - values live in a copy-on-write slot vector, so [`KeyedState::view`] takes a
//!   checkpoint's view in O(chunks) and the view is encoded off the task thread;
//! - a removed key's slot is emptied and reused, never shifted, so a slot id
//!   stays valid for the key that holds it;
//! - a view writes one record per live key into the key group the key hashes
//!   to, the same key group the exchange routes the key's rows to, so a restore
//!   at another parallelism hands each subtask exactly its keys.

use std::sync::Arc;

use hashbrown::HashMap;

use super::codec::{Reader, Writer};
use super::cow::CowVec;
use super::{GoOn, StateView, abandoned};
use crate::error::OpError;
use crate::operators::KeyGroupWriters;
use crate::operators::window::Keys;

/// A value kept per key, encodable with the state codec.
pub trait StateValue: Clone + Send + Sync + 'static {
    fn encode(&self, w: &mut Writer);
    fn decode(r: &mut Reader<'_>) -> Result<Self, OpError>;
}

#[derive(Clone)]
struct Slot<V> {
    key: Arc<[u8]>,
    value: V,
}

pub struct KeyedState<V: StateValue> {
    index: HashMap<Arc<[u8]>, u32>,
    slots: CowVec<Option<Slot<V>>>,
    free: Vec<u32>,
}

impl<V: StateValue> Default for KeyedState<V> {
    fn default() -> Self {
        KeyedState { index: HashMap::new(), slots: CowVec::new(), free: Vec::new() }
    }
}

impl<V: StateValue> KeyedState<V> {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        let id = *self.index.get(key)?;
        self.slots.get(id as usize).and_then(|s| s.as_ref()).map(|s| &s.value)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let id = *self.index.get(key)?;
        self.slots.get_mut(id as usize).and_then(|s| s.as_mut()).map(|s| &mut s.value)
    }

    /// The slot of a key: valid until the key is removed.
    pub fn slot(&self, key: &[u8]) -> Option<u32> {
        self.index.get(key).copied()
    }

    /// The value in a slot (see [`KeyedState::slot`]).
    pub fn slot_mut(&mut self, slot: u32) -> Option<&mut V> {
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
        let key: Arc<[u8]> = Arc::from(key);
        let slot = Some(Slot { key: key.clone(), value });
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
        self.index.insert(key, id);
        id
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let id = self.index.remove(key)?;
        self.free.push(id);
        self.slots.get_mut(id as usize).and_then(Option::take).map(|s| s.value)
    }

    /// Every key and value, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.slots.iter().flatten().map(|s| (s.key.as_ref(), &s.value))
    }

    /// Every value, mutably, in slot order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.slots.iter_mut().flatten().map(|s| &mut s.value)
    }

    /// A view for a checkpoint; O(chunks). `keys` computes key groups.
    pub fn view(&mut self, keys: Arc<Keys>) -> KeyedView<V> {
        KeyedView { slots: self.slots.share(), keys }
    }

    /// Loads the records a view wrote for one key group.
    pub fn restore(&mut self, state: &[u8]) -> Result<(), OpError> {
        let mut r = Reader::new(state);
        while !r.is_empty() {
            let key = r.bytes()?.to_vec();
            let value = V::decode(&mut r)?;
            self.insert(&key, value);
        }
        Ok(())
    }
}

/// A consistent view of a [`KeyedState`] at a checkpoint barrier.
pub struct KeyedView<V: StateValue> {
    slots: CowVec<Option<Slot<V>>>,
    keys: Arc<Keys>,
}

/// Keys whose key groups are computed at once.
const KEY_BATCH: usize = 16 * super::cow::CHUNK;

impl<V: StateValue> StateView for KeyedView<V> {
    /// A record per key: the key, then the value.
    fn encode(&self, max_parallelism: usize, out: &mut KeyGroupWriters, go_on: GoOn) -> Result<(), OpError> {
        let mut live = self.slots.iter().flatten().peekable();
        let mut batch: Vec<&Slot<V>> = Vec::with_capacity(KEY_BATCH);
        while live.peek().is_some() {
            if !go_on() {
                return Err(abandoned());
            }
            batch.clear();
            batch.extend(live.by_ref().take(KEY_BATCH));
            let keys: Vec<&[u8]> = batch.iter().map(|s| s.key.as_ref()).collect();
            let kgs = self.keys.key_groups(&keys, max_parallelism)?;
            for (slot, kg) in batch.iter().zip(kgs) {
                let w = out.entry(kg).or_default();
                w.bytes(&slot.key);
                slot.value.encode(w);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_keeps_the_values_of_its_moment_and_restores_them() {
        let keys = Arc::new(Keys::new(vec![], vec![]).unwrap());
        let mut s: KeyedState<i64> = KeyedState::default();
        s.insert(b"", 1);
        let view = s.view(keys.clone());
        *s.get_mut(b"").unwrap() = 2;
        let mut out = KeyGroupWriters::new();
        view.encode(128, &mut out, &|| true).unwrap();
        let mut back: KeyedState<i64> = KeyedState::default();
        back.restore(&out[&0].buf).unwrap();
        assert_eq!(back.get(b""), Some(&1));
        assert_eq!(s.remove(b""), Some(2));
        assert!(s.is_empty());
        s.insert(b"x", 3);
        assert_eq!(s.iter().count(), 1);
    }
}
