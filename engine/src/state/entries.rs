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
//!   and a later put of a key replaces its value in place (a key deleted and
//!   put again counts as first put then);
//! - a chain starts with one snapshot's sections (a base), whose puts are of
//!   distinct keys; [`merge`] indexes only the keys of the later sections;
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
/// operator's own format (see the module doc). The first `base` sections are
/// one snapshot's, the oldest (the base, split where it was spilled): its
/// puts are of distinct keys, and its deletes have nothing before them.
///
/// Only the keys that the later sections touch are indexed, so a restore
/// from a base with a few changes hashes each base record once, into a small
/// table, instead of indexing every record.
pub fn merge(chain: &[&[u8]], base: usize) -> Result<Vec<u8>, OpError> {
    let base = base.clamp(usize::from(!chain.is_empty()), chain.len());
    let (first, later) = chain.split_at(base);
    let mut changes = Changes::replay(later)?;
    // Base records that the changes left alone or replaced in place, in order.
    let mut out = Vec::new();
    for section in first {
        let mut r = Reader::new(section);
        while !r.is_empty() {
            match r.u8()? {
                PUT => {
                    let (key, value) = (r.bytes()?, r.bytes()?);
                    let value = match changes.touched.get(key) {
                        // Put again while it was live: replaced in place.
                        Some(&Fate::Put(i)) => match changes.appended[i].take() {
                            Some((_, v)) => v,
                            None => continue,
                        },
                        Some(_) => continue,
                        None if changes.prefix_deleted(key) => continue,
                        None => value,
                    };
                    out.extend_from_slice(key);
                    out.extend_from_slice(value);
                }
                DELETE | DELETE_PREFIX => {
                    r.bytes()?;
                }
                other => return Err(unknown_tag(other)),
            }
        }
    }
    for (k, v) in changes.appended.into_iter().flatten() {
        out.extend_from_slice(k);
        out.extend_from_slice(v);
    }
    Ok(out)
}

fn unknown_tag(tag: u8) -> OpError {
    OpError::Other(format!("state entries: unknown entry tag {tag}"))
}

/// What the later sections of a chain did to a key they touched.
#[derive(Clone, Copy)]
enum Fate {
    /// Put while a base record of the key, if there is one, was still live:
    /// that record keeps its place with the value at `appended[i]`; without
    /// one, the record is new and appended there.
    Put(usize),
    /// Put after the key was deleted: a new record, at `appended[i]`.
    Appended(usize),
    /// Gone.
    Deleted,
}

/// The later sections of a chain, replayed on the keys they touch.
struct Changes<'a> {
    touched: HashMap<&'a [u8], Fate>,
    /// Records put after the base's, in first-put order; a deleted one (or
    /// one that turns out to replace a base record in place) leaves a hole.
    appended: Vec<Option<(&'a [u8], &'a [u8])>>,
    /// Prefix deletes, by prefix length: each removes every base record
    /// under it that was not touched before it.
    prefixes: HashMap<usize, hashbrown::HashSet<&'a [u8]>>,
}

