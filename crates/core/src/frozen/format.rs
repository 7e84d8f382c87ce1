//! Byte layout of a frozen file (see `docs/FORMAT.md`, "Frozen files").
//!
//! ```text
//! 0      4096   header (this module's `Header`), rest of the page zero
//! 4096   data   records, bucket after bucket, in hash order
//! ...    index  per bucket: `count` fingerprints (u8), then `count` offsets (u16)
//! ...    table  (nbuckets + 1) bucket entries of 16 bytes
//! ```
//!
//! A key's 64-bit hash `h` picks bucket `(h * nbuckets) >> 64` (so buckets
//! follow hash order) and its fingerprint is the low byte of `h`. A bucket
//! entry holds where the bucket's data starts, the index of its first
//! record, the granule shift of its offsets and a CRC-24 over the entry pair
//! and the bucket's index block, so damage to the index is detected by any
//! miss that relies on it (a hit rests on its record's own check).

use crate::checksum::crc32c_append;
use crate::error::{Error, Result};
use crate::record::{get_varint, le_u64, put_varint, MAX_ITEM};
use std::path::Path;

pub const MAGIC: &[u8; 8] = b"VDFROZEN";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: u64 = 4096;
/// Bytes of the header that are meaningful (and covered by its CRC).
const HEADER_USED: usize = 160;
pub const ENTRY_LEN: u64 = 16;
/// Records per bucket on average: 16/20 of a byte of table per key.
pub const BUCKET_LOAD: u64 = 20;
/// Offsets in a bucket are u16 in units of `1 << shift` bytes.
pub const MAX_SHIFT: u32 = 24;

const OFF_MASK: u64 = (1 << 48) - 1;
const FIRST_MASK: u64 = (1 << 40) - 1;
const CRC_MASK: u32 = (1 << 24) - 1;

/// The fixed header at the start of a frozen file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key_codec: String,
    pub value_codec: String,
    pub hash_seed: u64,
    /// Number of pairs.
    pub len: u64,
    pub nbuckets: u64,
    pub data_len: u64,
    pub index_len: u64,
    /// Sum of the key and value lengths (for statistics).
    pub raw_bytes: u64,
}

