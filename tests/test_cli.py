"""The vastdict command, run as a subprocess as a user would."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time


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


def test_get_with_a_key_of_the_wrong_kind_is_one_line(tmp_path):
    store = str(tmp_path / "ints.vd")
    assert run("put", store, "7", "seven", "--keys", "int").returncode == 0
    assert run("get", store, "7").stdout == "seven\n"
    r = run("get", store, "seven")
    assert r.returncode == 1 and "not an integer" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


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


def test_put_delete_compact_export(tmp_path):
    import pyarrow.parquet as pq

    store = str(tmp_path / "s.vd")
    for i in range(50):
        assert run("put", store, f"k{i}", f"v{i}").returncode == 0
    assert run("put", store, "k3", "new").returncode == 0
    r = run("get", store, "k3")
    assert r.stdout == "new\n"
    r = run("delete", store, "k1", "k2", "nope")
    assert r.returncode == 1 and "nope: not found" in r.stderr
    assert run("get", store, "k1").returncode == 1
    r = run("compact", store)
    assert r.returncode == 0 and "48 entries" in r.stdout
    want = {f"k{i}": f"v{i}" for i in range(50) if i not in (1, 2)} | {"k3": "new"}
    r = run("export", store, str(tmp_path / "out.jsonl"))
    assert r.returncode == 0 and "48 pairs" in r.stdout
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert {x["key"]: x["value"] for x in rows} == want
    assert run("export", store, str(tmp_path / "out.tsv")).returncode == 0
    lines = (tmp_path / "out.tsv").read_text().splitlines()
    assert dict(line.split("\t") for line in lines) == want
    assert run("export", store, str(tmp_path / "out.parquet")).returncode == 0
    t = pq.read_table(tmp_path / "out.parquet").to_pydict()
    assert dict(zip(t["key"], t["value"], strict=True)) == want


def test_put_and_export_errors(tmp_path):
    store = str(tmp_path / "n.vd")
    assert run("put", store, "1", "x", "--keys", "int").returncode == 0
    r = run("put", store, "one", "x")
    assert r.returncode == 1 and "not an integer" in r.stderr and "Traceback" not in r.stderr
    r = run("export", store, str(tmp_path / "out.csv"))
    assert r.returncode == 1 and ".jsonl" in r.stderr
    r = run("put", store, "2", "a\tb")
    assert r.returncode == 0
    r = run("export", store, str(tmp_path / "out.tsv"))
    assert r.returncode == 1 and "tab or newline" in r.stderr
    assert not (tmp_path / "out.tsv").exists()
    r = run("delete", str(tmp_path / "missing.vd"), "k")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert run("put", store).returncode == 2


def test_demo_runs_as_the_readme_says():
    r = run("demo", "--n", "200000")
    assert r.returncode == 0, r.stderr
    table = {line.split()[0]: line.split() for line in r.stdout.splitlines() if line}
    assert "get/s, 4 procs" in r.stdout and "private MiB per proc" in r.stdout
    assert set(table) >= {"vastdict", "dict"} and "sqlite3" not in table
    assert table["vastdict"][-3] != "-" and table["dict"][-3] == "-"  # get_many
    assert r.stdout.strip().splitlines()[-1].startswith("verdict: 200,000 pairs")
    r = run("demo", "--n", "lots")
    assert r.returncode == 2


def test_demo_with_anchors_adds_a_row_for_each_installed_store():
    from vastdict import _anchors

    r = run("demo", "--n", "20000", "--with-anchors", "--quiet")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0] for line in r.stdout.splitlines() if line}
    want = {a for a in _anchors.ANCHORS if _anchors.installed(a)}
    assert want >= {"dict", "sqlite3", "dbm"}  # the standard library's are always there
    assert rows >= want | {"vastdict"}
    r = run("demo", "--n", "lots")
    assert r.returncode == 2


def test_bench_writes_a_report_and_charts(tmp_path):
    r = run(
        "bench",
        "--n",
        "20000",
        "--rounds",
        "1",
        "--only",
        "frozen",
        "--stores",
        "vastdict,dict",
        "--results-dir",
        str(tmp_path / "results"),
        "--report",
        str(tmp_path / "RESULTS.md"),
        "--charts",
        str(tmp_path / "charts"),
    )
    assert r.returncode == 0, r.stderr
    report = (tmp_path / "RESULTS.md").read_text()
    assert "## At a glance" in report and "| 20,000 | vastdict |" in report
    assert "| 20,000 | dict |" in report and "`python benches/suite.py --sizes 20000" in report
    for chart in ("memory-per-pair.png", "throughput.png"):
        assert (tmp_path / "charts" / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_outside_a_source_tree_says_where_the_suite_is(tmp_path):
    r = run("bench", "--benches", str(tmp_path))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "clone of the repository" in r.stderr and r.stderr.count("\n") == 1
    assert run("bench", "--n", "many").returncode == 2


def test_ctrl_c_stops_a_build_with_one_line_and_leaves_nothing(tmp_path, big_tsv):
    src = big_tsv(40)
    out = str(tmp_path / "out.vdf")
    p = subprocess.Popen(
        [sys.executable, "-m", "vastdict", "build", str(src), out, "--memory-budget", "8MiB"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Interrupt once the build has written something (its temporary files).
    deadline = time.monotonic() + 30
    while len(list(tmp_path.iterdir())) == 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert p.poll() is None, "the build ended before it could be interrupted"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1, err
    assert err == "vastdict: interrupted\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["big.tsv"]


def test_a_corrupt_store_is_one_line_naming_the_damage(tmp_path):
    out = tmp_path / "f.vdf"
    src = tmp_path / "in.tsv"
    src.write_text("".join(f"k{i}\tv{i}\n" for i in range(5000)))
    assert run("build", str(src), str(out), "--quiet").returncode == 0
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    for args in (("verify", str(out)), ("export", str(out), str(tmp_path / "o.jsonl"))):
        r = run(*args)
        assert r.returncode == 1, args
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert "f.vdf: corrupt at byte" in r.stderr
    assert not (tmp_path / "o.jsonl").exists()
    r = run("--debug", "verify", str(out))
    assert "Traceback" in r.stderr and "CorruptionError" in r.stderr


def test_a_missing_store_says_so(tmp_path):
    for cmd in ("get", "stats", "verify", "delete", "compact", "export"):
        extra = {"get": ["k"], "delete": ["k"], "export": [str(tmp_path / "o.tsv")]}
        r = run(cmd, str(tmp_path / "nope.vd"), *extra.get(cmd, []))
        assert r.returncode == 1, (cmd, r.stderr)
        assert "nope.vd" in r.stderr and "Traceback" not in r.stderr, cmd
