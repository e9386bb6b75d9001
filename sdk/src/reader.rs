//! A bounds-checked big-endian reader, shared by the ATI1 input and ATO1 output decoders.

use crate::Error;

/// Reads `bytes` front to back; every short read is an error of the decoder's own kind.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    error: fn(String) -> Error,
}

impl<'a> Reader<'a> {
    /// A reader whose errors are built with `error` (e.g. `Error::Input`).
    pub(crate) fn new(bytes: &'a [u8], error: fn(String) -> Error) -> Self {
        Self { bytes, pos: 0, error }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| {
            (self.error)(format!("truncated: wanted {n} bytes at offset {}", self.pos))
        })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
}
