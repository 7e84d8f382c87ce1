"""A frozen store of a billion generated pairs, built through vastdict.build().

    python benches/frozen_scale.py --n 1000000000 --budget 4GiB

Keys are 16 bytes (hex of a scrambled counter), values 8 bytes. The pairs
come from a Python generator, so the build time includes making them in
Python. Records the build time, the process's peak RSS, the file size, and
random-get rates measured in a fresh process. Writes
``benches/results/frozen-scale-<n>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MULT = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1


def key(i: int) -> bytes:
    return b"%016x" % ((i * MULT) & MASK)


def pairs(n: int):
    for i in range(n):
        yield key(i), i.to_bytes(8, "little")


def status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def read_child(path: str, n: int) -> dict:
    import vastdict

    rng = random.Random(5)
    idx = [rng.randrange(n) for _ in range(1_000_000)]
    queries = [key(i) for i in idx]
    t = time.perf_counter()
    f = vastdict.open(path)
    opened = time.perf_counter() - t
    t = time.perf_counter()
    for q in queries[:200_000]:
        f[q]
    loop = time.perf_counter() - t
    t = time.perf_counter()
    got = f.get_many(queries)
    batch = time.perf_counter() - t
    assert got[7] == idx[7].to_bytes(8, "little")
    return {
        "open_s": opened,
        "get_loop_per_s": 200_000 / loop,
        "get_many_per_s": len(queries) / batch,
        "rss_anon": status("RssAnon"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--budget", default="4GiB")
    ap.add_argument("--path", default="/tmp/vastdict-scale.vdf")
    ap.add_argument("--read", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.read:
        print(json.dumps(read_child(args.read[0], int(args.read[1]))))
        return
    import vastdict

    t = time.perf_counter()
    summary = vastdict.build(args.path, pairs(args.n), memory_budget=args.budget)
    build_s = time.perf_counter() - t
    peak = status("VmHWM")
    size = os.path.getsize(args.path)
    res = subprocess.run(
        [sys.executable, __file__, "--read", args.path, str(args.n)],
        capture_output=True,
        text=True,
        check=True,
    )
    out = {
        "n": args.n,
        "budget": args.budget,
        "command": " ".join(["python", "benches/frozen_scale.py", *sys.argv[1:]]),
        "build_s": build_s,
        "build_peak_rss": peak,
        "file_bytes": size,
        "summary": summary,
        "read": json.loads(res.stdout.strip().splitlines()[-1]),
        "mem_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30),
    }
    dest = HERE / "results" / f"frozen-scale-{args.n}.json"
    dest.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    os.unlink(args.path)


if __name__ == "__main__":
    main()
