"""The stores vastdict is compared with, each loaded by its fastest
documented bulk path. ``vastdict demo --with-anchors`` and the benchmark
suite in ``benches/`` both build them here, so the two measure the same
thing.

    >>> from vastdict import _anchors
    >>> db = _anchors.build("dict", [b"k"], [b"v"], None)
    >>> get, get_or_none = _anchors.getters("dict", db)
    >>> get(b"k"), get_or_none(b"x")
    (b'v', None)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

#: Every anchor, in the order tables list them.
ANCHORS = ("dict", "lmdb", "rocksdict", "sqlite3", "keyvi", "marisa_trie", "dbm")

#: How each anchor is loaded (said beside every table of results).
BULK_PATHS = {
    "dict": "dict(zip(keys, values))",
    "lmdb": "sorted input, Cursor.putmulti(append=True), one transaction",
    "rocksdict": "sorted input, SstFileWriter, then ingest_external_file",
    "sqlite3": "sorted input, WAL, one transaction, executemany, WITHOUT ROWID",
    "keyvi": "StringDictionaryCompiler (2 GiB memory limit), then Compile",
    "marisa_trie": "BytesTrie(pairs), saved and memory-mapped",
    "dbm": "dbm.open(path, 'n') (the standard library's fallback, dbm.dumb, here)",
}

#: Anchors too slow to load past this many pairs in a run that should end
#: today (dbm.dumb writes about 33k pairs/s from Python).
MAX_PAIRS = {"dbm": 2_000_000}

# Anchors that need a package of their own; the rest ship with Python.
_PACKAGED = ("lmdb", "rocksdict", "keyvi", "marisa_trie")


def installed(name: str) -> bool:
    """Whether an anchor can run here: built in, or its module imports."""
    if name not in ANCHORS:
        raise ValueError(f"unknown anchor {name!r}; choose from {', '.join(ANCHORS)}")
    if name not in _PACKAGED:
        return True
    try:
        __import__(name)
    except ImportError:
        return False
    return True


#: Anchors whose fastest bulk path needs its input sorted by key.
SORTED_INPUT = ("lmdb", "rocksdict", "sqlite3")


def bulk_load(name: str, pairs: list[tuple[bytes, bytes]], target: Path) -> object:
    """Load key-sorted ``pairs`` into a new store of a kind in
    :data:`SORTED_INPUT` at ``target``; returns the open store."""
    target = Path(target)
    if name == "lmdb":
        import lmdb

        env = lmdb.open(str(target), map_size=1 << 40, writemap=True, sync=True)
        with env.begin(write=True) as txn:
            txn.cursor().putmulti(pairs, append=True)
        env.sync(True)
        return env
    if name == "rocksdict":
        import rocksdict

        opts = rocksdict.Options(raw_mode=True)
        w = rocksdict.SstFileWriter(options=opts)
        sst = str(target) + ".sst"
        w.open(sst)
        for k, v in pairs:
            w[k] = v
        w.finish()
        db = rocksdict.Rdict(str(target), options=opts)
        db.ingest_external_file([sst])
        db.flush()
        os.unlink(sst)
        return db
    if name == "sqlite3":
        import sqlite3

        db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")
        db.execute("BEGIN")
        db.executemany("INSERT INTO kv VALUES (?, ?)", pairs)
        db.execute("COMMIT")
        return db
    raise ValueError(f"{name!r} does not load from sorted pairs")


def build(name: str, keys: list[bytes], values: list[bytes], target: Path | None) -> object:
    """Load the pairs into a new store of kind ``name`` at ``target`` (a
    path that does not exist yet; unused by ``dict``) and return the open
    store. The caller keeps the result alive while reading."""
    if name == "dict":
        return dict(zip(keys, values, strict=True))
    assert target is not None, "a persistent anchor needs a target path"
    if name in SORTED_INPUT:
        return bulk_load(name, sorted(zip(keys, values, strict=True)), target)
    target = Path(target)
    if name == "keyvi":
        from keyvi.compiler import StringDictionaryCompiler
        from keyvi.dictionary import Dictionary

        c = StringDictionaryCompiler({"memory_limit_mb": "2048"})
        for k, v in zip(keys, values, strict=True):
            c.Add(k.decode(), v.decode())
        c.Compile()
        c.WriteToFile(str(target))
        return Dictionary(str(target))
    if name == "marisa_trie":
        import marisa_trie

        trie = marisa_trie.BytesTrie(zip([k.decode() for k in keys], values, strict=True))
        trie.save(str(target))
        del trie
        return marisa_trie.BytesTrie().mmap(str(target))
    if name == "dbm":
        import dbm

        target.mkdir()
        with dbm.open(str(target / "db"), "n") as db:
            for k, v in zip(keys, values, strict=True):
                db[k] = v
        return dbm.open(str(target / "db"), "r")
    raise ValueError(f"unknown anchor {name!r}; choose from {', '.join(ANCHORS)}")


def reopen(name: str, target: Path) -> object:
    """Open a store that :func:`build` wrote, for reading only, as a worker
    process does (LMDB and RocksDB handles must not cross a fork)."""
    target = Path(target)
    if name == "lmdb":
        import lmdb

        return lmdb.open(str(target), readonly=True, lock=False)
    if name == "rocksdict":
        import rocksdict

        opts = rocksdict.Options(raw_mode=True)
        return rocksdict.Rdict(
            str(target), options=opts, access_type=rocksdict.AccessType.read_only()
        )
    if name == "sqlite3":
        import sqlite3

        return sqlite3.connect(f"file:{target}?mode=ro", uri=True, isolation_level=None)
    if name == "keyvi":
        from keyvi.dictionary import Dictionary

        return Dictionary(str(target))
    if name == "marisa_trie":
        import marisa_trie

        return marisa_trie.BytesTrie().mmap(str(target))
    if name == "dbm":
        import dbm

        return dbm.open(str(target / "db"), "r")
    raise ValueError(f"{name!r} has no file to reopen")


def close(name: str, db: object) -> None:
    """Release a store's handle (a no-op for those without one)."""
    if name in ("lmdb", "rocksdict", "sqlite3", "dbm"):
        db.close()  # type: ignore[attr-defined]


