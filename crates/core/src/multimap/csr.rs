//! Keys with their groups of values in three flat arrays (compressed
//! sparse rows): the form batches, changes and decoded segments take in
//! memory.

use crate::intmap::Value;

/// Sorted keys, the end of each key's values, and the values.
#[derive(Debug, Clone, Default)]
pub struct Csr<V> {
    pub keys: Vec<u64>,
    pub ends: Vec<u64>,
    pub values: Vec<V>,
}

impl<V: Value> Csr<V> {
    pub fn new() -> Self {
        Csr {
            keys: Vec::new(),
            ends: Vec::new(),
            values: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize
        }
    }

    /// The values of the `i`-th key.
    pub fn group(&self, i: usize) -> &[V] {
        &self.values[self.start(i)..self.ends[i] as usize]
    }

    /// Index of `key`, if present.
    pub fn find(&self, key: u64) -> Option<usize> {
        self.keys.binary_search(&key).ok()
    }

    /// Append a key (greater than every key so far) with its values.
    pub fn push(&mut self, key: u64, values: &[V]) {
        debug_assert!(self.keys.last().is_none_or(|&k| k < key));
        self.values.extend_from_slice(values);
        self.keys.push(key);
        self.ends.push(self.values.len() as u64);
    }

    /// Append `values` to the last key, or start `key` if it is new.
    pub fn extend_last(&mut self, key: u64, values: &[V]) {
        if self.keys.last() == Some(&key) {
            self.values.extend_from_slice(values);
            if let Some(e) = self.ends.last_mut() {
                *e = self.values.len() as u64;
            }
        } else {
            self.push(key, values);
        }
    }

    /// Bytes of memory held.
    pub fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 8 + self.ends.capacity() * 8 + self.values.capacity() * V::WIDTH
    }
}
