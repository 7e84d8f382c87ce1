"""MinHash-LSH benchmark: vastdict.lsh beside datasketch and rensa on the
generated near-duplicate corpus (vastdict.lsh_corpus).

    python benches/lsh_bench.py --n 100000 --rounds 3

Each (contestant, bands) pair runs in a fresh process per round, so index
memory is its own: the growth of anonymous memory while inserting every
document, signatures already made. Timed: text to signatures (shingling
included), inserting all documents, 10,000 single queries from Python
(p50/p99), one batch query of every document, and pair precision/recall at
threshold 0.8 with each library's usual estimate check. vastdict also runs
its exact check and `vastdict dedup` on the JSONL file end to end. Writes
``benches/results/lsh-<n>.json``; figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

# NumPy's BLAS threads spin while idle, taking a core from whichever
# contestant runs; nothing here multiplies matrices.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from paths import results_dir
from store_bench import child, machine, save_results, status

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("VASTDICT_BENCH_DATA", "/tmp/vastdict-bench"))
CONTESTANTS = ["vastdict", "rensa", "datasketch"]
NUM_PERM = 128
THRESHOLD = 0.8
QUERIES = 10_000


def corpus_files(n: int) -> tuple[Path, Path]:
    """The corpus as JSONL and its positive pairs, made once and cached."""
    from vastdict import lsh_corpus

    DATA.mkdir(parents=True, exist_ok=True)
    text, pos = DATA / f"lsh-corpus-{n}.jsonl", DATA / f"lsh-positives-{n}.npy"
    if not (text.exists() and pos.exists()):
        print(f"generating {n:,} documents ...", flush=True)
        c = lsh_corpus.generate(n, seed=1)
        lsh_corpus.write_jsonl(c, str(text))
        pairs = np.array(sorted(c.positives(THRESHOLD)), dtype=np.int64).reshape(-1, 2)
        np.save(pos, pairs)
    return text, pos


def load_texts(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def shingles(text: str) -> list[str]:
    # The usual Python shingling the other libraries are fed with.
    w = text.lower().split()
    return [" ".join(w[i : i + 5]) for i in range(max(1, len(w) - 4))]


def bands_of(config: str) -> tuple[int, int]:
    if config == "16x8":
        return 16, 8
    from vastdict.lsh import optimal_params

    return optimal_params(THRESHOLD, NUM_PERM)


def quality(pairs: set[tuple[int, int]], positives: np.ndarray) -> dict:
    truth = set(map(tuple, positives.tolist()))
    hit = len(pairs & truth)
    return {
        "precision": hit / len(pairs) if pairs else 1.0,
        "recall": hit / len(truth) if truth else 1.0,
        "pairs": len(pairs),
    }


def checked_pairs(found: list, mhs: list) -> set[tuple[int, int]]:
    """(earlier, later) pairs among each document's candidates whose
    MinHash estimate reaches the threshold: datasketch's and rensa's usual
    check."""
    return {
        (j, i)
        for i, cands in enumerate(found)
        for j in cands
        if j < i and mhs[i].jaccard(mhs[j]) >= THRESHOLD
    }


def baseline() -> int:
    """Anonymous memory now, after handing freed heap back to the OS (the
    texts and signatures made before stay), so that the growth measured
    next is the index's own."""
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return status("RssAnon")


def latencies(query, items) -> tuple[float, float]:
    ns = []
    for it in items:
        t = time.perf_counter_ns()
        query(it)
        ns.append(time.perf_counter_ns() - t)
    return float(np.percentile(ns, 50)) / 1e3, float(np.percentile(ns, 99)) / 1e3


