//! Integer multimaps: u64 keys to groups of fixed-width values (u32, u64,
//! i64, f64), kept encoded in memory at close to the raw size of the
//! values, saved as one memory-mapped file that opens in O(1).
//!
//! A map has 256 partitions (by the top 8 bits of the mixed key). Each is
//! an encoded [segment](segment) plus the changes since it was encoded
//! (keys removed from it, groups added); changes are folded into a new
//! segment once they reach an eighth of it, and by `save`.

mod bits;
mod csr;
mod file;
mod map;
mod part;
mod segment;

pub use file::{file_info, FileInfo, MAGIC};
pub use map::{IntMultiMap, Probe};
