//! Building a frozen file with bounded memory.
//!
//! Pairs are collected in an arena. If the arena stays within the memory
//! budget, it is sorted by hash (in parallel) and written. Otherwise it is
//! spilled to 256 partition files by the top bits of the hash, and each
//! partition is sorted and written in turn. Duplicates are resolved after
//! the sort, where equal keys sit next to each other in input order.
//!
//! Everything is written in a work directory next to the target and the
//! finished file is renamed into place, so `path` only ever holds nothing,
//! the old file, or the complete new one.

use super::arena::Arena;
use super::format::{self, Header};
use super::lines::{LineEntry, MappedTsv};
use super::spill::{Spill, PARTS};
use super::writer::{SortedPairs, Writer};
use crate::direct::Cache;
use crate::error::{Error, IoContext, Result};
use crate::hash::KeyHash;
use crate::record::{put_varint, MAX_ITEM};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The seed every frozen file is built with (recorded in its header).
pub const DEFAULT_SEED: u64 = 0x7661_7374_6469_6374;

/// What a build does with a key that appears more than once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnDuplicate {
    First,
    #[default]
    Last,
    Error,
}

#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub key_codec: String,
    pub value_codec: String,
    /// Bytes the build may hold in memory (pairs, sort, buffers).
    pub memory_budget: u64,
    pub on_duplicate: OnDuplicate,
    /// Set from another thread to stop the build (it then fails with
    /// [`Error::Interrupted`] and leaves nothing behind).
    pub cancel: Arc<AtomicBool>,
    /// Pairs received so far, for progress displays.
    pub received: Arc<AtomicU64>,
    /// How the file is written with respect to the page cache; `None`
    /// (the default) bypasses the cache and, for a file that fits in half
    /// of RAM, loads it back behind the writes so it is cached when the
    /// build returns ([`Cache::BypassThenLoad`]), and leaves a larger one
    /// uncached ([`Cache::Bypass`]).
    pub cache: Option<Cache>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            key_codec: "bytes".into(),
            value_codec: "bytes".into(),
            memory_budget: 2 << 30,
            on_duplicate: OnDuplicate::Last,
            cancel: Arc::default(),
            received: Arc::default(),
            cache: None,
        }
    }
}

/// Build `path` from an iterator of pairs (a convenience over [`Builder`]).
pub fn build_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    path: &Path,
    pairs: impl IntoIterator<Item = (K, V)>,
    opts: &BuildOptions,
) -> Result<Header> {
    let mut b = Builder::new(path, opts.clone())?;
    for (k, v) in pairs {
        b.add(k.as_ref(), v.as_ref())?;
    }
    b.finish()
}

/// A directory removed (with its contents) when dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Collects pairs and writes the frozen file on [`Builder::finish`].
pub struct Builder {
    path: PathBuf,
    work: WorkDir,
    opts: BuildOptions,
    arena: Arena,
    starts: Vec<u64>,
    spill: Option<Spill>,
    /// Pairs held as lines of a mapped input file instead (see
    /// [`super::lines`]); the arena is then empty.
    lines: Option<(MappedTsv, Vec<LineEntry>)>,
    received: u64,
}

/// Bytes of memory per pair beyond its arena bytes: its start, its hash
/// and its sort entry.
const PER_PAIR: u64 = 32;

