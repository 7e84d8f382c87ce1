//! Reads a frozen file in place through one read-only memory map.
//!
//! Every offset read from the file is bounds-checked before use and every
//! bucket's index block and every record carry a checksum, so a damaged
//! file yields [`Error::Corruption`] (or, where the damage is elsewhere,
//! the right answer), never a crash.

use super::format::{self, Entry, Header, ENTRY_LEN, HEADER_LEN};
use crate::error::{Error, IoContext, Result};
use crate::hash::KeyHash;
use memmap2::{Advice, Mmap};
use std::path::{Path, PathBuf};

/// Most bytes of a record to prefetch in batch lookups.
const MAX_RECORD_PREFETCH: u64 = 256;
/// Keys between one stage of a batch lookup and the next.
const STAGE_LAG: usize = 6;

/// An immutable, memory-mapped map built by [`crate::frozen::Builder`].
///
/// ```
/// use vastdict_core::frozen::{build_pairs, BuildOptions, Frozen};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("f.vdf");
/// let pairs = vec![(b"k".to_vec(), b"v".to_vec())];
/// build_pairs(&path, pairs, &BuildOptions::default()).unwrap();
/// let f = Frozen::open(&path).unwrap();
/// assert_eq!(f.get(b"k").unwrap(), Some(&b"v"[..]));
/// assert_eq!(f.get(b"x").unwrap(), None);
/// ```
pub struct Frozen {
    path: PathBuf,
    map: Mmap,
    header: Header,
}

/// A position in iteration order: (bucket, record in bucket).
pub type Cursor = (u64, usize);
/// A key and its value.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// One bucket's place in the file: its table entry, the next one (which
/// closes it) and its index block (`count` fingerprints, then `count` u16
/// offsets).
struct Bucket<'a> {
    entry: Entry,
    next: Entry,
    block: &'a [u8],
}

impl Bucket<'_> {
    fn count(&self) -> usize {
        self.block.len() / 3
    }

    fn fps(&self) -> &[u8] {
        &self.block[..self.count()]
    }

    /// The first record from `from` on whose fingerprint is `fp`.
    fn next_match(&self, fp: u8, from: usize) -> Option<usize> {
        let fps = self.fps().get(from..)?;
        find_byte(fps, fp).map(|j| from + j)
    }

    /// Data offset of record `j` (unchecked against the bucket's end).
    fn record_off(&self, j: usize) -> u64 {
        let at = self.count() + 2 * j;
        let off = u16::from_le_bytes([self.block[at], self.block[at + 1]]);
        self.entry.data_off + (u64::from(off) << self.entry.shift)
    }
}

