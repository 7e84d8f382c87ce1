//! Integer maps over NumPy arrays (through the buffer protocol, so no copy
//! of the input and no Python object per entry). One class per value
//! dtype, made by a macro; the Python class `vastdict.IntMap` picks one.

use crate::errors::{closed, IntoPyResult};
use parking_lot::RwLock;
use pyo3::buffer::{Element, PyBuffer};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::sync::Arc;
use vastdict_core::intmap::{FrozenIntMap, OverlayMap};

/// A map open for writing, a read-only file, or closed.
enum State<V> {
    Writable(OverlayMap<V>),
    Frozen(Arc<FrozenIntMap<V>>),
    Closed,
}

/// The contiguous contents of a buffer.
pub(crate) fn slice<T: Element>(b: &PyBuffer<T>, what: &str) -> PyResult<&'static [T]> {
    let p = b
        .as_slice_ptr()
        .ok_or_else(|| PyValueError::new_err(format!("{what} must be a contiguous array")))?;
    // SAFETY: the buffer stays acquired (so the memory stays valid) for the
    // whole method call that uses the slice; callers never keep it longer.
    Ok(unsafe { &*p.as_ptr() })
}

/// The contents of a writable buffer.
pub(crate) fn slice_mut<T: Element>(b: &PyBuffer<T>, what: &str) -> PyResult<&'static mut [T]> {
    if b.readonly() {
        return Err(PyValueError::new_err(format!("{what} must be writable")));
    }
    let p = b
        .as_slice_ptr()
        .ok_or_else(|| PyValueError::new_err(format!("{what} must be a contiguous array")))?;
    // SAFETY: as for `slice`; the array was just made by the Python layer
    // for this call, so nothing else writes it meanwhile.
    Ok(unsafe { &mut *p.as_ptr() })
}

pub(crate) fn buffer<T: Element>(
    obj: &Bound<'_, PyAny>,
    what: &str,
    dtype: &str,
) -> PyResult<PyBuffer<T>> {
    PyBuffer::get(obj).map_err(|_| PyTypeError::new_err(format!("{what} must be a {dtype} array")))
}

