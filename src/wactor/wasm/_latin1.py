"""The host's side of big payloads: bytes <-> the adapter's text of them, with SIMD.

A wrapped guest takes its payload as the UTF-8 of ``payload.decode("latin-1")`` or as hex digits,
and answers a reply that way (see ``fastpath.wat``). CPython's codecs turn 64 KiB of bytes >= 0x80
into latin-1 text in ~100 µs and back in ~70 µs, one char at a time, and wasmtime checks text
with such chars as UTF-8 one char at a time too (~0.4 ns a byte, twice per call), which together
were most of what a 64 KiB request of binary data cost. So big payloads are converted by
``$Latin1``, the adapter's own core module, run on the host, into hex digits (ASCII, which every
copy and UTF-8 check takes in large steps) when 1/64 of the bytes or more are >= 0x80, else into
latin-1 text. A :class:`Converter` instantiates ``$Latin1`` on a memory of its own, in a store of
an engine without fuel or epochs (the code is ours, and its loops are bounded by their input), and
calls it through the C API directly.

A converter belongs to one thread (:func:`converter`); what it returns points into its memory
and stays valid until its next conversion. Payloads of at most :data:`LARGEST` bytes are
converted (its memory grows to ~3 times the biggest, and one grown beyond :data:`_KEEP` is
replaced the next time the thread asks for it); bigger ones, or a thread where the converter
cannot be made, use CPython's codecs.
"""

from __future__ import annotations

import ctypes
import functools
import struct
import threading
from ctypes import c_size_t, c_void_p

import wasmtime
import wasmtime._ffi as ffi

from wactor.wasm._fastpath import adapter_parts

__all__ = ["HEX", "LARGEST", "TEXT", "Converter", "converter"]

TEXT = 0
"""Payload encoding: the UTF-8 of the bytes' latin-1 text."""
HEX = 1
"""Payload encoding: two lowercase hex digits per byte."""

LARGEST = 16 << 20
"""The largest payload a converter converts."""
_IN = 0x1000  # where the input goes; below it, $Latin1's PACK table (at 0x40)
_SLACK = 64  # $Latin1 reads up to 17 bytes past a text and writes up to 16 past its output
_RESERVATION = 64 << 20  # address space of a converter's memory, which never moves
_KEEP = 4 << 20  # a converter whose memory grew beyond this is replaced when next asked for

_call = ffi.dll["wasmtime_func_call_unchecked"]
_call.argtypes = [c_void_p, c_void_p, c_void_p, c_size_t, c_void_p]
_call.restype = c_void_p
_RAW = struct.Struct("<i12xi12xi12x")  # three wasmtime_val_raw_t holding i32s
_I32 = struct.Struct("<i")
_FUNCS = ("high-count", "bytes-to-text", "bytes-to-hex", "text-to-bytes", "hex-to-bytes")


@functools.cache
def _module() -> tuple[wasmtime.Engine, wasmtime.Module]:
    config = wasmtime.Config()
    config.memory_reservation = _RESERVATION
    config.memory_guard_size = 1 << 16
    config.memory_reservation_for_growth = 0
    config.memory_may_move = False
    engine = wasmtime.Engine(config)
    return engine, wasmtime.Module(engine, adapter_parts().latin1)


class Converter:
    """``$Latin1`` instantiated on a memory of its own (one thread's; see the module docstring)."""

    __slots__ = (
        "_args", "_base", "_context", "_count", "_from_hex", "_from_text", "_funcs", "_hex",
        "_memory", "_size", "_store", "_text", "_trap",
    )  # fmt: skip

    def __init__(self) -> None:
        engine, module = _module()
        self._store = wasmtime.Store(engine)
        memory = wasmtime.Memory(self._store, wasmtime.MemoryType(wasmtime.Limits(1, None)))
        exports = wasmtime.Instance(self._store, module, [memory, memory]).exports(self._store)
        self._memory = memory
        self._context: int = ctypes.cast(self._store._context(), c_void_p).value or 0
        funcs = [exports[name] for name in _FUNCS]
        self._funcs = funcs  # keeps the function structs alive
        self._count, self._text, self._hex, self._from_text, self._from_hex = (
            ctypes.addressof(func._func)  # type: ignore[union-attr]
            for func in funcs
        )
        self._args = ctypes.create_string_buffer(_RAW.size)
        self._trap = c_void_p()
        self._base = self._size = 0
        self._refresh()

    def _refresh(self) -> None:
        store = self._store
        self._base = ctypes.cast(self._memory.data_ptr(store), c_void_p).value or 0
        self._size = self._memory.data_len(store)

    @property
    def size(self) -> int:
        """The size of its memory in bytes."""
        return self._size

    def _reserve(self, size: int) -> None:
        if size > self._size:
            self._memory.grow(self._store, (size - self._size + 0xFFFF) >> 16)
            self._refresh()

    def _run(self, func: int, *args: int) -> int:
        buffer, trap = self._args, self._trap
        _RAW.pack_into(buffer, 0, *args, *(0,) * (3 - len(args)))
        err = _call(self._context, func, buffer, 3, ctypes.addressof(trap))
        if err or trap.value:
            if trap.value:
                ffi.wasm_trap_delete(ctypes.cast(trap, ctypes.POINTER(ffi.wasm_trap_t)))
                trap.value = None
            else:
                wasmtime.WasmtimeError._from_ptr(
                    ctypes.cast(err, ctypes.POINTER(ffi.wasmtime_error_t))
                )
            raise ValueError("malformed text")
        value: int = _I32.unpack_from(buffer)[0]
        return value

    def encode(self, payload: bytes) -> tuple[int, int, int]:
        """``payload`` as text: its address, its length and its encoding (:data:`TEXT`, the UTF-8
        of ``payload.decode("latin-1")``, or :data:`HEX` when 1/64 of the bytes or more are
        >= 0x80, as ``fastpath.wat`` decides for replies)."""
        size = len(payload)
        out = _IN + ((size + _SLACK + 15) & ~15)
        self._reserve(out + 2 * size + _SLACK)
        ctypes.memmove(self._base + _IN, payload, size)
        high = self._run(self._count, _IN, size)
        if high and high >= size >> 6:
            return self._base + out, self._run(self._hex, _IN, size, out), HEX
        return self._base + out, self._run(self._text, _IN, size, out), TEXT

    def decode(self, address: int, size: int, encoding: int) -> bytes:
        """The bytes that the ``size`` bytes at ``address`` encode (as :meth:`encode` says).

        Raises :class:`ValueError` when they are not such text."""
        self._reserve(_IN + size + _SLACK)
        ctypes.memmove(self._base + _IN, address, size)
        func = self._from_hex if encoding == HEX else self._from_text
        try:
            return ctypes.string_at(self._base + _IN, self._run(func, _IN, size))
        except ValueError:
            what = "lowercase hex digits" if encoding == HEX else "the UTF-8 of latin-1 text"
            raise ValueError(f"not {what}") from None


class _Local(threading.local):
    converter: Converter | None = None
    failed: bool = False


_local = _Local()


def converter() -> Converter | None:
    """This thread's converter (made on first use), or None when it cannot be made.

    One that grew for a big payload is replaced by a fresh one (by then, what it returned is no
    longer needed), so a thread keeps at most :data:`_KEEP` bytes of converter memory between
    big payloads."""
    found = _local.converter
    if found is not None and found.size > _KEEP:
        found = None
    if found is None and not _local.failed:
        try:
            found = _local.converter = Converter()
        except (wasmtime.WasmtimeError, RuntimeError):
            _local.failed = True
    return found
