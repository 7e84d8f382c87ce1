//! Writing a large new file front to back, around the page cache.
//!
//! A buffered write makes the kernel find a fresh page-cache page for every
//! 4 KiB of a new file, and one thread copies into each: a file system
//! takes one write to a file at a time. Where memory has been handed back
//! to a hypervisor (free page reporting), each such page costs a fault on
//! the host as well: on the 2-core VM the benchmarks run on, a buffered
//! 1 GiB write plus fsync took 3.4 s when the pages were cold and 0.55 s
//! when warm, while `O_DIRECT` took 0.4-0.7 s either way. A file written
//! around the cache is not in it afterwards, though, and its first reader
//! would pay the same fresh pages plus a read from the disk (a 10M-pair
//! frozen file opened right after such a build served 100k random gets/s
//! for its first 200k gets, and 1.1M/s once cached). So [`Cache`] offers
//! three ways: through the cache; around it, for a file that could not
//! stay cached anyway (builds do this for a file larger than half of RAM,
//! [`crate::files::fits_in_cache`]); and around it with each written range
//! loaded back behind the writes ([`crate::cache_fill`]), which spreads
//! the fresh pages over all cores (builds do this for a file that fits).
//!
//! Either way bytes are collected in one aligned 8 MiB buffer and written
//! in whole blocks. Where the file system refuses `O_DIRECT` (tmpfs on
//! older kernels, some network file systems), the writes go through the
//! page cache.

use crate::cache_fill::CacheFill;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Alignment of buffer, offset and length that `O_DIRECT` needs on every
/// common device (logical blocks are 512 B or 4 KiB).
pub const BLOCK: usize = 4096;
/// Bytes collected before a write.
const CHUNK: usize = 8 << 20;
/// The size of a huge page.
const HUGE_PAGE: u64 = 2 << 20;

/// A file written front to back from `start` in aligned blocks, around the
/// page cache if asked and the file system allows it.
///
/// ```
/// use vastdict_core::direct::{Cache, DirectAppend};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("f");
/// let mut w = DirectAppend::create(&path, 4096, Cache::Bypass).unwrap();
/// w.write(b"hello").unwrap();
/// w.write_block_at(0, &[7u8; 4096]).unwrap();
/// let file = w.finish().unwrap();
/// drop(file);
/// let bytes = std::fs::read(&path).unwrap();
/// assert_eq!(bytes.len(), 4096 + 5);
/// assert_eq!(&bytes[4096..], b"hello");
/// ```
pub struct DirectAppend {
    file: File,
    direct: bool,
    /// Loads what is written back into the page cache, if asked.
    fill: Option<CacheFill>,
    /// Storage of `buf`, over-allocated so that an aligned window fits.
    storage: Vec<u8>,
    /// Where the aligned window starts in `storage`.
    at: usize,
    /// Bytes held in the window.
    held: usize,
    /// File offset of the window's first byte (a multiple of [`BLOCK`]).
    flushed: u64,
}

impl DirectAppend {
    /// Create (or truncate) `path`, written as `cache` says; appends start
    /// at `start`, a multiple of [`BLOCK`] (the bytes before it are written
    /// with [`DirectAppend::write_block_at`]). Where the file system refuses
    /// `O_DIRECT`, writes go through the page cache.
    pub fn create(path: &Path, start: u64, cache: Cache) -> std::io::Result<Self> {
        if !start.is_multiple_of(BLOCK as u64) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "internal error: direct writes start on a block boundary",
            ));
        }
        let (file, direct) = open(path, cache != Cache::Through)?;
        let fill = match cache {
            // Without a loader (no thread to be had) the file is only left
            // uncached.
            Cache::BypassThenLoad if direct => CacheFill::start(&file).ok(),
            _ => None,
        };
        let storage = vec![0u8; CHUNK + BLOCK];
        let at = storage.as_ptr().align_offset(BLOCK);
        Ok(DirectAppend {
            file,
            direct,
            fill,
            storage,
            at,
            held: 0,
            flushed: start,
        })
    }

    /// The file offset the next byte goes to.
    pub fn position(&self) -> u64 {
        self.flushed + self.held as u64
    }

    /// Append `data`.
    pub fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let n = data.len().min(CHUNK - self.held);
            let from = self.at + self.held;
            self.storage[from..from + n].copy_from_slice(&data[..n]);
            self.held += n;
            data = &data[n..];
            if self.held == CHUNK {
                self.flush_whole_blocks()?;
            }
        }
        Ok(())
    }

    /// Append everything `src` reads from its current position.
    pub fn copy_from(&mut self, src: &mut impl std::io::Read) -> std::io::Result<u64> {
        let mut total = 0u64;
        loop {
            let from = self.at + self.held;
            let n = match src.read(&mut self.storage[from..self.at + CHUNK]) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.held += n;
            total += n as u64;
            if self.held == CHUNK {
                self.flush_whole_blocks()?;
            }
        }
    }

    /// Write one whole block at `offset` (a multiple of [`BLOCK`] before
    /// the appended bytes), e.g. a header known only at the end.
    pub fn write_block_at(&mut self, offset: u64, block: &[u8]) -> std::io::Result<()> {
        if block.len() != BLOCK
            || !offset.is_multiple_of(BLOCK as u64)
            || offset + BLOCK as u64 > self.flushed
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "internal error: a direct block write must be one whole block before the appends",
            ));
        }
        if let Some(fill) = &self.fill {
            // Nothing may be loading the block while it is written.
            fill.drain();
        }
        let mut aligned = vec![0u8; 2 * BLOCK];
        let a = aligned.as_ptr().align_offset(BLOCK);
        aligned[a..a + BLOCK].copy_from_slice(block);
        self.write_at(&aligned[a..a + BLOCK], offset)
    }

    /// Write what is held, cut the file to its exact length and make it
    /// durable; returns the file.
    pub fn finish(mut self) -> std::io::Result<File> {
        let len = self.position();
        let whole = self.held.next_multiple_of(BLOCK);
        let (a, held) = (self.at, self.held);
        // The padding past the end is cut off below.
        self.storage[a + held..a + whole].fill(0);
        let buf = std::mem::take(&mut self.storage);
        self.write_at(&buf[a..a + whole], self.flushed)?;
        self.file.set_len(len)?;
        self.file.sync_all()?;
        if let Some(fill) = self.fill.take() {
            // The first huge page was dropped from the cache by the header's
            // write, and the last pieces are loaded only now.
            let tail = self.flushed / HUGE_PAGE * HUGE_PAGE;
            fill.finish(&[(0, HUGE_PAGE.min(len)), (tail, len)]);
        }
        Ok(self.file)
    }

    /// Write out the held bytes up to the last huge-page boundary of the
    /// file (or block boundary, if none is held), keeping the rest.
    fn flush_whole_blocks(&mut self) -> std::io::Result<()> {
        // Through the page cache, a write that fills an aligned 2 MiB span
        // of the file leaves it in one huge folio, which a reader's mapping
        // reaches through one TLB entry (a 10M-pair frozen file written in
        // 8 MiB pieces off those boundaries was 75% mapped that way after
        // its build, and 99.6% with them).
        let end = self.flushed + self.held as u64;
        let huge_end = end / HUGE_PAGE * HUGE_PAGE;
        let whole = if huge_end > self.flushed {
            (huge_end - self.flushed) as usize
        } else {
            self.held / BLOCK * BLOCK
        };
        let a = self.at;
        let buf = std::mem::take(&mut self.storage);
        let r = self.write_at(&buf[a..a + whole], self.flushed);
        self.storage = buf;
        r?;
        if let Some(fill) = &self.fill {
            fill.push(self.flushed, self.flushed + whole as u64);
        }
        self.storage.copy_within(a + whole..a + self.held, a);
        self.held -= whole;
        self.flushed += whole as u64;
        Ok(())
    }

    /// `pwrite` all of `buf` at `offset`; a file system that turns out to
    /// refuse direct writes of this shape gets buffered ones instead.
    fn write_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        match self.file.write_all_at(buf, offset) {
            Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                self.direct = false;
                set_direct(&self.file, false)?;
                self.file.write_all_at(buf, offset)
            }
            r => r,
        }
    }
}

