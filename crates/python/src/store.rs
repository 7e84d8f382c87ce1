//! `NativeStore`: the engine's `Store` behind a lock, with codecs applied.
//!
//! Locking rule that keeps this deadlock-free: a thread never waits for the
//! store lock while holding the GIL (it tries, and on contention releases
//! the GIL before blocking), and code holding the store lock without the
//! GIL never waits for the GIL.

use crate::codec::Codec;
use crate::errors::{closed, forked, to_py, IntoPyResult};
use crate::lookup::{self, Values};
use crate::pipeline::{self, Batch};
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use vastdict_core::{Mode, Options, Store};

/// Bumped in a child after `fork()` (registered from Python with
/// `os.register_at_fork`), so handles notice they changed process.
pub static FORK_EPOCH: AtomicU64 = AtomicU64::new(0);

#[pyfunction]
pub fn _after_fork_in_child() {
    FORK_EPOCH.fetch_add(1, Ordering::SeqCst);
}

/// A chunk of iteration and the cursor to continue from (`None` at the end).
type ScanChunk<'py> = (Bound<'py, PyList>, Option<(usize, usize)>);

#[pyclass(subclass, frozen, module = "vastdict._vastdict")]
pub struct NativeStore {
    inner: RwLock<Option<Store>>,
    key_codec: Codec,
    value_codec: Codec,
    path: PathBuf,
    writable: bool,
    epoch: u64,
}

fn mode(flag: &str) -> PyResult<Mode> {
    Ok(match flag {
        "r" => Mode::Read,
        "w" => Mode::Write,
        "c" => Mode::Create,
        "n" => Mode::New,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "flag must be \"r\", \"w\", \"c\" or \"n\", not {other:?}"
            )))
        }
    })
}

macro_rules! store {
    ($guard:expr) => {
        match $guard.as_ref() {
            Some(s) => s,
            None => unreachable!("guard checked for an open store"),
        }
    };
}

macro_rules! store_mut {
    ($guard:expr) => {
        match $guard.as_mut() {
            Some(s) => s,
            None => unreachable!("guard checked for an open store"),
        }
    };
}

impl NativeStore {
    fn check_process(&self, py: Python<'_>) -> PyResult<()> {
        if self.writable && FORK_EPOCH.load(Ordering::Relaxed) != self.epoch {
            return Err(forked(py));
        }
        Ok(())
    }

    /// In a forked child, drop this handle's copy of the parent's writer
    /// without running its close (which would write to the parent's
    /// store). Returns whether it did.
    fn forget_forked_writer(&self) -> bool {
        if !self.writable || FORK_EPOCH.load(Ordering::Relaxed) == self.epoch {
            return false;
        }
        if let Some(s) = self.inner.write().take() {
            std::mem::forget(s);
        }
        true
    }

    /// Run `f` on the store under its write lock, with the GIL released.
    fn detached(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Store) -> vastdict_core::Result<()> + Send,
    ) -> PyResult<()> {
        let mut g = self.write(py)?;
        let s = store_mut!(g);
        py.detach(|| f(s)).py_err(py)
    }

    fn read<'a>(&'a self, py: Python<'_>) -> PyResult<RwLockReadGuard<'a, Option<Store>>> {
        self.check_process(py)?;
        let g = crate::locks::read(py, &self.inner);
        if g.is_none() {
            return Err(closed(py));
        }
        Ok(g)
    }

    fn write<'a>(&'a self, py: Python<'_>) -> PyResult<RwLockWriteGuard<'a, Option<Store>>> {
        self.check_process(py)?;
        let g = crate::locks::write(py, &self.inner);
        if g.is_none() {
            return Err(closed(py));
        }
        Ok(g)
    }
}

