//! Making band tables: from pairs in any order (counted into buckets,
//! then each bucket sorted), and by merging tables in one streaming pass.

use super::{BandTable, Buf, Pairs, Shape};
use crate::error::{Error, Result};

impl BandTable {
    /// A table without pairs, for keys of `key_bits` bits.
    pub fn empty(key_bits: u32) -> Result<Self> {
        Self::build(&[], key_bits)
    }

    /// The table of `pairs` (key, slot), whose keys have `key_bits` bits
    /// (1 to 64), in any order.
    ///
    /// ```
    /// use vastdict_core::lsh::BandTable;
    /// let t = BandTable::build(&[(7u64, 5u32), (3, 2), (7, 1)], 32).unwrap();
    /// let mut out = Vec::new();
    /// t.get_into(7, &mut out);
    /// assert_eq!(out, [1, 5]);
    /// ```
    pub fn build(pairs: &[(u64, u32)], key_bits: u32) -> Result<Self> {
        if !(1..=64).contains(&key_bits) {
            return Err(Error::Invalid(format!(
                "a band table's keys have 1 to 64 bits, not {key_bits}"
            )));
        }
        check_len(pairs.len() as u64)?;
        if key_bits < 64 && pairs.iter().any(|&(k, _)| k >> key_bits != 0) {
            return Err(Error::Invalid(format!(
                "a key has more than {key_bits} bits"
            )));
        }
        let top = pairs.iter().fold(0u32, |a, &(_, s)| a | s);
        let shape = Shape::of(pairs.len() as u64, key_bits, top);
        let mut w = Writer::new(shape);
        for (k, s) in by_bucket(pairs, shape) {
            w.push(k, s);
        }
        Ok(w.finish())
    }

    /// The pairs of `tables` (keys of `key_bits` bits) whose slot `keep`
    /// accepts, in one table. Reads each table twice (to count, then to
    /// write) and needs no memory besides the new table.
    ///
    /// ```
    /// use vastdict_core::lsh::BandTable;
    /// let a = BandTable::build(&[(7, 1), (3, 2)], 16).unwrap();
    /// let b = BandTable::build(&[(7, 4), (9, 5)], 16).unwrap();
    /// let m = BandTable::merge(16, &[&a, &b], |s| s != 2).unwrap();
    /// assert_eq!(m.pairs().collect::<Vec<_>>(), [(7, 1), (7, 4), (9, 5)]);
    /// ```
    pub fn merge(key_bits: u32, tables: &[&BandTable], keep: impl Fn(u32) -> bool) -> Result<Self> {
        if let Some(t) = tables.iter().find(|t| t.shape.key_bits != key_bits) {
            return Err(Error::Invalid(format!(
                "cannot merge a table of {}-bit keys into one of {key_bits}-bit keys",
                t.shape.key_bits
            )));
        }
        let (mut len, mut top) = (0u64, 0u32);
        for (_, s) in Merged::new(tables).filter(|&(_, s)| keep(s)) {
            len += 1;
            top |= s;
        }
        check_len(len)?;
        let mut w = Writer::new(Shape::of(len, key_bits, top));
        for (k, s) in Merged::new(tables).filter(|&(_, s)| keep(s)) {
            w.push(k, s);
        }
        Ok(w.finish())
    }
}

fn check_len(len: u64) -> Result<()> {
    if len >= u64::from(u32::MAX) {
        return Err(Error::Invalid(format!(
            "a band table holds at most 2^32 - 2 pairs, not {len}"
        )));
    }
    Ok(())
}

/// `pairs` in (key, slot) order: counted into their buckets, then each
/// bucket (a few pairs, as keys are hashes) sorted on its own.
fn by_bucket(pairs: &[(u64, u32)], shape: Shape) -> Vec<(u64, u32)> {
    let mut starts = vec![0usize; shape.dir_entries()];
    for &(k, _) in pairs {
        starts[shape.bucket_of(k) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut next = starts.clone();
    let mut out = vec![(0u64, 0u32); pairs.len()];
    for &p in pairs {
        let b = shape.bucket_of(p.0);
        out[next[b]] = p;
        next[b] += 1;
    }
    for w in starts.windows(2) {
        out[w[0]..w[1]].sort_unstable();
    }
    out
}

/// Writes a table's pairs in (key, slot) order, filling the directory as
/// buckets pass.
struct Writer {
    t: BandTable,
    at: u64,
    /// Directory entries written so far.
    dir_done: usize,
}

impl Writer {
    fn new(shape: Shape) -> Self {
        Writer {
            t: BandTable::with_buf(shape, Buf::Owned(vec![0u8; shape.size()])),
            at: 0,
            dir_done: 0,
        }
    }

    fn set_dir(&mut self, upto: usize) {
        let at = self.at as u32;
        if let Buf::Owned(b) = &mut self.t.buf {
            for d in self.dir_done..upto {
                b[4 * d..4 * d + 4].copy_from_slice(&at.to_le_bytes());
            }
        }
        self.dir_done = self.dir_done.max(upto);
    }

    fn push(&mut self, key: u64, slot: u32) {
        self.set_dir(self.t.shape.bucket_of(key) + 1);
        let v = (self.t.fingerprint(key) << self.t.shape.slot_bits) | u128::from(slot);
        let pos = self.at * u64::from(self.t.width);
        let at = self.t.pairs_at + (pos / 8) as usize;
        if let Buf::Owned(b) = &mut self.t.buf {
            let mut x = [0u8; 16];
            x.copy_from_slice(&b[at..at + 16]);
            let y = u128::from_le_bytes(x) | (v << (pos % 8));
            b[at..at + 16].copy_from_slice(&y.to_le_bytes());
        }
        self.at += 1;
    }

    fn finish(mut self) -> BandTable {
        self.set_dir(self.t.shape.dir_entries());
        self.t
    }
}

/// The pairs of several tables, merged in (key, slot) order.
struct Merged<'a> {
    heads: Vec<Option<(u64, u32)>>,
    rest: Vec<Pairs<'a>>,
}

impl<'a> Merged<'a> {
    fn new(tables: &[&'a BandTable]) -> Self {
        let mut rest: Vec<Pairs<'a>> = tables.iter().map(|t| t.pairs()).collect();
        let heads = rest.iter_mut().map(Iterator::next).collect();
        Merged { heads, rest }
    }
}

impl Iterator for Merged<'_> {
    type Item = (u64, u32);

    fn next(&mut self) -> Option<(u64, u32)> {
        let (j, _) = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(j, h)| h.map(|h| (j, h)))
            .min_by_key(|&(_, h)| h)?;
        let head = self.heads[j];
        self.heads[j] = self.rest[j].next();
        head
    }
}
