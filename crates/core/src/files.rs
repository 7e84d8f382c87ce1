//! Names and places of a store's files, and the small file-system helpers
//! every part needs (durable directory updates, locks).
//!
//! ```text
//! store/
//!   MANIFEST            header + two commit slots
//!   LOCK                held exclusively (flock) by the one writer
//!   g000001/            one generation: a log and the index over it
//!     GEN               held shared by every handle using this generation
//!     dir               partition directory (also the structure lock)
//!     p0000000001.idx   index partitions
//!     s00000.log        log segments
//! ```
//!
//! Locks are `flock` locks, which follow the open file description: they
//! pass to a forked child with the descriptor and are never confused with
//! another handle's lock in the same process.

use crate::error::{Error, IoContext, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "MANIFEST";
pub const LOCK: &str = "LOCK";

pub fn generation_dir(store: &Path, generation: u64) -> PathBuf {
    store.join(format!("g{generation:06}"))
}

pub fn segment_path(gen_dir: &Path, segment: u64) -> PathBuf {
    gen_dir.join(format!("s{segment:05}.log"))
}

pub fn partition_path(gen_dir: &Path, id: u64) -> PathBuf {
    gen_dir.join(format!("p{id:010}.idx"))
}

pub fn dir_path(gen_dir: &Path) -> PathBuf {
    gen_dir.join("dir")
}

pub fn gen_lock_path(gen_dir: &Path) -> PathBuf {
    gen_dir.join("GEN")
}

/// Make a directory's entries (new or renamed files) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Open (creating if needed) a file used only for its lock.
pub fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .at(path)
}

/// Try to take an exclusive lock; `Ok(false)` when someone else holds it.
pub fn try_lock_exclusive(file: &File, path: &Path) -> Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(e).at(path),
    }
}

/// Try to take a shared lock; `Ok(false)` when a writer holds it exclusively.
pub fn try_lock_shared(file: &File, path: &Path) -> Result<bool> {
    match file.try_lock_shared() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(e).at(path),
    }
}

/// Total size of the regular files directly in `dir` and one level below.
pub fn disk_usage(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let meta = entry.metadata().at(&entry.path())?;
        if meta.is_dir() {
            total += disk_usage(&entry.path())?;
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}

/// Generations present in a store directory, ascending.
pub fn list_generations(store: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(store).at(store)? {
        let entry = entry.at(store)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(num) = name.strip_prefix('g') {
            if let Ok(g) = num.parse::<u64>() {
                out.push(g);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Remove generation `g` if no handle holds it (its GEN lock is free).
/// Returns whether it was removed.
pub fn remove_generation_if_unused(store: &Path, g: u64) -> Result<bool> {
    let dir = generation_dir(store, g);
    let lock_path = gen_lock_path(&dir);
    if lock_path.exists() {
        let f = open_lock_file(&lock_path)?;
        if !try_lock_exclusive(&f, &lock_path)? {
            return Ok(false);
        }
    }
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::Io {
            path: dir,
            source: e,
        }),
    }
}

/// Bytes of physical memory (0 if unknown).
pub fn ram_bytes() -> u64 {
    // SAFETY: sysconf only reads system parameters.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    u64::try_from(pages).unwrap_or(0) * u64::try_from(page).unwrap_or(0)
}

/// Whether a file of `len` bytes can stay in the page cache comfortably:
/// at most half of the machine's memory.
pub fn fits_in_cache(len: u64) -> bool {
    len <= ram_bytes() / 2
}

/// Ask the kernel to back a read-only file mapping with huge folios where
/// it reads pages in, when the whole file fits comfortably in memory
/// ([`fits_in_cache`]). A fault then reads the aligned 2 MiB around the
/// page and maps it through one TLB entry: frozen `get_many` from Python
/// at 10M pairs went from 9.0M to 10.2M keys/s (medians of 3). A file
/// larger than that is left to 4 KiB pages, since reading 2 MiB for each
/// random miss of a file that cannot stay cached would multiply its disk
/// reads. Failure (an old kernel, THP off) only leaves the default, so it
/// is ignored.
pub fn advise_huge_if_it_fits(map: &memmap2::Mmap) {
    #[cfg(target_os = "linux")]
    if fits_in_cache(map.len() as u64) {
        let _ = map.advise(memmap2::Advice::HugePage);
    }
}

/// Ask the kernel to start writing `len` bytes at `offset` of `file` to the
/// device now, without waiting, so a later fsync has little left to do.
/// Failure only means writeback starts later, so it is ignored.
pub fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    // SAFETY: a plain syscall on a descriptor we own.
    unsafe {
        libc::sync_file_range(
            std::os::unix::io::AsRawFd::as_raw_fd(file),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Open an existing file for reading; a missing one is [`Error::NotFound`].
pub fn open_existing(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound(path.to_path_buf())
        } else {
            Error::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })
}

/// Open a file of a format with a fixed `header_len`-byte header that
/// starts with `magic`, and return it with its length. A shorter file is
/// damage if it starts with the magic, and otherwise not of this format
/// (`what` names the format in that error).
pub fn open_with_header(
    path: &Path,
    header_len: u64,
    magic: &[u8; 8],
    what: &str,
) -> Result<(File, u64)> {
    let file = open_existing(path)?;
    let len = file.metadata().at(path)?.len();
    if len < header_len {
        let mut head = [0u8; 8];
        let n = std::io::Read::read(&mut &file, &mut head).at(path)?;
        if n == 8 && &head == magic {
            return Err(Error::corrupt(path, len, "file is shorter than its header"));
        }
        return Err(Error::format(path, format!("not a vastdict {what} file")));
    }
    Ok((file, len))
}

/// Write the crc32c of `b[..used - 4]` into `b[used - 4..used]` (how every
/// fixed header and commit slot of the formats is checksummed).
pub fn seal(b: &mut [u8], used: usize) {
    let crc = crc32c::crc32c(&b[..used - 4]);
    b[used - 4..used].copy_from_slice(&crc.to_le_bytes());
}

/// Whether `b[..used]` is intact as [`seal`] left it.
pub fn is_sealed(b: &[u8], used: usize) -> bool {
    crate::record::le_u32(b, used - 4) == crc32c::crc32c(&b[..used - 4])
}

/// A file whose header states its length must have that length.
pub fn check_stated_len(path: &Path, actual: u64, stated: u64) -> Result<()> {
    if actual != stated {
        return Err(Error::corrupt(
            path,
            actual.min(stated),
            format!(
                "file is {actual} bytes, its header says {stated}; it was truncated or extended"
            ),
        ));
    }
    Ok(())
}

/// A hidden temporary name next to `path`, unique to this process.
pub fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Write a file at `path` so that readers see the old file or the whole
/// new one: `fill` writes a temporary file, which is synced and renamed
/// over `path` (and removed if anything fails).
pub fn write_atomically(path: &Path, fill: impl FnOnce(&File, &Path) -> Result<()>) -> Result<()> {
    let tmp = tmp_path(path);
    let result = (|| {
        let file = File::create(&tmp).at(&tmp)?;
        fill(&file, &tmp)?;
        file.sync_all().at(&tmp)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).at(path)?;
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}
