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
