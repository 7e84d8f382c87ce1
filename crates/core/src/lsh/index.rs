//! `LshIndex`: banded MinHash LSH. Each band pairs the top `band_bits`
//! bits of the band's hash with the slots (insertion numbers) of the
//! documents that have it, in a few sorted [`BandTable`]s (see `runs`);
//! slots map to the caller's ids, and to the stored signatures that
//! verify candidates.
//!
//! [`BandTable`]: super::BandTable

use super::column::Column;
use super::runs::Band;
use crate::error::{Error, Result};
use hashbrown::HashMap;
use rayon::prelude::*;
use std::sync::OnceLock;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Rows handled per step of a batch call, bounding its scratch memory.
pub(super) const STEP: usize = 1 << 16;
/// Steps of a batch insert whose tables wait to be merged together.
const SETTLE_EVERY: usize = 8;
/// Insertions an index holds: slots are u32, and a band table holds
/// fewer than `u32::MAX` pairs.
const MAX_SLOTS: u64 = u32::MAX as u64 - 1;

/// What an index is made of; fixed when it is created.
#[derive(Debug, Clone, PartialEq)]
pub struct LshConfig {
    pub num_perm: usize,
    pub bands: usize,
    pub rows: usize,
    /// The similarity candidates are verified against by default.
    pub threshold: f64,
    /// Keep each signature, to verify candidates by their estimate.
    pub keep_signatures: bool,
    /// Bits of each band hash kept (16-64): fewer bits, smaller tables and
    /// more chance merges of unrelated bands (about `docs / 2^bits` per
    /// band and query), which verification removes.
    pub band_bits: u32,
}

impl LshConfig {
    pub fn check(&self) -> Result<()> {
        if self.bands == 0 || self.rows == 0 || self.bands * self.rows > self.num_perm {
            return Err(Error::Invalid(format!(
                "bands x rows ({} x {}) must be at least 1 x 1 and fit in num_perm ({})",
                self.bands, self.rows, self.num_perm
            )));
        }
        if !(16..=64).contains(&self.band_bits) {
            return Err(Error::Invalid(format!(
                "band_bits must be between 16 and 64, not {}",
                self.band_bits
            )));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(Error::Invalid(format!(
                "threshold must be between 0 and 1, not {}",
                self.threshold
            )));
        }
        Ok(())
    }
}

/// How query results are filtered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verify {
    /// Every document sharing a band.
    Raw,
    /// Those whose stored signature agrees with the query's in at least
    /// this share of positions (needs kept signatures).
    Estimate(f64),
}

/// The slots an id was inserted at (ids are not required to be unique).
#[derive(Debug, Clone)]
enum Slots {
    One(u32),
    Many(Vec<u32>),
}

/// A MinHash LSH index of u64 ids.
///
/// ```
/// use vastdict_core::lsh::{LshConfig, LshIndex, MinHasher, Unit, Verify};
/// let h = MinHasher::new(128, 2, Unit::Word, 1, true).unwrap();
/// let cfg = LshConfig { num_perm: 128, bands: 16, rows: 8, threshold: 0.5,
///                       keep_signatures: true, band_bits: 32 };
/// let mut index = LshIndex::new(cfg).unwrap();
/// let a = h.sign_text("the cat sat on the mat and looked at the dog and the bird in the tree");
/// let b = h.sign_text("the cat sat on the mat and looked at the dog and the bird in a tree");
/// index.insert_many(&[10], &a).unwrap();
/// let (_, ids) = index.query_many(&b, Verify::Estimate(0.5)).unwrap();
/// assert_eq!(ids, [10]);
/// ```
pub struct LshIndex {
    pub(crate) cfg: LshConfig,
    pub(crate) tables: Vec<Band>,
    /// Slot -> id; `None` while every id has equalled its slot.
    pub(crate) ids: Option<Column>,
    pub(crate) slots: u64,
    pub(crate) sigs: Column,
    /// Removed slots, one bit each.
    pub(crate) dead: Vec<u64>,
    pub(crate) live: u64,
    by_id: OnceLock<HashMap<u64, Slots>>,
}

/// The signature's bands hashed: `n * bands` hashes, row-major.
pub(crate) fn band_hashes(cfg: &LshConfig, sigs: &[u32]) -> Vec<u64> {
    let mut out = vec![0u64; sigs.len() / cfg.num_perm * cfg.bands];
    fill_band_hashes(cfg, sigs, &mut out);
    out
}

