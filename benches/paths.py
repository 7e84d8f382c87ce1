"""Where the benchmarks write their results: ``benches/results`` unless
``VASTDICT_BENCH_RESULTS`` names another directory (``suite.py
--results-dir`` sets it, so a trial run leaves the committed files alone)."""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def results_dir() -> Path:
    path = Path(os.environ.get("VASTDICT_BENCH_RESULTS") or HERE / "results")
    path.mkdir(parents=True, exist_ok=True)
    return path
