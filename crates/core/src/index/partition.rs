//! One index partition: a bucketed open-addressing table in its own file.
//!
//! ```text
//! offset            size            field
//!   0                 8             magic "VDPART01"
//!   8                 8             partition id
//!  16                 8             bucket count (n)
//!  24                 4             depth (directory bits this partition owns)
//!  28                 4             reserved
//!  32                 8             used slots (written by the writer)
//!  40                20             reserved
//!  60                 4             crc32c of bytes 0..32
//!  64             n * 64            buckets: 8 slots of u64 each
//!  64 + n*64      n * 16            side: one u16 per slot, the key's directory bits
//! ```
//!
//! A slot is `tag << 42 | loc` (see [`crate::hash`]); 0 is empty and
//! `u64::MAX` is a deleted slot (left by a rollback) that probes skip.
//!
//! Probing is double hashing over *groups* of 16 slots (two adjacent
//! buckets, 128 bytes, which the CPU fetches together): the tag picks a home
//! group and a step, and the number of groups is prime so every step visits
//! every group. Linear probing would scan ~50 slots for a miss at 90% load
//! (Knuth's ½(1 + 1/(1-α)²)); this scans about two groups.
//! Slots are read and written as atomics: readers in other processes probe
//! the live file while the one writer updates it. The writer never moves a
//! slot inside a live file; growth writes a new file.

use crate::error::{Error, IoContext, Result};
use crate::hash::{home_bucket, TAG_BITS};
use crate::record::{le_u32, le_u64, Loc, LOC_BITS, LOC_MASK};
use memmap2::{MmapOptions, MmapRaw};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const MAGIC: &[u8; 8] = b"VDPART01";
const HEADER: usize = 64;
pub const BUCKET_SLOTS: usize = 8;
/// Slots probed together: two buckets.
pub const GROUP_SLOTS: usize = 16;
pub const EMPTY: u64 = 0;
pub const DELETED: u64 = u64::MAX;

#[inline]
pub fn make_slot(tag: u32, loc: Loc) -> u64 {
    (u64::from(tag) << LOC_BITS) | loc
}

#[inline]
pub fn slot_tag(slot: u64) -> u32 {
    (slot >> LOC_BITS) as u32 & ((1 << TAG_BITS) - 1)
}

#[inline]
pub fn slot_loc(slot: u64) -> Loc {
    slot & LOC_MASK
}

/// Result of probing for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The key's slot: its index and location.
    Found(usize, Loc),
    /// Not present; the index of the first slot it could take.
    Vacant(usize),
}

/// One mapped partition file.
pub struct Partition {
    pub id: u64,
    pub nbuckets: u64,
    pub depth: u32,
    pub path: PathBuf,
    map: MmapRaw,
}

// SAFETY: all access to the mapping goes through atomics (slots, used) or
// happens only in the single writer (side array), which holds `&mut` to the
// store while it writes.
unsafe impl Send for Partition {}
unsafe impl Sync for Partition {}

/// Smallest prime >= n (n >= 2).
fn next_prime(mut n: u64) -> u64 {
    fn is_prime(n: u64) -> bool {
        if n < 4 {
            return n >= 2;
        }
        if n.is_multiple_of(2) {
            return false;
        }
        let mut d = 3;
        while d * d <= n {
            if n.is_multiple_of(d) {
                return false;
            }
            d += 2;
        }
        true
    }
    while !is_prime(n) {
        n += 1;
    }
    n
}

/// A bucket count of at least `want` that makes a prime number of groups.
pub fn bucket_count(want: u64) -> u64 {
    2 * next_prime(want.div_ceil(2).max(2))
}

/// Home group and step of a tag in a table of `groups` groups.
#[inline]
fn sequence(tag: u32, groups: u64) -> (u64, u64) {
    let home = home_bucket(tag, groups);
    let mixed = u64::from(tag).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    (home, 1 + mixed % (groups - 1))
}

fn file_len(nbuckets: u64) -> u64 {
    HEADER as u64 + nbuckets * (BUCKET_SLOTS as u64) * 10
}

/// Offset of the header's `used` count.
const USED_AT: usize = 32;

/// Offset of slot `i`'s directory bits in a table of `nbuckets` buckets
/// (the side array follows the slots).
fn side_at(nbuckets: u64, i: usize) -> usize {
    HEADER + nbuckets as usize * BUCKET_SLOTS * 8 + 2 * i
}

/// The header of a new partition (with `used` zero).
fn header(id: u64, nbuckets: u64, depth: u32) -> [u8; HEADER] {
    let mut head = [0u8; HEADER];
    head[..8].copy_from_slice(MAGIC);
    head[8..16].copy_from_slice(&id.to_le_bytes());
    head[16..24].copy_from_slice(&nbuckets.to_le_bytes());
    head[24..28].copy_from_slice(&depth.to_le_bytes());
    let crc = crc32c::crc32c(&head[..32]);
    head[60..64].copy_from_slice(&crc.to_le_bytes());
    head
}

