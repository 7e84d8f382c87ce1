//! The index of one generation: a directory of 2^16 entries pointing at
//! partitions (extendible hashing), each partition a table in its own file.
//!
//! Growth never stops the world: a full partition (94% load) is rewritten
//! alone into a new file 1.09x-1.2x larger (its own step, see [`jitter`]),
//! so the load stays between 0.78 and 0.94 and the index costs about 11.5
//! bytes per key on disk; a partition past its split size (at most
//! [`MAX_BUCKETS`]) splits in two by one more directory bit. Either way at
//! most a few MiB move at once, whatever the size of the store.
//!
//! Readers map the partitions the directory names when they open (holding
//! the directory file's shared lock while they do, so the writer does not
//! swap a partition under them) and keep using those mappings: a replaced
//! partition file is unlinked but stays mapped, frozen with every entry it
//! had, which covers the reader's snapshot.
//!
//! ```text
//! dir file: magic "VDDIR001" | generation u64 | reserved 44 | crc32c u32 (of 0..16)
//!           65536 x u64 partition id
//! ```

pub mod partition;

use crate::error::{Error, IoContext, Result};
use crate::files::{dir_path, partition_path, sync_dir};
use crate::hash::{KeyHash, DIR_BITS, DIR_LEN};
use crate::record::{le_u32, le_u64, Loc};
use memmap2::{MmapOptions, MmapRaw};
use partition::{make_slot, Partition, Probe, Table, BUCKET_SLOTS, DELETED, EMPTY};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DIR_MAGIC: &[u8; 8] = b"VDDIR001";
const DIR_HEADER: usize = 64;
/// A partition grows until it holds this many buckets, then splits.
pub const MAX_BUCKETS: u64 = 1 << 14;
const INITIAL_BUCKETS: u64 = 8;
const MAX_LOAD: f64 = 0.94;

