"""Store benchmark: vastdict beside dict, lmdb, rocksdict and sqlite3.

Every store builds from the same generated TSV file and is measured in a
fresh process, so peak RSS and allocator state belong to that store alone.
Rounds interleave the stores; figures are medians over rounds with min and
max. Results go to ``benches/results/store-<n>.json``; ``report.py`` turns
them into RESULTS.md.

    python benches/store_bench.py --n 10000000 --rounds 3

Fastest documented bulk path for each anchor:
  lmdb       sorted input, Cursor.putmulti(append=True), one transaction
  rocksdict  sorted input, SstFileWriter, then ingest_external_file
  sqlite3    sorted input, WAL, one transaction, executemany, WITHOUT ROWID
  dict       dict(zip(keys, values))
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from paths import results_dir

from vastdict import _anchors
from vastdict._anchors import disk_bytes
from vastdict._measure import status_bytes as status

HERE = Path(__file__).resolve().parent
QUERIES = 1_000_000
STORES = ["vastdict", "lmdb", "rocksdict", "sqlite3", "dict"]


# --- data ---------------------------------------------------------------------


def make_data(path: Path, n: int, seed: int = 42) -> None:
    """URL-like keys of 43 bytes and 29-byte values, shuffled."""
    if path.exists():
        return
    rng = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        chunk = []
        for i in rng.sample(range(n), n):
            chunk.append(
                b"https://www.site%07d.com/item/%010d\t%029d\n"
                % (rng.randrange(10**7), i, rng.randrange(10**29))
            )
            if len(chunk) == 100_000:
                f.writelines(chunk)
                chunk.clear()
        f.writelines(chunk)
    tmp.rename(path)


def load(path: Path) -> tuple[list[bytes], list[bytes]]:
    keys, values = [], []
    with open(path, "rb") as f:
        for line in f:
            k, _, v = line.rstrip(b"\n").partition(b"\t")
            keys.append(k)
            values.append(v)
    return keys, values


def load_keys(path: Path) -> list[bytes]:
    """The keys alone (at 100M pairs the values would take 7 GB that the
    page cache needs for the store being measured)."""
    with open(path, "rb") as f:
        return [line.partition(b"\t")[0] for line in f]


def query_keys(keys: list[bytes], seed: int = 7) -> list[bytes]:
    """Random existing keys as fresh objects, as a batch read from input would be."""
    rng = random.Random(seed)
    return [
        bytes(bytearray(keys[rng.randrange(len(keys))])) for _ in range(min(QUERIES, len(keys)))
    ]


def batch_seconds(batch) -> float:
    """Median time of three calls of `batch` after one untimed call. The
    untimed call maps the pages the lookups touch (a fresh process faults
    each one in once), as the single-get loop, timed after it, then finds
    them; the previous result is dropped before each timed call, so
    freeing it is not timed."""
    got = batch()
    assert got[0] is not None
    times = []
    for _ in range(3):
        got = None
        with Phase() as p:
            got = batch()
        times.append(p.seconds)
    return sorted(times)[1]


# --- process-level measurements ----------------------------------------------


def cpu_busy_ticks() -> int:
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    vals = list(map(int, parts))
    return sum(vals) - vals[3] - vals[4]  # minus idle and iowait


def steal_ticks() -> int:
    """CPU time the hypervisor gave to other guests (invisible otherwise)."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    return int(parts[7]) if len(parts) > 7 else 0


def own_ticks() -> int:
    t = os.times()
    return round(
        (t.user + t.system + t.children_user + t.children_system) * os.sysconf("SC_CLK_TCK")
    )


class Phase:
    """Times a phase and the CPU that other processes used meanwhile."""

    def __enter__(self):
        self.busy, self.own, self.t = cpu_busy_ticks(), own_ticks(), time.perf_counter()
        self.steal0 = steal_ticks()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t
        hz = os.sysconf("SC_CLK_TCK")
        other = (cpu_busy_ticks() - self.busy) - (own_ticks() - self.own)
        self.other_cpu = max(0.0, other / hz)
        self.steal = (steal_ticks() - self.steal0) / hz


# --- one store, in its own process ------------------------------------------


def sorted_pairs(keys: list[bytes], values: list[bytes], out: dict) -> list[tuple[bytes, bytes]]:
    """Sort the input as the anchors' fastest bulk paths need; time it into ``out``."""
    with Phase() as sort:
        pairs = sorted(zip(keys, values, strict=True))
    out["sort_s"] = sort.seconds
    return pairs


