//! The stable key hash and how its bits are split.
//!
//! Every persisted decision (which partition, which bucket, which fingerprint)
//! comes from one seeded xxh3-64 of the key. The seed is stored in the
//! manifest, so the same key lands in the same place in every process, on
//! every machine, forever. Python's salted `hash()` is never used.
//!
//! Bit layout of the 64-bit hash `h`:
//!
//! ```text
//!  63           48 47                22 21               0
//! +---------------+--------------------+------------------+
//! |  dir (16)     |   unused (26)      |  tag (22)        |
//! +---------------+--------------------+------------------+
//! ```
//!
//! * `dir` picks the directory entry, and so the partition.
//! * `tag` is kept in the index slot: it filters non-matching slots without
//!   touching the log, and it alone places the slot inside its partition, so
//!   a partition can be rehashed without reading any key back.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Bits of the hash that select the directory entry.
pub const DIR_BITS: u32 = 16;
/// Number of directory entries.
pub const DIR_LEN: usize = 1 << DIR_BITS;
/// Bits of the hash kept in each index slot.
pub const TAG_BITS: u32 = 22;
pub const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

/// The seeded 64-bit hash of one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyHash(pub u64);

impl KeyHash {
    /// Hash `key` with the store's seed.
    #[inline]
    pub fn of(key: &[u8], seed: u64) -> Self {
        KeyHash(xxh3_64_with_seed(key, seed))
    }

    /// Directory entry of this key.
    #[inline]
    pub fn dir(self) -> u16 {
        (self.0 >> (64 - DIR_BITS)) as u16
    }

    /// The tag stored in the index slot.
    #[inline]
    pub fn tag(self) -> u32 {
        (self.0 & TAG_MASK) as u32
    }
}

/// Home bucket of a tag in a table of `nbuckets` buckets (multiply-shift,
/// so any bucket count works and growth need not double).
#[inline]
pub fn home_bucket(tag: u32, nbuckets: u64) -> u64 {
    ((u64::from(tag) << (32 - TAG_BITS)) * nbuckets) >> 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_across_builds() {
        // A persisted format depends on this value never changing.
        assert_eq!(
            KeyHash::of(b"vastdict", 0).0,
            xxh3_64_with_seed(b"vastdict", 0)
        );
        assert_ne!(KeyHash::of(b"a", 1), KeyHash::of(b"a", 2));
    }

    #[test]
    fn home_bucket_stays_in_range() {
        for n in [1u64, 7, 8, 1000, 1 << 20] {
            for tag in [0u32, 1, TAG_MASK as u32, 12345] {
                assert!(home_bucket(tag, n) < n);
            }
        }
    }
}
