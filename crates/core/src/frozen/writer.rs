//! Writes a frozen file from pairs that arrive in hash order.
//!
//! The data section goes straight into the output file; the index blocks
//! and the bucket table go to side files (their sizes are only known at
//! the end) that are appended when the build finishes. Buckets are encoded
//! in parallel, range by range, and written in order, front to back,
//! through [`DirectAppend`] (around the page cache for a file too large to
//! stay in it: see [`crate::direct`]).

use super::format::{self, Entry, Header, ENTRY_LEN, HEADER_LEN, MAX_SHIFT};
use crate::direct::{Cache, DirectAppend};
use crate::error::{Error, IoContext, Result};
use rayon::prelude::*;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Pairs sorted by hash: `hash(i)` is non-decreasing.
pub trait SortedPairs: Sync {
    fn len(&self) -> usize;
    fn hash(&self, i: usize) -> u64;
    fn pair(&self, i: usize) -> (&[u8], &[u8]);
    /// Hint that pair `i` will be read soon (pairs sit in memory in input
    /// order, so reading them in hash order is a random gather).
    fn prefetch(&self, _i: usize) {}
}

/// Pairs a range of buckets is encoded with at a time, per thread.
const RANGE_PAIRS: usize = 1 << 16;
/// How far ahead of the pair being encoded its successors are prefetched.
const PREFETCH_AHEAD: usize = 32;

pub struct Writer {
    files: Files,
    header: Header,
    next_bucket: u64,
}

/// The output file and the two side files.
struct Files {
    out_path: PathBuf,
    out: DirectAppend,
    index_path: PathBuf,
    index: File,
    table_path: PathBuf,
    table: File,
}

impl Writer {
    /// Start a file at `out_path` with side files in `work`, written around
    /// or through the page cache as `cache` says.
    pub fn create(out_path: &Path, work: &Path, header: Header, cache: Cache) -> Result<Self> {
        let create = |p: &Path| -> Result<File> {
            // Read back later (side files are copied into the output).
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(p)
                .at(p)?;
            Ok(f)
        };
        let out = DirectAppend::create(out_path, HEADER_LEN, cache).at(out_path)?;
        let index_path = work.join("index.tmp");
        let table_path = work.join("table.tmp");
        Ok(Writer {
            files: Files {
                out_path: out_path.to_path_buf(),
                out,
                index: create(&index_path)?,
                index_path,
                table: create(&table_path)?,
                table_path,
            },
            header: Header {
                len: 0,
                data_len: 0,
                index_len: 0,
                raw_bytes: 0,
                ..header
            },
            next_bucket: 0,
        })
    }

