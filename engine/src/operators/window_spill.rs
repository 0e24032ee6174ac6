//! Window panes beyond memory, on the disk state backend: when the heap is over
//! the backend's budget, the window aggregation writes the groups of its
//! largest pane to a *run*, a local file of the groups sorted by key, and
//! starts that pane afresh in memory. Rows that arrive later for a key of the
//! pane make a new group in memory, a partial aggregate. Firing the pane, and a
//! checkpoint's view of it, read its runs and its memory side by side, in key
//! order, and merge each key's parts into one group.
//!
//! Invariants:
//! - a run holds each key of its pane once, sorted by key bytes; a pane's runs
//!   are in the order they were written, and all of them are older than its
//!   groups in memory;
//! - a key's aggregate is the merge of its parts, oldest first, as session
//!   windows merge (`GroupAccs::merge`), so that FIRST_VALUE, LAST_VALUE and
//!   LISTAGG keep arrival order;
//! - whatever reads a spilled pane (its firing, a checkpoint's view) sees each
//!   key once, merged: a snapshot never holds parts, so a restore needs
//!   nothing of this module, and a restored pane that outgrows the budget is
//!   spilled again;
//! - a run is immutable; it is deleted when its last holder (its pane, or a
//!   checkpoint's view still encoding) lets go of it. After `kill -9` the
//!   backend's directory, runs included, is removed by the next process.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use super::aggregate::{AggDef, GroupAccs};
use crate::error::OpError;
use crate::state::codec::{Reader, Writer};

/// Groups a firing or a view merges at once: bounds the memory of a spilled
/// pane's reading.
pub const MERGE_BATCH: usize = 8192;

/// The least a run is written with (estimated heap bytes of the groups it
/// takes off the heap).
pub const MIN_RUN_BYTES: usize = 64 << 10;

/// Runs a pane keeps at most: one more, and they are merged into one, so
/// that reading a pane opens a bounded number of files.
pub const MAX_RUNS: usize = 8;

/// One run: a pane's groups at one moment, sorted by key.
#[derive(Debug)]
pub struct Run {
    path: PathBuf,
    /// How many groups (keys) it holds.
    pub groups: u64,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn io_error(path: &std::path::Path, what: &str, e: impl std::fmt::Display) -> OpError {
    OpError::Other(format!("state backend 'disk': {what} window run {}: {e}", path.display()))
}

impl Run {
    /// Writes `groups` (key, group id) to `path`, sorted by key, with each
    /// group's accumulators as `encode` writes them.
    pub fn write(
        path: PathBuf,
        mut groups: Vec<(&[u8], u32)>,
        encode: impl Fn(u32, &mut Writer),
    ) -> Result<Run, OpError> {
        groups.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut out = RunWriter::create(path)?;
        for (key, g) in &groups {
            out.push(key, |w| encode(*g, w))?;
        }
        out.finish()
    }

    /// Merges `runs` (oldest first) into one run at `path`: each key once.
    pub fn compact(path: PathBuf, runs: &[Arc<Run>], aggs: &[AggDef]) -> Result<Run, OpError> {
        let mut out = RunWriter::create(path)?;
        merged_batches(
            runs,
            &[],
            |_, _| {},
            aggs,
            |m| {
                for (key, g) in &m.groups {
                    out.push(key, |w| m.accs.encode_group(*g, w))?;
                }
                Ok(())
            },
        )?;
        out.finish()
    }

    fn reader(&self) -> Result<RunReader, OpError> {
        let file = File::open(&self.path).map_err(|e| io_error(&self.path, "cannot open", e))?;
        Ok(RunReader { r: BufReader::with_capacity(1 << 16, file), path: self.path.clone() })
    }
}

/// A run being written, key after key in order.
struct RunWriter {
    /// The run, deleted if the writer is dropped unfinished.
    run: Run,
    out: BufWriter<File>,
    w: Writer,
}

impl RunWriter {
    fn create(path: PathBuf) -> Result<RunWriter, OpError> {
        let file = File::create(&path).map_err(|e| io_error(&path, "cannot create", e))?;
        Ok(RunWriter { run: Run { path, groups: 0 }, out: BufWriter::with_capacity(1 << 16, file), w: Writer::new() })
    }

    /// Appends a key (greater than the last) and its accumulators.
    fn push(&mut self, key: &[u8], accs: impl FnOnce(&mut Writer)) -> Result<(), OpError> {
        let w = &mut self.w;
        w.buf.clear();
        w.bytes(key);
        let at = w.buf.len();
        w.u32(0);
        accs(w);
        let n = (w.buf.len() - at - 4) as u32;
        w.buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
        self.out.write_all(&w.buf).map_err(|e| io_error(&self.run.path, "cannot write", e))?;
        self.run.groups += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<Run, OpError> {
        self.out.flush().map_err(|e| io_error(&self.run.path, "cannot write", e))?;
        Ok(self.run)
    }
}

/// A key and its accumulators, encoded.
type Record = (Vec<u8>, Vec<u8>);

struct RunReader {
    r: BufReader<File>,
    path: PathBuf,
}

impl RunReader {
    fn len(&mut self, eof_ok: bool) -> Result<Option<usize>, OpError> {
        let mut n = [0u8; 4];
        match self.r.read_exact(&mut n) {
            Ok(()) => Ok(Some(u32::from_le_bytes(n) as usize)),
            Err(e) if eof_ok && e.kind() == ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(io_error(&self.path, "cannot read", e)),
        }
    }

    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, OpError> {
        let mut v = vec![0; n];
        self.r.read_exact(&mut v).map_err(|e| io_error(&self.path, "cannot read", e))?;
        Ok(v)
    }

