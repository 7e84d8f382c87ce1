"""IntMap benchmark: vastdict.IntMap beside a dict, a sorted NumPy array with
np.searchsorted, and pandas.Index.get_indexer (if installed).

    python benches/intmap_bench.py --n 10000000 --rounds 3

uint64 keys (random, as hash -> id tables have) to uint32 values. Each
contestant runs in a fresh process per round, so its memory is its own;
figures are medians over rounds. Writes ``benches/results/intmap-<n>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from store_bench import available, child, save_results, status

HERE = Path(__file__).resolve().parent
CONTESTANTS = ["vastdict", "dict", "searchsorted", "pandas"]
# Contestants that need no optional package.
BUILTIN = ("vastdict", "dict", "searchsorted")
QUERIES = 1_000_000


def data(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    keys = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    values = rng.integers(0, 2**32 - 1, size=n, dtype=np.uint32, endpoint=True)
    queries = keys[rng.integers(0, n, size=QUERIES)]
    return keys, values, queries


def timed(f):
    t = time.perf_counter()
    r = f()
    return time.perf_counter() - t, r


def run_child(kind: str, n: int) -> dict:
    keys, values, queries = data(n)
    out: dict = {"kind": kind, "n": n, "queries": QUERIES}
    base = status("RssAnon")
    if kind == "vastdict":
        import vastdict

        m = vastdict.IntMap("uint32")
        out["build_s"], _ = timed(lambda: m.put_many(keys, values))
        out["resident_bytes"] = status("RssAnon") - base
        out["reported_bytes"] = m.stats()["resident_bytes"]
        m.get_many(queries[:10_000])
        out["get_s"], got = timed(lambda: m.get_many(queries))
        assert got[0] == values[np.flatnonzero(keys == queries[0])[-1]]
        with tempfile.TemporaryDirectory(dir="/tmp") as d:
            path = os.path.join(d, "m.vim")
            out["save_s"], size = timed(lambda: m.save(path))
            out["disk_bytes"] = size
            f = vastdict.IntMap.open(path)
            f.get_many(queries)
            out["frozen_get_s"], _ = timed(lambda: f.get_many(queries))
    elif kind == "dict":
        kl, vl = keys.tolist(), values.tolist()
        out["build_s"], d = timed(lambda: dict(zip(kl, vl, strict=True)))
        del kl, vl
        out["resident_bytes"] = status("RssAnon") - base - queries.nbytes
        q = queries.tolist()
        out["get_s"], _ = timed(lambda: np.fromiter((d[k] for k in q), np.uint32, len(q)))
    elif kind == "searchsorted":

        def build():
            order = np.argsort(keys, kind="stable")
            return keys[order], values[order]

        out["build_s"], (sk, sv) = timed(build)
        out["resident_bytes"] = sk.nbytes + sv.nbytes

        def get():
            i = np.searchsorted(sk, queries)
            i[i == len(sk)] = 0
            found = sk[i] == queries
            return np.where(found, sv[i], 0)

        out["get_s"], _ = timed(get)
    elif kind == "pandas":
        import pandas as pd

        out["build_s"], idx = timed(lambda: pd.Index(keys))
        idx.get_indexer(queries[:1000])
        out["resident_bytes"] = status("RssAnon") - base

        def get():
            i = idx.get_indexer(queries)
            return values[i]

        out["get_s"], _ = timed(get)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kinds", default=",".join(CONTESTANTS))
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child[0], int(args.child[1]))))
        return
    kinds = [k for k in args.kinds.split(",") if available(k, BUILTIN)]
    runs: dict[str, list] = {k: [] for k in kinds}
    for r in range(args.rounds):
        for kind in kinds if r % 2 == 0 else kinds[::-1]:
            result = child(__file__, [kind, str(args.n)], f"round {r + 1} {kind}")
            if result is None:
                continue
            runs[kind].append(result)
            print(f"round {r + 1} {kind}: {summary(result)}", flush=True)
    save_results("intmap", args.n, args.rounds, runs)


def summary(r: dict) -> str:
    n = r["n"]
    parts = [
        f"build {n / r['build_s'] / 1e6:.1f}M/s",
        f"get {r['queries'] / r['get_s'] / 1e6:.1f}M/s",
        f"{r['resident_bytes'] / n:.1f} B/entry resident",
    ]
    if "disk_bytes" in r:
        parts.append(f"{r['disk_bytes'] / n:.2f} B/entry on disk")
        parts.append(f"frozen get {r['queries'] / r['frozen_get_s'] / 1e6:.1f}M/s")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