    /// Write `pairs` (which all hash at or after the last pair written).
    /// Unless `last`, the pairs of the final bucket present are not written
    /// but returned as indices, since later pairs may share that bucket.
    pub fn write_sorted(
        &mut self,
        pairs: &dyn SortedPairs,
        last: bool,
        cancel: &AtomicBool,
    ) -> Result<Vec<usize>> {
        let nb = self.header.nbuckets;
        let n = pairs.len();
        let bucket = |i: usize| format::bucket_of(pairs.hash(i), nb);
        // Pairs [0, keep) are written now; the rest wait for later pairs.
        let (keep, stop_bucket) = if last {
            (n, nb)
        } else if n == 0 {
            (0, self.next_bucket)
        } else {
            let b = bucket(n - 1);
            (first_in_bucket(n, b, &bucket), b)
        };
        // Ranges of about RANGE_PAIRS pairs, cut at bucket boundaries.
        let mut cuts = vec![0usize];
        let mut at = RANGE_PAIRS;
        while at < keep {
            let b = bucket(at - 1);
            while at < keep && bucket(at) == b {
                at += 1;
            }
            if at < keep {
                cuts.push(at);
            }
            at += RANGE_PAIRS;
        }
        cuts.push(keep);
        let ranges: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
        let threads = rayon::current_num_threads().max(1) * 2;
        // A writer thread writes each group while the next is encoded.
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<Part>, Vec<Base>)>(1);
        let files = &mut self.files;
        let (header, next_bucket) = (&mut self.header, &mut self.next_bucket);
        std::thread::scope(|scope| -> Result<()> {
            let writer = scope.spawn(move || -> Result<()> {
                for (parts, bases) in rx {
                    files.write_group(&parts, &bases)?;
                }
                Ok(())
            });
            let encoded = (|| -> Result<()> {
                for (gi0, group) in ranges.chunks(threads).enumerate() {
                    if cancel.load(Ordering::Relaxed) {
                        return Err(Error::Interrupted);
                    }
                    let first_range = gi0 * threads;
                    let first_bucket = *next_bucket;
                    let parts: Vec<Part> = group
                        .par_iter()
                        .enumerate()
                        .map(|(gi, &(a, b))| {
                            let ri = first_range + gi;
                            let from = if ri == 0 { first_bucket } else { bucket(a) };
                            let to = match ranges.get(ri + 1) {
                                Some(&(na, _)) => bucket(na),
                                None => stop_bucket,
                            };
                            encode(pairs, a, b, from, to, &bucket)
                        })
                        .collect::<Result<_>>()?;
                    // Each part's place follows from the sizes before it.
                    let mut bases = Vec::with_capacity(parts.len());
                    for part in &parts {
                        bases.push((header.data_len, header.len, *next_bucket));
                        header.data_len += part.data.len() as u64;
                        header.len += (part.index.len() / 3) as u64;
                        header.raw_bytes += part.raw;
                        *next_bucket += part.buckets.len() as u64;
                    }
                    if tx.send((parts, bases)).is_err() {
                        break; // the writer failed; its error is reported below
                    }
                }
                Ok(())
            })();
            drop(tx);
            let written = writer.join().unwrap_or_else(|_| {
                Err(Error::Invalid(
                    "internal error: writer thread panicked".into(),
                ))
            });
            encoded.and(written)
        })?;
        Ok((keep..n).collect())
    }

    /// Append the index and the table, write the header, sync. The file is
    /// complete at `out_path` when this returns (the caller renames it).
    pub fn finish(mut self) -> Result<Header> {
        debug_assert_eq!(self.next_bucket, self.header.nbuckets);
        let sentinel = Entry {
            data_off: self.header.data_len,
            first: self.header.len,
            shift: 0,
            crc: 0,
        };
        let files = self.files;
        files
            .table
            .write_all_at(&sentinel.encode(), self.next_bucket * ENTRY_LEN)
            .at(&files.table_path)?;
        self.header.index_len = self.header.len * 3;
        let mut out = files.out;
        let out_path = files.out_path;
        for (mut f, path) in [
            (files.index, &files.index_path),
            (files.table, &files.table_path),
        ] {
            f.seek(SeekFrom::Start(0)).at(path)?;
            out.copy_from(&mut f).at(&out_path)?;
            drop(f);
            std::fs::remove_file(path).at(path)?;
        }
        let len = out.position();
        if len != self.header.file_len() {
            return Err(Error::Invalid(format!(
                "internal error: frozen file is {len} bytes, expected {}",
                self.header.file_len()
            )));
        }
        out.write_block_at(0, &self.header.encode()?)
            .at(&out_path)?;
        out.finish().at(&out_path)?;
        Ok(self.header)
    }
}

impl Files {
    /// Write a group of consecutive encoded ranges: their data is appended
    /// to the output, their index and table entries go to the side files.
    fn write_group(&mut self, parts: &[Part], bases: &[Base]) -> Result<()> {
        for (part, &base) in parts.iter().zip(bases) {
            if self.out.position() != HEADER_LEN + base.0 {
                return Err(Error::Invalid(
                    "internal error: frozen data written out of order".into(),
                ));
            }
            self.out.write(&part.data).at(&self.out_path)?;
            self.write_part(part, base)?;
        }
        Ok(())
    }

