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
//! Slots are read and written as atomics: readers in other processes probe
//! the live file while the one writer updates it. The writer never moves a
//! slot inside a live file; growth writes a new file.

use crate::error::{Error, IoContext, Result};
use crate::hash::{home_bucket, TAG_BITS};
use crate::record::{le_u32, le_u64, Loc, LOC_BITS, LOC_MASK};
use memmap2::{MmapOptions, MmapRaw};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const MAGIC: &[u8; 8] = b"VDPART01";
const HEADER: usize = 64;
pub const BUCKET_SLOTS: usize = 8;
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

fn file_len(nbuckets: u64) -> u64 {
    HEADER as u64 + nbuckets * (BUCKET_SLOTS as u64) * 10
}

impl Partition {
    /// Create a new, empty partition file.
    pub fn create(path: &Path, id: u64, nbuckets: u64, depth: u32) -> Result<Self> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .at(path)?;
        f.set_len(file_len(nbuckets)).at(path)?;
        let map = MmapOptions::new().map_raw(&f).at(path)?;
        let mut head = [0u8; HEADER];
        head[..8].copy_from_slice(MAGIC);
        head[8..16].copy_from_slice(&id.to_le_bytes());
        head[16..24].copy_from_slice(&nbuckets.to_le_bytes());
        head[24..28].copy_from_slice(&depth.to_le_bytes());
        let crc = crc32c::crc32c(&head[..32]);
        head[60..64].copy_from_slice(&crc.to_le_bytes());
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
        if nbuckets == 0 || nbuckets > (1 << 40) || file_len(nbuckets) != len || depth > 16 {
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
        let base = HEADER + self.capacity() as usize * 8;
        // SAFETY: the side array follows the slots; i < capacity.
        unsafe { self.map.as_mut_ptr().add(base + i * 2) as *mut u16 }
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
        // SAFETY: offset 32 of the header, 8-aligned.
        unsafe { &*(self.map.as_ptr().add(32) as *const AtomicU64) }
    }

    pub fn used(&self) -> u64 {
        self.used_ref().load(Ordering::Relaxed)
    }

    pub fn set_used(&self, n: u64) {
        self.used_ref().store(n, Ordering::Relaxed)
    }

    /// Probe for `tag`; `is_key(loc)` decides whether the record at `loc`
    /// holds the key being looked for.
    #[inline]
    pub fn probe(&self, tag: u32, mut is_key: impl FnMut(Loc) -> Result<bool>) -> Result<Probe> {
        let cap = self.capacity() as usize;
        let mut i = home_bucket(tag, self.nbuckets) as usize * BUCKET_SLOTS;
        let mut vacant = None;
        for _ in 0..cap {
            let s = self.slot(i);
            if s == EMPTY {
                return Ok(Probe::Vacant(vacant.unwrap_or(i)));
            }
            if s == DELETED {
                vacant.get_or_insert(i);
            } else if slot_tag(s) == tag && is_key(slot_loc(s))? {
                return Ok(Probe::Found(i, slot_loc(s)));
            }
            i += 1;
            if i == cap {
                i = 0;
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

    /// Ask the CPU to start loading the home bucket of `tag`.
    #[inline]
    pub fn prefetch(&self, tag: u32) {
        let i = home_bucket(tag, self.nbuckets) as usize * BUCKET_SLOTS;
        crate::prefetch::read(self.slot_ref(i) as *const AtomicU64 as *const u8);
    }

    /// Location in the first slot carrying `tag` (without comparing keys):
    /// where the key most likely is, for prefetching its record.
    #[inline]
    pub fn first_tag_match(&self, tag: u32) -> Option<Loc> {
        let cap = self.capacity() as usize;
        let mut i = home_bucket(tag, self.nbuckets) as usize * BUCKET_SLOTS;
        for _ in 0..BUCKET_SLOTS * 2 {
            let s = self.slot(i);
            if s == EMPTY {
                return None;
            }
            if s != DELETED && slot_tag(s) == tag {
                return Some(slot_loc(s));
            }
            i += 1;
            if i == cap {
                i = 0;
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

    /// Insert into a file being filled by a rehash (no duplicates possible).
    pub fn place(&self, slot: u64, dir: u16) {
        let cap = self.capacity() as usize;
        let mut i = home_bucket(slot_tag(slot), self.nbuckets) as usize * BUCKET_SLOTS;
        while self.slot(i) != EMPTY {
            i += 1;
            if i == cap {
                i = 0;
            }
        }
        self.set_slot(i, slot);
        self.set_side(i, dir);
    }

    /// Every live (not empty, not deleted) slot with its directory bits.
    pub fn live_slots(&self) -> impl Iterator<Item = (u64, u16)> + '_ {
        (0..self.capacity() as usize).filter_map(move |i| {
            let s = self.slot(i);
            (s != EMPTY && s != DELETED).then(|| (s, self.side(i)))
        })
    }

    /// Every live slot's value (readers: the side array is not needed).
    pub fn live_locs(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.capacity() as usize)
            .map(move |i| self.slot(i))
            .filter(|&s| s != EMPTY && s != DELETED)
    }
}
