//! MinHash signatures and a banded LSH index over them for near-duplicate
//! detection; band tables are truncated [`crate::multimap`]s.

mod column;
mod dedup;
mod file;
mod index;
mod kernels;
mod minhash;
mod params;
mod search;

pub use dedup::{clusters, ExactChecker};
pub use index::{LshConfig, LshIndex, Verify};
pub use minhash::{estimate_jaccard, MinHasher, Scratch, Unit};
pub use params::optimal_params;
