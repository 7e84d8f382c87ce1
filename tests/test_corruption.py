"""Damaged files: flipped bytes and truncations at many offsets must give a
CorruptionError or correct data, never a crash, a hang or wrong values that
verify() would not flag. Each check runs in a subprocess, so a crash fails
the test instead of killing pytest."""

import json
import shutil
import subprocess
import sys
import textwrap

import vastdict

N = 2000

CHECK = textwrap.dedent(
    """
    import json, sys, vastdict
    path, expected_n = sys.argv[1], int(sys.argv[2])
    expected = {b"key%05d" % i: b"value-%d" % i * (1 + i % 5) for i in range(expected_n)}
    try:
        s = vastdict.open(path, "r")
        got = {k: s.get(k) for k in expected}
        wrong = sum(got[k] != v for k, v in expected.items())
        items_ok = dict(s.items()) == expected
        s.close()
    except vastdict.CorruptionError:
        print(json.dumps("corruption")); sys.exit(0)
    try:
        vastdict.verify(path)
        verified = True
    except vastdict.CorruptionError:
        verified = False
    print(json.dumps({"wrong": wrong, "items_ok": items_ok, "verified": verified}))
    """
)


def make_store(path):
    with vastdict.open(path, "n") as s:
        s.update((b"key%05d" % i, b"value-%d" % i * (1 + i % 5)) for i in range(N))
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name not in ("LOCK", "GEN"))


def run_check(path):
    r = subprocess.run(
        [sys.executable, "-c", CHECK, str(path), str(N)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, f"checker crashed ({r.returncode}): {r.stderr[-2000:]}"
    return json.loads(r.stdout)


def assert_detected_or_correct(outcome, what):
    if outcome == "corruption":
        return
    if outcome["wrong"] == 0 and outcome["items_ok"]:
        return
    # Wrong answers are only acceptable where verify() flags the damage
    # (index damage is found by verify, not by each read).
    assert not outcome["verified"], f"{what}: wrong data and verify() passed: {outcome}"


def offsets(size, count):
    step = max(1, size // count)
    return sorted({*range(0, min(size, 64)), *range(0, size, step), size - 1})


def test_flipped_bytes_are_detected(tmp_path):
    base = tmp_path / "base"
    files = make_store(base)
    work = tmp_path / "work"
    tried = 0
    for f in files:
        rel = f.relative_to(base)
        data = f.read_bytes()
        for off in offsets(len(data), 12):
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(base, work)
            damaged = bytearray(data)
            damaged[off] ^= 0x5A
            (work / rel).write_bytes(bytes(damaged))
            assert_detected_or_correct(run_check(work), f"{rel} byte {off}")
            tried += 1
    assert tried > 100


def test_truncated_files_are_detected(tmp_path):
    base = tmp_path / "base"
    files = make_store(base)
    work = tmp_path / "work"
    for f in files:
        rel = f.relative_to(base)
        size = f.stat().st_size
        for cut in sorted({0, 1, size // 3, size // 2, size - 1}):
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(base, work)
            with open(work / rel, "r+b") as fh:
                fh.truncate(cut)
            outcome = run_check(work)
            assert outcome == "corruption" or (outcome["wrong"] == 0 and outcome["items_ok"]), (
                f"{rel} cut at {cut}: {outcome}"
            )


def test_verify_names_the_damaged_file(tmp_path):
    base = tmp_path / "base"
    files = make_store(base)
    seg = next(f for f in files if f.suffix == ".log")
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 1
    seg.write_bytes(bytes(data))
    try:
        vastdict.verify(base)
    except vastdict.CorruptionError as e:
        assert e.path and e.path.endswith(seg.name)
        assert isinstance(e.offset, int)
    else:
        raise AssertionError("verify() missed a flipped bit in the log")
