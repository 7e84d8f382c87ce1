//! `build_pairs` and `build_file`: frozen builds driven from Python.
//!
//! Engine work runs on a worker thread (inside a rayon pool of the chosen
//! size) while the calling thread keeps the progress bar moving and checks
//! for Ctrl-C every 100 ms; on an interrupt it sets the build's cancel flag,
//! waits for the worker to clean up, and raises `KeyboardInterrupt`.

use crate::codec::Codec;
use crate::errors::IntoPyResult;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vastdict_core::frozen::{
    add_file, BuildOptions, Builder, Column, FieldCodec, FileFormat, FileSource, FileStats,
    OnDuplicate,
};

fn on_duplicate(name: &str) -> PyResult<OnDuplicate> {
    Ok(match name {
        "first" => OnDuplicate::First,
        "last" => OnDuplicate::Last,
        "error" => OnDuplicate::Error,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "on_duplicate must be \"first\", \"last\" or \"error\", not {other:?}"
            )))
        }
    })
}

fn options(
    keys: Codec,
    values: Codec,
    memory_budget: u64,
    on_duplicate: &str,
) -> PyResult<BuildOptions> {
    Ok(BuildOptions {
        key_codec: keys.name().into(),
        value_codec: values.name().into(),
        memory_budget,
        on_duplicate: self::on_duplicate(on_duplicate)?,
        ..BuildOptions::default()
    })
}

fn pool(threads: Option<usize>) -> PyResult<rayon::ThreadPool> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        if t == 0 {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "threads must be at least 1 (or None for all cores)",
            ));
        }
        b = b.num_threads(t);
    }
    b.build()
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))
}

/// A bar on stderr when it is a terminal and `show` is set; hidden otherwise.
pub(crate) fn bar(show: bool, total: Option<u64>, unit: &str) -> ProgressBar {
    let target = if show {
        ProgressDrawTarget::stderr_with_hz(4)
    } else {
        ProgressDrawTarget::hidden()
    };
    let (pb, template) = match total {
        Some(n) => (
            ProgressBar::with_draw_target(Some(n), target),
            format!("{{bar:30}} {{percent:>3}}% {{human_pos}}/{{human_len}} {unit} {{per_sec}} ETA {{eta}} {{msg}}"),
        ),
        None => (
            ProgressBar::with_draw_target(None, target),
            format!("{{spinner}} {{human_pos}} {unit} {{per_sec}} {{elapsed}} {{msg}}"),
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(&template) {
        pb.set_style(style);
    }
    pb
}

/// Run `work` on a worker thread inside `pool`, keeping the bar moving from
/// `position` and watching for Ctrl-C (which sets `opts.cancel`).
fn run_watched<T: Send>(
    py: Python<'_>,
    pool: &rayon::ThreadPool,
    opts: &BuildOptions,
    pb: &ProgressBar,
    position: &AtomicU64,
    work: impl FnOnce() -> vastdict_core::Result<T> + Send,
) -> PyResult<T> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let _ = tx.send(pool.install(work));
        });
        loop {
            let got = py.detach(|| rx.recv_timeout(Duration::from_millis(100)));
            pb.set_position(position.load(Ordering::Relaxed));
            pb.set_message(format!("{} pairs", opts.received.load(Ordering::Relaxed)));
            match got {
                Ok(result) => return result.py_err(py),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err(pyo3::exceptions::PyRuntimeError::new_err(
                        "build thread stopped",
                    ))
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            }
            if let Err(e) = py.check_signals() {
                opts.cancel.store(true, Ordering::Relaxed);
                pb.abandon_with_message("interrupted");
                // The worker sees the flag within one range of work and
                // removes its files when the builder drops.
                let _ = py.detach(|| rx.recv());
                return Err(e);
            }
        }
    })
}

fn summary<'py>(
    py: Python<'py>,
    header: &vastdict_core::frozen::format::Header,
    stats: FileStats,
    seconds: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("pairs", header.len)?;
    d.set_item("received", stats.pairs)?;
    d.set_item("skipped", stats.skipped)?;
    d.set_item("read_in_place", stats.read_in_place)?;
    d.set_item("bytes_on_disk", header.file_len())?;
    d.set_item("seconds", seconds)?;
    Ok(d)
}

