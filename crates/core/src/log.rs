//! The log of one generation: numbered segment files, appended with
//! `pwrite` and read through memory maps.
//!
//! Each segment is mapped once at its full capacity (`1 << segment_bits`)
//! even while the file is shorter: Linux lets a mapping run past the end of
//! its file, and pages appended later become readable through it, so a
//! growing segment is never remapped. Reads are bounded by the file length
//! we last saw, so a read never touches a page past the end of the file
//! (which would raise SIGBUS).
//!
//! ```text
//! segment: magic "VDSEG001" | generation u32 | segment u32 | blocks...
//! ```

use crate::error::{Error, IoContext, Result};
use crate::files::segment_path;
use crate::record::{Loc, RecordRef, LOC_BITS};
use memmap2::{Mmap, MmapOptions};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const SEGMENT_MAGIC: &[u8; 8] = b"VDSEG001";
pub const SEGMENT_HEADER: u64 = 16;

/// One mapped segment file.
pub struct Segment {
    pub path: PathBuf,
    file: File,
    map: Mmap,
    /// File length as last observed; reads stay below it.
    len: AtomicU64,
}

impl Segment {
    fn open(path: &Path, capacity: u64, writable: bool) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .at(path)?;
        let len = file.metadata().at(path)?.len();
        // SAFETY: the map is read-only; segments are never truncated while a
        // store is open (only whole generations are deleted, by unlinking),
        // and every read is bounded by the observed file length.
        let map = unsafe { MmapOptions::new().len(capacity as usize).map(&file) }.at(path)?;
        crate::files::advise_huge_if_it_fits(&map);
        let seg = Segment {
            path: path.to_path_buf(),
            file,
            map,
            len: AtomicU64::new(len),
        };
        seg.check_header()?;
        Ok(seg)
    }

    fn check_header(&self) -> Result<()> {
        if self.len() < SEGMENT_HEADER || &self.map[..8] != SEGMENT_MAGIC {
            return Err(Error::corrupt(&self.path, 0, "bad segment header"));
        }
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() <= SEGMENT_HEADER
    }

    /// Bytes from `offset` to the end of the file (re-reading the file
    /// length once if `offset` is past what we knew).
    pub fn tail(&self, offset: u64) -> Result<&[u8]> {
        let mut len = self.len();
        if offset >= len {
            len = self
                .file
                .metadata()
                .at(&self.path)?
                .len()
                .min(self.map.len() as u64);
            self.len.fetch_max(len, Ordering::AcqRel);
        }
        if offset >= len {
            return Err(Error::corrupt(
                &self.path,
                offset,
                "location past the end of the segment",
            ));
        }
        Ok(&self.map[offset as usize..len as usize])
    }

    /// The whole written part of the segment.
    pub fn bytes(&self) -> &[u8] {
        &self.map[..self.len() as usize]
    }

    /// Write `data` at `offset`, at or past the end, without moving the
    /// end: a block written in pieces is only part of the log once
    /// [`Log::finish_append`] says so.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.file.write_all_at(data, offset).at(&self.path)?;
        let end = offset + data.len() as u64;
        // Start writing each finished 8 MiB of the log to disk now, without
        // waiting for it: a bulk load then never piles up enough dirty pages
        // for the kernel to stall the writer (and commits have less to sync).
        const CHUNK: u64 = 8 << 20;
        if offset / CHUNK != end / CHUNK {
            let start = (end / CHUNK - 1) * CHUNK;
            crate::files::start_writeback(&self.file, start, CHUNK);
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.file.sync_data().at(&self.path)
    }

    /// Cut the file back to `len` (recovery only: drops a torn tail).
    pub fn truncate(&self, len: u64) -> Result<()> {
        self.file.set_len(len).at(&self.path)?;
        self.len.store(len, Ordering::Release);
        Ok(())
    }
}

