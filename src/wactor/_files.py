"""Reading a file the operator or a manifest named: a regular file, bounded, never blocking."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from wactor._units import format_size

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_WASM_BYTES",
    "open_regular_file",
    "read_bounded",
    "read_regular_file",
]

MAX_WASM_BYTES = 256 * 1024 * 1024
"""The largest component file read (a Python guest with its libraries is ~20-40 MiB)."""
MAX_KEY_BYTES = 64 * 1024
"""The largest key file read (an ed25519 key in any of its encodings is under 1 KiB)."""


@contextlib.contextmanager
def open_regular_file(path: Path, limit: int) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """Open the regular file at ``path`` for reading; yield it with its ``fstat``.

    A FIFO, a device (``/dev/zero``), a directory or a file past ``limit`` (a 2 GiB sparse
    file) raises ``OSError`` whose ``strerror`` says so in a few words, before anything is
    read: the file is opened without blocking and checked through that descriptor.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if st.st_size > limit:
            raise _too_big(path, limit)
        yield f, st


def read_bounded(f: BinaryIO, path: Path, limit: int) -> bytes:
    """Read the rest of ``f`` (opened by :func:`open_regular_file`), at most ``limit`` bytes."""
    data = f.read(limit + 1)
    if len(data) > limit:  # grew while being read
        raise _too_big(path, limit)
    return data


def read_regular_file(path: Path, limit: int) -> bytes:
    """Return the bytes of the regular file at ``path``, refusing more than ``limit`` of them
    (see :func:`open_regular_file`)."""
    with open_regular_file(path, limit) as (f, _):
        return read_bounded(f, path, limit)


def _too_big(path: Path, limit: int) -> OSError:
    return OSError(errno.EFBIG, f"larger than {format_size(limit)}", str(path))