/// How a [`DirectAppend`] treats the page cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cache {
    /// Buffered writes: the file is cached as it is written.
    Through,
    /// `O_DIRECT` writes: the file is not cached afterwards.
    Bypass,
    /// `O_DIRECT` writes, each range loaded back into the cache behind
    /// them ([`CacheFill`]): cached afterwards, with the cost of its fresh
    /// pages spread over all cores.
    BypassThenLoad,
}

/// Open `path` for writing, with `O_DIRECT` if wanted and the file system
/// takes it.
fn open(path: &Path, direct: bool) -> std::io::Result<(File, bool)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let direct = direct && set_direct(&file, true).is_ok();
    Ok((file, direct))
}

#[cfg(target_os = "linux")]
fn set_direct(file: &File, on: bool) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let flags = if on {
        flags | libc::O_DIRECT
    } else {
        flags & !libc::O_DIRECT
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn set_direct(_file: &File, on: bool) -> std::io::Result<()> {
    if on {
        Err(std::io::ErrorKind::Unsupported.into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_of_every_size_land_in_order() {
        for cache in [Cache::Through, Cache::Bypass, Cache::BypassThenLoad] {
            appends_land_in_order(cache);
        }
    }

    fn appends_land_in_order(cache: Cache) {
        let dir = tempfile::tempdir().expect("ok");
        let path = dir.path().join("f");
        let mut w = DirectAppend::create(&path, BLOCK as u64, cache).expect("ok");
        let mut expect = vec![0u8; BLOCK];
        let mut x = 1u32;
        for len in [0, 1, 4095, 4096, 4097, CHUNK - 3, CHUNK, 2 * CHUNK + 17, 5] {
            let piece: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (x >> 24) as u8
                })
                .collect();
            w.write(&piece).expect("ok");
            expect.extend_from_slice(&piece);
        }
        let mut src = std::io::Cursor::new(vec![9u8; CHUNK + 100]);
        assert_eq!(w.copy_from(&mut src).expect("ok"), (CHUNK + 100) as u64);
        expect.extend(std::iter::repeat_n(9u8, CHUNK + 100));
        assert_eq!(w.position(), expect.len() as u64);
        w.write_block_at(0, &[3u8; BLOCK]).expect("ok");
        expect[..BLOCK].fill(3);
        drop(w.finish().expect("ok"));
        assert_eq!(std::fs::read(&path).expect("ok"), expect);
    }

    #[test]
    fn a_block_write_past_the_start_is_refused() {
        let dir = tempfile::tempdir().expect("ok");
        let mut w =
            DirectAppend::create(&dir.path().join("f"), BLOCK as u64, Cache::Bypass).expect("ok");
        assert!(w.write_block_at(BLOCK as u64, &[0u8; BLOCK]).is_err());
        assert!(w.write_block_at(0, &[0u8; 10]).is_err());
        assert!(DirectAppend::create(&dir.path().join("g"), 10, Cache::Through).is_err());
    }
}