/// The segments of one generation.
pub struct Log {
    dir: PathBuf,
    generation: u64,
    seg_bits: u32,
    writable: bool,
    segments: Vec<Arc<Segment>>,
    /// Segments a reader meets after it opened (following a newer record's
    /// `prev`); mapped on demand, rarely.
    late: Mutex<Vec<Arc<Segment>>>,
    /// Segments written since the last sync.
    dirty: Vec<usize>,
}

impl Log {
    pub fn segment_size(&self) -> u64 {
        1 << self.seg_bits
    }

    /// Largest block payload a segment can hold.
    pub fn max_payload(&self) -> usize {
        (self.segment_size() - SEGMENT_HEADER) as usize - crate::record::BLOCK_HEADER
    }

    pub fn max_segments(seg_bits: u32) -> u64 {
        1 << (LOC_BITS - seg_bits)
    }

    /// Open every existing segment of generation `dir`.
    pub fn open(dir: &Path, generation: u64, seg_bits: u32, writable: bool) -> Result<Self> {
        let mut log = Log {
            dir: dir.to_path_buf(),
            generation,
            seg_bits,
            writable,
            segments: Vec::new(),
            late: Mutex::new(Vec::new()),
            dirty: Vec::new(),
        };
        loop {
            let p = segment_path(dir, log.segments.len() as u64);
            if !p.exists() {
                break;
            }
            log.segments
                .push(Arc::new(Segment::open(&p, log.segment_size(), writable)?));
        }
        if log.segments.is_empty() {
            if !writable {
                return Err(Error::corrupt(dir, 0, "generation has no log segment"));
            }
            log.add_segment()?;
        }
        Ok(log)
    }

    /// Create the next segment file, with its header, durably named.
    pub fn add_segment(&mut self) -> Result<()> {
        let n = self.segments.len() as u64;
        if n >= Self::max_segments(self.seg_bits) {
            return Err(Error::Invalid(
                "the log is full for this generation; run compact()".into(),
            ));
        }
        let p = segment_path(&self.dir, n);
        // Written under a temporary name and renamed: a crash leaves either
        // no segment or one with its whole header, never an empty file.
        let tmp = p.with_extension("log.tmp");
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .at(&tmp)?;
        let mut head = [0u8; SEGMENT_HEADER as usize];
        head[..8].copy_from_slice(SEGMENT_MAGIC);
        head[8..12].copy_from_slice(&(self.generation as u32).to_le_bytes());
        head[12..16].copy_from_slice(&(n as u32).to_le_bytes());
        f.write_all_at(&head, 0).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        std::fs::rename(&tmp, &p).at(&p)?;
        crate::files::sync_dir(&self.dir)?;
        self.segments.push(Arc::new(Segment::open(
            &p,
            self.segment_size(),
            self.writable,
        )?));
        Ok(())
    }

    pub fn loc(&self, segment: usize, offset: u64) -> Loc {
        ((segment as u64) << self.seg_bits) | offset
    }

    pub fn split(&self, loc: Loc) -> (usize, u64) {
        (
            (loc >> self.seg_bits) as usize,
            loc & (self.segment_size() - 1),
        )
    }

    /// Location where the next append will land.
    pub fn end(&self) -> Loc {
        let last = self.segments.len() - 1;
        self.loc(last, self.segments[last].len())
    }

    /// Where a block of at most `bound` bytes will land: the end of the
    /// log, after rolling to a new segment if the last one cannot hold it.
    pub fn reserve(&mut self, bound: u64) -> Result<Loc> {
        if bound + SEGMENT_HEADER > self.segment_size() {
            return Err(Error::Invalid(format!(
                "a block of {bound} bytes does not fit in a log segment"
            )));
        }
        let (_, off) = self.split(self.end());
        if off + bound > self.segment_size() {
            self.add_segment()?;
        }
        Ok(self.end())
    }

    /// The segment appends go to.
    pub fn last_segment(&self) -> &Arc<Segment> {
        // `open` and `add_segment` leave at least one segment.
        &self.segments[self.segments.len() - 1]
    }

