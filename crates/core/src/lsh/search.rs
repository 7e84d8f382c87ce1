//! Answering queries: each row's band keys looked up in the band tables
//! with their memory reads issued ahead, the slots found merged, and the
//! live ones verified and turned into ids.

use super::index::{agreement, band_hashes, hash_bands, le_row, LshIndex, Verify};
use crate::error::{Error, Result};
use rayon::prelude::*;

/// Rows per parallel task: enough to keep the prefetch pipeline full.
const ROWS_PER_TASK: usize = 256;
/// How many lookups ahead a band table's directory line, and then the
/// line of pairs it points to, are asked for.
const DIR_AHEAD: usize = 32;
const PAIRS_AHEAD: usize = 16;

/// Buffers a search reuses from one row (and, for single queries, one
/// call) to the next.
#[derive(Default)]
pub(crate) struct Scratch {
    /// A signature as little-endian bytes (band hashing, verification).
    bytes: Vec<u8>,
    hashes: Vec<u64>,
    /// Slots found in the band tables, all bands of all rows.
    found: Vec<u32>,
    /// Where each row's slots end in `found`.
    ends: Vec<usize>,
    /// One row's slots, merged.
    row: Vec<u32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Rows of a batch being inserted: row `i` also matches
/// `slots[starts[i]..starts[i + 1]]`: earlier rows of the batch, by the
/// slots they will get from `first` on; their ids and signatures are
/// `ids` and `sigs`.
#[derive(Clone, Copy)]
pub(crate) struct Batch<'a> {
    pub starts: &'a [usize],
    pub slots: &'a [u32],
    pub first: u32,
    pub ids: &'a [u64],
    pub sigs: &'a [u32],
}

impl LshIndex {
    /// The candidates of one signature, on the calling thread: a single
    /// query is a few microseconds of work, less than handing it to a
    /// thread pool would cost. Its working buffers are the thread's own,
    /// kept from one query to the next, so it allocates only its answer.
    pub fn query(&self, sig: &[u32], verify: Verify) -> Result<Vec<u64>> {
        if sig.len() != self.cfg.num_perm {
            return Err(Error::Invalid(format!(
                "a signature has {} values, not {}",
                self.cfg.num_perm,
                sig.len()
            )));
        }
        self.check_verify(verify)?;
        SCRATCH.with(|cell| {
            let mut guard = cell.try_borrow_mut();
            let mut own = Scratch::default();
            // Only a query made from inside another on this thread (not
            // something this code does) would find the buffers taken.
            let scratch = guard.as_deref_mut().unwrap_or(&mut own);
            let mut hashes = std::mem::take(&mut scratch.hashes);
            hashes.resize(self.cfg.bands, 0);
            hash_bands(&self.cfg, sig, &mut scratch.bytes, &mut hashes);
            let mut ids = Vec::new();
            let done = self.search_rows(
                sig,
                &hashes,
                0,
                None,
                verify,
                scratch,
                &mut Vec::new(),
                &mut ids,
            );
            scratch.hashes = hashes;
            done.map(|()| ids)
        })
    }

    /// Candidates of each row of `sigs` in CSR form: `(offsets, ids)`.
    pub fn query_many(&self, sigs: &[u32], verify: Verify) -> Result<(Vec<u64>, Vec<u64>)> {
        self.rows_of(sigs)?;
        self.check_verify(verify)?;
        let (counts, ids) = self.search(sigs, None, None, verify)?;
        let mut offsets = Vec::with_capacity(counts.len() + 1);
        offsets.push(0);
        let mut at = 0;
        for c in counts {
            at += c;
            offsets.push(at);
        }
        Ok((offsets, ids))
    }

