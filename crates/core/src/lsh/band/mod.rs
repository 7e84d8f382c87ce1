//! A band table laid out for point lookups: (key, slot) pairs of one band,
//! sorted by key, with the key's low bits and the slot packed side by
//! side in one bit array, under a directory of where each bucket (the
//! key's top bits) starts.
//!
//! ```text
//! dir     (2^d + 1) x u32 LE  first pair of each bucket, then the count
//! pairs   n x (f + s) bits    per pair the key's low f = key_bits - d bits
//!                             (high) and the slot's s bits (low), packed
//!                             little-endian, 16 zero bytes after
//! ```
//!
//! With about four pairs per bucket a lookup reads the directory line
//! and then, mostly, one line of pairs, and compares a few fixed-width
//! fields: no partition record, no unary-coded bits and no group sizes
//! to decode, which is where a lookup in a general integer multimap
//! spends its time. At 100,000 pairs of 32-bit keys the table takes
//! about 5 bytes a pair. A table never changes once built: an index adds
//! pairs as new tables and merges them (see `runs`).

use memmap2::{Mmap, MmapMut};
use std::sync::Arc;

mod build;
mod pack;

pub(crate) use pack::pack;

/// Pairs per bucket on average, at least (at most twice this).
const PER_BUCKET: u64 = 4;
/// Zero bytes after the pairs, so a 16-byte read at any pair stays inside.
const PAD: usize = 16;

/// The numbers that fix a table's layout; a saved index records them
/// beside each table's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub key_bits: u32,
    pub dir_bits: u32,
    pub slot_bits: u32,
    pub len: u64,
}

impl Shape {
    /// The shape of `len` pairs of `key_bits`-bit keys, slots up to `top`.
    fn of(len: u64, key_bits: u32, top: u32) -> Self {
        let per = len / PER_BUCKET;
        let dir_bits = if per == 0 {
            0
        } else {
            (63 - per.leading_zeros()).min(key_bits).min(30)
        };
        Shape {
            key_bits,
            dir_bits,
            slot_bits: 32 - top.leading_zeros(),
            len,
        }
    }

    /// Why the numbers cannot describe a table, if they cannot.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(1..=64).contains(&self.key_bits)
            || self.dir_bits > self.key_bits.min(30)
            || self.slot_bits > 32
            || self.len >= u64::from(u32::MAX)
        {
            return Err(format!("impossible band table shape {self:?}"));
        }
        Ok(())
    }

    fn width(&self) -> u32 {
        self.key_bits - self.dir_bits + self.slot_bits
    }

    fn dir_entries(&self) -> usize {
        (1usize << self.dir_bits) + 1
    }

    /// Bytes of the table: directory, pairs, padding.
    pub fn size(&self) -> usize {
        self.dir_entries() * 4 + (self.len * u64::from(self.width())).div_ceil(8) as usize + PAD
    }

    /// The key's bucket: its top `dir_bits` bits (past the directory for
    /// a key wider than the table's).
    #[inline]
    fn bucket_of(&self, key: u64) -> usize {
        key.checked_shr(self.key_bits - self.dir_bits).unwrap_or(0) as usize
    }
}

/// Where a table's bytes live.
#[derive(Debug)]
enum Buf {
    Owned(Vec<u8>),
    /// `len` bytes at `off` of a saved file (the range was checked).
    Mapped(Arc<Mmap>, usize, usize),
    /// `len` bytes at `off` of a block of memory shared by the tables
    /// packed together (`pack`), never written again.
    Packed(Arc<MmapMut>, usize, usize),
}

impl Buf {
    #[inline]
    fn get(&self) -> &[u8] {
        match self {
            Buf::Owned(b) => b,
            Buf::Mapped(m, off, len) => m.get(*off..*off + *len).unwrap_or(&[]),
            Buf::Packed(m, off, len) => m.get(*off..*off + *len).unwrap_or(&[]),
        }
    }
}

