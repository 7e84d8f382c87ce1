"""`IntMultiMap`: uint64 keys to groups of numbers, with NumPy batch calls."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _vastdict
from ._intmap import _MAX_KEY, as_keys, as_values

_NATIVE = {
    "uint32": _vastdict.MultiMapU32,
    "uint64": _vastdict.MultiMapU64,
    "int64": _vastdict.MultiMapI64,
    "float64": _vastdict.MultiMapF64,
}


class IntMultiMap:
    """A map from uint64 keys to groups of numbers (a ``dict[int, list]`` in
    a few bytes per pair).

    Groups keep insertion order; with ``unique=True`` a key never holds
    the same value twice (set semantics). Batch calls take and return NumPy
    arrays, release the GIL and use all cores. Pairs stay encoded in memory
    (about 4.5 bytes per pair with 16 values per key, 9.4-9.8 with one, for
    uint32 values); :meth:`save` writes the same form to a file that
    :meth:`open` maps in O(1), read-only (``mode="r"``, shareable by every
    process) or with changes layered on top (``mode="a"``).

    >>> import vastdict
    >>> m = vastdict.IntMultiMap("uint32")
    >>> m.add_many([7, 9, 7], [1, 2, 3])
    3
    >>> m.get(7)
    array([1, 3], dtype=uint32)
    >>> offsets, values = m.get_many([7, 8, 9])
    >>> offsets.tolist(), values.tolist()
    ([0, 2, 2, 3], [1, 3, 2])
    >>> m.count_many([7, 8]).tolist(), len(m), m.num_values
    ([2, 0], 2, 3)
    """

    def __init__(self, value_dtype: str = "uint32", *, unique: bool = False) -> None:
        if value_dtype not in _NATIVE:
            raise ValueError(f"value_dtype must be one of {sorted(_NATIVE)}, not {value_dtype!r}")
        self._dtype = np.dtype(value_dtype)
        self._m = _NATIVE[value_dtype](bool(unique))

    @classmethod
    def open(cls, path: str | os.PathLike[str], mode: str = "r") -> IntMultiMap:
        """Open a multimap saved with :meth:`save`: ``"r"`` read-only
        (memory-mapped, O(1)), ``"a"`` writable, changes kept in memory over
        the file until saved."""
        if mode not in ("r", "a"):
            raise ValueError(f'mode must be "r" or "a", not {mode!r}')
        path = os.fspath(path)
        dtype, _unique = _vastdict.multimap_file_info(path)
        self = cls.__new__(cls)
        self._dtype = np.dtype(dtype)
        self._m = _NATIVE[dtype].open(path, mode)
        return self

    @property
    def value_dtype(self) -> np.dtype:
        """The NumPy dtype of the values."""
        return self._dtype

    @property
    def unique(self) -> bool:
        """Whether groups are sets (a value is added to a key only once)."""
        return self._m.unique

    @property
    def path(self) -> str | None:
        """The file this map was opened from or last saved to (None if never)."""
        p = self._m.path
        return None if p is None else os.fspath(p)

    @property
    def writable(self) -> bool:
        """False for a multimap opened read-only (``mode="r"``)."""
        return self._m.writable

    @property
    def num_values(self) -> int:
        """The number of (key, value) pairs."""
        return self._m.num_values()

    def _array(self, b: bytearray, dtype: Any) -> np.ndarray:
        return np.frombuffer(b, dtype=np.dtype(dtype).newbyteorder("<"))

    # --- batch calls ---------------------------------------------------------

    def add_many(self, keys: Any, values: Any) -> int:
        """Append ``values[i]`` to the group of ``keys[i]``; returns how many
        values were added (with ``unique=True``, values a key already has are
        skipped). ``values`` may be a scalar for all keys."""
        k = as_keys(keys)
        v = as_values(values, self._dtype, len(k))
        if len(k) != len(v):
            raise ValueError(f"keys and values differ in length: {len(k)} and {len(v)}")
        return self._m.add_many(k, v)

    def get_many(self, keys: Any) -> tuple[np.ndarray, np.ndarray]:
        """The groups of ``keys`` in CSR form ``(offsets, values)``: the values
        of ``keys[i]`` are ``values[offsets[i]:offsets[i + 1]]`` (empty where
        missing); ``offsets`` is int64 of length ``len(keys) + 1``."""
        o, v = self._m.get_many(as_keys(keys))
        return self._array(o, np.int64), self._array(v, self._dtype)

    def count_many(self, keys: Any) -> np.ndarray:
        """How many values each key has (0 where missing), as int64."""
        k = as_keys(keys)
        out = np.empty(len(k), dtype=np.uint64)
        self._m.count_many_into(k, out)
        return out.view(np.int64)

    def contains_many(self, keys: Any) -> np.ndarray:
        """A bool array: which of ``keys`` are in the map."""
        return self.count_many(keys) > 0

    def remove_many(self, keys: Any) -> int:
        """Remove ``keys`` with all their values (missing ones are ignored);
        returns how many were there."""
        return self._m.remove_many(as_keys(keys))

    def items(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(keys, offsets, values)`` of every group, in no particular order."""
        k, o, v = self._m.export()
        offsets = self._array(o, np.int64)
        return self._array(k, np.uint64), offsets, self._array(v, self._dtype)

    def keys(self) -> np.ndarray:
        return self.items()[0]

    # --- single keys ---------------------------------------------------------

    @staticmethod
    def _key(key: Any) -> int | None:
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
            raise TypeError(f"keys are integers, not {type(key).__name__}")
        return int(key) if 0 <= int(key) <= _MAX_KEY else None

    def get(self, key: Any) -> np.ndarray:
        """The values of ``key`` in insertion order (empty if missing)."""
        k = self._key(key)
        if k is None:
            return np.empty(0, dtype=self._dtype)
        return self._array(self._m.get(k), self._dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        v = self.get(key)
        if len(v) == 0:
            raise KeyError(key)
        return v

    def add(self, key: Any, value: Any) -> int:
        """Append one value to the group of ``key``."""
        return self.add_many([key], [value])

    def __delitem__(self, key: Any) -> None:
        k = self._key(key)
        if k is None or self.remove_many([k]) == 0:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        try:
            k = self._key(key)
        except TypeError:
            return False
        return k is not None and bool(self.count_many([k])[0])

    def __len__(self) -> int:
        """The number of keys."""
        return len(self._m)

    def __iter__(self) -> Iterator[int]:
        return iter(self.keys().tolist())

    # --- files and sharing -----------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> int:
        """Write the map to ``path`` (atomically); returns the file's size."""
        return self._m.save(os.fspath(path))

    def compact(self) -> None:
        """Fold all changes into the encoded form (``save`` does this too)."""
        self._m.compact()

    def stats(self) -> dict[str, Any]:
        """Keys, pairs, and bytes per pair resident in memory and on disk."""
        st = self._m.stats()
        n = st.get("values", 0)
        if n:
            st["resident_bytes_per_pair"] = st["resident_bytes"] / n
            if "bytes_on_disk" in st:
                st["disk_bytes_per_pair"] = st["bytes_on_disk"] / n
        return st

    def verify(self) -> int:
        """Check every bucket and value; returns the number of pairs."""
        return self._m.verify()

    def close(self) -> None:
        """Release the multimap's memory and file; later calls raise ``ClosedError``."""
        self._m.close()

    def __enter__(self) -> IntMultiMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        if not self._m.writable and self.path is not None:
            return (IntMultiMap.open, (self.path, "r"))  # by reference
        k, o, v = self.items()
        return (_rebuild, (str(self._dtype), self.unique, k, o, v))

    def __repr__(self) -> str:
        where = f" {self.path!r}" if self.path else ""
        mode = "rw" if self.writable else "r"
        return f"<vastdict.IntMultiMap {self._dtype}{where} {mode} keys={len(self)}>"


def _rebuild(
    dtype: str, unique: bool, keys: np.ndarray, offsets: np.ndarray, values: np.ndarray
) -> IntMultiMap:
    m = IntMultiMap(dtype, unique=unique)
    m.add_many(np.repeat(keys, np.diff(offsets)), values)
    return m
