"""Near-duplicate detection over a JSONL or Parquet file, streamed: the
texts are read twice in batches (to sign and index them, then to check the
candidate pairs exactly) and never held in memory together."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _vastdict as _native
from ._errors import InputError
from .lsh import MinHasher, _accepted, _CandidateSearch, clusters


def _format(path: str, given: str | None) -> str:
    if given:
        return given
    return "parquet" if path.endswith((".parquet", ".pq")) else "jsonl"


def _batches(path: str, fmt: str, fields: list[str], batch_size: int) -> Iterator[Any]:
    import pyarrow as pa

    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            f = pq.ParquetFile(path)
            missing = [c for c in fields if c not in f.schema_arrow.names]
            if missing:
                raise InputError(
                    f"{path}: no column {missing[0]!r}; name it with --text-field or --id-field"
                )
            yield from f.iter_batches(batch_size=batch_size, columns=fields)
            return
        import pyarrow.json as pj

        # Small blocks bound the parser's memory (it holds several at once);
        # one line must fit a block.
        reader = pj.open_json(path, read_options=pj.ReadOptions(block_size=4 << 20))
        pending: list[Any] = []
        rows = 0
        for batch in reader:
            missing = [c for c in fields if c not in batch.schema.names]
            if missing:
                raise InputError(
                    f"{path}: no field {missing[0]!r}; name it with --text-field or --id-field"
                )
            pending.append(batch.select(fields))
            rows += batch.num_rows
            # Blocks are a few thousand lines: gather them into batches big
            # enough to keep every core busy.
            if rows >= batch_size:
                yield _combined(pending)
                pending, rows = [], 0
        if pending:
            yield _combined(pending)
    except pa.ArrowInvalid as e:
        raise InputError(f"{path}: cannot read as {fmt}: {e}") from None


def _combined(batches: list[Any]) -> Any:
    import pyarrow as pa

    table = pa.Table.from_batches(batches).combine_chunks()
    return table.to_batches()[0] if table.num_rows else batches[0]


def _texts(batch: Any, field: str) -> Any:
    import pyarrow as pa

    col = batch.column(field)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        raise InputError(
            f"field {field!r} holds {col.type}, not text; name the text with --text-field"
        )
    return col.fill_null("").cast(pa.large_string())


def dedup_file(
    source: str,
    output: str,
    *,
    text_field: str = "text",
    id_field: str | None = "id",
    threshold: float = 0.8,
    num_perm: int = 128,
    ngram: int = 5,
    unit: str = "word",
    seed: int = 1,
    verify: str = "exact",
    batch_size: int = 65536,
    input_format: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write, for each document of ``source``, its id, its cluster (the id
    of the cluster's first document) and whether it is the one to keep, to
    ``output`` (JSONL, or Parquet by extension). Returns a summary."""
    import pyarrow as pa

    if not os.path.exists(source):
        raise InputError(f"{source}: no such file")
    if verify not in ("exact", "estimate"):
        raise ValueError(f'verify must be "exact" or "estimate", not {verify!r}')
    fmt = _format(source, input_format)
    fields = [text_field] + ([id_field] if id_field and id_field != text_field else [])
    started = time.perf_counter()
    hasher = MinHasher(num_perm, ngram, unit, seed)
    search = _CandidateSearch(threshold, num_perm, None, None, verify)
    ids = []
    bar = _native.NativeProgress(None, "docs", progress)
    bar.set_message("signing and indexing")
    for batch in _batches(source, fmt, fields, batch_size):
        first = search.n
        search.add(hasher.signatures(_texts(batch, text_field)))
        ids.append(batch.column(id_field) if id_field else pa.array(np.arange(first, search.n)))
        bar.inc(search.n - first)
    bar.finish()
    n = search.n
    a, b = search.pairs()
    candidates = len(a)
    if verify == "exact":
        checker = hasher._h.exact_checker(float(threshold), a, b)
        bar = _native.NativeProgress(n, "docs", progress)
        bar.set_message("checking pairs exactly")
        for batch in _batches(source, fmt, [text_field], batch_size):
            col = _texts(batch, text_field)
            _, offs, data = col.buffers()
            offsets = np.frombuffer(offs, np.int64)[col.offset : col.offset + len(col) + 1]
            raw = np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8)
            checker.feed_utf8(np.ascontiguousarray(offsets), raw)
            bar.inc(len(col))
        bar.finish()
        a, b = _accepted(checker)
    cluster = clusters(n, a, b)
    keep = cluster == np.arange(n)
    all_ids = pa.chunked_array(ids) if ids else pa.chunked_array([], pa.int64())
    rep = all_ids.take(pa.array(cluster))
    _write(output, all_ids, rep, keep)
    kept = int(keep.sum())
    return {
        "documents": n,
        "clusters": kept,
        "duplicates": n - kept,
        "candidate_pairs": candidates,
        "matched_pairs": len(a),
        "bands": search.bands,
        "rows": search.rows,
        "seconds": time.perf_counter() - started,
    }


def _write(output: str, ids: Any, rep: Any, keep: np.ndarray) -> None:
    import pyarrow as pa

    if output.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        table = pa.table({"id": ids, "cluster": rep, "keep": pa.array(keep)})
        pq.write_table(table, output)
        return
    tmp = f"{output}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        dumps = json.dumps
        for i, c, k in zip(ids.to_pylist(), rep.to_pylist(), keep.tolist(), strict=True):
            f.write(
                f'{{"id": {dumps(i)}, "cluster": {dumps(c)}, "keep": {"true" if k else "false"}}}\n'
            )
    os.replace(tmp, output)