/// Pairs from Python, encoded into batches of about 1 MiB that go to the
/// builder with the GIL released; the builder checks each pair's size.
struct Feeder {
    builder: Builder,
    opts: BuildOptions,
    pool: rayon::ThreadPool,
    pb: ProgressBar,
    batch: Vec<u8>,
    in_batch: u64,
    received: u64,
    start: Instant,
}

impl Feeder {
    #[allow(clippy::too_many_arguments)] // mirrors vastdict.build()'s keywords
    fn new(
        py: Python<'_>,
        path: PathBuf,
        kc: Codec,
        vc: Codec,
        memory_budget: u64,
        on_duplicate: &str,
        threads: Option<usize>,
        progress: bool,
        total: Option<u64>,
    ) -> PyResult<Self> {
        let opts = options(kc, vc, memory_budget, on_duplicate)?;
        let pool = pool(threads)?;
        let start = Instant::now();
        let builder = py.detach(|| Builder::new(&path, opts.clone())).py_err(py)?;
        Ok(Feeder {
            builder,
            opts,
            pool,
            pb: bar(progress, total, "pairs"),
            batch: Vec::new(),
            in_batch: 0,
            received: 0,
            start,
        })
    }

    fn push(&mut self, py: Python<'_>, key: &[u8], value: &[u8]) -> PyResult<()> {
        vastdict_core::frozen::encode_pair(&mut self.batch, key, value);
        self.in_batch += 1;
        if self.batch.len() >= 1 << 20 {
            let (b, pool) = (&mut self.builder, &self.pool);
            let (full, n) = (std::mem::take(&mut self.batch), self.in_batch);
            py.detach(|| pool.install(|| b.add_encoded(full, n)))
                .py_err(py)?;
            self.received += n;
            self.in_batch = 0;
            self.pb.set_position(self.received);
        }
        Ok(())
    }

    fn finish(self, py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
        let Feeder {
            mut builder,
            opts,
            pool,
            pb,
            batch,
            in_batch,
            received,
            start,
        } = self;
        let received = received + in_batch;
        let position = AtomicU64::new(received);
        let header = run_watched(py, &pool, &opts, &pb, &position, move || {
            builder.add_encoded(batch, in_batch)?;
            builder.finish()
        })?;
        pb.finish_and_clear();
        let stats = FileStats {
            pairs: received,
            ..FileStats::default()
        };
        summary(py, &header, stats, start.elapsed().as_secs_f64())
    }
}

/// Build a frozen file at `path` from an iterable of (key, value) pairs,
/// or with `columns` from chunks of two columns in Arrow's layout (see
/// [`feed_columns`]).
#[pyfunction]
#[pyo3(signature = (path, items, keys, values, memory_budget, on_duplicate, threads, progress, total, columns=false))]
#[allow(clippy::too_many_arguments)] // mirrors vastdict.build()'s keywords
pub fn build_pairs<'py>(
    py: Python<'py>,
    path: PathBuf,
    items: &Bound<'py, PyAny>,
    keys: &str,
    values: &str,
    memory_budget: u64,
    on_duplicate: &str,
    threads: Option<usize>,
    progress: bool,
    total: Option<u64>,
    columns: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let (kc, vc) = (Codec::parse(keys)?, Codec::parse(values)?);
    let mut feeder = Feeder::new(
        py,
        path,
        kc,
        vc,
        memory_budget,
        on_duplicate,
        threads,
        progress,
        total,
    )?;
    if columns {
        feed_columns(py, &mut feeder, items, kc, vc)?;
    } else {
        feed_pairs(py, &mut feeder, items, kc, vc)?;
    }
    feeder.finish(py)
}

fn feed_pairs<'py>(
    py: Python<'py>,
    feeder: &mut Feeder,
    pairs: &Bound<'py, PyAny>,
    kc: Codec,
    vc: Codec,
) -> PyResult<()> {
    for item in pairs.try_iter()? {
        let item = item?;
        let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item.extract().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "build() expects (key, value) pairs, got {}",
                item.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        feeder.push(py, &kc.encode(&k, "key")?, &vc.encode(&v, "value")?)?;
    }
    Ok(())
}

/// One column of a chunk of rows as Arrow lays it out: variable-length
/// items cut from `data` at int64 `offsets`, or fixed int64 numbers.
enum Cells<'a> {
    Bytes(&'a [i64], &'a [u8]),
    Ints(&'a [i64]),
}

