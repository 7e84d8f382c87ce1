//! Compaction: copy the live records into a new generation and drop the old
//! one once no handle uses it.
//!
//! The copy walks the old log in order (sequential reads, whatever its
//! size) and keeps a record exactly when the index still points at it. The
//! new generation becomes the store's only when the manifest names it, after
//! its files are durable; a crash before that leaves the old generation in
//! place and an orphan that the next writer deletes.

use super::generation::{write_block, Counters, Generation};
use super::pending::Pending;
use super::Store;
use crate::error::{Error, Result};
use crate::files;
use crate::hash::KeyHash;
use crate::index::partition::Probe;
use crate::manifest::FLAG_WRITER_ACTIVE;
use crate::record::FLAG_COMMIT;
use crate::scan::{require_clean_before, scan_blocks};

impl Store {
    /// Rewrite the store without its garbage (overwritten and deleted
    /// records). Commits pending changes first.
    pub fn compact(&mut self) -> Result<()> {
        self.commit_durable()?;
        let seg_bits = self.manifest.header.segment_bits;
        let seed = self.manifest.header.hash_seed;
        let number = files::list_generations(&self.path)?
            .last()
            .copied()
            .unwrap_or(0)
            .max(self.gen.number)
            + 1;
        let mut new = Generation::create(&self.path, number, seg_bits)?;
        let w = self.writer.as_mut().ok_or(Error::ReadOnly)?;
        let mut pending = Pending::default();
        let mut seq = w.block_seq;
        let mut counters = Counters::default();
        let room = new.log.max_payload().min(w.bulk_flush_at);
        let old = &self.gen;
        let limit = self.commit.committed_end;
        let (_, end) = scan_blocks(&old.log, None, |block| {
            if block.at >= limit {
                return Ok(());
            }
            for (loc, r) in block.records(&old.log)? {
                let Some(value) = r.value else { continue };
                let h = KeyHash::of(r.key, seed);
                if !matches!(old.index.probe(h, |l| Ok(l == loc))?.1, Probe::Found(..)) {
                    continue;
                }
                if !pending.fits(r.len, room) {
                    write_block(&mut pending, &mut new, &mut seq, 0, &mut counters)?;
                }
                pending.stage(h, r.key, Some(value));
            }
            Ok(())
        })?;
        require_clean_before(&old.log, &end, limit)?;
        write_block(&mut pending, &mut new, &mut seq, FLAG_COMMIT, &mut counters)?;
        new.log.sync()?;
        w.block_seq = seq;
        w.counters = Counters {
            entries: counters.entries,
            garbage: 0,
        };
        let old_number = self.gen.number;
        self.gen = new;
        self.publish(FLAG_WRITER_ACTIVE)?;
        files::remove_generation_if_unused(&self.path, old_number)?;
        Ok(())
    }
}
