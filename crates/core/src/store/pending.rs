//! Writes not yet in the log, and how they become a block.
//!
//! `put` only stages the key and value here (with a small table so the
//! writer reads its own unflushed writes); it does not touch the index.
//! When the buffer is flushed, each staged write is resolved against the
//! index once (probes requested from memory a window ahead), encoded with
//! the location of the version it replaces, and the whole block is written.
//! Only after that are the index slots set, at the positions the probe
//! found: slots of the shared index only ever point at records already in a
//! segment file, because readers in other processes follow them.

use crate::hash::KeyHash;
use crate::index::ProbeAt;
use crate::record::{BlockHeader, Loc, NewRecord, BLOCK_HEADER};
use hashbrown::HashTable;

/// One staged write.
#[derive(Clone, Copy)]
pub struct Staged {
    pub hash: KeyHash,
    /// Offset of the key in the staging buffer; the value follows it.
    off: u32,
    klen: u32,
    /// `None` for a delete.
    vlen: Option<u32>,
    /// An earlier staged write of the same key in this buffer.
    earlier: Option<u32>,
}

/// What a staged write resolved to at flush time.
#[derive(Clone, Copy)]
pub struct Resolved {
    pub loc: Loc,
    pub len: u32,
    pub prev: Option<Loc>,
    /// Where the key's slot is (or will go), from the probe; `None` when an
    /// earlier write of the same key in the block owns the slot.
    pub probe: Option<ProbeAt>,
}

#[derive(Default)]
pub struct Pending {
    staging: Vec<u8>,
    staged: Vec<Staged>,
    /// Latest staged write per key.
    table: HashTable<u32>,
    /// The block being encoded at flush: header space, then records; when
    /// a block is written in pieces, the part not yet handed off.
    pub block: Vec<u8>,
    /// Bytes of the block already handed off before `block`.
    pub handed_off: usize,
    /// Piece buffers kept between flushes (see `stream.rs`).
    pub spare: Vec<Vec<u8>>,
    pub resolved: Vec<Resolved>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.staged.is_empty()
    }

    pub fn len(&self) -> usize {
        self.staged.len()
    }

    /// Bytes staged (a bound on the block's size, less framing).
    pub fn staged_bytes(&self) -> usize {
        self.staging.len()
    }

    /// Whether one more write of `item` bytes (key plus value) keeps the
    /// block's payload within `limit`, counting each record's framing at
    /// its largest.
    pub fn fits(&self, item: usize, limit: usize) -> bool {
        self.staged_bytes() + (self.len() + 1) * super::generation::MAX_RECORD_OVERHEAD + item
            <= limit
    }

    /// Bytes of anonymous memory held.
    pub fn resident(&self) -> usize {
        self.staging.capacity()
            + self.block.capacity()
            + self.spare.iter().map(Vec::capacity).sum::<usize>()
            + self.staged.capacity() * std::mem::size_of::<Staged>()
            + self.resolved.capacity() * std::mem::size_of::<Resolved>()
            + self.table.capacity() * 5
    }

    pub fn staged(&self) -> &[Staged] {
        &self.staged
    }

    pub fn key(&self, s: &Staged) -> &[u8] {
        &self.staging[s.off as usize..(s.off + s.klen) as usize]
    }

    /// The staged value (`None` for a delete).
    pub fn value(&self, s: &Staged) -> Option<&[u8]> {
        let start = (s.off + s.klen) as usize;
        s.vlen.map(|n| &self.staging[start..start + n as usize])
    }

    pub fn earlier(&self, s: &Staged) -> Option<usize> {
        s.earlier.map(|i| i as usize)
    }

    /// The latest staged write of `key`.
    pub fn find(&self, hash: KeyHash, key: &[u8]) -> Option<&Staged> {
        if self.staged.is_empty() {
            return None;
        }
        self.table
            .find(hash.0, |&i| {
                let s = &self.staged[i as usize];
                s.hash == hash && self.key(s) == key
            })
            .map(|&i| &self.staged[i as usize])
    }

    /// Stage a put (`Some(value)`) or a delete (`None`).
    pub fn stage(&mut self, hash: KeyHash, key: &[u8], value: Option<&[u8]>) {
        let off = self.staging.len() as u32;
        self.staging.extend_from_slice(key);
        if let Some(v) = value {
            self.staging.extend_from_slice(v);
        }
        let idx = self.staged.len() as u32;
        let (staged, staging) = (&self.staged, &self.staging);
        let same_key = |&i: &u32| {
            let s = &staged[i as usize];
            s.hash == hash && &staging[s.off as usize..(s.off + s.klen) as usize] == key
        };
        let earlier = match self.table.find_mut(hash.0, same_key) {
            Some(slot) => Some(std::mem::replace(slot, idx)),
            None => {
                self.table
                    .insert_unique(hash.0, idx, |&i| staged[i as usize].hash.0);
                None
            }
        };
        self.staged.push(Staged {
            hash,
            off,
            klen: key.len() as u32,
            vlen: value.map(|v| v.len() as u32),
            earlier,
        });
    }

    /// Start encoding the block that will be written at `at`.
    pub fn begin_block(&mut self) {
        self.block.clear();
        self.block.resize(BLOCK_HEADER, 0);
        self.handed_off = 0;
        self.resolved.clear();
        self.resolved.reserve(self.staged.len());
    }

    /// Encode staged write `i` with `prev`; `at` is where the block goes.
    pub fn encode(
        &mut self,
        i: usize,
        at: Loc,
        prev: Option<Loc>,
        probe: Option<ProbeAt>,
    ) -> Resolved {
        let s = self.staged[i];
        let off = self.handed_off + self.block.len();
        let key = &self.staging[s.off as usize..(s.off + s.klen) as usize];
        let start = (s.off + s.klen) as usize;
        let value = s.vlen.map(|n| &self.staging[start..start + n as usize]);
        let len = NewRecord { key, value, prev }.encode(&mut self.block) as u32;
        let r = Resolved {
            loc: at + off as u64,
            len,
            prev,
            probe,
        };
        self.resolved.push(r);
        r
    }

    /// Seal a block encoded whole: fill in its header; returns the bytes
    /// to write.
    pub fn seal(&mut self, seq: u64, flags: u32) -> &[u8] {
        debug_assert_eq!(self.handed_off, 0);
        if self.block.len() < BLOCK_HEADER {
            self.block.resize(BLOCK_HEADER, 0);
        }
        let payload_len = (self.block.len() - BLOCK_HEADER) as u32;
        let crc = BlockHeader::compute_crc(payload_len, seq, flags, &self.block[BLOCK_HEADER..]);
        BlockHeader {
            payload_len,
            seq,
            flags,
            crc,
        }
        .encode(&mut self.block[..BLOCK_HEADER]);
        &self.block
    }

    /// Forget everything staged (after a flush, or for a rollback).
    pub fn clear(&mut self) {
        self.staging.clear();
        self.staged.clear();
        self.table.clear();
        self.resolved.clear();
        self.block.clear();
        self.handed_off = 0;
        // Give back memory after a large batch, keep it after small ones.
        if self.staging.capacity() > 16 << 20 {
            self.staging.shrink_to(1 << 20);
            self.block.shrink_to(1 << 20);
            self.spare.clear();
            self.staged.shrink_to(1 << 14);
            self.resolved.shrink_to(1 << 14);
            self.table.shrink_to(1 << 14, |_| 0);
        }
    }
}
