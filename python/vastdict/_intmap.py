"""`IntMap`: uint64 keys to fixed-width numbers, with NumPy batch calls."""

from __future__ import annotations

import operator
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from . import _vastdict

_NATIVE = {
    "uint32": _vastdict.IntMapU32,
    "uint64": _vastdict.IntMapU64,
    "int64": _vastdict.IntMapI64,
    "float64": _vastdict.IntMapF64,
}
_MAX_KEY = 2**64 - 1


def as_keys(keys: Any) -> np.ndarray:
    """``keys`` as a contiguous uint64 array, or a clear error."""
    arr = np.asarray(keys)
    # A list mixing NumPy uint64 scalars with Python ints promotes to
    # float64 (or object); read such a list as integers again.
    if arr.dtype == object or (arr.dtype.kind == "f" and not isinstance(keys, np.ndarray)):
        try:
            arr = np.array([operator.index(k) for k in keys], dtype=np.uint64)
        except (OverflowError, TypeError, ValueError):
            raise ValueError(
                f"keys must be integers in [0, {_MAX_KEY}] (uint64); got {_sample(keys)}"
            ) from None
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype.kind not in "ui":
        if arr.size == 0:
            return np.empty(0, dtype=np.uint64)
        raise TypeError(f"keys must be an integer array (uint64), not {arr.dtype}")
    if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
        raise ValueError(f"keys must not be negative (uint64); got {int(arr.min())}")
    return np.ascontiguousarray(arr, dtype=np.uint64)


def as_values(values: Any, dtype: np.dtype, n: int) -> np.ndarray:
    """``values`` as a contiguous array of ``dtype``, checking the range."""
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    arr = arr.reshape(-1)
    if dtype.kind == "f":
        if arr.dtype.kind not in "uif" and arr.size:
            raise TypeError(f"values must be numbers ({dtype}), not {arr.dtype}")
        return np.ascontiguousarray(arr, dtype=dtype)
    if arr.dtype == object:
        try:
            arr = np.array(values, dtype=np.int64 if dtype.kind == "i" else np.uint64)
        except (OverflowError, TypeError, ValueError):
            raise ValueError(f"values do not fit {dtype}; got {_sample(values)}") from None
    if arr.dtype.kind not in "ui":
        if arr.size == 0:
            return np.empty(0, dtype=dtype)
        raise TypeError(f"values must be an integer array ({dtype}), not {arr.dtype}")
    if arr.size:
        info = np.iinfo(dtype)
        lo, hi = arr.min(), arr.max()
        if int(lo) < info.min or int(hi) > info.max:
            bad = int(lo) if int(lo) < info.min else int(hi)
            raise ValueError(f"value {bad} does not fit {dtype} [{info.min}, {info.max}]")
    return np.ascontiguousarray(arr, dtype=dtype)


def _sample(x: Any) -> str:
    s = repr(x)
    return s if len(s) < 80 else s[:77] + "..."


