"""The exception tree. Every error vastdict raises on purpose is a `vastdict.Error`.

Several also derive from the built-in exception a caller would expect
(`ClosedError` is a `ValueError`, like I/O on a closed file;
`StoreNotFoundError` is a `FileNotFoundError`), so existing handlers keep working.
"""

from __future__ import annotations


class Error(Exception):
    """Base class of every vastdict error."""


class CorruptionError(Error):
    """Bytes on disk do not match the format: a damaged or truncated file.

    Attributes:
        path: the damaged file (or the store directory).
        offset: byte offset of the damage inside ``path``.
    """

    def __init__(self, message: str, path: str | None = None, offset: int | None = None):
        super().__init__(message)
        self.path = path
        self.offset = offset


class LockedError(Error):
    """Another process (or another handle) holds the store open for writing."""


class ReadOnlyError(Error):
    """A write through a handle opened with ``flag="r"``."""


class ClosedError(Error, ValueError):
    """An operation on a closed store."""


class StoreNotFoundError(Error, FileNotFoundError):
    """``flag="r"`` or ``"w"`` on a path that holds no store."""


class FormatError(Error, ValueError):
    """Not a vastdict store, a newer format version, or a codec that differs from the stored one."""


class InvalidError(Error, ValueError):
    """A request the store cannot carry out (a key or value over 256 MiB, for instance)."""


class InputError(Error, ValueError):
    """A line of a build's input file cannot be read as a pair.

    ``path`` and ``line`` (1-based) say where. Fix the line, or build with
    ``errors="skip"`` to skip and count bad lines.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        super().__init__(message)
        self.path = path
        self.line = line


class DiskFullError(Error, OSError):
    """The disk is full. Committed data is intact; free space and commit again."""


class StorageIOError(Error, OSError):
    """Any other operating-system error, with the file it happened on."""


class ForkedWriterError(Error):
    """A writable handle was used in a child process after ``fork()``."""


__all__ = [
    "ClosedError",
    "CorruptionError",
    "DiskFullError",
    "Error",
    "ForkedWriterError",
    "FormatError",
    "InvalidError",
    "LockedError",
    "ReadOnlyError",
    "StorageIOError",
    "StoreNotFoundError",
]
