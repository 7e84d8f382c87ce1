"""The frozen-store sections of RESULTS.md (called by report.py)."""

from __future__ import annotations

from figures import BarTable
from figures import median as _med
from figures import rate as _rate

RAW_BYTES_PER_PAIR = 72
PERSISTENT = ("lmdb", "rocksdict", "keyvi", "marisa_trie", "sqlite3", "dbm")


def scaling(run: dict, procs: int) -> float:
    """How many times one process's read rate ``procs`` processes reach
    together (0 when not measured). Older files timed two processes only."""
    if f"scale_{procs}_rate" in run:
        return run[f"scale_{procs}_rate"] / run["scale_1_rate"]
    if procs == 2 and "scale_2_s" in run:
        return 2 * run["scale_1_s"] / run["scale_2_s"]
    return 0.0


def summarize(data: dict) -> dict[str, dict[str, float]]:
    out = {}
    for kind, runs in data["runs"].items():
        if not runs:
            continue
        n = runs[0]["n"]
        out[kind] = {
            "build": _med([n / r["build_s"] for r in runs]),
            "get": _med([r["queries"] / r["get_loop_s"] for r in runs]),
            "miss": _med([r["queries"] / r["miss_loop_s"] for r in runs]),
            "batch": _med([r["queries"] / r["get_many_s"] for r in runs if "get_many_s" in r]),
            "scale": _med([scaling(r, 2) for r in runs if scaling(r, 2)]),
            "scale4": _med([scaling(r, 4) for r in runs if scaling(r, 4)]),
            "rate4": _med([r["scale_4_rate"] for r in runs if "scale_4_rate" in r]),
            "private4": _med([r["scale_4_private"] for r in runs if "scale_4_private" in r]),
            "disk": _med([r["disk_bytes"] / n for r in runs]),
            "peak": _med([r["build_peak_rss"] for r in runs]),
        }
    return out


