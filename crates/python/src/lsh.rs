//! MinHash signing and the LSH index over NumPy arrays: texts and arrays
//! in through the buffer protocol, signatures written into arrays the
//! Python layer allocates, CSR results as bytearrays it views as arrays.

use crate::errors::{closed, IntoPyResult};
use crate::intmap::{buffer, slice, slice_mut};
use numpy::{PyArray1, PyArrayMethods};
use parking_lot::RwLock;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict, PyString};
use std::path::PathBuf;
use vastdict_core::lsh::{self, LshConfig, LshIndex, MinHasher, Unit, Verify};

fn le_bytes<'py>(py: Python<'py>, v: &[u64]) -> PyResult<Bound<'py, PyByteArray>> {
    PyByteArray::new_with(py, v.len() * 8, |buf| {
        for (x, o) in v.iter().zip(buf.chunks_exact_mut(8)) {
            o.copy_from_slice(&x.to_le_bytes());
        }
        Ok(())
    })
}

fn csr<'py>(
    py: Python<'py>,
    (offsets, ids): (Vec<u64>, Vec<u64>),
) -> PyResult<(Bound<'py, PyByteArray>, Bound<'py, PyByteArray>)> {
    Ok((le_bytes(py, &offsets)?, le_bytes(py, &ids)?))
}

/// Texts of `data` cut at `offsets` (an Arrow string array's buffers).
fn cut<'a>(offsets: &[i64], data: &'a [u8]) -> PyResult<Vec<&'a str>> {
    offsets
        .windows(2)
        .map(|w| {
            let (s, e) = (w[0] as usize, w[1] as usize);
            data.get(s..e)
                .filter(|_| w[0] >= 0 && s <= e)
                .ok_or_else(|| PyValueError::new_err("string offsets out of range"))
                .and_then(|b| {
                    std::str::from_utf8(b)
                        .map_err(|_| PyValueError::new_err("a text is not valid UTF-8"))
                })
        })
        .collect()
}

#[pyclass(frozen, module = "vastdict._vastdict")]
pub struct NativeMinHasher {
    h: MinHasher,
}

