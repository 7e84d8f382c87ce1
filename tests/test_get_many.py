"""Batch lookups (`get_many`) on a Store and a frozen store: large batches
that the lookup threads and the calling thread share, values copied out
small or handed over in place when large, and errors part way through."""

import threading

import pytest

import vastdict

N = 30_000
# Above the size up to which get_many copies values into one buffer
# (4 KiB), so both ways of handing a value back are exercised.
BIG = 5000


def value(i):
    if i % 997 == 0:
        return bytes([i % 251]) * (BIG + i % 7)
    if i % 101 == 0:
        return b""
    return b"v%d" % (i * 3)


DATA = {b"key-%06d" % i: value(i) for i in range(N)}
# Present and missing keys interleaved, many times the lookup chunk.
QUERIES = [b"key-%06d" % i for i in range(0, 2 * N, 1)] * 2


@pytest.fixture(params=["store", "frozen"])
def opened(request, tmp_path):
    path = tmp_path / "s"
    with vastdict.open(path, "n") as s:
        s.update(DATA)
    if request.param == "frozen":
        with vastdict.open(path, "r") as s:
            s.freeze(tmp_path / "f.vdf", progress=False)
        path = tmp_path / "f.vdf"
    s = vastdict.open(path, "r")
    yield s
    s.close()


def test_a_large_batch_matches_a_dict(opened):
    got = opened.get_many(QUERIES)
    assert len(got) == len(QUERIES)
    assert got == [DATA.get(k) for k in QUERIES]


def test_a_generator_and_a_small_batch_match_a_dict(opened):
    assert opened.get_many(k for k in QUERIES[:50_000]) == [DATA.get(k) for k in QUERIES[:50_000]]
    few = [b"key-000000", b"nope", b"key-000997"]
    assert opened.get_many(few) == [DATA.get(k) for k in few]


def test_a_bad_key_part_way_raises_and_the_store_still_answers(opened):
    def keys():
        yield from QUERIES[:45_000]
        yield "not bytes"
        yield from QUERIES[:10]

    with pytest.raises(TypeError, match="key must be bytes"):
        opened.get_many(keys())
    assert opened.get_many(QUERIES[:20_000]) == [DATA.get(k) for k in QUERIES[:20_000]]


def test_threads_calling_get_many_at_once_each_get_their_own_values(opened):
    results, errors = {}, []

    def run(t):
        try:
            keys = QUERIES[t * 1000 :] + QUERIES[: t * 1000]
            results[t] = opened.get_many(keys) == [DATA.get(k) for k in keys]
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == {0: True, 1: True, 2: True, 3: True}
