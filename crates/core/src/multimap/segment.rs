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

use super::bits;
use super::csr::Csr;
use crate::error::{Error, Result};
use crate::intmap::Value;
use std::path::Path;

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

/// Read access to an encoded segment (in memory or in a mapped file).
#[derive(Clone, Copy)]
pub struct SegView<'a> {
    buf: &'a [u8],
    lay: Layout,
    file: &'a Path,
    /// Offset of the segment in `file`, for error messages.
    base: u64,
    /// Whether lookups check what they read against the stored checks:
    /// for bytes from a file; a segment encoded in this process's memory
    /// is trusted (full decodes and `verify` check it anyway).
    checked: bool,
}

impl<'a> SegView<'a> {
    /// `buf` must be exactly the bytes `lay` describes.
    pub fn new(buf: &'a [u8], lay: Layout, file: &'a Path, base: u64, checked: bool) -> Self {
        debug_assert_eq!(buf.len() as u64, lay.len());
        SegView {
            checked,
            buf,
            lay,
            file,
            base,
        }
    }

    fn corrupt(&self, at: u64, what: &str) -> Error {
        Error::corrupt(self.file, self.base + at, what)
    }

    fn bucket(&self, b: u64) -> Result<Bucket> {
        let lay = &self.lay;
        let (ks, vs) = lay.entry_at(self.buf, b);
        let (ke, ve) = lay.entry_at(self.buf, b + 1);
        let ok = ks <= ke
            && ke <= lay.keys
            && vs <= ve
            && ve <= lay.values
            && ke - ks <= ve - vs
            && (ks == ke) == (vs == ve);
        let k = Bucket { ks, ke, vs, ve };
        if !ok
            || (self.checked && lay.bucket_check(self.buf, b, k) != lay.stored_check(self.buf, b))
        {
            return Err(self.corrupt(HEADER + b * lay.entry(), "bucket check mismatch"));
        }
        Ok(k)
    }

    fn low(&self, i: u64) -> u64 {
        let w = self.lay.width();
        bits::read(
            &self.buf[self.lay.lows_off() as usize..],
            i * u64::from(w),
            w,
        )
    }

