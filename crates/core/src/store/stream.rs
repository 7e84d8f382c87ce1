//! Writing a large block to the log while it is still being encoded.
//!
//! In a bulk load the writer's thread resolved and encoded each 8 MiB block
//! (an index probe per write) and then copied it into the page cache with
//! `pwrite`, one after the other, and the two took about as long as each
//! other. A block of at least [`STREAM_MIN`] bytes is now handed, piece by
//! piece as it is encoded, to a second thread that writes and checksums
//! each piece while the next is encoded. Pieces end on 2 MiB boundaries of
//! the file, so the page cache can still hold them in huge folios.
//!
//! The block's header (its length and checksum) is written last, and the
//! log's end moves past the block only once all of it is in the file: until
//! then the block is not part of the log, exactly as a block whose single
//! `pwrite` failed midway. Index slots are still set only after that
//! (readers in other processes follow them).

use super::generation::{resolve, Counters, Generation};
use super::pending::Pending;
use crate::error::{Error, Result};
use crate::log::Segment;
use crate::record::{BlockHeader, Loc, BLOCK_HEADER};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};

/// Blocks of at least this many bytes (bounded from above) are streamed.
pub const STREAM_MIN: u64 = 4 << 20;

/// Pieces end where the file offset is a multiple of this.
const PIECE: u64 = 2 << 20;

/// Pieces queued for the writing thread beyond the one it is writing.
const QUEUED: usize = 2;

/// Resolve and encode the staged writes of `pending` as one block at `at`
/// (the end of the log), writing it in pieces as it is encoded, then seal
/// it and move the log's end past it.
pub fn write_streamed(
    pending: &mut Pending,
    gen: &mut Generation,
    at: Loc,
    seq: u64,
    flags: u32,
    counters: &mut Counters,
) -> Result<()> {
    let seg = std::sync::Arc::clone(gen.log.last_segment());
    let (_, seg_off) = gen.log.split(at);
    let gen_read: &Generation = gen;
    let (tx, rx) = sync_channel::<Vec<u8>>(QUEUED);
    let (back_tx, back) = channel::<Vec<u8>>();
    let (written, encoded, len) = std::thread::scope(|scope| {
        let seg = &seg;
        let writer = scope.spawn(move || write_pieces(seg, seg_off, rx, back_tx));
        let mut cutter = Cutter { tx, back, seg_off };
        let mut encoded = resolve(pending, gen_read, at, counters, &mut |p: &mut Pending| {
            cutter.hand_off(p, false)
        });
        if encoded.is_ok() {
            encoded = cutter.hand_off(pending, true);
        }
        let len = pending.handed_off as u64;
        drop(cutter.tx);
        let written = writer.join();
        // Keep the piece buffers for the next block.
        pending.spare.extend(cutter.back.try_iter());
        (written, encoded, len)
    });
    // The writer's error (a full disk) is the cause when both failed: the
    // encoder only stops because the writer hung up.
    let payload_crc =
        written.map_err(|_| Error::Invalid("log writing thread panicked".into()))??;
    encoded?;
    let payload_len = u32::try_from(len - BLOCK_HEADER as u64)
        .map_err(|_| Error::Invalid("internal error: block larger than 4 GiB".into()))?;
    let head_crc = BlockHeader::crc_of_header(payload_len, seq, flags);
    let crc = crc32c::crc32c_combine(head_crc, payload_crc, payload_len as usize);
    let mut head = [0u8; BLOCK_HEADER];
    BlockHeader {
        payload_len,
        seq,
        flags,
        crc,
    }
    .encode(&mut head);
    seg.write_at(seg_off, &head)?;
    gen.log.finish_append(at, len)
}

/// Cuts the block being encoded into pieces for the writing thread.
struct Cutter {
    tx: SyncSender<Vec<u8>>,
    back: Receiver<Vec<u8>>,
    /// The block's offset in its segment.
    seg_off: u64,
}

impl Cutter {
    /// Hand off the encoded bytes up to the last piece boundary they have
    /// reached, if any (`last`: hand off all of them).
    fn hand_off(&mut self, p: &mut Pending, last: bool) -> Result<()> {
        let start = self.seg_off + p.handed_off as u64;
        let end = start + p.block.len() as u64;
        let cut = if last {
            p.block.len()
        } else {
            // The last boundary reached (more than one piece at once only
            // after a record larger than a piece).
            let boundary = end / PIECE * PIECE;
            if boundary <= start {
                return Ok(());
            }
            (boundary - start) as usize
        };
        let mut next = self
            .back
            .try_recv()
            .ok()
            .or_else(|| p.spare.pop())
            .unwrap_or_else(|| Vec::with_capacity(PIECE as usize + (64 << 10)));
        next.clear();
        next.extend_from_slice(&p.block[cut..]);
        p.block.truncate(cut);
        let piece = std::mem::replace(&mut p.block, next);
        p.handed_off += piece.len();
        self.tx
            .send(piece)
            .map_err(|_| Error::Invalid("log writing thread stopped".into()))
    }
}

/// The writing thread: write each piece after the one before, starting at
/// `offset` of `seg`, and return the CRC-32C of the block past its header.
fn write_pieces(
    seg: &Segment,
    mut offset: u64,
    pieces: Receiver<Vec<u8>>,
    back: Sender<Vec<u8>>,
) -> Result<u32> {
    let mut crc = 0;
    let mut header_left = BLOCK_HEADER;
    for piece in pieces {
        seg.write_at(offset, &piece)?;
        let skip = header_left.min(piece.len());
        header_left -= skip;
        crc = crc32c::crc32c_append(crc, &piece[skip..]);
        offset += piece.len() as u64;
        // The encoder may have finished; then the buffer is simply freed.
        let _ = back.send(piece);
    }
    Ok(crc)
}
