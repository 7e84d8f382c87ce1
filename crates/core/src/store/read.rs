//! Reading a store: single and batch lookups on this handle's snapshot
//! (with the writer's buffer first, on a writer), and scans.

use super::{Store, Value};
use crate::error::{Error, Result};
use crate::hash::KeyHash;
use crate::index::partition::Probe;
use crate::record::{Loc, RecordRef};

impl Store {
    /// Look up `key`.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Result<Option<Value<'_>>> {
        self.get_hashed(self.hash(key), key)
    }

    /// Look up `key` whose hash is already known.
    pub fn get_hashed(&self, h: KeyHash, key: &[u8]) -> Result<Option<Value<'_>>> {
        self.get_hinted(h, key, None)
    }

    /// Look up many keys; large batches are spread over all cores.
    ///
    /// Lookups go in windows: first every slot of the window is requested
    /// from memory, then every likely record, then the real lookups run on
    /// warm cache lines, so the memory latencies overlap instead of adding up.
    pub fn get_many<'a>(&'a self, keys: &[&[u8]]) -> Result<Vec<Option<Value<'a>>>> {
        use rayon::prelude::*;
        const PARALLEL_FROM: usize = 8192;
        const CHUNK: usize = 2048;
        let mut out = vec![None; keys.len()];
        if keys.len() < PARALLEL_FROM {
            self.get_window_chunk(keys, &mut out)?;
        } else {
            out.par_chunks_mut(CHUNK)
                .zip(keys.par_chunks(CHUNK))
                .try_for_each(|(o, k)| self.get_window_chunk(k, o))?;
        }
        Ok(out)
    }

    /// [`Store::get_many`] on the calling thread only (for callers that
    /// run their own pipeline).
    pub fn get_many_sequential<'a>(&'a self, keys: &[&[u8]]) -> Result<Vec<Option<Value<'a>>>> {
        let mut out = vec![None; keys.len()];
        self.get_window_chunk(keys, &mut out)?;
        Ok(out)
    }

    fn get_window_chunk<'a>(&'a self, keys: &[&[u8]], out: &mut [Option<Value<'a>>]) -> Result<()> {
        const WINDOW: usize = 32;
        let mut hashes = [KeyHash(0); WINDOW];
        let mut hints = [None; WINDOW];
        for (ks, os) in keys.chunks(WINDOW).zip(out.chunks_mut(WINDOW)) {
            for (h, k) in hashes.iter_mut().zip(ks) {
                *h = self.hash(k);
                self.gen.index.prefetch_home(*h);
            }
            for (h, hint) in hashes.iter().zip(&mut hints).take(ks.len()) {
                *hint = self.gen.index.first_tag_match(*h);
                if let Some(loc) = *hint {
                    self.gen.log.prefetch(loc);
                }
            }
            for (((o, k), h), hint) in os.iter_mut().zip(ks).zip(&hashes).zip(&hints) {
                *o = self.get_hinted(*h, k, *hint)?;
            }
        }
        Ok(())
    }

    /// [`Store::get_hashed`] given `hint`, the location in the first slot
    /// with the key's tag on its probe sequence. When that record is inside
    /// this handle's snapshot and holds the key, it is what a probe would
    /// find (a probe starts at that slot and takes the first slot whose
    /// record holds the key), so the probe is skipped.
    fn get_hinted(&self, h: KeyHash, key: &[u8], hint: Option<Loc>) -> Result<Option<Value<'_>>> {
        if let Some(w) = &self.writer {
            if let Some(s) = w.pending.find(h, key) {
                return Ok(w.pending.value(s));
            }
        }
        if let Some(loc) = hint.filter(|&loc| loc < self.limit()) {
            let r = self.gen.log.record(loc)?;
            if r.key == key {
                return Ok(r.value);
            }
        }
        Ok(self.find_visible(h, key)?.and_then(|(_, r)| r.value))
    }

    /// The visible version of `key` in the log (a put or a tombstone) and
    /// its location, ignoring the write buffer.
    fn find_visible(&self, h: KeyHash, key: &[u8]) -> Result<Option<(Loc, RecordRef<'_>)>> {
        let limit = self.limit();
        let log = &self.gen.log;
        let mut hit = None;
        let (_, probe) = self.gen.index.probe(h, |loc| {
            if loc < limit {
                let r = log.record(loc)?;
                if r.key == key {
                    hit = Some(r);
                    return Ok(true);
                }
                Ok(false)
            } else {
                log.with_record(loc, |r| r.key == key)
            }
        })?;
        let Probe::Found(_, loc) = probe else {
            return Ok(None);
        };
        if let Some(r) = hit {
            return Ok(Some((loc, r)));
        }
        match self.visible_version(loc)? {
            Some(loc) => Ok(Some((loc, log.record(loc)?))),
            None => Ok(None),
        }
    }

    /// Follow `prev` from `loc` back to the newest version inside this
    /// handle's snapshot; `None` if the key did not exist then.
    pub(crate) fn visible_version(&self, mut loc: Loc) -> Result<Option<Loc>> {
        let limit = self.limit();
        while loc >= limit {
            match self.gen.log.with_record(loc, |r| r.prev)? {
                // Versions only point back in time; anything else is damage
                // (and would loop forever).
                Some(prev) if prev < loc => loc = prev,
                Some(_) => {
                    return Err(Error::corrupt(
                        self.gen.log.dir(),
                        loc,
                        "record points forward to a newer version",
                    ))
                }
                None => return Ok(None),
            }
        }
        Ok(Some(loc))
    }

    /// Whether `key` currently has a value, for the writer: from the write
    /// buffer or the log.
    pub(super) fn is_live(&self, h: KeyHash, key: &[u8]) -> Result<bool> {
        if let Some(w) = &self.writer {
            if let Some(s) = w.pending.find(h, key) {
                return Ok(w.pending.value(s).is_some());
            }
        }
        Ok(self
            .find_visible(h, key)?
            .is_some_and(|(_, r)| r.value.is_some()))
    }

    /// Up to `max` visible keys' record locations, resuming at `cursor`
    /// (partition, slot). Call [`Store::flush_pending`] first on a writer.
    pub fn scan(&self, cursor: &mut (usize, usize), max: usize) -> Result<Vec<Loc>> {
        let log = &self.gen.log;
        let parts = self.gen.index.partitions();
        let mut out = Vec::with_capacity(max.min(1 << 16));
        while cursor.0 < parts.len() && out.len() < max {
            let part = &parts[cursor.0];
            let cap = part.capacity() as usize;
            while cursor.1 < cap && out.len() < max {
                let s = part.slot(cursor.1);
                cursor.1 += 1;
                if s == crate::index::partition::EMPTY || s == crate::index::partition::DELETED {
                    continue;
                }
                if let Some(loc) = self.visible_version(crate::index::partition::slot_loc(s))? {
                    if log.record(loc)?.value.is_some() {
                        out.push(loc);
                    }
                }
            }
            if cursor.1 >= cap {
                *cursor = (cursor.0 + 1, 0);
            }
        }
        Ok(out)
    }

    /// The record at a location returned by [`Store::scan`].
    pub fn record_at(&self, loc: Loc) -> Result<RecordRef<'_>> {
        self.gen.log.record(loc)
    }
}