    /// The next record, `None` at the end.
    fn next(&mut self) -> Result<Option<Record>, OpError> {
        let Some(k) = self.len(true)? else { return Ok(None) };
        let key = self.bytes(k)?;
        let n = self.len(false)?.unwrap_or(0);
        Ok(Some((key, self.bytes(n)?)))
    }
}

/// Calls `f(key, parts)` for every key of a spilled pane, in key order:
/// `parts` are the key's accumulators, encoded, one per run that holds the
/// key (oldest first), then its group in memory's. `memory` is the pane's
/// groups in memory (key, group id), sorted by key; `encode` writes one.
fn each_merged(
    runs: &[Arc<Run>],
    memory: &[(&[u8], u32)],
    encode: impl Fn(u32, &mut Writer),
    mut f: impl FnMut(&[u8], &[&[u8]]) -> Result<(), OpError>,
) -> Result<(), OpError> {
    let mut readers: Vec<RunReader> = runs.iter().map(|r| r.reader()).collect::<Result<_, _>>()?;
    let mut heads: Vec<Option<Record>> = readers.iter_mut().map(RunReader::next).collect::<Result<_, _>>()?;
    let mut next_memory = 0;
    let mut mine = Writer::new();
    let mut parts: Vec<Vec<u8>> = Vec::new();
    loop {
        let least = heads
            .iter()
            .flatten()
            .map(|(k, _)| k.as_slice())
            .chain(memory.get(next_memory).map(|m| m.0))
            .min()
            .map(<[u8]>::to_vec);
        let Some(key) = least else { return Ok(()) };
        parts.clear();
        for (head, reader) in heads.iter_mut().zip(readers.iter_mut()) {
            if head.as_ref().is_some_and(|(k, _)| *k == key) {
                let next = reader.next()?;
                if let Some((_, v)) = std::mem::replace(head, next) {
                    parts.push(v);
                }
            }
        }
        mine.buf.clear();
        let in_memory = memory.get(next_memory).is_some_and(|m| m.0 == key.as_slice());
        if in_memory {
            encode(memory[next_memory].1, &mut mine);
            next_memory += 1;
        }
        let mut refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        if in_memory {
            refs.push(&mine.buf);
        }
        f(&key, &refs)?;
    }
}

/// Merged groups of a spilled pane, a batch at a time (see [`merged_batches`]).
pub struct Merged {
    /// Folded: ready to emit or encode.
    pub accs: GroupAccs,
    /// Each merged group's key and id in `accs`, in key order.
    pub groups: Vec<(Vec<u8>, u32)>,
}

impl Merged {
    fn new(aggs: &[AggDef]) -> Result<Merged, OpError> {
        Ok(Merged { accs: GroupAccs::with_bundles(aggs, true)?, groups: Vec::new() })
    }

    /// Adds a key whose parts are `parts`, merged oldest first.
    fn add(&mut self, key: &[u8], parts: &[&[u8]]) -> Result<(), OpError> {
        let mut parts = parts.iter();
        let Some(first) = parts.next() else { return Ok(()) };
        let g = self.accs.decode_group(&mut Reader::new(first))?;
        for p in parts {
            let later = self.accs.decode_group(&mut Reader::new(p))?;
            self.accs.merge(g, later)?;
        }
        self.groups.push((key.to_vec(), g));
        Ok(())
    }

    /// The keys of the batch, in order.
    pub fn keys(&self) -> Vec<&[u8]> {
        self.groups.iter().map(|(k, _)| k.as_slice()).collect()
    }
}

/// Calls `batch` with every key of a spilled pane merged (see
/// [`each_merged`]), [`MERGE_BATCH`] keys at a time: what a firing, a
/// checkpoint's view and a compaction read a pane with. An error from `batch`
/// (an abandoned checkpoint, a failed write) ends the read.
pub fn merged_batches(
    runs: &[Arc<Run>],
    memory: &[(&[u8], u32)],
    encode: impl Fn(u32, &mut Writer),
    aggs: &[AggDef],
    mut batch: impl FnMut(&Merged) -> Result<(), OpError>,
) -> Result<(), OpError> {
    let mut merged = Merged::new(aggs)?;
    let mut flush = |merged: &mut Merged| -> Result<(), OpError> {
        if merged.groups.is_empty() {
            return Ok(());
        }
        merged.accs.fold();
        batch(merged)?;
        *merged = Merged::new(aggs)?;
        Ok(())
    };
    each_merged(runs, memory, encode, |key, parts| {
        merged.add(key, parts)?;
        if merged.groups.len() >= MERGE_BATCH {
            flush(&mut merged)?;
        }
        Ok(())
    })?;
    flush(&mut merged)
}

#[cfg(test)]
#[path = "window_spill_tests.rs"]
mod tests;
