//! `IntMap`: a mutable u64 -> value map in 256 independently growing
//! partitions, with batch operations that run on all cores.

use super::part::{Part, PART_BITS};
use super::value::{mix, unmix, Value};
use crate::error::{Error, Result};
use rayon::prelude::*;

pub(crate) const PARTS: usize = 1 << PART_BITS;
/// Batches smaller than this run on the calling thread.
const PARALLEL_FROM: usize = 1 << 14;
/// Partition batches at least this large are merged in, not inserted.
const MERGE_FROM: usize = 1 << 10;

/// A mutable map from u64 keys to fixed-width values, about 15 bytes per
/// entry for u32 values (the raw 12, over a load of 0.75-0.93).
///
/// ```
/// use vastdict_core::intmap::IntMap;
/// let mut m: IntMap<u32> = IntMap::new();
/// m.put_many(&[1, 2, u64::MAX], &[10, 20, 30]).unwrap();
/// let mut out = [0u32; 3];
/// let mut found = [false; 3];
/// m.get_many(&[2, 3, u64::MAX], &mut out, &mut found).unwrap();
/// assert_eq!((out, found), ([20, 0, 30], [true, false, true]));
/// ```
pub struct IntMap<V> {
    parts: Vec<Part<V>>,
    /// Key 0 mixes to the empty-slot marker, so it lives here.
    zero: Option<V>,
}

impl<V: Value> Default for IntMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn same_len(a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(Error::Invalid(format!(
            "arrays differ in length: {a} and {b}; pass one value per key"
        )));
    }
    Ok(())
}

#[inline]
pub(crate) fn part_of(m: u64) -> usize {
    (m >> (64 - PART_BITS)) as usize
}

/// Mixed keys (and their payloads) grouped by partition, each group in
/// input order and contiguous, with the start of each group; `here` keeps
/// the work on the calling thread.
pub(crate) fn scatter<T: Copy + Default + Send + Sync>(
    keys: &[u64],
    payload: &[T],
    here: bool,
) -> (Vec<u64>, Vec<T>, Vec<usize>) {
    let mixed: Vec<u64> = if here {
        keys.iter().map(|&k| mix(k)).collect()
    } else {
        keys.par_iter().map(|&k| mix(k)).collect()
    };
    partition(&mixed, payload)
}

/// Keys already mixed (and their payloads) grouped by partition, each
/// group in input order and contiguous, with the start of each group.
pub(crate) fn partition<T: Copy + Default>(
    mixed: &[u64],
    payload: &[T],
) -> (Vec<u64>, Vec<T>, Vec<usize>) {
    let mut counts = vec![0usize; PARTS + 1];
    for &m in mixed {
        counts[part_of(m) + 1] += 1;
    }
    for p in 0..PARTS {
        counts[p + 1] += counts[p];
    }
    let starts = counts.clone();
    let mut ms = vec![0u64; mixed.len()];
    let mut ps = vec![T::default(); payload.len()];
    for (i, &m) in mixed.iter().enumerate() {
        let p = part_of(m);
        ms[counts[p]] = m;
        if let Some(&v) = payload.get(i) {
            ps[counts[p]] = v;
        }
        counts[p] += 1;
    }
    (ms, ps, starts)
}

