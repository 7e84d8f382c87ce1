//! The MANIFEST file: what a store is (header) and its last commit (slots).
//!
//! ```text
//! offset  size  header (written once, when the store is created)
//!   0      8    magic "VASTDICT"
//!   8      4    format version (1)
//!  12      4    segment bits (log segment size = 1 << bits)
//!  16      8    hash seed
//!  24     16    key codec name, NUL padded
//!  40     16    value codec name, NUL padded
//!  56     68    reserved, zero
//! 124      4    crc32c of bytes 0..124
//!
//! 128     64    commit slot A
//! 192     64    commit slot B
//!
//! slot:   seq u64 | generation u64 | committed_end u64 | block_seq u64 |
//!         entries u64 | garbage u64 | flags u32 | reserved u32 | crc32c u32 | pad u32
//! ```
//!
//! A commit writes the slot *not* holding the newest valid state, then
//! fsyncs. Readers take the valid slot with the higher `seq`; a torn slot
//! fails its crc and the other slot (the previous commit) is used.

use crate::error::{Error, IoContext, Result};
use crate::record::{le_u32, le_u64};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 8] = b"VASTDICT";
pub const VERSION: u32 = 1;
const HEADER_LEN: usize = 128;
const SLOT_LEN: usize = 64;
pub const FILE_LEN: usize = HEADER_LEN + 2 * SLOT_LEN;
const CODEC_LEN: usize = 16;

/// A writer had the store open and has not closed it cleanly.
pub const FLAG_WRITER_ACTIVE: u32 = 1;

/// The fixed description of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub segment_bits: u32,
    pub hash_seed: u64,
    pub key_codec: String,
    pub value_codec: String,
}

/// The state as of one commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Commit {
    pub seq: u64,
    pub generation: u64,
    /// Location just past the last committed block.
    pub committed_end: u64,
    /// Sequence number of the last block written, committed or not.
    pub block_seq: u64,
    pub entries: u64,
    pub garbage: u64,
    pub flags: u32,
}

impl Header {
    fn encode(&self, path: &Path) -> Result<[u8; HEADER_LEN]> {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.segment_bits.to_le_bytes());
        b[16..24].copy_from_slice(&self.hash_seed.to_le_bytes());
        for (at, name) in [(24, &self.key_codec), (40, &self.value_codec)] {
            if name.len() > CODEC_LEN {
                return Err(Error::format(
                    path,
                    format!("codec name {name:?} is too long"),
                ));
            }
            b[at..at + name.len()].copy_from_slice(name.as_bytes());
        }
        crate::files::seal(&mut b, 128);
        Ok(b)
    }

    fn decode(b: &[u8], path: &Path) -> Result<Self> {
        if &b[0..8] != MAGIC {
            return Err(Error::corrupt(
                path,
                0,
                "MANIFEST does not start with the vastdict magic (damaged, or not a vastdict store)",
            ));
        }
        if !crate::files::is_sealed(b, 128) {
            return Err(Error::corrupt(path, 0, "MANIFEST header checksum mismatch"));
        }
        let version = le_u32(b, 8);
        if version != VERSION {
            return Err(Error::format(
                path,
                format!("store format version {version} is not supported by this vastdict (it reads version {VERSION}); upgrade vastdict"),
            ));
        }
        let segment_bits = le_u32(b, 12);
        if !(16..=34).contains(&segment_bits) {
            return Err(Error::corrupt(
                path,
                12,
                format!("segment bits {segment_bits} out of range"),
            ));
        }
        let codec = |at: usize| -> Result<String> {
            let raw = &b[at..at + CODEC_LEN];
            let end = raw.iter().position(|&c| c == 0).unwrap_or(CODEC_LEN);
            String::from_utf8(raw[..end].to_vec())
                .map_err(|_| Error::corrupt(path, at as u64, "codec name is not UTF-8"))
        };
        Ok(Header {
            segment_bits,
            hash_seed: le_u64(b, 16),
            key_codec: codec(24)?,
            value_codec: codec(40)?,
        })
    }
}

impl Commit {
    fn encode(&self) -> [u8; SLOT_LEN] {
        let mut b = [0u8; SLOT_LEN];
        let fields = [
            self.seq,
            self.generation,
            self.committed_end,
            self.block_seq,
            self.entries,
            self.garbage,
        ];
        for (i, f) in fields.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&f.to_le_bytes());
        }
        b[48..52].copy_from_slice(&self.flags.to_le_bytes());
        crate::files::seal(&mut b, 60);
        b
    }

    fn decode(b: &[u8]) -> Option<Self> {
        if !crate::files::is_sealed(b, 60) {
            return None;
        }
        Some(Commit {
            seq: le_u64(b, 0),
            generation: le_u64(b, 8),
            committed_end: le_u64(b, 16),
            block_seq: le_u64(b, 24),
            entries: le_u64(b, 32),
            garbage: le_u64(b, 40),
            flags: le_u32(b, 48),
        })
    }

    pub fn writer_active(&self) -> bool {
        self.flags & FLAG_WRITER_ACTIVE != 0
    }
}

