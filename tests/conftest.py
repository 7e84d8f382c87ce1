import pytest

import vastdict


@pytest.fixture
def path(tmp_path):
    """A fresh store location."""
    return tmp_path / "store"


@pytest.fixture
def store(path):
    s = vastdict.open(path, "n")
    yield s
    if not s.closed:
        s.close(commit=False)


@pytest.fixture
def big_tsv(tmp_path):
    """A TSV file of `blocks` x 100k lines (7.4 MB each, keys repeating
    across blocks): input a build takes a second or more to get through."""

    def make(blocks: int):
        src = tmp_path / "big.tsv"
        block = b"".join(b"key%09d\t%s\n" % (i, b"v" * 60) for i in range(100_000))
        with open(src, "wb") as out:
            for _ in range(blocks):
                out.write(block)
        return src

    return make
