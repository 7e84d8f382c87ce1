"""`Store`: a persistent, crash-safe `MutableMapping` larger than RAM."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from ._errors import FormatError, ReadOnlyError
from ._frozen import FrozenStore, is_frozen_file
from ._scanned import Scanned
from ._size import parse_size
from ._vastdict import NativeStore, _after_fork_in_child

os.register_at_fork(after_in_child=_after_fork_in_child)


class Store(NativeStore, Scanned, MutableMapping):
    """A persistent key-value map with the `dict` interface.

    Open one with :func:`vastdict.open`. Entries live in memory-mapped files,
    not on the Python heap: a store of hundreds of millions of keys costs the
    process a few MiB of its own memory, and any number of processes can read
    it at once. One process at a time writes.

    Writes become durable at :meth:`commit` (or when a ``with`` block ends
    without an exception); :meth:`rollback` drops them. Readers see the last
    commit at the time they opened and move to the newest with :meth:`refresh`.

    >>> import tempfile, vastdict
    >>> path = tempfile.mkdtemp() + "/urls"
    >>> with vastdict.open(path, keys="str", values="int") as s:
    ...     s["https://example.com"] = 200
    ...     s.update({"https://example.org": 404})
    >>> s = vastdict.open(path, "r")
    >>> s["https://example.org"], len(s)
    (404, 2)
    """

    # --- iteration ---------------------------------------------------------

    def _scan_begin(self) -> object:
        self._prepare_scan()
        return self._mutations

    def _scan_check(self, token: object) -> None:
        if self._mutations != token:
            raise RuntimeError("store changed during iteration")

    # --- batch writes ------------------------------------------------------

    def update(
        self, other: Mapping[Any, Any] | Iterable[tuple[Any, Any]] = (), /, **kwds: Any
    ) -> None:
        """Set many pairs in one native call (a mapping or an iterable of pairs).

        The pairs are encoded with the GIL held; without it, one thread stages
        them into write buffers while another writes the full ones to the log.
        A pair that cannot be encoded raises, and the pairs before it are set
        (as with ``dict.update``).
        """
        if isinstance(other, Mapping):
            self.update_pairs(other.items())
        elif hasattr(other, "keys"):
            self.update_pairs((k, other[k]) for k in other.keys())  # noqa: SIM118 - not a dict
        else:
            self.update_pairs(other)
        if kwds:
            self.update_pairs(kwds.items())

    def pop(self, key: Any, *default: Any) -> Any:
        """Remove ``key`` and return its value (or ``default`` if given and missing)."""
        if len(default) > 1:
            raise TypeError(f"pop expected at most 2 arguments, got {1 + len(default)}")
        try:
            value = self[key]
        except KeyError:
            if default:
                return default[0]
            raise
        self.discard(key)
        return value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """Return ``self[key]``, first setting it to ``default`` if missing."""
        try:
            return self[key]
        except KeyError:
            self[key] = default
            return default

    def clear(self) -> None:
        """Delete every key (not committed until :meth:`commit`)."""
        for key in list(self):
            self.discard(key)

    # --- sharing -----------------------------------------------------------
    def __reduce__(self) -> tuple[Any, ...]:
        # By reference: the receiving process opens the same store read-only
        # (one process writes; readers see the last commit).
        return (open, (os.fspath(self.path), "r"))

    def freeze(
        self,
        path: str | os.PathLike[str],
        *,
        memory_budget: int | str = "2GiB",
        threads: int | None = None,
        progress: bool = True,
    ) -> dict[str, Any]:
        """Write every pair (pending writes included) to a frozen file at ``path``.

        The engine reads the records directly, with this store's codecs; the
        build holds at most ``memory_budget``, uses ``threads`` cores and shows
        a progress bar on a terminal, as :func:`vastdict.build` does. Returns
        the same summary.
        """
        return self._freeze(os.fspath(path), parse_size(memory_budget), threads, progress)

    # --- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # Commit on a clean exit, roll back on an exception; either way close.
        if self.closed:
            return
        self.close(commit=exc_type is None)

    def __repr__(self) -> str:
        if self.closed:
            return f"<vastdict.Store {str(self.path)!r} closed>"
        mode = "rw" if self.writable else "r"
        return f"<vastdict.Store {str(self.path)!r} {mode} entries={len(self)}>"


def open(
    path: str | os.PathLike[str],
    flag: str = "c",
    *,
    keys: str | None = None,
    values: str | None = None,
    memory_budget: int | str = "1GiB",
    compact_threshold: float = 0.5,
    segment_size: int | str = "1GiB",
) -> Store | FrozenStore:
    """Open the store at ``path`` (a directory), like :func:`dbm.open`.

    A frozen file made by :func:`vastdict.build` opens as a read-only
    :class:`FrozenStore` (flag ``"r"``, or the default ``"c"``).

    Args:
        path: directory of the store.
        flag: ``"r"`` read-only; ``"w"`` read-write, must exist; ``"c"``
            read-write, created if missing; ``"n"`` read-write, always new and empty.
        keys, values: codecs, one of ``"bytes"``, ``"str"`` (UTF-8), ``"int"``
            (signed 64-bit), ``"pickle"``, ``"json"``. They are recorded when the
            store is created (default ``"bytes"``); later opens need not name
            them, and naming a different one raises :class:`FormatError`.
        memory_budget: bound on the engine's own memory (its write buffer), as
            bytes or a string like ``"1GiB"``. Data pages are memory-mapped and
            left to the page cache.
        compact_threshold: at commit, compact automatically once overwritten
            and deleted records exceed this share of the log (0 turns it off).
        segment_size: log segment size for a new store (a power of two).

    Raises:
        StoreNotFoundError: ``"r"`` or ``"w"`` and no store at ``path``.
        LockedError: another process holds the store open for writing.
        CorruptionError: the store's files are damaged.
        FormatError: not a store, or a codec differs from the stored one.

    >>> import tempfile, vastdict
    >>> s = vastdict.open(tempfile.mkdtemp(), "n", values="json")
    >>> s[b"k"] = {"a": [1, 2]}
    >>> s.commit()
    >>> s[b"k"]
    {'a': [1, 2]}
    >>> s.close()
    """
    if is_frozen_file(path):
        if flag not in ("r", "c"):
            raise ReadOnlyError(
                f'{os.fspath(path)}: a frozen store is read-only; open it with flag="r", '
                "or build a new one with vastdict.build()"
            )
        f = FrozenStore(os.fspath(path))
        for what, want, have in (("keys", keys, f.key_codec), ("values", values, f.value_codec)):
            if want is not None and want != have:
                f.close()
                raise FormatError(f"{os.fspath(path)}: {what} codec is {have!r}, not {want!r}")
        return f
    if os.path.isfile(path):
        raise FormatError(
            f"{os.fspath(path)}: not a vastdict store (a store is a directory, a frozen "
            "store a file made by vastdict.build())"
        )
    seg = parse_size(segment_size)
    if seg <= 0 or seg & (seg - 1):
        raise ValueError(f"segment_size must be a power of two, not {segment_size!r}")
    if not 0.0 <= compact_threshold < 1.0:
        raise ValueError("compact_threshold must be in [0, 1)")
    return Store(
        os.fspath(path),
        flag,
        keys,
        values,
        parse_size(memory_budget),
        seg.bit_length() - 1,
        compact_threshold,
    )


def verify(path: str | os.PathLike[str]) -> dict[str, int]:
    """Check every block, record and index slot of the store at ``path``.

    Returns counts of what was read; raises :class:`CorruptionError` naming
    the file and offset of the first damage found.
    """
    s = open(path, "r")
    try:
        if isinstance(s, FrozenStore):
            return {"entries": s.verify(), "buckets": s.stats()["buckets"]}
        return s.verify()
    finally:
        s.close()
