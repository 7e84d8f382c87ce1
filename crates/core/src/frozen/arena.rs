//! The builder's in-memory pairs: records `klen varint | vlen varint | key
//! | value` in a list of chunks. Chunks are never reallocated, so adding a
//! parsed chunk costs no copy and growing never moves what is there.

use super::build::encode_pair;
use crate::record::get_varint;

/// Where a record starts: chunk number in the top 24 bits, offset below.
pub type Start = u64;
const OFFSET_BITS: u32 = 40;
/// Capacity of the chunks `push` fills.
const CHUNK: usize = 16 << 20;

/// A buffer for records, backed by huge pages where the system allows:
/// the build reads pairs back in hash order, a random gather over the whole
/// arena, and with 4 KiB pages nearly every read is also a TLB miss.
pub fn record_buffer(capacity: usize) -> Vec<u8> {
    let v: Vec<u8> = Vec::with_capacity(capacity);
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let aligned = start.next_multiple_of(HUGE);
        let end = (start + capacity) & !(HUGE - 1);
        if end > aligned {
            // SAFETY: the range lies inside this Vec's allocation;
            // MADV_HUGEPAGE is advice and changes no contents.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    end - aligned,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    v
}

#[derive(Default)]
pub struct Arena {
    chunks: Vec<Vec<u8>>,
    bytes: u64,
}

impl Arena {
    /// Bytes held (capacity, which is what the process pays for).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.bytes = 0;
    }

    fn start(&self, chunk: usize, offset: usize) -> Start {
        ((chunk as u64) << OFFSET_BITS) | offset as u64
    }

    /// Add one pair; returns where it starts.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Start {
        let need = key.len() + value.len() + 20;
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= need);
        if !fits {
            let c = record_buffer(CHUNK.max(need));
            self.bytes += c.capacity() as u64;
            self.chunks.push(c);
        }
        let i = self.chunks.len() - 1;
        let c = &mut self.chunks[i];
        let at = c.len();
        encode_pair(c, key, value);
        self.start(i, at)
    }

    /// Take a buffer of `count` encoded records as a chunk of its own;
    /// returns their starts, or `None` if the buffer does not hold exactly
    /// `count` well-formed records.
    pub fn append(&mut self, records: Vec<u8>, count: u64) -> Option<Vec<Start>> {
        let i = self.chunks.len();
        let mut starts = Vec::with_capacity(count as usize);
        let mut pos = 0usize;
        for _ in 0..count {
            starts.push(self.start(i, pos));
            let kl = get_varint(&records, &mut pos)? as usize;
            let vl = get_varint(&records, &mut pos)? as usize;
            pos = pos.checked_add(kl)?.checked_add(vl)?;
        }
        if pos != records.len() {
            return None;
        }
        self.bytes += records.capacity() as u64;
        self.chunks.push(records);
        Some(starts)
    }

    /// Start loading the record at `s` into the cache.
    pub fn prefetch(&self, s: Start) {
        if let Some(c) = self.chunks.get((s >> OFFSET_BITS) as usize) {
            let at = (s & ((1 << OFFSET_BITS) - 1)) as usize;
            if let Some(rest) = c.get(at..) {
                crate::prefetch::read(rest.as_ptr());
            }
        }
    }

    /// Key and value of the record at `s` (written by this module, so well
    /// formed).
    pub fn pair(&self, s: Start) -> (&[u8], &[u8]) {
        let c = &self.chunks[(s >> OFFSET_BITS) as usize];
        let mut pos = (s & ((1 << OFFSET_BITS) - 1)) as usize;
        let kl = get_varint(c, &mut pos).unwrap_or(0) as usize;
        let vl = get_varint(c, &mut pos).unwrap_or(0) as usize;
        (&c[pos..pos + kl], &c[pos + kl..pos + kl + vl])
    }
}
