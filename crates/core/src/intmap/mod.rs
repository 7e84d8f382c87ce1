//! Integer maps: u64 keys to fixed-width values (u32, u64, i64, f64) at
//! close to the raw size of the numbers, with batch operations over slices
//! (NumPy arrays in the binding) that run on all cores.
//!
//! [`IntMap`] is mutable and in memory; [`FrozenIntMap`] is its saved,
//! memory-mapped, read-only form.

mod frozen;
pub(crate) mod map;
mod overlay;
mod part;
mod value;

pub use frozen::{file_dtype, write as write_frozen, FrozenIntMap};
pub use map::IntMap;
pub use overlay::OverlayMap;
pub use value::{mix, unmix, Value};