    /// Per row, how many ids it matched, and the ids, on all cores.
    pub(crate) fn search(
        &self,
        sigs: &[u32],
        hashes: Option<&[u64]>,
        batch: Option<Batch<'_>>,
        verify: Verify,
    ) -> Result<(Vec<u64>, Vec<u64>)> {
        let (np, bands) = (self.cfg.num_perm, self.cfg.bands);
        let n = sigs.len() / np;
        let parts: Vec<(Vec<u64>, Vec<u64>)> = (0..n.div_ceil(ROWS_PER_TASK))
            .into_par_iter()
            .map(|t| {
                let (r0, r1) = (t * ROWS_PER_TASK, ((t + 1) * ROWS_PER_TASK).min(n));
                let rows = &sigs[r0 * np..r1 * np];
                let own;
                let hs = match hashes {
                    Some(h) => &h[r0 * bands..r1 * bands],
                    None => {
                        own = band_hashes(&self.cfg, rows);
                        &own[..]
                    }
                };
                let (mut counts, mut ids) = (Vec::with_capacity(r1 - r0), Vec::new());
                let scratch = &mut Scratch::default();
                self.search_rows(rows, hs, r0, batch, verify, scratch, &mut counts, &mut ids)?;
                Ok((counts, ids))
            })
            .collect::<Result<_>>()?;
        let mut counts = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(parts.iter().map(|p| p.1.len()).sum());
        for (c, i) in parts {
            counts.extend_from_slice(&c);
            ids.extend_from_slice(&i);
        }
        Ok((counts, ids))
    }

    /// Look up rows `r0..` (signatures `rows`, band hashes `hashes`) on
    /// this thread, appending each row's count and ids.
    #[allow(clippy::too_many_arguments)]
    fn search_rows(
        &self,
        rows: &[u32],
        hashes: &[u64],
        r0: usize,
        batch: Option<Batch<'_>>,
        verify: Verify,
        scratch: &mut Scratch,
        counts: &mut Vec<u64>,
        ids: &mut Vec<u64>,
    ) -> Result<()> {
        let (np, bands) = (self.cfg.num_perm, self.cfg.bands);
        // Lookup `i` is of band `i % bands`, counted rather than divided,
        // one count per stage of the pipeline.
        let drop = 64 - self.cfg.band_bits;
        let key = |i: usize| hashes[i] >> drop;
        let next = |b: usize| if b + 1 == bands { 0 } else { b + 1 };
        let n = hashes.len();
        let (mut at_dir, mut at_pairs, mut band) = (0, 0, 0);
        for i in 0..DIR_AHEAD.min(n) {
            self.tables[at_dir].prefetch_dir(key(i));
            at_dir = next(at_dir);
        }
        for i in 0..PAIRS_AHEAD.min(n) {
            self.tables[at_pairs].prefetch_pairs(key(i));
            at_pairs = next(at_pairs);
        }
        let Scratch {
            found,
            ends,
            row,
            bytes: query,
            ..
        } = scratch;
        found.clear();
        ends.clear();
        for i in 0..n {
            if i + DIR_AHEAD < n {
                self.tables[at_dir].prefetch_dir(key(i + DIR_AHEAD));
            }
            at_dir = next(at_dir);
            if i + PAIRS_AHEAD < n {
                self.tables[at_pairs].prefetch_pairs(key(i + PAIRS_AHEAD));
            }
            at_pairs = next(at_pairs);
            self.tables[band].get_into(key(i), found);
            band = next(band);
            if band == 0 {
                ends.push(found.len());
            }
        }
        let need = self.needed(verify);
        let limit = batch.map_or(self.slots, |b| u64::from(b.first) + b.ids.len() as u64);
        let mut start = 0;
        for (j, &end) in ends.iter().enumerate() {
            row.clear();
            row.extend_from_slice(&found[start..end]);
            start = end;
            if let Some(b) = batch {
                row.extend_from_slice(&b.slots[b.starts[r0 + j]..b.starts[r0 + j + 1]]);
            }
            row.sort_unstable();
            row.dedup();
            let sig = &rows[j * np..(j + 1) * np];
            if verify != Verify::Raw {
                le_row(sig, query);
            }
            let before = ids.len();
            for &s in row.iter() {
                let slot = u64::from(s);
                // A slot past the index and the batch could come only from
                // a damaged table; the checksums make that all but
                // impossible, and skipping it keeps the reads in range.
                if self.is_dead(slot) || slot >= limit {
                    continue;
                }
                if verify != Verify::Raw {
                    let agree = match batch {
                        Some(b) if s >= b.first => {
                            let at = (s - b.first) as usize * np;
                            let other = &b.sigs[at..at + np];
                            sig.iter().zip(other).filter(|(x, y)| x == y).count()
                        }
                        _ => agreement(query, self.sigs.row(slot)),
                    };
                    if agree < need {
                        continue;
                    }
                }
                ids.push(match batch {
                    Some(b) if s >= b.first => b.ids[(s - b.first) as usize],
                    _ => self.id_of(slot),
                });
            }
            counts.push((ids.len() - before) as u64);
        }
        Ok(())
    }
}
