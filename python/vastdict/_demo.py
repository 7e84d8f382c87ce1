"""``vastdict demo``: one frozen store beside a ``dict`` of the same pairs
(and, with ``--with-anchors``, beside every installed store the benchmarks
compare with), built and read from one and from four processes."""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import vastdict

from . import _anchors
from ._measure import forked_reads, in_fork, status_bytes

READERS = 4


def make_pairs(n: int, seed: int = 1) -> tuple[list[bytes], list[bytes]]:
    """``n`` URL-like keys of 44 bytes, each unique, and 29-byte values."""
    rng = random.Random(seed)
    keys = [
        b"https://www.site%07d.example/page/%010d" % (rng.randrange(10**7), i) for i in range(n)
    ]
    values = [b"%029d" % rng.randrange(10**29) for _ in range(n)]
    return keys, values


@dataclass
class Row:
    """One store's figures in the demo's table."""

    name: str
    build_rate: float
    memory: str
    get_rate: float
    batch_rate: float | None
    shared_rate: float
    shared_private: int


def _timed_loop(get, keys: list[bytes]) -> float:
    t = time.perf_counter()
    for k in keys:
        get(k)
    return len(keys) / (time.perf_counter() - t)


def _dict_row(keys, values, sample, base: int) -> tuple[Row, dict, int]:
    """The dict's row, the dict, and its heap bytes. ``base``: the
    process's anonymous memory before the pairs were made."""
    t = time.perf_counter()
    d = dict(zip(keys, values, strict=True))
    rate = len(keys) / (time.perf_counter() - t)
    # The dict's own cost: its table and the objects it keeps alive (not
    # the generator's two lists of pointers).
    heap = status_bytes("RssAnon") - base - 2 * sys.getsizeof(keys)
    row = Row(
        "dict",
        rate,
        f"{heap / len(keys):.0f} B heap",
        _timed_loop(d.__getitem__, sample),
        None,
        # Forked workers share it copy-on-write until reference counts copy its pages.
        *forked_reads(lambda: d.__getitem__, sample, READERS),
    )
    return row, d, heap


def _vastdict_row(keys, values, sample, d: dict, path: str, quiet: bool) -> tuple[Row, int]:
    t = time.perf_counter()
    vastdict.build(path, (keys, values), progress=not quiet)
    rate = len(keys) / (time.perf_counter() - t)
    with vastdict.open(path) as s:
        disk = s.stats()["bytes_on_disk"]
        get_rate = _timed_loop(s.__getitem__, sample)
        t = time.perf_counter()
        got = s.get_many(sample)
        batch = len(sample) / (time.perf_counter() - t)
    if got != [d[k] for k in sample]:
        raise vastdict.Error("the store and the dict disagree; please report this")

    def open_in_worker():
        return vastdict.open(path).__getitem__

    row = Row(
        "vastdict",
        rate,
        f"{disk / len(keys):.1f} B on disk",
        get_rate,
        batch,
        *forked_reads(open_in_worker, sample, READERS),
    )
    return row, disk


def _anchor_row(name: str, keys, values, sample, tmp: str) -> Row:
    """Build and read one anchor in a child process of its own, so its
    memory and its handles stay there."""

    def run() -> Row:
        target = Path(tmp) / name
        t = time.perf_counter()
        db = _anchors.build(name, keys, values, target)
        rate = len(keys) / (time.perf_counter() - t)
        get = _anchors.getters(name, db)[0]
        get_rate = _timed_loop(get, sample)
        _anchors.close(name, db)
        shared = forked_reads(
            lambda: _anchors.getters(name, _anchors.reopen(name, target))[0], sample, READERS
        )
        disk = _anchors.disk_bytes(target) + _anchors.disk_bytes(Path(f"{target}-wal"))
        return Row(name, rate, f"{disk / len(keys):.1f} B on disk", get_rate, None, *shared)

    return in_fork(run)


def _print_table(rows: list[Row]) -> None:
    header = (
        "store",
        "build pairs/s",
        "memory per pair",
        "get/s",
        "get_many/s",
        f"get/s, {READERS} procs",
        "private MiB per proc",
    )
    lines = [header]
    for r in rows:
        lines.append(
            (
                r.name,
                f"{r.build_rate:,.0f}",
                r.memory,
                f"{r.get_rate:,.0f}",
                f"{r.batch_rate:,.0f}" if r.batch_rate else "-",
                f"{r.shared_rate:,.0f}",
                f"+{r.shared_private / 2**20:,.1f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print(
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )


def run(n: int, *, quiet: bool = False, with_anchors: bool = False) -> int:
    """The whole demo; prints the table and the verdict."""
    say = (lambda *a, **k: None) if quiet else print
    say(f"generating {n:,} URL-like pairs ...", flush=True)
    base = status_bytes("RssAnon")
    keys, values = make_pairs(n)
    sample = random.Random(2).sample(keys, min(n, 200_000))
    say("dict: building and reading ...", flush=True)
    dict_row, d, heap = _dict_row(keys, values, sample, base)
    rows = [dict_row]
    with tempfile.TemporaryDirectory(prefix="vastdict-demo-") as tmp:
        say("vastdict: building a frozen store ...", flush=True)
        row, disk = _vastdict_row(keys, values, sample, d, os.path.join(tmp, "demo.vdf"), quiet)
        rows.insert(0, row)
        del d
        if with_anchors:
            for name in _anchors.ANCHORS[1:]:
                if not _anchors.installed(name):
                    say(f"{name}: not installed, skipped")
                    continue
                if n > _anchors.MAX_PAIRS.get(name, n):
                    say(f"{name}: skipped above {_anchors.MAX_PAIRS[name]:,} pairs (too slow)")
                    continue
                say(f"{name}: building and reading ...", flush=True)
                try:
                    rows.append(_anchor_row(name, keys, values, sample, tmp))
                except RuntimeError as e:
                    say(f"{name}: failed ({e})")
    print()
    _print_table(rows)
    print()
    v, dr = rows[0], dict_row
    print(
        f"{READERS} worker processes reading: dict workers paid "
        f"+{dr.shared_private / 2**20:,.0f} MiB each as reference counts copied its pages; "
        f"vastdict workers +{v.shared_private / 2**20:,.1f} MiB."
    )
    print(
        f"verdict: {n:,} pairs in {disk / 2**20:,.0f} MiB that every process shares, instead of"
        f" {heap / 2**20:,.0f} MiB of heap per process."
    )
    return 0
