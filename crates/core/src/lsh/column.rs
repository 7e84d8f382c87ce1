//! Fixed-width rows (document ids, signatures) that may start in a mapped
//! file and grow in memory: a reopened index reads its rows from the page
//! cache, shared by every process, and appends after them.

use memmap2::Mmap;
use std::sync::Arc;

#[derive(Default)]
pub(crate) struct Column {
    width: usize,
    /// Rows saved earlier, mapped from a file (whole file = rows).
    base: Option<Arc<Mmap>>,
    base_rows: u64,
    /// Rows added since.
    tail: Vec<u8>,
}

impl Column {
    pub fn new(width: usize) -> Self {
        Column {
            width,
            ..Default::default()
        }
    }

    /// Rows of `width` bytes over a mapped file (its length was checked).
    pub fn mapped(width: usize, map: Arc<Mmap>) -> Self {
        let base_rows = (map.len() / width.max(1)) as u64;
        Column {
            width,
            base: Some(map),
            base_rows,
            tail: Vec::new(),
        }
    }

    pub fn row(&self, i: u64) -> &[u8] {
        let w = self.width;
        match &self.base {
            Some(m) if i < self.base_rows => &m[i as usize * w..(i as usize + 1) * w],
            _ => {
                let j = (i - self.base_rows) as usize;
                &self.tail[j * w..(j + 1) * w]
            }
        }
    }

    pub fn push_u32s(&mut self, row: &[u32]) {
        self.tail.extend(row.iter().flat_map(|v| v.to_le_bytes()));
    }

    pub fn push_u64(&mut self, v: u64) {
        self.tail.extend_from_slice(&v.to_le_bytes());
    }

    pub fn extend_from(&mut self, other: &Column) {
        if let Some(m) = &other.base {
            self.tail.extend_from_slice(&m[..]);
        }
        self.tail.extend_from_slice(&other.tail);
    }

    /// The bytes of every row, in two pieces (mapped, then in memory).
    pub fn pieces(&self) -> [&[u8]; 2] {
        [self.base.as_deref().map_or(&[][..], |m| &m[..]), &self.tail]
    }

    pub fn heap_bytes(&self) -> usize {
        self.tail.capacity()
    }

    pub fn mapped_bytes(&self) -> usize {
        self.base.as_deref().map_or(0, |m| m.len())
    }
}
