//! Key and value codecs: how Python objects become the bytes the engine
//! stores. "bytes", "str" and "int" are converted here without calling
//! back into Python; "pickle" and "json" call the standard library.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyString};
use std::borrow::Cow;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Bytes,
    Str,
    Int,
    Pickle,
    Json,
}

impl Codec {
    pub fn parse(name: &str) -> PyResult<Self> {
        Ok(match name {
            "bytes" => Codec::Bytes,
            "str" => Codec::Str,
            "int" => Codec::Int,
            "pickle" => Codec::Pickle,
            "json" => Codec::Json,
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown codec {other:?}; use one of \"bytes\", \"str\", \"int\", \"pickle\", \"json\""
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Bytes => "bytes",
            Codec::Str => "str",
            Codec::Int => "int",
            Codec::Pickle => "pickle",
            Codec::Json => "json",
        }
    }

    /// Encode `obj`; `what` names it ("key" or "value") in errors.
    pub fn encode<'a>(self, obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<Cow<'a, [u8]>> {
        match self {
            Codec::Bytes => match obj.cast::<PyBytes>() {
                Ok(b) => Ok(Cow::Borrowed(b.as_bytes())),
                Err(_) => match obj.extract::<Vec<u8>>() {
                    // bytearray, memoryview and other buffers are copied.
                    Ok(v) if !obj.is_instance_of::<PyString>() => Ok(Cow::Owned(v)),
                    _ => Err(wrong_type(obj, what, "bytes")),
                },
            },
            Codec::Str => match obj.cast::<PyString>() {
                Ok(s) => Ok(Cow::Borrowed(s.to_str()?.as_bytes())),
                Err(_) => Err(wrong_type(obj, what, "str")),
            },
            Codec::Int => {
                if !obj.is_instance_of::<PyInt>() || obj.is_instance_of::<pyo3::types::PyBool>() {
                    return Err(wrong_type(obj, what, "int"));
                }
                let v: i64 = obj.extract().map_err(|_| {
                    pyo3::exceptions::PyOverflowError::new_err(format!(
                        "{what} {} does not fit the \"int\" codec's signed 64-bit range",
                        obj.repr().map(|r| r.to_string()).unwrap_or_default()
                    ))
                })?;
                Ok(Cow::Owned(v.to_le_bytes().to_vec()))
            }
            Codec::Pickle => {
                let py = obj.py();
                let out = py.import("pickle")?.getattr("dumps")?.call1((obj, 5))?;
                Ok(Cow::Owned(out.cast::<PyBytes>()?.as_bytes().to_vec()))
            }
            Codec::Json => {
                let py = obj.py();
                let kwargs = pyo3::types::PyDict::new(py);
                kwargs.set_item("sort_keys", true)?;
                kwargs.set_item("separators", (",", ":"))?;
                kwargs.set_item("ensure_ascii", false)?;
                let out = py
                    .import("json")?
                    .getattr("dumps")?
                    .call((obj,), Some(&kwargs))?;
                Ok(Cow::Owned(
                    out.cast::<PyString>()?.to_str()?.as_bytes().to_vec(),
                ))
            }
        }
    }

    pub fn decode<'py>(self, py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Codec::Bytes => Ok(PyBytes::new(py, raw).into_any()),
            Codec::Str => match std::str::from_utf8(raw) {
                Ok(s) => Ok(PyString::new(py, s).into_any()),
                Err(_) => Err(PyValueError::new_err(
                    "stored bytes are not valid UTF-8 for the \"str\" codec",
                )),
            },
            Codec::Int => {
                let arr: [u8; 8] = raw.try_into().map_err(|_| {
                    PyValueError::new_err("stored value is not 8 bytes, as the \"int\" codec needs")
                })?;
                Ok(i64::from_le_bytes(arr).into_pyobject(py)?.into_any())
            }
            Codec::Pickle => py
                .import("pickle")?
                .getattr("loads")?
                .call1((PyBytes::new(py, raw),)),
            Codec::Json => {
                let s = std::str::from_utf8(raw)
                    .map_err(|_| PyValueError::new_err("stored bytes are not valid UTF-8 JSON"))?;
                py.import("json")?.getattr("loads")?.call1((s,))
            }
        }
    }
}

fn wrong_type(obj: &Bound<'_, PyAny>, what: &str, want: &str) -> PyErr {
    let got = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    PyTypeError::new_err(format!(
        "{what} must be {want} for this store (its {what}s codec is \"{want}\"), not {got}"
    ))
}