/// One band's pairs, frozen; see the module docs for the layout.
#[derive(Debug)]
pub struct BandTable {
    shape: Shape,
    /// Bits per pair, and their masks: kept, as a lookup needs them for
    /// every pair it reads.
    width: u32,
    field: u128,
    slot_mask: u128,
    /// The mask of a key's bits below its bucket's.
    fp_mask: u64,
    /// Whether a pair fits in a u64 read at any bit offset (width <= 57),
    /// as it does at the usual 32-bit keys: the lookup then works in u64.
    narrow: bool,
    buckets: usize,
    /// [`Shape::bucket_of`]'s shift in two parts, each under 64, as a
    /// lookup takes it (the whole may be 64).
    shifts: (u32, u32),
    /// Where the pairs start in the buffer (after the directory).
    pairs_at: usize,
    buf: Buf,
}

fn mask(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// The field of `field`'s width at bit `pos` of `bytes` (zero past the
/// end: tables keep 16 bytes of padding, so that is never a real pair).
#[inline]
fn read(bytes: &[u8], pos: u64, field: u128) -> u128 {
    let at = (pos / 8) as usize;
    let mut x = [0u8; 16];
    if let Some(b) = bytes.get(at..at + 16) {
        x.copy_from_slice(b);
    }
    (u128::from_le_bytes(x) >> (pos % 8)) & field
}

/// The 64 bits from bit `pos` of `bytes` (zero past the end); a field
/// of up to 57 bits at `pos` is in them.
#[inline]
fn read_u64(bytes: &[u8], pos: u64) -> u64 {
    let at = (pos / 8) as usize;
    match bytes.get(at..at + 8) {
        Some(b) => {
            u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) >> (pos % 8)
        }
        None => 0,
    }
}

#[inline]
fn dir_entry(bytes: &[u8], b: usize) -> Option<u32> {
    let d = bytes.get(4 * b..4 * b + 4)?;
    Some(u32::from_le_bytes([d[0], d[1], d[2], d[3]]))
}

impl BandTable {
    fn with_buf(shape: Shape, buf: Buf) -> Self {
        let width = shape.width();
        BandTable {
            shape,
            width,
            field: mask(width),
            slot_mask: mask(shape.slot_bits),
            fp_mask: mask(shape.key_bits - shape.dir_bits) as u64,
            narrow: width <= 57,
            buckets: 1 << shape.dir_bits,
            shifts: {
                let all = shape.key_bits - shape.dir_bits;
                (all / 2, all - all / 2)
            },
            pairs_at: shape.dir_entries() * 4,
            buf,
        }
    }

    /// A table over `shape.size()` bytes at `off` of a saved file; the
    /// reason if they cannot be one (out of the file, or a directory
    /// that does not rise from 0 to the pair count).
    pub(crate) fn from_mapped(
        map: Arc<Mmap>,
        off: usize,
        shape: Shape,
    ) -> std::result::Result<Self, String> {
        shape.check()?;
        let size = shape.size();
        let bytes = off
            .checked_add(size)
            .and_then(|end| map.get(off..end))
            .ok_or_else(|| {
                format!("a band table of {size} bytes at {off} passes the file's end")
            })?;
        let mut last = 0u32;
        for b in 0..shape.dir_entries() {
            let d = dir_entry(bytes, b).unwrap_or(u32::MAX);
            if d < last || u64::from(d) > shape.len || (b == 0 && d != 0) {
                return Err(format!("band table directory entry {b} is out of order"));
            }
            last = d;
        }
        if u64::from(last) != shape.len {
            return Err("band table directory does not end at its pair count".into());
        }
        Ok(Self::with_buf(shape, Buf::Mapped(map, off, size)))
    }

    pub(crate) fn shape(&self) -> Shape {
        self.shape
    }

