//! One generation of a store: its log and the index over it, plus the
//! shared lock that keeps the files from being deleted while in use.

use super::pending::Pending;
use crate::error::{Error, IoContext, Result};
use crate::files::{self, gen_lock_path, generation_dir};
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

/// Room for a record of `len` bytes in the pending block, inside the
/// current segment: flushes the block or starts a segment when needed.
pub fn make_room(
    pending: &mut Pending,
    gen: &mut Generation,
    seq: &mut u64,
    len: usize,
) -> Result<Option<Loc>> {
    let seg_size = gen.log.segment_size();
    let mut written = None;
    if !pending.is_empty() {
        let (_, off) = gen.log.split(pending.at);
        if off + (BLOCK_HEADER + pending.payload_len() + len) as u64 <= seg_size {
            return Ok(None);
        }
        written = write_block(pending, gen, seq, 0)?;
    }
    let (_, off) = gen.log.split(gen.log.end());
    if off + (BLOCK_HEADER + len) as u64 > seg_size {
        gen.log.add_segment()?;
    }
    pending.begin(gen.log.end());
    Ok(written)
}

/// Write the pending block (flagged `flags`) and point the index at its
/// records. An empty block is written only when it carries a flag. Returns
/// the block's location when one was written.
pub fn write_block(
    pending: &mut Pending,
    gen: &mut Generation,
    seq: &mut u64,
    flags: u32,
) -> Result<Option<Loc>> {
    if pending.is_empty() && flags == 0 {
        return Ok(None);
    }
    if pending.is_empty() {
        pending.begin(gen.log.end());
    }
    *seq += 1;
    let planned = pending.at;
    let at = gen.log.append(pending.seal(*seq, flags))?;
    if !pending.entries.is_empty() && at != planned {
        return Err(Error::Invalid(
            "internal error: block landed off its planned location".into(),
        ));
    }
    const AHEAD: usize = 16;
    for (i, e) in pending.entries.iter().enumerate() {
        if let Some(next) = pending.entries.get(i + AHEAD) {
            gen.index.prefetch(next.hash);
        }
        gen.index.apply(e.hash, pending.loc_of(e.off), e.prev)?;
    }
    pending.clear();
    Ok(Some(at))
}
