//! Building from a TSV file in place: each pair is held as its key's hash
//! and the offset of its line in a read-only mapping of the file, not as a
//! copy of its bytes.
//!
//! The copy is what a build from a file spent most of its parsing time on:
//! every byte of it lands on a fresh page, and on a VM whose free memory
//! goes back to the host each fresh page costs a fault there too (perf,
//! 10M pairs: 60-90% of the parse thread's samples in `clear_page_erms`).
//! The file's own pages are already in the page cache after the first
//! read. This path holds 16 bytes per pair instead of the pair plus 32.
//!
//! It applies where the stored bytes are the text itself (the "bytes" and
//! "str" codecs) and the mapping plus the entries fit the pairs' share of
//! the memory budget, since the mapped pages count in the process's
//! resident memory once read. Otherwise [`super::source`] copies pairs
//! into the builder's arena, which spills to disk when it must.

use super::build::BuildOptions;
use super::build::PairStore;
use super::build::{too_large, DEFAULT_SEED};
use super::source::{
    chunk_end, lines, split_fields, tsv_columns, tsv_pair, FieldCodec, FileFormat, FileSource,
};
use crate::error::{Error, Result};
use crate::hash::KeyHash;
use crate::record::MAX_ITEM;
use rayon::prelude::*;
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

/// A mapped TSV file and the columns that hold each pair.
pub struct MappedTsv {
    map: memmap2::Mmap,
    delimiter: u8,
    key: usize,
    value: usize,
}

/// A pair: its key's hash and the offset of its line.
pub type LineEntry = (u64, u64);

/// What parsing found: the file, one entry per pair in input order, and
/// the number of bad lines skipped.
pub struct Parsed {
    pub lines: MappedTsv,
    pub entries: Vec<LineEntry>,
    pub skipped: u64,
}

impl MappedTsv {
    /// Whether a file source can be built in place.
    pub fn applies(src: &FileSource) -> bool {
        let raw = |c: FieldCodec| matches!(c, FieldCodec::Bytes | FieldCodec::Str);
        src.format == FileFormat::Tsv && raw(src.key_codec) && raw(src.value_codec)
    }

    /// Bytes of the file.
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }
}

impl PairStore for MappedTsv {
    /// Key and value of the line at `at` (checked when it was parsed).
    fn pair(&self, at: u64) -> (&[u8], &[u8]) {
        let rest = self.map.get(at as usize..).unwrap_or_default();
        let line = lines(rest).next().map_or(&b""[..], |(_, l)| l);
        split_fields(line, self.delimiter, self.key, self.value).unwrap_or_default()
    }

    /// Start loading the line at `at` into the cache.
    fn prefetch(&self, at: u64) {
        if let Some(rest) = self.map.get(at as usize..) {
            // A line of a typical pair spans two cache lines.
            crate::prefetch::lines(rest.as_ptr(), rest.len().min(96));
        }
    }
}

