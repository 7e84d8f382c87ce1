//! Walking the blocks of a log in order, checking each one.

use crate::error::{Error, Result};
use crate::log::{Log, SEGMENT_HEADER};
use crate::record::{BlockHeader, Loc, RecordRef, BLOCK_HEADER};

/// Why a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte of every segment was a valid block.
    Clean,
    /// The bytes at `at` are not a valid next block (a torn or damaged tail).
    Invalid { at: Loc, reason: String },
}

/// One valid block met by [`scan_blocks`].
pub struct Block<'a> {
    /// Location of the block header.
    pub at: Loc,
    pub header: BlockHeader,
    pub payload: &'a [u8],
}

impl Block<'_> {
    /// Location of the first record.
    pub fn payload_loc(&self) -> Loc {
        self.at + BLOCK_HEADER as u64
    }

    /// The records of the block with their locations.
    pub fn records(&self, log: &Log) -> Result<Vec<(Loc, RecordRef<'_>)>> {
        let mut out = Vec::new();
        let mut off = 0usize;
        while off < self.payload.len() {
            let loc = self.payload_loc() + off as u64;
            let (seg, seg_off) = log.split(loc);
            let path = log
                .segments()
                .get(seg)
                .map(|s| s.path.clone())
                .unwrap_or_default();
            let r = RecordRef::decode(&self.payload[off..], &path, seg_off)?;
            off += r.len;
            out.push((loc, r));
        }
        Ok(out)
    }
}

/// Call `f` on each valid block from the start of the log, in order,
/// stopping at the first invalid one. `first_seq` is the sequence number the
/// first block must carry (`None` accepts any); later blocks must follow it
/// by one. Returns the location just past the last valid block.
pub fn scan_blocks(
    log: &Log,
    first_seq: Option<u64>,
    mut f: impl FnMut(&Block<'_>) -> Result<()>,
) -> Result<(Loc, ScanEnd)> {
    let mut expect = first_seq;
    let mut end = log.loc(0, SEGMENT_HEADER);
    for (si, seg) in log.segments().iter().enumerate() {
        let bytes = seg.bytes();
        let mut pos = SEGMENT_HEADER as usize;
        if si > 0 {
            end = log.loc(si, SEGMENT_HEADER);
        }
        while pos < bytes.len() {
            let at = log.loc(si, pos as u64);
            let invalid = |reason: &str| {
                Ok((
                    at,
                    ScanEnd::Invalid {
                        at,
                        reason: reason.into(),
                    },
                ))
            };
            let Some(h) = BlockHeader::decode(&bytes[pos..]) else {
                return invalid("no block header");
            };
            let start = pos + BLOCK_HEADER;
            let Some(payload) = bytes.get(start..start + h.payload_len as usize) else {
                return invalid("block runs past the end of the segment");
            };
            if BlockHeader::compute_crc(h.payload_len, h.seq, h.flags, payload) != h.crc {
                return invalid("block checksum mismatch");
            }
            if expect.is_some_and(|e| e != h.seq) {
                return invalid("block out of sequence");
            }
            expect = Some(h.seq + 1);
            f(&Block {
                at,
                header: h,
                payload,
            })?;
            pos = start + payload.len();
            end = log.loc(si, pos as u64);
        }
    }
    Ok((end, ScanEnd::Clean))
}

/// Turn an invalid block inside committed data into an error.
pub fn require_clean_before(log: &Log, end: &ScanEnd, committed_end: Loc) -> Result<()> {
    if let ScanEnd::Invalid { at, reason } = end {
        if *at < committed_end {
            let (seg, off) = log.split(*at);
            let path = log
                .segments()
                .get(seg)
                .map(|s| s.path.clone())
                .unwrap_or_default();
            return Err(Error::corrupt(
                &path,
                off,
                format!("committed block is damaged: {reason}"),
            ));
        }
    }
    Ok(())
}

/// The valid block whose header is at `at`.
pub fn block_at(log: &Log, at: Loc) -> Result<Block<'_>> {
    let (seg, off) = log.split(at);
    let segment = log
        .segments()
        .get(seg)
        .ok_or_else(|| Error::corrupt(log.dir(), at, "block in a segment that does not exist"))?;
    let bytes = segment.bytes();
    let bad = |why: &str| Error::corrupt(&segment.path, off, format!("bad block: {why}"));
    let h = BlockHeader::decode(bytes.get(off as usize..).unwrap_or(&[]))
        .ok_or_else(|| bad("no header"))?;
    let start = off as usize + BLOCK_HEADER;
    let payload = bytes
        .get(start..start + h.payload_len as usize)
        .ok_or_else(|| bad("runs past the segment"))?;
    if BlockHeader::compute_crc(h.payload_len, h.seq, h.flags, payload) != h.crc {
        return Err(bad("checksum mismatch"));
    }
    Ok(Block {
        at,
        header: h,
        payload,
    })
}