/// Position of the first `b` in `hay`, eight bytes per step. A bucket holds
/// about 20 fingerprints, too few for `memchr`'s vector setup to pay off
/// (this saves a batch lookup 26 of about 760 instructions a key).
fn find_byte(hay: &[u8], b: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pat = LO * u64::from(b);
    let mut words = hay.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        let mut x = [0u8; 8];
        x.copy_from_slice(w);
        let x = u64::from_le_bytes(x) ^ pat;
        // High bit set in each zero byte of `x` (and possibly in bytes
        // above one, through the borrow): the lowest one is exact.
        let zero = x.wrapping_sub(LO) & !x & HI;
        if zero != 0 {
            return Some(base + (zero.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| c == b)
        .map(|i| base + i)
}

impl Frozen {
    /// Map the file at `path` and check its header (O(1): nothing else
    /// is read until it is needed).
    pub fn open(path: &Path) -> Result<Self> {
        let (file, len) =
            crate::files::open_with_header(path, HEADER_LEN, format::MAGIC, "frozen")?;
        // SAFETY: frozen files are never modified in place (a rebuild
        // writes a new file and renames it over), so the mapping does not
        // change under us.
        let map = unsafe { Mmap::map(&file) }.at(path)?;
        let header = Header::decode(&map[..HEADER_LEN as usize], len, path)?;
        let _ = map.advise(Advice::Random);
        crate::files::advise_huge_if_it_fits(&map);
        Ok(Frozen {
            path: path.to_path_buf(),
            map,
            header,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn len(&self) -> u64 {
        self.header.len
    }

    pub fn is_empty(&self) -> bool {
        self.header.len == 0
    }

    pub fn file_len(&self) -> u64 {
        self.header.file_len()
    }

    fn hash(&self, key: &[u8]) -> u64 {
        KeyHash::of(key, self.header.hash_seed).0
    }

    fn corrupt(&self, at: u64, why: &str) -> Error {
        Error::corrupt(&self.path, at, why)
    }

    fn entry(&self, b: u64) -> Entry {
        let at = (self.header.table_off() + b * ENTRY_LEN) as usize;
        Entry::decode(&self.map[at..at + ENTRY_LEN as usize])
    }

    /// Bucket `b`, checked against its CRC.
    fn bucket(&self, b: u64) -> Result<Bucket<'_>> {
        let bk = self.bucket_unchecked(b)?;
        self.check_bucket(b, &bk)?;
        Ok(bk)
    }

    /// Bucket `b` with its table entries bounds-checked (so no read can
    /// leave the map) but its index block not yet checked against the CRC.
    fn bucket_unchecked(&self, b: u64) -> Result<Bucket<'_>> {
        let (e, next) = (self.entry(b), self.entry(b + 1));
        if next.first < e.first
            || next.first > self.header.len
            || next.data_off < e.data_off
            || next.data_off > self.header.data_len
            || e.shift > format::MAX_SHIFT
        {
            let at = self.header.table_off() + b * ENTRY_LEN;
            return Err(self.corrupt(at, "bucket table entry out of range"));
        }
        let count = (next.first - e.first) as usize;
        let ix = (self.header.index_off() + e.first * 3) as usize;
        Ok(Bucket {
            entry: e,
            next,
            block: &self.map[ix..ix + 3 * count],
        })
    }

    /// Check bucket `b`'s entries and index block against their CRC.
    fn check_bucket(&self, b: u64, bk: &Bucket<'_>) -> Result<()> {
        if bk.entry.bucket_crc(&bk.next, bk.block) != bk.entry.crc {
            let at = self.header.table_off() + b * ENTRY_LEN;
            return Err(self.corrupt(at, "bucket checksum mismatch"));
        }
        Ok(())
    }

    /// Key and value of record `j` of bucket `bk`.
    fn record<'a>(&'a self, bk: &Bucket<'_>, j: usize) -> Result<(&'a [u8], &'a [u8])> {
        let (start, end) = (bk.record_off(j), bk.next.data_off);
        if start >= end {
            let at = HEADER_LEN + bk.entry.data_off;
            return Err(self.corrupt(at, "record offset out of range"));
        }
        let (s, e) = ((HEADER_LEN + start) as usize, (HEADER_LEN + end) as usize);
        format::decode_record(&self.map[s..e], &self.path, HEADER_LEN + start)
    }

    /// The value of `key`, or `None`.
    pub fn get(&self, key: &[u8]) -> Result<Option<&[u8]>> {
        self.get_hashed(self.hash(key), key)
    }

    /// A hit needs no check of the bucket's index block: the record it
    /// leads to carries its own checksum and holds the very key asked
    /// for, so it is the right answer whatever the block says. Only an
    /// answer that relies on the block (a miss) or a damaged record
    /// checks it, which saves a checksum per hit.
    fn get_hashed(&self, h: u64, key: &[u8]) -> Result<Option<&[u8]>> {
        let b = format::bucket_of(h, self.header.nbuckets);
        let bk = self.bucket_unchecked(b)?;
        let fp = format::fingerprint(h);
        self.find_in(b, &bk, fp, bk.next_match(fp, 0), key)
    }

    /// Finish a lookup in bucket `b` from `first`, the first record whose
    /// fingerprint matches (`None`: no record does).
    fn find_in(
        &self,
        b: u64,
        bk: &Bucket<'_>,
        fp: u8,
        first: Option<usize>,
        key: &[u8],
    ) -> Result<Option<&[u8]>> {
        let mut at = first;
        while let Some(j) = at {
            match self.record(bk, j) {
                Ok((k, v)) if k == key => return Ok(Some(v)),
                Ok(_) => {}
                Err(e) => {
                    self.check_bucket(b, bk)?;
                    return Err(e);
                }
            }
            at = bk.next_match(fp, j + 1);
        }
        self.check_bucket(b, bk)?;
        Ok(None)
    }

    /// Values of many keys (`None` where missing).
    ///
    /// A lookup reads three places that are far apart (table entry, index
    /// block, record), each found from the one before. Each key goes
    /// through them in stages, a stage working [`STAGE_LAG`] keys behind
    /// the one before it and prefetching what the next stage reads, so the
    /// memory latencies of many keys overlap instead of adding up. More
    /// lag is not better: each stage keeps `STAGE_LAG` keys' cache lines in
    /// flight, and once the core's miss buffers are full a prefetch waits.
    pub fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<&[u8]>>> {
        let n = keys.len();
        let h = &self.header;
        let mut out = Vec::with_capacity(n);
        let mut hashes = Vec::with_capacity(n);
        let mut buckets = Vec::with_capacity(n);
        // Each key's bucket and first fingerprint match, found by the
        // third stage (which prefetches that record) for the fourth.
        let mut matches = std::collections::VecDeque::with_capacity(STAGE_LAG + 1);
        for i in 0..n + 3 * STAGE_LAG {
            if let Some(k) = keys.get(i) {
                let hh = self.hash(k);
                let b = format::bucket_of(hh, h.nbuckets);
                self.prefetch(h.table_off() + b * ENTRY_LEN, 2 * ENTRY_LEN);
                hashes.push(hh);
                buckets.push(b);
            }
            if let Some(&b) = i.checked_sub(STAGE_LAG).and_then(|j| buckets.get(j)) {
                let (e, next) = (self.entry(b), self.entry(b + 1));
                let first = e.first.min(h.len);
                let count = next.first.clamp(first, h.len) - first;
                self.prefetch(h.index_off() + first * 3, count * 3);
            }
            if let Some(j) = i.checked_sub(2 * STAGE_LAG).filter(|&j| j < n) {
                let found = self.bucket_unchecked(buckets[j]).map(|bk| {
                    let m = bk.next_match(format::fingerprint(hashes[j]), 0);
                    if let Some((at, len)) = m.and_then(|m| self.record_range(&bk, m)) {
                        self.prefetch(HEADER_LEN + at, len);
                    }
                    (bk, m)
                });
                matches.push_back(found);
            }
            if let Some(j) = i.checked_sub(3 * STAGE_LAG).filter(|&j| j < n) {
                // Stage 3 ran on key `j` a lag ago, so its result is queued.
                let Some(found) = matches.pop_front() else {
                    return Err(Error::Invalid(
                        "internal error: a batch lookup lost its place".into(),
                    ));
                };
                let (bk, first) = found?;
                let fp = format::fingerprint(hashes[j]);
                out.push(self.find_in(buckets[j], &bk, fp, first, keys[j])?);
            }
        }
        Ok(out)
    }

    /// Start loading `len` bytes at file offset `at` into the cache.
    fn prefetch(&self, at: u64, len: u64) {
        let end = (at + len).min(self.map.len() as u64);
        crate::prefetch::lines(
            self.map.as_ptr().wrapping_add(at as usize),
            end.saturating_sub(at) as usize,
        );
    }

    /// Data range (offset, length) of record `j` of `bk`, to prefetch
    /// (unchecked: only a hint). A record ends where the next one starts
    /// (or its bucket ends); its length is not known before its header is
    /// read.
    fn record_range(&self, bk: &Bucket<'_>, j: usize) -> Option<(u64, u64)> {
        let start = bk.record_off(j);
        let end = if j + 1 < bk.count() {
            bk.record_off(j + 1)
        } else {
            bk.next.data_off
        };
        let end = end.min(start + MAX_RECORD_PREFETCH);
        (start < end && end <= self.header.data_len).then_some((start, end - start))
    }

    /// Pairs from position `cursor` (bucket, record in bucket) on, at most
    /// `max` of them, and the cursor after them (`None` at the end).
    pub fn scan(&self, cursor: Cursor, max: usize) -> Result<(Vec<Pair<'_>>, Option<Cursor>)> {
        let (mut b, mut j) = cursor;
        let mut out = Vec::new();
        while b < self.header.nbuckets {
            let bk = self.bucket(b)?;
            while j < bk.count() {
                if out.len() == max {
                    return Ok((out, Some((b, j))));
                }
                out.push(self.record(&bk, j)?);
                j += 1;
            }
            b += 1;
            j = 0;
        }
        Ok((out, None))
    }

    /// Read every bucket and record; the first damage found is the error.
    pub fn verify(&self) -> Result<u64> {
        let mut n = 0u64;
        let mut cursor = Some((0, 0));
        while let Some(c) = cursor {
            let (pairs, next) = self.scan(c, 1 << 16)?;
            for (k, _) in &pairs {
                let h = self.hash(k);
                if self.get_hashed(h, k)?.is_none() {
                    return Err(self.corrupt(HEADER_LEN, "a stored key is not found by lookup"));
                }
            }
            n += pairs.len() as u64;
            cursor = next;
        }
        if n != self.header.len {
            return Err(self.corrupt(48, "pair count does not match the header"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::find_byte;

    #[test]
    fn find_byte_finds_the_first_match_at_every_length_and_place() {
        // Bytes next to the target (b - 1, b + 1, 0x80 | b) are where a
        // word-at-a-time search would report a false match.
        for b in [0u8, 1, 0x7f, 0x80, 0xfe, 0xff] {
            for len in 0..40 {
                let base: Vec<u8> = (0..len)
                    .map(|i| [b.wrapping_sub(1), b.wrapping_add(1), b ^ 0x80][i % 3])
                    .collect();
                assert_eq!(find_byte(&base, b), None, "b {b} len {len}");
                for at in 0..len {
                    let mut hay = base.clone();
                    hay[at] = b;
                    if at + 2 < len {
                        hay[at + 2] = b;
                    }
                    assert_eq!(find_byte(&hay, b), Some(at), "b {b} len {len} at {at}");
                }
            }
        }
    }
}