#[pymethods]
impl NativeMinHasher {
    #[new]
    fn new(
        py: Python<'_>,
        num_perm: usize,
        ngram: usize,
        unit: &str,
        seed: u64,
        lowercase: bool,
    ) -> PyResult<Self> {
        let unit = match unit {
            "word" => Unit::Word,
            "char" => Unit::Char,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "unit must be \"word\" or \"char\", not {unit:?}"
                )))
            }
        };
        Ok(NativeMinHasher {
            h: MinHasher::new(num_perm, ngram, unit, seed, lowercase).py_err(py)?,
        })
    }

    /// Sign a list of str into `out` (uint32, rows * num_perm).
    fn sign_texts(
        &self,
        py: Python<'_>,
        texts: Vec<Bound<'_, PyString>>,
        out: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let strs: Vec<&str> = texts.iter().map(|t| t.to_str()).collect::<PyResult<_>>()?;
        let ob = buffer::<u32>(out, "out", "uint32")?;
        let o = slice_mut(&ob, "out")?;
        let pool = crate::threads::pool()?;
        py.detach(|| pool.install(|| self.h.sign_many(&strs, o)))
            .py_err(py)
    }

    /// Sign texts stored as Arrow does: UTF-8 `data` cut at `offsets`.
    fn sign_utf8(
        &self,
        py: Python<'_>,
        offsets: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        out: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (offb, db, ob) = (
            buffer::<i64>(offsets, "offsets", "int64")?,
            buffer::<u8>(data, "data", "bytes")?,
            buffer::<u32>(out, "out", "uint32")?,
        );
        let (off, d, o) = (
            slice(&offb, "offsets")?,
            slice(&db, "data")?,
            slice_mut(&ob, "out")?,
        );
        let pool = crate::threads::pool()?;
        py.detach(|| {
            let texts = cut(off, d)?;
            pool.install(|| self.h.sign_many(&texts, o))
                .map_err(|e| PyValueError::new_err(e.to_string()))
        })
    }

    /// Sign pre-tokenized texts: row `i` is `tokens[offsets[i]:offsets[i+1]]`.
    fn sign_tokens(
        &self,
        py: Python<'_>,
        offsets: &Bound<'_, PyAny>,
        tokens: Vec<Bound<'_, PyString>>,
        out: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let toks: Vec<&str> = tokens.iter().map(|t| t.to_str()).collect::<PyResult<_>>()?;
        let (offb, ob) = (
            buffer::<u64>(offsets, "offsets", "uint64")?,
            buffer::<u32>(out, "out", "uint32")?,
        );
        let (off, o) = (slice(&offb, "offsets")?, slice_mut(&ob, "out")?);
        let pool = crate::threads::pool()?;
        py.detach(|| pool.install(|| self.h.sign_token_sets(off, &toks, o)))
            .py_err(py)
    }

    /// Sign sets of uint64 hashes given in CSR form.
    fn sign_hash_sets(
        &self,
        py: Python<'_>,
        offsets: &Bound<'_, PyAny>,
        hashes: &Bound<'_, PyAny>,
        out: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (offb, hb, ob) = (
            buffer::<u64>(offsets, "offsets", "uint64")?,
            buffer::<u64>(hashes, "hashes", "uint64")?,
            buffer::<u32>(out, "out", "uint32")?,
        );
        let (off, h, o) = (
            slice(&offb, "offsets")?,
            slice(&hb, "hashes")?,
            slice_mut(&ob, "out")?,
        );
        let pool = crate::threads::pool()?;
        py.detach(|| pool.install(|| self.h.sign_hash_sets(off, h, o)))
            .py_err(py)
    }

    /// Candidate pairs (as two uint64 arrays) checked by the exact Jaccard
    /// similarity of the shingle sets of `texts`, fed in batches.
    fn exact_checker(
        &self,
        py: Python<'_>,
        threshold: f64,
        left: &Bound<'_, PyAny>,
        right: &Bound<'_, PyAny>,
    ) -> PyResult<NativeExactChecker> {
        let (lb, rb) = (
            buffer::<u64>(left, "left", "uint64")?,
            buffer::<u64>(right, "right", "uint64")?,
        );
        let (l, r) = (slice(&lb, "left")?, slice(&rb, "right")?);
        let pairs: Vec<(u64, u64)> =
            py.detach(|| l.iter().copied().zip(r.iter().copied()).collect());
        Ok(NativeExactChecker {
            c: RwLock::new(lsh::ExactChecker::new(self.h.clone(), threshold, &pairs)),
        })
    }
}

#[pyclass(frozen, module = "vastdict._vastdict")]
pub struct NativeExactChecker {
    c: RwLock<lsh::ExactChecker>,
}

#[pymethods]
impl NativeExactChecker {
    fn feed(&self, py: Python<'_>, texts: Vec<Bound<'_, PyString>>) -> PyResult<()> {
        let strs: Vec<&str> = texts.iter().map(|t| t.to_str()).collect::<PyResult<_>>()?;
        let pool = crate::threads::pool()?;
        py.detach(|| pool.install(|| self.c.write().feed(&strs)));
        Ok(())
    }

    fn feed_utf8(
        &self,
        py: Python<'_>,
        offsets: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (offb, db) = (
            buffer::<i64>(offsets, "offsets", "int64")?,
            buffer::<u8>(data, "data", "bytes")?,
        );
        let (off, d) = (slice(&offb, "offsets")?, slice(&db, "data")?);
        let pool = crate::threads::pool()?;
        py.detach(|| {
            let texts = cut(off, d)?;
            pool.install(|| self.c.write().feed(&texts));
            Ok(())
        })
    }

    /// (accepted pairs as two uint64 bytearrays, pairs checked).
    fn accepted<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyByteArray>, Bound<'py, PyByteArray>, u64)> {
        let c = self.c.read();
        let (l, r): (Vec<u64>, Vec<u64>) = c.accepted().iter().copied().unzip();
        Ok((le_bytes(py, &l)?, le_bytes(py, &r)?, c.checked()))
    }
}