def run_child(kind: str, n: int, config: str, text_path: str, pos_path: str) -> dict:
    texts = load_texts(Path(text_path))
    positives = np.load(pos_path)
    bands, rows = bands_of(config)
    out: dict = {"kind": kind, "n": n, "config": config, "bands": bands, "rows": rows}
    sample = random.Random(3).sample(range(n), min(QUERIES, n))
    if kind == "vastdict":
        from vastdict.lsh import LSHIndex, MinHasher, near_duplicate_pairs

        h = MinHasher(NUM_PERM, 5)
        h.signatures(texts[:1000])  # starts the thread pool
        t = time.perf_counter()
        sigs = h.signatures(texts)
        out["sign_s"] = time.perf_counter() - t
        base = baseline()
        index = LSHIndex(THRESHOLD, NUM_PERM, bands=bands, rows=rows, keep_signatures=False)
        t = time.perf_counter()
        index.insert_many(np.arange(n), sigs)
        index.compact()
        out["insert_s"] = time.perf_counter() - t
        out["index_bytes"] = status("RssAnon") - base
        out["table_bytes"] = index.stats()["table_bytes"]
        out["query_p50_us"], out["query_p99_us"] = latencies(index.query, [sigs[i] for i in sample])
        t = time.perf_counter()
        index.query_many(sigs)
        out["query_many_s"] = time.perf_counter() - t
        index.close()
        checked = LSHIndex(THRESHOLD, NUM_PERM, bands=bands, rows=rows)
        checked.insert_many(np.arange(n), sigs)
        offsets, ids = checked.query_many(sigs)
        left = np.repeat(np.arange(n), np.diff(offsets))
        pairs = {(int(b), int(a)) for a, b in zip(left, ids, strict=True) if b < a}
        out["estimate"] = quality(pairs, positives)
        t = time.perf_counter()
        a, b = near_duplicate_pairs(texts, THRESHOLD, verify="exact")
        out["exact_s"] = time.perf_counter() - t
        out["exact"] = quality(set(zip(a.tolist(), b.tolist(), strict=True)), positives)
    elif kind == "rensa":
        from rensa import RMinHash, RMinHashLSH

        t = time.perf_counter()
        mhs = []
        for text in texts:
            m = RMinHash(num_perm=NUM_PERM, seed=1)
            m.update(shingles(text))
            mhs.append(m)
        out["sign_s"] = time.perf_counter() - t
        # rensa needs num_perm to be a multiple of the bands.
        rb = bands if NUM_PERM % bands == 0 else 8
        out["bands"], out["rows"] = rb, NUM_PERM // rb
        base = baseline()
        lsh = RMinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, num_bands=rb)
        t = time.perf_counter()
        lsh.insert_many(mhs, 0)
        out["insert_s"] = time.perf_counter() - t
        out["index_bytes"] = status("RssAnon") - base
        out["query_p50_us"], out["query_p99_us"] = latencies(lsh.query, [mhs[i] for i in sample])
        t = time.perf_counter()
        found = lsh.query_all(mhs)
        out["query_many_s"] = time.perf_counter() - t
        out["estimate"] = quality(checked_pairs(found, mhs), positives)
    elif kind == "datasketch":
        from datasketch import LeanMinHash, MinHash, MinHashLSH

        t = time.perf_counter()
        mhs = []
        for text in texts:
            m = MinHash(num_perm=NUM_PERM, seed=1)
            m.update_batch([s.encode() for s in shingles(text)])
            mhs.append(LeanMinHash(m))
        out["sign_s"] = time.perf_counter() - t
        base = baseline()
        lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, params=(bands, rows))
        t = time.perf_counter()
        with lsh.insertion_session() as session:
            for i, m in enumerate(mhs):
                session.insert(i, m, check_duplication=False)
        out["insert_s"] = time.perf_counter() - t
        out["index_bytes"] = status("RssAnon") - base
        out["query_p50_us"], out["query_p99_us"] = latencies(lsh.query, [mhs[i] for i in sample])
        t = time.perf_counter()
        found = [lsh.query(m) for m in mhs]
        out["query_many_s"] = time.perf_counter() - t
        out["estimate"] = quality(checked_pairs(found, mhs), positives)
    out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def run_cli(n: int, text_path: Path) -> dict:
    """`vastdict dedup` on the JSONL file in a fresh process, which reports
    its own peak RSS (the command's `main`, run as the console script
    runs it)."""
    dest = DATA / f"lsh-dedup-{n}.jsonl"
    code = (
        "import json, resource, sys\n"
        "from vastdict.cli import main\n"
        f"rc = main(['dedup', {str(text_path)!r}, '-o', {str(dest)!r}, '--quiet'])\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'rc': rc, 'peak': peak}))\n"
    )
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t
    report = json.loads(res.stdout.strip().splitlines()[-1])
    if report["rc"] != 0:
        raise RuntimeError(f"vastdict dedup failed: {res.stderr}")
    with open(dest, encoding="utf-8") as f:
        keep = sum(1 for line in f if line.endswith('"keep": true}\n'))
    return {
        "seconds": seconds,
        "peak_rss": report["peak"] * 1024,
        "input_bytes": text_path.stat().st_size,
        "kept": keep,
    }


