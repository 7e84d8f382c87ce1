//! A full check of a store against its format.

use super::Store;
use crate::error::{Error, Result};
use crate::index::partition::{slot_loc, slot_tag, Probe, DELETED, EMPTY};
use crate::record::{FLAG_ABORT, FLAG_COMMIT};
use crate::scan::{require_clean_before, scan_blocks};

/// What [`Store::verify`] read.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub blocks: u64,
    pub records: u64,
    pub entries: u64,
    pub log_bytes: u64,
    pub index_bytes: u64,
}

impl Store {
    /// Read every committed block and every index slot, checking
    /// checksums, record framing, that each slot points at a record of a
    /// key with its tag, and that the live keys number what the manifest
    /// says. Raises `Corruption` at the first problem.
    pub fn verify(&self) -> Result<Report> {
        let log = &self.gen.log;
        let index = &self.gen.index;
        let limit = self.limit().min(self.gen.log.end());
        let mut report = Report::default();
        let mut last_commit_end = log.loc(0, crate::log::SEGMENT_HEADER);
        let (_, end) = scan_blocks(log, None, |block| {
            if block.at >= limit {
                return Ok(());
            }
            report.blocks += 1;
            report.records += block.records(log)?.len() as u64;
            if block.header.flags & (FLAG_COMMIT | FLAG_ABORT) != 0 {
                last_commit_end =
                    block.at + (crate::record::BLOCK_HEADER + block.payload.len()) as u64;
            }
            Ok(())
        })?;
        require_clean_before(log, &end, limit)?;
        if self.writer.is_none() && last_commit_end != self.commit.committed_end {
            return Err(Error::corrupt(
                log.dir(),
                last_commit_end,
                "the last commit block does not end where the manifest says",
            ));
        }
        let mut live = 0u64;
        for (pos, part) in index.partitions().iter().enumerate() {
            for i in 0..part.capacity() as usize {
                let s = part.slot(i);
                if s == EMPTY || s == DELETED {
                    continue;
                }
                let loc = slot_loc(s);
                let key = log.with_record(loc, |r| r.key.to_vec())?;
                let h = self.hash(&key);
                if h.tag() != slot_tag(s) || index.partition_of(h).0 != pos {
                    return Err(Error::corrupt(
                        &part.path,
                        (64 + i * 8) as u64,
                        "index slot does not match the key it points at",
                    ));
                }
                // The slot must be where a lookup of its key ends.
                match index.probe(h, |l| Ok(l == loc))?.1 {
                    Probe::Found(..) => {}
                    Probe::Vacant(_) => {
                        return Err(Error::corrupt(
                            &part.path,
                            (64 + i * 8) as u64,
                            "index slot is not reachable by its key",
                        ));
                    }
                }
                if let Some(loc) = self.visible_version(loc)? {
                    if log.record(loc)?.value.is_some() {
                        live += 1;
                    }
                }
            }
        }
        let expected = self
            .writer
            .as_ref()
            .map_or(self.commit.entries, |w| w.counters.entries);
        if self.writer.is_none() && live != expected {
            return Err(Error::corrupt(
                log.dir(),
                0,
                format!("the index holds {live} live keys but the manifest says {expected}"),
            ));
        }
        report.entries = live;
        report.log_bytes = log.bytes_on_disk();
        report.index_bytes = index.bytes_on_disk();
        Ok(report)
    }
}
