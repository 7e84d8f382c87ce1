"""Writer for the crash test: commits numbered batches forever, reporting
each batch number on stdout once its commit() has returned."""

import sys

import vastdict

BATCH = 300


def batch_items(n):
    return {b"b%06d-%04d" % (n, j): (b"%d-" % n) * (1 + j % 9) for j in range(BATCH)}


def main(path):
    s = vastdict.open(path, "c", memory_budget="64KiB", segment_size="1MiB")
    n = s.get(b"last")
    n = 0 if n is None else int(n) + 1
    while True:
        s.update(batch_items(n))
        if n > 0:
            del s[b"b%06d-%04d" % (n - 1, 0)]  # a delete in every batch too
        s[b"last"] = b"%d" % n
        s.commit()
        print(n, flush=True)
        n += 1


if __name__ == "__main__":
    main(sys.argv[1])
