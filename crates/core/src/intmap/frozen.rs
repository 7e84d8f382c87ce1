//! Frozen integer maps: sorted mixed keys and their values in one file,
//! opened in O(1) through a read-only memory map (see `docs/FORMAT.md`,
//! "Frozen integer maps").
//!
//! ```text
//! 0        128          header
//! 128      8 n          mixed keys, ascending
//! ...      W n          values (W = 4 or 8), same order
//! ...      4 (nb + 1)   bucket starts (u32; u64 when n >= 2^32)
//! ...      2 nb         CRC-16 of each bucket's keys and values
//! ```
//!
//! Bucket `(m * nb) >> 64` of a mixed key `m` holds about 16 keys, so a
//! lookup reads one bucket start pair, scans one or two cache lines of
//! keys and reads one value: 12.4 bytes per entry for u32 values.

use super::value::{mix, unmix, Value};
use crate::error::{Error, IoContext, Result};
use crate::record::le_u64;
use memmap2::{Advice, Mmap};
use std::fs::File;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 8] = b"VDINTMAP";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 128;
const HEADER_USED: usize = 80;
/// Keys per bucket on average.
const BUCKET_LOAD: u64 = 16;
/// More keys than this in one bucket means damage (the expected maximum at
/// a billion keys is well under 100).
const MAX_BUCKET: u64 = 4096;

/// Kinds of integer-map file (the multimap kind is reserved).
pub const KIND_MAP: u32 = 0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub kind: u32,
    pub dtype: String,
    pub len: u64,
    pub nbuckets: u64,
    /// Bytes per bucket start: 4 or 8.
    pub start_width: u64,
}

impl Header {
    fn value_width(&self) -> u64 {
        if self.dtype == "uint32" {
            4
        } else {
            8
        }
    }
    fn keys_off(&self) -> u64 {
        HEADER_LEN
    }
    fn vals_off(&self) -> u64 {
        self.keys_off() + 8 * self.len
    }
    fn table_off(&self) -> u64 {
        self.vals_off() + self.value_width() * self.len
    }
    fn crcs_off(&self) -> u64 {
        self.table_off() + self.start_width * (self.nbuckets + 1)
    }
    pub fn file_len(&self) -> u64 {
        self.crcs_off() + 2 * self.nbuckets
    }

    fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.kind.to_le_bytes());
        b[16..16 + self.dtype.len().min(16)]
            .copy_from_slice(&self.dtype.as_bytes()[..self.dtype.len().min(16)]);
        for (i, v) in [self.len, self.nbuckets, self.start_width, self.file_len()]
            .iter()
            .enumerate()
        {
            b[32 + 8 * i..40 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        crate::files::seal(&mut b, HEADER_USED);
        b
    }

    fn decode(b: &[u8], actual: u64, path: &Path) -> Result<Self> {
        if b.len() < HEADER_LEN as usize || &b[..8] != MAGIC {
            return Err(Error::format(path, "not a vastdict integer map file"));
        }
        if !crate::files::is_sealed(b, HEADER_USED) {
            return Err(Error::corrupt(path, 0, "header checksum mismatch"));
        }
        let version = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        if version != VERSION {
            return Err(Error::format(
                path,
                format!("integer map format version {version}; this vastdict reads {VERSION}, upgrade vastdict"),
            ));
        }
        let raw = &b[16..32];
        let end = raw.iter().position(|&c| c == 0).unwrap_or(16);
        let h = Header {
            kind: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            dtype: String::from_utf8_lossy(&raw[..end]).into_owned(),
            len: le_u64(b, 32),
            nbuckets: le_u64(b, 40),
            start_width: le_u64(b, 48),
        };
        let stated = le_u64(b, 56);
        let ok = h.len < 1 << 40
            && h.nbuckets >= 1
            && h.nbuckets < 1 << 40
            && matches!(h.start_width, 4 | 8)
            && ["uint32", "uint64", "int64", "float64"].contains(&h.dtype.as_str())
            && h.file_len() == stated;
        if !ok {
            return Err(Error::corrupt(path, 32, "header sizes are inconsistent"));
        }
        crate::files::check_stated_len(path, actual, stated)?;
        Ok(h)
    }
}

#[inline]
fn bucket_of(m: u64, nb: u64) -> u64 {
    ((u128::from(m) * u128::from(nb)) >> 64) as u64
}

fn crc16(keys: &[u8], vals: &[u8]) -> u16 {
    crc32c::crc32c_append(crc32c::crc32c(keys), vals) as u16
}

