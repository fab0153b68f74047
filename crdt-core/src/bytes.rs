//! Byte-level helpers for the binary formats: varints, a bounds-checked reader, compressed
//! blocks.
//!
//! Every read is checked: a reader never panics and never allocates more than the input could
//! fill, whatever bytes it is given.

use std::fmt;

/// Why bytes could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// The input ended in the middle of a value.
    Truncated,
    /// A varint longer than 64 bits.
    BadVarint,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Truncated => f.write_str("input ends in the middle of a value"),
            ReadError::BadVarint => f.write_str("a number is longer than 64 bits"),
        }
    }
}

/// Appends LEB128 varints and raw bytes to a vector.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    pub(crate) fn usize(&mut self, value: usize) {
        self.varint(value as u64);
    }

    /// A signed value, zig-zag encoded so small magnitudes stay small.
    pub(crate) fn signed(&mut self, value: i64) {
        self.varint(((value << 1) ^ (value >> 63)) as u64);
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// A length-prefixed byte string.
    pub(crate) fn block(&mut self, bytes: &[u8]) {
        self.usize(bytes.len());
        self.raw(bytes);
    }
}

/// Reads what [`Writer`] wrote, checking every bound.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes left, without consuming them.
    pub(crate) fn peek_rest(&self) -> &'a [u8] {
        self.bytes
    }

    /// How many bytes are left.
    pub(crate) fn remaining_len(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ReadError> {
        let (&first, rest) = self.bytes.split_first().ok_or(ReadError::Truncated)?;
        self.bytes = rest;
        Ok(first)
    }

    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, ReadError> {
        // Most numbers in our formats are below 128: one byte, no loop.
        if let Some((&first, rest)) = self.bytes.split_first()
            && first < 0x80
        {
            self.bytes = rest;
            return Ok(u64::from(first));
        }
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7F);
            if shift == 63 && bits > 1 {
                return Err(ReadError::BadVarint);
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ReadError::BadVarint)
    }

    /// A varint that must fit in `usize`.
    pub(crate) fn usize(&mut self) -> Result<usize, ReadError> {
        usize::try_from(self.varint()?).map_err(|_| ReadError::BadVarint)
    }

    #[inline]
    pub(crate) fn signed(&mut self) -> Result<i64, ReadError> {
        let raw = self.varint()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    pub(crate) fn raw(&mut self, len: usize) -> Result<&'a [u8], ReadError> {
        if len > self.bytes.len() {
            return Err(ReadError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    pub(crate) fn block(&mut self) -> Result<&'a [u8], ReadError> {
        let len = self.usize()?;
        self.raw(len)
    }

    /// A count of items that each take at least one byte: larger than what is left means the
    /// input lies, so it is refused before anything is allocated for it.
    pub(crate) fn count(&mut self) -> Result<usize, ReadError> {
        let count = self.usize()?;
        if count > self.bytes.len() {
            return Err(ReadError::Truncated);
        }
        Ok(count)
    }
}

const STORED: u8 = 0;
const LZ4: u8 = 1;
/// Blocks shorter than this are stored: compressing them gains nothing.
const COMPRESS_FROM: usize = 64;
/// LZ4 cannot expand data more than 255 times; a larger claim is a lie.
const LZ4_MAX_RATIO: usize = 255;

/// Why a compressed block could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockError {
    /// The bytes around or inside it could not be read.
    Read(ReadError),
    /// It does not decompress to what it claims.
    Corrupt(&'static str),
}

impl From<ReadError> for BlockError {
    fn from(error: ReadError) -> Self {
        BlockError::Read(error)
    }
}

/// Writes `raw` as a block: method (0 stored, 1 LZ4), raw length, stored length, bytes. Small
/// or incompressible data is stored as is.
pub(crate) fn write_block(out: &mut Writer, raw: &[u8]) {
    if raw.len() >= COMPRESS_FROM {
        let compressed = lz4_flex::block::compress(raw);
        if compressed.len() < raw.len() {
            out.varint(u64::from(LZ4));
            out.usize(raw.len());
            out.block(&compressed);
            return;
        }
    }
    out.varint(u64::from(STORED));
    out.usize(raw.len());
    out.block(raw);
}

/// Reads a block written by [`write_block`]; refuses a claimed size the input cannot hold
/// before allocating it.
pub(crate) fn read_block(reader: &mut Reader<'_>) -> Result<Vec<u8>, BlockError> {
    let method = reader.varint()?;
    let raw_len = reader.usize()?;
    let stored = reader.block()?;
    match u8::try_from(method) {
        Ok(STORED) if stored.len() == raw_len => Ok(stored.to_vec()),
        Ok(LZ4) if raw_len <= stored.len().saturating_mul(LZ4_MAX_RATIO) => {
            lz4_flex::block::decompress(stored, raw_len)
                .ok()
                .filter(|raw| raw.len() == raw_len)
                .ok_or(BlockError::Corrupt(
                    "a compressed block does not decompress",
                ))
        }
        Ok(STORED | LZ4) => Err(BlockError::Corrupt("a block's length is inconsistent")),
        _ => Err(BlockError::Corrupt("unknown compression method")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_refuse_overlong_input() {
        let mut writer = Writer::default();
        for value in [0, 1, 127, 128, 300, u64::MAX] {
            writer.varint(value);
        }
        writer.signed(-5);
        writer.signed(i64::MIN);
        let mut reader = Reader::new(&writer.bytes);
        for value in [0, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(reader.varint(), Ok(value));
        }
        assert_eq!(reader.signed(), Ok(-5));
        assert_eq!(reader.signed(), Ok(i64::MIN));
        assert!(reader.is_empty());
        assert_eq!(Reader::new(&[0xFF; 11]).varint(), Err(ReadError::BadVarint));
        assert_eq!(Reader::new(&[0x80]).varint(), Err(ReadError::Truncated));
    }
}
