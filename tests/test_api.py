"""The Store's dict interface, codecs, lifecycle and errors."""

import collections.abc
import pickle

import pytest

import vastdict


def test_is_a_mutable_mapping(store):
    assert isinstance(store, collections.abc.MutableMapping)
    store[b"a"] = b"1"
    store[b"b"] = b"2"
    assert store[b"a"] == b"1"
    assert b"a" in store and b"zz" not in store
    assert len(store) == 2
    assert sorted(store) == [b"a", b"b"]
    assert sorted(store.keys()) == [b"a", b"b"]
    assert sorted(store.values()) == [b"1", b"2"]
    assert sorted(store.items()) == [(b"a", b"1"), (b"b", b"2")]
    assert store.get(b"zz") is None
    assert store.get(b"zz", b"d") == b"d"
    del store[b"a"]
    assert b"a" not in store and len(store) == 1
    with pytest.raises(KeyError):
        store[b"a"]
    with pytest.raises(KeyError):
        del store[b"a"]
    assert store == {b"b": b"2"}


def test_pop_setdefault_update_clear(store):
    store.update({b"a": b"1", b"b": b"2"})
    store.update([(b"c", b"3")])
    assert store.setdefault(b"a", b"x") == b"1"
    assert store.setdefault(b"d", b"4") == b"4"
    assert store.pop(b"a") == b"1"
    assert store.pop(b"a", None) is None
    with pytest.raises(KeyError):
        store.pop(b"a")
    assert dict(store.items()) == {b"b": b"2", b"c": b"3", b"d": b"4"}
    store.clear()
    assert len(store) == 0 and list(store) == []


def test_get_many_returns_none_for_missing(store):
    store.update({bytes([i]): bytes([i]) * 3 for i in range(200)})
    keys = [bytes([i]) for i in range(0, 256, 3)]
    assert store.get_many(keys) == [k * 3 if k[0] < 200 else None for k in keys]
    assert store.get_many([]) == []


def test_update_keyword_arguments_need_str_keys(path):
    with vastdict.open(path, "n", keys="str") as s:
        s.update(x=b"1")
        assert s["x"] == b"1"
    with vastdict.open(path, "n") as s, pytest.raises(TypeError, match="key must be bytes"):
        s.update(x=b"1")


def test_update_rejects_non_pairs(store):
    with pytest.raises(TypeError):
        store.update([b"not-a-pair"])
    with pytest.raises(TypeError):
        store.update([(b"k", b"v", b"extra")])


@pytest.mark.parametrize(
    ("codec", "key", "value"),
    [
        ("bytes", b"\x00\xff", b""),
        ("str", "ключ", "значение ✓"),
        ("int", -(2**63), 2**63 - 1),
        ("pickle", ("tuple", 1), {"nested": [1.5, None]}),
        ("json", "k", {"a": [1, 2, {"b": None}]}),
    ],
)
def test_codecs_roundtrip_and_are_recorded(path, codec, key, value):
    with vastdict.open(path, "n", keys=codec, values=codec) as s:
        s[key] = value
    s = vastdict.open(path, "r")  # no codec arguments needed
    assert s.key_codec == codec and s.value_codec == codec
    assert s[key] == value
    assert list(s.items()) == [(key, value)]
    s.close()


def test_mismatching_codec_is_an_error(path):
    vastdict.open(path, "n", keys="str").close()
    with pytest.raises(vastdict.FormatError, match='keys="str"'):
        vastdict.open(path, "r", keys="bytes")
    with pytest.raises(ValueError, match="unknown codec"):
        vastdict.open(path, "c", values="yaml")


def test_wrong_key_type_raises_type_error(path):
    s = vastdict.open(path, "n", keys="str", values="int")
    with pytest.raises(TypeError, match="key must be str"):
        s[b"bytes"] = 1
    with pytest.raises(TypeError, match="value must be int"):
        s["k"] = "not an int"
    with pytest.raises(TypeError):
        s["k"] = True  # bool is not accepted as int
    with pytest.raises(OverflowError):
        s["k"] = 2**64
    assert b"bytes" not in s  # like a dict: a foreign key is just absent
    s.close()


def test_large_and_empty_items(store):
    big = bytes(range(256)) * (5 * 4096)  # 5 MiB
    store[b""] = big
    store[b"empty"] = b""
    store.commit()
    assert store[b""] == big and store[b"empty"] == b""


def test_bytes_like_keys_are_accepted(store):
    store[bytearray(b"k")] = memoryview(b"v")
    assert store[b"k"] == b"v"
    with pytest.raises(TypeError):
        store["str key"] = b"v"


