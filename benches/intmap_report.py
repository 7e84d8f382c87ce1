"""The integer-map sections of RESULTS.md (called by report.py)."""

from __future__ import annotations

from figures import BarTable, rate
from figures import median as _med


def summarize(data: dict) -> dict[str, dict[str, float]]:
    out = {}
    for kind, runs in data["runs"].items():
        if not runs:
            continue
        out[kind] = {
            "build": _med([r["n"] / r["build_s"] for r in runs]),
            "get": _med([r["queries"] / r["get_s"] for r in runs]),
            "resident": _med([r["resident_bytes"] / r["n"] for r in runs]),
            "disk": _med([r["disk_bytes"] / r["n"] for r in runs if "disk_bytes" in r]),
            "frozen_get": _med(
                [r["queries"] / r["frozen_get_s"] for r in runs if "frozen_get_s" in r]
            ),
        }
    return out


def bars(all_data: list[dict]) -> list[str]:
    table = BarTable("Bars of the typed-maps issue (IntMap)")
    row = table.row

    for data in all_data:
        s = summarize(data)
        v = s.get("vastdict")
        if not v:
            continue
        n = f"{data['n']:,}"
        row(
            f"{n} keys: resident bytes per entry while mutable at most 16",
            f"{v['resident']:.1f}",
            v["resident"] <= 16,
        )
        row(
            f"{n} keys: frozen on disk at most 12.5 bytes per entry",
            f"{v['disk']:.2f}",
            0 < v["disk"] <= 12.5,
        )
        row(
            f"{n} keys: `put_many` at least 20M pairs/s",
            f"{v['build'] / 1e6:.1f}M/s",
            v["build"] >= 20e6,
        )
        if "searchsorted" in s:
            ss = s["searchsorted"]["get"]
            row(
                f"{n} keys: `get_many` at least 3x `np.searchsorted`",
                f"{v['get'] / 1e6:.1f}M/s vs {ss / 1e6:.2f}M/s ({v['get'] / ss:.0f}x)",
                v["get"] >= 3 * ss,
            )
        if "dict" in s:
            d = s["dict"]["get"]
            row(
                f"{n} keys: `get_many` at least 10x the dict",
                f"{v['get'] / 1e6:.1f}M/s vs {d / 1e6:.2f}M/s ({v['get'] / d:.0f}x)",
                v["get"] >= 10 * d,
            )
    return table.lines()


def section(data: dict) -> list[str]:
    lines = [
        f"## IntMap: {data['n']:,} random uint64 keys to uint32 values",
        "",
        f"Command: `{data['command']}` ({data['rounds']} rounds, each contestant in a fresh",
        "process; median with min-max). Queries: 1M random existing keys as one uint64 array.",
        "Resident: growth of the process's anonymous memory while building (for",
        "searchsorted, the sorted arrays). vastdict's frozen form: `save()` then `open()`.",
        "",
        "| contestant | build, pairs/s | get of 1M random keys | resident B/entry |"
        " disk B/entry | frozen get |",
        "|---|---|---|---|---|---|",
    ]
    s = summarize(data)
    for kind, runs in data["runs"].items():
        if not runs:
            continue
        sk = s[kind]
        build = [r["n"] / r["build_s"] for r in runs]
        get = [r["queries"] / r["get_s"] for r in runs]
        fget = [r["queries"] / r["frozen_get_s"] for r in runs if "frozen_get_s" in r]
        disk = f"{sk['disk']:.2f}" if sk["disk"] else "-"
        lines.append(
            f"| {kind} | {rate(build, 1)} | {rate(get, 1)} | {sk['resident']:.1f} | {disk} |"
            f" {rate(fget, 1)} |"
        )
    lines += [
        "",
        "pandas builds its hash table on the first `get_indexer` (the warm-up), so its build",
        "figure is only the Index wrapper.",
        "",
    ]
    return lines
