"""Growth: insert N pairs (default 100M) one 10k-pair update() at a time,
timing every call, to show the index grows without stop-the-world pauses.

    python benches/growth.py --n 100000000

Writes benches/results/growth-<n>.json with the max, p99 and p50 of the
update() times, commit times, the final size, and the anonymous memory of
a fresh process that opens the result (see open_rss.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from paths import results_dir

import vastdict

HERE = Path(__file__).resolve().parent


def batch(start: int, n: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"https://www.site%07d.com/item/%010d" % ((i * 7919) % 10**7, i), b"%029d" % (i * 31))
        for i in range(start, start + n)
    ]


def cpu_busy_ticks() -> int:
    with open("/proc/stat") as f:
        vals = list(map(int, f.readline().split()[1:]))
    return sum(vals) - vals[3] - vals[4]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--commit-every", type=int, default=100, help="batches per commit")
    ap.add_argument("--path", default="/tmp/vastdict-growth")
    ap.add_argument("--keep", action="store_true", help="keep the store afterwards")
    args = ap.parse_args()
    shutil.rmtree(args.path, ignore_errors=True)
    s = vastdict.open(args.path, "n")
    times, commits = [], []
    busy0, own0, t0 = cpu_busy_ticks(), os.times(), time.perf_counter()
    for b in range(args.n // args.batch):
        pairs = batch(b * args.batch, args.batch)
        t = time.perf_counter()
        s.update(pairs)
        times.append(time.perf_counter() - t)
        if (b + 1) % args.commit_every == 0:
            t = time.perf_counter()
            s.commit()
            commits.append(time.perf_counter() - t)
        if (b + 1) % 1000 == 0:
            done = (b + 1) * args.batch
            print(f"{done:,} pairs, max update so far {max(times) * 1e3:.1f} ms", flush=True)
    s.commit()
    wall = time.perf_counter() - t0
    own1 = os.times()
    hz = os.sysconf("SC_CLK_TCK")
    own = (own1.user + own1.system) - (own0.user + own0.system)
    other_cpu = max(0.0, (cpu_busy_ticks() - busy0) / hz - own)
    st = s.stats()
    s.close()
    times_sorted = sorted(times)
    out = {
        "n": args.n,
        "batch": args.batch,
        "command": " ".join(["python", "benches/growth.py", *sys.argv[1:]]),
        "updates": len(times),
        "update_max_ms": max(times) * 1e3,
        "update_p99_ms": times_sorted[int(len(times) * 0.99)] * 1e3,
        "update_p50_ms": statistics.median(times) * 1e3,
        "slow_updates_over_100ms": sum(t > 0.1 for t in times),
        # Where slow calls fall relative to commits (0 = the call right after one).
        "slow_updates_after_commit": sorted(
            {i % args.commit_every for i, t in enumerate(times) if t > 0.05}
        ),
        "commit_max_ms": max(commits) * 1e3 if commits else 0,
        "commit_p50_ms": statistics.median(commits) * 1e3 if commits else 0,
        "update_seconds_total": sum(times),
        "wall_seconds": wall,
        "other_processes_cpu_seconds": other_cpu,
        "stats": st,
    }
    probe = subprocess.run(
        [sys.executable, str(HERE / "open_rss.py"), args.path],
        capture_output=True,
        text=True,
        check=True,
    )
    out["open_rss"] = json.loads(probe.stdout)
    dest = results_dir() / f"growth-{args.n}.json"
    dest.write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "stats"}, indent=1))
    if not args.keep:
        shutil.rmtree(args.path, ignore_errors=True)


if __name__ == "__main__":
    main()