def test_with_block_commits_or_rolls_back(path):
    with vastdict.open(path, "n") as s:
        s[b"kept"] = b"1"
    with pytest.raises(RuntimeError), vastdict.open(path) as s:
        s[b"dropped"] = b"2"
        raise RuntimeError("boom")
    s = vastdict.open(path, "r")
    assert dict(s.items()) == {b"kept": b"1"}
    s.close()


def test_rollback_and_commit(store):
    store[b"a"] = b"1"
    store.commit()
    store[b"a"] = b"2"
    store[b"b"] = b"3"
    del store[b"a"]
    store.rollback()
    assert dict(store.items()) == {b"a": b"1"}


def test_close_commits_and_closed_store_raises(path):
    s = vastdict.open(path, "n")
    s[b"k"] = b"v"
    s.close()
    assert s.closed
    for op in (lambda: s[b"k"], lambda: len(s), lambda: s.commit(), lambda: list(s)):
        with pytest.raises(vastdict.ClosedError, match="closed"):
            op()
    s.close()  # closing twice is harmless
    assert vastdict.open(path, "r")[b"k"] == b"v"


def test_close_without_commit_drops_changes(path):
    s = vastdict.open(path, "n")
    s[b"k"] = b"v"
    s.close(commit=False)
    assert len(vastdict.open(path, "r")) == 0


def test_flags(path):
    with pytest.raises(vastdict.StoreNotFoundError):
        vastdict.open(path, "r")
    with pytest.raises(FileNotFoundError):
        vastdict.open(path, "w")
    with pytest.raises(ValueError, match="flag"):
        vastdict.open(path, "x")
    with vastdict.open(path, "c") as s:
        s[b"k"] = b"v"
    with vastdict.open(path, "w") as s:
        assert s[b"k"] == b"v"
    with vastdict.open(path, "n") as s:
        assert len(s) == 0


def test_read_only_handle_refuses_writes(path):
    vastdict.open(path, "n").close()
    r = vastdict.open(path, "r")
    with pytest.raises(vastdict.ReadOnlyError):
        r[b"k"] = b"v"
    with pytest.raises(vastdict.ReadOnlyError):
        r.update({b"k": b"v"})
    with pytest.raises(vastdict.ReadOnlyError):
        del r[b"k"]
    r.close()


def test_second_writer_is_locked_out_and_readers_are_not(path):
    w = vastdict.open(path, "n")
    with pytest.raises(vastdict.LockedError, match="another process"):
        vastdict.open(path, "w")
    r = vastdict.open(path, "r")
    assert len(r) == 0
    w.close()
    vastdict.open(path, "w").close()  # free again after close


def test_reader_sees_its_snapshot_until_refresh(path):
    w = vastdict.open(path, "n")
    w[b"a"] = b"1"
    w.commit()
    r = vastdict.open(path, "r")
    w[b"a"] = b"2"
    w[b"b"] = b"new"
    w.commit()
    w[b"a"] = b"uncommitted"
    assert r[b"a"] == b"1" and b"b" not in r and len(r) == 1
    r.refresh()
    assert r[b"a"] == b"2" and r[b"b"] == b"new" and len(r) == 2
    w.close(commit=False)


def test_batch_lookups_see_the_same_snapshot_and_writes_as_single_ones(path):
    # Batch lookups take a shortcut to the record a key's slot points to;
    # it must give what a single lookup gives: the reader's snapshot, and
    # the writer's own uncommitted writes.
    keys = [b"key%d" % i for i in range(20_000)]
    w = vastdict.open(path, "n")
    w.update((k, b"old" + k) for k in keys)
    w.commit()
    r = vastdict.open(path, "r")
    w.update((k, b"new" + k) for k in keys[::2])
    for k in keys[1::4]:
        del w[k]
    w.commit()
    w.update((k, b"pending" + k) for k in keys[::8])
    assert r.get_many(keys) == [r[k] for k in keys] == [b"old" + k for k in keys]
    expect = [w.get(k) for k in keys]
    assert w.get_many(keys) == expect
    assert expect[0] == b"pending" + keys[0] and expect[1] is None and expect[2] == b"new" + keys[2]
    r.refresh()
    assert r.get_many(keys) == [
        None if i % 4 == 1 else (b"new" if i % 2 == 0 else b"old") + k for i, k in enumerate(keys)
    ]
    w.close(commit=False)


def test_changing_the_store_during_iteration_raises(store):
    store.update({b"key%d" % i: b"v" for i in range(10_000)})
    with pytest.raises(RuntimeError, match="changed during iteration"):
        for k in store:
            store[k + b"x"] = b"w"


