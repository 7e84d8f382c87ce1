//! The mutable store: one writer, any number of readers, each reader on the
//! snapshot of the last commit at the time it opened (or refreshed).
//!
//! How a reader keeps its snapshot while the writer changes the shared
//! index in place: every record that replaces or deletes a key carries the
//! location of the version it replaced (`prev`). A reader that meets a slot
//! pointing at or past its snapshot's end follows `prev` back until it
//! reaches a version inside its snapshot (or finds the key did not exist).
//! Records are never rewritten, so the chain is always there.

mod batches;
mod commit;
mod compact;
mod freeze;
mod generation;
mod pending;
mod read;
mod recover;
mod stream;
mod verify;

pub use batches::PairBatch;
pub use verify::Report;

use crate::error::{Error, IoContext, Result};
use crate::files::{self, MANIFEST};
use crate::hash::KeyHash;
use crate::manifest::{Commit, Header, Manifest, FLAG_WRITER_ACTIVE};
use crate::record::{Loc, MAX_ITEM};
use generation::{Counters, Generation, MAX_RECORD_OVERHEAD};
use pending::Pending;
use std::fs::File;
use std::path::{Path, PathBuf};

/// How to open a store (the dbm flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// "r": read-only; the store must exist.
    Read,
    /// "w": read-write; the store must exist.
    Write,
    /// "c": read-write, created if missing.
    Create,
    /// "n": read-write, always a new empty store.
    New,
}

/// Options for [`Store::open`].
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// Codec names recorded at creation; `None` accepts what is stored.
    pub key_codec: Option<String>,
    pub value_codec: Option<String>,
    /// Bound on the engine's own anonymous memory (write buffer), in bytes.
    pub memory_budget: u64,
    /// Log segment size as a power of two (new stores only).
    pub segment_bits: u32,
    /// Compact automatically at commit when garbage passes this share of
    /// the log (0 disables).
    pub compact_threshold: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Create,
            key_codec: None,
            value_codec: None,
            memory_budget: 1 << 30,
            segment_bits: 30,
            compact_threshold: 0.5,
        }
    }
}

/// Figures reported by [`Store::stats`].
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub entries: u64,
    pub disk_bytes: u64,
    pub log_bytes: u64,
    pub index_bytes: u64,
    pub garbage_bytes: u64,
    pub resident_bytes: u64,
    pub partitions: u64,
    pub generation: u64,
    pub commit_seq: u64,
}

/// Bytes of key plus value a write carries, or why it cannot be written
/// when one record may hold at most `room` of them.
fn check_item(key: &[u8], value: Option<&[u8]>, room: usize) -> Result<usize> {
    let item = key.len() + value.map_or(0, <[u8]>::len);
    if key.len() > MAX_ITEM || value.is_some_and(|v| v.len() > MAX_ITEM) || item > room {
        return Err(Error::Invalid(format!(
            "a key or value is too large: each is limited to {} MiB, and key plus value to the log segment size ({} bytes here)",
            MAX_ITEM >> 20,
            room
        )));
    }
    Ok(item)
}

/// Largest write-buffer flush inside [`Store::bulk`].
const BULK_FLUSH: u64 = 8 << 20;

/// Flush threshold for a write buffer of at most `max` bytes within a
/// quarter of `budget`.
fn flush_at(budget: u64, max: u64) -> usize {
    (budget / 4).clamp(64 << 10, max) as usize
}

/// State only the writer has.
struct Writer {
    _lock: File,
    pending: Pending,
    /// Blocks written since the last commit (for rollback), in order.
    spilled: Vec<Loc>,
    counters: Counters,
    block_seq: u64,
    /// The write buffer is flushed when it holds this many bytes.
    flush_at: usize,
    /// The same inside [`Store::bulk`] after its first flush.
    bulk_flush_at: usize,
    /// The threshold in force now: `flush_at`, or `bulk_flush_at` in bulk.
    flush_now: usize,
    in_bulk: bool,
    compact_threshold: f64,
    /// Bumped by every change, so iterators can notice.
    mutations: u64,
    /// Changes exist since the last commit.
    dirty: bool,
    /// Set when a write failed at a point where the index and the log may
    /// disagree (or a sync failed): every later call refuses, and the next
    /// open rebuilds the index from the log.
    poisoned: Option<String>,
}

