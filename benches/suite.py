"""The benchmark suite in one command: every benchmark at the chosen sizes,
each store in processes of its own beside the installed anchors, then
RESULTS.md and the charts.

    python benches/suite.py                          # 1M and 10M pairs (about an hour here)
    python benches/suite.py --sizes 100000000        # 100M: vastdict alone where anchors
                                                     # would not fit in RAM (hours)
    vastdict bench --n 1000000                       # the same, from the command

For each size N (pairs): the Store benchmark and the frozen-store
benchmark at N, the typed maps at N when N >= 10M, growth at N when
N >= 100M, and MinHash-LSH at N/10 documents (at most 1M). Results already in the
results directory for other sizes stay and are reported too; each table
in RESULTS.md names the command that produced it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from paths import HERE, results_dir

BENCHES = ("store", "frozen", "intmap", "multimap", "growth", "lsh")
STORE_BENCH_STORES = ("vastdict", "lmdb", "rocksdict", "sqlite3", "dict")
# Above this many pairs the anchors' Python lists of keys and values (and
# a dict) no longer fit beside each other in this machine's 24 GiB.
ANCHORS_UP_TO = 20_000_000


def stores_arg(n: int, stores: list[str] | None) -> list[str]:
    """The ``--stores`` option of a store benchmark at ``n`` pairs."""
    if n > ANCHORS_UP_TO:
        return ["--stores", "vastdict"]
    return ["--stores", ",".join(stores)] if stores else []


def commands(n: int, rounds: int, only: set[str], stores: list[str] | None) -> list[list[str]]:
    """The benchmark commands for ``n`` pairs, in the order they run."""
    py = [sys.executable]
    r = ["--rounds", str(rounds)]
    out = []
    if "store" in only:
        mine = [s for s in stores if s in STORE_BENCH_STORES] if stores else None
        out.append([*py, str(HERE / "store_bench.py"), "--n", str(n), *r, *stores_arg(n, mine)])
    if "frozen" in only:
        out.append([*py, str(HERE / "frozen_bench.py"), "--n", str(n), *r, *stores_arg(n, stores)])
    if "intmap" in only and n >= 10_000_000:
        out.append([*py, str(HERE / "intmap_bench.py"), "--n", str(n), *r])
    if "multimap" in only and n >= 10_000_000:
        # Past the anchors' limit only the compact contestants fit.
        kinds = ["--kinds", "vastdict,flat"] if n > ANCHORS_UP_TO else []
        out.append([*py, str(HERE / "multimap_bench.py"), "--n", str(n), *r, *kinds])
    if "growth" in only and n >= 100_000_000:
        out.append([*py, str(HERE / "growth.py"), "--n", str(n)])
    # datasketch needs about 5.4 KB per document: 1M documents is its limit here.
    docs = min(n // 10, 1_000_000)
    if "lsh" in only and docs >= 10_000:
        lsh_rounds = rounds if docs <= 100_000 else 1
        out.append([*py, str(HERE / "lsh_bench.py"), "--n", str(docs), "--rounds", str(lsh_rounds)])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,10000000", help="pairs, comma-separated")
    ap.add_argument("--rounds", type=int, default=3, help="repeats of each measurement")
    ap.add_argument("--only", default=",".join(BENCHES), help="benchmarks to run")
    ap.add_argument("--stores", help="stores for the store and frozen benchmarks")
    ap.add_argument("--results-dir", help="where results go (default benches/results)")
    ap.add_argument("--report", default=str(HERE / "RESULTS.md"), help="RESULTS.md to write")
    ap.add_argument("--charts", default=str(HERE / "charts"), help="directory for the PNGs")
    args = ap.parse_args()
    only = set(args.only.split(","))
    unknown = only - set(BENCHES)
    if unknown:
        ap.error(f"unknown benchmark {', '.join(sorted(unknown))}; choose from {BENCHES}")
    if args.results_dir:
        os.environ["VASTDICT_BENCH_RESULTS"] = str(Path(args.results_dir).resolve())
    stores = args.stores.split(",") if args.stores else None
    started = time.time()
    done: set[tuple[str, ...]] = set()
    for n in (int(s) for s in args.sizes.split(",")):
        for cmd in commands(n, args.rounds, only, stores):
            if tuple(cmd) in done:
                continue
            done.add(tuple(cmd))
            print(f"$ {' '.join(Path(c).name if c.endswith('.py') else c for c in cmd[1:])}")
            sys.stdout.flush()
            # The scripts import each other from benches/.
            subprocess.run(cmd, check=True, cwd=HERE)
    (results_dir() / "suite.json").write_text(
        json.dumps(
            {
                "command": " ".join(["python", "benches/suite.py", *sys.argv[1:]]),
                "finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "minutes": round((time.time() - started) / 60, 1),
            }
        )
    )
    subprocess.run([sys.executable, str(HERE / "report.py"), "--out", args.report], check=True)
    subprocess.run([sys.executable, str(HERE / "charts.py"), "--out-dir", args.charts], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