def test_stats_and_verify(path):
    with vastdict.open(path, "n") as s:
        s.update((b"key%d" % i, b"value%d" % i) for i in range(1000))
        for i in range(500):
            del s[b"key%d" % i]
    s = vastdict.open(path)
    st = s.stats()
    assert st["entries"] == 500
    assert st["garbage_bytes"] > 0
    assert st["disk_bytes"] >= st["log_bytes"] + st["index_bytes"]
    s.compact()
    assert s.stats()["garbage_bytes"] == 0
    assert s.get_many([b"key499", b"key500"]) == [None, b"value500"]
    s.close()
    assert vastdict.verify(path)["entries"] == 500


def test_memory_budget_parsing(path):
    assert vastdict.parse_size("1GiB") == 2**30
    with pytest.raises(ValueError, match="size"):
        vastdict.open(path, "n", memory_budget="lots")
    with pytest.raises(ValueError, match="power of two"):
        vastdict.open(path, "n", segment_size="3MiB")
    vastdict.open(path, "n", memory_budget="64KiB", segment_size="64KiB").close()


def test_small_segments_and_budget_roll_and_spill(path):
    s = vastdict.open(path, "n", memory_budget="64KiB", segment_size="64KiB")
    data = {b"k%06d" % i: b"v" * (i % 50) for i in range(20_000)}
    s.update(data)
    s.commit()
    s.close()
    r = vastdict.open(path, "r")
    assert r.stats()["log_bytes"] > 10 * 65536  # many segments
    assert dict(r.items()) == data
    r.close()


def test_a_handle_pickles_by_reference_and_reopens_read_only(store):
    store[b"k"] = b"v"
    store.commit()
    blob = pickle.dumps(store)
    assert len(blob) < 200 + len(str(store.path))  # a path, not the contents
    other = pickle.loads(blob)
    assert other[b"k"] == b"v" and not other.writable
    other.close()


def test_large_batches_match_a_dict(store):
    # Big enough for the two-thread pipeline in update() and get_many().
    data = {b"key-%07d" % i: b"value-%d" % (i * 7) for i in range(60_000)}
    store.update(data)
    keys = [b"key-%07d" % i for i in range(0, 120_000, 3)]
    assert store.get_many(keys) == [data.get(k) for k in keys]
    assert len(store) == len(data)


class _MisSized:
    """An iterable whose len() does not match what it yields."""

    def __init__(self, keys, stated):
        self.keys, self.stated = keys, stated

    def __len__(self):
        return self.stated

    def __iter__(self):
        return iter(self.keys)


@pytest.mark.parametrize("n", [3, 20_000])
def test_get_many_takes_any_iterable_whatever_its_len_says(store, n):
    # The result list is made at len() slots up front; an input that yields
    # fewer or more keys than that still gets exactly one value per key.
    data = {b"k%d" % i: b"v%d" % i for i in range(0, n, 2)}
    store.update(data)
    keys = [b"k%d" % i for i in range(n)]
    want = [data.get(k) for k in keys]
    assert store.get_many(k for k in keys) == want
    assert store.get_many(_MisSized(keys, n * 2)) == want
    assert store.get_many(_MisSized(keys, n // 2)) == want
    assert store.get_many(_MisSized(keys, 0)) == want


def test_update_stops_at_a_bad_pair_like_dict_update(store):
    def pairs():
        for i in range(30_000):
            yield b"k%d" % i, b"v"
        yield "not bytes", b"v"

    with pytest.raises(TypeError, match="key must be bytes"):
        store.update(pairs())
    # Like dict.update(), the pairs before the bad one were written.
    assert store[b"k29999"] == b"v"
    assert len(store) == 30_000


def test_update_stops_at_a_pair_too_large_for_a_segment(path):
    # update() stages pairs on a second thread; a pair that cannot fit a log
    # segment still raises a vastdict error, with the pairs before it set.
    s = vastdict.open(path, "n", segment_size="1MiB")
    pairs = [(b"k%06d" % i, b"v") for i in range(30_000)]
    pairs += [(b"huge", b"x" * (2 << 20)), (b"after", b"1")]
    with pytest.raises(vastdict.InvalidError, match="too large"):
        s.update(pairs)
    assert len(s) == 30_000
    assert b"huge" not in s and b"after" not in s
    s[b"more"] = b"2"
    s.commit()
    s.close()
    r = vastdict.open(path, "r")
    assert len(r) == 30_001
    assert r[b"k029999"] == b"v"
