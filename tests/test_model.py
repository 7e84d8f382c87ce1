"""A hypothesis state machine: every operation sequence on a Store behaves
like the same sequence on a dict (with commits, rollbacks and reopens)."""

import shutil
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import vastdict

KEYS = st.binary(min_size=0, max_size=6) | st.sampled_from([b"a", b"b", b"c"])
VALUES = st.binary(max_size=40) | st.binary(min_size=300, max_size=3000)


class StoreMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.path = self.dir + "/s"
        # Tiny budget and segments: spills and segment rolls happen often.
        self.opts = {"memory_budget": "64KiB", "segment_size": "64KiB"}
        self.store = vastdict.open(self.path, "n", **self.opts)
        self.model = {}
        self.committed = {}

    def teardown(self):
        if not self.store.closed:
            self.store.close(commit=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(k=KEYS, v=VALUES)
    def put(self, k, v):
        self.store[k] = v
        self.model[k] = v

    @rule(k=KEYS)
    def get(self, k):
        assert self.store.get(k) == self.model.get(k)
        assert (k in self.store) == (k in self.model)

    @rule(k=KEYS)
    def delete(self, k):
        if k in self.model:
            del self.store[k]
            del self.model[k]
        else:
            try:
                del self.store[k]
            except KeyError:
                pass
            else:
                raise AssertionError("deleting a missing key must raise KeyError")

    @rule(pairs=st.dictionaries(KEYS, VALUES, max_size=30))
    def update(self, pairs):
        self.store.update(pairs)
        self.model.update(pairs)

    @rule(keys=st.lists(KEYS, max_size=20))
    def get_many(self, keys):
        assert self.store.get_many(keys) == [self.model.get(k) for k in keys]

    @rule()
    def commit(self):
        self.store.commit()
        self.committed = dict(self.model)

    @rule()
    def rollback(self):
        self.store.rollback()
        self.model = dict(self.committed)

    @rule()
    def close_and_reopen(self):
        self.store.close()
        self.committed = dict(self.model)
        self.store = vastdict.open(self.path, "w", **self.opts)

    @rule()
    def compact(self):
        self.store.compact()
        self.committed = dict(self.model)

    @precondition(lambda self: len(self.model) > 0)
    @rule()
    def reader_sees_last_commit(self):
        r = vastdict.open(self.path, "r")
        try:
            assert dict(r.items()) == self.committed
        finally:
            r.close()

    @invariant()
    def same_length(self):
        assert len(self.store) == len(self.model)

    @invariant()
    def same_items(self):
        assert dict(self.store.items()) == self.model


StoreMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestStoreMachine = StoreMachine.TestCase