#[pymethods]
impl NativeStore {
    #[new]
    #[allow(clippy::too_many_arguments)] // mirrors the keyword arguments of vastdict.open()
    #[pyo3(signature = (path, flag="c", keys=None, values=None, memory_budget=1<<30, segment_bits=30, compact_threshold=0.5))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        flag: &str,
        keys: Option<&str>,
        values: Option<&str>,
        memory_budget: u64,
        segment_bits: u32,
        compact_threshold: f64,
    ) -> PyResult<Self> {
        let mode = mode(flag)?;
        let key_codec = keys.map(Codec::parse).transpose()?;
        let value_codec = values.map(Codec::parse).transpose()?;
        if !(16..=34).contains(&segment_bits) {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "segment_bits must be between 16 and 34",
            ));
        }
        let opts = Options {
            mode,
            key_codec: key_codec.map(|c| c.name().to_string()),
            value_codec: value_codec.map(|c| c.name().to_string()),
            memory_budget,
            segment_bits,
            compact_threshold,
        };
        let p = path.clone();
        let store = py.detach(move || Store::open(&p, &opts)).py_err(py)?;
        let key_codec = Codec::parse(&store.header().key_codec)?;
        let value_codec = Codec::parse(&store.header().value_codec)?;
        Ok(NativeStore {
            writable: store.is_writer(),
            inner: RwLock::new(Some(store)),
            key_codec,
            value_codec,
            path,
            epoch: FORK_EPOCH.load(Ordering::Relaxed),
        })
    }

    /// The store's directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The keys codec recorded at creation ("bytes", "str", "int", "pickle" or "json").
    #[getter]
    fn key_codec(&self) -> &'static str {
        self.key_codec.name()
    }

    /// The values codec recorded at creation.
    #[getter]
    fn value_codec(&self) -> &'static str {
        self.value_codec.name()
    }

    /// Whether this handle may write (opened with "w", "c" or "n").
    #[getter]
    fn writable(&self) -> bool {
        self.writable
    }

    /// Whether `close()` was called (every other call then raises `ClosedError`).
    #[getter]
    fn closed(&self) -> bool {
        self.inner.read().is_none()
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let k = self.key_codec.encode(key, "key")?;
        let g = self.read(py)?;
        match store!(g).get(&k).py_err(py)? {
            Some(v) => self.value_codec.decode(py, v),
            None => Err(PyKeyError::new_err(key.clone().unbind())),
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
        let k = self.key_codec.encode(key, "key")?;
        let g = self.read(py)?;
        match store!(g).get(&k).py_err(py)? {
            Some(v) => self.value_codec.decode(py, v),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let k = match self.key_codec.encode(key, "key") {
            Ok(k) => k,
            // Like a dict: a key of another type is simply not there.
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyTypeError>(py) => return Ok(false),
            Err(e) => return Err(e),
        };
        let g = self.read(py)?;
        Ok(store!(g).get(&k).py_err(py)?.is_some())
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let k = self.key_codec.encode(key, "key")?;
        let v = self.value_codec.encode(value, "value")?;
        let mut g = self.write(py)?;
        store_mut!(g).put(&k, &v).py_err(py)
    }

    fn __delitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        if !self.discard(py, key)? {
            return Err(PyKeyError::new_err(key.clone().unbind()));
        }
        Ok(())
    }

    /// Delete `key` if present; returns whether it was.
    fn discard(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let k = self.key_codec.encode(key, "key")?;
        let mut g = self.write(py)?;
        store_mut!(g).delete(&k).py_err(py)
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        let mut g = self.write(py)?;
        Ok(store_mut!(g).len().py_err(py)? as usize)
    }

    /// Values for many keys at once (None where a key is missing). Lookups
    /// run on all cores without the GIL, overlapped with this thread's
    /// reading of keys and building of values.
    fn get_many<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let g = self.read(py)?;
        let store = store!(g);
        let pool = crate::threads::pool()?;
        // Large values stay where they lie (the read lock held through the
        // call keeps them there).
        lookup::lookup_many(py, pool, keys, self.key_codec, self.value_codec, |part| {
            store.get_many_sequential(part).map(|v| Values::pack(&v))
        })
    }

    /// Write many pairs in one call (an iterable of (key, value)). This
    /// thread encodes chunks while a worker thread writes the previous one,
    /// holding the store lock, with the GIL released.
    fn update_pairs(&self, py: Python<'_>, pairs: &Bound<'_, PyAny>) -> PyResult<usize> {
        const CHUNK_BYTES: usize = 1 << 20;
        self.check_process(py)?;
        if !self.writable {
            return Err(to_py(py, vastdict_core::Error::ReadOnly));
        }
        let (tx, rx) = pipeline::channel::<(Batch, Batch)>();
        let inner = &self.inner;
        std::thread::scope(|scope| -> PyResult<usize> {
            let worker = scope.spawn(move || -> vastdict_core::Result<()> {
                let mut g = inner.write();
                let s = g.as_mut().ok_or(vastdict_core::Error::Closed)?;
                s.put_batches(
                    rx.into_iter()
                        .map(|(keys, vals)| pipeline::Pairs(keys, vals)),
                )
            });
            let (mut keys, mut vals) = (Batch::default(), Batch::default());
            let mut encoded = (|| -> PyResult<usize> {
                let mut n = 0;
                for item in pairs.try_iter()? {
                    let item = item?;
                    let pair = item.cast::<PyTuple>().ok().filter(|t| t.len() == 2);
                    let (k, v) = match pair {
                        Some(t) => (t.get_item(0)?, t.get_item(1)?),
                        None => item
                            .extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()
                            .map_err(|_| {
                                pyo3::exceptions::PyTypeError::new_err(
                                    "update() needs a mapping or an iterable of (key, value) pairs",
                                )
                            })?,
                    };
                    keys.push(&self.key_codec.encode(&k, "key")?);
                    vals.push(&self.value_codec.encode(&v, "value")?);
                    n += 1;
                    if keys.bytes.len() + vals.bytes.len() >= CHUNK_BYTES
                        && !pipeline::send(
                            py,
                            &tx,
                            (std::mem::take(&mut keys), std::mem::take(&mut vals)),
                        )
                    {
                        return Ok(n); // the worker failed; its error is reported below
                    }
                }
                Ok(n)
            })();
            // Pairs before a bad one are written, as dict.update() would.
            if !keys.ends.is_empty() && !pipeline::send(py, &tx, (keys, vals)) && encoded.is_ok() {
                encoded = Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "write thread stopped",
                ));
            }
            drop(tx);
            let written = py.detach(|| worker.join());
            let written = written
                .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("write thread panicked"))?;
            // An encoding error stops the batch; pairs already sent were
            // written, like a dict.update() that fails midway.
            let n = encoded?;
            written.py_err(py)?;
            Ok(n)
        })
    }

    /// Make all changes durable. Returns once they are on disk.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.detached(py, Store::commit)
    }

    /// Drop all changes since the last commit.
    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        self.detached(py, Store::rollback)
    }

    /// Move a read-only handle to the newest commit.
    fn refresh(&self, py: Python<'_>) -> PyResult<()> {
        self.detached(py, Store::refresh)
    }

    /// Rewrite the store without garbage.
    fn compact(&self, py: Python<'_>) -> PyResult<()> {
        self.detached(py, Store::compact)
    }

    /// Close; `commit` decides whether pending changes are kept.
    #[pyo3(signature = (commit=true))]
    fn close(&self, py: Python<'_>, commit: bool) -> PyResult<()> {
        if self.forget_forked_writer() {
            return Ok(());
        }
        let taken = crate::locks::write(py, &self.inner).take();
        match taken {
            Some(s) => py.detach(move || s.close(commit)).py_err(py),
            None => Ok(()),
        }
    }

    /// Figures about the store: entries, bytes on disk, index bytes,
    /// garbage bytes (reclaimed by `compact()`), resident bytes and more.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut g = self.write(py)?;
        let st = store_mut!(g).stats().py_err(py)?;
        let d = PyDict::new(py);
        d.set_item("entries", st.entries)?;
        d.set_item("disk_bytes", st.disk_bytes)?;
        d.set_item("log_bytes", st.log_bytes)?;
        d.set_item("index_bytes", st.index_bytes)?;
        d.set_item("garbage_bytes", st.garbage_bytes)?;
        d.set_item("resident_bytes", st.resident_bytes)?;
        d.set_item("partitions", st.partitions)?;
        d.set_item("generation", st.generation)?;
        d.set_item("commit_seq", st.commit_seq)?;
        Ok(d)
    }

    /// Read every committed record and index block and check their
    /// checksums; returns what was checked, raises `CorruptionError` at the
    /// first damage (naming file and offset).
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let g = self.read(py)?;
        let s = store!(g);
        let r = py.detach(|| s.verify()).py_err(py)?;
        let d = PyDict::new(py);
        d.set_item("blocks", r.blocks)?;
        d.set_item("records", r.records)?;
        d.set_item("entries", r.entries)?;
        d.set_item("log_bytes", r.log_bytes)?;
        d.set_item("index_bytes", r.index_bytes)?;
        Ok(d)
    }

    /// Changes made so far; iteration compares it to notice changes.
    #[getter]
    fn _mutations(&self, py: Python<'_>) -> PyResult<u64> {
        let g = self.read(py)?;
        Ok(store!(g).mutations())
    }

    /// Make the write buffer visible to iteration.
    /// Write every visible pair to a frozen file at `path` (see
    /// `Store.freeze`).
    #[pyo3(signature = (path, memory_budget, threads=None, progress=true))]
    fn _freeze<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        memory_budget: u64,
        threads: Option<usize>,
        progress: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let mut g = self.write(py)?;
        let (k, v) = (self.key_codec.name(), self.value_codec.name());
        crate::build::freeze_store(
            py,
            store_mut!(g),
            path,
            k,
            v,
            memory_budget,
            threads,
            progress,
        )
    }

    fn _prepare_scan(&self, py: Python<'_>) -> PyResult<()> {
        let mut g = self.write(py)?;
        store_mut!(g).flush_pending().py_err(py)
    }

    /// One chunk of iteration: `what` is 0 (keys), 1 (values) or 2
    /// (items). Returns the list and the next cursor, `None` at the end.
    fn _scan<'py>(
        &self,
        py: Python<'py>,
        cursor: (usize, usize),
        what: u8,
        n: usize,
    ) -> PyResult<ScanChunk<'py>> {
        let g = self.read(py)?;
        let s = store!(g);
        let mut c = cursor;
        let locs = s.scan(&mut c, n).py_err(py)?;
        let out = PyList::empty(py);
        for loc in &locs {
            let r = s.record_at(*loc).py_err(py)?;
            let value = r.value.unwrap_or_default();
            match what {
                0 => out.append(self.key_codec.decode(py, r.key)?)?,
                1 => out.append(self.value_codec.decode(py, value)?)?,
                _ => out.append((
                    self.key_codec.decode(py, r.key)?,
                    self.value_codec.decode(py, value)?,
                ))?,
            }
        }
        let done = locs.len() < n;
        Ok((out, if done { None } else { Some(c) }))
    }
}

impl Drop for NativeStore {
    fn drop(&mut self) {
        self.forget_forked_writer();
    }
}
