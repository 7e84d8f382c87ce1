//! One partition of a multimap, encoded: the keys' low bits packed at a
//! fixed width under a bucket directory, the group sizes in unary, and the
//! values raw (see `docs/FORMAT.md`, "Integer multimaps").
//!
//! ```text
//! 0     32                 header: keys u64, values u64, bucket bits u8,
//!                          start width u8, value width u8, mid bits u8,
//!                          dropped bits u8,
//!                          CRC-32C u32
//! 32    (nb + 1) * E       directory: per bucket its first key, its first
//!                          value (4 or 8 bytes each) and a 16-bit check
//!                          (XXH3 of its range of every section below)
//! ...   packed n + nb 2^s  per bucket, its keys' next s bits in unary: per
//!                          key (mid - previous mid) 0s then a 1, padded
//!                          with 0s to (keys in bucket + 2^s) bits
//! ...   packed n * w bits  each key's next w = 56 - drop - bits - s bits
//! ...   packed m bits      per key a 1 then (count - 1) 0s
//! ...   2 * ceil(m / B)    16-bit check per block of B = 128 / W values
//! ...   m * W              values, grouped by key, in insertion order
//! ```
//!
//! A key's top 8 bits name the partition and the next `bits` its bucket;
//! of the rest, the next `s` (about log2 of the keys per bucket) are coded
//! in unary, as in Elias-Fano coding (under 2 bits instead of `s`), and
//! only the low `w` bits are stored as they are: about 41.5 bits per key
//! at 100M keys, against 64 for a plain array.

mod view;

pub use view::SegView;

use super::bits;
use super::csr::Csr;
use crate::intmap::Value;

/// Bits of a mixed key below the partition number.
pub const KEY_BITS: u32 = 56;
pub const LOW_MASK: u64 = (1 << KEY_BITS) - 1;
const HEADER: u64 = 32;
/// Bytes of values per value check (small enough for XXH3's fast path).
const BLOCK_BYTES: u64 = 128;
/// Values per check when bit-packed.
const PACKED_BLOCK: u64 = 64;
/// Fewest keys per bucket on average (the most is twice this).
const PER_BUCKET: u64 = 32;
/// Limits that keep every offset computation far from overflow.
const MAX_KEYS: u64 = 1 << 44;
const MAX_BUCKET_BITS: u32 = 40;
/// Most low key bits a truncated map may leave out: 16 bits stay.
pub const MAX_DROP: u32 = 40;

/// The sizes of a segment; every offset follows from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub keys: u64,
    pub values: u64,
    bits: u32,
    /// Bits of each key coded in unary within its bucket.
    mid: u32,
    /// Low key bits not stored (zero in a truncated map's keys).
    drop: u32,
    /// Bits per value when values are bit-packed; 0 when they are stored
    /// as they are (`vw` bytes each).
    vbits: u32,
    dw: u64,
    vw: u64,
    offs: [u64; 6],
}

impl Layout {
    /// The layout of `keys` keys with `values` values of `vw` bytes whose
    /// low `drop` (at most [`MAX_DROP`]) bits are not stored.
    pub fn new(keys: u64, values: u64, vw: usize, drop: u32, vbits: u32) -> Self {
        let per = keys / PER_BUCKET;
        let bits = if per == 0 {
            0
        } else {
            (63 - per.leading_zeros()).min(MAX_BUCKET_BITS.min(KEY_BITS - drop - 8))
        };
        let per_bucket = keys >> bits;
        let mid = if per_bucket == 0 {
            0
        } else {
            63 - per_bucket.leading_zeros()
        };
        let mut lay = Layout {
            keys,
            values,
            bits,
            mid: mid.min(KEY_BITS - drop - bits),
            drop,
            vbits,
            dw: if keys.max(values) >= 1 << 32 { 8 } else { 4 },
            vw: vw as u64,
            offs: [0; 6],
        };
        lay.offs = lay.offsets();
        lay
    }

    /// Bits stored as they are per key.
    fn width(&self) -> u32 {
        KEY_BITS - self.drop - self.bits - self.mid
    }

    /// Low key bits not stored.
    pub fn drop(&self) -> u32 {
        self.drop
    }
    fn shift(&self) -> u32 {
        KEY_BITS - self.bits
    }
    /// Values per value check.
    fn block(&self) -> u64 {
        if self.vbits > 0 {
            PACKED_BLOCK
        } else {
            BLOCK_BYTES / self.vw
        }
    }
    /// Bytes of the values section.
    fn values_len(&self) -> u64 {
        if self.vbits > 0 {
            bits::packed_len(self.values * u64::from(self.vbits))
        } else {
            self.values * self.vw
        }
    }
    /// Where value `i` starts, in bytes from the values section (rounded
    /// down when packed): for prefetching.
    fn value_byte(&self, i: u64) -> u64 {
        if self.vbits > 0 {
            i * u64::from(self.vbits) / 8
        } else {
            i * self.vw
        }
    }
    fn buckets(&self) -> u64 {
        1 << self.bits
    }
    fn entry(&self) -> u64 {
        2 * self.dw + 2
    }
    fn mids_off(&self) -> u64 {
        self.offs[0]
    }
    fn lows_off(&self) -> u64 {
        self.offs[1]
    }
    fn counts_off(&self) -> u64 {
        self.offs[2]
    }
    fn checks_off(&self) -> u64 {
        self.offs[3]
    }
    fn values_off(&self) -> u64 {
        self.offs[4]
    }
    /// Bytes of the encoded segment.
    pub fn len(&self) -> u64 {
        self.offs[5]
    }

