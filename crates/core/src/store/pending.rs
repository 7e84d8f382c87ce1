//! Writes not yet in the log: records gathered into the next block, with a
//! small hash table so the writer can read its own unflushed writes.
//!
//! Slots of the shared index only ever point at records already written to
//! a segment file (readers in other processes follow them), so a record
//! waits here until its whole block is written, then its slot is set.

use crate::hash::KeyHash;
use crate::record::{BlockHeader, Loc, NewRecord, RecordRef, BLOCK_HEADER};
use hashbrown::HashTable;
use std::path::Path;

/// One record in the pending block.
#[derive(Clone, Copy)]
pub struct Entry {
    pub hash: KeyHash,
    /// Offset of the record in the payload.
    pub off: u32,
    pub len: u32,
    pub prev: Option<Loc>,
    pub tombstone: bool,
}

#[derive(Default)]
pub struct Pending {
    /// Block header space followed by the payload.
    buf: Vec<u8>,
    /// Location the block header will be written at.
    pub at: Loc,
    pub entries: Vec<Entry>,
    /// Latest entry per key.
    table: HashTable<u32>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn payload_len(&self) -> usize {
        self.buf.len().saturating_sub(BLOCK_HEADER)
    }

    /// Bytes of anonymous memory held.
    pub fn resident(&self) -> usize {
        self.buf.capacity()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.table.capacity() * 4
    }

    /// Start a block that will be written at `at`.
    pub fn begin(&mut self, at: Loc) {
        debug_assert!(self.is_empty());
        self.at = at;
        self.buf.clear();
        self.buf.resize(BLOCK_HEADER, 0);
    }

    /// Location a record at payload offset `off` will have.
    pub fn loc_of(&self, off: u32) -> Loc {
        self.at + BLOCK_HEADER as u64 + u64::from(off)
    }

    pub fn record(&self, e: &Entry) -> RecordRef<'_> {
        let start = BLOCK_HEADER + e.off as usize;
        // Encoded by us a moment ago: decoding cannot fail.
        RecordRef::decode(
            &self.buf[start..start + e.len as usize],
            Path::new("<pending>"),
            0,
        )
        .unwrap_or(RecordRef {
            key: &[],
            value: None,
            prev: None,
            len: 0,
        })
    }

    /// The latest pending entry for `key`.
    pub fn find(&self, hash: KeyHash, key: &[u8]) -> Option<Entry> {
        if self.entries.is_empty() {
            return None;
        }
        self.table
            .find(hash.0, |&i| {
                let e = &self.entries[i as usize];
                e.hash == hash && self.record(e).key == key
            })
            .map(|&i| self.entries[i as usize])
    }

    /// Add a record; returns its entry.
    pub fn push(
        &mut self,
        hash: KeyHash,
        key: &[u8],
        value: Option<&[u8]>,
        prev: Option<Loc>,
    ) -> Entry {
        let off = (self.buf.len() - BLOCK_HEADER) as u32;
        let len = NewRecord { key, value, prev }.encode(&mut self.buf) as u32;
        let e = Entry {
            hash,
            off,
            len,
            prev,
            tombstone: value.is_none(),
        };
        let idx = self.entries.len() as u32;
        self.entries.push(e);
        let entries = &self.entries;
        let buf = &self.buf;
        let same_key = |&i: &u32| {
            let o = &entries[i as usize];
            let s = BLOCK_HEADER + o.off as usize;
            o.hash == hash
                && RecordRef::decode(&buf[s..s + o.len as usize], Path::new(""), 0)
                    .is_ok_and(|r| r.key == key)
        };
        match self.table.find_mut(hash.0, same_key) {
            Some(slot) => *slot = idx,
            None => {
                self.table
                    .insert_unique(hash.0, idx, |&i| entries[i as usize].hash.0);
            }
        }
        e
    }

    /// Seal the block: fill in its header; returns the bytes to write.
    pub fn seal(&mut self, seq: u64, flags: u32) -> &[u8] {
        if self.buf.len() < BLOCK_HEADER {
            self.buf.resize(BLOCK_HEADER, 0);
        }
        let payload_len = (self.buf.len() - BLOCK_HEADER) as u32;
        let crc = BlockHeader::compute_crc(payload_len, seq, flags, &self.buf[BLOCK_HEADER..]);
        BlockHeader {
            payload_len,
            seq,
            flags,
            crc,
        }
        .encode(&mut self.buf[..BLOCK_HEADER]);
        &self.buf
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.entries.clear();
        self.table.clear();
        // Give back memory after a large batch, keep it after small ones.
        if self.buf.capacity() > 64 << 20 {
            self.buf.shrink_to(1 << 20);
            self.entries.shrink_to(1 << 14);
            self.table.shrink_to(1 << 14, |_| 0);
        }
    }
}
