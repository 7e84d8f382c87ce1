//! Saved multimaps: a header, a table of 256 partition segments, and the
//! segments as they are in memory, so opening is O(1) and zero-copy.
//!
//! ```text
//! 0      128        header: magic "VDMULTIM", version, flags (bit 0:
//!                   set semantics, bits 8-15: dropped key bits), value dtype, keys, values, file
//!                   length, CRC-32C of the table, CRC-32C of the header
//! 128    256 * 16   per partition: segment offset u64, length u64
//! 4224   ...        the segments, each at a multiple of 8
//! ```

use super::map::IntMultiMap;
use super::part::Seg;
use super::segment::Layout;
use crate::error::{Error, IoContext, Result};
use crate::intmap::map::PARTS;
use crate::intmap::Value;
use crate::record::{le_u32, le_u64};
use memmap2::{Advice, Mmap};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const MAGIC: &[u8; 8] = b"VDMULTIM";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 128;
const HEADER_USED: usize = 64;
const TABLE_LEN: usize = PARTS * 16;
const DATA_OFF: usize = HEADER_LEN + TABLE_LEN;
const FLAG_UNIQUE: u32 = 1;
/// Bits 8-15 of the flags: low key bits a truncated map does not keep.
const DROP_SHIFT: u32 = 8;

/// A saved multimap's file, mapped read-only.
pub(crate) struct MappedFile {
    pub map: Mmap,
    pub path: PathBuf,
}

/// What a multimap file's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub dtype: String,
    pub unique: bool,
    /// Low key bits not kept (0 unless the map is truncated).
    pub dropped_bits: u32,
    pub keys: u64,
    pub values: u64,
}

fn decode_header(b: &[u8], actual: u64, path: &Path) -> Result<(FileInfo, u32)> {
    if b.len() < HEADER_LEN || &b[..8] != MAGIC {
        return Err(Error::format(path, "not a vastdict integer multimap file"));
    }
    if !crate::files::is_sealed(b, HEADER_USED) {
        return Err(Error::corrupt(path, 0, "header checksum mismatch"));
    }
    let version = le_u32(b, 8);
    if version != VERSION {
        return Err(Error::format(
            path,
            format!("integer multimap format version {version}; this vastdict reads {VERSION}, upgrade vastdict"),
        ));
    }
    let raw = &b[16..32];
    let end = raw.iter().position(|&c| c == 0).unwrap_or(16);
    let info = FileInfo {
        dtype: String::from_utf8_lossy(&raw[..end]).into_owned(),
        unique: le_u32(b, 12) & FLAG_UNIQUE != 0,
        dropped_bits: (le_u32(b, 12) >> DROP_SHIFT) & 0xff,
        keys: le_u64(b, 32),
        values: le_u64(b, 40),
    };
    if !["uint32", "uint64", "int64", "float64"].contains(&info.dtype.as_str()) {
        return Err(Error::corrupt(path, 16, "unknown value type"));
    }
    crate::files::check_stated_len(path, actual, le_u64(b, 48))?;
    Ok((info, le_u32(b, 56)))
}

/// The header of the multimap file at `path` (reads the header only).
pub fn file_info(path: &Path) -> Result<FileInfo> {
    use std::io::Read;
    let (mut file, len) =
        crate::files::open_with_header(path, DATA_OFF as u64, MAGIC, "integer multimap")?;
    let mut head = [0u8; HEADER_LEN];
    file.read_exact(&mut head).at(path)?;
    Ok(decode_header(&head, len, path)?.0)
}