/// [`band_hashes`] into `out`, which the caller allocates: the pool's
/// threads then leave nothing on their heaps.
fn fill_band_hashes(cfg: &LshConfig, sigs: &[u32], out: &mut [u64]) {
    // A few rows are hashed in place: handing them to the thread pool
    // would cost more than the hashing (microseconds per call).
    if out.len() <= 64 * cfg.bands {
        let mut buf = Vec::new();
        out.chunks_mut(cfg.bands)
            .zip(sigs.chunks(cfg.num_perm))
            .for_each(|(o, sig)| hash_bands(cfg, sig, &mut buf, o));
    } else {
        out.par_chunks_mut(cfg.bands)
            .zip(sigs.par_chunks(cfg.num_perm))
            .for_each_init(Vec::new, |buf, (o, sig)| hash_bands(cfg, sig, buf, o));
    }
}

/// One signature's band hashes into `out` (`bands` long), with `buf` as
/// room for its bytes.
pub(crate) fn hash_bands(cfg: &LshConfig, sig: &[u32], buf: &mut Vec<u8>, out: &mut [u64]) {
    le_row(sig, buf);
    let r = 4 * cfg.rows;
    for (j, h) in out.iter_mut().enumerate() {
        *h = xxh3_64_with_seed(&buf[j * r..(j + 1) * r], j as u64);
    }
}

/// Positions where two little-endian signature rows agree.
pub(crate) fn agreement(a: &[u8], b: &[u8]) -> usize {
    let word = |c: &[u8]| u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    a.chunks_exact(4)
        .zip(b.chunks_exact(4))
        .map(|(x, y)| usize::from(word(x) == word(y)))
        .sum()
}

/// A signature as the little-endian bytes rows are stored in.
pub(crate) fn le_row(sig: &[u32], out: &mut Vec<u8>) {
    // Sized once and filled word by word: appending four bytes at a time
    // checked the capacity on every word and was most of a band hash.
    out.resize(4 * sig.len(), 0);
    for (o, v) in out.chunks_exact_mut(4).zip(sig) {
        o.copy_from_slice(&v.to_le_bytes());
    }
}

impl LshIndex {
    pub fn new(cfg: LshConfig) -> Result<Self> {
        cfg.check()?;
        Ok(LshIndex {
            tables: (0..cfg.bands).map(|_| Band::new(cfg.band_bits)).collect(),
            sigs: Column::new(if cfg.keep_signatures {
                4 * cfg.num_perm
            } else {
                0
            }),
            cfg,
            ids: None,
            slots: 0,
            dead: Vec::new(),
            live: 0,
            by_id: OnceLock::new(),
        })
    }

    pub(crate) fn from_parts(
        cfg: LshConfig,
        tables: Vec<Band>,
        ids: Option<Column>,
        sigs: Column,
        dead: Vec<u64>,
        slots: u64,
    ) -> Self {
        let removed: u64 = dead.iter().map(|w| u64::from(w.count_ones())).sum();
        LshIndex {
            cfg,
            tables,
            ids,
            slots,
            sigs,
            dead,
            live: slots - removed.min(slots),
            by_id: OnceLock::new(),
        }
    }

    pub fn config(&self) -> &LshConfig {
        &self.cfg
    }

    /// Documents in the index (inserted and not removed).
    pub fn len(&self) -> u64 {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Slots ever used, removed documents included.
    pub fn slots(&self) -> u64 {
        self.slots
    }

    pub(crate) fn is_dead(&self, slot: u64) -> bool {
        self.dead
            .get((slot / 64) as usize)
            .is_some_and(|w| w >> (slot % 64) & 1 == 1)
    }

    pub(crate) fn id_of(&self, slot: u64) -> u64 {
        match &self.ids {
            None => slot,
            Some(c) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(c.row(slot));
                u64::from_le_bytes(b)
            }
        }
    }

    pub(crate) fn rows_of(&self, sigs: &[u32]) -> Result<usize> {
        if !sigs.len().is_multiple_of(self.cfg.num_perm) {
            return Err(Error::Invalid(format!(
                "signatures must have {} values per row; got {} values",
                self.cfg.num_perm,
                sigs.len()
            )));
        }
        Ok(sigs.len() / self.cfg.num_perm)
    }

    /// Add documents: `sigs` holds one `num_perm` row per id.
    pub fn insert_many(&mut self, ids: &[u64], sigs: &[u32]) -> Result<()> {
        self.insert_many_in(None, ids, sigs)
    }

