"""The vastdict command, run as a subprocess as a user would."""

from __future__ import annotations

import json
import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vastdict", *args], capture_output=True, text=True, timeout=120
    )


def test_build_get_stats_verify(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,name\n" + "".join(f"k{i},v{i}\n" for i in range(1000)))
    out = tmp_path / "f.vdf"
    r = run("build", str(src), str(out), "--keys", "str", "--values", "str", "--header")
    assert r.returncode == 0, r.stderr
    assert "1,000 pairs" in r.stdout
    r = run("get", str(out), "k7", "nope")
    assert r.returncode == 1 and r.stdout == "v7\n" and "nope: not found" in r.stderr
    r = run("stats", str(out), "--json")
    assert json.loads(r.stdout)["entries"] == 1000
    r = run("verify", str(out))
    assert r.returncode == 0 and "1,000 entries" in r.stdout


def test_build_errors_are_one_line(tmp_path):
    src = tmp_path / "bad.tsv"
    src.write_text("a\t1\nb\n")
    r = run("build", str(src), str(tmp_path / "f.vdf"), "--quiet")
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "bad.tsv:2" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("build", str(tmp_path / "missing.tsv"), str(tmp_path / "f.vdf"))
    assert r.returncode == 1 and "missing.tsv" in r.stderr
    r = run("build", str(src))
    assert r.returncode == 2  # usage
