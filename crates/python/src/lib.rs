//! The `vastdict._vastdict` extension module: a thin layer that converts
//! Python objects to bytes and back, maps engine errors to the exception
//! tree of `vastdict._errors`, and releases the GIL around engine work.
//! The public API lives in the Python package.

mod build;
mod codec;
mod errors;
mod frozen;
mod intmap;
mod locks;
mod lookup;
mod lsh;
mod multimap;
mod pipeline;
mod store;
mod threads;

use pyo3::prelude::*;

#[pymodule]
fn _vastdict(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<store::NativeStore>()?;
    m.add_class::<frozen::NativeFrozen>()?;
    m.add_function(wrap_pyfunction!(build::build_pairs, m)?)?;
    m.add_function(wrap_pyfunction!(build::build_file, m)?)?;
    m.add_class::<build::NativeProgress>()?;
    m.add_class::<intmap::IntMapU32>()?;
    m.add_class::<intmap::IntMapU64>()?;
    m.add_class::<intmap::IntMapI64>()?;
    m.add_class::<intmap::IntMapF64>()?;
    m.add_function(wrap_pyfunction!(intmap::intmap_file_dtype, m)?)?;
    m.add_class::<multimap::MultiMapU32>()?;
    m.add_class::<multimap::MultiMapU64>()?;
    m.add_class::<multimap::MultiMapI64>()?;
    m.add_class::<multimap::MultiMapF64>()?;
    m.add_function(wrap_pyfunction!(multimap::multimap_file_info, m)?)?;
    m.add_class::<lsh::NativeMinHasher>()?;
    m.add_class::<lsh::NativeExactChecker>()?;
    m.add_class::<lsh::NativeLshIndex>()?;
    m.add_function(wrap_pyfunction!(lsh::lsh_clusters, m)?)?;
    m.add_function(wrap_pyfunction!(lsh::lsh_optimal_params, m)?)?;
    m.add_function(wrap_pyfunction!(store::_after_fork_in_child, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