impl<V: Value> IntMultiMap<V> {
    /// Write the map to `path` (atomically), folding every change into
    /// the segments first. Returns the file's size.
    pub fn save(&mut self, path: &Path) -> Result<u64> {
        self.fold()?;
        let mut table = vec![0u8; TABLE_LEN];
        let mut off = DATA_OFF as u64;
        for (p, seg) in self.segments().enumerate() {
            let len = seg.bytes().len() as u64;
            table[16 * p..16 * p + 8].copy_from_slice(&off.to_le_bytes());
            table[16 * p + 8..16 * p + 16].copy_from_slice(&len.to_le_bytes());
            off += len.next_multiple_of(8);
        }
        let mut head = [0u8; HEADER_LEN];
        head[..8].copy_from_slice(MAGIC);
        head[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let flags = (u32::from(self.unique()) * FLAG_UNIQUE) | (self.dropped_bits() << DROP_SHIFT);
        head[12..16].copy_from_slice(&flags.to_le_bytes());
        head[16..16 + V::DTYPE.len()].copy_from_slice(V::DTYPE.as_bytes());
        head[32..40].copy_from_slice(&self.len()?.to_le_bytes());
        head[40..48].copy_from_slice(&self.num_values().to_le_bytes());
        head[48..56].copy_from_slice(&off.to_le_bytes());
        head[56..60].copy_from_slice(&crc32c::crc32c(&table).to_le_bytes());
        crate::files::seal(&mut head, HEADER_USED);
        crate::files::write_atomically(path, |file, tmp| {
            let mut at = DATA_OFF as u64;
            for seg in self.segments() {
                let b = seg.bytes();
                file.write_all_at(b, at).at(tmp)?;
                at += (b.len() as u64).next_multiple_of(8);
            }
            file.set_len(off).at(tmp)?;
            file.write_all_at(&table, HEADER_LEN as u64).at(tmp)?;
            file.write_all_at(&head, 0).at(tmp)
        })?;
        Ok(off)
    }

    /// Map a saved multimap (O(1): checks the header, the partition table
    /// and each segment's header; buckets are checked as they are read).
    pub fn open(path: &Path) -> Result<Self> {
        let (file, len) =
            crate::files::open_with_header(path, DATA_OFF as u64, MAGIC, "integer multimap")?;
        // SAFETY: saves never modify a file in place (they write a new one
        // and rename it over), so the mapped bytes do not change.
        let map = unsafe { Mmap::map(&file) }.at(path)?;
        let (info, table_crc) = decode_header(&map[..HEADER_LEN], len, path)?;
        if info.dtype != V::DTYPE {
            return Err(Error::format(
                path,
                format!("values are {}, not {}", info.dtype, V::DTYPE),
            ));
        }
        let table = &map[HEADER_LEN..DATA_OFF];
        if crc32c::crc32c(table) != table_crc {
            return Err(Error::corrupt(
                path,
                HEADER_LEN as u64,
                "partition table checksum mismatch",
            ));
        }
        let mut lays = Vec::with_capacity(PARTS);
        let (mut keys, mut values) = (0u64, 0u64);
        for p in 0..PARTS {
            let (off, n) = (le_u64(table, 16 * p), le_u64(table, 16 * p + 8));
            let at = (HEADER_LEN + 16 * p) as u64;
            let seg = off
                .checked_add(n)
                .filter(|&end| off >= DATA_OFF as u64 && end <= len)
                .and_then(|_| Layout::parse(&map[off as usize..(off + n) as usize], V::WIDTH))
                .filter(|lay| lay.drop() == info.dropped_bits)
                .ok_or_else(|| Error::corrupt(path, at, format!("partition {p} is damaged")))?;
            keys += seg.keys;
            values += seg.values;
            lays.push((off as usize, seg));
        }
        if keys != info.keys || values != info.values {
            return Err(Error::corrupt(
                path,
                32,
                "counts do not match the partitions",
            ));
        }
        let _ = map.advise(Advice::Random);
        let file = Arc::new(MappedFile {
            map,
            path: path.to_path_buf(),
        });
        let segs = lays
            .into_iter()
            .map(|(off, lay)| Seg::mapped(file.clone(), off, lay))
            .collect();
        Ok(IntMultiMap::from_segments(
            segs,
            info.unique,
            info.dropped_bits,
            file,
        ))
    }
}
