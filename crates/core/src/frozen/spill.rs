//! Partition files for builds larger than the memory budget: pairs are
//! appended, in input order, to the file of the top bits of their hash,
//! and each file is later sorted alone.

use crate::error::{Error, IoContext, Result};
use crate::record::{get_varint, put_varint};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

pub const PART_BITS: u32 = 8;
pub const PARTS: usize = 1 << PART_BITS;
/// Write buffer per partition file.
const BUFFER: usize = 128 << 10;
/// Memory all partition files' buffers take.
pub const BUFFER_BYTES: u64 = (PARTS * BUFFER) as u64;

pub struct Spill {
    dir: PathBuf,
    files: Vec<BufWriter<File>>,
    /// Bytes pushed so far.
    bytes: u64,
}

/// The partition of a hash.
pub fn part_of(h: u64) -> usize {
    (h >> (64 - PART_BITS)) as usize
}

impl Spill {
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).at(dir)?;
        let files = (0..PARTS)
            .map(|p| {
                let path = dir.join(format!("p{p:03}"));
                Ok(BufWriter::with_capacity(
                    BUFFER,
                    File::create(&path).at(&path)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Spill {
            dir: dir.to_path_buf(),
            files,
            bytes: 0,
        })
    }

    /// Bytes pushed so far (about the size of the data they make).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn path(&self, p: usize) -> PathBuf {
        self.dir.join(format!("p{p:03}"))
    }

    /// Append one pair: `hash u64 | klen varint | vlen varint | key | value`.
    pub fn push(&mut self, h: u64, key: &[u8], value: &[u8], scratch: &mut Vec<u8>) -> Result<()> {
        let p = part_of(h);
        scratch.clear();
        scratch.extend_from_slice(&h.to_le_bytes());
        put_varint(scratch, key.len() as u64);
        put_varint(scratch, value.len() as u64);
        self.bytes += (scratch.len() + key.len() + value.len()) as u64;
        let path = self.path(p);
        let f = &mut self.files[p];
        f.write_all(scratch).at(&path)?;
        f.write_all(key).at(&path)?;
        f.write_all(value).at(&path)
    }

    /// Flush every file; after this, [`Spill::read`] reads them back.
    pub fn flush(&mut self) -> Result<()> {
        for p in 0..PARTS {
            let path = self.path(p);
            self.files[p].flush().at(&path)?;
        }
        Ok(())
    }

    /// Read partition `p` whole, calling `f(hash, key, value)` per pair
    /// in the order they were pushed, then delete its file.
    pub fn read(&self, p: usize, mut f: impl FnMut(u64, &[u8], &[u8])) -> Result<()> {
        let path = self.path(p);
        let mut buf = Vec::new();
        File::open(&path)
            .and_then(|mut file| file.read_to_end(&mut buf))
            .at(&path)?;
        let bad = |at: usize| Error::corrupt(&path, at as u64, "build spill file is damaged");
        let mut pos = 0;
        while pos < buf.len() {
            let start = pos;
            let h = buf.get(pos..pos + 8).ok_or_else(|| bad(start))?;
            let h = u64::from_le_bytes(h.try_into().map_err(|_| bad(start))?);
            pos += 8;
            let kl = get_varint(&buf, &mut pos).ok_or_else(|| bad(start))? as usize;
            let vl = get_varint(&buf, &mut pos).ok_or_else(|| bad(start))? as usize;
            let key = buf.get(pos..pos + kl).ok_or_else(|| bad(start))?;
            let value = buf.get(pos + kl..pos + kl + vl).ok_or_else(|| bad(start))?;
            f(h, key, value);
            pos += kl + vl;
        }
        drop(buf);
        std::fs::remove_file(&path).at(&path)
    }
}