def summary(r: dict) -> str:
    n = r["n"]
    parts = [
        f"sign {n / r['sign_s']:,.0f} docs/s",
        f"index {r['index_bytes'] / n:,.0f} B/doc",
        f"insert {n / r['insert_s']:,.0f}/s",
        f"query p50/p99 {r['query_p50_us']:.1f}/{r['query_p99_us']:.1f} us",
        f"batch {n / r['query_many_s']:,.0f}/s",
        f"estimate P/R {r['estimate']['precision']:.3f}/{r['estimate']['recall']:.3f}",
    ]
    if "exact" in r:
        parts.append(f"exact P/R {r['exact']['precision']:.3f}/{r['exact']['recall']:.3f}")
    return ", ".join(parts)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for m in ("vastdict", "datasketch", "rensa", "numpy"):
        with contextlib.suppress(PackageNotFoundError):
            out[m] = version(m)
    return out


def kept_notes(previous: dict, kept: list[str]) -> list[str]:
    """Where kept runs came from, with the signing rates of the others in
    that run: speed compares only within one run on a shared host."""
    notes = []
    for kind in kept:
        others = []
        for config, kinds in previous["runs"].items():
            for other, runs in kinds.items():
                if other not in kept and runs:
                    rate = statistics.median(r["n"] / r["sign_s"] for r in runs)
                    others.append(f"{other} {rate:,.0f} docs/s at {config}")
        notes.append(
            f"{kind}: runs kept from an earlier run on this corpus"
            f" (`{previous['command']}`); compare its speed with that run's figures,"
            f" in which signing ran at: {', '.join(others)}"
        )
    return notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kinds", default=",".join(CONTESTANTS))
    ap.add_argument("--configs", default="16x8,threshold")
    ap.add_argument("--cli-rounds", type=int, default=None, help="default: --rounds")
    ap.add_argument(
        "--only-cli",
        action="store_true",
        help="rerun only the `vastdict dedup` rounds, updating the results file",
    )
    ap.add_argument(
        "--keep",
        default="",
        help="contestants whose runs are copied from the existing results file instead of"
        " rerun (datasketch takes about 20 minutes a round at 1M documents); the file"
        " records where they came from",
    )
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, n, config, text, pos = args.child
        print(json.dumps(run_child(kind, int(n), config, text, pos)))
        return
    text, pos = corpus_files(args.n)
    cli_rounds = args.rounds if args.cli_rounds is None else args.cli_rounds
    if args.only_cli:
        dest = results_dir() / f"lsh-{args.n}.json"
        data = json.loads(dest.read_text())
        data["cli"] = [run_cli(args.n, text) for _ in range(cli_rounds)]
        data["cli_command"] = " ".join(["python", "benches/lsh_bench.py", *sys.argv[1:]])
        dest.write_text(json.dumps(data, indent=1))
        print(f"dedup: {[round(c['seconds'], 1) for c in data['cli']]} s, updated {dest}")
        return
    kept = [k for k in args.keep.split(",") if k]
    previous = json.loads((results_dir() / f"lsh-{args.n}.json").read_text()) if kept else {}
    kinds = [k for k in args.kinds.split(",") if k not in kept]
    runs: dict[str, dict[str, list]] = {}
    for config in args.configs.split(","):
        runs[config] = {k: [] for k in kinds}
        for r in range(args.rounds):
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                label = f"{config} round {r + 1} {kind}"
                result = child(__file__, [kind, str(args.n), config, str(text), str(pos)], label)
                if result is None:
                    continue
                runs[config][kind].append(result)
                print(f"{label}: {summary(result)}", flush=True)
        for kind in kept:
            runs[config][kind] = previous["runs"][config][kind]
    cli = []
    for r in range(cli_rounds):
        cli.append(run_cli(args.n, text))
        print(f"dedup round {r + 1}: {cli[-1]['seconds']:.1f} s", flush=True)
    notes = kept_notes(previous, kept)
    save_results(
        "lsh",
        args.n,
        args.rounds,
        runs,
        cli=cli,
        machine=machine(),
        versions=versions(),
        kept=kept,
        notes=notes,
    )


if __name__ == "__main__":
    main()
