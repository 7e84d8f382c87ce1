//! One of a multimap's 256 partitions: an encoded segment, the keys
//! removed from it, and the groups added since it was encoded.

use super::csr::Csr;
use super::file::MappedFile;
use super::segment::{encode, Layout, SegView};
use crate::error::Result;
use crate::intmap::Value;
use memmap2::MmapRaw;
use std::path::Path;
use std::sync::Arc;

/// Where a segment's bytes live.
enum Bytes {
    Owned(Vec<u8>),
    Mapped(Arc<MappedFile>, usize),
    /// In one block of memory with the other segments of its map (see
    /// [`Seg::pack_into`]).
    Packed(Arc<MmapRaw>, usize),
}

pub(crate) struct Seg {
    bytes: Bytes,
    lay: Layout,
}

impl Seg {
    /// `csr` encoded, leaving out each key's low `drop` bits.
    pub fn owned<V: Value>(csr: &Csr<V>, drop: u32) -> Self {
        let (bytes, lay) = encode(csr, drop);
        Seg {
            lay,
            bytes: Bytes::Owned(bytes),
        }
    }

    pub fn mapped(file: Arc<MappedFile>, off: usize, lay: Layout) -> Self {
        Seg {
            bytes: Bytes::Mapped(file, off),
            lay,
        }
    }

    pub fn view(&self) -> SegView<'_> {
        let n = self.lay.len() as usize;
        match &self.bytes {
            Bytes::Mapped(f, off) => {
                SegView::new(&f.map[*off..*off + n], self.lay, &f.path, *off as u64, true)
            }
            _ => SegView::new(self.bytes(), self.lay, Path::new("(in memory)"), 0, false),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        let n = self.lay.len() as usize;
        match &self.bytes {
            Bytes::Owned(b) => b,
            Bytes::Mapped(f, off) => &f.map[*off..*off + n],
            // SAFETY: `pack_into` wrote this range before the segment
            // switched to it, and nothing writes it again; the Arc keeps
            // the block mapped.
            Bytes::Packed(b, off) => unsafe { std::slice::from_raw_parts(b.as_ptr().add(*off), n) },
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match &self.bytes {
            Bytes::Owned(b) => b.capacity(),
            Bytes::Mapped(..) => 0,
            Bytes::Packed(..) => self.lay.len() as usize,
        }
    }

    /// Whether the bytes come from a saved file (and stay there).
    pub fn is_mapped(&self) -> bool {
        matches!(self.bytes, Bytes::Mapped(..))
    }

    /// Whether the bytes are a buffer of their own.
    pub fn is_owned(&self) -> bool {
        matches!(self.bytes, Bytes::Owned(..))
    }

    /// Copy the bytes to `off` in `block` and read them there from now on,
    /// dropping the buffer they were in.
    ///
    /// # Safety
    /// `block` must hold `off + self.bytes().len()` bytes, and no other
    /// segment may be given a range of it that overlaps this one.
    pub unsafe fn pack_into(&mut self, block: &Arc<MmapRaw>, off: usize) {
        let b = self.bytes();
        debug_assert!(off + b.len() <= block.len());
        // SAFETY: in bounds and ours alone (the caller's promise); no
        // segment reads the range before it is switched to it below.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), block.as_mut_ptr().add(off), b.len()) };
        self.bytes = Bytes::Packed(Arc::clone(block), off);
    }
}

pub(crate) struct Part<V> {
    pub seg: Seg,
    /// Sorted keys whose segment values were removed.
    hidden: Vec<u64>,
    hidden_values: u64,
    /// Groups added since the segment was encoded (after its values).
    delta: Csr<V>,
    /// The top 8 bits of every key here.
    prefix: u64,
}

/// The bit pattern of a value, for set semantics (f64 included).
fn bits_of<V: Value>(v: V) -> u64 {
    let mut b = [0u8; 8];
    v.write_le(&mut b);
    u64::from_le_bytes(b)
}

impl<V: Value> Part<V> {
    pub fn new(seg: Seg, prefix: u64) -> Self {
        Part {
            seg,
            hidden: Vec::new(),
            hidden_values: 0,
            delta: Csr::new(),
            prefix,
        }
    }

    pub fn values(&self) -> u64 {
        self.seg.lay.values - self.hidden_values + self.delta.values.len() as u64
    }

    pub fn is_settled(&self) -> bool {
        self.hidden.is_empty() && self.delta.is_empty()
    }

    pub fn heap_bytes(&self) -> usize {
        self.seg.heap_bytes() + self.hidden.capacity() * 8 + self.delta.heap_bytes()
    }

