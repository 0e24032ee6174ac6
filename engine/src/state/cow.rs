//! A copy-on-write vector of fixed-size chunks: the storage of keyed state that
//! an asynchronous snapshot can take a consistent view of in O(chunks).
//!
//! [`CowVec::share`] turns every chunk the vector owns into an `Arc` and
//! returns a second `CowVec` over the same chunks. Either side that writes to a
//! shared chunk first takes it back: without a copy when the other side has
//! let go of it (`Arc::try_unwrap`), with a copy of that one chunk otherwise.
//! So a view taken at a checkpoint barrier keeps the values of that moment
//! while the task thread goes on updating, and only chunks written during the
//! upload are ever copied.
//!
//! Why chunks of owned `Vec`s, and not an `Arc` per chunk always: the hot path
//! (an aggregate's update of one group) then costs a branch on the chunk's
//! state, never an atomic operation; `Arc`s exist only between a snapshot and
//! the first write after it.

use std::ops::{Index, IndexMut};
use std::sync::Arc;

/// Entries per chunk: small enough that copying one on write is cheap, large
/// enough that a snapshot of millions of groups touches few chunks.
pub const CHUNK: usize = 1024;

#[derive(Debug)]
enum Chunk<T> {
    Own(Vec<T>),
    Shared(Arc<Vec<T>>),
}

impl<T: Clone> Chunk<T> {
    fn get(&self) -> &Vec<T> {
        match self {
            Chunk::Own(v) => v,
            Chunk::Shared(a) => a,
        }
    }

    /// The chunk, writable: a shared one is taken back first.
    fn own(&mut self) -> &mut Vec<T> {
        if let Chunk::Shared(a) = self {
            let a = std::mem::take(a);
            *self = Chunk::Own(Arc::try_unwrap(a).unwrap_or_else(|a| a.as_ref().clone()));
        }
        match self {
            Chunk::Own(v) => v,
            // Not reached: the chunk was just made owned.
            Chunk::Shared(a) => Arc::make_mut(a),
        }
    }

    /// Shares the chunk and returns the other handle to it.
    fn share(&mut self) -> Chunk<T> {
        if let Chunk::Own(v) = self {
            *self = Chunk::Shared(Arc::new(std::mem::take(v)));
        }
        match self {
            Chunk::Shared(a) => Chunk::Shared(a.clone()),
            // Not reached: the chunk was just shared.
            Chunk::Own(v) => Chunk::Own(v.clone()),
        }
    }
}

/// A vector of `CHUNK`-sized chunks, shareable with a snapshot (see the module doc).
#[derive(Debug)]
pub struct CowVec<T> {
    chunks: Vec<Chunk<T>>,
    len: usize,
}

impl<T> Default for CowVec<T> {
    fn default() -> Self {
        CowVec { chunks: Vec::new(), len: 0 }
    }
}

impl<T: Clone> CowVec<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, value: T) {
        if self.len.is_multiple_of(CHUNK) {
            let mut v = Vec::with_capacity(CHUNK);
            v.push(value);
            self.chunks.push(Chunk::Own(v));
        } else if let Some(last) = self.chunks.last_mut() {
            last.own().push(value);
        }
        self.len += 1;
    }

    /// Grows to `len` entries made by `make`; never shrinks.
    pub fn resize_with(&mut self, len: usize, mut make: impl FnMut() -> T) {
        while self.len < len {
            self.push(make());
        }
    }

    /// Grows to `len` copies of `value`; never shrinks.
    pub fn resize(&mut self, len: usize, value: T) {
        self.resize_with(len, || value.clone());
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK).and_then(|c| c.get().get(i % CHUNK))
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.chunks.get_mut(i / CHUNK).and_then(|c| c.own().get_mut(i % CHUNK))
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.get().iter())
    }

    /// Every entry, writable (shared chunks are taken back).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.chunks.iter_mut().flat_map(|c| c.own().iter_mut())
    }

    /// A view of the current values that later writes on either side do not
    /// change; it costs an `Arc` per chunk, not a copy of the entries.
    pub fn share(&mut self) -> CowVec<T> {
        CowVec { chunks: self.chunks.iter_mut().map(Chunk::share).collect(), len: self.len }
    }

    /// Chunks that are shared (with a view, or were and not written since).
    pub fn shared_chunks(&self) -> usize {
        self.chunks.iter().filter(|c| matches!(c, Chunk::Shared(_))).count()
    }
}

impl<T: Clone> Index<usize> for CowVec<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK].get()[i % CHUNK]
    }
}

impl<T: Clone> IndexMut<usize> for CowVec<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i / CHUNK].own()[i % CHUNK]
    }
}

impl<T: Clone> FromIterator<T> for CowVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v = CowVec::new();
        for x in iter {
            v.push(x);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_keeps_the_values_of_its_moment() {
        let mut v: CowVec<u64> = (0..3000).collect();
        let view = v.share();
        v[5] += 100;
        v[2500] = 0;
        v.push(3000);
        assert_eq!((view[5], view[2500], view.len()), (5, 2500, 3000));
        assert_eq!((v[5], v[2500], v.len(), v[3000]), (105, 0, 3001, 3000));
        assert!(view.iter().copied().eq(0..3000));
        // Only the chunks written were copied; the third one is still shared.
        assert_eq!(v.shared_chunks(), 1);
    }

    #[test]
    fn a_released_view_costs_no_copy() {
        let mut v: CowVec<String> = (0..CHUNK * 2).map(|i| i.to_string()).collect();
        let view = v.share();
        assert_eq!(v.shared_chunks(), 2);
        let before = view[0].as_ptr();
        drop(view);
        v[0].push('!');
        // The chunk was taken back, not copied: the string is where it was.
        assert_eq!(v[0].as_ptr(), before);
        assert_eq!(v[0], "0!");
        assert_eq!(v.shared_chunks(), 1);
    }

    #[test]
    fn the_view_side_copies_too_and_both_grow_apart() {
        let mut v: CowVec<i32> = CowVec::new();
        v.resize(10, 7);
        let mut view = v.share();
        view[0] = 1;
        v.resize_with(12, || 9);
        assert_eq!(view.iter().copied().collect::<Vec<_>>(), [1, 7, 7, 7, 7, 7, 7, 7, 7, 7]);
        assert_eq!(v.iter().copied().collect::<Vec<_>>(), [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 9, 9]);
        for x in v.iter_mut() {
            *x = 0;
        }
        assert_eq!(view[9], 7);
        assert_eq!(v.get(11), Some(&0));
        assert_eq!(v.get(12), None);
    }
}
