//! Integer multimaps over NumPy arrays: input through the buffer
//! protocol, results as bytearrays the Python layer views as arrays. One
//! class per value dtype, made by a macro; `vastdict.IntMultiMap` picks one.

use crate::errors::{closed, IntoPyResult};
use crate::intmap::{buffer, slice, slice_mut};
use parking_lot::RwLock;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict};
use std::path::PathBuf;
use vastdict_core::intmap::Value;
use vastdict_core::multimap::IntMultiMap;

enum State<V> {
    Writable(IntMultiMap<V>),
    Frozen(IntMultiMap<V>),
    Closed,
}

/// Little-endian bytes of `v`, as a bytearray (one copy).
fn bytes_of<'py, T: Value>(py: Python<'py>, v: &[T]) -> PyResult<Bound<'py, PyByteArray>> {
    PyByteArray::new_with(py, v.len() * T::WIDTH, |buf| {
        for (x, out) in v.iter().zip(buf.chunks_exact_mut(T::WIDTH)) {
            x.write_le(out);
        }
        Ok(())
    })
}

macro_rules! multimap_class {
    ($name:ident, $v:ty, $dtype:literal) => {
        #[pyclass(frozen, module = "vastdict._vastdict")]
        pub struct $name {
            state: RwLock<State<$v>>,
        }

        impl $name {
            fn with<R>(
                &self,
                py: Python<'_>,
                f: impl FnOnce(&IntMultiMap<$v>) -> PyResult<R>,
            ) -> PyResult<R> {
                match &*crate::locks::read(py, &self.state) {
                    State::Writable(m) | State::Frozen(m) => f(m),
                    State::Closed => Err(closed(py)),
                }
            }

            fn with_mut<R>(
                &self,
                py: Python<'_>,
                f: impl FnOnce(&mut IntMultiMap<$v>) -> PyResult<R>,
            ) -> PyResult<R> {
                match &mut *crate::locks::write(py, &self.state) {
                    State::Writable(m) => f(m),
                    State::Frozen(_) => {
                        Err(crate::errors::to_py(py, vastdict_core::Error::ReadOnly))
                    }
                    State::Closed => Err(closed(py)),
                }
            }
        }

        #[pymethods]
        impl $name {
            #[new]
            fn new(unique: bool) -> Self {
                $name {
                    state: RwLock::new(State::Writable(IntMultiMap::new(unique))),
                }
            }

            /// Open a saved multimap: mode "r" read-only, "a" with changes
            /// layered over the file in memory (saved with `save`).
            #[staticmethod]
            fn open(py: Python<'_>, path: PathBuf, mode: &str) -> PyResult<Self> {
                if mode != "r" && mode != "a" {
                    return Err(PyValueError::new_err(format!(
                        "mode must be \"r\" or \"a\", not {mode:?}"
                    )));
                }
                let m = py.detach(|| IntMultiMap::<$v>::open(&path)).py_err(py)?;
                let state = if mode == "r" {
                    State::Frozen(m)
                } else {
                    State::Writable(m)
                };
                Ok($name {
                    state: RwLock::new(state),
                })
            }

            #[getter]
            fn path(&self, py: Python<'_>) -> Option<PathBuf> {
                match &*crate::locks::read(py, &self.state) {
                    State::Writable(m) | State::Frozen(m) => m.path().map(PathBuf::from),
                    State::Closed => None,
                }
            }

            #[getter]
            fn writable(&self, py: Python<'_>) -> bool {
                matches!(*crate::locks::read(py, &self.state), State::Writable(_))
            }

            #[getter]
            fn closed(&self, py: Python<'_>) -> bool {
                matches!(*crate::locks::read(py, &self.state), State::Closed)
            }

            #[getter]
            fn unique(&self, py: Python<'_>) -> PyResult<bool> {
                self.with(py, |m| Ok(m.unique()))
            }

            fn close(&self, py: Python<'_>) {
                *crate::locks::write(py, &self.state) = State::Closed;
            }

            fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
                self.with(py, |m| Ok(py.detach(|| m.len()).py_err(py)? as usize))
            }

            fn num_values(&self, py: Python<'_>) -> PyResult<u64> {
                self.with(py, |m| Ok(m.num_values()))
            }

            /// Append values[i] to the group of keys[i]; returns how many
            /// values were added.
            fn add_many(
                &self,
                py: Python<'_>,
                keys: &Bound<'_, PyAny>,
                values: &Bound<'_, PyAny>,
            ) -> PyResult<u64> {
                let (kb, vb) = (
                    buffer::<u64>(keys, "keys", "uint64")?,
                    buffer::<$v>(values, "values", $dtype)?,
                );
                let (k, v) = (slice(&kb, "keys")?, slice(&vb, "values")?);
                let pool = crate::threads::pool()?;
                self.with_mut(py, |m| {
                    py.detach(|| pool.install(|| m.add_many(k, v))).py_err(py)
                })
            }

            /// Remove keys with all their values; returns how many were there.
            fn remove_many(&self, py: Python<'_>, keys: &Bound<'_, PyAny>) -> PyResult<u64> {
                let kb = buffer::<u64>(keys, "keys", "uint64")?;
                let k = slice(&kb, "keys")?;
                let pool = crate::threads::pool()?;
                self.with_mut(py, |m| {
                    py.detach(|| pool.install(|| m.remove_many(k))).py_err(py)
                })
            }

            /// The values of one key, as little-endian bytes.
            fn get<'py>(&self, py: Python<'py>, key: u64) -> PyResult<Bound<'py, PyByteArray>> {
                let v = self.with(py, |m| py.detach(|| m.get(key)).py_err(py))?;
                bytes_of(py, &v)
            }

            /// (offsets, values) of keys in CSR form, as bytes.
            fn get_many<'py>(
                &self,
                py: Python<'py>,
                keys: &Bound<'_, PyAny>,
            ) -> PyResult<(Bound<'py, PyByteArray>, Bound<'py, PyByteArray>)> {
                let kb = buffer::<u64>(keys, "keys", "uint64")?;
                let k = slice(&kb, "keys")?;
                let pool = crate::threads::pool()?;
                let chunks = self.with(py, |m| {
                    py.detach(|| pool.install(|| m.get_many_chunks(k)))
                        .py_err(py)
                })?;
                // Straight from the per-core pieces into the result buffers.
                let total: usize = chunks.iter().map(|c| c.1.len()).sum();
                let offsets = PyByteArray::new_with(py, 8 * (k.len() + 1), |buf| {
                    let mut at = 0u64;
                    let (first, rest) = buf.split_at_mut(8);
                    first.copy_from_slice(&0u64.to_le_bytes());
                    let sizes = chunks.iter().flat_map(|c| c.0.iter());
                    for (c, o) in sizes.zip(rest.chunks_exact_mut(8)) {
                        at += c;
                        o.copy_from_slice(&at.to_le_bytes());
                    }
                    Ok(())
                })?;
                let values = PyByteArray::new_with(py, total * <$v>::WIDTH, |buf| {
                    let mut rest = buf;
                    for (_, vals) in &chunks {
                        let (head, tail) = rest.split_at_mut(vals.len() * <$v>::WIDTH);
                        for (x, o) in vals.iter().zip(head.chunks_exact_mut(<$v>::WIDTH)) {
                            x.write_le(o);
                        }
                        rest = tail;
                    }
                    Ok(())
                })?;
                Ok((offsets, values))
            }

            /// Fill `out` (uint64) with each key's number of values.
            fn count_many_into(
                &self,
                py: Python<'_>,
                keys: &Bound<'_, PyAny>,
                out: &Bound<'_, PyAny>,
            ) -> PyResult<()> {
                let kb = buffer::<u64>(keys, "keys", "uint64")?;
                let ob = buffer::<u64>(out, "out", "uint64")?;
                let (k, o) = (slice(&kb, "keys")?, slice_mut(&ob, "out")?);
                let pool = crate::threads::pool()?;
                self.with(py, |m| {
                    py.detach(|| pool.install(|| m.count_many(k, o))).py_err(py)
                })
            }

            /// (keys, offsets, values) of every group, as bytes.
            fn export<'py>(
                &self,
                py: Python<'py>,
            ) -> PyResult<(
                Bound<'py, PyByteArray>,
                Bound<'py, PyByteArray>,
                Bound<'py, PyByteArray>,
            )> {
                let pool = crate::threads::pool()?;
                let (k, o, v) =
                    self.with(py, |m| py.detach(|| pool.install(|| m.export())).py_err(py))?;
                Ok((bytes_of(py, &k)?, bytes_of(py, &o)?, bytes_of(py, &v)?))
            }

            /// Fold all changes into the encoded form.
            fn compact(&self, py: Python<'_>) -> PyResult<()> {
                let pool = crate::threads::pool()?;
                self.with_mut(py, |m| {
                    py.detach(|| pool.install(|| m.compact())).py_err(py)
                })
            }

            /// Write the map to `path` (atomically); returns its size.
            fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<u64> {
                let pool = crate::threads::pool()?;
                let mut g = crate::locks::write(py, &self.state);
                match &mut *g {
                    State::Writable(m) | State::Frozen(m) => {
                        py.detach(|| pool.install(|| m.save(&path))).py_err(py)
                    }
                    State::Closed => Err(closed(py)),
                }
            }

            /// Keys, pairs and bytes: resident (heap) and on disk (if opened).
            fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                d.set_item("value_dtype", $dtype)?;
                self.with(py, |m| {
                    d.set_item("keys", py.detach(|| m.len()).py_err(py)?)?;
                    d.set_item("values", m.num_values())?;
                    d.set_item("unique", m.unique())?;
                    d.set_item("resident_bytes", m.resident_bytes())?;
                    if let Some(n) = m.file_len() {
                        d.set_item("bytes_on_disk", n)?;
                    }
                    Ok(())
                })?;
                d.set_item(
                    "mode",
                    if self.writable(py) {
                        "writable"
                    } else {
                        "frozen"
                    },
                )?;
                Ok(d)
            }

            /// Check every bucket and value; returns the number of pairs.
            fn verify(&self, py: Python<'_>) -> PyResult<u64> {
                let pool = crate::threads::pool()?;
                self.with(py, |m| py.detach(|| pool.install(|| m.verify())).py_err(py))
            }
        }
    };
}

multimap_class!(MultiMapU32, u32, "uint32");
multimap_class!(MultiMapU64, u64, "uint64");
multimap_class!(MultiMapI64, i64, "int64");
multimap_class!(MultiMapF64, f64, "float64");

/// The value dtype and set semantics of a saved multimap file.
#[pyfunction]
pub fn multimap_file_info(py: Python<'_>, path: PathBuf) -> PyResult<(String, bool)> {
    let info = py
        .detach(|| vastdict_core::multimap::file_info(&path))
        .py_err(py)?;
    Ok((info.dtype, info.unique))
}