    /// Keys here (a lookup per added key not yet folded into the segment).
    pub fn keys(&self) -> Result<u64> {
        let mut n = self.seg.lay.keys - self.hidden.len() as u64;
        for &m in &self.delta.keys {
            if self.in_segment(&self.seg.view(), m)?.is_none() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The segment's value range for `m`, unless removed.
    fn in_segment(&self, seg: &SegView<'_>, m: u64) -> Result<Option<(u64, u64)>> {
        if !self.hidden.is_empty() && self.hidden.binary_search(&m).is_ok() {
            return Ok(None);
        }
        seg.find(m)
    }

    /// Append the values of `m` to `out`; whether it is present.
    pub fn get_into(&self, m: u64, out: &mut Vec<V>) -> Result<bool> {
        let mut found = false;
        let seg = self.seg.view();
        if let Some((s, e)) = self.in_segment(&seg, m)? {
            seg.values_into(s, e, out)?;
            found = true;
        }
        if let Some(i) = self.delta.find(m) {
            out.extend_from_slice(self.delta.group(i));
            found = true;
        }
        Ok(found)
    }

    pub fn count(&self, m: u64) -> Result<u64> {
        let seg = self
            .in_segment(&self.seg.view(), m)?
            .map_or(0, |(s, e)| e - s);
        Ok(seg
            + self
                .delta
                .find(m)
                .map_or(0, |i| self.delta.group(i).len() as u64))
    }

    /// Add `batch` (sorted by key, insertion order kept within a key);
    /// with `unique`, values a key already has are skipped. Returns how
    /// many values were added.
    pub fn add(&mut self, batch: &[(u64, V)], unique: bool) -> Result<u64> {
        if batch.is_empty() {
            return Ok(0);
        }
        let old = std::mem::take(&mut self.delta);
        let mut out = Csr::new();
        out.keys.reserve(old.len() + batch.len());
        out.values.reserve(old.values.len() + batch.len());
        let mut added = 0u64;
        let mut i = 0;
        let mut existing = Vec::new();
        let mut seen = hashbrown::HashSet::new();
        for group in batch.chunk_by(|a, b| a.0 == b.0) {
            let m = group[0].0;
            while i < old.len() && old.keys[i] < m {
                out.push(old.keys[i], old.group(i));
                i += 1;
            }
            let before = out.values.len();
            if i < old.len() && old.keys[i] == m {
                out.push(m, old.group(i));
                i += 1;
            }
            if unique {
                existing.clear();
                if let Some((s, e)) = self.in_segment(&self.seg.view(), m)? {
                    self.seg.view().values_into(s, e, &mut existing)?;
                }
                existing.extend_from_slice(&out.values[before..]);
                seen.clear();
                seen.extend(existing.iter().map(|&v| bits_of(v)));
                for &(_, v) in group {
                    if seen.insert(bits_of(v)) {
                        out.extend_last(m, &[v]);
                        added += 1;
                    }
                }
            } else {
                for &(_, v) in group {
                    out.extend_last(m, &[v]);
                }
                added += group.len() as u64;
            }
        }
        while i < old.len() {
            out.push(old.keys[i], old.group(i));
            i += 1;
        }
        self.delta = out;
        self.fold_if_large()?;
        Ok(added)
    }

    /// Remove every value of the sorted, distinct `keys`; returns how many
    /// of them were present.
    pub fn remove(&mut self, keys: &[u64]) -> Result<u64> {
        let mut gone = 0;
        let mut hide = Vec::new();
        let mut drop = Vec::new();
        for &m in keys {
            let seg = self.in_segment(&self.seg.view(), m)?;
            let delta = self.delta.find(m);
            if let Some((s, e)) = seg {
                hide.push(m);
                self.hidden_values += e - s;
            }
            if let Some(i) = delta {
                drop.push(i);
            }
            gone += u64::from(seg.is_some() || delta.is_some());
        }
        if !hide.is_empty() {
            self.hidden.extend(hide);
            self.hidden.sort_unstable();
        }
        if !drop.is_empty() {
            let old = std::mem::take(&mut self.delta);
            let mut drop = drop.into_iter().peekable();
            for i in 0..old.len() {
                if drop.next_if_eq(&i).is_none() {
                    self.delta.push(old.keys[i], old.group(i));
                }
            }
        }
        self.fold_if_large()?;
        Ok(gone)
    }

    /// Every group, in key order: the segment's (less removed keys) with
    /// later additions appended.
    pub fn groups(&self) -> Result<Csr<V>> {
        if self.delta.is_empty() && self.hidden.is_empty() {
            let mut out = Csr::new();
            self.seg.view().decode_into(self.prefix, &[], &mut out)?;
            return Ok(out);
        }
        let mut base = Csr::new();
        self.seg
            .view()
            .decode_into(self.prefix, &self.hidden, &mut base)?;
        let mut out = Csr::new();
        out.keys.reserve(base.len() + self.delta.len());
        out.values
            .reserve(base.values.len() + self.delta.values.len());
        let (mut i, mut j) = (0, 0);
        while i < base.len() || j < self.delta.len() {
            let (a, b) = (base.keys.get(i), self.delta.keys.get(j));
            match (a, b) {
                (Some(&x), Some(&y)) if x == y => {
                    out.push(x, base.group(i));
                    out.extend_last(x, self.delta.group(j));
                    i += 1;
                    j += 1;
                }
                (Some(&x), Some(&y)) if x < y => {
                    out.push(x, base.group(i));
                    i += 1;
                }
                (Some(&x), None) => {
                    out.push(x, base.group(i));
                    i += 1;
                }
                (_, Some(&y)) => {
                    out.push(y, self.delta.group(j));
                    j += 1;
                }
                (None, None) => break,
            }
        }
        Ok(out)
    }

    /// Encode everything into a new segment.
    pub fn fold(&mut self) -> Result<()> {
        if self.is_settled() {
            return Ok(());
        }
        let all = self.groups()?;
        self.seg = Seg::owned(&all, self.seg.lay.drop());
        self.hidden = Vec::new();
        self.hidden_values = 0;
        self.delta = Csr::new();
        Ok(())
    }

    /// Fold once the changes are an eighth of the segment, so each value
    /// is re-encoded a bounded number of times as the map grows.
    fn fold_if_large(&mut self) -> Result<()> {
        let changes = self.delta.values.len() as u64 + self.hidden.len() as u64;
        if changes > self.seg.lay.values / 8 + 1024 {
            self.fold()?;
        }
        Ok(())
    }

    pub fn prefetch_dir(&self, m: u64) {
        self.seg.view().prefetch_dir(m);
    }

    pub fn prefetch_bucket(&self, m: u64) {
        self.seg.view().prefetch_bucket(m);
    }
}
