//! One mapping from engine errors to the Python exception tree defined in
//! `vastdict/_errors.py`.

use pyo3::exceptions::PyMemoryError;
use pyo3::prelude::*;
use vastdict_core::Error;

/// Build an instance of `vastdict._errors.<name>(args...)`.
fn raise<'py>(py: Python<'py>, name: &str, args: impl pyo3::call::PyCallArgs<'py>) -> PyErr {
    let made = py
        .import("vastdict._errors")
        .and_then(|m| m.getattr(name))
        .and_then(|cls| cls.call1(args));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// Convert an engine error into the matching Python exception.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Corruption { path, offset, .. } => raise(
            py,
            "CorruptionError",
            (msg, path.to_string_lossy().into_owned(), offset),
        ),
        Error::Locked(_) => raise(py, "LockedError", (msg,)),
        Error::ReadOnly => raise(py, "ReadOnlyError", (msg,)),
        Error::Closed => raise(py, "ClosedError", (msg,)),
        Error::NotFound(_) => raise(py, "StoreNotFoundError", (msg,)),
        Error::Format { .. } => raise(py, "FormatError", (msg,)),
        Error::Invalid(_) => raise(py, "InvalidError", (msg,)),
        Error::DiskFull { .. } => raise(py, "DiskFullError", (msg,)),
        Error::Input { path, line, .. } => raise(
            py,
            "InputError",
            (msg, path.to_string_lossy().into_owned(), line),
        ),
        Error::Interrupted => pyo3::exceptions::PyKeyboardInterrupt::new_err(msg),
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::OutOfMemory => {
            PyMemoryError::new_err(msg)
        }
        Error::Io { .. } => raise(py, "StorageIOError", (msg,)),
    }
}

/// For callers holding a `Result` of the engine.
pub trait IntoPyResult<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for vastdict_core::Result<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}

pub fn closed(py: Python<'_>) -> PyErr {
    to_py(py, Error::Closed)
}

pub fn forked(py: Python<'_>) -> PyErr {
    raise(
        py,
        "ForkedWriterError",
        ("this store was opened for writing in the parent process; a forked child cannot write through it: open the store again in the child (read-only handles reopen by themselves)",),
    )
}
