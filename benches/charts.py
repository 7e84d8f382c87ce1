"""Draw the README's charts from the frozen-store results at every size.

    python benches/charts.py

Reads ``frozen-<n>.json`` from the results directory (see paths.py) and
writes two PNGs into ``benches/charts/`` (or ``--out-dir``): memory per
pair and random-read throughput against the number of pairs, both axes
logarithmic. Needs matplotlib (``pip install ".[bench]"``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from figures import median
from paths import HERE, results_dir

# One colour per store, the same in every chart.
COLOURS = {
    "vastdict": "#d62728",
    "dict": "#1f77b4",
    "lmdb": "#2ca02c",
    "rocksdict": "#9467bd",
    "sqlite3": "#8c564b",
    "keyvi": "#e377c2",
    "marisa_trie": "#7f7f7f",
    "dbm": "#bcbd22",
}


def load_frozen(results: Path) -> dict[int, dict]:
    """Results by number of pairs (the 1B scale run is a different shape)."""
    out = {}
    for path in results.glob("frozen-*.json"):
        if "scale" not in path.stem:
            data = json.loads(path.read_text())
            out[data["n"]] = data
    return dict(sorted(out.items()))


def series(by_size: dict[int, dict], f) -> dict[str, tuple[list[int], list[float]]]:
    """For each store, the sizes it ran at and the median of ``f(run)``
    there (``f`` returning None skips the run)."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for n, data in by_size.items():
        for store, runs in data["runs"].items():
            values = [v for v in (f(r) for r in runs) if v]
            if values:
                xs, ys = out.setdefault(store, ([], []))
                xs.append(n)
                ys.append(median(values))
    return out


def memory_per_pair(run: dict) -> float | None:
    """A file's bytes on disk per pair; a dict's heap per pair."""
    if run["store"] == "dict":
        return run["anon_held"] / run["n"] if "anon_held" in run else None
    return run["disk_bytes"] / run["n"]


def draw(ax, data: dict[str, tuple[list[int], list[float]]], ylabel: str, title: str) -> None:
    for store, (xs, ys) in data.items():
        style = "-o" if store in ("vastdict", "dict") else "--o"
        ax.plot(xs, ys, style, label=store, color=COLOURS.get(store), linewidth=2, markersize=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pairs (43-byte URL keys, 29-byte values)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=str(HERE / "charts"))
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_size = load_frozen(results_dir())
    if not by_size:
        raise SystemExit("no frozen-<n>.json results to draw; run benches/frozen_bench.py first")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sizes = ", ".join(f"{n:,}" for n in by_size)

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    draw(
        ax,
        series(by_size, memory_per_pair),
        "bytes per pair (file on disk; dict: heap)",
        "Memory per pair (raw data: 72 B)",
    )
    ax.axhline(72, color="black", linewidth=1, linestyle=":")
    fig.tight_layout()
    fig.savefig(out / "memory-per-pair.png")
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110)
    draw(
        axes[0],
        series(by_size, lambda r: r["queries"] / r["get_loop_s"]),
        "random gets per second",
        "One process, Python loop",
    )
    draw(
        axes[1],
        series(by_size, lambda r: r.get("scale_4_rate")),
        "random gets per second, all processes",
        "Four processes reading one copy",
    )
    fig.tight_layout()
    fig.savefig(out / "throughput.png")
    plt.close(fig)
    print(f"wrote {out / 'memory-per-pair.png'} and {out / 'throughput.png'} ({sizes} pairs)")


if __name__ == "__main__":
    main()