/// The cluster of each of `n` documents (the smallest member's number).
#[pyfunction]
pub fn lsh_clusters<'py>(
    py: Python<'py>,
    n: usize,
    left: &Bound<'_, PyAny>,
    right: &Bound<'_, PyAny>,
) -> PyResult<Bound<'py, PyByteArray>> {
    let (lb, rb) = (
        buffer::<u64>(left, "left", "uint64")?,
        buffer::<u64>(right, "right", "uint64")?,
    );
    let (l, r) = (slice(&lb, "left")?, slice(&rb, "right")?);
    if l.len() != r.len() {
        return Err(PyValueError::new_err(
            "left and right must have the same length",
        ));
    }
    let c = py.detach(|| {
        let pairs: Vec<(u64, u64)> = l.iter().copied().zip(r.iter().copied()).collect();
        lsh::clusters(n, &pairs)
    });
    le_bytes(py, &c)
}

#[pyfunction]
pub fn lsh_optimal_params(
    py: Python<'_>,
    threshold: f64,
    num_perm: usize,
    fp_weight: f64,
    fn_weight: f64,
) -> PyResult<(usize, usize)> {
    py.detach(|| lsh::optimal_params(threshold, num_perm, fp_weight, fn_weight))
        .py_err(py)
}

enum State {
    Open(Box<LshIndex>),
    Closed,
}

#[pyclass(frozen, module = "vastdict._vastdict")]
pub struct NativeLshIndex {
    state: RwLock<State>,
}

fn verify_of(v: Option<f64>) -> Verify {
    v.map_or(Verify::Raw, Verify::Estimate)
}

impl NativeLshIndex {
    fn with<R>(&self, py: Python<'_>, f: impl FnOnce(&LshIndex) -> PyResult<R>) -> PyResult<R> {
        match &*crate::locks::read(py, &self.state) {
            State::Open(i) => f(i),
            State::Closed => Err(closed(py)),
        }
    }

    fn with_mut<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut LshIndex) -> PyResult<R>,
    ) -> PyResult<R> {
        match &mut *crate::locks::write(py, &self.state) {
            State::Open(i) => f(i),
            State::Closed => Err(closed(py)),
        }
    }
}

