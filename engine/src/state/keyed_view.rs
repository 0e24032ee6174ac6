//! A consistent view of a [`super::keyed::KeyedState`] at a checkpoint barrier, and how it
//! is written: whole (a base) or as the changes since the previous view. See
//! the invariants of [`super::keyed`] and [`super::disk`].

use std::sync::Arc;

use super::codec::Writer;
use super::cow::CowVec;
use super::disk::DiskView;
use super::keyed::{Changes, Slot, StateValue};
use super::{EntryView, GoOn, StateView, abandoned};
use crate::error::OpError;
use crate::operators::KeyGroupWriters;
use crate::operators::window::Keys;

/// A consistent view of a [`super::keyed::KeyedState`] at a checkpoint barrier.
pub struct KeyedView<V: StateValue> {
    slots: CowVec<Option<Slot<V>>>,
    keys: Arc<Keys>,
    /// What changed since the previous view, if known.
    changes: Option<Changes>,
    /// The state's spilled keys at the barrier, with the disk backend.
    disk: Option<DiskView>,
}

/// Keys whose key groups are computed at once.
const KEY_BATCH: usize = 16 * super::cow::CHUNK;

/// Encoded records (key, value) whose key groups are computed together.
type Records = Vec<(Box<[u8]>, Box<[u8]>)>;

/// How a record is written: the key, then the value's encoding.
type Write = fn(&mut Writer, &[u8], &[u8]);

/// A record of a full snapshot: the key, then the value.
fn record(w: &mut Writer, key: &[u8], value: &[u8]) {
    w.bytes(key);
    w.buf.extend_from_slice(value);
}

/// A record of an incremental snapshot: a put of the key.
fn put(w: &mut Writer, key: &[u8], value: &[u8]) {
    super::entries::put_with(w, |w| w.bytes(key), |w| w.buf.extend_from_slice(value));
}

impl<V: StateValue> KeyedView<V> {
    pub(super) fn new(
        slots: CowVec<Option<Slot<V>>>,
        keys: Arc<Keys>,
        changes: Option<Changes>,
        disk: Option<DiskView>,
    ) -> Self {
        KeyedView { slots, keys, changes, disk }
    }

    /// Writes each slot of `live` into its key group with `write`, computing
    /// key groups a batch at a time.
    fn each_slot<'a>(
        &self,
        live: impl Iterator<Item = &'a Slot<V>>,
        max_parallelism: usize,
        out: &mut KeyGroupWriters,
        go_on: GoOn,
        write: Write,
    ) -> Result<(), OpError> {
        let mut live = live.peekable();
        let mut batch: Vec<&Slot<V>> = Vec::with_capacity(KEY_BATCH);
        let mut value = Writer::new();
        while live.peek().is_some() {
            if !go_on() {
                return Err(abandoned());
            }
            batch.clear();
            batch.extend(live.by_ref().take(KEY_BATCH));
            let keys: Vec<&[u8]> = batch.iter().map(|s| s.key.as_ref()).collect();
            let kgs = self.keys.key_groups(&keys, max_parallelism)?;
            for (slot, kg) in batch.iter().zip(kgs) {
                value.buf.clear();
                slot.value.encode(&mut value);
                write(out.writer(kg), &slot.key, &value.buf);
            }
        }
        Ok(())
    }

    /// Writes encoded records into their key groups a batch at a time.
    fn each_record(
        &self,
        batch: &mut Records,
        max_parallelism: usize,
        out: &mut KeyGroupWriters,
        write: Write,
    ) -> Result<(), OpError> {
        let keys: Vec<&[u8]> = batch.iter().map(|(k, _)| k.as_ref()).collect();
        for ((k, v), kg) in batch.iter().zip(self.keys.key_groups(&keys, max_parallelism)?) {
            write(out.writer(kg), k, v);
        }
        batch.clear();
        Ok(())
    }

    /// Every record of the view, heap and disk, written with `write`.
    fn all(&self, max_parallelism: usize, out: &mut KeyGroupWriters, go_on: GoOn, write: Write) -> Result<(), OpError> {
        self.each_slot(self.slots.iter().flatten(), max_parallelism, out, go_on, write)?;
        let Some(disk) = &self.disk else { return Ok(()) };
        let mut batch = Vec::with_capacity(KEY_BATCH);
        disk.each(|k, v| {
            batch.push((Box::from(k), Box::from(v)));
            if batch.len() == KEY_BATCH {
                if !go_on() {
                    return Err(abandoned());
                }
                self.each_record(&mut batch, max_parallelism, out, write)?;
            }
            Ok(())
        })?;
        self.each_record(&mut batch, max_parallelism, out, write)
    }
}

impl<V: StateValue> StateView for KeyedView<V> {
    /// A record per key: the key, then the value.
    fn encode(&self, max_parallelism: usize, out: &mut KeyGroupWriters, go_on: GoOn) -> Result<(), OpError> {
        self.all(max_parallelism, out, go_on, record)
    }

    fn entries(&self) -> Option<&dyn EntryView> {
        Some(self)
    }
}

impl<V: StateValue> EntryView for KeyedView<V> {
    fn encode_base(&self, max_parallelism: usize, out: &mut KeyGroupWriters, go_on: GoOn) -> Result<(), OpError> {
        self.all(max_parallelism, out, go_on, put)
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
                let mut part = Writer::new();
                part.bytes(key);
                super::entries::delete(out.writer(kg), &part.buf);
            }
        }
        let written = c.written.iter().filter_map(|id| self.slots.get(id).and_then(Option::as_ref));
        self.each_slot(written, max_parallelism, out, go_on, put)?;
        let Some(disk) = &self.disk else { return Ok(()) };
        let mut batch = Vec::with_capacity(KEY_BATCH.min(c.spilled.len()));
        for key in &c.spilled {
            // A key spilled after it was written is on disk at the barrier
            // (loading it would have taken it out of `spilled`).
            if let Some(v) = disk.get(key)? {
                batch.push((Box::from(key.as_ref()), Box::from(v.as_ref())));
            }
            if batch.len() == KEY_BATCH {
                if !go_on() {
                    return Err(abandoned());
                }
                self.each_record(&mut batch, max_parallelism, out, put)?;
            }
        }
        self.each_record(&mut batch, max_parallelism, out, put)
    }
}
