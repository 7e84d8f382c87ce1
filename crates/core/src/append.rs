//! Writing a file front to back in whole 2 MiB-aligned pieces.
//!
//! The page cache keeps a file in folios whose size follows the writes
//! that created them: a write that covers an aligned 2 MiB range whole
//! gets one 2 MiB folio (memory permitting), and a reader's mapping then
//! maps it with a single huge-page TLB entry. Random lookups over a large
//! file spend much of their time in page walks (more so under a
//! hypervisor), so a file written in unaligned pieces, whose folios come
//! out smaller, is measurably slower to read than the same bytes written
//! aligned. [`AlignedAppender`] carries the unaligned remainder of each
//! append until the next boundary, so every write but the last covers
//! whole aligned pieces.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The piece size: the x86-64 and arm64 (4 KiB granule) huge page.
pub const ALIGN: u64 = 2 << 20;

/// Appends to a file from a given offset on, writing only whole aligned
/// pieces until [`AlignedAppender::finish`].
///
/// ```
/// use vastdict_core::append::AlignedAppender;
/// let dir = tempfile::tempdir().unwrap();
/// let file = std::fs::File::create(dir.path().join("f")).unwrap();
/// let mut out = AlignedAppender::new(0);
/// out.append(&file, b"hello ").unwrap();
/// out.append(&file, b"world").unwrap();
/// assert_eq!(out.finish(&file).unwrap(), 11);
/// assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"hello world");
/// ```
#[derive(Debug)]
pub struct AlignedAppender {
    /// File offset of `carry[0]`: always aligned once the first aligned
    /// piece is written, before that the offset the appender started at.
    at: u64,
    carry: Vec<u8>,
}

impl AlignedAppender {
    /// An appender whose first byte goes to file offset `at`.
    pub fn new(at: u64) -> Self {
        AlignedAppender {
            at,
            carry: Vec::new(),
        }
    }

    /// Start with `n` zero bytes (a header to be written over later).
    pub fn carry_zeros(&mut self, n: usize) {
        self.carry.resize(self.carry.len() + n, 0);
    }

    /// File offset the next appended byte goes to.
    pub fn end(&self) -> u64 {
        self.at + self.carry.len() as u64
    }

    /// Append `data`; returns the file range written now (possibly empty),
    /// for a caller that wants to start its writeback.
    pub fn append(&mut self, file: &File, mut data: &[u8]) -> io::Result<(u64, u64)> {
        let start = self.at;
        let boundary = (self.at / ALIGN + 1) * ALIGN;
        if self.end() + data.len() as u64 >= boundary {
            // Complete the piece the carry started, then write the aligned
            // middle of `data` straight from the caller's buffer.
            let fill = (boundary - self.end()) as usize;
            self.carry.extend_from_slice(&data[..fill]);
            data = &data[fill..];
            file.write_all_at(&self.carry, self.at)?;
            self.carry.clear();
            self.at = boundary;
            let whole = data.len() as u64 / ALIGN * ALIGN;
            file.write_all_at(&data[..whole as usize], self.at)?;
            self.at += whole;
            data = &data[whole as usize..];
        }
        self.carry.extend_from_slice(data);
        Ok((start, self.at))
    }

    /// Write what is still carried; returns the file offset after it.
    pub fn finish(mut self, file: &File) -> io::Result<u64> {
        file.write_all_at(&self.carry, self.at)?;
        self.at += self.carry.len() as u64;
        Ok(self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_whole_aligned_pieces_until_finish() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let file = File::create(&path).expect("create");
        let mut out = AlignedAppender::new(100);
        let mut want = vec![0u8; 100];
        let mut written = Vec::new();
        for (i, len) in [10usize, 3 << 20, 0, 5, (2 << 20) - 7, 1, 9 << 20, 333]
            .into_iter()
            .enumerate()
        {
            let data = vec![i as u8 + 1; len];
            let (a, b) = out.append(&file, &data).expect("append");
            if b > a {
                assert!(a % ALIGN == 0 || a == 100, "a write starts aligned");
                assert_eq!(b % ALIGN, 0, "and ends aligned");
            }
            written.push((a, b));
            want.extend_from_slice(&data);
            assert_eq!(out.end(), want.len() as u64);
        }
        assert!(written.iter().any(|&(a, b)| b > a));
        assert_eq!(out.finish(&file).expect("finish"), want.len() as u64);
        assert_eq!(std::fs::read(&path).expect("read"), want);
    }
}
