//! A writable integer map over an optional frozen base: changes go to an
//! in-memory [`IntMap`] layered on top of the mapped file, and saving
//! merges both into a new file. A map made from scratch has no base.

use super::frozen::{write, FrozenIntMap};
use super::map::{same_len, IntMap};
use super::value::Value;
use crate::error::Result;
use std::path::Path;
use std::sync::Arc;

pub struct OverlayMap<V> {
    base: Option<Arc<FrozenIntMap<V>>>,
    delta: IntMap<V>,
    /// Keys of the base removed since (a set; the values are unused).
    removed: IntMap<u32>,
    /// Keys in `delta` that the base does not hold.
    delta_only: usize,
}

impl<V: Value> Default for OverlayMap<V> {
    fn default() -> Self {
        Self::new(None)
    }
}

impl<V: Value> OverlayMap<V> {
    pub fn new(base: Option<Arc<FrozenIntMap<V>>>) -> Self {
        OverlayMap {
            base,
            delta: IntMap::new(),
            removed: IntMap::new(),
            delta_only: 0,
        }
    }

    fn in_base(&self, k: u64) -> Result<bool> {
        match &self.base {
            Some(b) => Ok(b.get(k)?.is_some() && self.removed.get(k).is_none()),
            None => Ok(false),
        }
    }

    fn base_has(&self, k: u64) -> Result<bool> {
        match &self.base {
            Some(b) => Ok(b.get(k)?.is_some()),
            None => Ok(false),
        }
    }

    pub fn len(&self) -> usize {
        let base = self.base.as_ref().map_or(0, |b| b.len() as usize);
        base - self.removed.len() + self.delta_only
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of memory held (the base is mapped, not counted).
    pub fn resident_bytes(&self) -> usize {
        self.delta.resident_bytes()
            + if self.removed.is_empty() {
                0
            } else {
                self.removed.resident_bytes()
            }
    }

    pub fn get(&self, k: u64) -> Result<Option<V>> {
        if let Some(v) = self.delta.get(k) {
            return Ok(Some(v));
        }
        match &self.base {
            Some(b) if self.removed.get(k).is_none() => b.get(k),
            _ => Ok(None),
        }
    }

    /// Set `keys[i]` to `values[i]` (later duplicates win); returns how
    /// many keys are new to the map.
    pub fn put_many(&mut self, keys: &[u64], values: &[V]) -> Result<usize> {
        same_len(keys.len(), values.len())?;
        if self.base.is_none() {
            let new = self.delta.put_many(keys, values)?;
            self.delta_only += new;
            return Ok(new);
        }
        let mut new = 0;
        for (&k, &v) in keys.iter().zip(values) {
            let was = self.delta.get(k).is_some() || self.in_base(k)?;
            if self.delta.put(k, v) && !self.base_has(k)? {
                self.delta_only += 1;
            }
            self.removed.remove(k);
            new += usize::from(!was);
        }
        Ok(new)
    }

    /// Remove `keys`; returns how many were there.
    pub fn remove_many(&mut self, keys: &[u64]) -> Result<usize> {
        if self.base.is_none() {
            let gone = self.delta.remove_many(keys);
            self.delta_only -= gone;
            return Ok(gone);
        }
        let mut gone = 0;
        for &k in keys {
            let in_base = self.base_has(k)?;
            let had = self.delta.remove(k).is_some();
            if had && !in_base {
                self.delta_only -= 1;
            }
            let was_visible_in_base = in_base && self.removed.get(k).is_none();
            if was_visible_in_base {
                self.removed.put(k, 0);
            }
            gone += usize::from(had || was_visible_in_base);
        }
        Ok(gone)
    }

    /// Look up `keys` into `out` / `found`.
    pub fn get_many(&self, keys: &[u64], out: &mut [V], found: &mut [bool]) -> Result<()> {
        self.delta.get_many(keys, out, found)?;
        let Some(base) = &self.base else {
            return Ok(());
        };
        // Keys not in the layer: ask the base, unless removed.
        let rest: Vec<usize> = (0..keys.len())
            .filter(|&i| !found[i] && self.removed.get(keys[i]).is_none())
            .collect();
        if rest.is_empty() {
            return Ok(());
        }
        let rk: Vec<u64> = rest.iter().map(|&i| keys[i]).collect();
        let mut ro = vec![V::default(); rk.len()];
        let mut rf = vec![false; rk.len()];
        base.get_many(&rk, &mut ro, &mut rf)?;
        for (j, &i) in rest.iter().enumerate() {
            if rf[j] {
                out[i] = ro[j];
                found[i] = true;
            }
        }
        Ok(())
    }

    /// Every (mixed key, value) in ascending mixed order.
    fn merged(&self) -> impl Iterator<Item = (u64, V)> + '_ {
        let base = self
            .base
            .iter()
            .flat_map(|b| b.iter_mixed())
            .filter(|&(m, _)| {
                let k = super::value::unmix(m);
                self.removed.get(k).is_none() && self.delta.get(k).is_none()
            });
        Merge {
            a: base.peekable(),
            b: self.delta.iter_mixed().peekable(),
        }
    }

    /// Every (key, value), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, V)> + '_ {
        self.merged().map(|(m, v)| (super::value::unmix(m), v))
    }

    /// Write everything to a frozen file at `path` (which may be the base's
    /// own path: the new file replaces it by a rename).
    pub fn save(&self, path: &Path) -> Result<u64> {
        write(path, self.len() as u64, || self.merged())
    }
}

/// Two ascending streams of distinct keys, merged.
struct Merge<A: Iterator, B: Iterator> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<V: Copy, A: Iterator<Item = (u64, V)>, B: Iterator<Item = (u64, V)>> Iterator for Merge<A, B> {
    type Item = (u64, V);
    fn next(&mut self) -> Option<(u64, V)> {
        match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) if x.0 <= y.0 => self.a.next(),
            (Some(_), Some(_)) => self.b.next(),
            (Some(_), None) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}
