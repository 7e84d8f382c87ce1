//! Records and blocks: the byte layout of the log.
//!
//! A *block* is the unit of writing and of checksumming: a 24-byte header
//! then a payload of records. A *record* is one put or one delete.
//!
//! ```text
//! block:  magic u32 | payload_len u32 | seq u64 | flags u32 | crc32c u32 | payload
//! record: klen varint | vfield varint | [prev u48] | check u16 | key | value
//! ```
//!
//! `vfield` packs the kind and the prev flag: bit 0 says a `prev` location
//! follows; the rest is 0 for a tombstone, or `vlen + 1` for a value. With
//! the short keys and values this store is made for, a record costs 4 bytes
//! beyond its key and value. `check` is the low 16 bits of the crc32c of
//! every other byte of the record, so a read notices damage without reading
//! the whole block; the block crc is the authority for recovery and verify.

use crate::checksum::crc32c_append;
use crate::error::{Error, Result};
use std::path::Path;

pub const BLOCK_MAGIC: u32 = u32::from_le_bytes(*b"VDB1");
pub const BLOCK_HEADER: usize = 24;
/// The block ends a commit: it and every block since the previous commit
/// become durable together.
pub const FLAG_COMMIT: u32 = 1;
/// The block cancels every block since the previous commit (a rollback).
pub const FLAG_ABORT: u32 = 2;

/// A location in the log of one generation: `segment << seg_bits | offset`.
pub type Loc = u64;
/// Locations fit in 42 bits so that a slot holds a location and a tag.
pub const LOC_BITS: u32 = 42;
pub const LOC_MASK: u64 = (1 << LOC_BITS) - 1;

/// Largest key or value accepted (keeps a record well inside a segment).
pub const MAX_ITEM: usize = 256 << 20;

/// One decoded block header.
#[derive(Debug, Clone, Copy)]
pub struct BlockHeader {
    pub payload_len: u32,
    pub seq: u64,
    pub flags: u32,
    pub crc: u32,
}

impl BlockHeader {
    pub fn encode(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&BLOCK_MAGIC.to_le_bytes());
        out[4..8].copy_from_slice(&self.payload_len.to_le_bytes());
        out[8..16].copy_from_slice(&self.seq.to_le_bytes());
        out[16..20].copy_from_slice(&self.flags.to_le_bytes());
        out[20..24].copy_from_slice(&self.crc.to_le_bytes());
    }

    /// Parse a header; `None` when the magic is absent (end of written data
    /// or a torn write).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < BLOCK_HEADER || le_u32(bytes, 0) != BLOCK_MAGIC {
            return None;
        }
        Some(BlockHeader {
            payload_len: le_u32(bytes, 4),
            seq: le_u64(bytes, 8),
            flags: le_u32(bytes, 16),
            crc: le_u32(bytes, 20),
        })
    }

    /// The checksum a block with this header and payload must carry.
    pub fn compute_crc(payload_len: u32, seq: u64, flags: u32, payload: &[u8]) -> u32 {
        crc32c::crc32c_append(Self::crc_of_header(payload_len, seq, flags), payload)
    }

    /// The checksum's value over the header fields alone, before the
    /// payload (which `crc32c::crc32c_combine` can then append).
    pub fn crc_of_header(payload_len: u32, seq: u64, flags: u32) -> u32 {
        let mut head = [0u8; 16];
        head[0..4].copy_from_slice(&BLOCK_MAGIC.to_le_bytes());
        head[4..8].copy_from_slice(&payload_len.to_le_bytes());
        head[8..16].copy_from_slice(&seq.to_le_bytes());
        let crc = crc32c::crc32c(&head);
        crc32c::crc32c_append(crc, &flags.to_le_bytes())
    }
}

pub fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

pub fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Read a varint; `None` if it runs past the slice or past 10 bytes.
pub(crate) fn get_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// A record as written: `value` is `None` for a tombstone.
pub struct NewRecord<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
    pub prev: Option<Loc>,
}

