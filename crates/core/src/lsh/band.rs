//! A band table laid out for point lookups: every (key, slot) pair of one
//! band, sorted by key, with the key's low bits and the slot packed side
//! by side in one bit array, under a directory of where each bucket (the
//! key's top bits) starts.
//!
//! ```text
//! dir     (2^d + 1) x u32   first pair of each bucket, then the count
//! pairs   n x (f + s) bits  per pair the key's low f = key_bits - d bits
//!                           (high) and the slot's s bits (low), packed
//!                           little-endian, 16 bytes of padding after
//! ```
//!
//! With about four pairs per bucket a lookup reads the directory line
//! and then, mostly, one line of pairs, and compares a few fixed-width
//! fields: no partition record, no unary-coded bits and no group sizes
//! to decode, which is where a lookup in a general integer multimap
//! spends its time. At 100,000 pairs of 32-bit keys the table takes
//! about 5 bytes a pair: the same as the multimap it stands beside.

use crate::error::{Error, Result};

/// Pairs per bucket on average, at least (at most twice this).
const PER_BUCKET: u64 = 4;

/// One band's pairs, frozen; see the module docs for the layout.
#[derive(Debug, Clone, Default)]
pub struct BandTable {
    key_bits: u32,
    dir_bits: u32,
    slot_bits: u32,
    /// Bits per pair, and their mask: kept, as a lookup needs them for
    /// every pair it reads.
    width: u32,
    field: u128,
    len: u64,
    dir: Vec<u32>,
    pairs: Vec<u8>,
}