impl<'a> Changes<'a> {
    fn replay(sections: &[&'a [u8]]) -> Result<Self, OpError> {
        let mut c = Changes { touched: HashMap::new(), appended: Vec::new(), prefixes: HashMap::new() };
        for section in sections {
            let mut r = Reader::new(section);
            while !r.is_empty() {
                match r.u8()? {
                    PUT => {
                        let (key, value) = (r.bytes()?, r.bytes()?);
                        let fate = match c.touched.get(key).copied() {
                            Some(Fate::Put(i) | Fate::Appended(i)) => {
                                c.appended[i] = Some((key, value));
                                continue;
                            }
                            // A base record under a prefix deleted before is gone.
                            None if !c.prefix_deleted(key) => Fate::Put,
                            _ => Fate::Appended,
                        };
                        c.appended.push(Some((key, value)));
                        c.touched.insert(key, fate(c.appended.len() - 1));
                    }
                    DELETE => {
                        let key = r.bytes()?;
                        if let Some(Fate::Put(i) | Fate::Appended(i)) = c.touched.insert(key, Fate::Deleted) {
                            c.appended[i] = None;
                        }
                    }
                    DELETE_PREFIX => {
                        let prefix = r.bytes()?;
                        for (_, fate) in c.touched.iter_mut().filter(|(k, _)| k.starts_with(prefix)) {
                            if let Fate::Put(i) | Fate::Appended(i) = *fate {
                                c.appended[i] = None;
                            }
                            *fate = Fate::Deleted;
                        }
                        c.prefixes.entry(prefix.len()).or_default().insert(prefix);
                    }
                    other => return Err(unknown_tag(other)),
                }
            }
        }
        Ok(c)
    }

    /// Whether a prefix delete removed `key` (as a base record).
    fn prefix_deleted(&self, key: &[u8]) -> bool {
        self.prefixes.iter().any(|(len, set)| key.get(..*len).is_some_and(|p| set.contains(p)))
    }
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

    pub fn remove(&mut self, id: usize) {
        if let Some(w) = self.words.get_mut(id / 64) {
            *w &= !(1 << (id % 64));
        }
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
        assert_eq!(merge(&[&base.buf, &d1.buf, &d2.buf], 1).unwrap(), b"a10c3b20");
        assert_eq!(merge(&[&base.buf], 1).unwrap(), b"a1b2c3");
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
        assert_eq!(merge(&[&base.buf, &d.buf], 1).unwrap(), b"p2/x2p1/z4");
    }

    /// The merge before it indexed only the changes: every key indexed.
    fn reference(chain: &[&[u8]]) -> Vec<u8> {
        let mut records: Vec<Option<(Vec<u8>, Vec<u8>)>> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        for section in chain {
            let mut r = Reader::new(section);
            while !r.is_empty() {
                match r.u8().unwrap() {
                    PUT => {
                        let (key, value) = (r.bytes().unwrap().to_vec(), r.bytes().unwrap().to_vec());
                        match index.get(&key) {
                            Some(&i) => records[i] = Some((key, value)),
                            None => {
                                index.insert(key.clone(), records.len());
                                records.push(Some((key, value)));
                            }
                        }
                    }
                    DELETE => {
                        if let Some(i) = index.remove(r.bytes().unwrap()) {
                            records[i] = None;
                        }
                    }
                    _ => {
                        let prefix = r.bytes().unwrap().to_vec();
                        index.retain(|k, i| {
                            let gone = k.starts_with(&prefix);
                            if gone {
                                records[*i] = None;
                            }
                            !gone
                        });
                    }
                }
            }
        }
        records.into_iter().flatten().flat_map(|(k, v)| [k, v].concat()).collect()
    }

    #[test]
    fn merging_equals_indexing_every_key_on_random_chains() {
        let mut rng = 11u64;
        let mut next = |n: u64| {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (rng >> 33) % n
        };
        for round in 0..300 {
            let key = |p: u64, x: u64| vec![p as u8, x as u8];
            let mut sections: Vec<Writer> = Vec::new();
            // The base: distinct keys, spilled into a few sections.
            let mut base: Vec<Vec<u8>> = (0..next(30)).map(|_| key(next(3), next(12))).collect();
            base.sort();
            base.dedup();
            let parts = 1 + next(3) as usize;
            for chunk in base.chunks(base.len().div_ceil(parts).max(1)) {
                let mut w = Writer::new();
                for k in chunk {
                    put(&mut w, k, val(&[round as u8]));
                }
                sections.push(w);
            }
            let base_sections = sections.len().max(1);
            if sections.is_empty() {
                sections.push(Writer::new());
            }
            // Later snapshots: deletes first, then puts of distinct keys.
            for step in 0..next(5) {
                let mut w = Writer::new();
                for _ in 0..next(4) {
                    match next(3) {
                        0 => delete_prefix(&mut w, &[next(3) as u8]),
                        _ => delete(&mut w, &key(next(3), next(12))),
                    }
                }
                let mut puts: Vec<Vec<u8>> = (0..next(8)).map(|_| key(next(3), next(12))).collect();
                puts.sort();
                puts.dedup();
                for k in puts {
                    put(&mut w, &k, val(&[100 + step as u8]));
                }
                sections.push(w);
            }
            let chain: Vec<&[u8]> = sections.iter().map(|w| w.buf.as_slice()).collect();
            assert_eq!(merge(&chain, base_sections).unwrap(), reference(&chain), "round {round}");
        }
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
        assert!(merge(&[&w.buf[..w.buf.len() - 1]], 1).is_err());
        assert!(merge(&[&[9u8][..]], 1).unwrap_err().to_string().contains("unknown entry tag 9"));
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
