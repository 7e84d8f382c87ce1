"""Python threads sharing one object while batch calls run with the GIL
released. Each scenario runs in a child process with a timeout, so that a
deadlock fails the test instead of hanging the run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# One thread reads in a loop while the main thread writes large batches:
# each write holds the object's lock with the GIL released, and the reader
# must wait for that lock without holding the GIL.
SCENARIOS = {
    "lsh_index": """
        from vastdict.lsh import LSHIndex
        sigs = rng.integers(0, 2**32, size=(100_000, 128), dtype=np.uint32)
        obj = LSHIndex(0.8, 128, bands=16, rows=8)
        obj.insert_many(np.arange(1000), sigs[:1000])
        def read(i):
            assert i % 1000 in obj.query(sigs[i % 1000]).tolist()
        def write(b):
            lo = 1000 + b * 20_000
            obj.insert_many(np.arange(lo, lo + 20_000), sigs[lo : lo + 20_000])
        def check():
            assert len(obj) == 1000 + 4 * 20_000
        """,
    "int_map": """
        import vastdict
        obj = vastdict.IntMap("uint64")
        obj.put_many(np.arange(1000), np.arange(1000))
        def read(i):
            assert obj.get(i % 1000) == i % 1000
        def write(b):
            keys = np.arange(1000 + b * 500_000, 1000 + (b + 1) * 500_000)
            obj.put_many(keys, keys)
        def check():
            assert len(obj) == 1000 + 4 * 500_000
        """,
    "int_multimap": """
        import vastdict
        obj = vastdict.IntMultiMap("uint64")
        obj.add_many(np.arange(1000), np.arange(1000))
        def read(i):
            assert obj.get(i % 1000).tolist() == [i % 1000]
        def write(b):
            keys = np.arange(1000 + b * 500_000, 1000 + (b + 1) * 500_000)
            obj.add_many(keys, keys)
        def check():
            last = 1000 + 4 * 500_000 - 1
            assert obj.get_many([5, last])[1].tolist() == [5, last]
        """,
}

HARNESS = """
import threading
import numpy as np
rng = np.random.default_rng(1)
{setup}
stop = threading.Event()
errors = []
reads = [0]
def reader():
    try:
        while not stop.is_set():
            read(reads[0])
            reads[0] += 1
    except BaseException as e:
        errors.append(e)
t = threading.Thread(target=reader)
t.start()
for b in range(4):
    write(b)
stop.set()
t.join()
assert not errors, errors
assert reads[0] > 0
check()
print("done")
"""


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_reader_thread_and_batch_writes_share_an_object(name):
    code = HARNESS.format(setup=textwrap.dedent(SCENARIOS[name]))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "done"
