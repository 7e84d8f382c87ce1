//! MinHash signatures and a banded LSH index over them for near-duplicate
//! detection. Each band of the index is a few [`BandTable`]s: sorted
//! (band hash, slot) pairs under a bucket directory, made for point
//! lookups.

mod band;
mod column;
mod dedup;
mod file;
mod index;
mod kernels;
mod minhash;
mod params;
mod runs;
mod search;
mod stream;

pub use band::BandTable;
pub use dedup::{clusters, ExactChecker};
pub use index::{LshConfig, LshIndex, Verify};
pub use minhash::{estimate_jaccard, MinHasher, Scratch, Unit};
pub use params::optimal_params;
