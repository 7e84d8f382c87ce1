//! Ending a transaction: flushing the write buffer into the log,
//! committing (log synced, then the manifest slot written), rolling back
//! and closing.
//!
//! Why a commit is crash-safe: `commit()` returns only after its COMMIT
//! block, every block before it and then the MANIFEST slot pointing past
//! them are synced; after a crash, recovery replays only whole groups of
//! blocks ended by a COMMIT block and drops the rest (docs/FORMAT.md, "Why
//! a crash loses nothing committed").

use super::generation::{self, Counters};
use super::Store;
use crate::error::{Error, Result};
use crate::hash::KeyHash;
use crate::manifest::{Commit, FLAG_WRITER_ACTIVE};
use crate::record::{BLOCK_HEADER, FLAG_ABORT, FLAG_COMMIT};
use crate::scan::block_at;

impl Store {
    pub(super) fn flush(&mut self, flags: u32) -> Result<()> {
        self.writer()?;
        let before = self.gen.log.end();
        let r = self.flush_unchecked(flags);
        if r.is_err() && self.gen.log.end() != before {
            // The block is in the log but its slots may be half set.
            return self.or_poison(|_| r);
        }
        r
    }

    fn flush_unchecked(&mut self, flags: u32) -> Result<()> {
        let w = self.writer.as_mut().ok_or(Error::ReadOnly)?;
        if let Some(at) = generation::write_block(
            &mut w.pending,
            &mut self.gen,
            &mut w.block_seq,
            flags,
            &mut w.counters,
        )? {
            if flags == 0 {
                w.spilled.push(at);
            }
        }
        Ok(())
    }

    /// Make every change so far durable and visible to readers that
    /// refresh. After this returns, a crash loses none of it.
    pub fn commit(&mut self) -> Result<()> {
        if !self.commit_durable()? {
            return Ok(());
        }
        let w = self.writer()?;
        let threshold = w.compact_threshold;
        let log_bytes = self.gen.log.bytes_on_disk();
        if threshold > 0.0
            && log_bytes > 4 << 20
            && self.commit.garbage as f64 > threshold * log_bytes as f64
        {
            self.compact()?;
        }
        Ok(())
    }

    /// The durable part of a commit; returns whether anything was written.
    pub(super) fn commit_durable(&mut self) -> Result<bool> {
        if !self.writer()?.dirty {
            return Ok(false);
        }
        self.flush(FLAG_COMMIT)?;
        // After a failed fsync the kernel may have dropped the data it
        // could not write; retrying would report success falsely.
        self.or_poison(|s| s.gen.log.sync())?;
        self.or_poison(|s| s.publish(FLAG_WRITER_ACTIVE))?;
        let w = self.writer()?;
        w.spilled.clear();
        w.dirty = false;
        Ok(true)
    }

    /// Write the manifest slot for the current state.
    pub(super) fn publish(&mut self, flags: u32) -> Result<()> {
        let w = self.writer.as_ref().ok_or(Error::ReadOnly)?;
        let c = Commit {
            seq: self.commit.seq + 1,
            generation: self.gen.number,
            committed_end: self.gen.log.end(),
            block_seq: w.block_seq,
            entries: w.counters.entries,
            garbage: w.counters.garbage,
            flags,
        };
        self.slot = self.manifest.write(&c, self.slot)?;
        self.commit = c;
        Ok(())
    }

    /// Drop every change since the last commit.
    pub fn rollback(&mut self) -> Result<()> {
        let w = self.writer()?;
        w.pending.clear();
        w.mutations += 1;
        w.dirty = false;
        let spilled = std::mem::take(&mut w.spilled);
        let mut dropped = 0;
        let seed = self.manifest.header.hash_seed;
        for &at in spilled.iter().rev() {
            let block = block_at(&self.gen.log, at)?;
            dropped += (BLOCK_HEADER + block.payload.len()) as u64;
            let undo: Vec<_> = block
                .records(&self.gen.log)?
                .into_iter()
                .map(|(loc, r)| (KeyHash::of(r.key, seed), loc, r.prev))
                .collect();
            for (h, loc, prev) in undo.into_iter().rev() {
                self.gen.index.unapply(h, loc, prev)?;
            }
        }
        if !spilled.is_empty() {
            // Recovery must not count the rolled-back blocks into the next
            // commit; if that cannot be recorded, no later commit may happen.
            self.or_poison(|s| s.flush_unchecked(FLAG_ABORT))?;
        }
        let committed = self.commit;
        let w = self.writer()?;
        w.counters = Counters {
            entries: committed.entries,
            garbage: committed.garbage + dropped,
        };
        Ok(())
    }

    /// Close the store. With `commit`, pending changes are committed first;
    /// otherwise they are dropped.
    pub fn close(mut self, commit: bool) -> Result<()> {
        self.finish(commit)
    }

    pub(super) fn finish(&mut self, commit: bool) -> Result<()> {
        if self.writer.is_none() {
            return Ok(());
        }
        if self.writer.as_ref().is_some_and(|w| w.poisoned.is_some()) {
            self.writer = None;
            return Ok(());
        }
        let ended = if commit {
            self.commit()
        } else {
            self.rollback()
        };
        let poisoned = self.writer.as_ref().is_some_and(|w| w.poisoned.is_some());
        if poisoned {
            // Leave the store marked as being written: the next open
            // rebuilds the index from the log and drops what is uncommitted.
            self.writer = None;
            return if commit { ended } else { Ok(()) };
        }
        ended?;
        self.flush(0)?;
        self.gen.log.sync()?;
        self.publish(0)?;
        self.writer = None;
        Ok(())
    }
}
