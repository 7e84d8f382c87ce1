//! MinHash signatures and a banded LSH index over them for near-duplicate
//! detection; band tables are truncated [`crate::multimap`]s.
//!
//! [`BandTable`] is a layout for one band made for point lookups (sorted
//! pairs under a bucket directory). The index does not use it yet: the
//! `band_speed` example measures it beside the multimaps.

mod band;
mod column;
mod dedup;
mod file;
mod index;
mod kernels;
mod minhash;
mod params;
mod search;

pub use band::BandTable;
pub use dedup::{clusters, ExactChecker};
pub use index::{LshConfig, LshIndex, Verify};
pub use minhash::{estimate_jaccard, MinHasher, Scratch, Unit};
pub use params::optimal_params;
