"""Give the memory of stopped components back to the operating system.

A stopped component's linear memory is unmapped with its Store, but the rest (wasmtime's
instance data, Python objects) goes back to the C allocator, and glibc keeps freed memory in
its arenas (one per worker thread) instead of returning it. Measured with 200 Python guests:
about 6 % of what they added stayed resident after all were stopped, until ``malloc_trim``.
Elsewhere (musl, macOS) there is no such call and nothing is done.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

__all__ = ["trim_heap"]


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_malloc_trim = _find_malloc_trim()


def trim_heap() -> None:
    """Return the allocator's free memory to the OS where the C library can (a few ms)."""
    if _malloc_trim is not None:
        _malloc_trim(0)
