"""Frozen stores: immutable files built in bulk, shared by every process."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ._errors import InputError
from ._scanned import Scanned
from ._size import parse_size
from ._vastdict import NativeFrozen, build_file, build_pairs

_FORMATS = {
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "tsv",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}


class FrozenStore(NativeFrozen, Scanned, Mapping):
    """A read-only map in one memory-mapped file, built by :func:`vastdict.build`.

    Opening is O(1) and costs the process almost no memory of its own: the
    file's pages live in the page cache, shared by every process that opens
    it (or inherits it through ``fork``). A handle pickles as a reference
    (its path), so it can be passed to ``multiprocessing`` workers.

    >>> import tempfile, vastdict
    >>> path = tempfile.mkdtemp() + "/ids.vdf"
    >>> vastdict.build(path, {"a": 1, "b": 2}, keys="str", values="int", progress=False)["pairs"]
    2
    >>> f = vastdict.open(path)
    >>> f["b"], f.get("z"), len(f), sorted(f)
    (2, None, 2, ['a', 'b'])
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # By reference: the receiving process maps the same file.
        return (FrozenStore, (os.fspath(self.path),))

    def __enter__(self) -> FrozenStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return f"<vastdict.FrozenStore {str(self.path)!r} closed>"
        return f"<vastdict.FrozenStore {str(self.path)!r} entries={len(self)}>"