/// An open store.
pub struct Store {
    path: PathBuf,
    manifest: Manifest,
    slot: usize,
    commit: Commit,
    gen: Generation,
    writer: Option<Writer>,
}

/// A value read from the store, borrowed from the log or the write buffer.
pub type Value<'a> = &'a [u8];

impl Store {
    /// Open or create the store at `path`.
    pub fn open(path: &Path, opts: &Options) -> Result<Self> {
        match opts.mode {
            Mode::Read => Self::open_reader(path, opts),
            _ => Self::open_writer(path, opts),
        }
    }

    fn open_writer(path: &Path, opts: &Options) -> Result<Self> {
        let manifest_path = path.join(MANIFEST);
        if !manifest_path.exists() && matches!(opts.mode, Mode::Write) {
            return Err(Error::NotFound(path.to_path_buf()));
        }
        std::fs::create_dir_all(path).at(path)?;
        let lock_path = path.join(files::LOCK);
        let lock = files::open_lock_file(&lock_path)?;
        if !files::try_lock_exclusive(&lock, &lock_path)? {
            return Err(Error::Locked(path.to_path_buf()));
        }
        if opts.mode == Mode::New && manifest_path.exists() {
            std::fs::remove_file(&manifest_path).at(&manifest_path)?;
            for g in files::list_generations(path)? {
                let d = files::generation_dir(path, g);
                std::fs::remove_dir_all(&d).at(&d)?;
            }
        }
        if !manifest_path.exists() {
            Self::create_files(path, opts)?;
        }
        let manifest = Manifest::open(&manifest_path, true)?;
        check_codecs(path, &manifest.header, opts)?;
        let (mut commit, mut slot) = manifest.latest()?;
        if commit.writer_active() {
            (commit, slot) = recover::rebuild(path, &manifest, commit, slot)?;
        }
        let gen = Generation::open(path, commit.generation, manifest.header.segment_bits, true)?;
        gen.check_committed_end(commit.committed_end)?;
        commit.flags |= FLAG_WRITER_ACTIVE;
        commit.seq += 1;
        slot = manifest.write(&commit, slot)?;
        let mut store = Store {
            path: path.to_path_buf(),
            manifest,
            slot,
            commit,
            gen,
            writer: Some(Writer {
                _lock: lock,
                pending: Pending::default(),
                spilled: Vec::new(),
                counters: Counters {
                    entries: commit.entries,
                    garbage: commit.garbage,
                },
                block_seq: commit.block_seq,
                flush_at: flush_at(opts.memory_budget, 512 << 10),
                bulk_flush_at: flush_at(opts.memory_budget, BULK_FLUSH),
                flush_now: flush_at(opts.memory_budget, 512 << 10),
                in_bulk: false,
                compact_threshold: opts.compact_threshold,
                mutations: 0,
                dirty: false,
                poisoned: None,
            }),
        };
        store.remove_old_generations()?;
        Ok(store)
    }

    fn create_files(path: &Path, opts: &Options) -> Result<()> {
        let header = Header {
            segment_bits: opts.segment_bits,
            hash_seed: 0x7661_7374_6469_6374, // "vastdict"
            key_codec: opts.key_codec.clone().unwrap_or_else(|| "bytes".into()),
            value_codec: opts.value_codec.clone().unwrap_or_else(|| "bytes".into()),
        };
        let gen = Generation::create(path, 1, opts.segment_bits)?;
        let first = Commit {
            seq: 1,
            generation: 1,
            committed_end: gen.log.end(),
            ..Default::default()
        };
        Manifest::create(&path.join(MANIFEST), &header, &first)
    }

    fn open_reader(path: &Path, opts: &Options) -> Result<Self> {
        let manifest_path = path.join(MANIFEST);
        if !manifest_path.exists() {
            return Err(Error::NotFound(path.to_path_buf()));
        }
        let manifest = Manifest::open(&manifest_path, false)?;
        check_codecs(path, &manifest.header, opts)?;
        let (commit, _) = manifest.latest()?;
        if commit.writer_active() {
            recover::recover_if_abandoned(path)?;
        }
        let (commit, slot, gen) = Self::snapshot(path, &manifest)?;
        Ok(Store {
            path: path.to_path_buf(),
            manifest,
            slot,
            commit,
            gen,
            writer: None,
        })
    }

