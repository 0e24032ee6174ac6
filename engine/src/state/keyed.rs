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
//!   at another parallelism hands each subtask exactly its keys;
//! - once a view has been taken, every slot written through `get_mut`,
//!   `slot_mut`, `insert` or `values_mut` and every removed key is recorded
//!   until the next view, which then knows what changed since the previous
//!   one ([`StateView::entries`], incremental checkpoints). Reads through
//!   `get` are not. If removals outgrow the state, tracking stops and the
//!   next view counts as knowing nothing (a full base is written).

use std::sync::Arc;

use hashbrown::HashMap;

use super::codec::{Reader, Writer};
use super::cow::CowVec;
use super::entries::IdSet;
use super::{EntryView, GoOn, StateView, abandoned};
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
    /// What changed since the last view; `None` before the first view or
    /// after tracking overflowed.
    changes: Option<Changes>,
}

/// Slots written and keys removed since a view.
#[derive(Default)]
struct Changes {
    written: IdSet,
    removed: Vec<Arc<[u8]>>,
}

/// Removed keys tracked at most, beyond the number of live keys.
const MAX_REMOVED: usize = 4096;

impl<V: StateValue> Default for KeyedState<V> {
    fn default() -> Self {
        KeyedState { index: HashMap::new(), slots: CowVec::new(), free: Vec::new(), changes: None }
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
        self.written(id);
        self.slots.get_mut(id as usize).and_then(|s| s.as_mut()).map(|s| &mut s.value)
    }

    /// The slot of a key: valid until the key is removed.
    pub fn slot(&self, key: &[u8]) -> Option<u32> {
        self.index.get(key).copied()
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
        self.written(id);
        self.index.insert(key, id);
        id
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let (key, id) = self.index.remove_entry(key)?;
        self.free.push(id);
        if let Some(c) = &mut self.changes {
            c.removed.push(key);
            if c.removed.len() > MAX_REMOVED.max(self.index.len()) {
                self.changes = None;
            }
        }
        self.slots.get_mut(id as usize).and_then(Option::take).map(|s| s.value)
    }

    fn written(&mut self, slot: u32) {
        if let Some(c) = &mut self.changes {
            c.written.insert(slot as usize);
        }
    }

    /// Every key and value, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.slots.iter().flatten().map(|s| (s.key.as_ref(), &s.value))
    }

    /// Every value, mutably, in slot order (each counts as written).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        if let Some(c) = &mut self.changes {
            for &id in self.index.values() {
                c.written.insert(id as usize);
            }
        }
        self.slots.iter_mut().flatten().map(|s| &mut s.value)
    }

    /// A view for a checkpoint; O(chunks) plus the changes since the last
    /// view. `keys` computes key groups.
    pub fn view(&mut self, keys: Arc<Keys>) -> KeyedView<V> {
        let changes = self.changes.replace(Changes::default());
        KeyedView { slots: self.slots.share(), keys, changes }
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
    /// What changed since the previous view, if known.
    changes: Option<Changes>,
}

/// Keys whose key groups are computed at once.
const KEY_BATCH: usize = 16 * super::cow::CHUNK;

impl<V: StateValue> KeyedView<V> {
    /// Writes each slot of `live` into its key group with `write`, computing
    /// key groups a batch at a time.
    fn each<'a>(
        &self,
        live: impl Iterator<Item = &'a Slot<V>>,
        max_parallelism: usize,
        out: &mut KeyGroupWriters,
        go_on: GoOn,
        write: impl Fn(&mut Writer, &Slot<V>),
    ) -> Result<(), OpError> {
        let mut live = live.peekable();
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
                write(out.writer(kg), slot);
            }
        }
        Ok(())
    }
}

/// A record's key part: the key as [`Writer::bytes`] writes it.
fn key_part(key: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(key);
    w.buf
}

fn put_slot<V: StateValue>(w: &mut Writer, s: &Slot<V>) {
    super::entries::put_with(w, |w| w.bytes(&s.key), |w| s.value.encode(w));
}

impl<V: StateValue> StateView for KeyedView<V> {
    /// A record per key: the key, then the value.
    fn encode(&self, max_parallelism: usize, out: &mut KeyGroupWriters, go_on: GoOn) -> Result<(), OpError> {
        self.each(self.slots.iter().flatten(), max_parallelism, out, go_on, |w, slot| {
            w.bytes(&slot.key);
            slot.value.encode(w);
        })
    }

    fn entries(&self) -> Option<&dyn EntryView> {
        Some(self)
    }
}

impl<V: StateValue> EntryView for KeyedView<V> {
    fn encode_base(&self, max_parallelism: usize, out: &mut KeyGroupWriters, go_on: GoOn) -> Result<(), OpError> {
        self.each(self.slots.iter().flatten(), max_parallelism, out, go_on, put_slot)
    }

    fn knows_changes(&self) -> bool {
        self.changes.is_some()
    }

