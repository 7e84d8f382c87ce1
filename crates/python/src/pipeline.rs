//! Batch calls split in two stages on two threads: the calling thread does
//! what needs the GIL (reading Python objects, building results) while a
//! worker thread runs the engine on the previous chunk. On a two-core
//! machine this hides most of the engine time behind the Python work.
//!
//! Deadlock rule: the calling thread never blocks on a channel while
//! holding the GIL (it releases it first), so a worker waiting for the
//! store lock held by another Python thread always lets that thread finish.

use crate::codec::Codec;
use crossbeam_channel::{bounded, Receiver, Sender as SyncSender, TrySendError};
use pyo3::prelude::*;
use pyo3::types::{PyIterator, PyList};

/// Keys (or values) copied out of Python objects into one buffer.
#[derive(Default)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub ends: Vec<usize>,
}

impl Batch {
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn push(&mut self, item: &[u8]) {
        self.bytes.extend_from_slice(item);
        self.ends.push(self.bytes.len());
    }

    pub fn refs(&self) -> Vec<&[u8]> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }
}

/// What a batch lookup hands back to the calling thread: per key its
/// value where it lies (in memory that outlives the call), or `None`.
pub type Found<'v> = Vec<Option<&'v [u8]>>;

/// Send without holding the GIL while the channel is full.
pub fn send<T: Send>(py: Python<'_>, tx: &SyncSender<T>, item: T) -> bool {
    match tx.try_send(item) {
        Ok(()) => true,
        Err(TrySendError::Full(item)) => py.detach(|| tx.send(item).is_ok()),
        Err(TrySendError::Disconnected(_)) => false,
    }
}

/// Receive without holding the GIL.
pub fn recv<T: Send>(py: Python<'_>, rx: &Receiver<T>) -> Option<T> {
    match rx.try_recv() {
        Ok(v) => Some(v),
        Err(_) => py.detach(|| rx.recv().ok()),
    }
}

pub fn channel<T>() -> (SyncSender<T>, Receiver<T>) {
    bounded(2)
}

/// Up to `n` keys from `iter`, encoded.
pub fn next_keys(iter: &mut Bound<'_, PyIterator>, codec: Codec, n: usize) -> PyResult<Batch> {
    let mut batch = Batch::default();
    for k in iter.by_ref().take(n) {
        batch.push(&codec.encode(&k?, "key")?);
    }
    Ok(batch)
}

/// Keys per chunk of a pipelined batch lookup.
const CHUNK: usize = 8192;

/// A result list filled in place. When the input's length is known the
/// list is made at that size up front, so each value goes straight to its
/// slot: no intermediate vector, whose pages a large call would fault in
/// a second time.
struct Out<'py> {
    list: Bound<'py, PyList>,
    /// Slots made up front (the rest are appended).
    sized: usize,
    filled: usize,
}

impl<'py> Out<'py> {
    fn new(py: Python<'py>, sized: usize) -> PyResult<Self> {
        let n = pyo3::ffi::Py_ssize_t::try_from(sized)
            .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("too many keys"))?;
        // SAFETY: PyList_New returns a new reference or NULL with an
        // exception set, which from_owned_ptr_or_err turns into an error.
        let list = unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyList_New(n))? };
        Ok(Out {
            list: list.cast_into::<PyList>()?,
            sized,
            filled: 0,
        })
    }

    fn push(&mut self, item: Bound<'py, PyAny>) -> PyResult<()> {
        if self.filled < self.sized {
            // The index is in range and the slot still empty; SetItem takes
            // over the reference.
            let i = self.filled as pyo3::ffi::Py_ssize_t;
            // SAFETY: a list we own, an index below its length.
            let rc = unsafe { pyo3::ffi::PyList_SetItem(self.list.as_ptr(), i, item.into_ptr()) };
            if rc != 0 {
                return Err(PyErr::fetch(self.list.py()));
            }
        } else {
            self.list.append(item)?;
        }
        self.filled += 1;
        Ok(())
    }

    /// The list, cut to the items pushed when the input turned out shorter
    /// than its stated length (its empty slots never reach Python).
    fn finish(self) -> PyResult<Bound<'py, PyList>> {
        if self.filled >= self.sized {
            return Ok(self.list);
        }
        Ok(self.list.get_slice(0, self.filled).cast_into::<PyList>()?)
    }
}

/// Look up every key of `keys` with `lookup` (run without the GIL) and
/// return the values as a list (`None` where missing). Batches of more
/// than one chunk run as a pipeline: this thread reads the next chunk's
/// keys and builds the previous chunk's values while a worker looks up
/// the current one.
pub fn lookup_many<'py, 'v, L>(
    py: Python<'py>,
    keys: &Bound<'py, PyAny>,
    key_codec: Codec,
    value_codec: Codec,
    lookup: L,
) -> PyResult<Bound<'py, PyList>>
where
    L: Fn(&Batch) -> vastdict_core::Result<Found<'v>> + Sync,
{
    use crate::errors::IntoPyResult;
    /// Values prefetched ahead of the one being built: they were last read
    /// on another core.
    const AHEAD: usize = 8;
    let mut out = Out::new(py, keys.len().unwrap_or(0))?;
    let push = |out: &mut Out<'py>, found: &Found<'_>| -> PyResult<()> {
        let prefetch = |i: usize| {
            if let Some(Some(v)) = found.get(i) {
                vastdict_core::prefetch::read(v.as_ptr());
            }
        };
        (0..AHEAD).for_each(prefetch);
        for (i, v) in found.iter().enumerate() {
            prefetch(i + AHEAD);
            out.push(match v {
                Some(v) => value_codec.decode(py, v)?,
                None => py.None().into_bound(py),
            })?;
        }
        Ok(())
    };
    let mut iter = keys.try_iter()?;
    let mut chunk = next_keys(&mut iter, key_codec, CHUNK)?;
    if chunk.len() < CHUNK {
        let found = py.detach(|| lookup(&chunk)).py_err(py)?;
        push(&mut out, &found)?;
        return out.finish();
    }
    let (tx, rx_keys) = channel::<Batch>();
    let (tx_found, rx) = channel::<vastdict_core::Result<Found<'v>>>();
    let lookup = &lookup;
    std::thread::scope(|scope| -> PyResult<()> {
        scope.spawn(move || {
            for batch in rx_keys {
                if tx_found.send(lookup(&batch)).is_err() {
                    break;
                }
            }
        });
        let mut in_flight = 0usize;
        let result = (|| -> PyResult<()> {
            loop {
                let last = chunk.len() < CHUNK;
                if !chunk.ends.is_empty() {
                    send(py, &tx, std::mem::take(&mut chunk));
                    in_flight += 1;
                }
                if !last {
                    chunk = next_keys(&mut iter, key_codec, CHUNK)?;
                }
                // Keep one chunk queued ahead; build the oldest's values.
                while in_flight > usize::from(!last) {
                    let found = recv(py, &rx)
                        .ok_or_else(|| {
                            pyo3::exceptions::PyRuntimeError::new_err("lookup thread stopped")
                        })?
                        .py_err(py)?;
                    in_flight -= 1;
                    push(&mut out, &found)?;
                }
                if last {
                    return Ok(());
                }
            }
        })();
        drop(tx);
        result
    })?;
    out.finish()
}