    fn mids(&self) -> &'a [u8] {
        &self.buf[self.lay.mids_off() as usize..self.lay.lows_off() as usize]
    }

    fn counts(&self) -> &'a [u8] {
        &self.buf[self.lay.counts_off() as usize..self.lay.checks_off() as usize]
    }

    /// The value range of the key with low bits `low`, if present.
    pub fn find(&self, low: u64) -> Result<Option<(u64, u64)>> {
        let b = self.lay.bucket_of(low);
        let k = self.bucket(b)?;
        let want = self.lay.stored_of(low);
        let mid = self.lay.mid_of(low);
        let ms = self.lay.mids_start(b, k.ks);
        let me = ms + (k.ke - k.ks) + (1 << self.lay.mid);
        // Keys of this mid are the 1s right after the (mid - 1)-th 0.
        let (mut j, mut at) = if mid == 0 {
            (0, ms)
        } else {
            let Some(zero) = select(self.mids(), ms, me, mid - 1, false) else {
                return Err(self.corrupt(self.lay.mids_off() + ms / 8, "bucket keys damaged"));
            };
            (zero + 1 - ms - mid, zero + 1)
        };
        let found = loop {
            if k.ks + j >= k.ke || at >= me || bits::read(self.mids(), at, 1) == 0 {
                return Ok(None);
            }
            let l = self.low(k.ks + j);
            if l == want {
                break k.ks + j;
            }
            if l > want {
                return Ok(None);
            }
            j += 1;
            at += 1;
        };
        let j = found - k.ks;
        if k.ve - k.vs == k.ke - k.ks {
            // One value per key in this bucket (as in most LSH bands):
            // the group sizes need no decoding.
            return Ok(Some((k.vs + j, k.vs + j + 1)));
        }
        select(self.counts(), k.vs, k.ve, j, true)
            .map(|s| (s, ones(self.counts(), s + 1, k.ve).next().unwrap_or(k.ve)))
            .map(Some)
            .ok_or_else(|| self.corrupt(self.lay.counts_off() + k.vs / 8, "group sizes damaged"))
    }

    fn check_blocks(&self, s: u64, e: u64) -> Result<()> {
        if s >= e || !self.checked {
            return Ok(());
        }
        let block = self.lay.block();
        for blk in s / block..=(e - 1) / block {
            let at = (self.lay.checks_off() + 2 * blk) as usize;
            if self.lay.block_check(self.buf, blk)
                != u16::from_le_bytes([self.buf[at], self.buf[at + 1]])
            {
                return Err(self.corrupt(
                    self.lay.values_off() + self.lay.value_byte(blk * block),
                    "value block check mismatch",
                ));
            }
        }
        Ok(())
    }

    /// Append values `[s, e)` to `out`, unchecked.
    fn push_values<V: Value>(&self, s: u64, e: u64, out: &mut Vec<V>) {
        let vals = &self.buf[self.lay.values_off() as usize..];
        if self.lay.vbits > 0 {
            let w = self.lay.vbits;
            out.extend((s..e).map(|i| V::from_bits(bits::read(vals, i * u64::from(w), w))));
        } else {
            let vw = self.lay.vw as usize;
            out.extend(
                vals[s as usize * vw..e as usize * vw]
                    .chunks_exact(V::WIDTH)
                    .map(V::read_le),
            );
        }
    }

    /// Append values `[s, e)` (a range [`find`](Self::find) gave) to `out`.
    pub fn values_into<V: Value>(&self, s: u64, e: u64, out: &mut Vec<V>) -> Result<()> {
        self.check_blocks(s, e)?;
        self.push_values(s, e, out);
        Ok(())
    }

    /// Hint the memory a lookup of `low` reads first.
    pub fn prefetch_dir(&self, low: u64) {
        let at = HEADER + self.lay.bucket_of(low) * self.lay.entry();
        if let Some(b) = self.buf.get(at as usize..) {
            crate::prefetch::read(b.as_ptr());
        }
    }

    /// Hint the memory a lookup of `low` reads once the directory is in.
    pub fn prefetch_bucket(&self, low: u64) {
        let b = self.lay.bucket_of(low);
        if b >= self.lay.buckets() {
            return;
        }
        let (ks, vs) = self.lay.entry_at(self.buf, b);
        let (ke, ve) = self.lay.entry_at(self.buf, b + 1);
        let fetch = |at: u64| {
            if let Some(x) = self.buf.get(at as usize..) {
                crate::prefetch::read(x.as_ptr());
            }
        };
        // Keys spread evenly over their bucket, so the mid bits say about
        // where in the bucket this key and its group lie.
        let (mid, s) = (self.lay.mid_of(low), self.lay.mid);
        let key_guess = ks + ((ke.saturating_sub(ks) * mid) >> s);
        let value_guess = vs + ((ve.saturating_sub(vs) * mid) >> s);
        let w = u64::from(self.lay.width());
        fetch(self.lay.mids_off() + self.lay.mids_start(b, ks) / 8);
        fetch(self.lay.lows_off() + key_guess * w / 8);
        fetch(self.lay.counts_off() + vs / 8);
        if self.checked {
            fetch(self.lay.checks_off() + 2 * (value_guess / self.lay.block()));
        }
        fetch(self.lay.values_off() + self.lay.value_byte(value_guess));
    }

    /// Append every group whose key (`prefix` | low bits) is not in the
    /// sorted `hidden`, checking everything read.
    pub fn decode_into<V: Value>(
        &self,
        prefix: u64,
        hidden: &[u64],
        out: &mut Csr<V>,
    ) -> Result<()> {
        let this = SegView {
            checked: true,
            ..*self
        };
        this.decode_checked(prefix, hidden, out)
    }

    fn decode_checked<V: Value>(
        &self,
        prefix: u64,
        hidden: &[u64],
        out: &mut Csr<V>,
    ) -> Result<()> {
        self.check_blocks(0, self.lay.values)?;
        let mut hidden = hidden.iter().peekable();
        let mut next = 0u64;
        for b in 0..self.lay.buckets() {
            let k = self.bucket(b)?;
            if k.ks != next {
                return Err(self.corrupt(HEADER + b * self.lay.entry(), "buckets out of order"));
            }
            next = k.ke;
            let ms = self.lay.mids_start(b, k.ks);
            let me = ms + (k.ke - k.ks) + (1 << self.lay.mid);
            let mut mids = ones(self.mids(), ms, me);
            let mut ones = ones(self.counts(), k.vs, k.ve).peekable();
            let mut last = None;
            for i in k.ks..k.ke {
                let Some(p) = mids.next() else {
                    return Err(self.corrupt(self.lay.mids_off() + ms / 8, "bucket keys damaged"));
                };
                let low =
                    (((p - ms - (i - k.ks)) << self.lay.width()) | self.low(i)) << self.lay.drop;
                let key = prefix | (b << self.lay.shift()) | low;
                let (Some(s), e) = (ones.next(), ones.peek().copied().unwrap_or(k.ve)) else {
                    return Err(
                        self.corrupt(self.lay.counts_off() + k.vs / 8, "group sizes damaged")
                    );
                };
                if last.is_some_and(|l| l >= low) || (i == k.ks && s != k.vs) {
                    return Err(self.corrupt(self.lay.lows_off(), "keys out of order"));
                }
                last = Some(low);
                while hidden.next_if(|&&h| h < key).is_some() {}
                if hidden.next_if_eq(&&key).is_some() {
                    continue;
                }
                self.push_values(s, e, &mut out.values);
                out.keys.push(key);
                out.ends.push(out.values.len() as u64);
            }
            if ones.next().is_some() || mids.next().is_some() {
                return Err(self.corrupt(self.lay.counts_off() + k.vs / 8, "group sizes damaged"));
            }
        }
        if next != self.lay.keys {
            return Err(self.corrupt(0, "key count does not match the buckets"));
        }
        Ok(())
    }
}

