//! `build_pairs` and `build_file`: frozen builds driven from Python.
//!
//! Engine work runs on a worker thread (inside a rayon pool of the chosen
//! size) while the calling thread keeps the progress bar moving and checks
//! for Ctrl-C every 100 ms; on an interrupt it sets the build's cancel flag,
//! waits for the worker to clean up, and raises `KeyboardInterrupt`.

use crate::codec::Codec;
use crate::errors::IntoPyResult;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vastdict_core::frozen::{
    add_file, BuildOptions, Builder, Column, FieldCodec, FileFormat, FileSource, OnDuplicate,
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
    received: u64,
    skipped: u64,
    seconds: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("pairs", header.len)?;
    d.set_item("received", received)?;
    d.set_item("skipped", skipped)?;
    d.set_item("bytes_on_disk", header.file_len())?;
    d.set_item("seconds", seconds)?;
    Ok(d)
}

/// Build a frozen file at `path` from an iterable of (key, value) pairs.
#[pyfunction]
#[pyo3(signature = (path, pairs, keys, values, memory_budget, on_duplicate, threads, progress, total))]
#[allow(clippy::too_many_arguments)] // mirrors vastdict.build()'s keywords
pub fn build_pairs<'py>(
    py: Python<'py>,
    path: PathBuf,
    pairs: &Bound<'py, PyAny>,
    keys: &str,
    values: &str,
    memory_budget: u64,
    on_duplicate: &str,
    threads: Option<usize>,
    progress: bool,
    total: Option<u64>,
) -> PyResult<Bound<'py, PyDict>> {
    let (kc, vc) = (Codec::parse(keys)?, Codec::parse(values)?);
    let opts = options(kc, vc, memory_budget, on_duplicate)?;
    let pool = pool(threads)?;
    let start = Instant::now();
    let mut builder = py.detach(|| Builder::new(&path, opts.clone())).py_err(py)?;
    let pb = bar(progress, total, "pairs");
    let mut batch = Vec::new();
    let mut in_batch = 0u64;
    let mut received = 0u64;
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
        // Oversized items are refused by the builder when the batch goes in.
        let (k, v) = (kc.encode(&k, "key")?, vc.encode(&v, "value")?);
        vastdict_core::frozen::encode_pair(&mut batch, &k, &v);
        in_batch += 1;
        if batch.len() >= 1 << 20 {
            let b = &mut builder;
            let full = std::mem::take(&mut batch);
            py.detach(|| pool.install(|| b.add_encoded(full, in_batch)))
                .py_err(py)?;
            received += in_batch;
            pb.set_position(received);
            in_batch = 0;
        }
    }
    received += in_batch;
    let position = AtomicU64::new(received);
    let header = run_watched(py, &pool, &opts, &pb, &position, move || {
        builder.add_encoded(batch, in_batch)?;
        builder.finish()
    })?;
    pb.finish_and_clear();
    summary(py, &header, received, 0, start.elapsed().as_secs_f64())
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
    summary(
        py,
        &header,
        stats.pairs,
        stats.skipped,
        start.elapsed().as_secs_f64(),
    )
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
    summary(py, &header, header.len, 0, start.elapsed().as_secs_f64())
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
