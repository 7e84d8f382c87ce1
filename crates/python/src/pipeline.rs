//! Batch calls split in two stages on two threads: the calling thread does
//! what needs the GIL (reading Python objects, building results) while a
//! worker thread runs the engine on the previous chunk. On a two-core
//! machine this hides most of the engine time behind the Python work.
//!
//! Deadlock rule: the calling thread never blocks on a channel while
//! holding the GIL (it releases it first), so a worker waiting for the
//! store lock held by another Python thread always lets that thread finish.

use crossbeam_channel::{bounded, Receiver, Sender as SyncSender, TrySendError};
use pyo3::prelude::*;

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

/// Values found by a batch lookup, copied into one buffer; `None` where
/// the key is missing.
#[derive(Default)]
pub struct Found {
    values: Batch,
    present: Vec<bool>,
}

impl Found {
    pub fn collect(vals: &[Option<&[u8]>]) -> Self {
        let mut found = Found {
            values: Batch {
                bytes: Vec::with_capacity(vals.iter().flatten().map(|v| v.len()).sum()),
                ends: Vec::with_capacity(vals.len()),
            },
            present: Vec::with_capacity(vals.len()),
        };
        for v in vals {
            found.values.push(v.unwrap_or_default());
            found.present.push(v.is_some());
        }
        found
    }

    pub fn len(&self) -> usize {
        self.present.len()
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.present[i].then(|| self.values.get(i))
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
