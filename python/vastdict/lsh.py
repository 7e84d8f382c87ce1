"""Near-duplicate detection with MinHash and banded LSH.

>>> from vastdict.lsh import MinHasher, LSHIndex
>>> h = MinHasher(num_perm=128, ngram=2)
>>> sigs = h.signatures(["the cat sat on the mat today", "the cat sat on the mat again",
...                      "a completely different sentence here"])
>>> index = LSHIndex(threshold=0.5, num_perm=128)
>>> index.insert_many([0, 1, 2], sigs)
>>> sorted(index.query(sigs[0]).tolist())
[0, 1]

Signatures are computed in Rust on all cores with the GIL released, and are
the same on every run and machine. An index's band tables are sorted
(band hash, slot) pairs (about 5 bytes per document and band); ``save`` writes a
directory that ``LSHIndex.open`` maps, so processes share one copy.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from typing import Any

import numpy as np

from . import _vastdict as _native

__all__ = [
    "LSHIndex",
    "MinHashLSH",
    "MinHasher",
    "clusters",
    "dedup",
    "near_duplicate_pairs",
    "optimal_params",
]


def optimal_params(
    threshold: float, num_perm: int, weights: tuple[float, float] = (0.5, 0.5)
) -> tuple[int, int]:
    """The (bands, rows) minimizing the weighted false-positive and
    false-negative areas around ``threshold``, as datasketch chooses them.

    >>> optimal_params(0.8, 128)
    (9, 13)
    """
    return _native.lsh_optimal_params(float(threshold), int(num_perm), *map(float, weights))


def _csr(offsets: bytearray, ids: bytearray) -> tuple[np.ndarray, np.ndarray]:
    return np.frombuffer(offsets, dtype=np.int64), np.frombuffer(ids, dtype=np.uint64)


def _u64(a: Any, what: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu" and arr.size:
        raise TypeError(f"{what} must be integers, not {arr.dtype}")
    if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
        raise ValueError(f"{what} must be non-negative")
    return np.ascontiguousarray(arr, dtype=np.uint64).reshape(-1)


class MinHasher:
    """MinHash signatures of texts: ``ngram``-word (or character) shingles,
    hashed with seeded XXH3, then the minimum of each of ``num_perm``
    multiply-add-shift permutations.

    >>> MinHasher(num_perm=4, ngram=1).signatures(["a b", "A B"]).tolist()[0] == \\
    ...     MinHasher(num_perm=4, ngram=1).signatures(["a b"]).tolist()[0]
    True
    """

    def __init__(
        self,
        num_perm: int = 128,
        ngram: int = 5,
        unit: str = "word",
        seed: int = 1,
        lowercase: bool = True,
    ) -> None:
        self.num_perm, self.ngram, self.unit = int(num_perm), int(ngram), unit
        self.seed, self.lowercase = int(seed), bool(lowercase)
        self._h = _native.NativeMinHasher(self.num_perm, self.ngram, unit, self.seed, lowercase)

    def _out(self, n: int) -> np.ndarray:
        return np.empty((n, self.num_perm), dtype=np.uint32)

    def signatures(self, texts: Any) -> np.ndarray:
        """Signatures as a ``(n, num_perm)`` uint32 array, from a list of str,
        a pyarrow string array (zero-copy; nulls sign as empty texts), a path
        of a text file (one document per line), lists of str tokens (shingled
        ``ngram`` tokens at a time), or arrays of uint64 hashes (each hash a
        set element, no shingling)."""
        if isinstance(texts, str | os.PathLike):
            with open(texts, encoding="utf-8") as f:
                texts = [line.rstrip("\n") for line in f]
        if type(texts).__module__.startswith("pyarrow"):
            return self._sign_arrow(texts)
        texts = list(texts)
        out = self._out(len(texts))
        if not texts or isinstance(texts[0], str):
            if not all(isinstance(t, str) for t in texts):
                raise TypeError("texts must all be str")
            self._h.sign_texts(texts, out)
            return out
        first = texts[0]
        if isinstance(first, np.ndarray) and first.dtype.kind in "iu":
            sizes = [len(t) for t in texts]
            offsets = np.zeros(len(texts) + 1, dtype=np.uint64)
            np.cumsum(sizes, out=offsets[1:])
            flat = np.concatenate([np.asarray(t).astype(np.uint64, copy=False) for t in texts])
            self._h.sign_hash_sets(offsets, flat, out)
            return out
        tokens: list[str] = []
        offsets = np.zeros(len(texts) + 1, dtype=np.uint64)
        for i, t in enumerate(texts):
            if not isinstance(t, list | tuple):
                raise TypeError("texts must be str, token lists or uint64 hash arrays")
            tokens.extend(t)
            offsets[i + 1] = len(tokens)
        self._h.sign_tokens(offsets, tokens, out)
        return out

    def _sign_arrow(self, arr: Any) -> np.ndarray:
        import pyarrow as pa

        if isinstance(arr, pa.ChunkedArray):
            parts = [self._sign_arrow(c) for c in arr.chunks]
            return np.concatenate(parts) if parts else self._out(0)
        if arr.null_count:
            arr = arr.fill_null("")
        if pa.types.is_string(arr.type):
            wide = pa.large_string()
            arr = arr.cast(wide)
        if not pa.types.is_large_string(arr.type):
            raise TypeError(f"a pyarrow array of strings is needed, not {arr.type}")
        _, offs, data = arr.buffers()
        offsets = np.frombuffer(offs, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
        out = self._out(len(arr))
        raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8)
        self._h.sign_utf8(np.ascontiguousarray(offsets), raw, out)
        return out

    def __repr__(self) -> str:
        return (
            f"MinHasher(num_perm={self.num_perm}, ngram={self.ngram}, unit={self.unit!r}, "
            f"seed={self.seed}, lowercase={self.lowercase})"
        )


def _verify_arg(verify: bool | float | str, threshold: float, keep: bool) -> float | None:
    if verify is False or verify is None:
        return None
    if verify is True or verify == "estimate":
        return threshold if keep else None
    if isinstance(verify, float | int):
        return float(verify)
    raise ValueError(f'verify must be True, False, "estimate" or a similarity, not {verify!r}')


class LSHIndex:
    """A banded MinHash LSH index of integer ids.

    ``bands`` x ``rows`` are chosen for ``threshold`` as datasketch does
    unless given. With ``keep_signatures`` (default) the index stores each
    signature and queries return candidates whose estimated similarity
    reaches the threshold (``verify=False`` returns every document sharing
    a band); without, only band tables are kept and queries return raw
    candidates. ``band_bits`` of each band hash are kept: unrelated
    documents share a band by chance about ``len(index) / 2**band_bits``
    times per band and query, which verification removes.
    """

    def __init__(
        self,
        threshold: float = 0.8,
        num_perm: int = 128,
        weights: tuple[float, float] = (0.5, 0.5),
        *,
        bands: int | None = None,
        rows: int | None = None,
        keep_signatures: bool = True,
        band_bits: int = 32,
        _native_index: Any = None,
    ) -> None:
        if _native_index is not None:
            self._x = _native_index
        else:
            if (bands is None) != (rows is None):
                raise ValueError("give both bands and rows, or neither")
            if bands is None or rows is None:
                bands, rows = optimal_params(threshold, num_perm, weights)
            self._x = _native.NativeLshIndex(
                int(num_perm), int(bands), int(rows), float(threshold), keep_signatures, band_bits
            )
        c = self._x.config()
        self.num_perm: int = c["num_perm"]
        self.bands: int = c["bands"]
        self.rows: int = c["rows"]
        self.threshold: float = c["threshold"]
        self.keep_signatures: bool = c["keep_signatures"]
        self.band_bits: int = c["band_bits"]
        self.path: str | None = None
        self._default_verify = _verify_arg(True, self.threshold, self.keep_signatures)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> LSHIndex:
        """Open a saved index (mapped; inserts go to memory until ``save``)."""
        index = cls(_native_index=_native.NativeLshIndex.open(os.fspath(path)))
        index.path = os.fspath(path)
        return index

    def _sigs(self, signatures: Any) -> np.ndarray:
        s = np.asarray(signatures)
        if s.ndim == 1:
            s = s.reshape(1, -1)
        if s.ndim != 2 or s.shape[1] != self.num_perm:
            raise ValueError(f"signatures must have shape (n, {self.num_perm}), not {s.shape}")
        if s.dtype.kind not in "iu":
            raise TypeError(f"signatures must be uint32, not {s.dtype}")
        return np.ascontiguousarray(s, dtype=np.uint32)

    def insert_many(self, ids: Any, signatures: Any) -> None:
        """Index documents (ids are uint64; keep them unique)."""
        self._x.insert_many(_u64(ids, "ids"), self._sigs(signatures))

    def query(self, signature: Any, verify: bool | float | str = True) -> np.ndarray:
        """Ids of the indexed documents similar to one signature, as a
        uint64 array."""
        v = self._default_verify if verify is True else self._verify(verify)
        try:
            # The common case, a row of a signature array, goes straight
            # through; anything else is converted (and checked) first.
            return self._x.query(signature, v)
        except (TypeError, ValueError):
            return self._x.query(self._sigs(signature)[0], v)

    def _verify(self, verify: bool | float | str) -> float | None:
        return _verify_arg(verify, self.threshold, self.keep_signatures)

    def query_many(
        self, signatures: Any, verify: bool | float | str = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates of many signatures in CSR form: row ``i``'s ids are
        ``ids[offsets[i]:offsets[i + 1]]``."""
        v = _verify_arg(verify, self.threshold, self.keep_signatures)
        return _csr(*self._x.query_many(self._sigs(signatures), v))

    def insert_and_query_many(
        self, ids: Any, signatures: Any, verify: bool | float | str = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each row, the documents it matches among everything inserted
        before it, earlier rows of this batch included; then insert them."""
        v = _verify_arg(verify, self.threshold, self.keep_signatures)
        return _csr(*self._x.insert_and_query_many(_u64(ids, "ids"), self._sigs(signatures), v))

    def remove_many(self, ids: Any) -> int:
        """Remove documents; returns how many were present."""
        return self._x.remove_many(_u64(ids, "ids"))

    def contains_many(self, ids: Any) -> np.ndarray:
        """Whether each id is in the index, as a bool array."""
        return np.frombuffer(self._x.contains_many(_u64(ids, "ids")), dtype=np.bool_)

    def __contains__(self, id: int) -> bool:
        return bool(self.contains_many([id])[0])

    def __len__(self) -> int:
        return len(self._x)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to directory ``path`` (a new generation, switched
        to atomically)."""
        self._x.save(os.fspath(path))

    def merge(self, other: LSHIndex) -> None:
        """Add every document of ``other`` (same parameters)."""
        self._x.merge(other._x)

    def compact(self) -> None:
        """Drop removed documents from the band tables, merge each band's
        tables into one and place them together in memory backed by huge
        pages where the system allows: the layout queries read fastest.
        Worth calling once after a large build that will be queried."""
        self._x.compact()

    def stats(self) -> dict[str, int]:
        """Documents, slots, and bytes of tables, signatures and memory."""
        return self._x.stats()

    def close(self) -> None:
        """Release the index's memory and files; later calls raise ``ClosedError``."""
        self._x.close()

    def __enter__(self) -> LSHIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        if self.path is None:
            raise TypeError("save the index and pickle LSHIndex.open(path) instead")
        return (LSHIndex.open, (self.path,))

    def __repr__(self) -> str:
        return (
            f"LSHIndex(threshold={self.threshold}, num_perm={self.num_perm}, "
            f"bands={self.bands}, rows={self.rows}, documents={len(self)})"
        )


def near_duplicate_pairs(
    data: Any,
    threshold: float = 0.8,
    *,
    num_perm: int = 128,
    ngram: int = 5,
    unit: str = "word",
    seed: int = 1,
    bands: int | None = None,
    rows: int | None = None,
    verify: str = "exact",
    batch_size: int = 65536,
) -> tuple[np.ndarray, np.ndarray]:
    """The matched pairs ``(earlier, later)`` of document positions, as two
    uint64 arrays; the arguments are those of :func:`dedup`."""
    if verify not in ("exact", "estimate"):
        raise ValueError(f'verify must be "exact" or "estimate", not {verify!r}')
    hasher = MinHasher(num_perm, ngram, unit, seed)
    texts: Any = None
    sigs: np.ndarray | None = None
    if isinstance(data, tuple):
        if verify == "exact":
            raise ValueError('verify="exact" needs the texts; pass them, or verify="estimate"')
        sigs = np.asarray(data[1], dtype=np.uint32)
        n = len(sigs)
    else:
        texts = data
        n = len(texts)
    search = _CandidateSearch(threshold, num_perm, bands, rows, verify)
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        search.add(sigs[start:stop] if sigs is not None else hasher.signatures(texts[start:stop]))
    a, b = search.pairs()
    if verify == "exact":
        checker = hasher._h.exact_checker(float(threshold), a, b)
        for start in range(0, n, batch_size):
            checker.feed(list(texts[start : start + batch_size]))
        a, b = _accepted(checker)
    return a, b


class _CandidateSearch:
    """The first pass of near-duplicate detection: each batch of signatures
    is matched against everything before it, then indexed. Bands favour
    recall (weights 0.01 / 0.99) unless given. When an exact check follows,
    the index keeps band tables only and every candidate pair goes on to
    it; otherwise pairs are cut by their signature estimate."""

    def __init__(
        self, threshold: float, num_perm: int, bands: int | None, rows: int | None, verify: str
    ) -> None:
        if bands is None or rows is None:
            bands, rows = optimal_params(threshold, num_perm, (0.01, 0.99))
        self.bands, self.rows = bands, rows
        exact = verify == "exact"
        self._index = LSHIndex(
            threshold, num_perm, bands=bands, rows=rows, keep_signatures=not exact
        )
        self._cut: float | bool = False if exact else threshold
        self._earlier: list[np.ndarray] = [np.empty(0, np.uint64)]
        self._later: list[np.ndarray] = [np.empty(0, np.uint64)]
        self.n = 0

    def add(self, sigs: np.ndarray) -> None:
        rows = np.arange(self.n, self.n + len(sigs), dtype=np.uint64)
        offsets, found = self._index.insert_and_query_many(rows, sigs, verify=self._cut)
        self._earlier.append(found)
        self._later.append(np.repeat(rows, np.diff(offsets)))
        self.n += len(sigs)

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """The (earlier, later) candidate pairs; the index is closed."""
        self._index.close()
        return np.concatenate(self._earlier), np.concatenate(self._later)


def _accepted(checker: Any) -> tuple[np.ndarray, np.ndarray]:
    """The pairs an exact checker accepted, as two uint64 arrays."""
    earlier, later, _ = checker.accepted()
    return np.frombuffer(earlier, np.uint64), np.frombuffer(later, np.uint64)


def clusters(n: int, earlier: Any, later: Any) -> np.ndarray:
    """Union-find over matched pairs: each document's cluster is the
    position of its cluster's first document."""
    c = _native.lsh_clusters(n, _u64(earlier, "pairs"), _u64(later, "pairs"))
    return np.frombuffer(c, dtype=np.uint64).astype(np.int64)


def dedup(data: Any, threshold: float = 0.8, **options: Any) -> np.ndarray:
    """The near-duplicate cluster of each document: the position of the
    first document of its cluster (a document is kept when its cluster is
    its own position). ``data`` is a list of texts, or ``(ids, signatures)``.

    Candidates come from an index whose bands favour recall (weights 0.01 /
    0.99); pairs are then checked exactly (``verify="exact"``, by the Jaccard
    similarity of their shingle sets, texts only) or by the signature
    estimate (``"estimate"``), and joined by union-find in Rust. Options:
    ``num_perm=128, ngram=5, unit="word", seed=1, bands, rows,
    verify="exact", batch_size=65536``.

    >>> dedup(["a b c d e f g", "a b c d e f g", "x y z w v u t"], ngram=2).tolist()
    [0, 0, 2]
    """
    n = len(data[1]) if isinstance(data, tuple) else len(data)
    return clusters(n, *near_duplicate_pairs(data, threshold, **options))


class MinHashLSH:
    """A drop-in for datasketch's ``MinHashLSH``: keys are any hashable,
    ``minhash`` is anything with ``hashvalues`` (datasketch ``MinHash`` and
    ``LeanMinHash``) or an array of ``num_perm`` values.

    Queries return the keys sharing a band, as datasketch's do (no
    similarity check), so results match datasketch on the same MinHashes.
    """

    def __init__(
        self,
        threshold: float = 0.9,
        num_perm: int = 128,
        weights: tuple[float, float] = (0.5, 0.5),
        params: tuple[int, int] | None = None,
    ) -> None:
        bands, rows = params if params is not None else optimal_params(threshold, num_perm, weights)
        self.b, self.r = bands, rows
        self.threshold, self.h = threshold, num_perm
        self._index = LSHIndex(
            threshold, num_perm, bands=bands, rows=rows, keep_signatures=False, band_bits=64
        )
        self._ids: dict[Hashable, int] = {}
        self._keys: list[Hashable | None] = []

    def _sig(self, minhash: Any) -> np.ndarray:
        values = np.asarray(getattr(minhash, "hashvalues", minhash))
        if values.shape != (self.h,):
            raise ValueError(f"expected {self.h} hash values, got shape {values.shape}")
        # datasketch's values are below 2**32 (uint64 holding 32-bit hashes).
        return values.astype(np.uint32).reshape(1, -1)

    def insert(self, key: Hashable, minhash: Any, check_duplication: bool = True) -> None:
        """Index ``minhash`` (a datasketch MinHash, or ``num_perm`` values)
        under ``key``; ``ValueError`` if the key is there already."""
        if check_duplication and key in self._ids:
            raise ValueError("The given key already exists")
        slot = len(self._keys)
        self._keys.append(key)
        self._ids[key] = slot
        self._index.insert_many([slot], self._sig(minhash))

    def query(self, minhash: Any) -> list[Hashable]:
        """Keys sharing a band with ``minhash`` (raw candidates, as datasketch)."""
        found = self._index.query(self._sig(minhash), verify=False)
        return [self._keys[i] for i in found.tolist() if self._keys[i] is not None]

    def remove(self, key: Hashable) -> None:
        """Drop ``key``; ``ValueError`` if it is not there."""
        if key not in self._ids:
            raise ValueError("The given key does not exist")
        slot = self._ids.pop(key)
        self._keys[slot] = None
        self._index.remove_many([slot])

    def __contains__(self, key: Hashable) -> bool:
        return key in self._ids

    def is_empty(self) -> bool:
        """True when no key is indexed."""
        return not self._ids

    def __len__(self) -> int:
        return len(self._ids)
