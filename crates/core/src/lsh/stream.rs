//! Streaming near-duplicate detection: each row of a batch is searched
//! against the index and the batch's earlier rows, then the batch is
//! inserted. Earlier rows are matched by sorting the batch's own band
//! hashes, since they are not in the tables yet.

use super::index::{band_hashes, on, LshIndex, Verify, STEP};
use super::search::Batch;
use crate::error::Result;
use rayon::prelude::*;

impl LshIndex {
    /// For each row, the documents it matches among everything inserted
    /// before it (earlier rows of this batch included); then insert the
    /// rows. The streaming form of near-duplicate detection.
    pub fn insert_and_query_many(
        &mut self,
        ids: &[u64],
        sigs: &[u32],
        verify: Verify,
    ) -> Result<(Vec<u64>, Vec<u64>)> {
        self.insert_and_query_many_in(None, ids, sigs, verify)
    }

    /// [`insert_and_query_many`](Self::insert_and_query_many) with the
    /// hashing and the search on `pool` (rayon's global pool for `None`)
    /// and the band tables changed on the calling thread, as
    /// [`insert_many_in`](Self::insert_many_in) does.
    pub fn insert_and_query_many_in(
        &mut self,
        pool: Option<&rayon::ThreadPool>,
        ids: &[u64],
        sigs: &[u32],
        verify: Verify,
    ) -> Result<(Vec<u64>, Vec<u64>)> {
        let n = self.rows_of(sigs)?;
        crate::intmap::map::same_len(ids.len(), n)?;
        self.check_verify(verify)?;
        let mut offsets = vec![0u64];
        let mut out = Vec::new();
        let np = self.cfg.num_perm;
        for (id_step, sig_step) in ids.chunks(STEP).zip(sigs.chunks(STEP * np)) {
            let (hashes, counts, found) = on(pool, || self.search_step(id_step, sig_step, verify))?;
            self.insert_hashed(id_step, sig_step, &hashes, true)?;
            for c in counts {
                offsets.push(offsets.last().copied().unwrap_or(0) + c);
            }
            out.extend_from_slice(&found);
        }
        Ok((offsets, out))
    }

    /// One step of [`insert_and_query_many`](Self::insert_and_query_many)
    /// before its rows are inserted: their band hashes, and each row's
    /// matches among the index and the step's earlier rows (counts, ids).
    fn search_step(
        &self,
        id_step: &[u64],
        sig_step: &[u32],
        verify: Verify,
    ) -> Result<(Vec<u64>, Vec<u64>, Vec<u64>)> {
        let hashes = band_hashes(&self.cfg, sig_step);
        // In-batch matches as CSR by the later row; pairs come sorted.
        let pairs = self.batch_pairs(&hashes);
        let mut starts = vec![0usize; id_step.len() + 1];
        for &(later, _) in &pairs {
            starts[later as usize + 1] += 1;
        }
        for i in 0..id_step.len() {
            starts[i + 1] += starts[i];
        }
        let first = self.slots as u32;
        let earlier: Vec<u32> = pairs.iter().map(|&(_, e)| first + e).collect();
        let batch = Batch {
            starts: &starts,
            slots: &earlier,
            first,
            ids: id_step,
            sigs: sig_step,
        };
        // Searched before inserting, so rows find only earlier rows.
        let (counts, found) = self.search(sig_step, Some(&hashes), Some(batch), verify)?;
        Ok((hashes, counts, found))
    }

    /// Pairs (later row, earlier row) of a batch that share a band, as the
    /// tables would match them (on the kept bits of the band hash).
    fn batch_pairs(&self, hashes: &[u64]) -> Vec<(u32, u32)> {
        let bands = self.cfg.bands;
        let n = hashes.len() / bands;
        let drop = 64 - self.cfg.band_bits;
        let mut pairs: Vec<(u32, u32)> = (0..bands)
            .into_par_iter()
            .flat_map_iter(|j| {
                let mut order: Vec<(u64, u32)> = (0..n)
                    .map(|i| {
                        (
                            hashes[i * bands + j].checked_shr(drop).unwrap_or(0),
                            i as u32,
                        )
                    })
                    .collect();
                order.sort_unstable();
                let mut found = Vec::new();
                let mut start = 0;
                for k in 1..=order.len() {
                    if k == order.len() || order[k].0 != order[start].0 {
                        for a in start..k {
                            for b in start..a {
                                found.push((order[a].1, order[b].1));
                            }
                        }
                        start = k;
                    }
                }
                found
            })
            .collect();
        pairs.par_sort_unstable();
        pairs.dedup();
        pairs
    }
}