    /// Take the `len` bytes written at `at`, the end of the log, through
    /// [`Segment::write_at`] into the log.
    pub fn finish_append(&mut self, at: Loc, len: u64) -> Result<()> {
        let last = self.segments.len() - 1;
        let (seg, off) = self.split(at);
        let s = &self.segments[last];
        if seg != last || off != s.len() || off + len > self.segment_size() {
            return Err(Error::Invalid(
                "internal error: a block written in pieces is not at the end of the log".into(),
            ));
        }
        s.len.store(off + len, Ordering::Release);
        if self.dirty.last() != Some(&last) {
            self.dirty.push(last);
        }
        Ok(())
    }

    /// Append `data` (one whole block) at the end of the log, which
    /// [`Log::reserve`] made room for. Returns the block's location.
    pub fn append(&mut self, data: &[u8]) -> Result<Loc> {
        let at = self.end();
        self.last_segment().write_at(self.split(at).1, data)?;
        self.finish_append(at, data.len() as u64)?;
        Ok(at)
    }

    /// Make every append so far durable.
    pub fn sync(&mut self) -> Result<()> {
        for &i in &self.dirty {
            self.segments[i].sync()?;
        }
        self.dirty.clear();
        Ok(())
    }

    pub fn segments(&self) -> &[Arc<Segment>] {
        &self.segments
    }

    /// Segment `i`, mapping it now if this handle has not seen it yet.
    pub fn segment(&self, i: usize) -> Result<Arc<Segment>> {
        if let Some(s) = self.segments.get(i) {
            return Ok(Arc::clone(s));
        }
        let mut late = self.late.lock().unwrap_or_else(|p| p.into_inner());
        let first_late = self.segments.len();
        while late.len() <= i - first_late {
            let n = (first_late + late.len()) as u64;
            let p = segment_path(&self.dir, n);
            late.push(Arc::new(Segment::open(&p, self.segment_size(), false)?));
        }
        Ok(Arc::clone(&late[i - first_late]))
    }

    /// The record at `loc`, from a segment this handle mapped at open.
    /// Every location a reader may *see* is in one of those; newer ones are
    /// read through [`Log::with_record`].
    #[inline]
    pub fn record(&self, loc: Loc) -> Result<RecordRef<'_>> {
        let (seg, off) = self.split(loc);
        match self.segments.get(seg) {
            Some(s) => decode_at(s, off),
            None => Err(Error::corrupt(
                &self.dir,
                loc,
                "location in a segment that does not exist",
            )),
        }
    }

    /// Ask the CPU to start loading the record at `loc`.
    #[inline]
    pub fn prefetch(&self, loc: Loc) {
        let (seg, off) = self.split(loc);
        if let Some(s) = self.segments.get(seg) {
            // Records of short keys and values span two cache lines.
            if off + 64 < s.len() {
                let p = s.map[off as usize..].as_ptr();
                crate::prefetch::read(p);
                crate::prefetch::read(p.wrapping_add(64));
            }
        }
    }

    /// Run `f` on the record at `loc`, mapping its segment if needed.
    pub fn with_record<R>(&self, loc: Loc, f: impl FnOnce(RecordRef<'_>) -> R) -> Result<R> {
        let (seg, off) = self.split(loc);
        if seg < self.segments.len() {
            return Ok(f(decode_at(&self.segments[seg], off)?));
        }
        if seg as u64 >= Self::max_segments(self.seg_bits) {
            return Err(Error::corrupt(&self.dir, loc, "location out of range"));
        }
        let s = self.segment(seg)?;
        Ok(f(decode_at(&s, off)?))
    }

    pub fn bytes_on_disk(&self) -> u64 {
        self.segments.iter().map(|s| s.len()).sum()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn decode_at(s: &Segment, off: u64) -> Result<RecordRef<'_>> {
    if off < SEGMENT_HEADER {
        return Err(Error::corrupt(
            &s.path,
            off,
            "location inside a segment header",
        ));
    }
    RecordRef::decode(s.tail(off)?, &s.path, off)
}