class IntMap:
    """A map from uint64 keys to numbers, at close to the raw size of the numbers.

    Batch calls take and return NumPy arrays, release the GIL and use all
    cores; no Python object is made per entry. About 15 bytes per entry in
    memory for uint32 values; :meth:`save` writes a memory-mapped file of
    12.4 bytes per entry that :meth:`open` maps in O(1), read-only
    (``mode="r"``, shareable by every process) or with changes layered on
    top (``mode="a"``).

    >>> import numpy as np, vastdict
    >>> m = vastdict.IntMap("uint32")
    >>> m.put_many(np.array([10, 20, 30], dtype=np.uint64), [1, 2, 3])
    3
    >>> m.get_many([20, 99], default=0)
    array([2, 0], dtype=uint32)
    >>> m[30], 99 in m, len(m)
    (3, False, 3)
    """

    def __init__(self, value_dtype: str = "uint32") -> None:
        if value_dtype not in _NATIVE:
            raise ValueError(f"value_dtype must be one of {sorted(_NATIVE)}, not {value_dtype!r}")
        self._dtype = np.dtype(value_dtype)
        self._m = _NATIVE[value_dtype]()

    @classmethod
    def open(cls, path: str | os.PathLike[str], mode: str = "r") -> IntMap:
        """Open a map saved with :meth:`save`: ``"r"`` read-only (memory-mapped,
        O(1)), ``"a"`` writable, changes kept in memory over the file until saved."""
        path = os.fspath(path)
        dtype = _vastdict.intmap_file_dtype(path)
        self = cls.__new__(cls)
        self._dtype = np.dtype(dtype)
        self._m = _NATIVE[dtype].open(path, mode)
        return self

    @property
    def value_dtype(self) -> np.dtype:
        """The NumPy dtype of the values."""
        return self._dtype

    @property
    def path(self) -> str | None:
        """The file this map was opened from or last saved to (None if never)."""
        p = self._m.path
        return None if p is None else os.fspath(p)

    @property
    def writable(self) -> bool:
        """False for a map opened read-only (``mode="r"``)."""
        return self._m.writable

    # --- batch calls ---------------------------------------------------------

    def put_many(self, keys: Any, values: Any) -> int:
        """Set ``keys[i]`` to ``values[i]`` (a later duplicate wins); returns the
        number of new keys. ``values`` may be a scalar for all keys."""
        k = as_keys(keys)
        v = as_values(values, self._dtype, len(k))
        if len(k) != len(v):
            raise ValueError(f"keys and values differ in length: {len(k)} and {len(v)}")
        return self._m.put_many(k, v)

    def get_many(self, keys: Any, default: Any = 0, return_found: bool = False) -> Any:
        """Values of ``keys`` as an array, ``default`` where missing; with
        ``return_found=True``, also a bool array saying which were found."""
        k = as_keys(keys)
        out = np.empty(len(k), dtype=self._dtype)
        found = np.empty(len(k), dtype=np.uint8)
        self._m.get_many_into(k, out, found)
        hit = found.view(np.bool_)
        if not hit.all():
            out[~hit] = default
        return (out, hit) if return_found else out

    def contains_many(self, keys: Any) -> np.ndarray:
        """A bool array: which of ``keys`` are in the map."""
        return self.get_many(keys, return_found=True)[1]

    def delete_many(self, keys: Any) -> int:
        """Remove ``keys`` (missing ones are ignored); returns how many were there."""
        return self._m.remove_many(as_keys(keys))

    def update(self, other: Any) -> None:
        """Add the entries of another IntMap, a mapping, or a (keys, values) pair."""
        if isinstance(other, IntMap):
            k, v = other.items()
        elif isinstance(other, Mapping):
            k, v = list(other.keys()), list(other.values())
        else:
            k, v = other
        self.put_many(k, v)

    def keys(self) -> np.ndarray:
        """Every key, as a uint64 array (in the map's order, as :meth:`items`)."""
        return self.items()[0]

    def values(self) -> np.ndarray:
        """Every value, in the order of :meth:`keys`."""
        return self.items()[1]

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys, values) as two arrays, in no particular order."""
        n = len(self)
        k = np.empty(n, dtype=np.uint64)
        v = np.empty(n, dtype=self._dtype)
        self._m.export(k, v)
        return k, v

    # --- single keys ---------------------------------------------------------

    @staticmethod
    def _key(key: Any) -> int:
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
            raise TypeError(f"keys are integers, not {type(key).__name__}")
        if not 0 <= int(key) <= _MAX_KEY:
            raise KeyError(key)
        return int(key)

    def __getitem__(self, key: Any) -> Any:
        v = self._m.get(self._key(key))
        if v is None:
            raise KeyError(key)
        return v

    def get(self, key: Any, default: Any = None) -> Any:
        """``self[key]`` if present, else ``default``."""
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key: Any, value: Any) -> None:
        self.put_many([self._key(key)], [value])

    def __delitem__(self, key: Any) -> None:
        if self.delete_many([self._key(key)]) == 0:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        try:
            return self._m.get(self._key(key)) is not None
        except (KeyError, TypeError):
            return False

    def __len__(self) -> int:
        return len(self._m)

    def __iter__(self) -> Iterator[int]:
        return iter(self.keys().tolist())

    # --- files and sharing -----------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> int:
        """Write a frozen, memory-mapped copy to ``path`` (atomically); returns its size."""
        return self._m.save(os.fspath(path))

    def stats(self) -> dict[str, Any]:
        """Entries, and bytes per entry resident in memory and on disk."""
        st = self._m.stats()
        n = st.get("entries", 0)
        if n:
            st["resident_bytes_per_entry"] = st.get("resident_bytes", 0) / n
            if "bytes_on_disk" in st:
                st["disk_bytes_per_entry"] = st["bytes_on_disk"] / n
        return st

    def verify(self) -> int:
        """Check every bucket of a frozen map; returns the entry count."""
        return self._m.verify()

    def close(self) -> None:
        """Release the map's memory and file; later calls raise ``ClosedError``."""
        self._m.close()

    def __reduce__(self) -> tuple[Any, ...]:
        if not self._m.writable and self.path is not None:
            return (IntMap.open, (self.path, "r"))  # by reference
        k, v = self.items()
        return (_rebuild, (str(self._dtype), k, v))

    def __repr__(self) -> str:
        where = f" {self.path!r}" if self.path else ""
        mode = "rw" if self.writable else "r"
        return f"<vastdict.IntMap {self._dtype}{where} {mode} entries={len(self)}>"


def _rebuild(dtype: str, keys: np.ndarray, values: np.ndarray) -> IntMap:
    m = IntMap(dtype)
    m.put_many(keys, values)
    return m
