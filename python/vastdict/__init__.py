"""vastdict: key-value maps of hundreds of millions to billions of entries.

A :class:`Store` is a persistent, crash-safe ``dict`` whose entries live in
memory-mapped files instead of the Python heap, shared by every process that
opens it.

>>> import tempfile, vastdict
>>> with vastdict.open(tempfile.mkdtemp(), keys="str", values="str") as s:
...     s["hello"] = "world"
...     s["hello"]
'world'
"""

from ._errors import (
    ClosedError,
    CorruptionError,
    DiskFullError,
    Error,
    ForkedWriterError,
    FormatError,
    InputError,
    InvalidError,
    LockedError,
    ReadOnlyError,
    StorageIOError,
    StoreNotFoundError,
)
from ._frozen import FrozenStore, build
from ._size import parse_size
from ._store import Store, open, verify
from ._vastdict import __version__


def __getattr__(name: str) -> object:
    # Integer maps need NumPy; import them (and it) only when asked for.
    if name in ("IntMap", "IntMultiMap"):
        try:
            from ._intmap import IntMap
            from ._multimap import IntMultiMap
        except ImportError as e:
            if "numpy" in str(e):
                raise ImportError(f"vastdict.{name} needs NumPy: pip install numpy") from e
            raise
        return IntMap if name == "IntMap" else IntMultiMap
    raise AttributeError(f"module 'vastdict' has no attribute {name!r}")


__all__ = [
    "ClosedError",
    "CorruptionError",
    "DiskFullError",
    "Error",
    "ForkedWriterError",
    "FormatError",
    "FrozenStore",
    "InputError",
    "IntMap",
    "IntMultiMap",
    "InvalidError",
    "LockedError",
    "ReadOnlyError",
    "StorageIOError",
    "Store",
    "StoreNotFoundError",
    "__version__",
    "build",
    "open",
    "parse_size",
    "verify",
]