/// An open MANIFEST.
pub struct Manifest {
    file: File,
    path: PathBuf,
    pub header: Header,
}

impl Manifest {
    /// Write a new MANIFEST at `path` through a temporary file and a rename,
    /// so a crash leaves either no store or a whole one.
    pub fn create(path: &Path, header: &Header, first: &Commit) -> Result<()> {
        let tmp = path.with_extension("tmp");
        let mut bytes = Vec::with_capacity(FILE_LEN);
        bytes.extend_from_slice(&header.encode(path)?);
        bytes.extend_from_slice(&first.encode());
        bytes.extend_from_slice(&[0u8; SLOT_LEN]);
        let f = File::create(&tmp).at(&tmp)?;
        f.write_all_at(&bytes, 0).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        std::fs::rename(&tmp, path).at(path)?;
        crate::files::sync_dir(path.parent().unwrap_or(Path::new(".")))
    }

    /// Open and read the header. `writable` opens the file for commits.
    pub fn open(path: &Path, writable: bool) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .at(path)?;
        let mut head = [0u8; HEADER_LEN];
        read_exact_or_corrupt(&file, &mut head, 0, path)?;
        let header = Header::decode(&head, path)?;
        Ok(Manifest {
            file,
            path: path.to_path_buf(),
            header,
        })
    }

    /// The newest valid commit, and which slot holds it.
    pub fn latest(&self) -> Result<(Commit, usize)> {
        let mut slots = [0u8; 2 * SLOT_LEN];
        read_exact_or_corrupt(&self.file, &mut slots, HEADER_LEN as u64, &self.path)?;
        let a = Commit::decode(&slots[..SLOT_LEN]);
        let b = Commit::decode(&slots[SLOT_LEN..]);
        match (a, b) {
            (Some(a), Some(b)) if b.seq > a.seq => Ok((b, 1)),
            (Some(a), _) => Ok((a, 0)),
            (None, Some(b)) => Ok((b, 1)),
            (None, None) => Err(Error::corrupt(
                &self.path,
                HEADER_LEN as u64,
                "both commit slots fail their checksum",
            )),
        }
    }

    /// Durably record `commit` in the slot other than `current_slot`;
    /// returns the slot written.
    pub fn write(&self, commit: &Commit, current_slot: usize) -> Result<usize> {
        let slot = 1 - current_slot;
        let at = (HEADER_LEN + slot * SLOT_LEN) as u64;
        self.file
            .write_all_at(&commit.encode(), at)
            .at(&self.path)?;
        self.file.sync_data().at(&self.path)?;
        Ok(slot)
    }
}

fn read_exact_or_corrupt(file: &File, buf: &mut [u8], at: u64, path: &Path) -> Result<()> {
    file.read_exact_at(buf, at).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::corrupt(path, at, "MANIFEST is truncated")
        } else {
            Error::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            segment_bits: 20,
            hash_seed: 7,
            key_codec: "str".into(),
            value_codec: "bytes".into(),
        }
    }

    #[test]
    fn newest_slot_wins_and_torn_slot_falls_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("MANIFEST");
        let c1 = Commit {
            seq: 1,
            generation: 1,
            committed_end: 100,
            ..Default::default()
        };
        Manifest::create(&p, &header(), &c1).expect("create");
        let m = Manifest::open(&p, true).expect("open");
        assert_eq!(m.header, header());
        let (got, slot) = m.latest().expect("latest");
        assert_eq!(got, c1);
        let c2 = Commit {
            seq: 2,
            committed_end: 200,
            ..c1
        };
        let slot = m.write(&c2, slot).expect("write");
        assert_eq!(m.latest().expect("latest").0, c2);
        // Tear the newest slot: the previous commit must come back.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .expect("open");
        f.write_all_at(&[0xff; 4], (HEADER_LEN + slot * SLOT_LEN + 16) as u64)
            .expect("tear");
        assert_eq!(m.latest().expect("latest").0, c1);
    }

    #[test]
    fn damaged_header_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("MANIFEST");
        Manifest::create(&p, &header(), &Commit::default()).expect("create");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .expect("open");
        f.write_all_at(b"x", 30).expect("flip");
        assert!(matches!(
            Manifest::open(&p, false),
            Err(Error::Corruption { .. })
        ));
        f.set_len(50).expect("truncate");
        assert!(matches!(
            Manifest::open(&p, false),
            Err(Error::Corruption { .. })
        ));
    }
}