def is_frozen_file(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a file that starts like a frozen store."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY), "rb") as f:
            return f.read(8) == b"VDFROZEN"
    except (IsADirectoryError, FileNotFoundError, NotADirectoryError):
        return False


def build(
    path: str | os.PathLike[str],
    source: Any,
    *,
    keys: str = "bytes",
    values: str = "bytes",
    memory_budget: int | str = "2GiB",
    threads: int | None = None,
    on_duplicate: str = "last",
    progress: bool = True,
    format: str | None = None,
    key_column: int | str | None = None,
    value_column: int | str | None = None,
    delimiter: str | None = None,
    header: bool = False,
    errors: str = "raise",
) -> dict[str, Any]:
    """Build a frozen store at ``path`` from ``source``; returns a summary.

    ``source`` is a mapping; an iterable of (key, value) pairs; a tuple of two
    equal-length sequences or arrays (keys, values); a pyarrow ``Table`` or
    ``RecordBatchReader``; or the path of a TSV, CSV, JSONL or Parquet file.
    TSV, CSV and JSONL files are parsed by the engine on all cores; by
    default a TSV/CSV line's first column is the key and its second the value
    (no header), and a JSONL object's fields ``"key"`` and ``"value"``.

    The build holds at most about ``memory_budget`` in memory (larger inputs
    are partitioned to temporary files next to ``path``), uses ``threads``
    cores (all by default), and writes the file under a temporary name that
    is renamed to ``path`` when complete, so readers never see a partial
    file. Ctrl-C stops it and removes everything it wrote.

    Args:
        keys, values: codecs, as for :func:`vastdict.open` (file sources take
            ``"bytes"``, ``"str"``, ``"int"`` or ``"json"``).
        on_duplicate: ``"last"`` keeps the last value of a repeated key,
            ``"first"`` the first, ``"error"`` raises :class:`InvalidError`.
        progress: show a progress bar (on a terminal only).
        format: ``"tsv"``, ``"csv"``, ``"jsonl"`` or ``"parquet"``; by default
            from the file's extension.
        key_column, value_column: column number (from 0) or name (with
            ``header=True``), or JSON field name.
        delimiter: field separator for TSV/CSV (default tab / comma).
        header: the first line of a TSV/CSV file names the columns.
        errors: ``"raise"`` stops at the first bad line with an
            :class:`InputError` naming file and line; ``"skip"`` skips bad
            lines and counts them in the summary's ``"skipped"``.

    Returns:
        ``{"pairs", "received", "skipped", "read_in_place", "bytes_on_disk",
        "seconds"}``. ``read_in_place`` is true when a TSV file's pairs were
        read where they lie in a mapping of the file, which a build does
        when the codecs keep the text as it is ("bytes", "str") and the file
        plus 16 bytes per line fit three quarters of ``memory_budget``; its
        pages then count in the process's resident memory while it builds.
    """
    if errors not in ("raise", "skip"):
        raise ValueError(f'errors must be "raise" or "skip", not {errors!r}')
    budget = parse_size(memory_budget)
    target = os.fspath(path)
    common = (keys, values, budget, on_duplicate, threads, progress)
    if isinstance(source, (str, os.PathLike)):
        src = os.fspath(source)
        fmt = format or _FORMATS.get(os.path.splitext(src)[1].lower())
        if fmt is None:
            raise ValueError(
                f"cannot tell the format of {src!r} from its extension; "
                'pass format="tsv", "csv", "jsonl" or "parquet"'
            )
        if fmt == "parquet":
            return _build_parquet(target, src, key_column, value_column, common)
        return build_file(
            target,
            src,
            fmt,
            *common,
            delimiter=delimiter,
            header=header,
            key_column=key_column,
            value_column=value_column,
            skip_errors=errors == "skip",
        )
    if type(source).__module__.startswith("pyarrow"):
        return _build_arrow(target, source, key_column, value_column, common)
    pairs, total = _pairs_of(source)
    return build_pairs(target, pairs, *common, total)


def _pairs_of(source: Any) -> tuple[Iterable[Any], int | None]:
    if isinstance(source, Mapping):
        return source.items(), len(source)
    if isinstance(source, tuple) and len(source) == 2 and all(_is_column(c) for c in source):
        ks, vs = source
        if len(ks) != len(vs):
            raise ValueError(f"keys and values differ in length: {len(ks)} and {len(vs)}")
        ks, vs = (c.tolist() if hasattr(c, "tolist") else c for c in (ks, vs))
        return zip(ks, vs, strict=True), len(ks)
    total = len(source) if isinstance(source, Sequence) else None
    return source, total


def _is_column(c: Any) -> bool:
    return hasattr(c, "__len__") and not isinstance(c, (str, bytes, bytearray, tuple))


def _arrow_column(names: list[str], column: int | str | None, default: int) -> str:
    """A column named, numbered, or (None) at its default position."""
    if isinstance(column, str):
        return column
    return names[default if column is None else column]


def _key_value_columns(batch: Any, key_column: Any, value_column: Any) -> tuple[Any, Any]:
    """The key and value columns of a record batch."""
    names = batch.schema.names
    return (
        batch.column(_arrow_column(names, key_column, 0)),
        batch.column(_arrow_column(names, value_column, 1)),
    )


def _arrow_pairs(batches: Iterable[Any], key_column: Any, value_column: Any) -> Iterator[Any]:
    for batch in batches:
        k, v = _key_value_columns(batch, key_column, value_column)
        yield from zip(k.to_pylist(), v.to_pylist(), strict=True)


# Codecs whose items the engine reads straight from Arrow's buffers.
_COLUMNAR = ("bytes", "str", "int")


def _arrow_buffers(col: Any, codec: str, what: str, row0: int) -> tuple[Any, Any]:
    """A column of a record batch as the engine reads it: ``(offsets,
    data)`` of its bytes, or ``(None, int64 values)``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if col.null_count:
        first = pc.index(col.is_null(), True).as_py()
        raise InputError(
            f"row {row0 + first}: the {what} is null; drop or fill nulls before building"
        )
    t = col.type
    if codec == "int":
        if not pa.types.is_integer(t):
            raise TypeError(f'{what}s="int" needs an integer {what} column, not {t}')
        try:
            col = col.cast(pa.int64())
        except pa.ArrowInvalid as e:
            raise ValueError(f'a {what} does not fit the "int" codec\'s 64 bits: {e}') from None
        return None, np.frombuffer(col.buffers()[1], dtype=np.int64)[
            col.offset : col.offset + len(col)
        ]
    kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary)
    if not any(k(t) for k in (*kinds, pa.types.is_large_binary)):
        raise TypeError(f'{what}s="{codec}" needs a string or binary {what} column, not {t}')
    col = col.cast(pa.large_binary())
    _, offsets, data = col.buffers()
    offs = np.frombuffer(offsets, dtype=np.int64)[col.offset : col.offset + len(col) + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8)
    return np.ascontiguousarray(offs), raw


def _arrow_chunks(
    batches: Iterable[Any], key_column: Any, value_column: Any, keys: str, values: str
) -> Iterator[tuple[Any, Any, Any, Any]]:
    row0 = 0
    for batch in batches:
        k, v = _key_value_columns(batch, key_column, value_column)
        yield (*_arrow_buffers(k, keys, "key", row0), *_arrow_buffers(v, values, "value", row0))
        row0 += batch.num_rows


def _build_batches(
    target: str,
    batches: Iterable[Any],
    total: int | None,
    key_column: Any,
    value_column: Any,
    common: tuple,
) -> dict[str, Any]:
    keys, values = common[0], common[1]
    if keys in _COLUMNAR and values in _COLUMNAR:
        chunks = _arrow_chunks(batches, key_column, value_column, keys, values)
        return build_pairs(target, chunks, *common, total, columns=True)
    # json and pickle values are Python objects by nature.
    return build_pairs(target, _arrow_pairs(batches, key_column, value_column), *common, total)


def _build_arrow(
    target: str, source: Any, key_column: Any, value_column: Any, common: tuple
) -> dict[str, Any]:
    if hasattr(source, "to_batches"):
        batches, total = source.to_batches(), source.num_rows
    else:
        batches, total = source, None
    return _build_batches(target, batches, total, key_column, value_column, common)


def _build_parquet(
    target: str, src: str, key_column: Any, value_column: Any, common: tuple
) -> dict[str, Any]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("reading Parquet needs pyarrow: pip install pyarrow") from None
    f = pq.ParquetFile(src)
    # pyarrow decodes the file batch by batch; the engine reads the rows.
    return _build_batches(
        target, f.iter_batches(), f.metadata.num_rows, key_column, value_column, common
    )