Getter = Callable[[bytes], bytes | None]


def getters(name: str, db: object) -> tuple[Getter, Getter]:
    """(get raising on a miss, get returning None on a miss) for a store
    that :func:`build` returned, both taking and returning bytes."""
    if name in ("dict", "rocksdict", "dbm"):
        return db.__getitem__, db.get  # type: ignore[attr-defined]
    if name == "lmdb":
        txn = db.begin()  # type: ignore[attr-defined]
        return txn.get, txn.get
    if name == "marisa_trie":

        def trie_get(k: bytes, _g=db.__getitem__) -> bytes:  # type: ignore[attr-defined]
            return _g(k.decode())[0]

        def trie_get_or_none(k: bytes, _g=db.get) -> bytes | None:  # type: ignore[attr-defined]
            v = _g(k.decode())
            return v[0] if v else None

        return trie_get, trie_get_or_none
    if name == "keyvi":

        def keyvi_get(k: bytes, _g=db.get) -> bytes:  # type: ignore[attr-defined]
            return _g(k.decode()).GetValueAsString().encode()

        def keyvi_get_or_none(k: bytes, _g=db.get) -> bytes | None:  # type: ignore[attr-defined]
            m = _g(k.decode())
            return m.GetValueAsString().encode() if m is not None else None

        return keyvi_get, keyvi_get_or_none
    if name == "sqlite3":
        stmt = "SELECT v FROM kv WHERE k = ?"

        def sql_get(k: bytes, _ex=db.execute) -> bytes:  # type: ignore[attr-defined]
            return _ex(stmt, (k,)).fetchone()[0]

        def sql_get_or_none(k: bytes, _ex=db.execute) -> bytes | None:  # type: ignore[attr-defined]
            row = _ex(stmt, (k,)).fetchone()
            return row[0] if row else None

        return sql_get, sql_get_or_none
    raise ValueError(f"unknown anchor {name!r}; choose from {', '.join(ANCHORS)}")


def disk_bytes(path: Path) -> int:
    """Bytes a store allocates on disk (LMDB's map file is sparse, so file
    sizes would overstate it); every file under a directory counts."""
    path = Path(path)
    if not path.exists():
        return 0
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_blocks * 512 for p in files)
