"""IntMultiMap benchmark: vastdict.IntMultiMap beside the seed's flat layout
(keys sorted with their uint32 values, looked up with np.searchsorted) and a
dict of lists.

    python benches/multimap_bench.py --n 10000000 --per-key 16,1 --rounds 3

n (uint64 key, uint32 value) pairs, keys random (as LSH band hashes are),
with about ``per-key`` values per key, arriving in random order in batches of
10M. Each contestant runs in a fresh process per round, so its memory is its
own; figures are medians over rounds. Writes
``benches/results/multimap-<n>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from intmap_bench import timed
from store_bench import child, save_results, status

HERE = Path(__file__).resolve().parent
CONTESTANTS = ["vastdict", "flat", "dict"]
QUERIES = 1_000_000
BATCH = 10_000_000


def data(n: int, per_key: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    distinct = rng.integers(0, 2**64 - 1, size=max(1, n // per_key), dtype=np.uint64)
    spread = rng.integers(0, len(distinct), size=n)
    keys = distinct if per_key == 1 else distinct[spread]
    values = rng.integers(0, 2**32 - 1, size=n, dtype=np.uint32, endpoint=True)
    queries = distinct[rng.integers(0, len(distinct), size=QUERIES)]
    return keys, values, queries


def run_child(kind: str, n: int, per_key: int) -> dict:
    keys, values, queries = data(n, per_key)
    out: dict = {"kind": kind, "n": n, "per_key": per_key, "queries": QUERIES}
    base = status("RssAnon")
    if kind == "vastdict":
        import vastdict

        m = vastdict.IntMultiMap("uint32")

        def build():
            for i in range(0, n, BATCH):
                m.add_many(keys[i : i + BATCH], values[i : i + BATCH])

        out["build_s"], _ = timed(build)
        out["resident_bytes"] = status("RssAnon") - base
        out["get_s"], (_, got) = timed(lambda: m.get_many(queries))
        out["values_returned"] = len(got)
        with tempfile.TemporaryDirectory(dir="/tmp") as d:
            path = os.path.join(d, "m.vmm")
            out["save_s"], out["disk_bytes"] = timed(lambda: m.save(path))
            del m
            out["open_s"], f = timed(lambda: vastdict.IntMultiMap.open(path))
            f.get_many(queries)
            out["frozen_get_s"], _ = timed(lambda: f.get_many(queries))
    elif kind == "flat":

        def build():
            order = np.argsort(keys, kind="stable")
            return keys[order], values[order]

        out["build_s"], (sk, sv) = timed(build)
        out["resident_bytes"] = sk.nbytes + sv.nbytes

        def get():
            lo = np.searchsorted(sk, queries, "left")
            hi = np.searchsorted(sk, queries, "right")
            counts = hi - lo
            offsets = np.zeros(len(queries) + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            idx = np.repeat(lo - offsets[:-1], counts) + np.arange(offsets[-1])
            return offsets, sv[idx]

        out["get_s"], (_, got) = timed(get)
        out["values_returned"] = len(got)
    elif kind == "dict":

        def build():
            d: dict[int, list[int]] = {}
            for k, v in zip(keys.tolist(), values.tolist(), strict=True):
                d.setdefault(k, []).append(v)
            return d

        out["build_s"], d = timed(build)
        out["resident_bytes"] = status("RssAnon") - base - queries.nbytes
        q = queries.tolist()

        def get():
            groups = [d.get(k, []) for k in q]
            offsets = np.zeros(len(q) + 1, dtype=np.int64)
            np.cumsum([len(g) for g in groups], out=offsets[1:])
            return offsets, np.fromiter((v for g in groups for v in g), np.uint32)

        out["get_s"], (_, got) = timed(get)
        out["values_returned"] = len(got)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--per-key", default="16,1")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kinds", default=",".join(CONTESTANTS))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, n, per_key = args.child
        print(json.dumps(run_child(kind, int(n), int(per_key))))
        return
    kinds = args.kinds.split(",")
    runs: dict[str, dict[str, list]] = {}
    for per_key in args.per_key.split(","):
        runs[per_key] = {k: [] for k in kinds}
        for r in range(args.rounds):
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                label = f"{per_key}/key round {r + 1} {kind}"
                result = child(__file__, [kind, str(args.n), per_key], label)
                if result is None:
                    continue
                runs[per_key][kind].append(result)
                print(f"{per_key}/key round {r + 1} {kind}: {summary(result)}", flush=True)
    save_results("multimap", args.n, args.rounds, runs)


def summary(r: dict) -> str:
    n = r["n"]
    parts = [
        f"build {n / r['build_s'] / 1e6:.1f}M pairs/s",
        f"get_many of 1M keys {r['get_s']:.3f}s",
        f"{r['resident_bytes'] / n:.1f} B/pair resident",
    ]
    if "disk_bytes" in r:
        parts.append(f"{r['disk_bytes'] / n:.2f} B/pair on disk")
        parts.append(f"frozen get_many {r['frozen_get_s']:.3f}s")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