    /// [`insert_many`](Self::insert_many) with the band hashing on `pool`
    /// (rayon's global pool for `None`). The band tables change on the
    /// calling thread: an index is many small tables, and the scratch
    /// memory that building them on the pool would leave on each pool
    /// thread's heap (glibc keeps a thread's free top) rivals their size.
    pub fn insert_many_in(
        &mut self,
        pool: Option<&rayon::ThreadPool>,
        ids: &[u64],
        sigs: &[u32],
    ) -> Result<()> {
        let n = self.rows_of(sigs)?;
        crate::intmap::map::same_len(ids.len(), n)?;
        if self.slots + n as u64 > MAX_SLOTS {
            return Err(Error::Invalid(
                "an index holds at most 4,294,967,294 insertions; merge into a new index or start another".into(),
            ));
        }
        let mut hashes = Vec::new();
        let steps = ids.chunks(STEP).zip(sigs.chunks(STEP * self.cfg.num_perm));
        let last = n.div_ceil(STEP).saturating_sub(1);
        for (k, (step, sig_step)) in steps.enumerate() {
            hashes.resize(step.len() * self.cfg.bands, 0);
            let (cfg, out) = (&self.cfg, &mut hashes);
            on(pool, || fill_band_hashes(cfg, sig_step, out));
            // Each step's pairs are a table of their own; merging them
            // every few steps, rather than at each, writes each pair fewer
            // times (nothing queries the index in between).
            let settle = k == last || k % SETTLE_EVERY == SETTLE_EVERY - 1;
            self.insert_hashed(step, sig_step, &hashes, settle)?;
        }
        crate::heap::release_free_memory();
        Ok(())
    }

    /// Add rows whose band hashes are `hashes`; `settle` merges each
    /// band's tables as [`Band::settle`] does, which a query needs soon.
    pub(super) fn insert_hashed(
        &mut self,
        ids: &[u64],
        sigs: &[u32],
        hashes: &[u64],
        settle: bool,
    ) -> Result<()> {
        let first = self.slots as u32;
        let bands = self.cfg.bands;
        let drop = 64 - self.cfg.band_bits;
        let mut pairs = Vec::with_capacity(ids.len());
        for (j, t) in self.tables.iter_mut().enumerate() {
            pairs.clear();
            pairs.extend(
                hashes
                    .iter()
                    .skip(j)
                    .step_by(bands)
                    .zip(first..)
                    .map(|(&h, s)| (h >> drop, s)),
            );
            t.push(&pairs)?;
            if settle {
                t.settle()?;
            }
        }
        let slots = first..first + ids.len() as u32;
        self.append_ids(ids);
        if self.cfg.keep_signatures {
            self.sigs.push_u32s(sigs);
        }
        if let Some(map) = self.by_id.get_mut() {
            for (&id, s) in ids.iter().zip(slots) {
                add_slot(map, id, s);
            }
        }
        self.slots += ids.len() as u64;
        self.live += ids.len() as u64;
        Ok(())
    }

    /// Record the ids of the next `ids.len()` slots; the column comes into
    /// being (filled with the slots so far) at the first id that differs
    /// from its slot.
    fn append_ids(&mut self, ids: &[u64]) {
        let first = self.slots;
        if self.ids.is_none()
            && ids
                .iter()
                .enumerate()
                .any(|(i, &id)| id != first + i as u64)
        {
            let mut c = Column::new(8);
            (0..first).for_each(|s| c.push_u64(s));
            self.ids = Some(c);
        }
        if let Some(c) = &mut self.ids {
            ids.iter().for_each(|&id| c.push_u64(id));
        }
    }

    fn by_id(&self) -> &HashMap<u64, Slots> {
        self.by_id.get_or_init(|| {
            let mut map = HashMap::with_capacity(self.live as usize);
            for s in 0..self.slots {
                if !self.is_dead(s) {
                    add_slot(&mut map, self.id_of(s), s as u32);
                }
            }
            map
        })
    }

    /// Whether each id is in the index.
    pub fn contains_many(&self, ids: &[u64]) -> Vec<bool> {
        let map = self.by_id();
        ids.iter().map(|id| map.contains_key(id)).collect()
    }

    /// Remove documents by id; returns how many insertions were removed.
    /// Their band entries stay until [`LshIndex::compact`], skipped.
    pub fn remove_many(&mut self, ids: &[u64]) -> u64 {
        self.by_id();
        let Some(map) = self.by_id.get_mut() else {
            return 0;
        };
        let mut gone = Vec::new();
        for id in ids {
            match map.remove(id) {
                Some(Slots::One(s)) => gone.push(s),
                Some(Slots::Many(v)) => gone.extend(v),
                None => {}
            }
        }
        let words = (self.slots as usize).div_ceil(64);
        self.dead.resize(words.max(self.dead.len()), 0);
        for &s in &gone {
            self.dead[s as usize / 64] |= 1 << (s % 64);
        }
        self.live -= gone.len() as u64;
        gone.len() as u64
    }