impl Builder {
    pub fn new(path: &Path, opts: BuildOptions) -> Result<Self> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if path.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: is a directory; a frozen store is a single file, pick another path",
                path.display()
            )));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "frozen".into());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let work = parent.join(format!(".{name}.build-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&work).at(&work)?;
        Ok(Builder {
            path: path.to_path_buf(),
            work: WorkDir(work),
            opts,
            arena: Arena::default(),
            starts: Vec::new(),
            spill: None,
            lines: None,
            received: 0,
        })
    }

    /// The work directory (removed when the builder is dropped).
    pub fn work_dir(&self) -> &Path {
        &self.work.0
    }

    pub(super) fn options(&self) -> &BuildOptions {
        &self.opts
    }

    /// Whether no pair has been added yet.
    pub(super) fn is_empty(&self) -> bool {
        self.received == 0 && self.lines.is_none()
    }

    /// Take the pairs of a mapped file (the builder must be empty).
    pub(super) fn use_lines(&mut self, lines: MappedTsv, entries: Vec<LineEntry>) {
        self.received = entries.len() as u64;
        self.opts.received.store(self.received, Ordering::Relaxed);
        self.lines = Some((lines, entries));
    }

    fn check_cancel(&self) -> Result<()> {
        if self.opts.cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        Ok(())
    }

    /// Add one pair.
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.no_lines()?;
        if key.len() > MAX_ITEM || value.len() > MAX_ITEM {
            return Err(too_large(key.len().max(value.len())));
        }
        self.push_raw(key, value);
        self.received += 1;
        if self.received.is_multiple_of(65536) {
            self.opts.received.store(self.received, Ordering::Relaxed);
            self.check_cancel()?;
        }
        if self.in_memory() > self.pairs_limit() {
            self.spill_now()?;
        }
        Ok(())
    }

    /// Add `count` pairs already encoded as `klen varint | vlen varint |
    /// key | value` records (see [`encode_pair`]), taking the buffer over.
    pub fn add_encoded(&mut self, records: Vec<u8>, count: u64) -> Result<()> {
        self.no_lines()?;
        let starts = self.arena.append(records, count).ok_or_else(|| {
            Error::Invalid("internal error: encoded pairs do not match their count".into())
        })?;
        for &s in &starts {
            let (k, v) = self.arena.pair(s);
            if k.len() > MAX_ITEM || v.len() > MAX_ITEM {
                return Err(too_large(k.len().max(v.len())));
            }
        }
        self.starts.extend_from_slice(&starts);
        self.received += count;
        self.opts.received.store(self.received, Ordering::Relaxed);
        self.check_cancel()?;
        if self.in_memory() > self.pairs_limit() {
            self.spill_now()?;
        }
        Ok(())
    }

    fn no_lines(&self) -> Result<()> {
        if self.lines.is_some() {
            return Err(Error::Invalid(
                "internal error: pairs added after a mapped file".into(),
            ));
        }
        Ok(())
    }

    /// Bytes the pairs may take before they spill: three quarters of the
    /// budget, less the spill files' write buffers.
    pub(super) fn pairs_limit(&self) -> u64 {
        let b = self.opts.memory_budget;
        (b / 4 * 3)
            .saturating_sub(super::spill::BUFFER_BYTES)
            .max(b / 4)
    }

    fn in_memory(&self) -> u64 {
        self.arena.bytes() + self.starts.len() as u64 * PER_PAIR
    }

    fn hashes(&self) -> Vec<u64> {
        let arena = &self.arena;
        self.starts
            .par_iter()
            .map(|&s| KeyHash::of(arena.pair(s).0, DEFAULT_SEED).0)
            .collect()
    }

    /// Move the arena's pairs to the partition files.
    fn spill_now(&mut self) -> Result<()> {
        self.check_cancel()?;
        let hashes = self.hashes();
        if self.spill.is_none() {
            self.spill = Some(Spill::create(&self.work.0.join("spill"))?);
        }
        let spill = self.spill.as_mut().ok_or(Error::Interrupted)?;
        let mut scratch = Vec::new();
        for (&s, &h) in self.starts.iter().zip(&hashes) {
            let (k, v) = self.arena.pair(s);
            spill.push(h, k, v, &mut scratch)?;
        }
        self.arena.clear();
        self.starts.clear();
        Ok(())
    }

    /// Sort what the arena holds, drop duplicates, and return it.
    fn sorted(&self, hashes: Vec<u64>) -> Result<Sorted<'_, Arena>> {
        let mut entries: Vec<(u64, u64)> = hashes
            .into_iter()
            .zip(self.starts.iter().copied())
            .collect();
        entries.par_sort_unstable();
        let entries = dedupe(&self.arena, entries, self.opts.on_duplicate)?;
        Ok(Sorted {
            store: &self.arena,
            entries,
        })
    }

    fn header(&self, nbuckets: u64) -> Header {
        Header {
            key_codec: self.opts.key_codec.clone(),
            value_codec: self.opts.value_codec.clone(),
            hash_seed: DEFAULT_SEED,
            len: 0,
            nbuckets,
            data_len: 0,
            index_len: 0,
            raw_bytes: 0,
        }
    }

    /// Sort, write and atomically publish the file; returns its header.
    /// The builder's buffers (up to `memory_budget`) are handed back to
    /// the OS afterwards: glibc keeps freed memory of worker threads in
    /// their arenas, where a process that built a 10M-pair file went on
    /// holding 700 MiB.
    pub fn finish(self) -> Result<Header> {
        let r = self.write_out();
        crate::heap::release_free_memory();
        r
    }

    fn write_out(mut self) -> Result<Header> {
        self.opts.received.store(self.received, Ordering::Relaxed);
        self.check_cancel()?;
        let out = self.work.0.join("out.tmp");
        let header = if let Some((lines, mut entries)) = self.lines.take() {
            entries.par_sort_unstable();
            let entries = dedupe(&lines, entries, self.opts.on_duplicate)?;
            let sorted = Sorted {
                store: &lines,
                entries,
            };
            self.write_whole(&out, sorted, lines.len())?
        } else if self.spill.is_none() {
            let hashes = self.hashes();
            self.write_whole(&out, self.sorted(hashes)?, self.arena.bytes())?
        } else {
            self.spill_now()?;
            let mut spill = self.spill.take().ok_or(Error::Interrupted)?;
            spill.flush()?;
            let nb = format::nbuckets_for(self.received);
            let cache = self.cache(spill.bytes());
            let mut w = Writer::create(&out, &self.work.0, self.header(nb), cache)?;
            // Pairs of a bucket that continues into the next partition.
            let mut carry: Vec<(u64, Vec<u8>, Vec<u8>)> = Vec::new();
            for p in 0..PARTS {
                self.check_cancel()?;
                self.arena.clear();
                self.starts.clear();
                let mut hashes = Vec::new();
                for (h, k, v) in carry.drain(..) {
                    self.push_raw(&k, &v);
                    hashes.push(h);
                }
                let (arena, starts) = (&mut self.arena, &mut self.starts);
                spill.read(p, |h, k, v| {
                    starts.push(arena.push(k, v));
                    hashes.push(h);
                })?;
                let sorted = self.sorted(hashes)?;
                let held = w.write_sorted(&sorted, p == PARTS - 1, &self.opts.cancel)?;
                carry = held
                    .into_iter()
                    .map(|i| {
                        let (k, v) = sorted.pair(i);
                        (sorted.hash(i), k.to_vec(), v.to_vec())
                    })
                    .collect();
            }
            self.arena.clear();
            w.finish()?
        };
        std::fs::rename(&out, &self.path).at(&self.path)?;
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Make the rename itself durable.
            std::fs::File::open(parent)
                .and_then(|d| d.sync_all())
                .at(parent)?;
        }
        Ok(header)
    }

    /// Write all pairs, held in memory and sorted, to `out`; `expected`
    /// is about the bytes they take.
    fn write_whole(&self, out: &Path, sorted: impl SortedPairs, expected: u64) -> Result<Header> {
        let nb = format::nbuckets_for(sorted.len() as u64);
        let cache = self.cache(expected);
        let mut w = Writer::create(out, &self.work.0, self.header(nb), cache)?;
        w.write_sorted(&sorted, true, &self.opts.cancel)?;
        // The sorted entries go before the side files are copied.
        drop(sorted);
        self.check_cancel()?;
        w.finish()
    }

    /// How to write a file of about `expected` bytes.
    fn cache(&self, expected: u64) -> Cache {
        self.opts.cache.unwrap_or_else(|| {
            if crate::files::fits_in_cache(expected) {
                Cache::BypassThenLoad
            } else {
                Cache::Bypass
            }
        })
    }

    fn push_raw(&mut self, k: &[u8], v: &[u8]) {
        let s = self.arena.push(k, v);
        self.starts.push(s);
    }
}

