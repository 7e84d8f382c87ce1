"""Kill a writer with SIGKILL at random moments; after each kill the store
must hold exactly a prefix of its commits: every batch whose commit returned,
no part of any later batch (except possibly the one being committed, whole)."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import vastdict
from crash_writer import BATCH, LARGE, batch_items, large_items

WRITER = Path(__file__).with_name("crash_writer.py")
KILLS = 24


def check_prefix(path, reported):
    s = vastdict.open(path, "r")
    try:
        last = int(s[b"last"]) if b"last" in s else -1
        # Everything reported committed is there; at most one more batch.
        assert last >= reported, f"batch {reported} was committed but last is {last}"
        assert last <= reported + 1
        expected = {}
        for n in range(last + 1):
            expected.update(batch_items(n))
            if n > 0:
                del expected[b"b%06d-%04d" % (n - 1, 0)]
        expected[b"last"] = b"%d" % last
        assert len(s) == len(expected)
        got = dict(s.items())
        assert got == expected
    finally:
        s.close()
    vastdict.verify(path)
    return last


def kill_repeatedly(path, kills, check, max_wait, *mode):
    """Start the writer, kill it with SIGKILL at a random moment after its
    first commit, check the store, and again ``kills`` times; returns the
    last batch committed."""
    rng = random.Random(int(os.environ.get("VASTDICT_CRASH_SEED", "20261121")))
    reported = -1
    pythonpath = str(WRITER.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")
    env = dict(os.environ, PYTHONPATH=pythonpath)
    for _ in range(kills):
        p = subprocess.Popen(
            [sys.executable, str(WRITER), str(path), *mode],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        # Wait for the first commit of this run, then kill at a random moment.
        line = p.stdout.readline()
        assert line, "writer died before committing"
        time.sleep(rng.uniform(0.0, max_wait))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        lines = [line, *out.split()]
        reported = max(reported, *(int(x) for x in lines if x.strip()))
        reported = check(path, reported)
    return reported


def test_sigkill_at_random_moments_keeps_a_prefix_of_commits(tmp_path):
    reported = kill_repeatedly(tmp_path / "store", KILLS, check_prefix, 0.15)
    assert reported > KILLS  # the writer did make progress across kills
    assert BATCH > 0


def check_large(path, reported):
    """Every key holds the value of one and the same batch, the last one."""
    s = vastdict.open(path, "r")
    try:
        last = int(s[b"last"])
        assert reported <= last <= reported + 1
        assert len(s) == LARGE + 1
        tags = {v[:8] for k, v in s.items() if k != b"last"}
        assert tags == {b"%08d" % last}, f"keys from batches {sorted(tags)} after {last}"
        assert s.get_many([b"k%06d" % j for j in range(0, LARGE, 997)]) == [
            large_items(last)[b"k%06d" % j] for j in range(0, LARGE, 997)
        ]
    finally:
        s.close()
    vastdict.verify(path)
    return last


def test_sigkill_inside_large_blocks_keeps_whole_commits(tmp_path):
    # Commits of about 6 MiB: their blocks are written in pieces while
    # they are encoded, so kills land between pieces, before a block's
    # header is written, and during the automatic compactions that the
    # rewrites set off.
    reported = kill_repeatedly(tmp_path / "store", 12, check_large, 0.4, "large")
    assert reported >= 11  # one commit or more per run