def run_child(kind: str, data: Path, work: Path) -> dict:
    keys, values = load(data)
    n = len(keys)
    queries = query_keys(keys)
    out: dict = {"store": kind, "n": n}
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    target = work / "store"
    base_anon = status("RssAnon")

    if kind == "dict":
        with Phase() as p:
            d = dict(zip(keys, values, strict=True))
        out["build_s"], out["build_other_cpu"] = p.seconds, p.other_cpu
        get = d.__getitem__
        out["anon_after_build"] = status("RssAnon") - base_anon
    elif kind == "vastdict":
        import vastdict

        with Phase() as p:
            s = vastdict.open(target, "n")
            s.update(zip(keys, values, strict=True))
            s.commit()
        out["build_s"], out["build_other_cpu"] = p.seconds, p.other_cpu
        s.close()
        del keys, values
        before = status("RssAnon")
        s = vastdict.open(target, "r")
        out["anon_open"] = status("RssAnon") - before
        get = s.__getitem__
        out["get_many_s"] = batch_seconds(lambda: s.get_many(queries))
    else:
        pairs = sorted_pairs(keys, values, out)
        del keys, values
        with Phase() as p:
            db = _anchors.bulk_load(kind, pairs, target)
        out["build_s"], out["build_other_cpu"] = p.seconds, p.other_cpu
        del pairs
        get = _anchors.getters(kind, db)[0]
        if kind == "lmdb":
            out["get_many_s"] = batch_seconds(lambda: db.begin().cursor().getmulti(queries))
        elif kind == "rocksdict":
            out["get_many_s"] = batch_seconds(lambda: db[queries])

    for k in queries[:1000]:  # warm-up
        get(k)
    with Phase() as p:
        for k in queries:
            get(k)
    out["get_loop_s"], out["get_other_cpu"] = p.seconds, p.other_cpu
    out["get_steal"] = p.steal
    out["queries"] = len(queries)
    # The whole work directory: sqlite's -wal file sits beside its database.
    out["disk_bytes"] = disk_bytes(work) if kind != "dict" else 0
    out["peak_rss"] = status("VmHWM")
    out["anon_end"] = status("RssAnon")
    return out


# --- orchestration ----------------------------------------------------------


def wait_for_quiet(max_cores: float = 0.25, timeout: float = 120.0) -> float:
    """Wait until other processes use less than ``max_cores`` over one second;
    returns what they used in the last sample."""
    hz = os.sysconf("SC_CLK_TCK")
    start = time.time()
    while True:
        before = cpu_busy_ticks()
        time.sleep(1.0)
        used = (cpu_busy_ticks() - before) / hz
        if used < max_cores or time.time() - start > timeout:
            return used


def available(kind: str, builtin: tuple[str, ...] = ("dict", "sqlite3")) -> bool:
    """Whether a contestant can run here: built in, or its module imports."""
    if kind in builtin:
        return True
    try:
        __import__(kind)
    except ImportError:
        return False
    return True


def versions(modules: tuple[str, ...] = ("vastdict", "lmdb", "rocksdict")) -> dict:
    import platform
    import sqlite3
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "sqlite3": sqlite3.sqlite_version}
    for mod in modules:
        try:
            m = __import__(mod)
        except ImportError:
            continue
        try:
            out[mod] = getattr(m, "__version__", None) or version(mod.replace("_", "-"))
        except PackageNotFoundError:
            out[mod] = "?"
    return out


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
    for r in range(args.rounds):
        for kind in stores if r % 2 == 0 else list(reversed(stores)):
            load1 = wait_for_quiet()
            work = Path(args.work_dir) / kind
            res = subprocess.run(
                [sys.executable, __file__, "--child", kind, str(data), str(work)],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(res.stdout.strip().splitlines()[-1])
            result["other_cores_before"] = load1
            runs[kind].append(result)
            print(f"round {r + 1} {kind}: {summary(result)}", flush=True)
            shutil.rmtree(work, ignore_errors=True)
    save_results("store", args.n, args.rounds, runs, machine=machine(), versions=versions())


def child(script: str, args: list[str], label: str) -> dict | None:
    """Run ``script --child ARGS`` in a fresh process (so its memory is its
    own): the result it prints as its last JSON line, or None after printing
    why it failed."""
    res = subprocess.run(
        [sys.executable, script, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        print(f"{label}: failed\n{res.stderr[-2000:]}", flush=True)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def save_results(stem: str, n: int, rounds: int, runs: dict, **extra: object) -> None:
    """Write ``benches/results/<stem>-<n>.json`` with the command that ran."""
    script = Path(sys.argv[0]).name
    out = {
        "n": n,
        "rounds": rounds,
        **extra,
        "command": " ".join(["python", f"benches/{script}", *sys.argv[1:]]),
        "runs": runs,
    }
    dest = results_dir() / f"{stem}-{n}.json"
    dest.write_text(json.dumps(out, indent=1))
    print(f"wrote {dest}")


def summary(r: dict) -> str:
    n = r["n"]
    parts = [
        f"build {n / r['build_s'] / 1e6:.2f}M/s",
        f"get {r['queries'] / r['get_loop_s'] / 1e6:.2f}M/s",
    ]
    if "get_many_s" in r:
        parts.append(f"batch {r['queries'] / r['get_many_s'] / 1e6:.2f}M/s")
    if r.get("disk_bytes"):
        parts.append(f"disk {r['disk_bytes'] / n:.1f}B/pair")
    parts.append(f"peak {r['peak_rss'] / 2**20:.0f}MiB")
    return ", ".join(parts)


def machine() -> dict:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "mem_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30),
    }


def median_min_max(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


if __name__ == "__main__":
    main()
