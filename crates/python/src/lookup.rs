//! Batch lookups (`get_many`) shared between the thread pool and the
//! calling thread.
//!
//! The calling thread does what needs the GIL: it reads each chunk's keys
//! and builds the values of the chunk [`CHUNKS_AHEAD`] behind. The pool
//! looks keys up meanwhile, in parts that any thread can claim. When the
//! calling thread reaches a chunk whose lookups are not done, it releases
//! the GIL and claims that chunk's unclaimed parts itself instead of
//! waiting. Before this, with a worker thread handing chunks to the pool,
//! the lookups were the slower side and the calling thread sat idle for a
//! quarter of its time (1.6 of 2 cores busy).
//!
//! Deadlock rule: the calling thread never waits while holding the GIL,
//! and the lookups never need it.

use crate::codec::Codec;
use crate::errors::IntoPyResult;
use crate::pipeline::{next_keys, Batch, Out};
use parking_lot::{Condvar, Mutex};
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Keys per chunk read from Python between two looks at finished lookups.
const CHUNK: usize = 8192;
/// Chunks queued for lookup ahead of the one whose values are being built,
/// so the pool does not run dry while this thread builds values. Measured
/// on 2 cores at 10M pairs: one ahead (of 8192 keys) kept 1.6 cores busy,
/// four keep 1.8; chunks of 16k or parts of 512 or 2048 keys did no better.
const CHUNKS_AHEAD: usize = 4;
/// Keys per part: the unit of lookup work a thread claims.
const PART: usize = 1024;

/// Values at most this long are copied into a [`Values`] buffer; longer
/// ones are handed over where they lie, so a chunk of large values costs
/// no second copy of them in memory.
const PACK_MAX: usize = 4096;

/// Where one key's value is in a [`Values`].
#[derive(Clone, Copy)]
enum Slot<'v> {
    Missing,
    Packed { start: usize, end: usize },
    InPlace(&'v [u8]),
}

/// What a batch lookup hands back to the calling thread: the values of a
/// run of keys, small ones copied next to each other by the thread that
/// found them, while they are in its cache.
///
/// Handing over references into the map instead made the calling thread
/// touch one scattered page of the file per value: on a 10M-pair store
/// each was a TLB miss and a cache miss (a prefetch could not hide the
/// page walk), about 40% of that thread's time in `get_many`. Reading one
/// sequential buffer costs it nearly nothing, and the copy costs the
/// lookup thread a few nanoseconds from its L1 cache.
#[derive(Default)]
pub struct Values<'v> {
    bytes: Vec<u8>,
    slots: Vec<Slot<'v>>,
}

impl<'v> Values<'v> {
    /// The values of `found` (one per key, `None` where missing).
    pub fn pack(found: &[Option<&'v [u8]>]) -> Self {
        let packed_len = found
            .iter()
            .flatten()
            .map(|v| v.len())
            .filter(|&n| n <= PACK_MAX)
            .sum();
        let mut bytes = Vec::with_capacity(packed_len);
        let slots = found
            .iter()
            .map(|v| match *v {
                None => Slot::Missing,
                Some(v) if v.len() > PACK_MAX => Slot::InPlace(v),
                Some(v) => {
                    let start = bytes.len();
                    bytes.extend_from_slice(v);
                    Slot::Packed {
                        start,
                        end: bytes.len(),
                    }
                }
            })
            .collect();
        Values { bytes, slots }
    }

    /// Each key's value in order, `None` where missing.
    fn iter(&self) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        self.slots.iter().map(|s| match *s {
            Slot::Missing => None,
            Slot::Packed { start, end } => Some(&self.bytes[start..end]),
            Slot::InPlace(v) => Some(v),
        })
    }
}

/// One chunk's lookups: its keys, and its parts' results as threads
/// finish them.
struct Job<'v> {
    keys: Batch,
    /// The next part to claim.
    next: AtomicUsize,
    results: Mutex<Results<'v>>,
    finished: Condvar,
}

struct Results<'v> {
    parts: Vec<Option<vastdict_core::Result<Values<'v>>>>,
    left: usize,
}

