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
}

/// Keys and values of the same pairs, in order.
pub struct Pairs(pub Batch, pub Batch);

impl vastdict_core::PairBatch for Pairs {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn pair(&self, i: usize) -> (&[u8], &[u8]) {
        (self.0.get(i), self.1.get(i))
    }
}

/// Send without holding the GIL while the channel is full.
pub fn send<T: Send>(py: Python<'_>, tx: &SyncSender<T>, item: T) -> bool {
    match tx.try_send(item) {
        Ok(()) => true,
        Err(TrySendError::Full(item)) => py.detach(|| tx.send(item).is_ok()),
        Err(TrySendError::Disconnected(_)) => false,
    }
}

pub fn channel<T>() -> (SyncSender<T>, Receiver<T>) {
    bounded(2)
}

/// Up to `n` keys from `iter`, encoded.
pub fn next_keys(iter: &mut Bound<'_, PyIterator>, codec: Codec, n: usize) -> PyResult<Batch> {
    // Room for `n` typical keys up front: growing by doubling would copy
    // the chunk's bytes about once more.
    let mut batch = Batch {
        bytes: Vec::with_capacity(n * 48),
        ends: Vec::with_capacity(n),
    };
    for k in iter.by_ref().take(n) {
        batch.push(&codec.encode(&k?, "key")?);
    }
    Ok(batch)
}

/// A result list filled in place. When the input's length is known the
/// list is made at that size up front, so each value goes straight to its
/// slot: no intermediate vector, whose pages a large call would fault in
/// a second time.
pub struct Out<'py> {
    list: Bound<'py, PyList>,
    /// Slots made up front (the rest are appended).
    sized: usize,
    filled: usize,
}

impl<'py> Out<'py> {
    pub fn new(py: Python<'py>, sized: usize) -> PyResult<Self> {
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

    pub fn push(&mut self, item: Bound<'py, PyAny>) -> PyResult<()> {
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
    pub fn finish(self) -> PyResult<Bound<'py, PyList>> {
        if self.filled >= self.sized {
            return Ok(self.list);
        }
        Ok(self.list.get_slice(0, self.filled).cast_into::<PyList>()?)
    }
}