    /// The latest commit and its generation, opened consistently: the
    /// generation is locked before the commit naming it is trusted.
    fn snapshot(path: &Path, manifest: &Manifest) -> Result<(Commit, usize, Generation)> {
        for _ in 0..100 {
            let (commit, _) = manifest.latest()?;
            let gen = match Generation::open(
                path,
                commit.generation,
                manifest.header.segment_bits,
                false,
            ) {
                Ok(g) => g,
                // Compacted away between the two reads: try the new one.
                Err(Error::Io { .. }) if manifest.latest()?.0.generation != commit.generation => {
                    continue
                }
                Err(e) => return Err(e),
            };
            let (commit, slot) = manifest.latest()?;
            if commit.generation != gen.number {
                continue;
            }
            gen.check_committed_end(commit.committed_end)?;
            return Ok((commit, slot, gen));
        }
        Err(Error::Invalid(
            "the store keeps changing generation; try again".into(),
        ))
    }

    /// Move a reader to the newest commit. A writer always sees its own
    /// writes, so this does nothing for it.
    pub fn refresh(&mut self) -> Result<()> {
        if self.writer.is_some() {
            return Ok(());
        }
        let (commit, slot, gen) = Self::snapshot(&self.path, &self.manifest)?;
        if gen.number == self.gen.number && commit.seq == self.commit.seq {
            return Ok(());
        }
        self.commit = commit;
        self.slot = slot;
        self.gen = gen;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.manifest.header
    }

    pub fn is_writer(&self) -> bool {
        self.writer.is_some()
    }

    fn writer(&mut self) -> Result<&mut Writer> {
        let w = self.writer.as_mut().ok_or(Error::ReadOnly)?;
        match &w.poisoned {
            Some(why) => Err(Error::Invalid(format!(
                "an earlier write failed ({why}); close this handle and open the store again (committed data is safe)"
            ))),
            None => Ok(w),
        }
    }