impl Cells<'_> {
    fn len(&self) -> usize {
        match self {
            Cells::Bytes(off, _) => off.len().saturating_sub(1),
            Cells::Ints(v) => v.len(),
        }
    }

    /// Item `i`: its bytes, or an int's 8 little-endian bytes in `scratch`.
    fn get<'s>(&'s self, i: usize, scratch: &'s mut [u8; 8], what: &str) -> PyResult<&'s [u8]> {
        match self {
            Cells::Bytes(off, data) => {
                let (s, e) = (off[i], off[i + 1]);
                usize::try_from(s)
                    .ok()
                    .zip(usize::try_from(e).ok())
                    .and_then(|(s, e)| data.get(s..e))
                    .ok_or_else(|| {
                        pyo3::exceptions::PyValueError::new_err(format!(
                            "{what} offsets out of range at row {i}"
                        ))
                    })
            }
            Cells::Ints(v) => {
                *scratch = v[i].to_le_bytes();
                Ok(&scratch[..])
            }
        }
    }
}

/// A column handed over by the Python layer: `(offsets, data)`, with
/// offsets `None` for an int64 column.
enum ColumnBuffers {
    Bytes(PyBuffer<i64>, PyBuffer<u8>),
    Ints(PyBuffer<i64>),
}

impl ColumnBuffers {
    fn extract(offsets: &Bound<'_, PyAny>, data: &Bound<'_, PyAny>, what: &str) -> PyResult<Self> {
        use crate::intmap::buffer;
        Ok(if offsets.is_none() {
            ColumnBuffers::Ints(buffer::<i64>(data, what, "int64")?)
        } else {
            ColumnBuffers::Bytes(
                buffer::<i64>(offsets, what, "int64")?,
                buffer::<u8>(data, what, "bytes")?,
            )
        })
    }

    fn cells(&self, what: &str) -> PyResult<Cells<'_>> {
        use crate::intmap::slice;
        Ok(match self {
            ColumnBuffers::Bytes(o, d) => Cells::Bytes(slice(o, what)?, slice(d, what)?),
            ColumnBuffers::Ints(v) => Cells::Ints(slice(v, what)?),
        })
    }
}

/// Feed chunks of two columns in Arrow's layout, `(key_offsets, key_data,
/// value_offsets, value_data)` per chunk (offsets `None` for int64
/// columns): the rows are read here, not as Python objects. `str` items
/// are checked to be UTF-8.
fn feed_columns<'py>(
    py: Python<'py>,
    feeder: &mut Feeder,
    chunks: &Bound<'py, PyAny>,
    kc: Codec,
    vc: Codec,
) -> PyResult<()> {
    let mut row0 = 0usize;
    for chunk in chunks.try_iter()? {
        let chunk = chunk?;
        let (ko, kd, vo, vd): (
            Bound<'py, PyAny>,
            Bound<'py, PyAny>,
            Bound<'py, PyAny>,
            Bound<'py, PyAny>,
        ) = chunk.extract()?;
        let kb = ColumnBuffers::extract(&ko, &kd, "key column")?;
        let vb = ColumnBuffers::extract(&vo, &vd, "value column")?;
        let (kcells, vcells) = (kb.cells("key column")?, vb.cells("value column")?);
        if kcells.len() != vcells.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "a chunk has {} keys and {} values",
                kcells.len(),
                vcells.len()
            )));
        }
        for i in 0..kcells.len() {
            let (mut ks, mut vs) = ([0u8; 8], [0u8; 8]);
            let k = kcells.get(i, &mut ks, "key")?;
            let v = vcells.get(i, &mut vs, "value")?;
            for (item, codec, what) in [(k, kc, "key"), (v, vc, "value")] {
                if matches!(codec, Codec::Str) && std::str::from_utf8(item).is_err() {
                    return Err(pyo3::exceptions::PyValueError::new_err(format!(
                        "the {what} of row {} is not UTF-8 text; use {what}s=\"bytes\"",
                        row0 + i
                    )));
                }
            }
            feeder.push(py, k, v)?;
        }
        row0 += kcells.len();
        py.check_signals()?;
    }
    Ok(())
}

fn column(obj: &Bound<'_, PyAny>) -> PyResult<Column> {
    if let Ok(i) = obj.extract::<usize>() {
        return Ok(Column::Index(i));
    }
    Ok(Column::Name(obj.extract::<String>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err("a column is a number (from 0) or a name")
    })?))
}

