"""``list<u8>`` values for the C API: written and read in place, one C value per byte.

Every byte value, the sizes around nothing and a large body, and every buffer a host function
may hand back (``bytes``, ``bytearray``, a ``memoryview`` of bytes or of wider items) cross
unchanged.
"""

from __future__ import annotations

import array
import ctypes

import pytest
from wasmtime import _ffi as ffi

from wactor.wasm._calling import lift_bytes, lower_bytes

ALL_BYTES = bytes(range(256))


def _round_trip(value: bytes | bytearray | memoryview) -> bytes:
    dst = ffi.wasmtime_component_val_t()
    lower_bytes(value, dst)
    try:
        assert dst.of.list.size == memoryview(value).nbytes
        return lift_bytes(dst)
    finally:
        ffi.wasmtime_component_val_delete(ctypes.byref(dst))


@pytest.mark.parametrize("size", [0, 1, 16, 255, 4096, 1 << 20])
def test_every_size_and_byte_value_crosses_unchanged(size: int) -> None:
    value = (ALL_BYTES * (size // 256 + 1))[:size]
    assert _round_trip(value) == value
    assert _round_trip(bytearray(value)) == value
    assert _round_trip(memoryview(value)) == value


def test_a_view_of_wider_items_or_a_slice_crosses_as_its_bytes() -> None:
    words = array.array("I", range(1000))
    assert _round_trip(memoryview(words)) == words.tobytes()
    strided = memoryview(ALL_BYTES)[::3]
    assert _round_trip(strided) == ALL_BYTES[::3]


def test_anything_else_is_refused() -> None:
    with pytest.raises(TypeError, match="expected bytes, got str"):
        lower_bytes("text", ffi.wasmtime_component_val_t())  # type: ignore[arg-type]