    /// The table's bytes, as a saved file holds them.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get()
    }

    /// Pairs in the table.
    pub fn len(&self) -> u64 {
        self.shape.len
    }

    /// Whether the table has no pairs.
    pub fn is_empty(&self) -> bool {
        self.shape.len == 0
    }

    /// Bytes the table takes.
    pub fn bytes(&self) -> usize {
        self.shape.size()
    }

    /// Bytes of memory of its own (not mapped from a file).
    pub fn heap_bytes(&self) -> usize {
        match &self.buf {
            Buf::Owned(b) => b.capacity(),
            Buf::Packed(_, _, len) => *len,
            Buf::Mapped(..) => 0,
        }
    }

    #[inline]
    fn bucket(&self, key: u64) -> usize {
        ((key >> self.shifts.0) >> self.shifts.1) as usize
    }

    /// The bucket's pairs `[s, e)`, or nothing if the key's bucket is out
    /// of the directory (a key wider than the table's).
    #[inline]
    fn range(&self, bytes: &[u8], key: u64) -> (u64, u64) {
        let b = self.bucket(key);
        if b >= self.buckets {
            return (0, 0);
        }
        // The bucket's start and the next one's, in one read.
        let Some(d) = bytes.get(4 * b..4 * b + 8) else {
            return (0, 0);
        };
        let s = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
        let e = u32::from_le_bytes([d[4], d[5], d[6], d[7]]);
        if s <= e && u64::from(e) <= self.shape.len {
            (u64::from(s), u64::from(e))
        } else {
            (0, 0)
        }
    }

    fn fingerprint(&self, key: u64) -> u128 {
        u128::from(key & self.fp_mask)
    }

    /// Append the slots paired with `key` to `out`, in slot order;
    /// whether there were any.
    #[inline]
    pub fn get_into(&self, key: u64, out: &mut Vec<u32>) -> bool {
        let bytes = self.buf.get();
        let (s, e) = self.range(bytes, key);
        let pairs = bytes.get(self.pairs_at..).unwrap_or(&[]);
        // A pair holds the key's low bits above the slot's, so the key's
        // pairs are those from `lo` up to (not including) `hi`.
        let sb = self.shape.slot_bits;
        let lo = self.fingerprint(key) << sb;
        let hi = lo + (1u128 << sb);
        let w = u64::from(self.width);
        let before = out.len();
        if self.narrow {
            let (lo, hi, field) = (lo as u64, hi as u64, self.field as u64);
            let mut pos = s * w;
            for _ in s..e {
                let x = read_u64(pairs, pos) & field;
                if x >= hi {
                    break;
                }
                if x >= lo {
                    out.push((x as u32) & self.slot_mask as u32);
                }
                pos += w;
            }
        } else {
            for i in s..e {
                let x = read(pairs, i * w, self.field);
                if x >= hi {
                    break;
                }
                if x >= lo {
                    out.push((x & self.slot_mask) as u32);
                }
            }
        }
        out.len() > before
    }

    /// Hint the directory line a lookup of `key` reads first.
    #[inline]
    pub fn prefetch_dir(&self, key: u64) {
        // A hint never faults, so the address needs no bounds check.
        let at = 4 * self.bucket(key);
        crate::prefetch::read(self.buf.get().as_ptr().wrapping_add(at));
    }

    /// Hint the pairs a lookup of `key` reads, once its directory line is
    /// in: the bucket's start is all it needs.
    #[inline]
    pub fn prefetch_pairs(&self, key: u64) {
        let bytes = self.buf.get();
        let b = self.bucket(key);
        if let Some(d) = bytes.get(4 * b..4 * b + 4) {
            let s = u64::from(u32::from_le_bytes([d[0], d[1], d[2], d[3]]));
            let at = self.pairs_at + (s * u64::from(self.width) / 8) as usize;
            crate::prefetch::read(bytes.as_ptr().wrapping_add(at));
        }
    }

    /// Every pair, in (key, slot) order.
    pub fn pairs(&self) -> Pairs<'_> {
        Pairs {
            t: self,
            i: 0,
            bucket: 0,
            end: 0,
        }
    }
}