    /// Positions that must agree for `verify` to accept.
    pub(crate) fn needed(&self, verify: Verify) -> usize {
        match verify {
            Verify::Raw => 0,
            Verify::Estimate(t) => (t * self.cfg.num_perm as f64 - 1e-9).ceil().max(0.0) as usize,
        }
    }

    pub(crate) fn check_verify(&self, verify: Verify) -> Result<()> {
        if let Verify::Estimate(_) = verify {
            if !self.cfg.keep_signatures {
                return Err(Error::Invalid(
                    "this index keeps no signatures, so it cannot verify candidates; query with verify=False, or build it with keep_signatures=True".into(),
                ));
            }
        }
        Ok(())
    }

    /// Drop removed documents' band entries, and merge each band into
    /// one table, which lookups read fastest.
    pub fn compact(&mut self) -> Result<()> {
        let dead = &self.dead;
        let keep = |s: u32| {
            dead.get(s as usize / 64)
                .is_none_or(|w| w >> (s % 64) & 1 == 0)
        };
        let all_kept = self.live == self.slots;
        for t in &mut self.tables {
            t.compact(keep, all_kept)?;
        }
        super::band::pack(self.tables.iter_mut().flat_map(Band::runs_mut))?;
        crate::heap::release_free_memory();
        Ok(())
    }

    /// Add every document of `other` (same parameters) to this index.
    pub fn merge(&mut self, other: &LshIndex) -> Result<()> {
        let (a, b) = (&self.cfg, &other.cfg);
        if (a.num_perm, a.bands, a.rows, a.band_bits, a.keep_signatures)
            != (b.num_perm, b.bands, b.rows, b.band_bits, b.keep_signatures)
        {
            return Err(Error::Invalid(
                "indexes merge only with the same num_perm, bands, rows, band_bits and keep_signatures".into(),
            ));
        }
        let base = self.slots;
        if base + other.slots > MAX_SLOTS {
            return Err(Error::Invalid(
                "the merged index would pass 4,294,967,294 insertions".into(),
            ));
        }
        for (t, o) in self.tables.iter_mut().zip(&other.tables) {
            let pairs: Vec<(u64, u32)> = o
                .runs()
                .iter()
                .flat_map(|r| r.pairs())
                .map(|(k, s)| (k, s + base as u32))
                .collect();
            t.add(&pairs)?;
        }
        let other_ids: Vec<u64> = (0..other.slots).map(|s| other.id_of(s)).collect();
        self.append_ids(&other_ids);
        self.sigs.extend_from(&other.sigs);
        let words = ((base + other.slots) as usize).div_ceil(64);
        self.dead.resize(words, 0);
        for s in 0..other.slots {
            if other.is_dead(s) {
                let t = base + s;
                self.dead[(t / 64) as usize] |= 1 << (t % 64);
            }
        }
        self.slots += other.slots;
        self.live += other.live;
        self.by_id = OnceLock::new();
        Ok(())
    }

    /// Bytes of memory held: band tables, ids, signatures (mapped file
    /// pages not counted) and the id lookup if built.
    pub fn resident_bytes(&self) -> usize {
        self.table_bytes()
            + self.ids.as_ref().map_or(0, Column::heap_bytes)
            + self.sigs.heap_bytes()
            + self.dead.capacity() * 8
            + self.by_id.get().map_or(0, |m| m.capacity() * 24)
    }

    /// Bytes of memory the band tables hold.
    pub fn table_bytes(&self) -> usize {
        self.tables.iter().map(Band::heap_bytes).sum()
    }

    /// Bytes of signatures (in memory or mapped).
    pub fn signature_bytes(&self) -> usize {
        self.sigs.heap_bytes() + self.sigs.mapped_bytes()
    }
}

/// Run `f` on `pool`, or where rayon's global pool is if `None`.
pub(super) fn on<R: Send>(pool: Option<&rayon::ThreadPool>, f: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

fn add_slot(map: &mut HashMap<u64, Slots>, id: u64, s: u32) {
    map.entry(id)
        .and_modify(|e| match e {
            Slots::One(a) => *e = Slots::Many(vec![*a, s]),
            Slots::Many(v) => v.push(s),
        })
        .or_insert(Slots::One(s));
}
