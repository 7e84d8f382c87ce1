//! Tables packed into one block of anonymous memory, backed by huge pages
//! where the OS allows. A query reads one or two lines from each of its
//! bands' tables, scattered over megabytes: with 4 KiB pages most of
//! those reads also miss the TLB, and in one block of 2 MiB pages the
//! whole index needs a few TLB entries.

use super::{BandTable, Buf};
use crate::error::{Error, Result};
use memmap2::MmapMut;
use std::sync::Arc;

const HUGE: usize = 2 << 20;
/// Where each table starts: a cache line of its own.
const ALIGN: usize = 64;

/// Copy the tables that have a buffer of their own (not mapped from a
/// file) into one new block, if any is still on the heap; each old
/// buffer is dropped once its table is copied.
pub(crate) fn pack<'a>(tables: impl IntoIterator<Item = &'a mut BandTable>) -> Result<()> {
    let mut tables: Vec<&mut BandTable> = tables
        .into_iter()
        .filter(|t| !matches!(t.buf, Buf::Mapped(..)))
        .collect();
    if !tables.iter().any(|t| matches!(t.buf, Buf::Owned(_))) {
        return Ok(());
    }
    let total: usize = tables
        .iter()
        .map(|t| t.bytes().next_multiple_of(ALIGN))
        .sum();
    // A huge page's worth more than needed, so the tables can start on a
    // huge-page boundary; the slack is never touched, so never resident.
    let mut block = MmapMut::map_anon(total + HUGE).map_err(|source| Error::Io {
        path: "(memory for LSH band tables)".into(),
        source,
    })?;
    let start = block.as_ptr().align_offset(HUGE).min(HUGE);
    #[cfg(target_os = "linux")]
    {
        // Advice for the whole huge pages only: a partial one at the end
        // stays in small pages rather than costing a whole one.
        let whole = total / HUGE * HUGE;
        if whole > 0 {
            let _ = block.advise_range(memmap2::Advice::HugePage, start, whole);
        }
    }
    let mut at = start;
    let mut places = Vec::with_capacity(tables.len());
    for t in &mut tables {
        let bytes = t.buf.get();
        block[at..at + bytes.len()].copy_from_slice(bytes);
        places.push((at, bytes.len()));
        at += bytes.len().next_multiple_of(ALIGN);
        // The old buffer goes now, so the index holds little more than
        // one copy of its tables at any time.
        t.buf = Buf::Owned(Vec::new());
    }
    // Nothing fails from here on, so no table is left without its pairs.
    let block = Arc::new(block);
    for (t, (off, len)) in tables.into_iter().zip(places) {
        t.buf = Buf::Packed(block.clone(), off, len);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookups(t: &BandTable, keys: &[u64]) -> Vec<Vec<u32>> {
        keys.iter()
            .map(|&k| {
                let mut out = Vec::new();
                t.get_into(k, &mut out);
                out
            })
            .collect()
    }

    #[test]
    fn packed_tables_answer_as_before_and_count_as_memory_of_their_own() {
        let mut x = 7u64;
        let mut tables: Vec<BandTable> = [0usize, 1, 3_000, 40_000]
            .into_iter()
            .map(|n| {
                let pairs: Vec<(u64, u32)> = (0..n as u32)
                    .map(|s| {
                        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        (x >> 50, s)
                    })
                    .collect();
                BandTable::build(&pairs, 14).expect("build")
            })
            .collect();
        let keys: Vec<u64> = (0..1u64 << 14).step_by(3).collect();
        let before: Vec<_> = tables.iter().map(|t| lookups(t, &keys)).collect();
        pack(tables.iter_mut()).expect("pack");
        for (t, want) in tables.iter().zip(&before) {
            assert!(matches!(t.buf, Buf::Packed(..)));
            assert_eq!(t.heap_bytes(), t.bytes());
            assert_eq!(&lookups(t, &keys), want);
        }
        // Packing again, with nothing on the heap, leaves the block alone.
        let at = tables[3].as_bytes().as_ptr();
        pack(tables.iter_mut()).expect("pack again");
        assert_eq!(tables[3].as_bytes().as_ptr(), at);
        // A new table beside packed ones: all go to one new block.
        tables.push(BandTable::build(&[(5, 9)], 14).expect("build"));
        pack(tables.iter_mut()).expect("pack with a new table");
        assert_ne!(tables[3].as_bytes().as_ptr(), at);
        assert_eq!(lookups(&tables[3], &keys), before[3]);
        assert_eq!(lookups(&tables[4], &[5]), [vec![9]]);
    }
}
