//! Frozen stores: immutable single files built in bulk and read through a
//! memory map, so every process on a machine shares one copy of the data
//! through the page cache.
//!
//! Layout and checksums are in [`format`]; [`Builder`] writes a file with
//! bounded memory; [`Frozen`] reads one.

mod arena;
mod build;
pub mod format;
mod lines;
mod reader;
mod source;
mod spill;
mod writer;

pub use build::{build_pairs, encode_pair, BuildOptions, Builder, OnDuplicate, DEFAULT_SEED};
pub use reader::Frozen;
pub use source::{add_file, Column, FieldCodec, FileFormat, FileSource, FileStats};
