"""Parsing sizes such as ``"1GiB"`` or ``"512 MB"``."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}


def parse_size(size: int | str) -> int:
    """Return ``size`` in bytes.

    >>> parse_size("1GiB")
    1073741824
    >>> parse_size("64 MB")
    64000000
    >>> parse_size(4096)
    4096
    """
    if isinstance(size, bool):
        raise TypeError("a size must be an int or a string such as '1GiB'")
    if isinstance(size, int):
        if size < 0:
            raise ValueError(f"a size cannot be negative: {size}")
        return size
    if not isinstance(size, str):
        kind = type(size).__name__
        raise TypeError(f"a size must be an int or a string such as '1GiB', not {kind}")
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", size)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"cannot read {size!r} as a size; write it as '1GiB', '512MB' or 1048576")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
