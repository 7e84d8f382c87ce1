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
import time
from pathlib import Path

from store_bench import (
    Phase,
    available,
    child,
    disk_bytes,
    load,
    machine,
    make_data,
    query_keys,
    save_results,
    status,
    versions,
    wait_for_quiet,
)

HERE = Path(__file__).resolve().parent
STORES = ["vastdict", "dict", "lmdb", "rocksdict", "keyvi", "marisa_trie", "sqlite3"]
BUDGET = "2GiB"


def miss_keys(queries: list[bytes]) -> list[bytes]:
    """Keys shaped like the stored ones that are not stored."""
    return [q[:-1] + b"x" for q in queries]


def build(kind: str, data: Path, target: Path, out: dict):
    """Build one store from the TSV file; returns a get function and the
    store object (kept alive)."""
    if kind == "vastdict":
        import vastdict

        with Phase() as p:
            vastdict.build(target, data, memory_budget=BUDGET, progress=False)
        out["build_s"], out["build_other_cpu"] = p.seconds, p.other_cpu
        out["build_peak_rss"] = status("VmHWM")
        before = status("RssAnon")
        s = vastdict.open(target)
        out["anon_open"] = status("RssAnon") - before
        return s.__getitem__, s.get, s
    with Phase() as p:
        keys, values = load(data)
        if kind == "dict":
            d = dict(zip(keys, values, strict=True))
            del keys, values
            obj = d
        elif kind == "lmdb":
            import lmdb

            pairs = sorted(zip(keys, values, strict=True))
            del keys, values
            env = lmdb.open(str(target), map_size=1 << 40, writemap=True, sync=True)
            with env.begin(write=True) as txn:
                txn.cursor().putmulti(pairs, append=True)
            env.sync(True)
            del pairs
            obj = env
        elif kind == "rocksdict":
            import rocksdict

            pairs = sorted(zip(keys, values, strict=True))
            del keys, values
            opts = rocksdict.Options(raw_mode=True)
            w = rocksdict.SstFileWriter(options=opts)
            sst = str(target) + ".sst"
            w.open(sst)
            for k, v in pairs:
                w[k] = v
            w.finish()
            del pairs
            db = rocksdict.Rdict(str(target), options=opts)
            db.ingest_external_file([sst])
            db.flush()
            os.unlink(sst)
            obj = db
        elif kind == "marisa_trie":
            import marisa_trie

            trie = marisa_trie.BytesTrie(zip([k.decode() for k in keys], values, strict=True))
            del keys, values
            trie.save(str(target))
            obj = marisa_trie.BytesTrie().mmap(str(target))
        elif kind == "keyvi":
            from keyvi.compiler import StringDictionaryCompiler

            c = StringDictionaryCompiler({"memory_limit_mb": "2048"})
            for k, v in zip(keys, values, strict=True):
                c.Add(k.decode(), v.decode())
            del keys, values
            c.Compile()
            c.WriteToFile(str(target))
            from keyvi.dictionary import Dictionary

            obj = Dictionary(str(target))
        elif kind == "sqlite3":
            import sqlite3

            pairs = sorted(zip(keys, values, strict=True))
            del keys, values
            db = sqlite3.connect(target, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")
            db.execute("BEGIN")
            db.executemany("INSERT INTO kv VALUES (?, ?)", pairs)
            db.execute("COMMIT")
            del pairs
            obj = db
        else:
            raise SystemExit(f"unknown store {kind}")
    out["build_s"], out["build_other_cpu"] = p.seconds, p.other_cpu
    out["build_peak_rss"] = status("VmHWM")
    return (*getters(kind, obj), obj)


def getters(kind: str, obj):
    """(get raising on a miss, get returning None on a miss)."""
    if kind == "dict":
        return obj.__getitem__, obj.get
    if kind == "lmdb":
        txn = obj.begin()
        return txn.get, txn.get
    if kind == "rocksdict":
        return obj.__getitem__, obj.get
    if kind == "marisa_trie":

        def get(k, _g=obj.__getitem__):
            return _g(k.decode())[0]

        def get_or_none(k, _g=obj.get):
            v = _g(k.decode())
            return v[0] if v else None

        return get, get_or_none
    if kind == "keyvi":

        def get(k, _g=obj.get):
            return _g(k.decode()).GetValueAsString()

        def get_or_none(k, _g=obj.get):
            m = _g(k.decode())
            return m.GetValueAsString() if m is not None else None

        return get, get_or_none
    stmt = "SELECT v FROM kv WHERE k = ?"

    def sql_get(k, _ex=obj.execute):
        return _ex(stmt, (k,)).fetchone()[0]

    def sql_get_or_none(k, _ex=obj.execute):
        row = _ex(stmt, (k,)).fetchone()
        return row[0] if row else None

    return sql_get, sql_get_or_none


def loop(get, keys) -> float:
    with Phase() as p:
        for k in keys:
            get(k)
    return p.seconds


def parallel_loop(get, keys, procs: int) -> float:
    """Wall time for ``procs`` forked processes each running the loop."""
    r, w = os.pipe()
    pids = []
    for _ in range(procs):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            for k in keys:
                get(k)
            os._exit(0)
        pids.append(pid)
    os.close(w)
    start = time.perf_counter()
    for pid in pids:
        os.waitpid(pid, 0)
    os.close(r)
    return time.perf_counter() - start


def run_child(kind: str, data: Path, work: Path) -> dict:
    out: dict = {"store": kind}
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    get, get_or_none, obj = build(kind, data, work / "store", out)
    keys, _ = load(data)
    out["n"] = len(keys)
    queries = query_keys(keys)
    misses = miss_keys(queries)
    del keys
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
            with Phase() as p:
                got = obj.get_many(queries)
            times.append(p.seconds)
        out["get_many_s"] = sorted(times)[1]
        assert got[0] is not None
    if kind in ("vastdict", "dict"):
        part = queries[:300_000]
        out["scale_1_s"] = parallel_loop(get, part, 1)
        out["scale_2_s"] = parallel_loop(get, part, 2)
        out["scale_queries"] = len(part)
    out["disk_bytes"] = disk_bytes(work) if kind != "dict" else 0
    out["peak_rss"] = status("VmHWM")
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
    if "scale_2_s" in r:
        parts.append(f"2-proc {2 * r['scale_1_s'] / r['scale_2_s']:.2f}x")
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
    stores = [s for s in args.stores.split(",") if available(s)]
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
