//! Keyed state being encoded, one buffer per key group, and how those buffers
//! reach the state file without all of them being held at once.
//!
//! An encoding walks the state in the operator's order and appends each record
//! to its key group's buffer ([`KeyGroupWriters::writer`]). Held whole, the
//! buffers of a base are as large as the state itself, which doubled a
//! subtask's memory at every full checkpoint. A spilling set of buffers
//! ([`KeyGroupWriters::spilling`]) instead hands every non-empty buffer on, as
//! one section per key group, once they hold `limit` bytes together, and
//! empties them.
//!
//! Invariants:
//! - a spill happens only when a record is about to start, so every section
//!   handed on holds whole records (or whole entries);
//! - sections of one key group are handed on in the order they were written,
//!   so the sections of a key group, concatenated, are the buffer an
//!   unspilled encoding would hold: restore reads the records of every
//!   section of a key group in order (the entries of one snapshot keep their
//!   order too, deletes before puts);
//! - a failed hand-on is kept and reported by [`KeyGroupWriters::finish`];
//!   later records are dropped instead of piling up in memory.

use std::collections::BTreeMap;

use super::codec::Writer;

/// Where spilled sections go: `(key group, bytes)`.
pub type SpillTo<'a> = Box<dyn FnMut(u32, &[u8]) -> Result<(), String> + 'a>;

/// Buffers of keyed state being written, by key group.
#[derive(Default)]
pub struct KeyGroupWriters<'a> {
    groups: BTreeMap<u32, Writer>,
    spill: Option<Spill<'a>>,
}

struct Spill<'a> {
    limit: usize,
    /// Bytes in the buffers, up to the last hand-out of a writer.
    buffered: usize,
    /// The key group whose writer was handed out last, with its length then.
    last: Option<(u32, usize)>,
    to: SpillTo<'a>,
    failed: Option<String>,
}

impl<'a> KeyGroupWriters<'a> {
    /// Buffers that keep everything until [`Self::finish`] or iteration.
    pub fn new() -> Self {
        KeyGroupWriters::default()
    }

    /// Buffers that hand their sections to `to` once they hold `limit` bytes.
    pub fn spilling(limit: usize, to: SpillTo<'a>) -> Self {
        let spill = Spill { limit, buffered: 0, last: None, to, failed: None };
        KeyGroupWriters { groups: BTreeMap::new(), spill: Some(spill) }
    }

    /// The buffer to append the next record of `key_group` to. Call it once
    /// per record, before writing the record.
    pub fn writer(&mut self, key_group: u32) -> &mut Writer {
        if let Some(s) = &mut self.spill {
            if let Some((kg, len)) = s.last.take() {
                let now = self.groups.get(&kg).map_or(0, |w| w.buf.len());
                s.buffered += now.saturating_sub(len);
            }
            if s.buffered >= s.limit {
                s.hand_on(&mut self.groups);
            }
            let len = self.groups.get(&key_group).map_or(0, |w| w.buf.len());
            s.last = Some((key_group, len));
        }
        self.groups.entry(key_group).or_default()
    }

    /// Hands what is left to the spill (if spilling) and reports a failed
    /// hand-on; without a spill, the buffers are what it returns.
    pub fn finish(mut self) -> Result<BTreeMap<u32, Writer>, String> {
        match self.spill.take() {
            None => Ok(self.groups),
            Some(mut s) => {
                s.hand_on(&mut self.groups);
                match s.failed {
                    Some(e) => Err(e),
                    None => Ok(BTreeMap::new()),
                }
            }
        }
    }
}

impl Spill<'_> {
    /// Hands every non-empty buffer on, in key-group order, and empties them
    /// (keeping their capacity for the next records).
    fn hand_on(&mut self, groups: &mut BTreeMap<u32, Writer>) {
        for (kg, w) in groups.iter_mut() {
            if !w.buf.is_empty() && self.failed.is_none() {
                self.failed = (self.to)(*kg, &w.buf).err();
            }
            w.buf.clear();
        }
        self.buffered = 0;
    }
}

impl std::ops::Deref for KeyGroupWriters<'_> {
    type Target = BTreeMap<u32, Writer>;
    fn deref(&self) -> &Self::Target {
        &self.groups
    }
}

impl IntoIterator for KeyGroupWriters<'_> {
    type Item = (u32, Writer);
    type IntoIter = std::collections::btree_map::IntoIter<u32, Writer>;
    fn into_iter(self) -> Self::IntoIter {
        self.groups.into_iter()
    }
}

impl<'w> IntoIterator for &'w KeyGroupWriters<'_> {
    type Item = (&'w u32, &'w Writer);
    type IntoIter = std::collections::btree_map::Iter<'w, u32, Writer>;
    fn into_iter(self) -> Self::IntoIter {
        self.groups.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_sections_of_a_key_group_concatenate_to_its_unspilled_buffer() {
        let records: Vec<(u32, Vec<u8>)> = (0..500u32).map(|i| (i % 7, vec![i as u8; 1 + (i % 13) as usize])).collect();
        let mut whole = KeyGroupWriters::new();
        for (kg, r) in &records {
            whole.writer(*kg).buf.extend_from_slice(r);
        }
        let whole = whole.finish().unwrap();
        let mut got: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        let (mut sections, mut most) = (0, 0);
        {
            let mut spilling = KeyGroupWriters::spilling(
                64,
                Box::new(|kg, bytes| {
                    got.entry(kg).or_default().extend_from_slice(bytes);
                    sections += 1;
                    Ok(())
                }),
            );
            for (kg, r) in &records {
                let w = spilling.writer(*kg);
                w.buf.extend_from_slice(r);
                most = most.max(spilling.values().map(|w| w.buf.len()).sum::<usize>());
            }
            assert!(spilling.finish().unwrap().is_empty());
        }
        assert!(sections > 7, "{sections} sections: it spilled");
        assert!(most < 64 + 14, "at most the limit and one record were buffered, not {most}");
        for (kg, w) in whole {
            assert_eq!(got.get(&kg), Some(&w.buf), "key group {kg}");
        }
    }

    #[test]
    fn a_failed_spill_is_reported_and_later_records_are_dropped() {
        let mut calls = 0;
        let mut w = KeyGroupWriters::spilling(
            4,
            Box::new(|_, _| {
                calls += 1;
                Err("disk full".to_string())
            }),
        );
        for i in 0..100u8 {
            w.writer(u32::from(i % 3)).buf.extend_from_slice(&[i; 8]);
        }
        assert!(w.values().map(|w| w.buf.len()).sum::<usize>() <= 8 + 4);
        assert_eq!(w.finish().unwrap_err(), "disk full");
        assert_eq!(calls, 1, "nothing is handed on after a failure");
    }
}