    /// Run `f`; if it fails, refuse every later call on this handle.
    fn or_poison<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let r = f(self);
        if let (Err(e), Some(w)) = (&r, self.writer.as_mut()) {
            w.poisoned.get_or_insert_with(|| e.to_string());
        }
        r
    }

    /// Locations at or past this are not in this handle's snapshot.
    #[inline]
    fn limit(&self) -> Loc {
        if self.writer.is_some() {
            Loc::MAX
        } else {
            self.commit.committed_end
        }
    }

    pub fn hash(&self, key: &[u8]) -> KeyHash {
        KeyHash::of(key, self.manifest.header.hash_seed)
    }

    /// Number of keys: as of this handle's snapshot, or for the writer
    /// with its uncommitted changes (which this resolves against the index
    /// by writing out the write buffer).
    pub fn len(&mut self) -> Result<u64> {
        self.flush_pending()?;
        Ok(self
            .writer
            .as_ref()
            .map_or(self.commit.entries, |w| w.counters.entries))
    }

    pub fn is_empty(&mut self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Changes made through this handle so far.
    pub fn mutations(&self) -> u64 {
        self.writer
            .as_ref()
            .map_or(self.commit.seq, |w| w.mutations)
    }

    /// Set `key` to `value`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write(key, Some(value)).map(|_| ())
    }

    /// Remove `key`; returns whether it was present.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool> {
        self.write(key, None)
    }

    /// Set many pairs: `pair(i)` gives the i-th of `n`. (Puts only stage
    /// their pairs; the index is read when the buffer is flushed, which
    /// prefetches it then.)
    pub fn put_many<'k>(
        &mut self,
        n: usize,
        pair: impl Fn(usize) -> (&'k [u8], &'k [u8]),
    ) -> Result<()> {
        for i in 0..n {
            let (k, v) = pair(i);
            self.write_hashed(self.hash(k), k, Some(v))?;
        }
        Ok(())
    }

    /// Most key plus value bytes one record can hold.
    fn room(&self) -> usize {
        self.gen.log.max_payload() - MAX_RECORD_OVERHEAD
    }

    fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<bool> {
        let h = self.hash(key);
        self.write_hashed(h, key, value)
    }

    fn write_hashed(&mut self, h: KeyHash, key: &[u8], value: Option<&[u8]>) -> Result<bool> {
        self.writer()?;
        let room = self.room();
        let item = check_item(key, value, room)?;
        // A delete of a missing key writes nothing (and reports it).
        let existed = value.is_none() && self.is_live(h, key)?;
        if value.is_none() && !existed {
            return Ok(false);
        }
        let w = self.writer.as_ref().ok_or(Error::ReadOnly)?;
        if !w.pending.fits(item, room) {
            self.flush(0)?;
        }
        let w = self.writer.as_mut().ok_or(Error::ReadOnly)?;
        w.pending.stage(h, key, value);
        w.mutations += 1;
        w.dirty = true;
        if w.pending.staged_bytes() >= w.flush_now {
            self.flush(0)?;
            let w = self.writer.as_mut().ok_or(Error::ReadOnly)?;
            if w.in_bulk {
                w.flush_now = w.bulk_flush_at;
            }
        }
        Ok(existed)
    }

    /// Run `f`, a large batch of writes, with larger log writes: after the
    /// first flush inside it, the write buffer is flushed every 8 MiB
    /// (within a quarter of `memory_budget`) instead of every 512 KiB.
    ///
    /// Why: a write that fills whole 2 MiB-aligned spans of the log lets the
    /// page cache keep them in huge folios, which later random reads reach
    /// with fewer TLB misses (engine batch lookups on a 10M-pair store:
    /// 3.5M/s to 4.4M/s). Outside a bulk call, flushes stay small so that
    /// no single small `put` pays for a large flush.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use vastdict_core::{Options, Store};
    /// let mut s = Store::open(dir.path(), &Options::default()).unwrap();
    /// s.bulk(|s| s.put_many(2, |i| ([&b"a"[..], b"b"][i], &b"v"[..]))).unwrap();
    /// assert_eq!(s.get(b"b").unwrap(), Some(&b"v"[..]));
    /// ```
    pub fn bulk<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        self.writer()?.in_bulk = true;
        let r = f(self);
        if let Some(w) = self.writer.as_mut() {
            w.in_bulk = false;
            w.flush_now = w.flush_at;
        }
        r
    }

    /// Figures about the store.
    pub fn stats(&mut self) -> Result<Stats> {
        let entries = self.len()?;
        let resident =
            self.writer.as_ref().map_or(0, |w| w.pending.resident()) + self.gen.resident();
        Ok(Stats {
            entries,
            disk_bytes: files::disk_usage(&self.path)?,
            log_bytes: self.gen.log.bytes_on_disk(),
            index_bytes: self.gen.index.bytes_on_disk(),
            garbage_bytes: self
                .writer
                .as_ref()
                .map_or(self.commit.garbage, |w| w.counters.garbage),
            resident_bytes: resident as u64,
            partitions: self.gen.index.partitions().len() as u64,
            generation: self.gen.number,
            commit_seq: self.commit.seq,
        })
    }

    /// Write out the write buffer so iteration sees every change (writer
    /// only; a no-op for readers).
    pub fn flush_pending(&mut self) -> Result<()> {
        if self.writer.is_some() {
            self.flush(0)?;
        }
        Ok(())
    }

    fn remove_old_generations(&mut self) -> Result<()> {
        for g in files::list_generations(&self.path)? {
            if g != self.gen.number {
                files::remove_generation_if_unused(&self.path, g)?;
            }
        }
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // A handle dropped without close() keeps only what was committed,
        // and leaves the store marked clean so the next open is fast.
        let _ = self.finish(false);
    }
}

/// The codecs asked for must be the ones the store was created with.
fn check_codecs(path: &Path, header: &Header, opts: &Options) -> Result<()> {
    check_codec(path, "key", &header.key_codec, &opts.key_codec)?;
    check_codec(path, "value", &header.value_codec, &opts.value_codec)
}

fn check_codec(path: &Path, what: &str, stored: &str, asked: &Option<String>) -> Result<()> {
    match asked {
        Some(a) if a != stored => Err(Error::format(
            path,
            format!("this store was created with {what}s={stored:?}, not {a:?}; open it with {what}s={stored:?} or leave the argument out"),
        )),
        _ => Ok(()),
    }
}