macro_rules! intmap_class {
    ($name:ident, $v:ty, $dtype:literal) => {
        #[pyclass(frozen, module = "vastdict._vastdict")]
        pub struct $name {
            state: RwLock<State<$v>>,
            path: RwLock<Option<PathBuf>>,
        }

        impl $name {
            fn with<R>(
                &self,
                py: Python<'_>,
                f: impl FnOnce(&State<$v>) -> PyResult<R>,
            ) -> PyResult<R> {
                let g = crate::locks::read(py, &self.state);
                if matches!(*g, State::Closed) {
                    return Err(closed(py));
                }
                f(&g)
            }

            fn with_mut<R>(
                &self,
                py: Python<'_>,
                f: impl FnOnce(&mut OverlayMap<$v>) -> PyResult<R>,
            ) -> PyResult<R> {
                let mut g = crate::locks::write(py, &self.state);
                match &mut *g {
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
            fn new() -> Self {
                $name {
                    state: RwLock::new(State::Writable(OverlayMap::new(None))),
                    path: RwLock::new(None),
                }
            }

            /// Open a saved map: mode "r" maps it read-only, "a" layers
            /// changes over it in memory (saved with `save`).
            #[staticmethod]
            fn open(py: Python<'_>, path: PathBuf, mode: &str) -> PyResult<Self> {
                let f = py.detach(|| FrozenIntMap::<$v>::open(&path)).py_err(py)?;
                let state = match mode {
                    "r" => State::Frozen(Arc::new(f)),
                    "a" => State::Writable(OverlayMap::new(Some(Arc::new(f)))),
                    other => {
                        return Err(PyValueError::new_err(format!(
                            "mode must be \"r\" or \"a\", not {other:?}"
                        )))
                    }
                };
                Ok($name {
                    state: RwLock::new(state),
                    path: RwLock::new(Some(path)),
                })
            }

            #[getter]
            fn path(&self) -> Option<PathBuf> {
                self.path.read().clone()
            }

            #[getter]
            fn writable(&self, py: Python<'_>) -> bool {
                matches!(*crate::locks::read(py, &self.state), State::Writable(_))
            }

            #[getter]
            fn closed(&self, py: Python<'_>) -> bool {
                matches!(*crate::locks::read(py, &self.state), State::Closed)
            }

            fn close(&self, py: Python<'_>) {
                *crate::locks::write(py, &self.state) = State::Closed;
            }

            fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
                self.with(py, |s| {
                    Ok(match s {
                        State::Writable(m) => m.len(),
                        State::Frozen(f) => f.len() as usize,
                        State::Closed => 0,
                    })
                })
            }

            /// Set keys[i] to values[i]; returns how many keys were new.
            fn put_many(
                &self,
                py: Python<'_>,
                keys: &Bound<'_, PyAny>,
                values: &Bound<'_, PyAny>,
            ) -> PyResult<usize> {
                let (kb, vb) = (
                    buffer::<u64>(keys, "keys", "uint64")?,
                    buffer::<$v>(values, "values", $dtype)?,
                );
                let (k, v) = (slice(&kb, "keys")?, slice(&vb, "values")?);
                let pool = crate::threads::pool()?;
                self.with_mut(py, |m| {
                    py.detach(|| pool.install(|| m.put_many(k, v))).py_err(py)
                })
            }

            /// Remove keys; returns how many were there.
            fn remove_many(&self, py: Python<'_>, keys: &Bound<'_, PyAny>) -> PyResult<usize> {
                let kb = buffer::<u64>(keys, "keys", "uint64")?;
                let k = slice(&kb, "keys")?;
                let pool = crate::threads::pool()?;
                self.with_mut(py, |m| {
                    py.detach(|| pool.install(|| m.remove_many(k))).py_err(py)
                })
            }

            /// Look keys up into `out` (left alone where missing) and
            /// `found` (a uint8 array: 1 where present).
            fn get_many_into(
                &self,
                py: Python<'_>,
                keys: &Bound<'_, PyAny>,
                out: &Bound<'_, PyAny>,
                found: &Bound<'_, PyAny>,
            ) -> PyResult<()> {
                let kb = buffer::<u64>(keys, "keys", "uint64")?;
                let ob = buffer::<$v>(out, "out", $dtype)?;
                let fb = buffer::<u8>(found, "found", "uint8")?;
                let (k, o, fo) = (
                    slice(&kb, "keys")?,
                    slice_mut(&ob, "out")?,
                    slice_mut(&fb, "found")?,
                );
                if o.len() != k.len() || fo.len() != k.len() {
                    return Err(PyValueError::new_err(
                        "out and found must match keys in length",
                    ));
                }
                let pool = crate::threads::pool()?;
                self.with(py, |s| {
                    py.detach(|| {
                        let mut flags = vec![false; k.len()];
                        pool.install(|| match s {
                            State::Writable(m) => m.get_many(k, o, &mut flags),
                            State::Frozen(f) => f.get_many(k, o, &mut flags),
                            State::Closed => Ok(()),
                        })?;
                        for (d, s) in fo.iter_mut().zip(flags) {
                            *d = u8::from(s);
                        }
                        Ok(())
                    })
                    .py_err(py)
                })
            }

            /// The value of one key, or None.
            fn get(&self, py: Python<'_>, key: u64) -> PyResult<Option<$v>> {
                self.with(py, |s| {
                    match s {
                        State::Writable(m) => m.get(key),
                        State::Frozen(f) => f.get(key),
                        State::Closed => Ok(None),
                    }
                    .py_err(py)
                })
            }

            /// Fill `keys_out` and `values_out` (both of length len()).
            fn export(
                &self,
                py: Python<'_>,
                keys_out: &Bound<'_, PyAny>,
                values_out: &Bound<'_, PyAny>,
            ) -> PyResult<()> {
                let kb = buffer::<u64>(keys_out, "keys_out", "uint64")?;
                let vb = buffer::<$v>(values_out, "values_out", $dtype)?;
                let (k, v) = (slice_mut(&kb, "keys_out")?, slice_mut(&vb, "values_out")?);
                self.with(py, |s| {
                    let n = match s {
                        State::Writable(m) => m.len(),
                        State::Frozen(f) => f.len() as usize,
                        State::Closed => 0,
                    };
                    if k.len() != n || v.len() != n {
                        return Err(PyValueError::new_err(
                            "output arrays must have len() entries",
                        ));
                    }
                    py.detach(|| {
                        let pairs: Box<dyn Iterator<Item = (u64, $v)>> = match s {
                            State::Writable(m) => Box::new(m.iter()),
                            State::Frozen(f) => Box::new(f.iter()),
                            State::Closed => Box::new(std::iter::empty()),
                        };
                        for ((dk, dv), (pk, pv)) in k.iter_mut().zip(v.iter_mut()).zip(pairs) {
                            *dk = pk;
                            *dv = pv;
                        }
                    });
                    Ok(())
                })
            }

            /// Write the map to a frozen file at `path`; returns its size.
            fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<u64> {
                let n = self.with(py, |s| {
                    py.detach(|| match s {
                        State::Writable(m) => m.save(&path),
                        State::Frozen(f) => {
                            let f = f.clone();
                            vastdict_core::intmap::write_frozen(&path, f.len(), || f.iter_mixed())
                        }
                        State::Closed => Ok(0),
                    })
                    .py_err(py)
                })?;
                Ok(n)
            }

            /// Entries and bytes: resident (heap) and on disk (if saved).
            fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                d.set_item("value_dtype", $dtype)?;
                self.with(py, |s| {
                    match s {
                        State::Writable(m) => {
                            d.set_item("entries", m.len())?;
                            d.set_item("resident_bytes", m.resident_bytes())?;
                            d.set_item("mode", "writable")?;
                        }
                        State::Frozen(f) => {
                            d.set_item("entries", f.len())?;
                            d.set_item("resident_bytes", 0)?;
                            d.set_item("bytes_on_disk", f.file_len())?;
                            d.set_item("mode", "frozen")?;
                        }
                        State::Closed => {}
                    }
                    Ok(())
                })?;
                Ok(d)
            }

            /// Check every bucket of a frozen map; returns the entry count.
            fn verify(&self, py: Python<'_>) -> PyResult<u64> {
                self.with(py, |s| match s {
                    State::Frozen(f) => py.detach(|| f.verify()).py_err(py),
                    State::Writable(m) => Ok(m.len() as u64),
                    State::Closed => Ok(0),
                })
            }
        }
    };
}

intmap_class!(IntMapU32, u32, "uint32");
intmap_class!(IntMapU64, u64, "uint64");
intmap_class!(IntMapI64, i64, "int64");
intmap_class!(IntMapF64, f64, "float64");

/// The value dtype stored in a saved integer map file.
#[pyfunction]
pub fn intmap_file_dtype(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    py.detach(|| vastdict_core::intmap::file_dtype(&path))
        .py_err(py)
}