    /// Where each section starts, and the end.
    fn offsets(&self) -> [u64; 6] {
        let mids = HEADER + (self.buckets() + 1) * self.entry();
        let lows = mids + bits::packed_len(self.keys + (self.buckets() << self.mid));
        let counts = lows + bits::packed_len(self.keys * u64::from(self.width()));
        let checks = counts + bits::packed_len(self.values);
        let values = checks + 2 * self.values.div_ceil(self.block());
        [
            mids,
            lows,
            counts,
            checks,
            values,
            values + self.values_len(),
        ]
    }

    fn bucket_of(&self, low: u64) -> u64 {
        (low & LOW_MASK) >> self.shift()
    }
    fn mid_of(&self, low: u64) -> u64 {
        (low >> (self.width() + self.drop)) & ((1 << self.mid) - 1)
    }
    /// The stored bits of a key.
    fn stored_of(&self, low: u64) -> u64 {
        (low >> self.drop) & low_bits(self.width())
    }
    /// Where bucket `b` (with its first key `ks`) starts in the mid bits.
    fn mids_start(&self, b: u64, ks: u64) -> u64 {
        ks + (b << self.mid)
    }

    fn header(&self) -> [u8; HEADER as usize] {
        let mut h = [0u8; HEADER as usize];
        h[..8].copy_from_slice(&self.keys.to_le_bytes());
        h[8..16].copy_from_slice(&self.values.to_le_bytes());
        h[16] = self.bits as u8;
        h[17] = self.dw as u8;
        h[18] = self.vw as u8;
        h[19] = self.mid as u8;
        h[20] = self.drop as u8;
        h[21] = self.vbits as u8;
        let crc = crc32c::crc32c(&h[..24]);
        h[24..28].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The layout a segment's header states, if intact and consistent
    /// with `len` bytes of `vw`-byte values.
    pub fn parse(buf: &[u8], vw: usize) -> Option<Self> {
        let h = buf.get(..HEADER as usize)?;
        let crc = u32::from_le_bytes(h[24..28].try_into().ok()?);
        if crc != crc32c::crc32c(&h[..24]) {
            return None;
        }
        let keys = u64::from_le_bytes(h[..8].try_into().ok()?);
        let values = u64::from_le_bytes(h[8..16].try_into().ok()?);
        if keys > values || values >= MAX_KEYS {
            return None;
        }
        let drop = u32::from(h[20]);
        if drop > MAX_DROP {
            return None;
        }
        let vbits = u32::from(h[21]);
        if vbits > 56 {
            return None;
        }
        let lay = Layout::new(keys, values, vw, drop, vbits);
        let stated = (
            u32::from(h[16]),
            u64::from(h[17]),
            u64::from(h[18]),
            u32::from(h[19]),
        );
        (stated == (lay.bits, lay.dw, lay.vw, lay.mid) && lay.len() == buf.len() as u64)
            .then_some(lay)
    }
}

/// A bucket's checked ranges of keys and values.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    ks: u64,
    ke: u64,
    vs: u64,
    ve: u64,
}

impl Bucket {
    /// Whether each key here has one value (as in most LSH band buckets),
    /// so the group sizes need no reading. Saturating, as prefetching asks
    /// this of directory entries not yet checked.
    fn one_value_each(&self) -> bool {
        self.ve.saturating_sub(self.vs) == self.ke.saturating_sub(self.ks)
    }
}

