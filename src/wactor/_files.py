"""Reading a file the operator or a manifest named: a regular file, bounded, never blocking."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from wactor._units import format_size

__all__ = ["MAX_KEY_BYTES", "MAX_WASM_BYTES", "read_regular_file"]

MAX_WASM_BYTES = 256 * 1024 * 1024
"""The largest component file read (a Python guest with its libraries is ~20-40 MiB)."""
MAX_KEY_BYTES = 64 * 1024
"""The largest key file read (an ed25519 key in any of its encodings is under 1 KiB)."""


def read_regular_file(path: Path, limit: int) -> bytes:
    """Return the bytes of the regular file at ``path``, refusing more than ``limit`` of them.

    A FIFO, a device (``/dev/zero``), a directory or a file past ``limit`` (a 2 GiB sparse
    file) raises ``OSError`` whose ``strerror`` says so in a few words, before anything big is
    read: the file is opened without blocking and checked through that descriptor.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        too_big = OSError(errno.EFBIG, f"larger than {format_size(limit)}", str(path))
        if st.st_size > limit:
            raise too_big
        data = f.read(limit + 1)
    if len(data) > limit:  # grew while being read
        raise too_big
    return data
