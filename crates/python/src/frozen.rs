//! `NativeFrozen`: a read-only frozen file with codecs applied.
//!
//! The file is one read-only shared mapping, so a forked child keeps using
//! it as is (there are no locks or writable handles to get wrong).

use crate::codec::Codec;
use crate::errors::{closed, IntoPyResult};
use crate::lookup::{self, Values};
use parking_lot::RwLock;
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use std::path::PathBuf;
use std::sync::Arc;
use vastdict_core::frozen::Frozen;

/// A chunk of iteration and the cursor to continue from (`None` at the end).
type ScanChunk<'py> = (Bound<'py, PyList>, Option<(u64, usize)>);

#[pyclass(subclass, frozen, module = "vastdict._vastdict")]
pub struct NativeFrozen {
    inner: RwLock<Option<Arc<Frozen>>>,
    key_codec: Codec,
    value_codec: Codec,
    path: PathBuf,
}

impl NativeFrozen {
    fn frozen(&self, py: Python<'_>) -> PyResult<Arc<Frozen>> {
        self.inner.read().clone().ok_or_else(|| closed(py))
    }

    /// Look `key` up; `None` if missing (or if it cannot be a key here).
    fn lookup<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let f = self.frozen(py)?;
        let k = self.key_codec.encode(key, "key")?;
        match f.get(&k).py_err(py)? {
            Some(v) => Ok(Some(self.value_codec.decode(py, v)?)),
            None => Ok(None),
        }
    }
}

#[pymethods]
impl NativeFrozen {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let f = py.detach(|| Frozen::open(&path)).py_err(py)?;
        let h = f.header();
        Ok(NativeFrozen {
            key_codec: Codec::parse(&h.key_codec)?,
            value_codec: Codec::parse(&h.value_codec)?,
            inner: RwLock::new(Some(Arc::new(f))),
            path,
        })
    }

    /// The file's path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Whether `close()` was called (every other call then raises `ClosedError`).
    #[getter]
    fn closed(&self) -> bool {
        self.inner.read().is_none()
    }

    /// Always false: a frozen store is read-only.
    #[getter]
    fn writable(&self) -> bool {
        false
    }

    /// The keys codec recorded at build time.
    #[getter]
    fn key_codec(&self) -> &'static str {
        self.key_codec.name()
    }

    /// The values codec recorded at build time.
    #[getter]
    fn value_codec(&self) -> &'static str {
        self.value_codec.name()
    }

    /// Unmap the file; later calls raise `ClosedError`.
    fn close(&self) {
        self.inner.write().take();
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.frozen(py)?.len() as usize)
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.lookup(py, key)?
            .ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let f = self.frozen(py)?;
        match self.key_codec.encode(key, "key") {
            Ok(k) => Ok(f.get(&k).py_err(py)?.is_some()),
            // Like a dict: a key of the wrong type is simply not there.
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyTypeError>(py) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `self[key]` if present, else `default`.
    #[pyo3(signature = (key, default=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self.lookup(py, key)? {
            Some(v) => v,
            None => default.unwrap_or_else(|| py.None().into_bound(py)),
        })
    }

    /// Values of many keys in one call, `None` where a key is missing.
    /// Lookups run on all cores without the GIL, overlapped with this
    /// thread's reading of keys and building of values.
    fn get_many<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let f = self.frozen(py)?;
        let pool = crate::threads::pool()?;
        // Values stay in the map (alive for the whole call, through `f`).
        lookup::lookup_many(py, pool, keys, self.key_codec, self.value_codec, |part| {
            f.get_many(part).map(|v| Values::pack(&v))
        })
    }

    /// Up to `max` keys, values or items (`what` 0, 1, 2) from `cursor`.
    fn _scan<'py>(
        &self,
        py: Python<'py>,
        cursor: (u64, usize),
        what: u8,
        max: usize,
    ) -> PyResult<ScanChunk<'py>> {
        let f = self.frozen(py)?;
        let (pairs, next) = f.scan(cursor, max).py_err(py)?;
        let mut out = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            out.push(match what {
                0 => self.key_codec.decode(py, k)?,
                1 => self.value_codec.decode(py, v)?,
                _ => PyTuple::new(
                    py,
                    [
                        self.key_codec.decode(py, k)?,
                        self.value_codec.decode(py, v)?,
                    ],
                )?
                .into_any(),
            });
        }
        Ok((PyList::new(py, out)?, next))
    }

    /// Entries, bytes on disk and the share of the file resident in memory.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let f = self.frozen(py)?;
        let h = f.header();
        let d = PyDict::new(py);
        d.set_item("kind", "frozen")?;
        d.set_item("entries", h.len)?;
        d.set_item("bytes_on_disk", h.file_len())?;
        d.set_item("data_bytes", h.data_len)?;
        d.set_item("index_bytes", h.index_len + h.table_len())?;
        d.set_item("raw_bytes", h.raw_bytes)?;
        d.set_item("garbage_bytes", 0)?;
        d.set_item("buckets", h.nbuckets)?;
        d.set_item("key_codec", &h.key_codec)?;
        d.set_item("value_codec", &h.value_codec)?;
        Ok(d)
    }

    /// Read every record and check every checksum; returns the pair count.
    fn verify(&self, py: Python<'_>) -> PyResult<u64> {
        let f = self.frozen(py)?;
        py.detach(|| f.verify()).py_err(py)
    }
}