/// Positions of the 1 bits in bits `[start, end)` of `buf`.
fn ones(buf: &[u8], start: u64, end: u64) -> impl Iterator<Item = u64> + '_ {
    let (mut pos, mut base, mut word) = (start, start, 0u64);
    std::iter::from_fn(move || loop {
        if word != 0 {
            let t = word.trailing_zeros();
            word &= word - 1;
            return Some(base + u64::from(t));
        }
        if pos >= end {
            return None;
        }
        let k = (end - pos).min(56) as u32;
        word = bits::read(buf, pos, k);
        base = pos;
        pos += u64::from(k);
    })
}

/// The position of the `k`-th 1 bit of `word` (which has more than `k`):
/// whole bytes are skipped by their counts, then bits cleared one by one.
#[inline]
fn select_in_word(mut word: u64, mut k: u32) -> u32 {
    let mut base = 0;
    loop {
        let c = (word & 0xff).count_ones();
        if c > k {
            break;
        }
        k -= c;
        word >>= 8;
        base += 8;
    }
    for _ in 0..k {
        word &= word - 1;
    }
    base + word.trailing_zeros()
}

/// The position of the `j`-th 1 bit (or 0 bit, with `one` false) in
/// bits `[start, end)` of `buf`.
fn select(buf: &[u8], start: u64, end: u64, j: u64, one: bool) -> Option<u64> {
    let mut pos = start;
    let mut left = j;
    while pos < end {
        let k = (end - pos).min(56) as u32;
        let mut word = bits::read(buf, pos, k);
        if !one {
            word = !word & low_bits(k);
        }
        let c = u64::from(word.count_ones());
        if c > left {
            return Some(pos + u64::from(select_in_word(word, left as u32)));
        }
        left -= c;
        pos += u64::from(k);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::select_in_word;

    #[test]
    fn select_in_word_finds_each_set_bit() {
        for word in [1u64, 0x8000_0000_0000_0000, u64::MAX, 0xf0f0_1234_0000_ff01] {
            let ones: Vec<u32> = (0..64).filter(|b| word >> b & 1 == 1).collect();
            for (k, &at) in ones.iter().enumerate() {
                assert_eq!(select_in_word(word, k as u32), at, "{word:x} {k}");
            }
        }
    }
}