    /// Write one encoded range's index as it is, and its table entries now
    /// that the absolute offsets are known (its data is already written).
    fn write_part(&self, part: &Part, (data_base, first_base, bucket_base): Base) -> Result<()> {
        let mut table = Vec::with_capacity(part.buckets.len() * ENTRY_LEN as usize);
        let mut cum = 0usize;
        for (j, b) in part.buckets.iter().enumerate() {
            let entry = Entry {
                data_off: data_base + b.start,
                first: first_base + cum as u64,
                shift: b.shift,
                crc: 0,
            };
            let next_start = part
                .buckets
                .get(j + 1)
                .map_or(part.data.len() as u64, |n| n.start);
            let next = Entry {
                data_off: data_base + next_start,
                first: entry.first + u64::from(b.count),
                shift: 0,
                crc: 0,
            };
            let block = &part.index[3 * cum..3 * (cum + b.count as usize)];
            let crc = entry.bucket_crc(&next, block);
            table.extend_from_slice(&Entry { crc, ..entry }.encode());
            cum += b.count as usize;
        }
        self.index
            .write_all_at(&part.index, 3 * first_base)
            .at(&self.index_path)?;
        self.table
            .write_all_at(&table, bucket_base * ENTRY_LEN)
            .at(&self.table_path)
    }
}

/// First index in `[0, n)` whose bucket is `b` (pairs are in bucket order).
fn first_in_bucket(n: usize, b: u64, bucket: &dyn Fn(usize) -> u64) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if bucket(mid) < b {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Record starts in one bucket of records with these lengths, with the
/// smallest granule shift that makes every start fit a u16.
fn layout(lens: impl Iterator<Item = usize> + Clone, starts: &mut Vec<u64>) -> Result<u32> {
    for shift in 0..=MAX_SHIFT {
        let granule = 1u64 << shift;
        starts.clear();
        let mut at = 0u64;
        for len in lens.clone() {
            starts.push(at);
            at = (at + len as u64).next_multiple_of(granule);
        }
        if starts
            .last()
            .is_none_or(|&s| s >> shift <= u64::from(u16::MAX))
        {
            return Ok(shift);
        }
    }
    Err(Error::Invalid(
        "too many large items hash to one bucket".into(),
    ))
}

/// Data offset, first record and first bucket of a [`Part`] in the file.
type Base = (u64, u64, u64);

/// Where one bucket's records sit inside its [`Part`].
struct BucketPlace {
    start: u64,
    count: u32,
    shift: u32,
}

/// A range of buckets encoded with offsets relative to the range.
struct Part {
    data: Vec<u8>,
    index: Vec<u8>,
    buckets: Vec<BucketPlace>,
    raw: u64,
}

/// Encode buckets `[from, to)`, which hold pairs `[a, b)`.
fn encode(
    pairs: &dyn SortedPairs,
    a: usize,
    b: usize,
    from: u64,
    to: u64,
    bucket: &(dyn Fn(usize) -> u64 + Sync),
) -> Result<Part> {
    let mut part = Part {
        data: Vec::new(),
        index: Vec::with_capacity((b - a) * 3),
        buckets: Vec::with_capacity(to.saturating_sub(from) as usize),
        raw: 0,
    };
    let mut starts = Vec::new();
    let mut items: Vec<(&[u8], &[u8])> = Vec::new();
    let mut i = a;
    for bk in from..to {
        let s = i;
        items.clear();
        while i < b && bucket(i) == bk {
            if i + PREFETCH_AHEAD < b {
                pairs.prefetch(i + PREFETCH_AHEAD);
            }
            items.push(pairs.pair(i));
            i += 1;
        }
        let shift = layout(
            items
                .iter()
                .map(|(k, v)| format::record_len(k.len(), v.len())),
            &mut starts,
        )?;
        let bucket_start = part.data.len();
        for j in s..i {
            part.index.push(format::fingerprint(pairs.hash(j)));
        }
        for (&(k, v), &at) in items.iter().zip(&starts) {
            part.data.resize(bucket_start + at as usize, 0);
            format::encode_record(&mut part.data, k, v);
            part.index
                .extend_from_slice(&((at >> shift) as u16).to_le_bytes());
            part.raw += (k.len() + v.len()) as u64;
        }
        part.buckets.push(BucketPlace {
            start: bucket_start as u64,
            count: items.len() as u32,
            shift,
        });
    }
    if i != b {
        return Err(Error::Invalid(
            "internal error: pairs outside their bucket range".into(),
        ));
    }
    Ok(part)
}