/// The first empty or deleted slot at or after slot `i` on the probe
/// sequence of `tag` (which must pass through `i`), reading slots with
/// `slot`.
#[inline]
fn next_free_in(groups: u64, tag: u32, i: usize, slot: impl Fn(usize) -> u64) -> Option<usize> {
    let (_, step) = sequence(tag, groups);
    let mut g = (i / GROUP_SLOTS) as u64;
    let mut start = i % GROUP_SLOTS;
    for _ in 0..groups {
        let base = g as usize * GROUP_SLOTS;
        for j in start..GROUP_SLOTS {
            if matches!(slot(base + j), EMPTY | DELETED) {
                return Some(base + j);
            }
        }
        start = 0;
        g += step;
        if g >= groups {
            g -= groups;
        }
    }
    None
}

/// A partition being filled by a rehash, laid out in ordinary memory as
/// its file will be, then written in one go by [`Partition::create_filled`].
/// Filling a fresh file through its mapping instead takes a page fault and
/// a filesystem callback for every page, which made up much of the cost of
/// growing the index.
pub struct Table {
    nbuckets: u64,
    buf: Vec<u8>,
    used: u64,
}

impl Table {
    /// An empty table of at least `want` buckets in `buf` (a buffer
    /// given back by an earlier [`Partition::create_filled`], or empty).
    pub fn new(want: u64, mut buf: Vec<u8>) -> Self {
        let nbuckets = bucket_count(want);
        buf.clear();
        buf.resize(file_len(nbuckets) as usize, 0);
        Table {
            nbuckets,
            buf,
            used: 0,
        }
    }

    #[inline]
    fn slot(&self, i: usize) -> u64 {
        le_u64(&self.buf, HEADER + 8 * i)
    }

    /// Insert a slot (no duplicates possible; the caller sized the table
    /// so there is room).
    #[inline]
    pub fn place(&mut self, slot: u64, dir: u16) {
        let tag = slot_tag(slot);
        let groups = self.nbuckets / 2;
        let (home, _) = sequence(tag, groups);
        if let Some(i) = next_free_in(groups, tag, home as usize * GROUP_SLOTS, |i| self.slot(i)) {
            let at = HEADER + 8 * i;
            self.buf[at..at + 8].copy_from_slice(&slot.to_le_bytes());
            let side = side_at(self.nbuckets, i);
            self.buf[side..side + 2].copy_from_slice(&dir.to_le_bytes());
            self.used += 1;
        }
    }
}

impl Partition {
    /// Create a new, empty partition file.
    pub fn create(path: &Path, id: u64, nbuckets: u64, depth: u32) -> Result<Self> {
        let nbuckets = bucket_count(nbuckets);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .at(path)?;
        f.set_len(file_len(nbuckets)).at(path)?;
        let map = MmapOptions::new().map_raw(&f).at(path)?;
        let head = header(id, nbuckets, depth);
        // SAFETY: the file was just sized to hold the header.
        unsafe { std::ptr::copy_nonoverlapping(head.as_ptr(), map.as_mut_ptr(), HEADER) };
        Ok(Partition {
            id,
            nbuckets,
            depth,
            path: path.to_path_buf(),
            map,
        })
    }