impl<'v> Job<'v> {
    fn new(keys: Batch) -> Self {
        let n = keys.len().div_ceil(PART);
        Job {
            keys,
            next: AtomicUsize::new(0),
            results: Mutex::new(Results {
                parts: (0..n).map(|_| None).collect(),
                left: n,
            }),
            finished: Condvar::new(),
        }
    }

    fn parts(&self) -> usize {
        self.keys.len().div_ceil(PART)
    }

    /// Claim and look up parts until none is left unclaimed.
    fn work<L>(&self, lookup: &L)
    where
        L: Fn(&[&[u8]]) -> vastdict_core::Result<Values<'v>>,
    {
        loop {
            let p = self.next.fetch_add(1, Ordering::Relaxed);
            if p >= self.parts() {
                return;
            }
            let end = ((p + 1) * PART).min(self.keys.len());
            let keys: Vec<&[u8]> = (p * PART..end).map(|i| self.keys.get(i)).collect();
            let found = lookup(&keys);
            let mut r = self.results.lock();
            r.parts[p] = Some(found);
            r.left -= 1;
            if r.left == 0 {
                self.finished.notify_all();
            }
        }
    }

    /// Help with the unclaimed parts, then wait for the rest; the values
    /// in key order, or the first error.
    fn finish<L>(&self, lookup: &L) -> vastdict_core::Result<Vec<Values<'v>>>
    where
        L: Fn(&[&[u8]]) -> vastdict_core::Result<Values<'v>>,
    {
        self.work(lookup);
        let mut r = self.results.lock();
        while r.left > 0 {
            self.finished.wait(&mut r);
        }
        std::mem::take(&mut r.parts)
            .into_iter()
            .map(|p| {
                p.unwrap_or_else(|| {
                    Err(vastdict_core::Error::Invalid(
                        "internal error: a batch lookup lost a part".into(),
                    ))
                })
            })
            .collect()
    }
}

/// Look up every key of `keys` with `lookup` (run without the GIL, on
/// `pool` and on this thread) and return the values as a list (`None`
/// where missing). `lookup` takes a part of at most [`PART`] keys.
pub fn lookup_many<'py, 'v, L>(
    py: Python<'py>,
    pool: &rayon::ThreadPool,
    keys: &Bound<'py, PyAny>,
    key_codec: Codec,
    value_codec: Codec,
    lookup: L,
) -> PyResult<Bound<'py, PyList>>
where
    L: Fn(&[&[u8]]) -> vastdict_core::Result<Values<'v>> + Sync,
{
    let mut out = Out::new(py, keys.len().unwrap_or(0))?;
    let mut iter = keys.try_iter()?;
    let lookup = &lookup;
    let helpers = pool.current_num_threads();
    pool.in_place_scope(|scope| -> PyResult<()> {
        let mut queued: std::collections::VecDeque<std::sync::Arc<Job<'v>>> = Default::default();
        let result = (|| -> PyResult<()> {
            let mut done = false;
            loop {
                if !done {
                    let keys = next_keys(&mut iter, key_codec, CHUNK)?;
                    done = keys.len() < CHUNK;
                    if keys.len() > 0 {
                        let job = std::sync::Arc::new(Job::new(keys));
                        // One part runs here alone: no handoff for a
                        // small call.
                        for _ in 1..job.parts().min(helpers + 1) {
                            let job = job.clone();
                            scope.spawn(move |_| job.work(lookup));
                        }
                        queued.push_back(job);
                    }
                }
                if queued.len() <= if done { 0 } else { CHUNKS_AHEAD } {
                    if done {
                        return Ok(());
                    }
                    continue;
                }
                let Some(job) = queued.pop_front() else {
                    return Ok(());
                };
                let found = py.detach(|| job.finish(lookup)).py_err(py)?;
                for v in found.iter().flat_map(Values::iter) {
                    out.push(match v {
                        Some(v) => value_codec.decode(py, v)?,
                        None => py.None().into_bound(py),
                    })?;
                }
            }
        })();
        // Leave no lookup running when the scope closes (it would wait for
        // them holding the GIL).
        py.detach(|| {
            for job in &queued {
                let _ = job.finish(lookup);
            }
        });
        result
    })?;
    out.finish()
}
