//! Recovery after a writer stopped without closing (killed, crashed, or the
//! machine lost power).
//!
//! The log is the truth; the index is rebuilt from it. A fresh generation
//! is made whose segments are hard links to the old ones and whose index is
//! built by replaying every committed block in order. Blocks after the last
//! valid commit block (unfinished writes, a torn tail) are cut off. Only
//! then does the manifest switch to the new generation, so a crash during
//! recovery just means recovering again.
//!
//! Committed data is never in doubt: a commit returns only after its commit
//! block is fsynced, and the replay accepts exactly the blocks that end in
//! a valid commit block, so the store holds a prefix of its commits.

use super::generation::Generation;
use crate::error::{Error, IoContext, Result};
use crate::files::{self, generation_dir, segment_path, MANIFEST};
use crate::hash::KeyHash;
use crate::index::Index;
use crate::log::Log;
use crate::manifest::{Commit, Manifest};
use crate::record::{Loc, BLOCK_HEADER, FLAG_ABORT, FLAG_COMMIT};
use crate::scan::{require_clean_before, scan_blocks};
use std::path::Path;

/// Called by a reader that found the store marked as being written: if no
/// writer holds the lock, the last one died, and this recovers the store.
pub fn recover_if_abandoned(path: &Path) -> Result<()> {
    let lock_path = path.join(files::LOCK);
    let lock = match files::open_lock_file(&lock_path) {
        Ok(l) => l,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Error::Invalid(format!(
                "{}: the last writer did not close this store and it needs recovery, which this process may not write; open it once with flag=\"w\" as its owner",
                path.display()
            )))
        }
        Err(e) => return Err(e),
    };
    if !files::try_lock_exclusive(&lock, &lock_path)? {
        return Ok(()); // A live writer: nothing to recover.
    }
    let manifest = Manifest::open(&path.join(MANIFEST), true)?;
    let (commit, slot) = manifest.latest()?;
    if commit.writer_active() {
        rebuild(path, &manifest, commit, slot)?;
    }
    Ok(())
}

/// Rebuild the index of the generation named by `commit` into a new
/// generation and publish it. Returns the new commit and its slot.
pub fn rebuild(
    path: &Path,
    manifest: &Manifest,
    commit: Commit,
    slot: usize,
) -> Result<(Commit, usize)> {
    let seg_bits = manifest.header.segment_bits;
    let seed = manifest.header.hash_seed;
    let old_dir = generation_dir(path, commit.generation);
    let number = files::list_generations(path)?
        .last()
        .copied()
        .unwrap_or(0)
        .max(commit.generation)
        + 1;
    let new_dir = generation_dir(path, number);
    std::fs::create_dir(&new_dir).at(&new_dir)?;
    let mut n = 0;
    while segment_path(&old_dir, n).exists() {
        let (from, to) = (segment_path(&old_dir, n), segment_path(&new_dir, n));
        let len = std::fs::metadata(&from).at(&from)?.len();
        let is_last = !segment_path(&old_dir, n + 1).exists();
        if is_last && n > 0 && len < crate::log::SEGMENT_HEADER {
            // A segment whose creation was cut short holds no data.
            break;
        }
        std::fs::hard_link(&from, &to).at(&to)?;
        n += 1;
    }
    if n == 0 {
        return Err(Error::corrupt(&old_dir, 0, "generation has no log segment"));
    }
    let mut index = Index::create(&new_dir, number)?;
    let log = Log::open(&new_dir, number, seg_bits, true)?;

    let mut group: Vec<(KeyHash, Loc, Option<Loc>, bool, u64)> = Vec::new();
    let mut committed_end = log.loc(0, crate::log::SEGMENT_HEADER);
    let mut block_seq = commit.block_seq;
    let mut entries = 0u64;
    let mut garbage = 0u64;
    let mut group_bytes = 0u64;
    let (_, end) = scan_blocks(&log, None, |block| {
        group_bytes += (BLOCK_HEADER + block.payload.len()) as u64;
        for (loc, r) in block.records(&log)? {
            group.push((
                KeyHash::of(r.key, seed),
                loc,
                r.prev,
                r.value.is_none(),
                r.len as u64,
            ));
        }
        if block.header.flags & FLAG_ABORT != 0 {
            garbage += group_bytes;
            group.clear();
            group_bytes = 0;
        } else if block.header.flags & FLAG_COMMIT != 0 {
            for &(h, loc, prev, tombstone, len) in &group {
                let prev_live = match prev {
                    Some(p) => {
                        let r = log.record(p)?;
                        r.value.is_some().then_some(r.len as u64)
                    }
                    None => None,
                };
                match (prev_live, tombstone) {
                    (None, false) => entries += 1,
                    (Some(pl), false) => garbage += pl,
                    (Some(pl), true) => {
                        entries = entries.saturating_sub(1);
                        garbage += pl + len;
                    }
                    (None, true) => garbage += len,
                }
                index.apply(h, loc, prev)?;
            }
            group.clear();
            group_bytes = 0;
            committed_end = block.at + (BLOCK_HEADER + block.payload.len()) as u64;
            block_seq = block.header.seq;
        }
        Ok(())
    })?;
    require_clean_before(&log, &end, commit.committed_end)?;

    // Cut everything after the last commit block.
    let (last_seg, last_off) = log.split(committed_end);
    let segments: Vec<_> = log.segments().to_vec();
    drop(log);
    segments[last_seg].truncate(last_off)?;
    for s in &segments[last_seg + 1..] {
        std::fs::remove_file(&s.path).at(&s.path)?;
    }
    drop(segments);
    files::sync_dir(&new_dir)?;
    // Reopen to check what we publish.
    let gen = Generation::open(path, number, seg_bits, true)?;
    gen.check_committed_end(committed_end)?;
    drop(gen);

    let recovered = Commit {
        seq: commit.seq + 1,
        generation: number,
        committed_end,
        block_seq,
        entries,
        garbage,
        flags: 0,
    };
    let slot = manifest.write(&recovered, slot)?;
    files::remove_generation_if_unused(path, commit.generation)?;
    Ok((recovered, slot))
}
