"""IntMap against a dict: every operation and dtype, files, damage, processes."""

from __future__ import annotations

import multiprocessing as mp
import pickle

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import vastdict

DTYPES = ["uint32", "uint64", "int64", "float64"]
KEYS = st.one_of(st.sampled_from([0, 1, 2**64 - 1, 2**63]), st.integers(0, 2**64 - 1))


def values_for(dtype: str):
    if dtype == "float64":
        return st.floats(allow_nan=False, width=64)
    info = np.iinfo(dtype)
    return st.integers(int(info.min), int(info.max))


class IntMapModel(RuleBasedStateMachine):
    """Batches of puts and deletes, single-key calls, save and reopen."""

    def __init__(self):
        super().__init__()
        self.dtype = "uint32"
        self.m = vastdict.IntMap(self.dtype)
        self.model: dict[int, int] = {}
        self.seen: set[int] = {0, 2**64 - 1}

    @rule(pairs=st.lists(st.tuples(KEYS, values_for("uint32")), max_size=60))
    def put_many(self, pairs):
        keys = np.array([k for k, _ in pairs], dtype=np.uint64)
        vals = np.array([v for _, v in pairs], dtype=np.uint32)
        before = len(self.model)
        for k, v in pairs:
            self.model[k] = v
            self.seen.add(k)
        assert self.m.put_many(keys, vals) == len(self.model) - before

    @rule(keys=st.lists(KEYS, max_size=30))
    def delete_many(self, keys):
        n = 0
        for k in keys:
            n += self.model.pop(k, None) is not None
            self.seen.add(k)
        assert self.m.delete_many(np.array(keys, dtype=np.uint64)) == n

    @rule(key=KEYS, value=values_for("uint32"))
    def set_one(self, key, value):
        self.m[key] = value
        self.model[key] = value
        self.seen.add(key)

    @rule(key=KEYS)
    def delete_one(self, key):
        if key in self.model:
            del self.m[key]
            del self.model[key]
        else:
            with pytest.raises(KeyError):
                del self.m[key]

    @rule()
    def save_and_reopen_for_appending(self):
        import tempfile

        path = tempfile.mktemp(suffix=".vim")
        self.m.save(path)
        self.m = vastdict.IntMap.open(path, "a")

    @invariant()
    def agrees(self):
        assert len(self.m) == len(self.model)
        keys = np.array(sorted(self.seen), dtype=np.uint64)
        vals, found = self.m.get_many(keys, default=7, return_found=True)
        for k, v, f in zip(keys.tolist(), vals.tolist(), found.tolist(), strict=True):
            assert f == (k in self.model)
            assert v == self.model.get(k, 7)
        k, v = self.m.items()
        assert dict(zip(k.tolist(), v.tolist(), strict=True)) == self.model


TestIntMapModel = IntMapModel.TestCase
TestIntMapModel.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips(tmp_path, dtype):
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 2**64 - 1, size=50_000, dtype=np.uint64)
    keys[:2] = [0, 2**64 - 1]
    if dtype == "float64":
        vals = rng.standard_normal(len(keys))
    else:
        info = np.iinfo(dtype)
        vals = rng.integers(info.min, info.max, size=len(keys), dtype=dtype, endpoint=True)
    m = vastdict.IntMap(dtype)
    m.put_many(keys, vals)
    want = dict(zip(keys.tolist(), vals.tolist(), strict=True))
    assert len(m) == len(want)
    got = m.get_many(keys)
    assert got.dtype == np.dtype(dtype)
    assert [want[k] for k in keys.tolist()] == got.tolist()
    m.save(tmp_path / "m.vim")
    f = vastdict.IntMap.open(tmp_path / "m.vim")
    assert not f.writable and f.value_dtype == np.dtype(dtype)
    assert f.get_many(keys).tolist() == got.tolist()
    assert f.verify() == len(want)
    k, v = f.items()
    assert dict(zip(k.tolist(), v.tolist(), strict=True)) == want
    st_ = f.stats()
    assert st_["disk_bytes_per_entry"] < 8 + np.dtype(dtype).itemsize + 0.5
    with pytest.raises(vastdict.ReadOnlyError):
        f.put_many([1], [1])


def test_duplicates_in_one_batch_last_wins():
    m = vastdict.IntMap()
    assert m.put_many([5, 5, 6, 5], [1, 2, 3, 4]) == 2
    assert m[5] == 4 and m[6] == 3
    big = np.repeat(np.arange(10_000, dtype=np.uint64), 3)
    vals = np.arange(len(big), dtype=np.uint32)
    m.put_many(big, vals)
    assert m.get_many(np.arange(10_000)).tolist() == vals[2::3].tolist()


def test_empty_arrays_and_scalars():
    m = vastdict.IntMap("float64")
    assert m.put_many([], []) == 0
    assert m.get_many([]).shape == (0,)
    assert m.delete_many(np.array([], dtype=np.uint64)) == 0
    m.put_many([1, 2, 3], 0.5)  # one value for all
    assert m.values().tolist() == [0.5, 0.5, 0.5]


