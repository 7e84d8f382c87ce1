"""A full disk: writes raise DiskFullError, and committed data survives."""

import subprocess

import pytest

import vastdict


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def grow(mnt, size):
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True)


def test_full_disk_raises_and_keeps_committed_data(small_fs):
    path = small_fs / "store"
    committed = {b"k%04d" % i: b"v%d" % i for i in range(1000)}
    s = vastdict.open(path, "n", memory_budget="64KiB", segment_size="1MiB")
    s.update(committed)
    s.commit()
    with pytest.raises(vastdict.DiskFullError, match="no space left") as err:
        for i in range(100_000):
            s[b"big%06d" % i] = b"x" * 2000
        s.commit()
    assert isinstance(err.value, OSError)
    s.close(commit=False)
    grow(small_fs, "64m")  # free space; the next open recovers if it must
    r = vastdict.open(path, "r")
    assert dict(r.items()) == committed
    r.close()
    vastdict.verify(path)
    w = vastdict.open(path, "w")  # and the store takes writes again
    w[b"after"] = b"1"
    w.close()
    assert vastdict.open(path, "r")[b"after"] == b"1"


def test_a_failed_commit_leaves_a_handle_that_says_to_reopen(small_fs):
    path = small_fs / "store"
    s = vastdict.open(path, "n", memory_budget="64KiB", segment_size="1MiB")
    s[b"safe"] = b"1"
    s.commit()
    with pytest.raises(vastdict.Error):
        for i in range(100_000):
            s[b"big%06d" % i] = b"y" * 3000
            if i % 50 == 0:
                s.commit()
    # Whatever state the failure left, the handle never reports success
    # for a write it could not make durable; after reopening, committed
    # data is there.
    s.close(commit=False)
    grow(small_fs, "64m")
    r = vastdict.open(path, "r")
    assert r[b"safe"] == b"1"
    n = len(r)
    r.close()
    assert vastdict.verify(path)["entries"] == n


def test_full_disk_inside_a_large_block_keeps_the_handle_usable(small_fs):
    # A 6 MiB update makes blocks that are written in pieces while they are
    # encoded; the disk fills in the middle of one. The staged writes stay
    # staged: once there is space, the same handle commits them.
    path = small_fs / "store"
    committed = {b"k%04d" % i: b"v%d" % i for i in range(1000)}
    s = vastdict.open(path, "n", segment_size="32MiB")
    s.update(committed)
    s.commit()
    large = {b"big%06d" % i: b"z" * 150 for i in range(40_000)}
    with pytest.raises(vastdict.DiskFullError, match="no space left"):
        s.update(large)
        s.commit()
    r = vastdict.open(path, "r")
    assert dict(r.items()) == committed
    r.close()
    grow(small_fs, "64m")
    s.commit()
    assert len(s) == len(committed) + len(large)
    assert s.get_many([b"big000000", b"big039999", b"k0999"]) == [b"z" * 150, b"z" * 150, b"v999"]
    s.close()
    vastdict.verify(path)
    assert len(vastdict.open(path, "r")) == len(committed) + len(large)


def test_a_frozen_build_on_a_full_disk_raises_and_keeps_the_old_file(small_fs, tmp_path):
    target = small_fs / "f.vdf"
    old = {b"old%d" % i: b"v" for i in range(100)}
    vastdict.build(target, old, progress=False)
    # About 7 MB of pairs from a file on another disk, into 3 MB.
    tsv = tmp_path / "in.tsv"
    tsv.write_bytes(b"".join(b"key%08d\t%s\n" % (i, b"x" * 50) for i in range(100_000)))
    with pytest.raises(vastdict.DiskFullError, match="no space left"):
        vastdict.build(target, tsv, progress=False)
    assert [p.name for p in small_fs.iterdir()] == ["f.vdf"]  # no work files
    f = vastdict.open(target)
    assert dict(f.items()) == old
    f.close()
    grow(small_fs, "64m")
    s = vastdict.build(target, tsv, progress=False)
    assert s["pairs"] == 100_000 and vastdict.open(target)[b"key00000007"] == b"x" * 50
