//! One generation of a store: its log and the index over it, plus the
//! shared lock that keeps the files from being deleted while in use.

use super::pending::{Pending, Resolved};
use super::stream::{write_streamed, STREAM_MIN};
use crate::error::{Error, IoContext, Result};
use crate::files::{self, gen_lock_path, generation_dir};
use crate::index::partition::Probe;
use crate::index::Index;
use crate::log::Log;
use crate::record::{Loc, BLOCK_HEADER};
use std::fs::File;
use std::path::{Path, PathBuf};

pub struct Generation {
    pub number: u64,
    pub dir: PathBuf,
    pub log: Log,
    pub index: Index,
    /// Held shared for as long as this handle uses the generation; a
    /// compaction deletes an old generation only once it can lock it
    /// exclusively.
    _lock: File,
}

impl Generation {
    /// Create the files of a new, empty generation.
    pub fn create(store: &Path, number: u64, seg_bits: u32) -> Result<Self> {
        let dir = generation_dir(store, number);
        std::fs::create_dir(&dir).at(&dir)?;
        let lock = Self::lock(&dir)?;
        let index = Index::create(&dir, number)?;
        let log = Log::open(&dir, number, seg_bits, true)?;
        files::sync_dir(store)?;
        Ok(Generation {
            number,
            dir,
            log,
            index,
            _lock: lock,
        })
    }

    /// Open an existing generation.
    pub fn open(store: &Path, number: u64, seg_bits: u32, writable: bool) -> Result<Self> {
        let dir = generation_dir(store, number);
        let lock = Self::lock(&dir)?;
        let log = Log::open(&dir, number, seg_bits, writable)?;
        let index = Index::open(&dir, writable)?;
        Ok(Generation {
            number,
            dir,
            log,
            index,
            _lock: lock,
        })
    }

    fn lock(dir: &Path) -> Result<File> {
        let p = gen_lock_path(dir);
        // Read-only is enough for a lock, and works on a read-only store.
        let f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir.exists() => {
                files::open_lock_file(&p)?
            }
            Err(e) => return Err(Error::Io { path: p, source: e }),
        };
        f.lock_shared().at(&p)?;
        Ok(f)
    }

    /// The log must hold every committed byte.
    pub fn check_committed_end(&self, end: Loc) -> Result<()> {
        let (seg, off) = self.log.split(end);
        match self.log.segments().get(seg) {
            Some(s) if s.len() >= off => Ok(()),
            Some(s) => Err(Error::corrupt(
                &s.path,
                s.len(),
                format!("log segment is truncated: committed data runs to byte {off}"),
            )),
            None => Err(Error::corrupt(
                &self.dir,
                end,
                format!("log segment {seg} holding committed data is missing"),
            )),
        }
    }

    /// Anonymous memory this handle holds for the generation.
    pub fn resident(&self) -> usize {
        crate::hash::DIR_LEN * 4 + self.index.partitions().len() * 128
    }
}

/// Live-key and garbage counts, kept as blocks are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub entries: u64,
    pub garbage: u64,
}

/// Largest framing a record adds to its key and value.
pub const MAX_RECORD_OVERHEAD: usize = 18;

/// Resolve every staged write against the index, write them as one block
/// (flagged `flags`), then point the index at the new records. An empty
/// block is written only when it carries a flag. Returns the block's
/// location when one was written.
pub fn write_block(
    pending: &mut Pending,
    gen: &mut Generation,
    seq: &mut u64,
    flags: u32,
    counters: &mut Counters,
) -> Result<Option<Loc>> {
    if pending.is_empty() && flags == 0 {
        return Ok(None);
    }
    let bound =
        (BLOCK_HEADER + pending.staged_bytes() + pending.len() * MAX_RECORD_OVERHEAD) as u64;
    let at = gen.log.reserve(bound)?;
    // Counted on a copy: if the block cannot be written (a full disk), the
    // staged writes stay staged and nothing has changed.
    let mut after = *counters;
    if bound >= STREAM_MIN {
        write_streamed(pending, gen, at, *seq + 1, flags, &mut after)?;
    } else {
        resolve(pending, gen, at, &mut after, &mut |_| Ok(()))?;
        gen.log.append(pending.seal(*seq + 1, flags))?;
    }
    *seq += 1;
    *counters = after;
    const AHEAD: usize = 8;
    let staged = pending.staged();
    for (i, r) in pending.resolved.iter().enumerate() {
        if let Some(Resolved {
            probe: Some(at), ..
        }) = pending.resolved.get(i + AHEAD)
        {
            gen.index.prefetch_at(at);
        }
        gen.index
            .apply_resolved(staged[i].hash, r.loc, r.prev, r.probe)?;
    }
    pending.clear();
    Ok(Some(at))
}

/// Encode each staged write with the location it replaces, probing the
/// index once per key (a window ahead, so the memory reads overlap), and
/// call `encoded` after each (which may hand the encoded bytes off).
pub(super) fn resolve(
    pending: &mut Pending,
    gen: &Generation,
    at: Loc,
    counters: &mut Counters,
    encoded: &mut dyn FnMut(&mut Pending) -> Result<()>,
) -> Result<()> {
    const AHEAD: usize = 16;
    pending.begin_block();
    let n = pending.len();
    let warm = |pending: &Pending, i: usize, stage: u8| {
        if let Some(s) = pending.staged().get(i) {
            if pending.earlier(s).is_none() {
                if stage == 0 {
                    gen.index.prefetch(s.hash);
                } else if let Some(loc) = gen.index.first_tag_match(s.hash) {
                    gen.log.prefetch(loc);
                }
            }
        }
    };
    for i in 0..AHEAD.min(n) {
        warm(pending, i, 0);
    }
    for i in 0..n {
        warm(pending, i + AHEAD, 0);
        warm(pending, i + AHEAD / 2, 1);
        let s = pending.staged()[i];
        // The version this write replaces: an earlier write of the same key
        // in this block, or what the index holds.
        let (prev, prev_live_len, probe) = match pending.earlier(&s) {
            Some(j) => {
                let r = pending.resolved[j];
                let was_put = pending.value(&pending.staged()[j]).is_some();
                (Some(r.loc), was_put.then_some(r.len), None)
            }
            None => {
                let key = pending.key(&s);
                let mut live = None;
                let (at, probe) = gen.index.probe_at(s.hash, |loc| {
                    let r = gen.log.record(loc)?;
                    if r.key != key {
                        return Ok(false);
                    }
                    live = r.value.is_some().then_some(r.len as u32);
                    Ok(true)
                })?;
                match probe {
                    Probe::Found(_, loc) => (Some(loc), live, Some(at)),
                    Probe::Vacant(_) => (None, None, Some(at)),
                }
            }
        };
        let is_put = pending.value(&s).is_some();
        let r = pending.encode(i, at, prev, probe);
        match (prev_live_len, is_put) {
            (None, true) => counters.entries += 1,
            (Some(l), true) => counters.garbage += u64::from(l),
            (Some(l), false) => {
                counters.entries = counters.entries.saturating_sub(1);
                counters.garbage += u64::from(l) + u64::from(r.len);
            }
            (None, false) => counters.garbage += u64::from(r.len),
        }
        encoded(pending)?;
    }
    Ok(())
}