impl<V: Value> IntMap<V> {
    pub fn new() -> Self {
        IntMap {
            // Load limits from 0.86 to 0.93 across partitions, so growth is
            // spread out in time and the overall load stays high.
            parts: (0..PARTS)
                .map(|p| Part::new(0.86 + 0.07 * p as f64 / PARTS as f64))
                .collect(),
            zero: None,
        }
    }

    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len).sum::<usize>() + usize::from(self.zero.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of memory the map holds.
    pub fn resident_bytes(&self) -> usize {
        self.parts
            .iter()
            .map(|p| p.slots() * (8 + V::WIDTH))
            .sum::<usize>()
            + self.parts.len() * std::mem::size_of::<Part<V>>()
    }

    pub fn get(&self, k: u64) -> Option<V> {
        let m = mix(k);
        if m == 0 {
            return self.zero;
        }
        self.parts[part_of(m)].get(m)
    }

    /// Set one key; true if it is new.
    pub fn put(&mut self, k: u64, v: V) -> bool {
        let m = mix(k);
        if m == 0 {
            return self.zero.replace(v).is_none();
        }
        self.parts[part_of(m)].put(m, v)
    }

    /// Remove one key; its value if it was there.
    pub fn remove(&mut self, k: u64) -> Option<V> {
        let m = mix(k);
        if m == 0 {
            return self.zero.take();
        }
        self.parts[part_of(m)].remove(m)
    }

    /// Set every `keys[i]` to `values[i]` (a later duplicate wins).
    /// Returns how many keys were new.
    pub fn put_many(&mut self, keys: &[u64], values: &[V]) -> Result<usize> {
        same_len(keys.len(), values.len())?;
        if keys.len() < PARALLEL_FROM {
            return Ok(keys
                .iter()
                .zip(values)
                .filter(|(&k, &v)| self.put(k, v))
                .count());
        }
        let (ms, vs, starts) = scatter(keys, values, false);
        let mut new = 0;
        // Key 0 (mix 0) falls in partition 0's group; take it out first.
        for (&m, &v) in ms[starts[0]..starts[1]]
            .iter()
            .zip(&vs[starts[0]..starts[1]])
        {
            if m == 0 {
                new += usize::from(self.zero.replace(v).is_none());
            }
        }
        Ok(new
            + self
                .parts
                .par_iter_mut()
                .enumerate()
                .map(|(p, part)| {
                    let (mk, mv) = (&ms[starts[p]..starts[p + 1]], &vs[starts[p]..starts[p + 1]]);
                    if mk.len() >= MERGE_FROM && mk.len() > part.len / 8 {
                        // A big batch: sort it (the last of equal keys wins)
                        // and merge it in, instead of inserting one by one.
                        let mut idx: Vec<u32> = (0..mk.len() as u32).collect();
                        idx.sort_unstable_by_key(|&j| (mk[j as usize], j));
                        let mut batch: Vec<(u64, V)> = Vec::with_capacity(idx.len());
                        for (n, &j) in idx.iter().enumerate() {
                            let m = mk[j as usize];
                            let last = idx.get(n + 1).is_none_or(|&nj| mk[nj as usize] != m);
                            if m != 0 && last {
                                batch.push((m, mv[j as usize]));
                            }
                        }
                        return part.merge_sorted(&batch);
                    }
                    mk.iter()
                        .zip(mv)
                        .filter(|(&m, &v)| m != 0 && part.put(m, v))
                        .count()
                })
                .sum::<usize>())
    }

    /// Remove every key of `keys`; returns how many were there.
    pub fn remove_many(&mut self, keys: &[u64]) -> usize {
        if keys.len() < PARALLEL_FROM {
            return keys.iter().filter(|&&k| self.remove(k).is_some()).count();
        }
        let (ms, _, starts) = scatter::<u8>(keys, &[], false);
        let mut gone = 0;
        if ms[starts[0]..starts[1]].contains(&0) {
            gone += usize::from(self.zero.take().is_some());
        }
        gone + self
            .parts
            .par_iter_mut()
            .enumerate()
            .map(|(p, part)| {
                ms[starts[p]..starts[p + 1]]
                    .iter()
                    .filter(|&&m| m != 0 && part.remove(m).is_some())
                    .count()
            })
            .sum::<usize>()
    }

    /// Look up `keys`: `out[i]` gets the value (or is left alone) and
    /// `found[i]` says whether the key is there.
    pub fn get_many(&self, keys: &[u64], out: &mut [V], found: &mut [bool]) -> Result<()> {
        same_len(keys.len(), out.len())?;
        same_len(keys.len(), found.len())?;
        const CHUNK: usize = 4096;
        if keys.len() < PARALLEL_FROM {
            self.get_chunk(keys, out, found);
            return Ok(());
        }
        keys.par_chunks(CHUNK)
            .zip(out.par_chunks_mut(CHUNK))
            .zip(found.par_chunks_mut(CHUNK))
            .for_each(|((k, o), f)| self.get_chunk(k, o, f));
        Ok(())
    }

    fn get_chunk(&self, keys: &[u64], out: &mut [V], found: &mut [bool]) {
        const WINDOW: usize = 16;
        let mut mixed = [0u64; WINDOW];
        for ((ks, os), fs) in keys
            .chunks(WINDOW)
            .zip(out.chunks_mut(WINDOW))
            .zip(found.chunks_mut(WINDOW))
        {
            for (m, &k) in mixed.iter_mut().zip(ks) {
                *m = mix(k);
                self.parts[part_of(*m)].prefetch(*m);
            }
            for ((&m, o), f) in mixed.iter().zip(os.iter_mut()).zip(fs.iter_mut()) {
                let v = if m == 0 {
                    self.zero
                } else {
                    self.parts[part_of(m)].get(m)
                };
                *f = v.is_some();
                if let Some(v) = v {
                    *o = v;
                }
            }
        }
    }

    /// Every (key, value), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, V)> + '_ {
        self.zero.map(|v| (0, v)).into_iter().chain(
            self.parts
                .iter()
                .flat_map(|p| p.iter().map(|(m, v)| (unmix(m), v))),
        )
    }

    /// Every (mixed key, value) in ascending mixed order (the order frozen
    /// files are written in).
    pub fn iter_mixed(&self) -> impl Iterator<Item = (u64, V)> + '_ {
        self.zero
            .map(|v| (0, v))
            .into_iter()
            .chain(self.parts.iter().flat_map(|p| p.iter()))
    }
}