def test_a_list_mixing_numpy_and_python_integers_is_read_as_integers():
    # NumPy promotes [np.uint64(x), 5] to float64, which would lose keys
    # above 2**53; such a list is read element by element instead.
    big = np.uint64(2**60 + 1)
    m = vastdict.IntMap("uint32")
    m.put_many([big, 5], [1, 2])
    assert m.get_many([big, 5, 6]).tolist() == [1, 2, 0]
    assert big in m and m[big] == 1


def test_clear_errors_for_bad_input():
    m = vastdict.IntMap("uint32")
    with pytest.raises(ValueError, match="differ in length"):
        m.put_many([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="negative"):
        m.put_many(np.array([-1], dtype=np.int64), [1])
    with pytest.raises(ValueError, match="uint64"):
        m.put_many([2**64], [1])
    with pytest.raises(ValueError, match="does not fit uint32"):
        m.put_many([1], [2**32])
    with pytest.raises(ValueError, match="does not fit uint32"):
        m.put_many([1], np.array([-1], dtype=np.int64))
    with pytest.raises(TypeError, match="integer array"):
        m.put_many(np.array([1.5]), [1])
    with pytest.raises(TypeError, match="integer array"):
        m.put_many([1], np.array([1.5]))
    with pytest.raises(ValueError, match="must be integers"):
        m.put_many([1.5, 2], [1, 2])  # not truncated to 1
    with pytest.raises(TypeError):
        m["x"]
    with pytest.raises(KeyError):
        m[-1]
    with pytest.raises(ValueError, match="value_dtype"):
        vastdict.IntMap("int8")
    assert "x" not in m and -1 not in m


def test_update_and_iteration():
    a = vastdict.IntMap("int64")
    a.update({1: -1, 2: -2})
    b = vastdict.IntMap("int64")
    b.update(a)
    b.update(([3], [-3]))
    assert sorted(b) == [1, 2, 3]
    assert b.get(3) == -3 and b.get(4, "none") == "none"


def test_reopen_for_appending_keeps_the_file_until_saved(tmp_path):
    m = vastdict.IntMap()
    m.put_many(np.arange(1000), np.arange(1000))
    m.save(tmp_path / "m.vim")
    a = vastdict.IntMap.open(tmp_path / "m.vim", "a")
    a.put_many([5000, 1], [1, 99])
    a.delete_many([2, 3])
    assert len(a) == 999 and a[1] == 99 and 2 not in a
    assert len(vastdict.IntMap.open(tmp_path / "m.vim")) == 1000  # unchanged
    a.save(tmp_path / "m.vim")  # over its own base
    r = vastdict.IntMap.open(tmp_path / "m.vim")
    assert len(r) == 999 and r[5000] == 1 and r[1] == 99 and 3 not in r


def test_damaged_file_raises(tmp_path):
    m = vastdict.IntMap()
    m.put_many(np.arange(2000), np.arange(2000))
    m.save(tmp_path / "m.vim")
    good = (tmp_path / "m.vim").read_bytes()
    rng = np.random.default_rng(4)
    bad = tmp_path / "bad.vim"
    for at in rng.integers(0, len(good), size=300).tolist():
        b = bytearray(good)
        b[at] ^= 0x10
        bad.write_bytes(b)
        try:
            f = vastdict.IntMap.open(bad)
        except (vastdict.CorruptionError, vastdict.FormatError):
            continue
        try:
            vals, found = f.get_many(np.arange(2000), return_found=True)
        except vastdict.CorruptionError:
            continue
        assert found.all() and vals.tolist() == list(range(2000)), f"byte {at}"
    for cut in (0, 50, len(good) // 2, len(good) - 1):
        bad.write_bytes(good[:cut])
        with pytest.raises((vastdict.CorruptionError, vastdict.FormatError)):
            vastdict.IntMap.open(bad)
    # A short file that is not an integer map at all is named as such.
    bad.write_bytes(b"hello")
    with pytest.raises(vastdict.FormatError, match="not a vastdict integer map"):
        vastdict.IntMap.open(bad)


def read_some(m, keys):
    return m.get_many(keys).tolist()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_four_processes_read_a_saved_map(tmp_path, method):
    m = vastdict.IntMap("uint64")
    keys = np.arange(0, 300_000, 3, dtype=np.uint64)
    m.put_many(keys, keys * 2)
    m.save(tmp_path / "m.vim")
    f = vastdict.IntMap.open(tmp_path / "m.vim")
    f.get_many(keys)  # start the lookup threads before forking
    assert len(pickle.dumps(f)) < 300  # by reference
    parts = [keys[i::4] for i in range(4)]
    with mp.get_context(method).Pool(4) as pool:
        results = pool.starmap(read_some, [(f, p) for p in parts])
    for p, r in zip(parts, results, strict=True):
        assert r == (p * 2).tolist()


def test_a_mutable_map_pickles_by_value():
    m = vastdict.IntMap("float64")
    m.put_many([1, 2], [0.5, 1.5])
    c = pickle.loads(pickle.dumps(m))
    assert c.get_many([1, 2]).tolist() == [0.5, 1.5]
