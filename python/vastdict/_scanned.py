"""Iteration, views and equality shared by the mappings that are read in
chunks from the engine (`Store`, `FrozenStore`)."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from typing import Any

_SCAN_CHUNK = 4096
KEYS, VALUES, ITEMS = 0, 1, 2


class Scanned:
    """Mixin over a native `_scan(cursor, what, n)`: iteration in chunks,
    `values()`/`items()` views, and `==` with any mapping."""

    def _scan_begin(self) -> object:
        """Called before iterating; its result goes to `_scan_check`."""
        return None

    def _scan_check(self, token: object) -> None:
        """Called after each chunk; raises if iteration cannot go on."""

    def _iterate(self, what: int) -> Iterator[Any]:
        token = self._scan_begin()
        cursor: tuple[int, int] | None = (0, 0)
        while cursor is not None:
            chunk, cursor = self._scan(cursor, what, _SCAN_CHUNK)  # type: ignore[attr-defined]
            self._scan_check(token)
            yield from chunk

    def __iter__(self) -> Iterator[Any]:
        return self._iterate(KEYS)

    def values(self) -> ValuesView[Any]:
        """A view of the values, read in chunks."""
        return _ValuesView(self)  # type: ignore[arg-type]

    def items(self) -> ItemsView[Any, Any]:
        """A view of the (key, value) pairs, read in chunks."""
        return _ItemsView(self)  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return len(self) == len(other) and dict(self.items()) == dict(other.items())  # type: ignore[arg-type]

    __hash__ = None  # type: ignore[assignment]


class _ValuesView(ValuesView):
    _mapping: Scanned

    def __iter__(self) -> Iterator[Any]:
        return self._mapping._iterate(VALUES)


class _ItemsView(ItemsView):
    _mapping: Scanned

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return self._mapping._iterate(ITEMS)