    /// Write `table` as partition file `path` and map it. Gives the
    /// table's buffer back for the next one.
    pub fn create_filled(
        path: &Path,
        id: u64,
        depth: u32,
        mut table: Table,
    ) -> Result<(Self, Vec<u8>)> {
        table.buf[..HEADER].copy_from_slice(&header(id, table.nbuckets, depth));
        table.buf[USED_AT..USED_AT + 8].copy_from_slice(&table.used.to_le_bytes());
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .at(path)?;
        f.write_all(&table.buf).at(path)?;
        let map = MmapOptions::new().map_raw(&f).at(path)?;
        // New keys land all over the table before it grows again, so
        // every page will be written: map them writable in one call
        // rather than one write fault each (a hint; errors only cost
        // those faults).
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::PopulateWrite);
        let part = Partition {
            id,
            nbuckets: table.nbuckets,
            depth,
            path: path.to_path_buf(),
            map,
        };
        Ok((part, table.buf))
    }

    /// Map an existing partition file and check its header.
    pub fn open(path: &Path, writable: bool) -> Result<Self> {
        let f = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .at(path)?;
        let len = f.metadata().at(path)?.len();
        if len < HEADER as u64 {
            return Err(Error::corrupt(path, 0, "index partition is truncated"));
        }
        let map = if writable {
            MmapOptions::new().map_raw(&f)
        } else {
            MmapOptions::new().map_raw_read_only(&f)
        }
        .at(path)?;
        // SAFETY: the file holds at least HEADER bytes (checked above).
        let head = unsafe { std::slice::from_raw_parts(map.as_ptr(), HEADER) };
        if &head[..8] != MAGIC || crc32c::crc32c(&head[..32]) != le_u32(head, 60) {
            return Err(Error::corrupt(path, 0, "bad index partition header"));
        }
        let nbuckets = le_u64(head, 16);
        let depth = le_u32(head, 24);
        if nbuckets < 4
            || !nbuckets.is_multiple_of(2)
            || nbuckets > (1 << 40)
            || file_len(nbuckets) != len
            || depth > 16
        {
            return Err(Error::corrupt(
                path,
                16,
                "index partition size does not match its header",
            ));
        }
        Ok(Partition {
            id: le_u64(head, 8),
            nbuckets,
            depth,
            path: path.to_path_buf(),
            map,
        })
    }

    pub fn capacity(&self) -> u64 {
        self.nbuckets * BUCKET_SLOTS as u64
    }

    pub fn file_len(&self) -> u64 {
        file_len(self.nbuckets)
    }

    #[inline]
    fn slot_ref(&self, i: usize) -> &AtomicU64 {
        debug_assert!((i as u64) < self.capacity());
        // SAFETY: i < capacity, slots start at an 8-aligned offset of a
        // page-aligned mapping sized for `capacity` slots.
        unsafe { &*(self.map.as_ptr().add(HEADER + i * 8) as *const AtomicU64) }
    }

    #[inline]
    pub fn slot(&self, i: usize) -> u64 {
        self.slot_ref(i).load(Ordering::Acquire)
    }

    /// Writer only.
    #[inline]
    pub fn set_slot(&self, i: usize, v: u64) {
        self.slot_ref(i).store(v, Ordering::Release)
    }

    fn side_ptr(&self, i: usize) -> *mut u16 {
        // SAFETY: the side array follows the slots; i < capacity.
        unsafe { self.map.as_mut_ptr().add(side_at(self.nbuckets, i)) as *mut u16 }
    }

    /// Directory bits of the key in slot `i` (writer only).
    pub fn side(&self, i: usize) -> u16 {
        // SAFETY: in bounds (see side_ptr); u16 alignment holds because the
        // side array starts at an even offset.
        unsafe { self.side_ptr(i).read() }
    }

    pub fn set_side(&self, i: usize, dir: u16) {
        // SAFETY: as in `side`; only the writer writes here.
        unsafe { self.side_ptr(i).write(dir) }
    }

    fn used_ref(&self) -> &AtomicU64 {
        // SAFETY: in the header, 8-aligned.
        unsafe { &*(self.map.as_ptr().add(USED_AT) as *const AtomicU64) }
    }

    pub fn used(&self) -> u64 {
        self.used_ref().load(Ordering::Relaxed)
    }

    pub fn set_used(&self, n: u64) {
        self.used_ref().store(n, Ordering::Relaxed)
    }

    fn groups(&self) -> u64 {
        self.nbuckets / 2
    }

    /// Probe for `tag`; `is_key(loc)` decides whether the record at `loc`
    /// holds the key being looked for.
    #[inline]
    pub fn probe(&self, tag: u32, mut is_key: impl FnMut(Loc) -> Result<bool>) -> Result<Probe> {
        let groups = self.groups();
        let (mut g, step) = sequence(tag, groups);
        let mut vacant = None;
        for _ in 0..groups {
            let base = g as usize * GROUP_SLOTS;
            for i in base..base + GROUP_SLOTS {
                let s = self.slot(i);
                if s == EMPTY {
                    return Ok(Probe::Vacant(vacant.unwrap_or(i)));
                }
                if s == DELETED {
                    vacant.get_or_insert(i);
                } else if slot_tag(s) == tag && is_key(slot_loc(s))? {
                    return Ok(Probe::Found(i, slot_loc(s)));
                }
            }
            g += step;
            if g >= groups {
                g -= groups;
            }
        }
        match vacant {
            Some(v) => Ok(Probe::Vacant(v)),
            None => Err(Error::corrupt(
                &self.path,
                HEADER as u64,
                "index partition has no empty slot",
            )),
        }
    }

    /// Ask the CPU to start loading the groups a write of `tag` probes:
    /// the home group and the next one on the sequence (at the loads we
    /// run, about half the probes for a new key reach the second group).
    #[inline]
    pub fn prefetch(&self, tag: u32) {
        let groups = self.groups();
        let (home, step) = sequence(tag, groups);
        self.prefetch_group(home);
        self.prefetch_group((home + step) % groups);
    }

    /// Ask the CPU to start loading the home group of `tag` only: most
    /// keys are found there (a key sits further on only if its home group
    /// was full when it came), and each line more in flight per lookup
    /// slows a batch once the core's miss buffers fill.
    #[inline]
    pub fn prefetch_home(&self, tag: u32) {
        self.prefetch_group(home_bucket(tag, self.groups()));
    }

    #[inline]
    fn prefetch_group(&self, g: u64) {
        let p = self.slot_ref(g as usize * GROUP_SLOTS) as *const AtomicU64 as *const u8;
        crate::prefetch::read(p);
        crate::prefetch::read(p.wrapping_add(64));
    }

    /// The first empty or deleted slot at or after slot `i` on the probe
    /// sequence of `tag` (which must pass through `i`).
    pub fn next_free(&self, tag: u32, i: usize) -> Option<usize> {
        next_free_in(self.groups(), tag, i, |i| self.slot(i))
    }

    /// Ask the CPU to start loading slot `i`.
    #[inline]
    pub fn prefetch_slot(&self, i: usize) {
        if (i as u64) < self.capacity() {
            crate::prefetch::read(self.slot_ref(i) as *const AtomicU64 as *const u8);
        }
    }

    /// Location in the first slot carrying `tag` on the probe sequence,
    /// looking no further than the two groups [`Partition::prefetch`]
    /// loads (without comparing keys): where the key most likely is, for
    /// prefetching its record, and the slot a probe for the key would
    /// check first.
    #[inline]
    pub fn first_tag_match(&self, tag: u32) -> Option<Loc> {
        let groups = self.groups();
        let home = home_bucket(tag, groups);
        // The step costs a division: only a full home group needs it.
        self.tag_in_group(tag, home).unwrap_or_else(|| {
            let (_, step) = sequence(tag, groups);
            self.tag_in_group(tag, (home + step) % groups).flatten()
        })
    }

    /// Scan group `g` for `tag`: `Some(Some(loc))` at the first slot with
    /// the tag, `Some(None)` at an empty slot first (the probe ends
    /// there), `None` if the group is full without the tag.
    #[inline]
    fn tag_in_group(&self, tag: u32, g: u64) -> Option<Option<Loc>> {
        let base = g as usize * GROUP_SLOTS;
        for j in 0..GROUP_SLOTS {
            let s = self.slot(base + j);
            if s == EMPTY {
                return Some(None);
            }
            if s != DELETED && slot_tag(s) == tag {
                return Some(Some(slot_loc(s)));
            }
        }
        None
    }

    /// Find the slot holding exactly `tag` and `loc` (no key comparison).
    pub fn find_loc(&self, tag: u32, loc: Loc) -> Result<Option<usize>> {
        match self.probe(tag, |l| Ok(l == loc))? {
            Probe::Found(i, _) => Ok(Some(i)),
            Probe::Vacant(_) => Ok(None),
        }
    }

    /// Every live (not empty, not deleted) slot with its directory bits.
    pub fn live_slots(&self) -> impl Iterator<Item = (u64, u16)> + '_ {
        (0..self.capacity() as usize).filter_map(move |i| {
            let s = self.slot(i);
            (s != EMPTY && s != DELETED).then(|| (s, self.side(i)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partition file `name` with `home` in the first slots of `tag`'s
    /// home group and `second` in the next group on its probe sequence.
    fn with_groups(dir: &Path, name: &str, tag: u32, home: &[u64], second: &[u64]) -> Partition {
        let p = Partition::create(&dir.join(name), 1, 14, 0).expect("create");
        let groups = p.groups();
        let (g0, step) = sequence(tag, groups);
        for (base, slots) in [(g0, home), ((g0 + step) % groups, second)] {
            for (j, &s) in slots.iter().enumerate() {
                p.set_slot(base as usize * GROUP_SLOTS + j, s);
            }
        }
        p
    }

    #[test]
    fn first_tag_match_follows_the_probe_sequence_into_the_second_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tag = 0x2_5a5a;
        let other = tag ^ 1;
        let full: Vec<u64> = (1..=GROUP_SLOTS as u64)
            .map(|i| make_slot(other, i))
            .collect();
        // Home group full of other tags: the match is in the next group.
        let p = with_groups(dir.path(), "a", tag, &full, &[make_slot(tag, 42)]);
        assert_eq!(p.first_tag_match(tag), Some(42));

        // A deleted slot is skipped, not taken for the end of the probe.
        let mut home = full.clone();
        home[3] = DELETED;
        home[5] = make_slot(tag, 7);
        let p = with_groups(dir.path(), "b", tag, &home, &[make_slot(tag, 42)]);
        assert_eq!(p.first_tag_match(tag), Some(7));

        // An empty slot in the home group ends the probe there.
        let p = with_groups(dir.path(), "c", tag, &full[..4], &[make_slot(tag, 42)]);
        assert_eq!(p.first_tag_match(tag), None);
    }
}
