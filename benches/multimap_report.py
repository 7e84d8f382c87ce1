"""The integer-multimap sections of RESULTS.md (called by report.py)."""

from __future__ import annotations

from figures import BarTable
from figures import run_median as _med
from figures import span as _span


def bars(all_data: list[dict], scale: list[dict]) -> list[str]:
    table = BarTable("Bars of the typed-maps issue (IntMultiMap)")
    row = table.row

    for data in all_data:
        n = data["n"]
        for per_key, kinds in data["runs"].items():
            v = kinds.get("vastdict")
            if not v:
                continue
            disk = _med(v, lambda r: r["disk_bytes"] / r["n"])
            limit = 6 if per_key != "1" else 10
            row(
                f"{n:,} pairs, {per_key} value(s)/key: frozen on disk at most {limit} B/pair",
                f"{disk:.2f}",
                disk <= limit,
            )
            if n >= 100_000_000:
                get = _med(v, lambda r: r["frozen_get_s"])
                row(
                    f"{n:,} pairs, {per_key} value(s)/key: `get_many` of 1M random keys"
                    " under 0.5 s",
                    f"{get:.3f} s (mutable map: {_med(v, lambda r: r['get_s']):.3f} s)",
                    get < 0.5,
                )
    for s in scale:
        row(
            "an IntMultiMap of 1 billion (uint64, uint32) pairs built and saved on 24 GiB",
            f"{s['pairs']:,} pairs, {s['keys']:,} keys: built in {s['build_s']:.0f} s, saved in"
            f" {s['save_s']:.0f} s, peak RSS {s['peak_rss_bytes'] / 2**30:.1f} GiB,"
            f" file {s['file_bytes'] / 2**30:.1f} GiB ({s['file_bytes_per_pair']:.2f} B/pair)",
            s["pairs"] >= 1_000_000_000,
        )
    return table.lines()


def section(data: dict) -> list[str]:
    lines = [
        f"## IntMultiMap: {data['n']:,} (uint64, uint32) pairs",
        "",
        f"Command: `{data['command']}` ({data['rounds']} rounds, each contestant in a fresh",
        "process; median with min-max). Keys random, values arriving in random order in",
        "batches of 10M. Queries: 1M random existing keys as one uint64 array; results in",
        "CSR form (offsets, values). flat: the seed's layout (keys sorted with their values,",
        "12 B/pair) with `np.searchsorted`. Resident: growth of the process's anonymous",
        "memory while building. vastdict's frozen form: `save()` then `open()`.",
        "",
    ]
    for per_key, kinds in data["runs"].items():
        lines += [
            f"{per_key} value(s) per key:",
            "",
            "| contestant | build, M pairs/s | get_many of 1M keys, s | resident B/pair |"
            " disk B/pair | frozen get_many, s |",
            "|---|---|---|---|---|---|",
        ]
        for kind, runs in kinds.items():
            if not runs:
                continue
            build = [r["n"] / r["build_s"] / 1e6 for r in runs]
            get = [r["get_s"] for r in runs]
            res = _med(runs, lambda r: r["resident_bytes"] / r["n"])
            disk = [r["disk_bytes"] / r["n"] for r in runs if "disk_bytes" in r]
            fget = [r["frozen_get_s"] for r in runs if "frozen_get_s" in r]
            lines.append(
                f"| {kind} | {_span(build, '.1f')} | {_span(get, '.3f')} | {res:.1f} |"
                f" {_span(disk, '.2f')} | {_span(fget, '.3f')} |"
            )
        lines.append("")
    return lines


def scale_section(s: dict) -> list[str]:
    return [
        f"## IntMultiMap at scale: {s['pairs']:,} pairs",
        "",
        f"Command: `{s['command']}` (the engine's example, generated data, one value per key:",
        "the band-table shape of an LSH index over a billion documents).",
        "",
        f"- built (add_many in batches of 10M) in {s['build_s']:.0f} s,"
        f" saved in {s['save_s']:.0f} s; peak RSS {s['peak_rss_bytes'] / 2**30:.1f} GiB",
        f"- file {s['file_bytes'] / 2**30:.2f} GiB, {s['file_bytes_per_pair']:.2f} B/pair;"
        f" opened in {s['open_s'] * 1e3:.1f} ms",
        f"- get_many of 1M random keys on the opened file: {s['get_many_1m_s']:.3f} s",
        "",
    ]