/// Build a frozen file at `path` from a TSV, CSV or JSONL file, parsed in
/// the engine on all cores.
#[pyfunction]
#[pyo3(signature = (path, source, format, keys, values, memory_budget, on_duplicate, threads, progress, delimiter=None, header=false, key_column=None, value_column=None, skip_errors=false))]
#[allow(clippy::too_many_arguments)] // mirrors vastdict.build()'s keywords
pub fn build_file<'py>(
    py: Python<'py>,
    path: PathBuf,
    source: PathBuf,
    format: &str,
    keys: &str,
    values: &str,
    memory_budget: u64,
    on_duplicate: &str,
    threads: Option<usize>,
    progress: bool,
    delimiter: Option<String>,
    header: bool,
    key_column: Option<Bound<'py, PyAny>>,
    value_column: Option<Bound<'py, PyAny>>,
    skip_errors: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let format = match format {
        "tsv" => FileFormat::Tsv,
        "csv" => FileFormat::Csv,
        "jsonl" => FileFormat::Jsonl,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "format must be \"tsv\", \"csv\" or \"jsonl\", not {other:?}"
            )))
        }
    };
    let (kc, vc) = (Codec::parse(keys)?, Codec::parse(values)?);
    let mut src = FileSource::new(&source, format);
    src.key_codec = FieldCodec::parse(kc.name()).py_err(py)?;
    src.value_codec = FieldCodec::parse(vc.name()).py_err(py)?;
    src.header = header;
    src.skip_errors = skip_errors;
    if let Some(d) = delimiter {
        match d.as_bytes() {
            [b] => src.delimiter = *b,
            _ => {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "delimiter must be a single ASCII character",
                ))
            }
        }
    }
    if let Some(c) = key_column {
        src.key = column(&c)?;
    }
    if let Some(c) = value_column {
        src.value = column(&c)?;
    }
    let opts = options(kc, vc, memory_budget, on_duplicate)?;
    let pool = pool(threads)?;
    let size = std::fs::metadata(&source).map(|m| m.len()).ok();
    let pb = bar(progress, size, "bytes");
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let (header, stats) = {
        let (opts2, done2) = (opts.clone(), done.clone());
        run_watched(py, &pool, &opts, &pb, &done, move || {
            let mut b = Builder::new(&path, opts2)?;
            let stats = add_file(&mut b, &src, &done2)?;
            Ok((b.finish()?, stats))
        })?
    };
    pb.finish_and_clear();
    summary(py, &header, stats, start.elapsed().as_secs_f64())
}

/// Freeze an open store into a frozen file (the engine reads its records
/// directly; no Python object per pair).
#[allow(clippy::too_many_arguments)] // mirrors Store.freeze()'s keywords
pub fn freeze_store<'py>(
    py: Python<'py>,
    store: &mut vastdict_core::Store,
    path: PathBuf,
    keys: &str,
    values: &str,
    memory_budget: u64,
    threads: Option<usize>,
    progress: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let opts = options(
        Codec::parse(keys)?,
        Codec::parse(values)?,
        memory_budget,
        "last",
    )?;
    let pool = pool(threads)?;
    let pb = bar(progress, None, "pairs");
    let start = Instant::now();
    let header = {
        let opts2 = opts.clone();
        run_watched(py, &pool, &opts, &pb, &opts.received, move || {
            store.freeze(&path, opts2)
        })?
    };
    pb.finish_and_clear();
    let stats = FileStats {
        pairs: header.len,
        ..FileStats::default()
    };
    summary(py, &header, stats, start.elapsed().as_secs_f64())
}

/// A progress bar (rate and ETA) for long work driven from Python; drawn
/// on stderr only when it is a terminal and `show` is set.
#[pyclass(frozen, module = "vastdict._vastdict")]
pub struct NativeProgress {
    pb: ProgressBar,
}

#[pymethods]
impl NativeProgress {
    #[new]
    #[pyo3(signature = (total, unit, show))]
    fn new(total: Option<u64>, unit: &str, show: bool) -> Self {
        NativeProgress {
            pb: bar(show, total, unit),
        }
    }

    fn inc(&self, n: u64) {
        self.pb.inc(n);
    }

    fn set_message(&self, msg: String) {
        self.pb.set_message(msg);
    }

    fn finish(&self) {
        self.pb.finish_and_clear();
    }
}