/// Encode sorted keys (their low 56 bits), group ends and values.
pub fn encode<V: Value>(csr: &Csr<V>, drop: u32) -> (Vec<u8>, Layout) {
    let (n, m) = (csr.keys.len() as u64, csr.values.len() as u64);
    let lay = Layout::new(n, m, V::WIDTH, drop, packed_width(&csr.values));
    let mut buf = vec![0u8; lay.len() as usize];
    buf[..HEADER as usize].copy_from_slice(&lay.header());
    let w = lay.width();
    let (lows_off, counts_off) = (lay.lows_off() as usize, lay.counts_off() as usize);
    let mids_off = lay.mids_off() as usize;
    let mut start = 0u64;
    let mut bucket = 0u64;
    let mut first = 0u64;
    for (i, (&k, &end)) in csr.keys.iter().zip(&csr.ends).enumerate() {
        let i = i as u64;
        while bucket <= lay.bucket_of(k) {
            lay.put_entry(&mut buf, bucket, i, start);
            bucket += 1;
            first = i;
        }
        let at = lay.mids_start(bucket - 1, first) + (i - first) + lay.mid_of(k);
        bits::write(&mut buf[mids_off..], at, 1, 1);
        bits::write(&mut buf[lows_off..], i * u64::from(w), w, lay.stored_of(k));
        bits::write(&mut buf[counts_off..], start, 1, 1);
        start = end;
    }
    while bucket <= lay.buckets() {
        lay.put_entry(&mut buf, bucket, n, m);
        bucket += 1;
    }
    for b in 0..lay.buckets() {
        let (ks, vs) = lay.entry_at(&buf, b);
        let (ke, ve) = lay.entry_at(&buf, b + 1);
        let check = lay.bucket_check(&buf, b, Bucket { ks, ke, vs, ve });
        let at = (HEADER + b * lay.entry() + 2 * lay.dw) as usize;
        buf[at..at + 2].copy_from_slice(&check.to_le_bytes());
    }
    let vo = lay.values_off() as usize;
    if lay.vbits > 0 {
        let w = lay.vbits;
        for (i, v) in csr.values.iter().enumerate() {
            bits::write(&mut buf[vo..], i as u64 * u64::from(w), w, v.to_bits());
        }
    } else {
        for (v, out) in csr.values.iter().zip(buf[vo..].chunks_exact_mut(V::WIDTH)) {
            v.write_le(out);
        }
    }
    for blk in 0..m.div_ceil(lay.block()) {
        let c = lay.block_check(&buf, blk);
        let at = (lay.checks_off() + 2 * blk) as usize;
        buf[at..at + 2].copy_from_slice(&c.to_le_bytes());
    }
    (buf, lay)
}

/// The packed width for `values`: the bits of the largest, when integers
/// fit 56 bits; 0 (stored as they are) otherwise.
fn packed_width<V: Value>(values: &[V]) -> u32 {
    if !V::PACKABLE {
        return 0;
    }
    let widest = values.iter().fold(0u64, |a, v| a | v.to_bits());
    match 64 - widest.leading_zeros() {
        w if w > 56 => 0,
        w => w.max(1),
    }
}

fn low_bits(w: u32) -> u64 {
    (1u64 << w) - 1
}

impl Layout {
    fn put_entry(&self, buf: &mut [u8], b: u64, key: u64, value: u64) {
        let at = (HEADER + b * self.entry()) as usize;
        let dw = self.dw as usize;
        buf[at..at + dw].copy_from_slice(&key.to_le_bytes()[..dw]);
        buf[at + dw..at + 2 * dw].copy_from_slice(&value.to_le_bytes()[..dw]);
    }

    #[inline]
    fn entry_at(&self, buf: &[u8], b: u64) -> (u64, u64) {
        let at = (HEADER + b * self.entry()) as usize;
        let dw = self.dw as usize;
        // Whole-word loads (sections follow the directory, so the bytes
        // past an entry exist), masked to the entry's width.
        let mask = if dw == 8 {
            u64::MAX
        } else {
            (1 << (8 * dw)) - 1
        };
        (bits::load(buf, at) & mask, bits::load(buf, at + dw) & mask)
    }

    fn stored_check(&self, buf: &[u8], b: u64) -> u16 {
        let at = (HEADER + b * self.entry() + 2 * self.dw) as usize;
        u16::from_le_bytes([buf[at], buf[at + 1]])
    }

    fn bucket_check(&self, buf: &[u8], b: u64, k: Bucket) -> u16 {
        let mut head = [0u8; 40];
        for (i, x) in [b, k.ks, k.ke, k.vs, k.ve].iter().enumerate() {
            head[8 * i..8 * i + 8].copy_from_slice(&x.to_le_bytes());
        }
        let w = u64::from(self.width());
        let mids = &buf[self.mids_off() as usize..self.lows_off() as usize];
        let lows = &buf[self.lows_off() as usize..self.counts_off() as usize];
        let counts = &buf[self.counts_off() as usize..self.checks_off() as usize];
        let ms = self.mids_start(b, k.ks);
        let h = xxhash_rust::xxh3::xxh3_64(&head);
        let h = bits::hash_range(h, mids, ms, ms + (k.ke - k.ks) + (1 << self.mid));
        let h = bits::hash_range(h, lows, k.ks * w, k.ke * w);
        bits::hash_range(h, counts, k.vs, k.ve) as u16
    }

    fn block_check(&self, buf: &[u8], blk: u64) -> u16 {
        if self.vbits > 0 {
            let w = u64::from(self.vbits);
            let vals = &buf[self.values_off() as usize..];
            let (s, e) = (
                blk * PACKED_BLOCK,
                ((blk + 1) * PACKED_BLOCK).min(self.values),
            );
            return bits::hash_range(blk, vals, s * w, e * w) as u16;
        }
        let s = self.values_off() + blk * self.block() * self.vw;
        let e = self.values_off() + ((blk + 1) * self.block()).min(self.values) * self.vw;
        xxhash_rust::xxh3::xxh3_64_with_seed(&buf[s as usize..e as usize], blk) as u16
    }
}