def glance(by_size: list[dict]) -> list[str]:
    """The opening table of RESULTS.md: every store at each size, with the
    charts drawn from the same files."""
    lines = [
        "## At a glance: read-only stores beside the anchors",
        "",
        "![memory per pair](charts/memory-per-pair.png)",
        "![throughput](charts/throughput.png)",
        "",
        "Medians over rounds; each store built from the same TSV file and read in processes",
        "of its own (details and min-max ranges in the frozen-store sections below). Memory",
        "per pair: the file on disk, or a dict's heap. Private after build: the anonymous",
        "memory the building process still holds with the store open; for a dict its table and",
        "objects, for the Python-fed anchors mostly what the allocator kept of the input lists",
        "they were built from (vastdict parses the file in the engine).",
        "Readers: 4 processes reading one copy, with the private memory each added.",
        "",
        "| pairs | store | build, pairs/s | memory per pair | private after build |"
        " random get, 1 process | 4 processes | private per reader |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for data in by_size:
        s = summarize(data)
        for kind, runs in data["runs"].items():
            if not runs:
                continue
            sk = s[kind]
            held = _med([r["anon_held"] for r in runs if "anon_held" in r])
            if kind == "dict":
                memory = f"{held / data['n']:.0f} B heap" if held else "-"
            else:
                memory = f"{sk['disk']:.1f} B on disk"
            private_held = f"{held / 2**20:,.1f} MiB" if held else "-"
            four = f"{sk['rate4'] / 1e6:.2f}M/s" if sk["rate4"] else "-"
            private = f"{sk['private4'] / 2**20:,.1f} MiB" if sk["rate4"] else "-"
            lines.append(
                f"| {data['n']:,} | {kind} | {sk['build'] / 1e6:.2f}M/s | {memory} |"
                f" {private_held} | {sk['get'] / 1e6:.2f}M/s | {four} | {private} |"
            )
    return [*lines, ""]


def sections(data: dict) -> list[str]:
    n = data["n"]
    s = summarize(data)
    v, d = s.get("vastdict"), s.get("dict")
    lines: list[str] = []
    # The bars are stated for its 10M-pair dataset.
    if v and n == 10_000_000:
        table = BarTable("Bars of the frozen-store issue")
        row = table.row

        anchors = {k: s[k]["build"] for k in PERSISTENT if k in s}
        if anchors:
            best = max(anchors, key=anchors.get)
            row(
                "build at least 10x the fastest persistent anchor's bulk build",
                f"{v['build'] / 1e6:.2f}M/s vs {best} {anchors[best] / 1e6:.2f}M/s "
                f"({v['build'] / anchors[best]:.1f}x)",
                v["build"] >= 10 * anchors[best],
            )
        if d:
            row(
                "build at least 2x building a `dict` from the same file",
                f"{v['build'] / 1e6:.2f}M/s vs {d['build'] / 1e6:.2f}M/s "
                f"({v['build'] / d['build']:.2f}x)",
                v["build"] >= 2 * d["build"],
            )
        budget = data["budget"]
        row(
            f"peak RSS of the build within `memory_budget` ({budget})",
            f"{v['peak'] / 2**20:,.0f} MiB (whole process)",
            v["peak"] <= 2 * 2**30,
        )
        extra = v["disk"] - RAW_BYTES_PER_PAIR
        row(
            "disk at most raw bytes + 8 per pair",
            f"{v['disk']:.1f} = raw {RAW_BYTES_PER_PAIR} + {extra:.1f}",
            extra <= 8,
        )
        if d:
            row(
                "random `[]` from a Python loop at least as fast as `dict`",
                f"{v['get'] / 1e6:.2f}M/s vs {d['get'] / 1e6:.2f}M/s ({v['get'] / d['get']:.2f}x)",
                v["get"] >= d["get"],
            )
        row(
            "`get_many` at least 10M keys/s (page cache warm)",
            f"{v['batch'] / 1e6:.2f}M/s",
            v["batch"] >= 10e6,
        )
        row(
            "misses at least as fast as hits",
            f"{v['miss'] / 1e6:.2f}M/s vs {v['get'] / 1e6:.2f}M/s",
            v["miss"] >= v["get"],
        )
        row(
            "two processes reading give at least 1.8x one",
            f"{v['scale']:.2f}x" + (f" (dict, forked: {d['scale']:.2f}x)" if d else ""),
            v["scale"] >= 1.8,
        )
        lines += table.lines()
        lines += [
            "Notes:",
            "- Builds read a TSV file in place instead of copying its pairs, and write the file",
            "  around the page cache (`O_DIRECT`); one that fits in half of RAM is loaded back",
            "  into the cache behind the writes, on both cores (`crates/core/src/cache_fill.rs`),",
            "  so it is cached in huge folios when the build returns and a fresh process reads",
            "  it at full speed from its first get. On this VM a page the guest has not touched",
            "  lately costs a fault on the host too (free pages go back to it), and new pages",
            '  were most of a build\'s time; see "Fresh memory is the cost of a build" in',
            "  `docs/ARCHITECTURE.md`. Earlier full runs: writing through the page cache,",
            "  3.54M/s (1.97x the dict, rounds 3.33-5.39M/s, `get_many` 9.33M keys/s); before",
            "  reading in place, 2.34M/s (1.43x the dict).",
            "- A run that wrote the file around the cache without loading it back gave 6.95M/s",
            "  (4.19x the dict), but only moved the fresh pages to the file's first reader (0.1M",
            "  gets/s over its first 200k gets, against 1.0-1.4M/s from a cached file).",
            "- `get_many` makes one Python `bytes` per key on the calling thread while the",
            "  lookups run on both cores (`crates/python/src/lookup.rs`); its rounds here gave "
            + ", ".join(
                f"{r['queries'] / r['get_many_s'] / 1e6:.2f}"
                for r in data["runs"]["vastdict"]
                if "get_many_s" in r
            )
            + "M keys/s.",
            "",
        ]
    lines += [
        f"## Frozen stores: {n:,} URL-like pairs, built from one TSV file",
        "",
        f"Command: `{data['command']}` ({data['rounds']} rounds in shuffled order, each store",
        "built and read in a fresh process; median with min-max). Build: from the TSV file (the",
        "harness now reads it once before each build, so every store builds from the page cache;",
        "the 100k, 1M and 100M runs predate that step and read it as the previous child left",
        "it) to",
        "a finished store (anchors read and split the file in Python and sort it where their",
        "bulk path needs sorted input; vastdict parses it in the engine, memory budget",
        f"{data['budget']}). Queries: 1M random existing keys as fresh objects; misses: the",
        "same keys with their last byte changed. 2 and 4 procs: forked after the build, each",
        "opening the store itself (a dict is inherited through the fork) and running the same",
        "300k-get loop; their combined rate against one process alone, and the private memory",
        "(Private_Dirty) each added while reading. After its build each store's files are read",
        "once, so every store is read with its pages in the page cache (files of runs before",
        "this step was added were read right after being written, which left them cached too",
        "at these sizes).",
        "",
        "| store | build, pairs/s | build peak RSS | random get loop | misses loop |"
        " batch get | 2 procs | 4 procs | private per reader | disk B/pair |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, runs in data["runs"].items():
        if not runs:
            continue
        sk = s[kind]
        build = [r["n"] / r["build_s"] for r in runs]
        get = [r["queries"] / r["get_loop_s"] for r in runs]
        miss = [r["queries"] / r["miss_loop_s"] for r in runs]
        batch = [r["queries"] / r["get_many_s"] for r in runs if "get_many_s" in r]
        scale = f"{sk['scale']:.2f}x" if sk["scale"] else "-"
        scale4 = f"{sk['scale4']:.2f}x" if sk["scale4"] else "-"
        private = f"{sk['private4'] / 2**20:,.1f} MiB" if sk["scale4"] else "-"
        disk = f"{sk['disk']:.1f}" if sk["disk"] else "-"
        lines.append(
            f"| {kind} | {_rate(build)} | {sk['peak'] / 2**20:,.0f} MiB | {_rate(get)} | "
            f"{_rate(miss)} | {_rate(batch)} | {scale} | {scale4} | {private} | {disk} |"
        )
    lines += [
        "",
        "Peak RSS of a build is the whole process's, and for the anchors includes the",
        "Python lists they are built from.",
        "",
    ]
    return lines


def scale_section(data: dict) -> list[str]:
    n = data["n"]
    gib = data["file_bytes"] / 2**30
    return [
        f"## Frozen store at scale: {n:,} generated pairs",
        "",
        f"Command: `{data['command']}` (16-byte keys, 8-byte values, built through",
        f"the engine's Builder with a {data['budget_mib']:,} MiB memory budget; pairs generated",
        "in Rust, so no Python object per pair). Machine: 2 cores, 24 GiB RAM.",
        "",
        f"- build: {data['build_s']:,.0f} s ({n / data['build_s'] / 1e6:.2f}M pairs/s),"
        f" peak RSS {data['peak_rss'] / 2**30:.2f} GiB",
        f"- file: {gib:.1f} GiB ({data['file_bytes'] / n:.1f} bytes per pair for 24 raw)",
        f"- random gets right after the build, one thread: "
        f"{data['get_per_s_single_thread']:,.0f}/s one at a time,"
        f" {data['get_many_per_s_single_thread']:,.0f}/s in a batch. The build writes a file"
        " this large (over half of RAM) around the page cache (`O_DIRECT`), so these reads all"
        " go to the disk; in the"
        " run before it wrote that way (2026-11-22: 381 s, same peak RSS), part of the file"
        " was still cached after the build and the same gets ran at 13,834/s and 16,205/s.",
        "",
    ]
