//! A key's bytes held compactly: short keys (most row-encoded keys: a BIGINT
//! is 9 bytes) inline, longer ones on the heap. Either way it takes 24 bytes,
//! where a boxed slice takes 16 plus a heap block of at least 32: per-key
//! memory is what limits how much keyed state fits in a worker.

use std::ops::Deref;

/// Bytes kept inline at most.
pub const INLINE: usize = 22;

#[derive(Clone)]
pub enum KeyBytes {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl From<&[u8]> for KeyBytes {
    fn from(key: &[u8]) -> Self {
        if key.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            KeyBytes::Inline { len: key.len() as u8, bytes }
        } else {
            KeyBytes::Heap(key.into())
        }
    }
}

impl Deref for KeyBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            KeyBytes::Inline { len, bytes } => &bytes[..*len as usize],
            KeyBytes::Heap(b) => b,
        }
    }
}

impl AsRef<[u8]> for KeyBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_any_length_keep_their_bytes_in_24_bytes() {
        assert_eq!(std::mem::size_of::<KeyBytes>(), 24);
        for n in [0, 1, 9, INLINE, INLINE + 1, 100] {
            let key: Vec<u8> = (0..n as u8).collect();
            let k = KeyBytes::from(key.as_slice());
            assert_eq!(&*k, key.as_slice());
            assert_eq!(matches!(k, KeyBytes::Inline { .. }), n <= INLINE);
        }
    }
}
