"""Several processes on one store: readers in forked and spawned processes,
one writer at a time across processes."""

import multiprocessing as mp
import os

import pytest

import vastdict


def read_all(path, keys):
    s = vastdict.open(path, "r")
    try:
        return [s[k] for k in keys]
    finally:
        s.close()


def try_to_write(path, q):
    try:
        vastdict.open(path, "w")
    except vastdict.LockedError:
        q.put("locked")
    else:
        q.put("opened")


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_readers_in_other_processes(path, method):
    data = {b"k%05d" % i: b"v%d" % i for i in range(5000)}
    with vastdict.open(path, "n") as s:
        s.update(data)
    keys = list(data)
    ctx = mp.get_context(method)
    with ctx.Pool(4) as pool:
        results = pool.starmap(read_all, [(str(path), keys[i::4]) for i in range(4)])
    for i, got in enumerate(results):
        assert got == [data[k] for k in keys[i::4]]


def test_writer_lock_holds_across_processes(path):
    w = vastdict.open(path, "n")
    q = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=try_to_write, args=(str(path), q))
    p.start()
    p.join(30)
    assert q.get(timeout=5) == "locked"
    w.close()
    p = mp.get_context("spawn").Process(target=try_to_write, args=(str(path), q))
    p.start()
    p.join(30)
    assert q.get(timeout=5) == "opened"


def test_forked_child_cannot_use_parents_writer(path):
    w = vastdict.open(path, "n")
    w[b"k"] = b"parent"
    w.commit()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            w[b"k"] = b"child"
        except vastdict.ForkedWriterError:
            code = 0
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    w[b"k2"] = b"still mine"
    w.commit()
    assert w[b"k"] == b"parent"
    w.close()


def test_reader_process_follows_commits_with_refresh(path):
    w = vastdict.open(path, "n")
    w[b"n"] = b"0"
    w.commit()
    parent, child = mp.get_context("fork").Pipe()

    def reader(conn):
        r = vastdict.open(path, "r")
        conn.send(r[b"n"])
        conn.recv()  # wait for the next commit
        conn.send(r[b"n"])
        r.refresh()
        conn.send(r[b"n"])

    p = mp.get_context("fork").Process(target=reader, args=(child,))
    p.start()
    assert parent.recv() == b"0"
    w[b"n"] = b"1"
    w.commit()
    parent.send("go")
    assert parent.recv() == b"0"  # still its snapshot
    assert parent.recv() == b"1"  # after refresh
    p.join(30)
    w.close()