/// A number in [0, 1) fixed by a partition id.
///
/// Keys spread evenly, so partitions fill at the same pace; with one
/// threshold for all they would grow (and split) within a few writes of each
/// other, hundreds at once. Each partition instead takes its own growth
/// step and split size from its id, which spreads that work out.
fn jitter(id: u64, salt: u64) -> f64 {
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(&id.to_le_bytes(), salt);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Load a new partition is sized for: 0.78..0.86, so growth steps are
/// 1.09x..1.2x.
fn target_load(id: u64) -> f64 {
    0.78 + 0.08 * jitter(id, 1)
}

/// Bucket count past which a partition splits instead of growing.
fn split_buckets(id: u64) -> u64 {
    (MAX_BUCKETS as f64 * (0.55 + 0.45 * jitter(id, 2))) as u64
}

/// A probe's result with where it was made: valid for placing the key
/// later as long as the partition has not been replaced since.
///
/// Packed into 16 bytes (and 16 as an `Option`): a flush keeps one per
/// write of its block, and at 72 bytes with the rest of a write's record
/// that list cost a tenth of a bulk load in cache misses. A found key's
/// location is not kept; the caller has it as the version it replaces.
#[derive(Debug, Clone, Copy)]
pub struct ProbeAt {
    /// Partition number plus one.
    part: std::num::NonZeroU32,
    /// Slot number, with [`ProbeAt::FOUND`] set when the key is there.
    slot: u32,
    version: u64,
}

const _: () = assert!(std::mem::size_of::<Option<ProbeAt>>() == 16);

impl ProbeAt {
    const FOUND: u32 = 1 << 31;

    fn new(part: usize, version: u64, probe: Probe) -> Result<Self> {
        let (slot, found) = match probe {
            Probe::Found(i, _) => (i, Self::FOUND),
            Probe::Vacant(i) => (i, 0),
        };
        let bad = || Error::Invalid("internal error: index probe out of range".into());
        let part = u32::try_from(part + 1)
            .ok()
            .and_then(std::num::NonZeroU32::new)
            .ok_or_else(bad)?;
        let slot = u32::try_from(slot)
            .ok()
            .filter(|&s| s < Self::FOUND)
            .ok_or_else(bad)?;
        Ok(ProbeAt {
            part,
            slot: slot | found,
            version,
        })
    }

    fn part(&self) -> usize {
        self.part.get() as usize - 1
    }

    fn slot(&self) -> usize {
        (self.slot & !Self::FOUND) as usize
    }

    /// Whether the probe found the key.
    pub fn found(&self) -> bool {
        self.slot & Self::FOUND != 0
    }
}

pub struct Index {
    gen_dir: PathBuf,
    dir_file: File,
    dir_map: MmapRaw,
    /// Directory entry -> position in `parts`.
    dir: Vec<u32>,
    parts: Vec<Arc<Partition>>,
    /// Bumped each time the partition at a position is replaced.
    versions: Vec<u64>,
    next_id: u64,
    writable: bool,
    /// Buffers of earlier growth steps, reused by the next ones.
    spare: Vec<Vec<u8>>,
}

impl Index {
    /// Create the index of a new generation: one small partition.
    pub fn create(gen_dir: &Path, generation: u64) -> Result<Self> {
        let path = dir_path(gen_dir);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .at(&path)?;
        f.set_len((DIR_HEADER + DIR_LEN * 8) as u64).at(&path)?;
        let map = MmapOptions::new().map_raw(&f).at(&path)?;
        let mut head = [0u8; DIR_HEADER];
        head[..8].copy_from_slice(DIR_MAGIC);
        head[8..16].copy_from_slice(&generation.to_le_bytes());
        let crc = crc32c::crc32c(&head[..16]);
        head[60..64].copy_from_slice(&crc.to_le_bytes());
        // SAFETY: the file was sized above to hold the header.
        unsafe { std::ptr::copy_nonoverlapping(head.as_ptr(), map.as_mut_ptr(), DIR_HEADER) };
        let first = Partition::create(&partition_path(gen_dir, 1), 1, INITIAL_BUCKETS, 0)?;
        let index = Index {
            gen_dir: gen_dir.to_path_buf(),
            dir_file: f,
            dir_map: map,
            dir: vec![0; DIR_LEN],
            parts: vec![Arc::new(first)],
            versions: vec![0],
            next_id: 2,
            writable: true,
            spare: Vec::new(),
        };
        for e in 0..DIR_LEN {
            index.write_dir_entry(e, 1);
        }
        sync_dir(gen_dir)?;
        Ok(index)
    }

    /// Open the index of an existing generation.
    pub fn open(gen_dir: &Path, writable: bool) -> Result<Self> {
        let path = dir_path(gen_dir);
        let f = match OpenOptions::new().read(true).write(writable).open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::corrupt(&path, 0, "index directory file is missing"))
            }
            other => other.at(&path)?,
        };
        if f.metadata().at(&path)?.len() != (DIR_HEADER + DIR_LEN * 8) as u64 {
            return Err(Error::corrupt(
                &path,
                0,
                "index directory has the wrong size",
            ));
        }
        let map = if writable {
            MmapOptions::new().map_raw(&f)
        } else {
            MmapOptions::new().map_raw_read_only(&f)
        }
        .at(&path)?;
        // Shared lock: the writer swaps partitions only under the exclusive one.
        f.lock_shared().at(&path)?;
        Self::load(gen_dir, &path, f, map, writable)
    }

    fn load(gen_dir: &Path, path: &Path, f: File, map: MmapRaw, writable: bool) -> Result<Self> {
        // SAFETY: the mapping is DIR_HEADER + DIR_LEN * 8 bytes (checked by
        // the caller); the writer changes entries only under the exclusive
        // lock, and we hold the shared one.
        let bytes = unsafe { std::slice::from_raw_parts(map.as_ptr(), DIR_HEADER + DIR_LEN * 8) };
        if &bytes[..8] != DIR_MAGIC || crc32c::crc32c(&bytes[..16]) != le_u32(bytes, 60) {
            f.unlock().at(path)?;
            return Err(Error::corrupt(path, 0, "bad index directory header"));
        }
        let mut by_id: HashMap<u64, u32> = HashMap::new();
        let mut parts: Vec<Arc<Partition>> = Vec::new();
        let mut dir = vec![0u32; DIR_LEN];
        let mut next_id = 1;
        let loaded = (|| -> Result<()> {
            for (e, d) in dir.iter_mut().enumerate() {
                let id = le_u64(bytes, DIR_HEADER + e * 8);
                let pos = match by_id.get(&id) {
                    Some(&p) => p,
                    None => {
                        let p = match Partition::open(&partition_path(gen_dir, id), writable) {
                            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                                return Err(Error::corrupt(
                                    path,
                                    (DIR_HEADER + e * 8) as u64,
                                    format!("index directory names partition {id}, which does not exist"),
                                ))
                            }
                            other => other?,
                        };
                        if p.id != id {
                            return Err(Error::corrupt(
                                &p.path,
                                8,
                                "partition id does not match its name",
                            ));
                        }
                        parts.push(Arc::new(p));
                        by_id.insert(id, parts.len() as u32 - 1);
                        parts.len() as u32 - 1
                    }
                };
                next_id = next_id.max(id + 1);
                *d = pos;
            }
            Ok(())
        })();
        f.unlock().at(path)?;
        loaded?;
        Ok(Index {
            gen_dir: gen_dir.to_path_buf(),
            dir_file: f,
            dir_map: map,
            dir,
            versions: vec![0; parts.len()],
            parts,
            next_id,
            writable,
            spare: Vec::new(),
        })
    }

    fn write_dir_entry(&self, e: usize, id: u64) {
        // SAFETY: e < DIR_LEN; the mapping holds DIR_LEN entries after the
        // header; only the writer calls this, under the exclusive lock.
        unsafe {
            let p = self.dir_map.as_mut_ptr().add(DIR_HEADER + e * 8) as *mut u64;
            p.write_unaligned(id.to_le())
        }
    }

    #[inline]
    pub fn partition_of(&self, h: KeyHash) -> (usize, &Partition) {
        let p = self.dir[h.dir() as usize] as usize;
        (p, &self.parts[p])
    }

    /// Probe for a key.
    #[inline]
    pub fn probe(
        &self,
        h: KeyHash,
        is_key: impl FnMut(Loc) -> Result<bool>,
    ) -> Result<(usize, Probe)> {
        let (p, part) = self.partition_of(h);
        Ok((p, part.probe(h.tag(), is_key)?))
    }

    /// Start loading the slots a write of `h` probes.
    #[inline]
    pub fn prefetch(&self, h: KeyHash) {
        self.partition_of(h).1.prefetch(h.tag());
    }

    /// Start loading the slots a lookup of `h` most likely reads.
    #[inline]
    pub fn prefetch_home(&self, h: KeyHash) {
        self.partition_of(h).1.prefetch_home(h.tag());
    }

    #[inline]
    pub fn first_tag_match(&self, h: KeyHash) -> Option<Loc> {
        self.partition_of(h).1.first_tag_match(h.tag())
    }

    /// Probe for a key, remembering where, for [`Index::apply_resolved`].
    #[inline]
    pub fn probe_at(
        &self,
        h: KeyHash,
        is_key: impl FnMut(Loc) -> Result<bool>,
    ) -> Result<(ProbeAt, Probe)> {
        let (part, p) = self.partition_of(h);
        let probe = p.probe(h.tag(), is_key)?;
        Ok((ProbeAt::new(part, self.versions[part], probe)?, probe))
    }

    /// Ask the CPU to start loading the slot a probe found.
    #[inline]
    pub fn prefetch_at(&self, at: &ProbeAt) {
        if let Some(p) = self.parts.get(at.part()) {
            p.prefetch_slot(at.slot());
        }
    }

    /// Like [`Index::apply`], at the slot an earlier probe found when it is
    /// still right (no probe again), else by probing.
    pub fn apply_resolved(
        &mut self,
        h: KeyHash,
        loc: Loc,
        prev: Option<Loc>,
        at: Option<ProbeAt>,
    ) -> Result<()> {
        let Some(at) = at.filter(|a| self.versions.get(a.part()) == Some(&a.version)) else {
            return self.apply(h, loc, prev);
        };
        let part = &self.parts[at.part()];
        let tag = h.tag();
        let i = at.slot();
        match (at.found(), prev) {
            (true, Some(p)) if part.slot(i) == make_slot(tag, p) => {
                part.set_slot(i, make_slot(tag, loc));
                Ok(())
            }
            (false, None) => {
                // Slots only fill up during a flush, and every slot from the
                // key's home to `i` was taken when it was probed, so the
                // first free slot from `i` on is where a probe would put it.
                let i = part.next_free(tag, i).ok_or_else(|| {
                    Error::corrupt(&part.path, 0, "index partition has no empty slot")
                })?;
                self.place_new(at.part(), i, h, loc)
            }
            _ => self.apply(h, loc, prev),
        }
    }

    /// Point the key's slot at `loc`. `prev` is the location the slot holds
    /// now (found by an earlier probe), or `None` for a new key.
    pub fn apply(&mut self, h: KeyHash, loc: Loc, prev: Option<Loc>) -> Result<()> {
        debug_assert!(self.writable);
        let (p, part) = self.partition_of(h);
        let tag = h.tag();
        if let Some(prev) = prev {
            if let Some(i) = part.find_loc(tag, prev)? {
                part.set_slot(i, make_slot(tag, loc));
                return Ok(());
            }
            return Err(Error::corrupt(
                &part.path,
                0,
                "index lost a slot the writer placed; the store needs recovery (reopen it)",
            ));
        }
        let i = match part.probe(tag, |_| Ok(false))? {
            Probe::Vacant(i) => i,
            Probe::Found(..) => unreachable!("probe with a never-matching key found a key"),
        };
        self.place_new(p, i, h, loc)
    }

    /// Put a new key's slot at free slot `i` of partition `p`.
    fn place_new(&mut self, p: usize, i: usize, h: KeyHash, loc: Loc) -> Result<()> {
        let part = &self.parts[p];
        let was_empty = part.slot(i) == EMPTY;
        part.set_side(i, h.dir());
        part.set_slot(i, make_slot(h.tag(), loc));
        if was_empty {
            let used = part.used() + 1;
            part.set_used(used);
            if used as f64 > MAX_LOAD * part.capacity() as f64 {
                self.grow(p)?;
            }
        }
        Ok(())
    }

    /// Undo `apply(h, loc, prev)`: the slot holding `loc` goes back to
    /// `prev`, or is marked deleted.
    pub fn unapply(&mut self, h: KeyHash, loc: Loc, prev: Option<Loc>) -> Result<()> {
        let (_, part) = self.partition_of(h);
        let tag = h.tag();
        if let Some(i) = part.find_loc(tag, loc)? {
            part.set_slot(i, prev.map_or(DELETED, |p| make_slot(tag, p)));
        }
        Ok(())
    }

    /// Rewrite partition `p` into a larger file, or split it in two.
    fn grow(&mut self, p: usize) -> Result<()> {
        let old = Arc::clone(&self.parts[p]);
        // `used` counts deleted slots too: at worst the new table is a
        // little roomier than it needs to be.
        let live = old.used();
        let want = ((live as f64 / target_load(self.next_id)) / BUCKET_SLOTS as f64).ceil() as u64;
        if want > split_buckets(old.id) && old.depth < DIR_BITS {
            return self.split(p, &old);
        }
        let mut table = Table::new(want.max(old.nbuckets + 1), self.spare_buffer());
        // Slots come out in nearly the order of their home groups, which is
        // the order the new table is filled in best.
        for (slot, dir) in old.live_slots() {
            table.place(slot, dir);
        }
        let new = self.write_table(table, old.depth)?;
        self.install(p, &old, vec![(new, None)])
    }

    fn split(&mut self, p: usize, old: &Arc<Partition>) -> Result<()> {
        let bit = DIR_BITS - 1 - old.depth;
        let half_of = |d: u16| ((d >> bit) & 1) as usize;
        let counts = old.live_slots().fold([0u64; 2], |mut c, (_, d)| {
            c[half_of(d)] += 1;
            c
        });
        let mut tables = counts.map(|count| {
            let nb = ((count as f64 / target_load(self.next_id)) / BUCKET_SLOTS as f64).ceil();
            Table::new((nb as u64).max(INITIAL_BUCKETS), self.spare_buffer())
        });
        for (slot, dir) in old.live_slots() {
            tables[half_of(dir)].place(slot, dir);
        }
        let mut halves = Vec::with_capacity(2);
        for (half, table) in tables.into_iter().enumerate() {
            halves.push((self.write_table(table, old.depth + 1)?, Some(half as u16)));
        }
        self.install(p, old, halves)
    }

    /// A buffer for the next [`Table`], reused from earlier growth.
    fn spare_buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// Write `table` as a new partition file and keep its buffer.
    fn write_table(&mut self, table: Table, depth: u32) -> Result<Partition> {
        let id = self.next_id;
        self.next_id += 1;
        let path = partition_path(&self.gen_dir, id);
        let (part, buf) = Partition::create_filled(&path, id, depth, table)?;
        if self.spare.len() < 2 {
            self.spare.push(buf);
        }
        Ok(part)
    }

    /// Swap `old` (at position `p`) for `new` partitions in the directory.
    /// For a split, each new partition comes with the directory bit value it
    /// takes. Only entries that point at `old` change, so an interrupted
    /// swap still leaves every entry pointing at a partition holding its keys.
    fn install(
        &mut self,
        p: usize,
        old: &Arc<Partition>,
        new: Vec<(Partition, Option<u16>)>,
    ) -> Result<()> {
        let dir_path = dir_path(&self.gen_dir);
        self.dir_file.lock().at(&dir_path)?;
        let bit = DIR_BITS - 1 - old.depth;
        let mut positions = Vec::with_capacity(new.len());
        for (i, (part, half)) in new.into_iter().enumerate() {
            let pos = if i == 0 { p } else { self.parts.len() };
            let id = part.id;
            if pos == self.parts.len() {
                self.parts.push(Arc::new(part));
                self.versions.push(0);
            } else {
                self.parts[pos] = Arc::new(part);
                self.versions[pos] += 1;
            }
            positions.push((pos as u32, id, half));
        }
        for e in 0..DIR_LEN {
            if self.dir[e] as usize != p {
                continue;
            }
            let &(pos, id, _) = positions
                .iter()
                .find(|(_, _, half)| half.is_none_or(|h| ((e >> bit) & 1) as u16 == h))
                .unwrap_or(&positions[0]);
            self.dir[e] = pos;
            self.write_dir_entry(e, id);
        }
        self.dir_file.unlock().at(&dir_path)?;
        std::fs::remove_file(&old.path).at(&old.path)
    }

    pub fn partitions(&self) -> &[Arc<Partition>] {
        &self.parts
    }

    pub fn bytes_on_disk(&self) -> u64 {
        (DIR_HEADER + DIR_LEN * 8) as u64 + self.parts.iter().map(|p| p.file_len()).sum::<u64>()
    }
}
