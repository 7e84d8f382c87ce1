"""Writer for the crash test: commits numbered batches forever, reporting
each batch number on stdout once its commit() has returned.

With ``large``, each batch rewrites the same LARGE keys with values that
name the batch: about 6 MiB a commit, so blocks are written in pieces as
they are encoded (``store/stream.rs``) and a kill lands inside one often."""

import sys

import vastdict

BATCH = 300
LARGE = 40_000


def batch_items(n):
    return {b"b%06d-%04d" % (n, j): (b"%d-" % n) * (1 + j % 9) for j in range(BATCH)}


def large_items(n):
    tag = b"%08d" % n
    return {b"k%06d" % j: tag + b"." * (100 + j % 50) for j in range(LARGE)}


def main(path, large=False):
    if large:
        s = vastdict.open(path, "c", memory_budget="64MiB", segment_size="32MiB")
    else:
        s = vastdict.open(path, "c", memory_budget="64KiB", segment_size="1MiB")
    n = s.get(b"last")
    n = 0 if n is None else int(n) + 1
    while True:
        s.update(large_items(n) if large else batch_items(n))
        if n > 0 and not large:
            del s[b"b%06d-%04d" % (n - 1, 0)]  # a delete in every batch too
        s[b"last"] = b"%d" % n
        s.commit()
        print(n, flush=True)
        n += 1


if __name__ == "__main__":
    main(sys.argv[1], large=sys.argv[2:] == ["large"])