/// Write a frozen map of `len` pairs, given in ascending mixed-key order by
/// `pairs` (called twice: keys, then values), at `path` (through a
/// temporary file and a rename).
pub fn write<V: Value, I: Iterator<Item = (u64, V)>>(
    path: &Path,
    len: u64,
    pairs: impl Fn() -> I,
) -> Result<u64> {
    let nb = len.div_ceil(BUCKET_LOAD).max(1);
    let h = Header {
        kind: KIND_MAP,
        dtype: V::DTYPE.into(),
        len,
        nbuckets: nb,
        start_width: if len >= 1 << 32 { 8 } else { 4 },
    };
    crate::files::write_atomically(path, |file, tmp| {
        let mut keys = PosWriter::new(file, h.keys_off());
        let mut vals = PosWriter::new(file, h.vals_off());
        let mut starts: Vec<u64> = Vec::with_capacity(nb as usize + 1);
        let mut crcs: Vec<u16> = Vec::with_capacity(nb as usize);
        let mut bucket_keys = Vec::new();
        let mut bucket_vals = Vec::new();
        let mut n = 0u64;
        let mut last = None;
        let mut vbuf = [0u8; 8];
        for (m, v) in pairs() {
            if last.is_some_and(|l| l >= m) {
                return Err(Error::Invalid(
                    "internal error: keys not in ascending order".into(),
                ));
            }
            last = Some(m);
            let b = bucket_of(m, nb);
            while starts.len() as u64 <= b {
                if !starts.is_empty() {
                    close_bucket(&mut bucket_keys, &mut bucket_vals, &mut crcs);
                }
                starts.push(n);
            }
            keys.write_all(&m.to_le_bytes()).at(tmp)?;
            v.write_le(&mut vbuf);
            vals.write_all(&vbuf[..V::WIDTH]).at(tmp)?;
            bucket_keys.extend_from_slice(&m.to_le_bytes());
            bucket_vals.extend_from_slice(&vbuf[..V::WIDTH]);
            n += 1;
        }
        if n != len {
            return Err(Error::Invalid(format!(
                "internal error: {n} pairs written, {len} announced"
            )));
        }
        while (starts.len() as u64) < nb {
            if !starts.is_empty() {
                close_bucket(&mut bucket_keys, &mut bucket_vals, &mut crcs);
            }
            starts.push(n);
        }
        close_bucket(&mut bucket_keys, &mut bucket_vals, &mut crcs);
        starts.push(n);
        keys.flush().at(tmp)?;
        vals.flush().at(tmp)?;
        let mut tail = PosWriter::new(file, h.table_off());
        for s in &starts {
            tail.write_all(&s.to_le_bytes()[..h.start_width as usize])
                .at(tmp)?;
        }
        for c in &crcs {
            tail.write_all(&c.to_le_bytes()).at(tmp)?;
        }
        tail.flush().at(tmp)?;
        file.write_all_at(&h.encode(), 0).at(tmp)
    })?;
    Ok(h.file_len())
}

/// A buffered writer at its own file offset (`pwrite`), so several can
/// fill different sections of one file.
struct PosWriter<'a> {
    file: &'a File,
    off: u64,
    buf: Vec<u8>,
}