fn mask(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

impl BandTable {
    /// The table of `pairs` (key, slot), whose keys have `key_bits` bits
    /// (1 to 64); `pairs` is sorted in place.
    ///
    /// ```
    /// use vastdict_core::lsh::BandTable;
    /// let mut pairs = vec![(7u64, 1u32), (3, 2), (7, 5)];
    /// let t = BandTable::build(&mut pairs, 32).unwrap();
    /// let mut out = Vec::new();
    /// t.get_into(7, &mut out);
    /// assert_eq!(out, [1, 5]);
    /// ```
    pub fn build(pairs: &mut [(u64, u32)], key_bits: u32) -> Result<Self> {
        if !(1..=64).contains(&key_bits) {
            return Err(Error::Invalid(format!(
                "a band table's keys have 1 to 64 bits, not {key_bits}"
            )));
        }
        let len = pairs.len() as u64;
        if len >= u64::from(u32::MAX) {
            return Err(Error::Invalid(format!(
                "a band table holds at most 2^32 - 2 pairs, not {len}"
            )));
        }
        if key_bits < 64 && pairs.iter().any(|&(k, _)| k >> key_bits != 0) {
            return Err(Error::Invalid(format!(
                "a key has more than {key_bits} bits"
            )));
        }
        pairs.sort_unstable();
        let per = len / PER_BUCKET;
        let dir_bits = if per == 0 {
            0
        } else {
            (63 - per.leading_zeros()).min(key_bits).min(30)
        };
        let top = pairs.iter().fold(0u32, |a, &(_, s)| a | s);
        let slot_bits = 32 - top.leading_zeros();
        let width = key_bits - dir_bits + slot_bits;
        let mut t = BandTable {
            key_bits,
            dir_bits,
            slot_bits,
            width,
            field: mask(width),
            len,
            dir: Vec::with_capacity((1usize << dir_bits) + 1),
            pairs: vec![0u8; ((len * u64::from(width)).div_ceil(8) + 16) as usize],
        };
        let mut at = 0usize;
        for b in 0..1u64 << dir_bits {
            t.dir.push(at as u32);
            while at < pairs.len() && t.bucket_of(pairs[at].0) == b {
                at += 1;
            }
        }
        t.dir.push(len as u32);
        let w = u64::from(width);
        for (i, &(k, s)) in pairs.iter().enumerate() {
            let v = (u128::from(t.fingerprint(k)) << slot_bits) | u128::from(s);
            t.write(i as u64 * w, v);
        }
        Ok(t)
    }

    /// Pairs in the table.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the table has no pairs.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the table takes.
    pub fn bytes(&self) -> usize {
        self.dir.len() * 4 + self.pairs.len()
    }

    fn bucket_of(&self, key: u64) -> u64 {
        if self.dir_bits == 0 {
            0
        } else {
            key >> (self.key_bits - self.dir_bits)
        }
    }

    fn fingerprint(&self, key: u64) -> u64 {
        (u128::from(key) & mask(self.key_bits - self.dir_bits)) as u64
    }

    /// The field of `width` bits at bit `pos` (within the padding when
    /// `pos` is in range, so the 16-byte load never runs short).
    #[inline]
    fn read(&self, pos: u64) -> u128 {
        let at = (pos / 8) as usize;
        let mut x = [0u8; 16];
        if let Some(b) = self.pairs.get(at..at + 16) {
            x.copy_from_slice(b);
        }
        (u128::from_le_bytes(x) >> (pos % 8)) & self.field
    }

    fn write(&mut self, pos: u64, v: u128) {
        let at = (pos / 8) as usize;
        let mut x = [0u8; 16];
        x.copy_from_slice(&self.pairs[at..at + 16]);
        let y = u128::from_le_bytes(x) | (v << (pos % 8));
        self.pairs[at..at + 16].copy_from_slice(&y.to_le_bytes());
    }

    /// The bucket's pairs `[s, e)`, or nothing if the key's bucket is out
    /// of the directory (a key wider than the table's).
    #[inline]
    fn range(&self, key: u64) -> (u64, u64) {
        let b = self.bucket_of(key) as usize;
        match (self.dir.get(b), self.dir.get(b + 1)) {
            (Some(&s), Some(&e)) if s <= e && u64::from(e) <= self.len => {
                (u64::from(s), u64::from(e))
            }
            _ => (0, 0),
        }
    }

    /// Append the slots paired with `key` to `out`, in slot order;
    /// whether there were any.
    pub fn get_into(&self, key: u64, out: &mut Vec<u32>) -> bool {
        let (s, e) = self.range(key);
        let fp = u128::from(self.fingerprint(key));
        let (w, sb, slot) = (u64::from(self.width), self.slot_bits, mask(self.slot_bits));
        let before = out.len();
        for i in s..e {
            let x = self.read(i * w);
            let f = x >> sb;
            if f >= fp {
                if f > fp {
                    break;
                }
                out.push((x & slot) as u32);
            }
        }
        out.len() > before
    }

    /// Hint the directory line a lookup of `key` reads first.
    pub fn prefetch_dir(&self, key: u64) {
        if let Some(d) = self.dir.get(self.bucket_of(key) as usize) {
            crate::prefetch::read((d as *const u32).cast());
        }
    }

    /// Hint the pairs a lookup of `key` reads, once its directory line is
    /// in.
    pub fn prefetch_pairs(&self, key: u64) {
        let (s, _) = self.range(key);
        let at = (s * u64::from(self.width) / 8) as usize;
        if let Some(p) = self.pairs.get(at) {
            crate::prefetch::read(p);
        }
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

    fn check(pairs: Vec<(u64, u32)>, key_bits: u32, probes: &[u64]) {
        let want = model(&pairs);
        let mut p = pairs.clone();
        let t = BandTable::build(&mut p, key_bits).expect("build");
        assert_eq!(t.len(), pairs.len() as u64);
        for &k in want.keys().chain(probes) {
            let mut out = Vec::new();
            let found = t.get_into(k, &mut out);
            let w = want.get(&k).cloned().unwrap_or_default();
            assert_eq!(found, !w.is_empty(), "key {k:x}");
            assert_eq!(
                out,
                w,
                "key {k:x} of {} pairs at {key_bits} bits",
                pairs.len()
            );
        }
    }

    fn rng(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn lookups_match_a_model_at_every_size_and_key_width() {
        let mut next = rng(0x2545_f491_4f6c_dd1d);
        for key_bits in [16u32, 24, 32, 48, 64] {
            for n in [0usize, 1, 2, 3, 5, 17, 100, 1000, 20_000] {
                let keep = |k: u64| {
                    if key_bits == 64 {
                        k
                    } else {
                        k >> (64 - key_bits)
                    }
                };
                let mut pairs: Vec<(u64, u32)> = (0..n)
                    .map(|i| (keep(next()), i as u32 * 3 + (next() % 3) as u32))
                    .collect();
                // Repeated keys, as exact duplicates give.
                for i in (0..n).step_by(7) {
                    let k = pairs[i].0;
                    pairs.push((k, u32::MAX - i as u32));
                }
                let probes: Vec<u64> = (0..200)
                    .map(|_| keep(next()))
                    .chain([0, keep(u64::MAX)])
                    .collect();
                check(pairs, key_bits, &probes);
            }
        }
    }

    #[test]
    fn one_key_crowding_one_bucket_is_found_whole() {
        let mut pairs: Vec<(u64, u32)> = (0..500u32).map(|s| (42, s)).collect();
        pairs.extend((0..500u32).map(|s| (u64::from(s) << 20, s)));
        check(pairs, 32, &[41, 43, 0, 1 << 20]);
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(BandTable::build(&mut [(1 << 40, 1)], 32).is_err());
        assert!(BandTable::build(&mut [], 0).is_err());
        assert!(BandTable::build(&mut [], 65).is_err());
        let t = BandTable::build(&mut [(5, 1)], 16).expect("build");
        let mut out = Vec::new();
        // A key wider than the table's is simply absent.
        assert!(!t.get_into(1 << 40, &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn about_five_bytes_a_pair_at_100k_pairs() {
        let mut next = rng(7);
        let mut pairs: Vec<(u64, u32)> = (0..100_000u32).map(|s| (next() >> 32, s)).collect();
        let t = BandTable::build(&mut pairs, 32).expect("build");
        let per = t.bytes() as f64 / 100_000.0;
        assert!(per < 5.2, "{per} bytes a pair");
    }
}
