"""A generated corpus with known near-duplicates, for measuring dedup.

Documents of 100-400 words drawn from a Zipf vocabulary; 30% are derived
from an earlier document by word substitutions aimed at a true Jaccard
similarity spread over 0.5-0.95 on 5-word shingles, and a share of those
are exact copies. Every derived pair comes with its exact Jaccard.

>>> c = generate(200, seed=3)
>>> len(c.texts), all(0.0 <= j <= 1.0 for _, _, j in c.pairs)
(200, True)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np


def shingles(text: str, ngram: int = 5) -> set[tuple[str, ...]]:
    words = text.lower().split()
    n = min(ngram, len(words))
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)} if n else set()


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass
class Corpus:
    texts: list[str]
    #: (source, derived, exact Jaccard on 5-word shingles)
    pairs: list[tuple[int, int, float]] = field(default_factory=list)

    def positives(self, threshold: float = 0.8) -> set[tuple[int, int]]:
        """Every pair of documents with true Jaccard >= threshold: pairs
        within a family (a source and what derives from it, transitively),
        checked exactly; unrelated documents share no 5-word shingle."""
        parent = list(range(len(self.texts)))

        def root(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for a, b, _ in self.pairs:
            parent[root(b)] = root(a)
        families: dict[int, list[int]] = {}
        for a, b, _ in self.pairs:
            for d in (a, b):
                families.setdefault(root(d), [])
        for d in range(len(self.texts)):
            r = root(d)
            if r in families:
                families[r].append(d)
        out = set()
        for members in families.values():
            sets = {d: shingles(self.texts[d]) for d in members}
            for i, x in enumerate(members):
                for y in members[i + 1 :]:
                    if jaccard(sets[x], sets[y]) >= threshold:
                        out.add((x, y))
        return out


def generate(
    n: int, seed: int = 1, derived: float = 0.3, copies: float = 0.05, vocab: int = 50_000
) -> Corpus:
    """``n`` documents of 100-400 words from a Zipf vocabulary of ``vocab``
    words: a share ``derived`` made from earlier documents by word edits
    aimed at Jaccard 0.5-0.95 on 5-word shingles, a share ``copies`` exact
    copies, the rest new. The result records the exact Jaccard of every
    derived pair (the ground truth of :meth:`Corpus.quality`).
    """
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(vocab)]
    lengths = nprng.integers(100, 401, size=n)
    ranks = (nprng.zipf(1.1, size=int(lengths.sum())) - 1) % vocab
    texts: list[str] = []
    pairs: list[tuple[int, int, float]] = []
    at = 0
    for i in range(n):
        length = int(lengths[i])
        if i > 10 and rng.random() < derived:
            src = rng.randrange(i)
            toks = texts[src].split()
            if rng.random() < copies / derived:
                texts.append(texts[src])
                pairs.append((src, i, 1.0))
                continue
            target = rng.uniform(0.5, 0.95)
            shingle_count = max(1, len(toks) - 4)
            # Each substitution spoils up to 5 shingles on each side.
            k = max(1, round(shingle_count * (1 - target) / (5 * (1 + target))))
            for pos in rng.sample(range(len(toks)), min(k, len(toks))):
                toks[pos] = f"x{rng.randrange(10**9)}"
            text = " ".join(toks)
            texts.append(text)
            pairs.append((src, i, jaccard(shingles(texts[src]), shingles(text))))
        else:
            texts.append(" ".join(words[r] for r in ranks[at : at + length]))
        at += length
    return Corpus(texts, pairs)


def quality(predicted: set[tuple[int, int]], positives: set[tuple[int, int]]) -> dict[str, float]:
    """Pair precision and recall (pairs as (smaller, larger))."""
    hit = len(predicted & positives)
    return {
        "precision": hit / len(predicted) if predicted else 1.0,
        "recall": hit / len(positives) if positives else 1.0,
        "predicted": len(predicted),
        "positives": len(positives),
    }


def write_jsonl(corpus: Corpus, path: str) -> None:
    """One ``{"id": "doc-<n>", "text": ...}`` line per document."""
    import json

    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(corpus.texts):
            f.write(json.dumps({"id": f"doc-{i}", "text": t}) + "\n")


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="write a generated near-duplicate corpus as JSONL")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("out")
    args = ap.parse_args(argv)
    write_jsonl(generate(args.n, args.seed), args.out)


if __name__ == "__main__":
    main()
