"""Frozen-store benchmark: vastdict.build() beside dict, lmdb, rocksdict,
keyvi, marisa-trie and sqlite3, every one built from the same TSV file.

Each store is built and read in a fresh process (so peak RSS is its own),
rounds interleave the stores, and figures are medians over rounds. Results
go to ``benches/results/frozen-<n>.json``; ``report.py`` writes RESULTS.md.

    python benches/frozen_bench.py --n 10000000 --rounds 3

Build = from the TSV file on disk to a finished store: anchors read and
split the file in Python (and sort it when their fastest bulk path needs
sorted input); vastdict parses it in the engine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
from pathlib import Path

from store_bench import (
    Phase,
    child,
    load,
    load_keys,
    machine,
    make_data,
    query_keys,
    save_results,
    status,
    versions,
    wait_for_quiet,
)

from vastdict import _anchors
from vastdict._measure import forked_reads

HERE = Path(__file__).resolve().parent
STORES = ["vastdict", *_anchors.ANCHORS]
BUDGET = "2GiB"
SCALE_QUERIES = 300_000


def miss_keys(queries: list[bytes]) -> list[bytes]:
    """Keys shaped like the stored ones that are not stored."""
    return [q[:-1] + b"x" for q in queries]


def build(kind: str, data: Path, target: Path, out: dict):
    """Build one store from the TSV file; returns the open store (kept
    alive while it is read)."""
    before_build = status("RssAnon")
    if kind == "vastdict":
        import vastdict

        with Phase() as p:
            vastdict.build(target, data, memory_budget=BUDGET, progress=False)
        out["build_s"], out["build_other_cpu"] = p.seconds, p.other_cpu
        out["build_peak_rss"] = status("VmHWM")
        before = status("RssAnon")
        s = vastdict.open(target)
        out["anon_open"] = status("RssAnon") - before
        out["anon_held"] = status("RssAnon") - before_build
        return s
    with Phase() as p:
        # Reading and splitting the file counts, as vastdict's build parses it.
        obj = _anchors.build(kind, *load(data), target)
    out["build_s"], out["build_other_cpu"] = p.seconds, p.other_cpu
    out["build_peak_rss"] = status("VmHWM")
    # What the process holds once the input lists are gone: a dict's table
    # and objects; for the others, caches and what the allocator kept.
    out["anon_held"] = status("RssAnon") - before_build
    return obj


def getters(kind: str, obj):
    """(get raising on a miss, get returning None on a miss)."""
    if kind == "vastdict":
        return obj.__getitem__, obj.get
    return _anchors.getters(kind, obj)


def reopen(kind: str, target: Path):
    if kind == "vastdict":
        import vastdict

        return vastdict.open(target)
    return _anchors.reopen(kind, target)


def loop(get, keys) -> float:
    with Phase() as p:
        for k in keys:
            get(k)
    return p.seconds


def parallel_loop(kind: str, shared, target: Path, keys, procs: int) -> tuple[float, int]:
    """``procs`` processes each read ``keys``: combined rate and the most
    private memory one added. A dict is inherited through the fork (the
    only way to share one); every other store is opened by each worker, as
    its docs ask."""

    def make_get():
        return getters(kind, shared if kind == "dict" else reopen(kind, target))[0]

    return forked_reads(make_get, keys, procs)


def read_through(path: Path) -> None:
    """Read a file once so that its pages are in the page cache."""
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


def cache_input(data: Path) -> None:
    """Put the input in the page cache before a build, as far as memory
    allows: every store then builds from the same state, and the build
    measures the store, not the disk. (The previous child dropped the
    file after its own build; without this, the first child of a run
    read it from the cache and every later one from the disk.)"""
    if data.stat().st_size < os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4:
        read_through(data)


def warm(work: Path, drop: Path) -> None:
    """Drop the input file from the page cache and read the store's files
    once, so every store is measured with its pages cached (at 100M pairs
    the input and the build's spill files would otherwise have pushed part
    of the result out)."""
    fd = os.open(drop, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    for f in sorted(p for p in work.rglob("*") if p.is_file()):
        read_through(f)


def run_child(kind: str, data: Path, work: Path) -> dict:
    out: dict = {"store": kind}
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    target = work / "store"
    cache_input(data)
    obj = build(kind, data, target, out)
    get, get_or_none = getters(kind, obj)
    keys = load_keys(data)
    out["n"] = len(keys)
    queries = query_keys(keys)
    misses = miss_keys(queries)
    del keys
    warm(work, drop=data)
    for k in queries[:1000]:  # warm-up
        get(k)
    out["queries"] = len(queries)
    out["get_loop_s"] = loop(get, queries)
    out["miss_loop_s"] = loop(get_or_none, misses)
    assert get_or_none(misses[0]) is None
    if kind == "vastdict":
        for _ in range(2):
            obj.get_many(queries[:100_000])
        times = []
        for _ in range(3):
            got = None  # freeing the previous result is not part of the call
            with Phase() as p:
                got = obj.get_many(queries)
            times.append(p.seconds)
        out["get_many_s"] = sorted(times)[1]
        assert got[0] is not None
    out["disk_bytes"] = _anchors.disk_bytes(work) if kind != "dict" else 0
    out["peak_rss"] = status("VmHWM")
    # Read scaling from 1 to 4 processes, each reading the same keys.
    if kind != "dict":
        _anchors.close(kind, obj) if kind != "vastdict" else obj.close()
        obj = None
    part = queries[:SCALE_QUERIES]
    out["scale_queries"] = len(part)
    for procs in range(1, 5):
        rate, private = parallel_loop(kind, obj, target, part, procs)
        out[f"scale_{procs}_rate"], out[f"scale_{procs}_private"] = rate, private
    return out


def summary(r: dict) -> str:
    n = r["n"]
    parts = [
        f"build {n / r['build_s'] / 1e6:.2f}M/s",
        f"peak {r['build_peak_rss'] / 2**20:.0f}MiB",
        f"get {r['queries'] / r['get_loop_s'] / 1e6:.2f}M/s",
        f"miss {r['queries'] / r['miss_loop_s'] / 1e6:.2f}M/s",
    ]
    if "get_many_s" in r:
        parts.append(f"batch {r['queries'] / r['get_many_s'] / 1e6:.2f}M/s")
    if "scale_4_rate" in r:
        parts.append(
            f"4-proc {r['scale_4_rate'] / r['scale_1_rate']:.2f}x"
            f" +{r['scale_4_private'] / 2**20:.1f}MiB each"
        )
    if r.get("disk_bytes"):
        parts.append(f"disk {r['disk_bytes'] / n:.1f}B/pair")
    return ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stores", default=",".join(STORES))
    ap.add_argument("--data-dir", default=str(HERE / "data"))
    ap.add_argument("--work-dir", default="/tmp/vastdict-bench")
    ap.add_argument("--child", nargs=3, metavar=("STORE", "DATA", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child[0], Path(args.child[1]), Path(args.child[2]))))
        return
    data = Path(args.data_dir) / f"pairs-{args.n}.tsv"
    data.parent.mkdir(parents=True, exist_ok=True)
    make_data(data, args.n)
    named = args.stores.split(",")
    missing = [s for s in named if s != "vastdict" and not _anchors.installed(s)]
    if missing:
        # A table without an anchor would read as if that anchor had lost.
        sys.exit(
            f"anchors not installed: {', '.join(missing)}; run pip install '.[bench]' "
            "or leave them out with --stores"
        )
    stores = [s for s in named if s == "vastdict" or args.n <= _anchors.MAX_PAIRS.get(s, args.n)]
    runs: dict[str, list[dict]] = {s: [] for s in stores}
    order = list(stores)
    for r in range(args.rounds):
        random.Random(r).shuffle(order)
        for kind in order:
            quiet = wait_for_quiet()
            work = Path(args.work_dir) / kind
            result = child(__file__, [kind, str(data), str(work)], f"round {r + 1} {kind}")
            shutil.rmtree(work, ignore_errors=True)
            if result is None:
                continue
            result["other_cores_before"] = quiet
            runs[kind].append(result)
            print(f"round {r + 1} {kind}: {summary(result)}", flush=True)
    save_results(
        "frozen",
        args.n,
        args.rounds,
        runs,
        budget=BUDGET,
        machine=machine(),
        versions=versions(("vastdict", "lmdb", "rocksdict", "keyvi", "marisa_trie")),
    )


if __name__ == "__main__":
    main()
