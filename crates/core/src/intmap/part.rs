//! One partition of a mutable integer map: linear probing over mixed keys,
//! with every run kept sorted.
//!
//! A key's home slot is monotonic in its mixed value, and each run of
//! occupied slots is kept in ascending order, so a lookup stops at the
//! first larger key, an insert shifts the rest of its run right by one, a
//! delete shifts it back (no tombstones), and growing is one merge-like
//! pass with no probing. Slots past the last home (`slack`) absorb runs
//! that reach the end, so runs never wrap.

use super::value::Value;

/// The mixed key of an empty slot. Key 0 (whose mix is 0) is kept by the
/// map outside the partitions.
pub const EMPTY: u64 = 0;
/// Bits of the mixed key that pick the partition.
pub const PART_BITS: u32 = 8;

pub struct Part<V> {
    pub keys: Vec<u64>,
    pub vals: Vec<V>,
    /// Number of home slots.
    cap: usize,
    pub len: usize,
    /// Grow when `len` passes this (this partition's load limit).
    limit: usize,
    max_load: f64,
}

#[inline]
fn home(m: u64, cap: usize) -> usize {
    ((u128::from(m << PART_BITS) * cap as u128) >> 64) as usize
}

fn slack(cap: usize) -> usize {
    cap / 32 + 16
}

impl<V: Value> Part<V> {
    /// An empty partition; `max_load` differs between partitions so they
    /// do not all grow at once and their loads spread evenly.
    pub fn new(max_load: f64) -> Self {
        let mut p = Part {
            keys: Vec::new(),
            vals: Vec::new(),
            cap: 0,
            len: 0,
            limit: 0,
            max_load,
        };
        p.resize(16);
        p
    }

    pub fn slots(&self) -> usize {
        self.keys.len()
    }

    /// Lay out ascending `items` for `cap` home slots: each at its home or
    /// right after the previous one. The slack grows until the last run
    /// fits, whatever the keys (mixed keys can be chosen to crowd the end).
    fn place(cap: usize, items: &[(u64, V)]) -> (Vec<u64>, Vec<V>) {
        let mut extra = slack(cap);
        loop {
            let n = cap + extra;
            let mut keys = vec![EMPTY; n];
            let mut vals = vec![V::default(); n];
            let mut next = 0usize;
            let mut fits = true;
            for &(m, v) in items {
                let at = home(m, cap).max(next);
                if at >= n {
                    fits = false;
                    break;
                }
                keys[at] = m;
                vals[at] = v;
                next = at + 1;
            }
            if fits {
                return (keys, vals);
            }
            extra *= 2;
        }
    }

    fn resize(&mut self, cap: usize) {
        let items: Vec<(u64, V)> = self.iter().collect();
        self.install(cap, &items);
    }

    fn install(&mut self, cap: usize, items: &[(u64, V)]) {
        let (keys, vals) = Self::place(cap, items);
        self.keys = keys;
        self.vals = vals;
        self.cap = cap;
        self.len = items.len();
        self.limit = ((cap as f64) * self.max_load) as usize;
    }

    /// Set many keys at once from `batch`, ascending by key with no
    /// duplicates, by merging it with what is here into a new layout (one
    /// pass, no probing): for batches that are large next to the
    /// partition. Returns how many keys were new.
    pub fn merge_sorted(&mut self, batch: &[(u64, V)]) -> usize {
        let mut merged = Vec::with_capacity(self.len + batch.len());
        let mut old = self.iter().peekable();
        let mut new = 0;
        for &(m, v) in batch {
            while let Some(&(om, ov)) = old.peek() {
                if om >= m {
                    break;
                }
                merged.push((om, ov));
                old.next();
            }
            if old.peek().is_some_and(|&(om, _)| om == m) {
                old.next();
            } else {
                new += 1;
            }
            merged.push((m, v));
        }
        merged.extend(old);
        let mut cap = self.cap;
        if merged.len() > self.limit {
            cap = ((merged.len() as f64 / (self.max_load - 0.02)).ceil() as usize)
                .max(self.cap + self.cap / 4 + 16);
        }
        self.install(cap, &merged);
        new
    }

