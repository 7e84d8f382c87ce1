//! MinHash signatures for near-duplicate detection (the LSH index builds
//! on them and on [`crate::multimap`]).

mod minhash;

pub use minhash::{estimate_jaccard, MinHasher, Scratch, Unit};