impl Header {
    pub fn data_off(&self) -> u64 {
        HEADER_LEN
    }
    pub fn index_off(&self) -> u64 {
        HEADER_LEN + self.data_len
    }
    pub fn table_off(&self) -> u64 {
        self.index_off() + self.index_len
    }
    pub fn table_len(&self) -> u64 {
        (self.nbuckets + 1) * ENTRY_LEN
    }
    pub fn file_len(&self) -> u64 {
        self.table_off() + self.table_len()
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut b = vec![0u8; HEADER_LEN as usize];
        b[..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        for (at, name) in [(16, &self.key_codec), (32, &self.value_codec)] {
            if name.len() > 16 {
                return Err(Error::Invalid(format!("codec name {name:?} is too long")));
            }
            b[at..at + name.len()].copy_from_slice(name.as_bytes());
        }
        let fields = [
            self.hash_seed,
            self.len,
            self.nbuckets,
            self.data_len,
            self.index_len,
            self.raw_bytes,
            self.file_len(),
        ];
        for (i, v) in fields.iter().enumerate() {
            b[48 + 8 * i..56 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        crate::files::seal(&mut b, HEADER_USED);
        Ok(b)
    }

    /// Parse and check the header of a file of `actual_len` bytes.
    pub fn decode(b: &[u8], actual_len: u64, path: &Path) -> Result<Self> {
        if b.len() < HEADER_USED || &b[..8] != MAGIC {
            return Err(Error::format(path, "not a vastdict frozen file"));
        }
        if !crate::files::is_sealed(b, HEADER_USED) {
            return Err(Error::corrupt(path, 0, "header checksum mismatch"));
        }
        let version = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        if version != VERSION {
            return Err(Error::format(
                path,
                format!("frozen format version {version}; this vastdict reads version {VERSION}, upgrade vastdict"),
            ));
        }
        let name = |at: usize| -> Result<String> {
            let raw = &b[at..at + 16];
            let end = raw.iter().position(|&c| c == 0).unwrap_or(16);
            String::from_utf8(raw[..end].to_vec())
                .map_err(|_| Error::corrupt(path, at as u64, "codec name is not UTF-8"))
        };
        let field = |i: usize| le_u64(b, 48 + 8 * i);
        let h = Header {
            key_codec: name(16)?,
            value_codec: name(32)?,
            hash_seed: field(0),
            len: field(1),
            nbuckets: field(2),
            data_len: field(3),
            index_len: field(4),
            raw_bytes: field(5),
        };
        let stated = field(6);
        // Sizes that cannot describe a file, checked without overflow.
        let fits = h.nbuckets >= 1
            && h.nbuckets < 1 << 40
            && h.len < 1 << 40
            && h.data_len < 1 << 48
            && h.index_len == h.len * 3
            && h.file_len() == stated;
        if !fits {
            return Err(Error::corrupt(path, 48, "header sizes are inconsistent"));
        }
        crate::files::check_stated_len(path, actual_len, stated)?;
        Ok(h)
    }
}

/// Bucket of a hash among `nbuckets` (monotonic in `h`).
#[inline]
pub fn bucket_of(h: u64, nbuckets: u64) -> u64 {
    ((u128::from(h) * u128::from(nbuckets)) >> 64) as u64
}

/// The fingerprint kept in the index for a hash.
#[inline]
pub fn fingerprint(h: u64) -> u8 {
    h as u8
}

/// Number of buckets for `n` pairs.
pub fn nbuckets_for(n: u64) -> u64 {
    n.div_ceil(BUCKET_LOAD).max(1)
}

/// One decoded bucket table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Start of the bucket's records, relative to the data section.
    pub data_off: u64,
    /// Index of the bucket's first record (its position in the index).
    pub first: u64,
    pub shift: u32,
    pub crc: u32,
}

impl Entry {
    pub fn encode(&self) -> [u8; 16] {
        let w0 = (self.data_off & OFF_MASK) | (u64::from(self.shift) << 48);
        let w1 = (self.first & FIRST_MASK) | (u64::from(self.crc & CRC_MASK) << 40);
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&w0.to_le_bytes());
        b[8..].copy_from_slice(&w1.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Self {
        let w0 = le_u64(b, 0);
        let w1 = le_u64(b, 8);
        Entry {
            data_off: w0 & OFF_MASK,
            shift: ((w0 >> 48) & 0xff) as u32,
            first: w1 & FIRST_MASK,
            crc: (w1 >> 40) as u32,
        }
    }

    /// The CRC-24 of a bucket: its entry, where the next bucket starts
    /// (which bounds this one), and its index block.
    pub fn bucket_crc(&self, next: &Entry, block: &[u8]) -> u32 {
        let mut head = [0u8; 28];
        head[..8].copy_from_slice(&self.data_off.to_le_bytes());
        head[8..16].copy_from_slice(&self.first.to_le_bytes());
        head[16..20].copy_from_slice(&self.shift.to_le_bytes());
        head[20..28].copy_from_slice(&next.data_off.to_le_bytes());
        let crc = crc32c_append(0, &head);
        let crc = crc32c_append(crc, &next.first.to_le_bytes());
        crc32c_append(crc, block) & CRC_MASK
    }
}

/// Append a record: `klen varint | vlen varint | check u16 | key | value`.
pub fn encode_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let start = out.len();
    put_varint(out, key.len() as u64);
    put_varint(out, value.len() as u64);
    let crc = crc32c_append(crc32c_append(0, &out[start..]), key);
    let crc = crc32c_append(crc, value);
    out.extend_from_slice(&(crc as u16).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Encoded length of a record.
pub fn record_len(klen: usize, vlen: usize) -> usize {
    varint_len(klen as u64) + varint_len(vlen as u64) + 2 + klen + vlen
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Decode the record at the start of `b` (the rest of its bucket) and
/// check it. `at` is the record's file offset, for the error.
pub fn decode_record<'a>(b: &'a [u8], path: &Path, at: u64) -> Result<(&'a [u8], &'a [u8])> {
    let bad = |why: &str| Error::corrupt(path, at, format!("bad record: {why}"));
    let mut pos = 0;
    let klen = get_varint(b, &mut pos).ok_or_else(|| bad("truncated header"))?;
    let vlen = get_varint(b, &mut pos).ok_or_else(|| bad("truncated header"))?;
    if klen > MAX_ITEM as u64 || vlen > MAX_ITEM as u64 {
        return Err(bad("length out of range"));
    }
    let (klen, vlen) = (klen as usize, vlen as usize);
    let head = pos;
    let check = b.get(pos..pos + 2).ok_or_else(|| bad("truncated header"))?;
    let check = u16::from_le_bytes([check[0], check[1]]);
    pos += 2;
    let key = b
        .get(pos..pos + klen)
        .ok_or_else(|| bad("runs past its bucket"))?;
    let value = b
        .get(pos + klen..pos + klen + vlen)
        .ok_or_else(|| bad("runs past its bucket"))?;
    // Key and value lie side by side: one checksum call covers both.
    let crc = crc32c_append(
        crc32c_append(0, &b[..head]),
        &b[head + 2..pos + klen + vlen],
    );
    if crc as u16 != check {
        return Err(bad("checksum mismatch"));
    }
    Ok((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_checks() {
        let h = Header {
            key_codec: "str".into(),
            value_codec: "bytes".into(),
            hash_seed: 7,
            len: 10,
            nbuckets: 1,
            data_len: 100,
            index_len: 30,
            raw_bytes: 80,
        };
        let b = h.encode().expect("ok");
        let p = Path::new("x");
        assert_eq!(Header::decode(&b, h.file_len(), p).expect("ok"), h);
        assert!(matches!(
            Header::decode(&b, h.file_len() - 1, p),
            Err(Error::Corruption { .. })
        ));
        let mut bad = b.clone();
        bad[60] ^= 1;
        assert!(matches!(
            Header::decode(&bad, h.file_len(), p),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            Header::decode(&[0u8; 4096], 4096, p),
            Err(Error::Format { .. })
        ));
    }

    #[test]
    fn entry_round_trip() {
        let e = Entry {
            data_off: (1 << 47) + 5,
            first: (1 << 39) + 3,
            shift: 7,
            crc: 0xabcdef,
        };
        assert_eq!(Entry::decode(&e.encode()), e);
    }

    #[test]
    fn record_round_trip_and_damage() {
        let mut b = Vec::new();
        encode_record(&mut b, b"key", b"value");
        assert_eq!(b.len(), record_len(3, 5));
        let p = Path::new("x");
        assert_eq!(
            decode_record(&b, p, 0).expect("ok"),
            (&b"key"[..], &b"value"[..])
        );
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x10;
            if let Ok((k, v)) = decode_record(&d, p, 0) {
                panic!("flip at {i} went unnoticed: {k:?} {v:?}");
            }
        }
    }

    #[test]
    fn buckets_follow_hash_order() {
        let nb = 1000;
        let mut last = 0;
        for h in (0..u64::MAX - (1 << 54)).step_by(1 << 54) {
            let b = bucket_of(h, nb);
            assert!(b >= last && b < nb);
            last = b;
        }
        assert_eq!(bucket_of(u64::MAX, nb), nb - 1);
    }
}
