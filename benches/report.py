"""Write benches/RESULTS.md from the JSON files in benches/results/.

    python benches/report.py

Every figure in RESULTS.md comes from those files, which the benchmark
scripts write; the command that produced each file is printed with it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import frozen_report
import intmap_report
import lsh_report
import multimap_report
from figures import BarTable, median, rate
from paths import results_dir

HERE = Path(__file__).resolve().parent
RAW_BYTES_PER_PAIR = 72  # 43-byte keys + 29-byte values (store_bench.make_data)


def store_section(data: dict) -> tuple[list[str], dict]:
    n = data["n"]
    lines = [
        f"## Store: {n:,} URL-like pairs",
        "",
        f"Command: `{data['command']}` ({data['rounds']} rounds, stores interleaved, each run in",
        "a fresh process; median with min-max over rounds). Page cache warm (each store is",
        "read right after it is built). Queries: 1M random existing keys as fresh objects.",
        "",
        "| store | build, pairs/s | build incl. sorting the input | random get, Python loop |"
        " batch get | disk B/pair | peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    rates: dict[str, dict[str, float]] = {}
    for kind, runs in data["runs"].items():
        if not runs:
            continue
        build = [n / r["build_s"] for r in runs]
        build_sorted = [n / (r["build_s"] + r.get("sort_s", 0.0)) for r in runs]
        get = [r["queries"] / r["get_loop_s"] for r in runs]
        batch = [r["queries"] / r["get_many_s"] for r in runs if "get_many_s" in r]
        disk = statistics.median(r["disk_bytes"] for r in runs) / n
        peak = statistics.median(r["peak_rss"] for r in runs) / 2**20
        rates[kind] = {
            "build": median(build),
            "build_sorted": median(build_sorted),
            "get": median(get),
            "batch": median(batch),
            "disk": disk,
            "anon_open": statistics.median(r.get("anon_open", 0) for r in runs),
        }
        lines.append(
            f"| {kind} | {rate(build)} | "
            + (rate(build_sorted) if "sort_s" in runs[0] else "no sort needed")
            + f" | {rate(get)} | {rate(batch) if batch else '-'} | "
            + (f"{disk:.1f}" if disk else "-")
            + f" | {peak:,.0f} MiB |"
        )
    others = [
        r.get("other_cpu", r.get("build_other_cpu", 0)) for rs in data["runs"].values() for r in rs
    ]
    lines += [
        "",
        f"CPU used by other processes during timed phases: at most {max(others, default=0):.1f} s"
        " per phase. Peak RSS includes the benchmark's own lists of 10M keys and values (about",
        "2 GiB), the same for every store.",
        "",
    ]
    return lines, rates


def bars_section(rates: dict, growth: dict | None) -> list[str]:
    v, lmdb, d = rates.get("vastdict"), rates.get("lmdb"), rates.get("dict")
    if not v:
        return []
    table = BarTable("Bars of the Store issue")
    row = table.row

    if lmdb:
        row(
            "random `s[k]` loop at least lmdb's `txn.get`",
            f"{v['get'] / 1e6:.2f}M/s vs {lmdb['get'] / 1e6:.2f}M/s "
            f"({v['get'] / lmdb['get']:.2f}x)",
            v["get"] >= lmdb["get"],
        )
        row(
            "`update` + `commit` at least 5x lmdb's fastest bulk put (sorted `putmulti`)",
            f"{v['build'] / lmdb['build']:.2f}x the put alone; "
            f"{v['build'] / lmdb['build_sorted']:.2f}x lmdb's put plus the sort it needs",
            v["build"] >= 5 * lmdb["build_sorted"],
        )
    row(
        "`get_many` at least 5x the single-get loop",
        f"{v['batch'] / 1e6:.2f}M/s vs {v['get'] / 1e6:.2f}M/s ({v['batch'] / v['get']:.2f}x)",
        v["batch"] >= 5 * v["get"],
    )
    extra = v["disk"] - RAW_BYTES_PER_PAIR
    row(
        "disk bytes per pair at most raw key + value + 16",
        f"{v['disk']:.1f} = raw {RAW_BYTES_PER_PAIR} + {extra:.1f}",
        extra <= 16,
    )
    if d:
        row(
            "(context) random get loop vs a dict",
            f"{v['get'] / d['get']:.2f}x the dict",
            True,
        )
    if growth:
        anon = growth["open_rss"]["opened"]["RssAnon"] / 2**20
        row(
            f"anonymous RSS after opening the store (fresh process, {growth['n']:,} pairs)",
            f"{anon:.1f} MiB total RssAnon (the store itself: "
            f"{growth['open_rss']['anon_growth_open'] / 2**10:.0f} KiB)",
            anon < 64,
        )
        row(
            f"growth: no `update` of {growth['batch']:,} pairs over 100 ms, "
            f"up to {growth['n']:,} pairs",
            f"max {growth['update_max_ms']:.1f} ms, p99 {growth['update_p99_ms']:.1f} ms, "
            f"p50 {growth['update_p50_ms']:.1f} ms "
            f"({growth['slow_updates_over_100ms']} over 100 ms)",
            growth["update_max_ms"] <= 100,
        )
    return [
        *table.lines(),
        "Notes:",
        "- lmdb's fastest bulk path needs sorted input; the input file is unsorted, so its",
        "  build is shown both as the `putmulti` alone and with the sort it needs (the issue's",
        "  anchor of 0.29M pairs/s matches the latter). vastdict needs no sort. Against the",
        f"  issue's 0.29M pairs/s, vastdict's {v['build'] / 1e6:.2f}M/s is "
        f"{v['build'] / 0.29e6:.1f}x; the bar counts the ratio inside this run.",
        "- `get_many` shares two cores between the calling thread (reading 1M key objects",
        "  and creating 1M value objects, under the GIL) and the lookups, which the pool's",
        "  threads and the calling thread share (`crates/python/src/lookup.rs`).",
        "- sqlite3's disk figure from runs before its `-wal` file was counted (the 10M run",
        "  below) covers the main database file only, so it understates sqlite3.",
        "- The host is shared: the same store moved by up to 40% between rounds of one run",
        "  (min-max in the table below) with no other process in the machine using CPU, so",
        "  ratios inside one run are the figures to trust.",
        "",
    ]


def growth_section(g: dict) -> list[str]:
    st = g["stats"]
    return [
        f"## Growth: {g['n']:,} pairs in {g['batch']:,}-pair `update` calls",
        "",
        f"Command: `{g['command']}`, commit every 100 calls.",
        "",
        f"- `update` calls: {g['updates']:,}; max {g['update_max_ms']:.1f} ms, "
        f"p99 {g['update_p99_ms']:.1f} ms, p50 {g['update_p50_ms']:.1f} ms; "
        f"{g['slow_updates_over_100ms']} took over 100 ms.",
        f"- commits: max {g['commit_max_ms']:.1f} ms, p50 {g['commit_p50_ms']:.1f} ms.",
        f"- total: {g['n'] / g['update_seconds_total'] / 1e6:.2f}M pairs/s in `update`; "
        f"{g['wall_seconds']:.0f} s wall including generating the pairs in Python.",
        f"- store: {st['disk_bytes'] / 2**30:.2f} GiB on disk "
        f"({st['disk_bytes'] / g['n']:.1f} B/pair), {st['partitions']:,} index partitions.",
        f"- a fresh process that opens it: RssAnon "
        f"{g['open_rss']['opened']['RssAnon'] / 2**20:.1f} MiB after open, "
        f"{g['open_rss']['after_gets']['RssAnon'] / 2**20:.1f} MiB after 100k random gets "
        "(which also hold 100k key objects).",
        f"- CPU used by other processes meanwhile: {g['other_processes_cpu_seconds']:.0f} s.",
        "",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args()
    results = results_dir()
    stores = sorted(results.glob("store-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    growths = sorted(results.glob("growth-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    growth = json.loads(growths[-1].read_text()) if growths else None
    out = [
        "# Benchmark results",
        "",
        "Generated by `python benches/report.py` from `benches/results/*.json`; each section",
        "names the command that produced its data. Method: `../shared/BENCHMARKING.md`.",
        "",
    ]
    suite = results / "suite.json"
    if suite.exists():
        run = json.loads(suite.read_text())
        out += [
            "One command regenerates the tables at 1M and 10M pairs, the LSH tables and the",
            f"charts: `{run['command']}` (last run finished {run['finished']},",
            f"{run['minutes']:.0f} minutes). Sections at 100M pairs come from the same suite with",
            "`--sizes 100000000` (hours; vastdict alone where the anchors' Python lists would not",
            "fit in RAM) and the 1B sections from the cargo commands they name.",
            "",
        ]
    frozen = sorted(
        (p for p in results.glob("frozen-*.json") if "scale" not in p.stem),
        key=lambda p: int(p.stem.split("-")[1]),
    )
    frozen_data = [json.loads(p.read_text()) for p in frozen]
    glance = frozen_report.glance(frozen_data) if frozen_data else []
    first = True
    for path in reversed(stores):
        data = json.loads(path.read_text())
        if first:
            m, ver = data["machine"], data["versions"]
            out += [
                f"Machine: {m['nproc']} cores ({m['cpu']}), {m['mem_gib']} GiB RAM. Versions: "
                + ", ".join(f"{k} {v}" for k, v in ver.items())
                + ".",
                "",
                *glance,
            ]
            glance = []
        lines, rates = store_section(data)
        if first:
            out += bars_section(rates, growth)
            first = False
        out += lines
    out += glance  # when no Store results came first
    if growth:
        out += growth_section(growth)
    for data in reversed(frozen_data):
        out += frozen_report.sections(data)
    for path in sorted(results.glob("frozen-scale-*.json")):
        out += frozen_report.scale_section(json.loads(path.read_text()))
    intmaps = sorted(results.glob("intmap-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    loaded = [json.loads(p.read_text()) for p in intmaps]
    out += intmap_report.bars(loaded)
    for data in loaded:
        out += intmap_report.section(data)
    multimaps = sorted(
        (p for p in results.glob("multimap-*.json") if "scale" not in p.stem),
        key=lambda p: int(p.stem.split("-")[1]),
    )
    loaded = [json.loads(p.read_text()) for p in multimaps]
    scale = [json.loads(p.read_text()) for p in sorted(results.glob("multimap-scale-*.json"))]
    out += multimap_report.bars(loaded, scale)
    for data in loaded:
        out += multimap_report.section(data)
    for s in scale:
        out += multimap_report.scale_section(s)
    lsh = sorted(results.glob("lsh-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    lsh = [p for p in lsh if int(p.stem.split("-")[1]) >= 100_000]
    loaded = [json.loads(p.read_text()) for p in lsh]
    out += lsh_report.bars(loaded)
    for data in loaded:
        out += lsh_report.section(data)
    Path(args.out).write_text("\n".join(out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
