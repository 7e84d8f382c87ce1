"""IntMultiMap against a dict of lists: every operation and dtype, files,
damage, processes."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import tempfile

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
    return st.one_of(st.integers(0, 3), st.integers(int(info.min), int(info.max)))


def model_machine(dtype: str, unique: bool):
    class Machine(RuleBasedStateMachine):
        """Batches of additions and removals, single keys, save and reopen."""

        def __init__(self):
            super().__init__()
            self.m = vastdict.IntMultiMap(dtype, unique=unique)
            self.model: dict[int, list] = {}
            self.seen: set[int] = {0, 2**64 - 1}

        def _add(self, pairs):
            n = 0
            for k, v in pairs:
                group = self.model.setdefault(k, [])
                if not unique or v not in group:
                    group.append(v)
                    n += 1
                self.seen.add(k)
            return n

        @rule(pairs=st.lists(st.tuples(st.one_of(KEYS, st.integers(0, 5)), values_for(dtype))))
        def add_many(self, pairs):
            keys = np.array([k for k, _ in pairs], dtype=np.uint64)
            vals = np.array([v for _, v in pairs], dtype=dtype)
            assert self.m.add_many(keys, vals) == self._add(pairs)

        @rule(key=KEYS, value=values_for(dtype))
        def add_one(self, key, value):
            assert self.m.add(key, value) == self._add([(key, value)])

        @rule(keys=st.lists(st.one_of(KEYS, st.integers(0, 5)), max_size=20))
        def remove_many(self, keys):
            n = sum(self.model.pop(k, None) is not None for k in set(keys))
            self.seen.update(keys)
            assert self.m.remove_many(np.array(keys, dtype=np.uint64)) == n

        @rule(key=KEYS)
        def delete_one(self, key):
            if key in self.model:
                del self.m[key]
                del self.model[key]
            else:
                with pytest.raises(KeyError):
                    del self.m[key]

        @rule()
        def compact(self):
            self.m.compact()

        @rule(mode=st.sampled_from(["a", "r"]))
        def save_and_reopen(self, mode):
            path = tempfile.mktemp(suffix=".vmm")
            self.m.save(path)
            self.m = vastdict.IntMultiMap.open(path, mode)
            assert self.m.unique == unique
            if mode == "r":
                with pytest.raises(vastdict.ReadOnlyError):
                    self.m.add_many([1], [1])
                self.m = vastdict.IntMultiMap.open(path, "a")

        @invariant()
        def agrees(self):
            assert len(self.m) == len(self.model)
            assert self.m.num_values == sum(map(len, self.model.values()))
            keys = np.array(sorted(self.seen), dtype=np.uint64)
            offsets, values = self.m.get_many(keys)
            counts = self.m.count_many(keys)
            assert offsets[0] == 0 and len(offsets) == len(keys) + 1
            for i, k in enumerate(keys.tolist()):
                want = self.model.get(k, [])
                assert values[offsets[i] : offsets[i + 1]].tolist() == want
                assert counts[i] == len(want)
                assert (k in self.m) == bool(want)
            k, o, v = self.m.items()
            got = {kk: v[o[i] : o[i + 1]].tolist() for i, kk in enumerate(k.tolist())}
            assert got == self.model

    return Machine


SETTINGS = settings(
    max_examples=20,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestListsUint32 = model_machine("uint32", False).TestCase
TestListsUint32.settings = SETTINGS
TestSetsUint32 = model_machine("uint32", True).TestCase
TestSetsUint32.settings = SETTINGS
TestListsUint64 = model_machine("uint64", False).TestCase
TestListsUint64.settings = SETTINGS
TestListsInt64 = model_machine("int64", False).TestCase
TestListsInt64.settings = SETTINGS
TestSetsFloat64 = model_machine("float64", True).TestCase
TestSetsFloat64.settings = SETTINGS


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_a_large_map(tmp_path, dtype):
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 50_000, size=400_000, dtype=np.uint64)
    vals = rng.integers(0, 1000, size=400_000).astype(dtype)
    m = vastdict.IntMultiMap(dtype)
    assert m.add_many(keys, vals) == len(keys)
    order = np.argsort(keys, kind="stable")
    want_keys, starts = np.unique(keys[order], return_index=True)
    probe = np.concatenate([want_keys, np.array([10**12], dtype=np.uint64)])
    m.save(tmp_path / "m.vmm")
    for mm in (m, vastdict.IntMultiMap.open(tmp_path / "m.vmm")):
        offsets, values = mm.get_many(probe)
        assert np.array_equal(np.diff(offsets)[:-1], np.diff(np.append(starts, len(keys))))
        assert np.array_equal(values, vals[order])  # groups in insertion order
        assert mm.count_many([10**12]).tolist() == [0]
    st_ = vastdict.IntMultiMap.open(tmp_path / "m.vmm").stats()
    assert st_["values"] == len(keys) and st_["keys"] == len(want_keys)
    assert st_["disk_bytes_per_pair"] < 4 + dict(uint32=4, uint64=8, int64=8, float64=8)[dtype]


def test_clear_errors_for_bad_input():
    m = vastdict.IntMultiMap()
    with pytest.raises(ValueError, match="differ in length"):
        m.add_many([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="negative"):
        m.add_many([-1], [1])
    with pytest.raises(ValueError, match="does not fit uint32"):
        m.add_many([1], [2**32])
    with pytest.raises(TypeError, match="integer array"):
        m.add_many(["a"], [1])
    with pytest.raises(TypeError, match="integers"):
        m.get("a")
    with pytest.raises(ValueError, match="value_dtype"):
        vastdict.IntMultiMap("int8")
    with pytest.raises(ValueError, match="mode"):
        vastdict.IntMultiMap.open("x", "w")
    assert m.add_many([], []) == 0
    assert m.get_many([])[0].tolist() == [0]
    assert m.get(2**64 - 1).tolist() == []
    m.close()
    with pytest.raises(vastdict.ClosedError):
        m.get_many([1])


def test_damaged_file_raises(tmp_path):
    m = vastdict.IntMultiMap()
    m.add_many(np.arange(3000) % 700, np.arange(3000))
    m.save(tmp_path / "m.vmm")
    want = m.get_many(np.arange(700))
    good = (tmp_path / "m.vmm").read_bytes()
    bad = tmp_path / "bad.vmm"
    rng = np.random.default_rng(5)
    for at in rng.integers(0, len(good), size=300).tolist():
        b = bytearray(good)
        b[at] ^= 0x10
        bad.write_bytes(b)
        try:
            f = vastdict.IntMultiMap.open(bad)
            got = f.get_many(np.arange(700))
        except (vastdict.CorruptionError, vastdict.FormatError):
            continue
        assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True)), f"byte {at}"
    for cut in (0, 50, len(good) // 2, len(good) - 1):
        bad.write_bytes(good[:cut])
        with pytest.raises((vastdict.CorruptionError, vastdict.FormatError)):
            vastdict.IntMultiMap.open(bad)
    bad.write_bytes(b"hello")
    with pytest.raises(vastdict.FormatError, match="not a vastdict integer multimap"):
        vastdict.IntMultiMap.open(bad)


def read_groups(m, keys):
    offsets, values = m.get_many(keys)
    return offsets.tolist(), values.tolist()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_four_processes_read_a_saved_multimap(tmp_path, method):
    m = vastdict.IntMultiMap("uint32")
    keys = np.arange(200_000, dtype=np.uint64) % 20_000
    m.add_many(keys, np.arange(200_000, dtype=np.uint32))
    m.save(tmp_path / "m.vmm")
    f = vastdict.IntMultiMap.open(tmp_path / "m.vmm")
    f.get_many([1, 2])  # start the lookup threads before forking
    assert len(pickle.dumps(f)) < 300  # by reference
    parts = [np.arange(i, 20_000, 4, dtype=np.uint64) for i in range(4)]
    with mp.get_context(method).Pool(4) as pool:
        results = pool.starmap(read_groups, [(f, p) for p in parts])
    for p, (offsets, values) in zip(parts, results, strict=True):
        assert offsets == (np.arange(len(p) + 1) * 10).tolist()
        assert values == [int(k) + 20_000 * j for k in p.tolist() for j in range(10)]


def test_a_mutable_multimap_pickles_by_value():
    m = vastdict.IntMultiMap("float64", unique=True)
    m.add_many([1, 2, 1], [0.5, 1.5, 2.5])
    c = pickle.loads(pickle.dumps(m))
    assert c.unique and c.get(1).tolist() == [0.5, 2.5] and len(c) == 2
