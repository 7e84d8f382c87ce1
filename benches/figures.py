"""How the reports summarize repeated measurements: medians, and rates
with the range over rounds."""

from __future__ import annotations

import statistics


def median(values: list[float]) -> float:
    """The median, or 0 when nothing was measured."""
    return statistics.median(values) if values else 0.0


def span(values: list[float], fmt: str) -> str:
    """The median with the min-max range, each in `fmt`, or "-"."""
    if not values:
        return "-"
    return f"{median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def run_median(runs: list[dict], f) -> float:
    """The median of `f(run)` over runs, or 0 when there are none."""
    return median([f(r) for r in runs])


def rate(values: list[float], digits: int = 2) -> str:
    """Median rate in millions per second with the min-max range, or "-"."""
    if not values:
        return "-"
    f = f".{digits}f"
    return f"{median(values) / 1e6:{f}}M/s ({min(values) / 1e6:{f}}-{max(values) / 1e6:{f}})"


class BarTable:
    """A RESULTS.md table of an issue's bars: each bar, what was measured,
    and whether it is met."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: list[str] = []

    def row(self, bar: str, measured: str, ok: bool) -> None:
        self.rows.append(f"| {bar} | {measured} | {'met' if ok else '**not met**'} |")

    def lines(self) -> list[str]:
        """The table under its heading, or nothing when no bar was measured."""
        if not self.rows:
            return []
        return [f"## {self.title}", "", "| bar | measured | |", "|---|---|---|", *self.rows, ""]