    fn encode_changes(
        &self,
        max_parallelism: usize,
        _owned: std::ops::Range<u32>,
        out: &mut KeyGroupWriters,
        go_on: GoOn,
    ) -> Result<(), OpError> {
        let Some(c) = &self.changes else { return Err(OpError::Other("no changes were tracked".into())) };
        for batch in c.removed.chunks(KEY_BATCH) {
            let keys: Vec<&[u8]> = batch.iter().map(|k| k.as_ref()).collect();
            for (key, kg) in keys.iter().zip(self.keys.key_groups(&keys, max_parallelism)?) {
                super::entries::delete(out.writer(kg), &key_part(key));
            }
        }
        let written = c.written.iter().filter_map(|id| self.slots.get(id).and_then(Option::as_ref));
        self.each(written, max_parallelism, out, go_on, put_slot)
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
    use crate::state::entries;

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

    /// The records of a view as `encode` writes them, per key group.
    fn full(view: &KeyedView<i64>) -> KeyGroupWriters<'static> {
        let mut out = KeyGroupWriters::new();
        view.encode(8, &mut out, &|| true).unwrap();
        out
    }

    fn as_map(records: &[u8]) -> std::collections::BTreeMap<Vec<u8>, i64> {
        let mut r = Reader::new(records);
        let mut m = std::collections::BTreeMap::new();
        while !r.is_empty() {
            let k = r.bytes().unwrap().to_vec();
            m.insert(k, r.i64().unwrap());
        }
        m
    }

    #[test]
    fn a_base_and_the_changes_of_each_later_view_merge_into_the_state_of_the_last() {
        use crate::state::EntryView;
        use arrow::array::{ArrayRef, Int64Array};
        use arrow::datatypes::DataType;
        use datafusion_physical_expr::expressions::Column;
        let col: Arc<dyn datafusion_physical_expr::PhysicalExpr> = Arc::new(Column::new("k", 0));
        let keys = Arc::new(Keys::new(vec![col], vec![DataType::Int64]).unwrap());
        let converter = arrow::row::RowConverter::new(vec![arrow::row::SortField::new(DataType::Int64)]).unwrap();
        let key = |i: u64| {
            let col: ArrayRef = Arc::new(Int64Array::from(vec![i as i64]));
            converter.convert_columns(&[col]).unwrap().row(0).as_ref().to_vec()
        };
        let mut s: KeyedState<i64> = KeyedState::default();
        let mut chains: std::collections::BTreeMap<u32, Vec<Vec<u8>>> = Default::default();
        let mut rng = 7u64;
        let mut next = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            rng >> 33
        };
        for round in 0..6 {
            for _ in 0..200 {
                let k = key(next() % 300);
                match next() % 4 {
                    0 => {
                        s.remove(&k);
                    }
                    1 => {
                        if let Some(v) = s.get_mut(&k) {
                            *v += 1;
                        }
                    }
                    _ => {
                        s.insert(&k, round);
                    }
                }
            }
            let view = s.view(keys.clone());
            let mut out = KeyGroupWriters::new();
            if round == 0 {
                assert!(!view.knows_changes(), "the first view knows no earlier one");
                view.encode_base(8, &mut out, &|| true).unwrap();
            } else {
                assert!(view.knows_changes());
                view.encode_changes(8, 0..8, &mut out, &|| true).unwrap();
            }
            for (kg, w) in out {
                chains.entry(kg).or_default().push(w.buf);
            }
            let want = full(&view);
            for kg in 0..8 {
                let chain: Vec<&[u8]> =
                    chains.get(&kg).map(|c| c.iter().map(|b| b.as_slice()).collect()).unwrap_or_default();
                let merged = entries::merge(&chain, 1).unwrap();
                let expect = want.get(&kg).map(|w| as_map(&w.buf)).unwrap_or_default();
                assert_eq!(as_map(&merged), expect, "round {round}, key group {kg}");
            }
        }
    }

    #[test]
    fn changes_hold_only_what_was_written() {
        use crate::state::EntryView;
        let keys = Arc::new(Keys::new(vec![], vec![]).unwrap());
        let mut s: KeyedState<i64> = KeyedState::default();
        for i in 0..1000u32 {
            s.insert(&i.to_le_bytes(), 1);
        }
        let _ = s.view(keys.clone());
        *s.get_mut(&5u32.to_le_bytes()).unwrap() = 2;
        s.remove(&6u32.to_le_bytes());
        let _ = s.get(&7u32.to_le_bytes());
        let view = s.view(keys);
        let mut out = KeyGroupWriters::new();
        view.encode_changes(128, 0..128, &mut out, &|| true).unwrap();
        let mut base = KeyGroupWriters::new();
        view.encode_base(128, &mut base, &|| true).unwrap();
        let bytes = |w: &KeyGroupWriters| w.values().map(|w| w.buf.len()).sum::<usize>();
        assert_eq!(entries::merge(&[&base[&0].buf, &out[&0].buf], 1).unwrap().len(), 999 * (4 + 4 + 8));
        assert!(bytes(&out) * 100 < bytes(&base), "{} of {}", bytes(&out), bytes(&base));
    }
}