impl<'a> PosWriter<'a> {
    fn new(file: &'a File, off: u64) -> Self {
        PosWriter {
            file,
            off,
            buf: Vec::with_capacity(1 << 20),
        }
    }

    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.write_all_at(&self.buf, self.off)?;
        self.off += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

fn close_bucket(kb: &mut Vec<u8>, vb: &mut Vec<u8>, crcs: &mut Vec<u16>) {
    crcs.push(crc16(kb, vb));
    kb.clear();
    vb.clear();
}

/// The value dtype of the integer map file at `path` (reads its header
/// only), so a caller can open it with the right value type.
pub fn file_dtype(path: &Path) -> Result<String> {
    use std::io::Read;
    let (mut file, len) = crate::files::open_with_header(path, HEADER_LEN, MAGIC, "integer map")?;
    let mut head = [0u8; HEADER_LEN as usize];
    file.read_exact(&mut head).at(path)?;
    Ok(Header::decode(&head, len, path)?.dtype)
}

/// A read-only integer map in a file.
pub struct FrozenIntMap<V> {
    path: PathBuf,
    map: Mmap,
    header: Header,
    _v: PhantomData<V>,
}

impl<V: Value> FrozenIntMap<V> {
    /// Map the file and check its header (O(1)).
    pub fn open(path: &Path) -> Result<Self> {
        let (file, len) = crate::files::open_with_header(path, HEADER_LEN, MAGIC, "integer map")?;
        // SAFETY: the file is never modified in place (saves write a new
        // file and rename it over).
        let map = unsafe { Mmap::map(&file) }.at(path)?;
        let header = Header::decode(&map[..HEADER_LEN as usize], len, path)?;
        if header.dtype != V::DTYPE {
            return Err(Error::format(
                path,
                format!("values are {}, not {}", header.dtype, V::DTYPE),
            ));
        }
        let _ = map.advise(Advice::Random);
        Ok(FrozenIntMap {
            path: path.to_path_buf(),
            map,
            header,
            _v: PhantomData,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.header.len
    }

    pub fn is_empty(&self) -> bool {
        self.header.len == 0
    }

    pub fn file_len(&self) -> u64 {
        self.header.file_len()
    }

    fn key_at(&self, i: u64) -> u64 {
        le_u64(&self.map, (self.header.keys_off() + 8 * i) as usize)
    }

    fn val_at(&self, i: u64) -> V {
        let at = (self.header.vals_off() + V::WIDTH as u64 * i) as usize;
        V::read_le(&self.map[at..at + V::WIDTH])
    }

    fn start(&self, b: u64) -> u64 {
        let w = self.header.start_width;
        let at = (self.header.table_off() + w * b) as usize;
        let mut x = [0u8; 8];
        x[..w as usize].copy_from_slice(&self.map[at..at + w as usize]);
        u64::from_le_bytes(x)
    }

    /// The checked index range of bucket `b`.
    fn bucket(&self, b: u64) -> Result<(u64, u64)> {
        let (s, e) = (self.start(b), self.start(b + 1));
        let at = self.header.table_off() + self.header.start_width * b;
        if s > e || e > self.header.len || e - s > MAX_BUCKET {
            return Err(Error::corrupt(&self.path, at, "bucket start out of range"));
        }
        let ko = (self.header.keys_off() + 8 * s) as usize;
        let vo = (self.header.vals_off() + V::WIDTH as u64 * s) as usize;
        let k = &self.map[ko..ko + 8 * (e - s) as usize];
        let v = &self.map[vo..vo + V::WIDTH * (e - s) as usize];
        let co = (self.header.crcs_off() + 2 * b) as usize;
        if crc16(k, v) != u16::from_le_bytes([self.map[co], self.map[co + 1]]) {
            return Err(Error::corrupt(
                &self.path,
                ko as u64,
                "bucket checksum mismatch",
            ));
        }
        Ok((s, e))
    }

    fn get_mixed(&self, m: u64) -> Result<Option<V>> {
        let (s, e) = self.bucket(bucket_of(m, self.header.nbuckets))?;
        for i in s..e {
            let k = self.key_at(i);
            if k == m {
                return Ok(Some(self.val_at(i)));
            }
            if k > m {
                break;
            }
        }
        Ok(None)
    }

    pub fn get(&self, k: u64) -> Result<Option<V>> {
        self.get_mixed(mix(k))
    }

    /// Look up `keys` into `out` / `found` (as [`super::IntMap::get_many`]).
    pub fn get_many(&self, keys: &[u64], out: &mut [V], found: &mut [bool]) -> Result<()> {
        use rayon::prelude::*;
        super::map::same_len(keys.len(), out.len())?;
        super::map::same_len(keys.len(), found.len())?;
        const CHUNK: usize = 4096;
        keys.par_chunks(CHUNK)
            .zip(out.par_chunks_mut(CHUNK))
            .zip(found.par_chunks_mut(CHUNK))
            .try_for_each(|((k, o), f)| self.get_chunk(k, o, f))
    }

    fn prefetch(&self, at: u64) {
        if let Some(b) = self.map.get(at as usize..) {
            crate::prefetch::read(b.as_ptr());
        }
    }

    fn get_chunk(&self, keys: &[u64], out: &mut [V], found: &mut [bool]) -> Result<()> {
        const WINDOW: usize = 16;
        let h = &self.header;
        let mut mixed = [0u64; WINDOW];
        for ((ks, os), fs) in keys
            .chunks(WINDOW)
            .zip(out.chunks_mut(WINDOW))
            .zip(found.chunks_mut(WINDOW))
        {
            for (m, &k) in mixed.iter_mut().zip(ks) {
                *m = mix(k);
                self.prefetch(h.table_off() + h.start_width * bucket_of(*m, h.nbuckets));
            }
            for &m in &mixed[..ks.len()] {
                let s = self.start(bucket_of(m, h.nbuckets)).min(h.len);
                self.prefetch(h.keys_off() + 8 * s);
                self.prefetch(h.keys_off() + 8 * s + 64);
                self.prefetch(h.vals_off() + V::WIDTH as u64 * s);
            }
            for ((&m, o), f) in mixed.iter().zip(os.iter_mut()).zip(fs.iter_mut()) {
                let v = self.get_mixed(m)?;
                *f = v.is_some();
                if let Some(v) = v {
                    *o = v;
                }
            }
        }
        Ok(())
    }

    /// Every (mixed key, value), ascending.
    pub fn iter_mixed(&self) -> impl Iterator<Item = (u64, V)> + '_ {
        (0..self.header.len).map(|i| (self.key_at(i), self.val_at(i)))
    }

    /// Every (key, value).
    pub fn iter(&self) -> impl Iterator<Item = (u64, V)> + '_ {
        self.iter_mixed().map(|(m, v)| (unmix(m), v))
    }

    /// Check every bucket and that keys ascend; returns the pair count.
    pub fn verify(&self) -> Result<u64> {
        let mut last = None;
        for b in 0..self.header.nbuckets {
            let (s, e) = self.bucket(b)?;
            for i in s..e {
                let m = self.key_at(i);
                if last.is_some_and(|l| l >= m) || bucket_of(m, self.header.nbuckets) != b {
                    return Err(Error::corrupt(
                        &self.path,
                        self.header.keys_off() + 8 * i,
                        "keys out of order",
                    ));
                }
                last = Some(m);
            }
        }
        if self.start(self.header.nbuckets) != self.header.len {
            return Err(Error::corrupt(
                &self.path,
                32,
                "pair count does not match the buckets",
            ));
        }
        Ok(self.header.len)
    }
}