    /// Slot of `m`, or the slot where it would be inserted.
    #[inline]
    pub fn find(&self, m: u64) -> Result<usize, usize> {
        let mut i = home(m, self.cap);
        loop {
            match self.keys.get(i) {
                Some(&k) if k == m => return Ok(i),
                Some(&k) if k != EMPTY && k < m => i += 1,
                _ => return Err(i),
            }
        }
    }

    /// Start loading `m`'s home slot.
    #[inline]
    pub fn prefetch(&self, m: u64) {
        if let Some(k) = self.keys.get(home(m, self.cap)) {
            crate::prefetch::read(k as *const u64 as *const u8);
        }
    }

    #[inline]
    pub fn get(&self, m: u64) -> Option<V> {
        self.find(m).ok().map(|i| self.vals[i])
    }

    /// Set `m` to `v`; true if the key is new.
    pub fn put(&mut self, m: u64, v: V) -> bool {
        loop {
            match self.find(m) {
                Ok(i) => {
                    self.vals[i] = v;
                    return false;
                }
                Err(i) => {
                    let free = self.keys[i.min(self.keys.len())..]
                        .iter()
                        .position(|&k| k == EMPTY)
                        .map(|d| i + d);
                    match free {
                        Some(j) if self.len < self.limit => {
                            self.keys.copy_within(i..j, i + 1);
                            self.vals.copy_within(i..j, i + 1);
                            self.keys[i] = m;
                            self.vals[i] = v;
                            self.len += 1;
                            return true;
                        }
                        // Full, or a run reached the end of the slack.
                        _ => self.resize(self.cap + self.cap / 4 + 16),
                    }
                }
            }
        }
    }

    /// Remove `m`; its value if it was there.
    pub fn remove(&mut self, m: u64) -> Option<V> {
        let i = self.find(m).ok()?;
        let v = self.vals[i];
        let mut j = i + 1;
        // Shift the rest of the run back, up to an empty slot or a key at home.
        while j < self.keys.len() && self.keys[j] != EMPTY && home(self.keys[j], self.cap) < j {
            j += 1;
        }
        self.keys.copy_within(i + 1..j, i);
        self.vals.copy_within(i + 1..j, i);
        self.keys[j - 1] = EMPTY;
        self.len -= 1;
        Some(v)
    }

    /// Occupied (mixed key, value) pairs in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, V)> + '_ {
        self.keys
            .iter()
            .zip(&self.vals)
            .filter(|(&k, _)| k != EMPTY)
            .map(|(&k, &v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intmap::value::mix;
    use std::collections::HashMap;

    #[test]
    fn matches_a_map_through_growth_and_removal() {
        let mut p: Part<u32> = Part::new(0.9);
        let mut m = HashMap::new();
        for i in 1..20_000u64 {
            let k = mix(i * 7) >> PART_BITS | 1;
            assert_eq!(p.put(k, i as u32), m.insert(k, i as u32).is_none());
            if i % 3 == 0 {
                let d = mix((i / 2) * 7) >> PART_BITS | 1;
                assert_eq!(p.remove(d), m.remove(&d));
            }
        }
        assert_eq!(p.len, m.len());
        for (&k, &v) in &m {
            assert_eq!(p.get(k), Some(v));
        }
        let mut seen: Vec<u64> = p.iter().map(|(k, _)| k).collect();
        let sorted = {
            let mut s = seen.clone();
            s.sort_unstable();
            s
        };
        assert_eq!(seen, sorted, "runs are kept in order");
        seen.dedup();
        assert_eq!(seen.len(), m.len());
        let per_entry = (p.slots() * 12) as f64 / p.len as f64;
        assert!(per_entry < 18.0, "{per_entry} bytes per entry");
    }
}
