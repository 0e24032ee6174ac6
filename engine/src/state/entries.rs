//! Keyed state written as entries, so that a checkpoint can hold only what
//! changed since the previous one (incremental checkpoints).
//!
//! A section of entries is a sequence of:
//! - `put(key, value)`: the record `key ++ value` is live;
//! - `delete(key)`: the record of `key` is gone;
//! - `delete_prefix(prefix)`: every record whose key starts with `prefix` is
//!   gone (a window's pane, whose keys all start with its end instant).
//!
//! An operator's records are its ordinary snapshot records split in two: the
//! part that identifies the record (`key`) and the rest (`value`). [`merge`]
//! applies a chain of sections for one operator and key group, oldest first
//! (a base of puts, then each checkpoint's changes), and gives the records in
//! the operator's ordinary format, `key ++ value` one after the other, so an
//! operator restores from a chain exactly as from a full snapshot.
//!
//! Invariants:
//! - within a section, deletes are written before puts, and a section's
//!   deletes apply to the records of the sections before it only: a key
//!   deleted and put again in one interval is live after it;
//! - the merged records keep the order in which their keys were first put,
//!   and a later put of a key replaces its value in place;
//! - a truncated or malformed section is an error, never a panic.

use hashbrown::HashMap;

use super::codec::{Reader, Writer};
use crate::error::OpError;

const PUT: u8 = 0;
const DELETE: u8 = 1;
const DELETE_PREFIX: u8 = 2;

/// Writes a put: `key`, then the value that `value` writes.
pub fn put(w: &mut Writer, key: &[u8], value: impl FnOnce(&mut Writer)) {
    w.u8(PUT);
    w.bytes(key);
    let at = w.buf.len();
    w.u32(0);
    value(w);
    let len = (w.buf.len() - at - 4) as u32;
    w.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// Writes a put whose key is written by `key` (the operator's own encoding).
pub fn put_with(w: &mut Writer, key: impl FnOnce(&mut Writer), value: impl FnOnce(&mut Writer)) {
    w.u8(PUT);
    let at = w.buf.len();
    w.u32(0);
    key(w);
    let len = (w.buf.len() - at - 4) as u32;
    w.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    let at = w.buf.len();
    w.u32(0);
    value(w);
    let len = (w.buf.len() - at - 4) as u32;
    w.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

pub fn delete(w: &mut Writer, key: &[u8]) {
    w.u8(DELETE);
    w.bytes(key);
}

pub fn delete_prefix(w: &mut Writer, prefix: &[u8]) {
    w.u8(DELETE_PREFIX);
    w.bytes(prefix);
}

/// Applies `chain` (oldest first) and returns the live records in the
/// operator's own format (see the module doc).
pub fn merge(chain: &[&[u8]]) -> Result<Vec<u8>, OpError> {
    // Records in first-put order; a deleted one leaves a hole.
    let mut records: Vec<Option<(&[u8], &[u8])>> = Vec::new();
    let mut index: HashMap<&[u8], usize> = HashMap::new();
    for section in chain {
        let mut r = Reader::new(section);
        while !r.is_empty() {
            match r.u8()? {
                PUT => {
                    let (key, value) = (r.bytes()?, r.bytes()?);
                    match index.get(key) {
                        Some(&i) => records[i] = Some((key, value)),
                        None => {
                            index.insert(key, records.len());
                            records.push(Some((key, value)));
                        }
                    }
                }
                DELETE => {
                    if let Some(i) = index.remove(r.bytes()?) {
                        records[i] = None;
                    }
                }
                DELETE_PREFIX => {
                    let prefix = r.bytes()?;
                    index.retain(|k, i| {
                        let gone = k.starts_with(prefix);
                        if gone {
                            records[*i] = None;
                        }
                        !gone
                    });
                }
                other => return Err(OpError::Other(format!("state entries: unknown entry tag {other}"))),
            }
        }
    }
    let mut out = Vec::with_capacity(records.iter().flatten().map(|(k, v)| k.len() + v.len()).sum());
    for (k, v) in records.into_iter().flatten() {
        out.extend_from_slice(k);
        out.extend_from_slice(v);
    }
    Ok(out)
}

/// A growable set of small ids (slots, groups): what changed since a view.
#[derive(Debug, Default, Clone)]
pub struct IdSet {
    words: Vec<u64>,
}

impl IdSet {
    pub fn insert(&mut self, id: usize) {
        let w = id / 64;
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << (id % 64);
    }

    pub fn contains(&self, id: usize) -> bool {
        self.words.get(id / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// The ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let b = w.trailing_zeros() as usize;
                    w &= w - 1;
                    i * 64 + b
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(v: &[u8]) -> impl FnOnce(&mut Writer) + '_ {
        move |w| w.buf.extend_from_slice(v)
    }

    #[test]
    fn a_chain_of_changes_merges_into_the_records_of_its_end() {
        let mut base = Writer::new();
        put(&mut base, b"a", val(b"1"));
        put(&mut base, b"b", val(b"2"));
        put(&mut base, b"c", val(b"3"));
        let mut d1 = Writer::new();
        delete(&mut d1, b"b");
        put(&mut d1, b"a", val(b"10"));
        put(&mut d1, b"d", val(b"4"));
        let mut d2 = Writer::new();
        delete(&mut d2, b"d");
        put(&mut d2, b"b", val(b"20"));
        assert_eq!(merge(&[&base.buf, &d1.buf, &d2.buf]).unwrap(), b"a10c3b20");
        assert_eq!(merge(&[&base.buf]).unwrap(), b"a1b2c3");
    }

    #[test]
    fn a_prefix_delete_removes_every_record_under_it() {
        let mut base = Writer::new();
        put(&mut base, b"p1/x", val(b"1"));
        put(&mut base, b"p2/x", val(b"2"));
        put(&mut base, b"p1/y", val(b"3"));
        let mut d = Writer::new();
        delete_prefix(&mut d, b"p1/");
        put(&mut d, b"p1/z", val(b"4"));
        assert_eq!(merge(&[&base.buf, &d.buf]).unwrap(), b"p2/x2p1/z4");
    }

    #[test]
    fn an_operator_written_key_frames_like_a_plain_one() {
        let (mut a, mut b) = (Writer::new(), Writer::new());
        put(&mut a, b"key", val(b"v"));
        put_with(&mut b, |w| w.buf.extend_from_slice(b"key"), val(b"v"));
        assert_eq!(a.buf, b.buf);
    }

    #[test]
    fn damaged_sections_are_errors() {
        let mut w = Writer::new();
        put(&mut w, b"a", val(b"1"));
        assert!(merge(&[&w.buf[..w.buf.len() - 1]]).is_err());
        assert!(merge(&[&[9u8][..]]).unwrap_err().to_string().contains("unknown entry tag 9"));
    }

    #[test]
    fn id_sets_list_their_ids_in_order() {
        let mut s = IdSet::default();
        for id in [130, 3, 64, 3] {
            s.insert(id);
        }
        assert_eq!(s.iter().collect::<Vec<_>>(), [3, 64, 130]);
        assert_eq!(s.len(), 3);
        assert!(s.contains(64) && !s.contains(65));
    }
}
