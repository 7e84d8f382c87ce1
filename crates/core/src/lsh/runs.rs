//! One LSH band as a few [`BandTable`]s ("runs") of falling size. Pairs
//! added together become a run of their own; settling merges the
//! shortest tail of runs that leaves each run under half the one before
//! it, in one pass. A band so has at most about log2(pairs) runs and a
//! pair is rewritten about as many times. A batch insert pushes several
//! runs before it settles, so their pairs are merged together once. One
//! large insert makes one run; `compact` (and a save) leaves one, which
//! is what a lookup reads fastest.

use super::band::BandTable;
use crate::error::Result;

pub(crate) struct Band {
    key_bits: u32,
    /// Largest first; none is empty.
    runs: Vec<BandTable>,
}

impl Band {
    /// A band of `key_bits`-bit keys without pairs.
    pub fn new(key_bits: u32) -> Self {
        Band {
            key_bits,
            runs: Vec::new(),
        }
    }

    /// A band of one table (a saved one, say).
    pub fn of(table: BandTable) -> Self {
        let mut b = Band::new(table.shape().key_bits);
        if !table.is_empty() {
            b.runs.push(table);
        }
        b
    }

    pub fn runs(&self) -> &[BandTable] {
        &self.runs
    }

    pub fn runs_mut(&mut self) -> &mut [BandTable] {
        &mut self.runs
    }

    /// Add `pairs` (key, slot) in any order.
    pub fn add(&mut self, pairs: &[(u64, u32)]) -> Result<()> {
        self.push(pairs)?;
        self.settle()
    }

    /// Add `pairs` as a run of their own, leaving the merging to
    /// [`settle`](Self::settle): a caller adding many batches settles
    /// once at the end (or every few batches), so their pairs are merged
    /// in one pass rather than run into run.
    pub fn push(&mut self, pairs: &[(u64, u32)]) -> Result<()> {
        if !pairs.is_empty() {
            self.runs.push(BandTable::build(pairs, self.key_bits)?);
        }
        Ok(())
    }

    /// Merge the shortest tail of runs that leaves each run less than
    /// half the one before it, in one pass.
    pub fn settle(&mut self) -> Result<()> {
        // Runs pushed since the last settle can come in any sizes, so the
        // tail starts no later than where the halving order first breaks.
        let halving = 1 + self
            .runs
            .windows(2)
            .take_while(|w| w[1].len() * 2 < w[0].len())
            .count();
        let mut from = self.runs.len();
        let mut tail = 0;
        while from > 0 {
            tail += self.runs[from - 1].len();
            from -= 1;
            if from == 0 || (from <= halving && tail * 2 < self.runs[from - 1].len()) {
                break;
            }
        }
        if self.runs.len() - from >= 2 {
            let refs: Vec<&BandTable> = self.runs[from..].iter().collect();
            let m = BandTable::merge(self.key_bits, &refs, |_| true)?;
            self.runs.truncate(from);
            self.runs.push(m);
        }
        Ok(())
    }

    /// Merge every run into one, keeping the pairs whose slot `keep`
    /// accepts; with `all_kept` (every slot accepted), a band of one run
    /// is left as it is.
    pub fn compact(&mut self, keep: impl Fn(u32) -> bool, all_kept: bool) -> Result<()> {
        if self.runs.len() <= 1 && all_kept {
            return Ok(());
        }
        let refs: Vec<&BandTable> = self.runs.iter().collect();
        let t = BandTable::merge(self.key_bits, &refs, keep)?;
        self.runs.clear();
        if !t.is_empty() {
            self.runs.push(t);
        }
        Ok(())
    }

    /// The band as one table, for saving: its only run, or a merge.
    pub fn whole(&mut self) -> Result<&BandTable> {
        self.compact(|_| true, true)?;
        if self.runs.is_empty() {
            self.runs.push(BandTable::empty(self.key_bits)?);
        }
        // One run now, after the merge or the empty table just added.
        Ok(&self.runs[0])
    }

    /// Bytes of memory the band's tables hold (mapped ones not counted).
    pub fn heap_bytes(&self) -> usize {
        self.runs.iter().map(BandTable::heap_bytes).sum()
    }

    /// Append the slots of `key` to `out`, run by run.
    #[inline]
    pub fn get_into(&self, key: u64, out: &mut Vec<u32>) {
        for r in &self.runs {
            r.get_into(key, out);
        }
    }

    #[inline]
    pub fn prefetch_dir(&self, key: u64) {
        for r in &self.runs {
            r.prefetch_dir(key);
        }
    }

    #[inline]
    pub fn prefetch_pairs(&self, key: u64) {
        for r in &self.runs {
            r.prefetch_pairs(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(b: &Band, key: u64) -> Vec<u32> {
        let mut out = Vec::new();
        b.get_into(key, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn runs_stay_few_and_lookups_see_every_one() {
        let mut b = Band::new(16);
        for slot in 0..1000u32 {
            // Keys 0..7 over and over: each key's slots spread over runs.
            b.add(&[(u64::from(slot % 8), slot)]).expect("add");
            assert!(b.runs().len() <= 11, "{} runs", b.runs().len());
        }
        assert_eq!(b.runs().iter().map(BandTable::len).sum::<u64>(), 1000);
        let want: Vec<u32> = (0..1000).filter(|s| s % 8 == 3).collect();
        assert_eq!(get(&b, 3), want);
        b.compact(|s| s % 2 == 1, false).expect("compact");
        assert_eq!(b.runs().len(), 1);
        let odd: Vec<u32> = want.into_iter().filter(|s| s % 2 == 1).collect();
        assert_eq!(get(&b, 3), odd);
        b.compact(|_| false, false).expect("compact");
        assert!(b.runs().is_empty());
        assert_eq!(b.whole().expect("whole").len(), 0);
    }

    #[test]
    fn one_large_add_is_one_run() {
        let mut b = Band::new(32);
        let pairs: Vec<(u64, u32)> = (0..10_000u32).map(|s| (u64::from(s) * 7919, s)).collect();
        b.add(&pairs).expect("add");
        b.add(&[]).expect("add nothing");
        assert_eq!(b.runs().len(), 1);
        assert_eq!(get(&b, 7919 * 5), [5]);
    }

    #[test]
    fn settling_pushed_runs_halves_each_run_and_keeps_every_pair() {
        let mut b = Band::new(16);
        let mut slot = 0u32;
        for round in 0..20u32 {
            // Runs of uneven sizes pushed without merging, then settled.
            for len in [1u32, 7, 3, 40, 2] {
                let pairs: Vec<(u64, u32)> = (slot..slot + len * (round % 3 + 1))
                    .map(|s| (u64::from(s % 5), s))
                    .collect();
                slot += pairs.len() as u32;
                b.push(&pairs).expect("push");
            }
            b.settle().expect("settle");
            for w in b.runs().windows(2) {
                assert!(
                    w[1].len() * 2 < w[0].len(),
                    "{} after {}",
                    w[1].len(),
                    w[0].len()
                );
            }
        }
        assert_eq!(
            b.runs().iter().map(BandTable::len).sum::<u64>(),
            u64::from(slot)
        );
        let want: Vec<u32> = (0..slot).filter(|s| s % 5 == 2).collect();
        assert_eq!(get(&b, 2), want);
    }
}
