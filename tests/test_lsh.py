"""MinHash signatures, the LSH index, dedup quality on the generated corpus,
and the datasketch-compatible facade."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

import vastdict
from vastdict import lsh, lsh_corpus
from vastdict.lsh import LSHIndex, MinHasher


@pytest.fixture(scope="module")
def corpus():
    return lsh_corpus.generate(3000, seed=5)


@pytest.fixture(scope="module")
def sigs(corpus):
    return MinHasher().signatures(corpus.texts)


def test_signatures_are_fixed_by_text_and_parameters():
    sig = MinHasher(num_perm=8, ngram=2, seed=1).signatures(["a b c d"])
    # The engine's golden values: saved indexes depend on them.
    assert sig.tolist() == [
        [799625980, 48106857, 264503084, 568590392, 3683954573, 576268145, 1499288686, 1614411063]
    ]
    assert sig.dtype == np.uint32
    assert not np.array_equal(MinHasher(num_perm=8, ngram=2, seed=2).signatures(["a b c d"]), sig)


def test_signatures_do_not_depend_on_threads(corpus, sigs):
    code = (
        "import sys, numpy as np; from vastdict import lsh_corpus; from vastdict.lsh import "
        "MinHasher; c = lsh_corpus.generate(3000, seed=5); "
        "sys.stdout.buffer.write(MinHasher().signatures(c.texts).tobytes())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "RAYON_NUM_THREADS": "1"},
        capture_output=True,
        check=True,
    ).stdout
    assert np.frombuffer(out, np.uint32).reshape(sigs.shape).tolist() == sigs.tolist()


def test_every_input_kind_signs_alike(tmp_path):
    texts = ["The quick brown fox", "", "jumps over", "héllo wörld ünïcode text"]
    h = MinHasher(num_perm=16, ngram=2)
    want = h.signatures(texts)
    assert (h.signatures(pa.array(texts)) == want).all()
    assert (h.signatures(pa.array(texts, pa.large_string())) == want).all()
    assert (h.signatures(pa.array(texts).slice(1)) == want[1:]).all()
    assert (h.signatures(pa.chunked_array([texts[:2], texts[2:]])) == want).all()
    with_null = h.signatures(pa.array(["The quick brown fox", None]))
    assert (with_null[1] == want[1]).all()
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert (h.signatures(path) == want).all()
    assert (h.signatures([t.lower().split() for t in texts]) == want).all()
    hashes = h.signatures([np.array([1, 2, 3], np.uint64), np.array([3, 2, 1], np.uint64)])
    assert (hashes[0] == hashes[1]).all()
    assert h.signatures([]).shape == (0, 16)
    assert (want[1] == 2**32 - 1).all()  # no shingles
    with pytest.raises(TypeError):
        h.signatures(["ok", 3])
    with pytest.raises(ValueError):
        MinHasher(unit="sentence")


def test_optimal_params_match_datasketch():
    from datasketch.lsh import _optimal_param

    for t in (0.3, 0.5, 0.7, 0.8, 0.9):
        for w in ((0.5, 0.5), (0.2, 0.8)):
            assert lsh.optimal_params(t, 128, w) == _optimal_param(t, 128, *w)


def _brute(sigs, docs, q, bands, rows, need=None):
    out = set()
    for d in docs:
        s = sigs[d]
        if any(
            (s[j * rows : (j + 1) * rows] == q[j * rows : (j + 1) * rows]).all()
            for j in range(bands)
        ) and (need is None or (s == q).sum() >= need * len(q) - 1e-9):
            out.add(d)
    return out


def _rows(offsets, ids):
    return [set(ids[offsets[i] : offsets[i + 1]].tolist()) for i in range(len(offsets) - 1)]


def test_queries_match_brute_force(sigs):
    sub = sigs[:600]
    index = LSHIndex(threshold=0.7, bands=16, rows=8)
    index.insert_many(np.arange(600), sub)
    assert len(index) == 600
    raw = _rows(*index.query_many(sub, verify=False))
    checked = _rows(*index.query_many(sub))
    for i in range(0, 600, 7):
        assert raw[i] == _brute(sub, range(600), sub[i], 16, 8)
        assert checked[i] == _brute(sub, range(600), sub[i], 16, 8, 0.7)
        assert i in checked[i]
    assert set(index.query(sub[3]).tolist()) == checked[3]
    assert sum(len(r) for r in raw) > 600  # the corpus has duplicates


def test_streaming_dedup_sees_earlier_rows(sigs):
    index = LSHIndex(threshold=0.6, bands=16, rows=8)
    got = []
    for a, b in ((0, 100), (100, 101), (101, 800)):
        got += _rows(*index.insert_and_query_many(np.arange(a, b), sigs[a:b]))
    for i in range(0, 800, 5):
        assert got[i] == _brute(sigs, range(i), sigs[i], 16, 8, 0.6)


def test_save_open_append_merge_remove(tmp_path, sigs):
    path = tmp_path / "index"
    whole = LSHIndex(threshold=0.6, bands=16, rows=8)
    whole.insert_many(np.arange(900) * 10, sigs[:900])
    want = _rows(*whole.query_many(sigs[:900]))

    part = LSHIndex(threshold=0.6, bands=16, rows=8)
    part.insert_many(np.arange(300) * 10, sigs[:300])
    part.save(path)
    back = LSHIndex.open(path)
    assert len(back) == 300 and (back.bands, back.rows) == (16, 8)
    back.insert_many(np.arange(300, 600) * 10, sigs[300:600])
    back.save(path)
    again = LSHIndex.open(path)
    rest = LSHIndex(threshold=0.6, bands=16, rows=8)
    rest.insert_many(np.arange(600, 900) * 10, sigs[600:900])
    again.merge(rest)
    assert _rows(*again.query_many(sigs[:900])) == want
    assert 50 in again and 5 not in again
    assert again.remove_many([0, 10, 10**9]) == 2
    assert len(again) == 898
    assert not (set(again.query(sigs[0]).tolist()) & {0, 10})
    again.compact()
    assert not (set(again.query(sigs[1]).tolist()) & {0, 10})
    with pytest.raises(vastdict.InvalidError):
        again.merge(LSHIndex(threshold=0.6, bands=8, rows=8))
    # Pickles by path once saved.
    clone = pickle.loads(pickle.dumps(LSHIndex.open(path)))
    assert len(clone) == 600


def test_band_tables_only(sigs):
    index = LSHIndex(threshold=0.8, bands=16, rows=8, keep_signatures=False)
    index.insert_many(np.arange(1000), sigs[:1000])
    st = index.stats()
    assert st["signature_bytes"] == 0 and st["documents"] == 1000
    raw = _rows(*index.query_many(sigs[:50]))
    assert all(raw[i] == _brute(sigs[:1000], range(1000), sigs[i], 16, 8) for i in range(50))


def test_query_takes_a_signature_in_any_form(sigs):
    # A contiguous uint32 row takes a shortcut through NumPy's API; every
    # other form must give the same answer.
    index = LSHIndex(threshold=0.5, num_perm=128)
    index.insert_many(np.arange(1000), sigs[:1000])
    for i in (3, 500, 999):
        want = index.query(sigs[i])
        assert want.dtype == np.uint64 and i in want.tolist()
        for form in (sigs[i].tolist(), sigs[i].astype(np.int64), np.asfortranarray(sigs)[i]):
            assert index.query(form).tolist() == want.tolist()
        raw = index.query(sigs[i], verify=False).tolist()
        assert sorted(raw) == sorted(
            _brute(sigs[:1000], range(1000), sigs[i], index.bands, index.rows)
        )


def test_bad_input_and_damage(tmp_path, sigs):
    index = LSHIndex(threshold=0.8, num_perm=128)
    with pytest.raises(ValueError):
        index.insert_many([1], sigs[:1, :64])
    with pytest.raises(ValueError):
        index.insert_many([-1], sigs[:1])
    with pytest.raises(ValueError):
        index.insert_many([1, 2], sigs[:1])
    with pytest.raises(TypeError):
        index.query(sigs[0].astype(np.float64))
    with pytest.raises(ValueError):
        LSHIndex(bands=64, rows=4)
    index.insert_many(np.arange(100), sigs[:100])
    path = tmp_path / "idx"
    index.save(path)
    with pytest.raises(vastdict.StoreNotFoundError):
        LSHIndex.open(tmp_path / "nothing")
    want = _rows(*index.query_many(sigs[:100]))
    for name in sorted(os.listdir(path)):
        f = path / name
        good = f.read_bytes()
        for at in range(0, len(good), max(1, len(good) // 7)):
            bad = bytearray(good)
            bad[at] ^= 0x40
            f.write_bytes(bytes(bad))
            # Damage is reported, or did not touch what the queries read.
            with contextlib.suppress(vastdict.CorruptionError):
                assert _rows(*LSHIndex.open(path).query_many(sigs[:100])) == want, (name, at)
        f.write_bytes(good[: len(good) // 2])
        if good:
            with pytest.raises(vastdict.CorruptionError):
                LSHIndex.open(path).query_many(sigs[:100])
        f.write_bytes(good)
    index.close()
    with pytest.raises(vastdict.ClosedError):
        len(index)


def _query_worker(args):
    path, rows = args
    index = LSHIndex.open(path)
    return [sorted(index.query(r).tolist()) for r in rows]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_four_processes_query_one_saved_index(tmp_path, sigs, method):
    path = str(tmp_path / "idx")
    index = LSHIndex(threshold=0.7, bands=16, rows=8)
    index.insert_many(np.arange(2000), sigs[:2000])
    index.save(path)
    want = [sorted(index.query(r).tolist()) for r in sigs[:40]]
    chunks = [(path, sigs[i : i + 10]) for i in range(0, 40, 10)]
    with mp.get_context(method).Pool(4) as pool:
        got = pool.map(_query_worker, chunks)
    assert [r for c in got for r in c] == want


def test_dedup_on_the_generated_corpus(corpus):
    positives = corpus.positives(0.8)
    a, b = lsh.near_duplicate_pairs(corpus.texts, 0.8, verify="exact")
    q = lsh_corpus.quality(set(zip(a.tolist(), b.tolist(), strict=True)), positives)
    assert q["precision"] >= 0.99 and q["recall"] >= 0.98, q
    clusters = lsh.dedup(corpus.texts, 0.8)
    together = sum(clusters[x] == clusters[y] for x, y in positives)
    assert together >= 0.98 * len(positives)
    assert (clusters <= np.arange(len(clusters))).all()
    est = lsh.dedup(
        (np.arange(len(corpus.texts)), MinHasher().signatures(corpus.texts)), 0.8, verify="estimate"
    )
    assert (est < np.arange(len(est))).sum() > 0.5 * (clusters < np.arange(len(clusters))).sum()
    with pytest.raises(ValueError):
        lsh.dedup((np.arange(3), np.zeros((3, 128), np.uint32)), verify="exact")


def test_facade_answers_like_datasketch(corpus):
    from datasketch import LeanMinHash, MinHash
    from datasketch import MinHashLSH as DSLSH

    docs = corpus.texts[:400]
    hashes = []
    for t in docs:
        m = MinHash(num_perm=128, seed=1)
        words = t.split()
        m.update_batch([" ".join(words[i : i + 5]).encode() for i in range(len(words) - 4)])
        hashes.append(LeanMinHash(m))
    theirs, ours = DSLSH(threshold=0.7, num_perm=128), lsh.MinHashLSH(threshold=0.7, num_perm=128)
    for i, m in enumerate(hashes):
        theirs.insert(f"doc{i}", m)
        ours.insert(f"doc{i}", m)
    for m in hashes:
        assert sorted(ours.query(m)) == sorted(theirs.query(m))
    assert "doc3" in ours and "nope" not in ours
    ours.remove("doc3")
    theirs.remove("doc3")
    assert sorted(ours.query(hashes[3])) == sorted(theirs.query(hashes[3]))
    with pytest.raises(ValueError):
        ours.insert("doc4", hashes[4])


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "vastdict", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def test_dedup_command_on_jsonl_and_parquet(tmp_path, corpus):
    import json

    import pyarrow.parquet as pq

    docs = corpus.texts[:1500]
    src = tmp_path / "docs.jsonl"
    src.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs))
    )
    out = tmp_path / "out.jsonl"
    res = _cli("dedup", str(src), "--output", str(out), "--batch-size", "400")
    assert res.returncode == 0, res.stderr
    assert "1,500 documents" in res.stdout and "duplicates removed" in res.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    want = lsh.dedup(docs, 0.8)
    assert [r["id"] for r in rows] == [f"d{i}" for i in range(1500)]
    assert [r["cluster"] for r in rows] == [f"d{c}" for c in want.tolist()]
    assert [r["keep"] for r in rows] == (want == np.arange(1500)).tolist()
    # Parquet in and out, ids as line numbers.
    table = pa.table({"body": docs})
    pq.write_table(table, tmp_path / "docs.parquet")
    res = _cli(
        "dedup",
        str(tmp_path / "docs.parquet"),
        "--text-field",
        "body",
        "--id-field",
        "",
        "-o",
        str(tmp_path / "out.parquet"),
        "--quiet",
    )
    assert res.returncode == 0 and res.stdout == "", res.stderr
    got = pq.read_table(tmp_path / "out.parquet").to_pydict()
    assert got["cluster"] == want.tolist()


def test_dedup_command_errors(tmp_path):
    res = _cli("dedup", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o.jsonl"))
    assert res.returncode == 1 and "no such file" in res.stderr
    assert "Traceback" not in res.stderr
    src = tmp_path / "docs.jsonl"
    src.write_text('{"id": 1, "body": "a b c"}\n')
    res = _cli("dedup", str(src), "-o", str(tmp_path / "o.jsonl"))
    assert res.returncode == 1 and "--text-field" in res.stderr
    src.write_text('{"id": 1, "text": "a b c"}\nnot json\n')
    res = _cli("dedup", str(src), "-o", str(tmp_path / "o.jsonl"))
    assert res.returncode == 1 and "cannot read" in res.stderr
    res = _cli("dedup", str(src))
    assert res.returncode == 2 and "--output" in res.stderr
    assert not (tmp_path / "o.jsonl").exists()
