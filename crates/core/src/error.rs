//! Errors of the engine. Each variant maps to one Python exception class in
//! the binding, so the variants are about what the user must do, not about
//! which function failed.

use std::io;
use std::path::{Path, PathBuf};

/// Everything the engine can report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bytes on disk do not match what the format promises.
    #[error("{path}: corrupt at byte {offset}: {reason}; run vastdict.verify() on the store, restore it from a backup, or copy out what still reads")]
    Corruption {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// Another process (or handle) holds the store open for writing.
    #[error("{0}: another process holds this store open for writing; close it there, or open this one with flag=\"r\"")]
    Locked(PathBuf),
    /// A write was attempted through a read-only handle.
    #[error("store was opened read-only; reopen it with flag=\"w\" or \"c\" to write")]
    ReadOnly,
    /// The handle was closed.
    #[error("store is closed; open it again with vastdict.open()")]
    Closed,
    /// Flag "r" or "w" on a path that holds no store.
    #[error("{0}: no store here; use flag=\"c\" to create one")]
    NotFound(PathBuf),
    /// The path exists but is not a vastdict store, or has a newer format.
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    /// A key or value cannot be stored (too large, for instance).
    #[error("{0}")]
    Invalid(String),
    /// The disk is full; committed data is intact.
    #[error("{path}: no space left on the device; free some space, then commit again (committed data is intact)")]
    DiskFull { path: PathBuf },
    /// A line of an input file cannot be read as a pair.
    #[error("{}:{line}: {reason}; fix the line, or pass errors=\"skip\" to skip bad lines", path.display())]
    Input {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    /// A long operation (a build) was stopped through its cancel flag.
    #[error("interrupted; nothing was written")]
    Interrupted,
    /// Any other operating-system error, with the file it happened on.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Shorthand used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corruption {
            path: path.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }

    pub(crate) fn format(path: &Path, reason: impl Into<String>) -> Self {
        Error::Format {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// Attach a path to an `io::Error`, turning ENOSPC into [`Error::DiskFull`].
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| {
            if source.raw_os_error() == Some(libc::ENOSPC) {
                Error::DiskFull {
                    path: path.to_path_buf(),
                }
            } else {
                Error::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })
    }
}
