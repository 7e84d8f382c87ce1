"""What a process costs the machine, read from /proc: the figures the demo
and the benchmarks report."""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def status_bytes(field: str) -> int:
    """A field of /proc/self/status in bytes, e.g. ``"VmHWM"`` (peak RSS)
    or ``"RssAnon"``; 0 where the kernel does not report it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def private_dirty_bytes() -> int:
    """Memory only this process holds and that it wrote: its heap, and the
    pages a forked child copied from its parent by writing to them (a
    ``dict``'s objects are written by every reference count change). Clean
    pages of a mapped file are the page cache's and shared by every process
    that maps the file, so they are not counted even while only this one
    has touched them."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Private_Dirty:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def forked_reads(
    make_get: Callable[[], Callable[[Any], object]], keys: Sequence[Any], procs: int
) -> tuple[float, int]:
    """Fork ``procs`` processes that each call ``make_get()`` (open a store,
    or pick up one inherited through the fork) and then look up every key
    of ``keys``. Returns their combined lookups per second and the most
    private memory (:func:`private_dirty_bytes`) one of them added while
    reading.

        >>> d = {i: i for i in range(1000)}
        >>> rate, grew = forked_reads(lambda: d.__getitem__, list(d), 2)
        >>> rate > 0 and grew >= 0
        True
    """
    reader, writer = os.pipe()
    pids = []
    for _ in range(procs):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                os.close(reader)
                get = make_get()
                for k in keys[:1000]:
                    get(k)
                for _k in keys:  # copy the pages of the keys' reference counts first
                    pass
                before = private_dirty_bytes()
                t = time.perf_counter()
                for k in keys:
                    get(k)
                seconds = time.perf_counter() - t
                os.write(writer, b"%f %d\n" % (seconds, private_dirty_bytes() - before))
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(writer)
    failed = sum(os.waitpid(pid, 0)[1] != 0 for pid in pids)
    with os.fdopen(reader) as f:
        reports = [line.split() for line in f]
    if failed or len(reports) != procs:
        raise RuntimeError(f"{failed or procs - len(reports)} of {procs} reader processes failed")
    slowest = max(float(s) for s, _ in reports)
    return procs * len(keys) / max(slowest, 1e-9), max(int(g) for _, g in reports)


def in_fork(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a forked child and return its (picklable) result, so
    that whatever it allocates is that child's and gone afterwards. An
    exception in the child is raised here again.

        >>> in_fork(lambda: 6 * 7)
        42
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(reader)
            try:
                payload = pickle.dumps((True, fn()))
            except BaseException as e:
                payload = pickle.dumps((False, RuntimeError(f"{type(e).__name__}: {e}")))
            with os.fdopen(writer, "wb") as f:
                f.write(payload)
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as f:
        payload = f.read()
    os.waitpid(pid, 0)
    if not payload:
        raise RuntimeError("the child process died before it could report")
    ok, value = pickle.loads(payload)
    if not ok:
        raise value
    return value