/// A table's pairs in order; see [`BandTable::pairs`].
pub struct Pairs<'a> {
    t: &'a BandTable,
    i: u64,
    bucket: usize,
    /// Where the current bucket ends.
    end: u64,
}

impl Iterator for Pairs<'_> {
    type Item = (u64, u32);

    fn next(&mut self) -> Option<(u64, u32)> {
        let t = self.t;
        if self.i >= t.shape.len {
            return None;
        }
        let bytes = t.buf.get();
        while self.i >= self.end {
            self.bucket += 1;
            // Directories are checked to rise to the pair count, so this
            // ends; a bucket past them ends the pairs.
            if self.bucket >= t.shape.dir_entries() {
                return None;
            }
            self.end = u64::from(dir_entry(bytes, self.bucket)?);
        }
        let pairs = bytes.get(t.pairs_at..).unwrap_or(&[]);
        let x = read(pairs, self.i * u64::from(t.width), t.field);
        self.i += 1;
        let low = t.shape.key_bits - t.shape.dir_bits;
        let high = ((self.bucket - 1) as u64).checked_shl(low).unwrap_or(0);
        Some((
            high | (x >> t.shape.slot_bits) as u64,
            (x & t.slot_mask) as u32,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn model(pairs: &[(u64, u32)]) -> BTreeMap<u64, Vec<u32>> {
        let mut m = BTreeMap::<u64, Vec<u32>>::new();
        for &(k, s) in pairs {
            m.entry(k).or_default().push(s);
        }
        for v in m.values_mut() {
            v.sort_unstable();
        }
        m
    }

    fn check_table(t: &BandTable, pairs: &[(u64, u32)], probes: &[u64]) {
        let want = model(pairs);
        assert_eq!(t.len(), pairs.len() as u64);
        for &k in want.keys().chain(probes) {
            let mut out = Vec::new();
            let found = t.get_into(k, &mut out);
            let w = want.get(&k).cloned().unwrap_or_default();
            assert_eq!(found, !w.is_empty(), "key {k:x}");
            assert_eq!(out, w, "key {k:x} of {} pairs", pairs.len());
        }
        let mut sorted = pairs.to_vec();
        sorted.sort_unstable();
        assert_eq!(t.pairs().collect::<Vec<_>>(), sorted);
    }

    fn rng(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// Random pairs of `key_bits`-bit keys, with repeated keys as exact
    /// duplicates give.
    fn random_pairs(next: &mut impl FnMut() -> u64, n: usize, key_bits: u32) -> Vec<(u64, u32)> {
        let keep = |k: u64| k.checked_shr(64 - key_bits).unwrap_or(k);
        let mut pairs: Vec<(u64, u32)> = (0..n)
            .map(|i| (keep(next()), i as u32 * 3 + (next() % 3) as u32))
            .collect();
        for i in (0..n).step_by(7) {
            let k = pairs[i].0;
            pairs.push((k, u32::MAX - i as u32));
        }
        pairs
    }

    #[test]
    fn lookups_and_pairs_match_a_model_at_every_size_and_key_width() {
        let mut next = rng(0x2545_f491_4f6c_dd1d);
        for key_bits in [16u32, 24, 32, 48, 64] {
            for n in [0usize, 1, 2, 3, 5, 17, 100, 1000, 20_000] {
                let pairs = random_pairs(&mut next, n, key_bits);
                let keep = |k: u64| k.checked_shr(64 - key_bits).unwrap_or(k);
                let probes: Vec<u64> = (0..200)
                    .map(|_| keep(next()))
                    .chain([0, keep(u64::MAX)])
                    .collect();
                let t = BandTable::build(&pairs, key_bits).expect("build");
                check_table(&t, &pairs, &probes);
            }
        }
    }

    #[test]
    fn merges_match_a_model_and_drop_what_keep_refuses() {
        let mut next = rng(99);
        for key_bits in [16u32, 32, 64] {
            for sizes in [
                &[0usize, 0][..],
                &[1, 0, 5],
                &[3000, 20],
                &[100, 100, 100, 7],
            ] {
                let parts: Vec<Vec<(u64, u32)>> = sizes
                    .iter()
                    .map(|&n| random_pairs(&mut next, n, key_bits))
                    .collect();
                let tables: Vec<BandTable> = parts
                    .iter()
                    .map(|p| BandTable::build(p, key_bits).expect("build"))
                    .collect();
                let refs: Vec<&BandTable> = tables.iter().collect();
                let all: Vec<(u64, u32)> = parts.concat();
                let m = BandTable::merge(key_bits, &refs, |_| true).expect("merge");
                check_table(&m, &all, &[0, 1]);
                let odd: Vec<(u64, u32)> = all.iter().copied().filter(|p| p.1 % 2 == 1).collect();
                let m = BandTable::merge(key_bits, &refs, |s| s % 2 == 1).expect("merge");
                check_table(&m, &odd, &[0, 1]);
            }
        }
        let a = BandTable::empty(16).expect("empty");
        assert!(BandTable::merge(32, &[&a], |_| true).is_err());
    }

    #[test]
    fn one_key_crowding_one_bucket_is_found_whole() {
        let mut pairs: Vec<(u64, u32)> = (0..500u32).map(|s| (42, s)).collect();
        pairs.extend((0..500u32).map(|s| (u64::from(s) << 20, s)));
        let t = BandTable::build(&pairs, 32).expect("build");
        check_table(&t, &pairs, &[41, 43, 0, 1 << 20]);
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(BandTable::build(&[(1 << 40, 1)], 32).is_err());
        assert!(BandTable::build(&[], 0).is_err());
        assert!(BandTable::build(&[], 65).is_err());
        let t = BandTable::build(&[(5, 1)], 16).expect("build");
        let mut out = Vec::new();
        // A key wider than the table's is simply absent.
        assert!(!t.get_into(1 << 40, &mut out));
        assert!(out.is_empty());
    }

    fn mapped(bytes: &[u8]) -> Arc<Mmap> {
        let mut m = memmap2::MmapMut::map_anon(bytes.len().max(1)).expect("map");
        m[..bytes.len()].copy_from_slice(bytes);
        Arc::new(m.make_read_only().expect("read only"))
    }

    #[test]
    fn a_mapped_copy_answers_alike_and_damage_is_refused() {
        let mut next = rng(5);
        let pairs = random_pairs(&mut next, 5000, 32);
        let t = BandTable::build(&pairs, 32).expect("build");
        let mut file = vec![7u8; 3];
        file.extend_from_slice(t.as_bytes());
        let m = BandTable::from_mapped(mapped(&file), 3, t.shape()).expect("mapped");
        assert_eq!(m.heap_bytes(), 0);
        check_table(&m, &pairs, &[0]);
        // Short file, impossible shape, a directory entry out of order.
        assert!(BandTable::from_mapped(mapped(&file[..file.len() - 1]), 3, t.shape()).is_err());
        let wide = Shape {
            dir_bits: 40,
            ..t.shape()
        };
        assert!(BandTable::from_mapped(mapped(&file), 3, wide).is_err());
        let mut bad = file.clone();
        bad[3 + 4 * 9] ^= 0x80;
        assert!(BandTable::from_mapped(mapped(&bad), 3, t.shape()).is_err());
    }

    #[test]
    fn about_five_bytes_a_pair_at_100k_pairs() {
        let mut next = rng(7);
        let pairs: Vec<(u64, u32)> = (0..100_000u32).map(|s| (next() >> 32, s)).collect();
        let t = BandTable::build(&pairs, 32).expect("build");
        let per = t.bytes() as f64 / 100_000.0;
        assert!(per < 5.2, "{per} bytes a pair");
    }
}