/// Map and parse `src` if the mapping and one entry per line stay within
/// `limit` bytes; `None` when they do not (or the file is empty), and the
/// caller reads the file into the arena instead.
pub fn parse(
    src: &FileSource,
    file: &std::fs::File,
    limit: u64,
    bytes_done: &AtomicU64,
    opts: &BuildOptions,
) -> Result<Option<Parsed>> {
    use crate::error::IoContext;
    let len = file.metadata().at(&src.path)?.len();
    if len == 0 || len > limit {
        return Ok(None);
    }
    // SAFETY: the mapping is read-only and lives as long as the slices
    // taken from it. As with any mapped file, a process that truncates
    // the input during the build makes reads of the lost pages fault
    // (SIGBUS); one that rewrites lines in place only changes what `pair`
    // finds, which never indexes out of bounds.
    let map = unsafe { memmap2::Mmap::map(file) }.at(&src.path)?;
    let _ = map.advise(memmap2::Advice::Sequential);
    let data: &[u8] = &map;
    let ((key, value), header_len) = tsv_columns(data, src)?;
    let (mut at, mut line_no) = if header_len > 0 {
        bytes_done.fetch_add(header_len as u64, Ordering::Relaxed);
        (header_len, 1u64)
    } else {
        (0, 0)
    };
    let threads = rayon::current_num_threads().max(1);
    let mut entries: Vec<LineEntry> = Vec::new();
    let mut skipped = 0u64;
    while at < data.len() {
        if opts.cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let mut chunks = Vec::with_capacity(threads * 2);
        while at < data.len() && chunks.len() < threads * 2 {
            let cut = chunk_end(data, at);
            chunks.push(at..cut);
            at = cut;
        }
        let upper: Vec<usize> = chunks
            .par_iter()
            .map(|c| memchr::memchr_iter(b'\n', &data[c.clone()]).count() + 1)
            .collect();
        let adding: usize = upper.iter().sum();
        if len + ((entries.len() + adding) * std::mem::size_of::<LineEntry>()) as u64 > limit {
            return Ok(None);
        }
        let base = entries.len();
        entries.par_extend(rayon::iter::repeat_n((0u64, 0u64), adding));
        let mut slots = Vec::with_capacity(chunks.len());
        let mut rest = &mut entries[base..];
        for &n in &upper {
            let (mine, after) = rest.split_at_mut(n);
            slots.push(mine);
            rest = after;
        }
        let done: Vec<Chunk> = chunks
            .par_iter()
            .zip(slots)
            .map(|(c, out)| parse_chunk(data, c.clone(), src, (key, value), out))
            .collect();
        let mut write = base;
        let mut read = base;
        for (c, n) in done.iter().zip(&upper) {
            if let Some((line, reason)) = &c.error {
                if !src.skip_errors {
                    return Err(Error::Input {
                        path: src.path.clone(),
                        line: line_no + line,
                        reason: reason.clone(),
                    });
                }
            }
            entries.copy_within(read..read + c.pairs, write);
            write += c.pairs;
            read += n;
            skipped += c.skipped;
            line_no += c.lines;
            bytes_done.fetch_add(c.bytes, Ordering::Relaxed);
        }
        entries.truncate(write);
        opts.received.store(write as u64, Ordering::Relaxed);
    }
    let _ = map.advise(memmap2::Advice::Random);
    Ok(Some(Parsed {
        lines: MappedTsv {
            map,
            delimiter: src.delimiter,
            key,
            value,
        },
        entries,
        skipped,
    }))
}

/// What parsing one chunk found.
struct Chunk {
    pairs: usize,
    skipped: u64,
    lines: u64,
    bytes: u64,
    /// First bad line (1-based within the chunk) and why; with skipping
    /// on, bad lines are only counted.
    error: Option<(u64, String)>,
}

/// Parse the lines in `range` of `data`, an entry per good line going to
/// `out`; `columns` are the key's and the value's.
fn parse_chunk(
    data: &[u8],
    range: std::ops::Range<usize>,
    src: &FileSource,
    (key, value): (usize, usize),
    out: &mut [LineEntry],
) -> Chunk {
    let mut c = Chunk {
        pairs: 0,
        skipped: 0,
        lines: 0,
        bytes: range.len() as u64,
        error: None,
    };
    for (at, line) in lines(&data[range.clone()]) {
        let line_at = range.start + at;
        c.lines += 1;
        if line.is_empty() {
            continue;
        }
        match check_line(line, src, key, value) {
            Ok(k) => {
                out[c.pairs] = (KeyHash::of(k, DEFAULT_SEED).0, line_at as u64);
                c.pairs += 1;
            }
            Err(reason) => {
                c.skipped += 1;
                if c.error.is_none() {
                    c.error = Some((c.lines, reason));
                }
            }
        }
    }
    c
}

/// The key of a good line, or why the line is bad. Under the codecs this
/// path takes, the converted fields are the text itself.
fn check_line<'a>(
    line: &'a [u8],
    src: &FileSource,
    key: usize,
    value: usize,
) -> std::result::Result<&'a [u8], String> {
    let (k, v) = tsv_pair(line, src, key, value)?;
    if let Some(long) = [k.len(), v.len()].into_iter().find(|&n| n > MAX_ITEM) {
        return Err(too_large(long).to_string());
    }
    match k {
        Cow::Borrowed(k) => Ok(k),
        Cow::Owned(_) => Err("internal error: a converted key on the in-place path".into()),
    }
}
