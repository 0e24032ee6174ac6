//! A small binary encoding for operator state: fixed-width little-endian
//! numbers and length-prefixed byte strings. Readers fail with a clear error on
//! truncated or malformed input instead of panicking, because state files come
//! from storage and may be damaged.

use crate::error::OpError;

#[derive(Default, Debug, Clone)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i128(&mut self, v: i128) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    pub fn bool(&mut self, v: bool) {
        self.u8(v as u8);
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.buf.extend_from_slice(v);
    }
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    /// Bytes that are already an encoding, appended as they are.
    pub fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    /// An optional value: a presence byte, then the value.
    pub fn opt<T>(&mut self, v: &Option<T>, f: impl FnOnce(&mut Self, &T)) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                f(self, x);
            }
        }
    }
}

#[derive(Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn truncated() -> OpError {
    OpError::Other("state is truncated or malformed".into())
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    /// Reads with `f`, and also returns the bytes `f` read.
    pub fn span<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, OpError>) -> Result<(T, &'a [u8]), OpError> {
        let start = self.pos;
        let v = f(self)?;
        Ok((v, &self.buf[start..self.pos]))
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], OpError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or_else(truncated)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], OpError> {
        self.take(N)?.try_into().map_err(|_| truncated())
    }
    pub fn u8(&mut self) -> Result<u8, OpError> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, OpError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, OpError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, OpError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn i128(&mut self) -> Result<i128, OpError> {
        Ok(i128::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64, OpError> {
        Ok(f64::from_bits(u64::from_le_bytes(self.array()?)))
    }
    pub fn bool(&mut self) -> Result<bool, OpError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(truncated()),
        }
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], OpError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub fn str(&mut self) -> Result<String, OpError> {
        Ok(self.str_ref()?.to_owned())
    }
    /// A string, borrowed from the buffer.
    pub fn str_ref(&mut self) -> Result<&'a str, OpError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| truncated())
    }
    pub fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, OpError>) -> Result<Option<T>, OpError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(f(self)?)),
            _ => Err(truncated()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut w = Writer::new();
        w.u32(7);
        w.i64(-3);
        w.f64(1.5);
        w.bytes(b"key");
        w.opt(&Some(9i128), |w, v| w.i128(*v));
        w.opt(&None::<i64>, |w, v| w.i64(*v));
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.u32().unwrap(), 7);
        assert_eq!(r.i64().unwrap(), -3);
        assert_eq!(r.f64().unwrap(), 1.5);
        assert_eq!(r.bytes().unwrap(), b"key");
        assert_eq!(r.opt(|r| r.i128()).unwrap(), Some(9));
        assert_eq!(r.opt(|r| r.i64()).unwrap(), None);
        assert!(r.is_empty());
        let cut = &w.buf[..w.buf.len() - 3];
        let mut r = Reader::new(cut);
        r.u32().unwrap();
        r.i64().unwrap();
        r.f64().unwrap();
        r.bytes().unwrap();
        assert!(r.opt(|r| r.i128()).is_err());
        // A huge length prefix is an error, not an allocation or a panic.
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1]);
        assert!(r.bytes().is_err());
    }
}
