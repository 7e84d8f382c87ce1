"""One frozen store read by many processes: forked, spawned, pooled, and
by handles passed between them (pickled by reference)."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import random

import psutil
import pytest

import vastdict

N = 1_000_000


def key(i: int) -> bytes:
    return b"https://example.com/page/%08d" % i


def value(i: int) -> bytes:
    return b"%d" % (i * 31)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A 1M-pair frozen store, every page of it mapped by this process too,
    so a worker's pages of the file count as shared, not as its own."""
    d = tmp_path_factory.mktemp("shared")
    src = d / "pairs.tsv"
    with open(src, "wb") as f:
        for start in range(0, N, 100_000):
            f.write(
                b"".join(key(i) + b"\t" + value(i) + b"\n" for i in range(start, start + 100_000))
            )
    vastdict.build(d / "f.vdf", src, progress=False)
    f = vastdict.open(d / "f.vdf")
    assert f.verify() == N
    # A large batch starts the parallel lookup threads in this process
    # before any fork, as a real parent's earlier work would.
    assert f.get_many([key(i) for i in range(50_000)]) == [value(i) for i in range(50_000)]
    yield f
    f.close()


def read_and_measure(store, seed: int) -> tuple[int, int, int]:
    """Read 200k random keys; return (wrong answers, USS before, USS after)."""
    proc = psutil.Process()
    rng = random.Random(seed)
    idx = [rng.randrange(N) for _ in range(200_000)]
    before = proc.memory_full_info().uss
    wrong = 0
    for start in range(0, len(idx), 10_000):
        chunk = idx[start : start + 10_000]
        got = store.get_many([key(i) for i in chunk])
        wrong += sum(g != value(i) for g, i in zip(got, chunk, strict=True))
        del got
    wrong += sum(store[key(i)] != value(i) for i in idx[:20_000])
    after = proc.memory_full_info().uss
    return wrong, before, after


def check(results):
    assert len(results) == 4
    for wrong, before, after in results:
        assert wrong == 0
        assert after - before < 8 << 20, f"private memory grew by {(after - before) >> 20} MiB"


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_workers_share_one_copy(shared, method):
    with mp.get_context(method).Pool(4) as pool:
        check(pool.starmap(read_and_measure, [(shared, s) for s in range(4)]))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_process_pool_executor(shared, method):
    with cf.ProcessPoolExecutor(4, mp_context=mp.get_context(method)) as ex:
        check(list(ex.map(read_and_measure, [shared] * 4, range(4))))


def test_plain_fork_inherits_the_handle(shared):
    pid = os.fork()
    if pid == 0:  # child: use the parent's handle as is
        code = 0
        try:
            wrong, _, _ = read_and_measure(shared, 9)
            code = 0 if wrong == 0 else 1
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