/// Append one pair in the form [`Builder::add_encoded`] takes.
pub fn encode_pair(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    put_varint(out, key.len() as u64);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

pub(super) fn too_large(len: usize) -> Error {
    Error::Invalid(format!(
        "a key or value of {len} bytes is over the {MAX_ITEM}-byte limit"
    ))
}

/// Keep one pair per key among entries sorted by (hash, input position).
fn dedupe(
    store: &impl PairStore,
    entries: Vec<(u64, u64)>,
    policy: OnDuplicate,
) -> Result<Vec<(u64, u64)>> {
    let has_dup = entries.windows(2).any(|w| w[0].0 == w[1].0);
    if !has_dup {
        return Ok(entries);
    }
    let mut out = Vec::with_capacity(entries.len());
    let mut i = 0;
    while i < entries.len() {
        let mut j = i + 1;
        while j < entries.len() && entries[j].0 == entries[i].0 {
            j += 1;
        }
        // entries[i..j] share a hash; usually they share the key as well.
        let group = &entries[i..j];
        for (gi, e) in group.iter().enumerate() {
            let key = store.pair(e.1).0;
            let same = |o: &(u64, u64)| store.pair(o.1).0 == key;
            let seen_before = group[..gi].iter().any(same);
            let seen_after = group[gi + 1..].iter().any(same);
            let keep = match policy {
                OnDuplicate::First => !seen_before,
                OnDuplicate::Last => !seen_after,
                OnDuplicate::Error if seen_after => {
                    return Err(Error::Invalid(format!(
                        "duplicate key {}; pass on_duplicate=\"first\" or \"last\" to keep one",
                        show_key(key)
                    )))
                }
                OnDuplicate::Error => true,
            };
            if keep {
                out.push(*e);
            }
        }
        i = j;
    }
    Ok(out)
}

fn show_key(key: &[u8]) -> String {
    let shown = &key[..key.len().min(80)];
    match std::str::from_utf8(shown) {
        Ok(s) => format!("{s:?}"),
        Err(_) => format!("{shown:?}"),
    }
}

/// Where the builder's pairs sit, by position: the arena, or the lines
/// of a mapped input file.
pub(super) trait PairStore: Sync {
    fn pair(&self, at: u64) -> (&[u8], &[u8]);
    /// Hint that the pair at `at` will be read soon.
    fn prefetch(&self, at: u64);
}

impl PairStore for Arena {
    fn pair(&self, at: u64) -> (&[u8], &[u8]) {
        Arena::pair(self, at)
    }
    fn prefetch(&self, at: u64) {
        Arena::prefetch(self, at);
    }
}

/// (hash, position) entries in hash order, over the store they point into.
struct Sorted<'a, S> {
    store: &'a S,
    entries: Vec<(u64, u64)>,
}

impl<S: PairStore> SortedPairs for Sorted<'_, S> {
    fn len(&self) -> usize {
        self.entries.len()
    }
    fn hash(&self, i: usize) -> u64 {
        self.entries[i].0
    }
    fn pair(&self, i: usize) -> (&[u8], &[u8]) {
        self.store.pair(self.entries[i].1)
    }
    fn prefetch(&self, i: usize) {
        self.store.prefetch(self.entries[i].1);
    }
}