#[pymethods]
impl NativeLshIndex {
    #[new]
    fn new(
        py: Python<'_>,
        num_perm: usize,
        bands: usize,
        rows: usize,
        threshold: f64,
        keep_signatures: bool,
        band_bits: u32,
    ) -> PyResult<Self> {
        let cfg = LshConfig {
            num_perm,
            bands,
            rows,
            threshold,
            keep_signatures,
            band_bits,
        };
        Ok(NativeLshIndex {
            state: RwLock::new(State::Open(Box::new(LshIndex::new(cfg).py_err(py)?))),
        })
    }

    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let pool = crate::threads::pool()?;
        let i = py
            .detach(|| pool.install(|| LshIndex::open(&path)))
            .py_err(py)?;
        Ok(NativeLshIndex {
            state: RwLock::new(State::Open(Box::new(i))),
        })
    }

    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with(py, |i| {
            let c = i.config();
            let d = PyDict::new(py);
            d.set_item("num_perm", c.num_perm)?;
            d.set_item("bands", c.bands)?;
            d.set_item("rows", c.rows)?;
            d.set_item("threshold", c.threshold)?;
            d.set_item("keep_signatures", c.keep_signatures)?;
            d.set_item("band_bits", c.band_bits)?;
            Ok(d)
        })
    }

    fn insert_many(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        sigs: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (ib, sb) = (
            buffer::<u64>(ids, "ids", "uint64")?,
            buffer::<u32>(sigs, "signatures", "uint32")?,
        );
        let (i, s) = (slice(&ib, "ids")?, slice(&sb, "signatures")?);
        let pool = crate::threads::pool()?;
        self.with_mut(py, |x| {
            // The band tables change on this thread, so the scratch memory
            // returns to the OS; only the band hashing uses the pool.
            py.detach(|| x.insert_many_in(Some(pool), i, s)).py_err(py)
        })
    }

    /// One signature's candidates as a uint64 array, on this thread (no
    /// pool hand-off). A single query takes a few microseconds, so what
    /// surrounds it counts: a uint32 NumPy row is read through NumPy's own
    /// API (the buffer protocol costs more than the copy), and the answer
    /// is handed back as an array, with no view to make in Python.
    #[pyo3(signature = (sig, verify))]
    fn query<'py>(
        &self,
        py: Python<'py>,
        sig: &Bound<'_, PyAny>,
        verify: Option<f64>,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        // The GIL is kept, as by `s[k]`: a query takes a few microseconds,
        // and releasing and retaking the GIL added about 5% to that.
        let ids = self.with(py, |x| {
            let v = verify_of(verify);
            let array = sig.cast::<PyArray1<u32>>().ok();
            // SAFETY: the GIL is held from here until the query has
            // returned, so no Python code can write or free the array
            // meanwhile; `as_slice` refuses one that is not contiguous.
            match array.as_ref().and_then(|a| unsafe { a.as_slice() }.ok()) {
                Some(row) => x.query(row, v),
                None => {
                    let b = buffer::<u32>(sig, "signature", "uint32")?;
                    x.query(slice(&b, "signature")?, v)
                }
            }
            .py_err(py)
        })?;
        // Copied into an array NumPy owns: for the few ids a query finds
        // that is cheaper than an array over the Vec with an owner object.
        Ok(PyArray1::from_slice(py, &ids))
    }

    #[pyo3(signature = (sigs, verify))]
    fn query_many<'py>(
        &self,
        py: Python<'py>,
        sigs: &Bound<'_, PyAny>,
        verify: Option<f64>,
    ) -> PyResult<(Bound<'py, PyByteArray>, Bound<'py, PyByteArray>)> {
        let sb = buffer::<u32>(sigs, "signatures", "uint32")?;
        let s = slice(&sb, "signatures")?;
        let pool = crate::threads::pool()?;
        let r = self.with(py, |x| {
            py.detach(|| pool.install(|| x.query_many(s, verify_of(verify))))
                .py_err(py)
        })?;
        csr(py, r)
    }

    #[pyo3(signature = (ids, sigs, verify))]
    fn insert_and_query_many<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'_, PyAny>,
        sigs: &Bound<'_, PyAny>,
        verify: Option<f64>,
    ) -> PyResult<(Bound<'py, PyByteArray>, Bound<'py, PyByteArray>)> {
        let (ib, sb) = (
            buffer::<u64>(ids, "ids", "uint64")?,
            buffer::<u32>(sigs, "signatures", "uint32")?,
        );
        let (i, s) = (slice(&ib, "ids")?, slice(&sb, "signatures")?);
        let pool = crate::threads::pool()?;
        let r = self.with_mut(py, |x| {
            // As insert_many: the search on the pool, the inserts here.
            py.detach(|| x.insert_and_query_many_in(Some(pool), i, s, verify_of(verify)))
                .py_err(py)
        })?;
        csr(py, r)
    }

    fn remove_many(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<u64> {
        let ib = buffer::<u64>(ids, "ids", "uint64")?;
        let i = slice(&ib, "ids")?;
        self.with_mut(py, |x| Ok(py.detach(|| x.remove_many(i))))
    }

    fn contains_many<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let ib = buffer::<u64>(ids, "ids", "uint64")?;
        let i = slice(&ib, "ids")?;
        let found = self.with(py, |x| Ok(py.detach(|| x.contains_many(i))))?;
        PyByteArray::new_with(py, found.len(), |buf| {
            for (b, f) in buf.iter_mut().zip(found) {
                *b = u8::from(f);
            }
            Ok(())
        })
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |x| Ok(x.len() as usize))
    }

    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let pool = crate::threads::pool()?;
        self.with_mut(py, |x| {
            py.detach(|| pool.install(|| x.save(&path))).py_err(py)
        })
    }

    fn compact(&self, py: Python<'_>) -> PyResult<()> {
        // On this thread, as the band tables' changes are (see insert_many).
        self.with_mut(py, |x| py.detach(|| x.compact()).py_err(py))
    }

    fn merge(&self, py: Python<'_>, other: &NativeLshIndex) -> PyResult<()> {
        if std::ptr::eq(self, other) {
            return Err(PyValueError::new_err(
                "an index cannot be merged into itself",
            ));
        }
        other.with(py, |o| {
            self.with_mut(py, |x| py.detach(|| x.merge(o)).py_err(py))
        })
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with(py, |x| {
            let d = PyDict::new(py);
            d.set_item("documents", x.len())?;
            d.set_item("slots", x.slots())?;
            d.set_item("table_bytes", x.table_bytes())?;
            d.set_item("signature_bytes", x.signature_bytes())?;
            d.set_item("resident_bytes", x.resident_bytes())?;
            Ok(d)
        })
    }

    fn close(&self, py: Python<'_>) {
        *crate::locks::write(py, &self.state) = State::Closed;
    }
}
