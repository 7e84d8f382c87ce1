//! vastdict's storage engine, in plain Rust.
//!
//! A store is a directory holding a MANIFEST, and generations of an
//! append-only log plus a memory-mapped hash index over it. See
//! `docs/FORMAT.md` for the byte layouts and the commit protocol, and
//! `docs/ARCHITECTURE.md` for why it is built this way.
//!
//! ```
//! use vastdict_core::{Store, Options};
//! let dir = tempfile::tempdir().unwrap();
//! let mut s = Store::open(dir.path(), &Options::default()).unwrap();
//! s.put(b"key", b"value").unwrap();
//! s.commit().unwrap();
//! assert_eq!(s.get(b"key").unwrap(), Some(&b"value"[..]));
//! ```

pub mod cache_fill;
pub mod checksum;
pub mod direct;
pub mod error;
pub mod files;
pub mod frozen;
pub mod hash;
pub mod heap;
pub mod index;
pub mod intmap;
pub mod log;
pub mod lsh;
pub mod manifest;
pub mod multimap;
pub mod prefetch;
pub mod record;
pub mod scan;
pub mod store;

pub use error::{Error, Result};
pub use store::{Mode, Options, PairBatch, Stats, Store};
