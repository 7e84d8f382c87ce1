//! Bulk writes on two threads: one stages the next write buffer while the
//! writer's thread writes out the one before.
//!
//! In a bulk load, staging a pair (hashing it and copying it into the
//! write buffer) took about a sixth of the writer's time, and writing a
//! buffer out (index probes, the log write, setting index slots) the rest,
//! one after the other. Staging touches only its own buffer, never the
//! index or the log, so a second thread can fill buffer N+1 while buffer N
//! is written. Blocks come out as they would on one thread; only which
//! thread staged them differs.

use super::pending::Pending;
use super::{check_item, Store};
use crate::error::{Error, Result};
use crate::hash::KeyHash;
use std::sync::mpsc::{channel, sync_channel};

/// Pairs handed to [`Store::put_batches`].
pub trait PairBatch: Send {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The `i`-th (key, value).
    fn pair(&self, i: usize) -> (&[u8], &[u8]);
}

impl Store {
    /// Set every pair of every batch, in order, as [`Store::put`] would,
    /// staging them on a second thread while this one writes out the
    /// buffers staged before (after the first, buffers of 8 MiB within a
    /// quarter of `memory_budget`, as in [`Store::bulk`]).
    ///
    /// On an error, the pairs before the failing one stay staged or
    /// written, like a `dict.update()` that fails midway, except that when
    /// writing a buffer fails (a full disk), the pairs staged after that
    /// buffer are dropped: that buffer stays staged, and `commit()` can be
    /// retried once there is space.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use vastdict_core::{Options, PairBatch, Store};
    /// struct Pairs(Vec<(Vec<u8>, Vec<u8>)>);
    /// impl PairBatch for Pairs {
    ///     fn len(&self) -> usize { self.0.len() }
    ///     fn pair(&self, i: usize) -> (&[u8], &[u8]) { (&self.0[i].0, &self.0[i].1) }
    /// }
    /// let mut s = Store::open(dir.path(), &Options::default()).unwrap();
    /// let batch = Pairs(vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
    /// s.put_batches(std::iter::once(batch)).unwrap();
    /// assert_eq!(s.get(b"b").unwrap(), Some(&b"2"[..]));
    /// ```
    pub fn put_batches<B: PairBatch>(
        &mut self,
        batches: impl IntoIterator<Item = B, IntoIter: Send>,
    ) -> Result<()> {
        let batches = batches.into_iter();
        let room = self.room();
        let seed = self.manifest.header.hash_seed;
        let w = self.writer()?;
        // As in `bulk`: the first buffer is flushed at the usual size, so a
        // small update never pays for writing out a large buffer.
        let (mut limit, bulk_limit) = (w.flush_at, w.bulk_flush_at);
        let first = std::mem::take(&mut w.pending);
        // Full buffers go to this thread one at a time; emptied ones come back.
        let (full_tx, full_rx) = sync_channel::<Pending>(0);
        let (empty_tx, empty_rx) = channel::<Pending>();
        let (staged, flushed) = std::thread::scope(|scope| {
            let stager = scope.spawn(move || {
                let mut p = first;
                let mut count = 0u64;
                for b in batches {
                    for i in 0..b.len() {
                        let (k, v) = b.pair(i);
                        let item = match check_item(k, Some(v), room) {
                            Ok(item) => item,
                            Err(e) => return (p, count, Err(e)),
                        };
                        if !p.fits(item, room) || p.staged_bytes() >= limit {
                            let next = empty_rx.try_recv().unwrap_or_default();
                            let full = std::mem::replace(&mut p, next);
                            if full_tx.send(full).is_err() {
                                // The writer failed; its error is reported.
                                return (p, count, Ok(()));
                            }
                            limit = bulk_limit;
                        }
                        p.stage(KeyHash::of(k, seed), k, Some(v));
                        count += 1;
                    }
                }
                (p, count, Ok(()))
            });
            let mut flushed = Ok(());
            for full in full_rx {
                flushed = self.flush_buffer(full);
                if flushed.is_err() {
                    break;
                }
                if let Some(w) = self.writer.as_mut() {
                    let _ = empty_tx.send(std::mem::take(&mut w.pending));
                }
            }
            (stager.join(), flushed)
        });
        let (rest, count, staged) =
            staged.map_err(|_| Error::Invalid("staging thread panicked".into()))?;
        let w = self.writer.as_mut().ok_or(Error::ReadOnly)?;
        w.mutations += count;
        w.dirty |= count > 0;
        flushed?;
        w.pending = rest;
        staged
    }

    /// Make `full` the write buffer and write it out. On failure it stays
    /// the write buffer.
    fn flush_buffer(&mut self, full: Pending) -> Result<()> {
        let w = self.writer.as_mut().ok_or(Error::ReadOnly)?;
        debug_assert!(w.pending.is_empty());
        w.pending = full;
        self.flush(0)
    }
}