impl NewRecord<'_> {
    /// Append the encoded record to `out`; returns its length.
    pub fn encode(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        put_varint(out, self.key.len() as u64);
        let kind = self.value.map_or(0, |v| v.len() as u64 + 1);
        put_varint(out, (kind << 1) | u64::from(self.prev.is_some()));
        if let Some(prev) = self.prev {
            out.extend_from_slice(&prev.to_le_bytes()[..6]);
        }
        let mut crc = crc32c_append(crc32c_append(0, &out[start..]), self.key);
        if let Some(v) = self.value {
            crc = crc32c_append(crc, v);
        }
        out.extend_from_slice(&(crc as u16).to_le_bytes());
        out.extend_from_slice(self.key);
        if let Some(v) = self.value {
            out.extend_from_slice(v);
        }
        out.len() - start
    }
}

/// A record read in place from the log.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
    pub prev: Option<Loc>,
    /// Total encoded length.
    pub len: usize,
}

impl<'a> RecordRef<'a> {
    /// Decode the record at the start of `b` and check its 16-bit check.
    /// `path` and `offset` only serve the error message.
    pub fn decode(b: &'a [u8], path: &Path, offset: u64) -> Result<Self> {
        let bad = |why: &str| Error::corrupt(path, offset, format!("bad record: {why}"));
        let mut pos = 0;
        let klen = get_varint(b, &mut pos).ok_or_else(|| bad("truncated header"))?;
        let vfield = get_varint(b, &mut pos).ok_or_else(|| bad("truncated header"))?;
        let has_prev = vfield & 1 == 1;
        let kind = vfield >> 1;
        let prev = if has_prev {
            let raw = b.get(pos..pos + 6).ok_or_else(|| bad("truncated header"))?;
            pos += 6;
            let mut x = [0u8; 8];
            x[..6].copy_from_slice(raw);
            Some(u64::from_le_bytes(x))
        } else {
            None
        };
        let head_end = pos;
        let check = b.get(pos..pos + 2).ok_or_else(|| bad("truncated header"))?;
        let check = u16::from_le_bytes([check[0], check[1]]);
        pos += 2;
        let klen = usize::try_from(klen).map_err(|_| bad("key length"))?;
        let vlen = if kind == 0 {
            0
        } else {
            usize::try_from(kind - 1).map_err(|_| bad("value length"))?
        };
        if klen > MAX_ITEM || vlen > MAX_ITEM {
            return Err(bad("length out of range"));
        }
        let key = b
            .get(pos..pos + klen)
            .ok_or_else(|| bad("runs past the data"))?;
        pos += klen;
        let value = if kind == 0 {
            None
        } else {
            let v = b
                .get(pos..pos + vlen)
                .ok_or_else(|| bad("runs past the data"))?;
            pos += vlen;
            Some(v)
        };
        // Key and value lie side by side: one checksum call covers both.
        let crc = crc32c_append(crc32c_append(0, &b[..head_end]), &b[head_end + 2..pos]);
        if crc as u16 != check {
            return Err(bad("checksum mismatch"));
        }
        Ok(RecordRef {
            key,
            value,
            prev,
            len: pos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(key: &[u8], value: Option<&[u8]>, prev: Option<Loc>) {
        let mut buf = vec![9u8; 3];
        let n = NewRecord { key, value, prev }.encode(&mut buf);
        let r = RecordRef::decode(&buf[3..], Path::new("x"), 0).expect("decodes");
        assert_eq!(r.len, n);
        assert_eq!(r.key, key);
        assert_eq!(r.value, value);
        assert_eq!(r.prev, prev);
    }

    #[test]
    fn short_record_costs_four_bytes() {
        let mut buf = Vec::new();
        let n = NewRecord {
            key: &[1; 43],
            value: Some(&[2; 29]),
            prev: None,
        }
        .encode(&mut buf);
        assert_eq!(n, 43 + 29 + 4);
    }

    #[test]
    fn damaged_record_is_reported() {
        let mut buf = Vec::new();
        NewRecord {
            key: b"key",
            value: Some(b"value"),
            prev: Some(77),
        }
        .encode(&mut buf);
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            assert!(
                RecordRef::decode(&bad, Path::new("x"), 0).is_err(),
                "flip at {i} unnoticed"
            );
        }
    }

    proptest! {
        #[test]
        fn records_roundtrip(key in proptest::collection::vec(any::<u8>(), 0..300),
                             value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
                             prev in proptest::option::of(0u64..(1 << 42))) {
            roundtrip(&key, value.as_deref(), prev);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = RecordRef::decode(&bytes, Path::new("x"), 0);
        }
    }
}
