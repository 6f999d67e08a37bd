"""Why a call died, in the user's words: a memory-limit hit told apart, the guest's own last error.

**Memory-limit hits.** wasmtime enforces the manifest's ``memory`` cap with its store limiter: a
``memory.grow`` past the cap returns -1 to the guest, which then usually traps (a WAT guest at its
``unreachable``, a Rust runtime in ``handle_alloc_error``, CPython with an uncaught
``MemoryError``). The C API builds that limiter without ``trap_on_grow_failure`` and has no
callback, so the refusal itself leaves no trace, and a custom memory creator (the only hook on
growth) would give up copy-on-write memory images for every instance. What the host *can* know
after the trap is how large each linear memory of the dead instance had grown: it enumerates the
store's core instances (:func:`linear_memory_sizes`) and reads their memories' sizes. A trap
counts as a memory-limit hit when one memory is within :func:`memory_headroom` of the cap (its
next ordinary grow is refused) or when the guest's own runtime reported running out of memory
on its stderr (one allocation larger than what is left fails without memory coming near the cap).
Anything else is the guest's own trap.

**The guest's last error line.** A componentize-py guest that raises prints the Python traceback
to stderr and then panics (``unreachable``); the interesting line is the exception, not the panic
boilerplate after it. Each instance keeps the last few KiB of its stderr (:class:`StderrTail`),
cleared at every call, and :meth:`StderrTail.last_error` picks the guest's own last line out of it.
"""

from __future__ import annotations

import ctypes
import re
from ctypes import byref

import wasmtime
import wasmtime._ffi as ffi

from wactor._units import format_size

__all__ = [
    "StderrTail",
    "instantiation_failure",
    "linear_memory_sizes",
    "memory_headroom",
    "reports_out_of_memory",
    "size_in_words",
]


def memory_headroom(cap: int) -> int:
    """A memory with less than this left below ``cap`` counts as full: 1 MiB or 1/16 of the cap.

    Allocators grow memory in steps of about what they were asked for (16 wasm pages for a
    1 MiB block), so a guest whose next grow was refused has less than one step left. Never
    more than a quarter of the cap, so that under a tiny cap a small guest's trap stays a trap.
    """
    return min(max(1 << 20, cap // 16), cap // 4)


_TAIL_BYTES = 4096
_LINE_CHARS = 200

# What componentize-py (and Rust's default panic hook) print around the guest's own error; a
# traceback's frame lines are not the error either.
_BOILERPLATE = re.compile(
    r"^(thread '.*' (\(\d+\) )?panicked at .*"
    r"|Python function threw an unexpected exception"
    r"|note: run with `RUST_BACKTRACE=1`.*"
    r"|lost sys\.std(err|out)"
    r"|Traceback \(most recent call last\):"
    r"|File \".*\", line \d+.*"
    r"|object (address|refcount|type|type name) *:.*)$"
)
# CPython dumps an exception it cannot print (no memory left) as ``object repr : MemoryError()``.
_DUMPED = re.compile(r"^object repr *: *")
# A Python exception line: ``ModuleNotFoundError: No module named 'x'``, ``MemoryError()``.
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b(\(\))?(: .*)?$")
_OUT_OF_MEMORY = re.compile(r"^(MemoryError\b|memory allocation of \d+ bytes failed)")
_MINIMUM_TOO_LARGE = re.compile(r"memory minimum size of (\d+) pages exceeds memory limits")
_PAGE = 64 * 1024


class StderrTail:
    """The last few KiB a guest wrote to stderr since :meth:`clear`, however much it writes."""

    __slots__ = ("_data", "_limit")

    def __init__(self, limit: int = _TAIL_BYTES) -> None:
        self._limit = limit
        self._data = bytearray()

    def write(self, data: bytes) -> None:
        """Keep ``data``, dropping the oldest bytes past the limit."""
        buf = self._data
        buf += data[-self._limit :]
        if len(buf) > self._limit:
            del buf[: len(buf) - self._limit]

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        """Forget what was written (a new call starts)."""
        self._data.clear()

    def last_error(self) -> str | None:
        """The guest's own last error line: its last exception line, else its last line."""
        text = self._data.decode("utf-8", "replace")
        lines = [_DUMPED.sub("", ln.strip()) for ln in text.splitlines()]
        lines = [ln for ln in lines if ln and not _BOILERPLATE.match(ln)]
        if not lines:
            return None
        exceptions = [ln for ln in lines if _EXCEPTION.match(ln)]
        line = (exceptions or lines)[-1]
        if line.endswith("()") and _EXCEPTION.match(line):
            line = line[:-2]  # "MemoryError()", as CPython dumps an exception it cannot format
        # the guest's text, shown on the operator's terminal: no control or format characters
        line = "".join(ch if ch.isprintable() else "?" for ch in line)
        return line if len(line) <= _LINE_CHARS else line[: _LINE_CHARS - 1] + "…"


def reports_out_of_memory(line: str | None) -> bool:
    """Whether the guest's last error line says its allocator found no memory."""
    return line is not None and _OUT_OF_MEMORY.match(line) is not None


def linear_memory_sizes(store: wasmtime.Store) -> list[int] | None:
    """The byte size of the linear memories in ``store``; ``None`` if they cannot be read.

    The component API hides the core instances of a component, but they live in the store, which
    numbers its instances from 0. A host memory made now (zero pages) gets the next number, so
    every number below it names an instance of this store, and their exports name their
    memories. An instance's memory is found under the conventional export name ``memory`` (what
    toolchains and wit-component use); an instance without one is searched export by export when
    it has few exports (the C API lists exports one index at a time, each from the start, so a
    module exporting thousands of functions is not walked). Meant for a store whose instance has
    trapped and is about to be discarded.

    The handles are built from wasmtime 50's C layout (store id, instance number), which is why
    ``pyproject.toml`` pins ``wasmtime<51``; ``tests/host/test_faults.py`` exercises it.
    """
    try:
        marker = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(0, 0)))
    except wasmtime.WasmtimeError:
        return None  # e.g. the store's `memories` limit is reached
    # the marker's handle is the only place the store's numbering shows
    handle = marker._memory
    store_id = handle._anon_1.store_id
    count: int = getattr(handle._anon_1, "__private1")  # a ctypes field the class would mangle
    context = store._context()
    sizes: list[int] = []
    item = ffi.wasmtime_extern_t()
    for number in range(count):
        instance = ffi.wasmtime_instance_t(store_id, number)
        if ffi.wasmtime_instance_export_get(
            context, byref(instance), _MEMORY_NAME, len(_MEMORY_NAME), byref(item)
        ):
            _read_memory(context, item, sizes)
            continue
        for index in range(_WALKED_EXPORTS):
            if not _export_nth(context, instance, index, item):
                break
            _read_memory(context, item, sizes)
    return sizes


_MEMORY_NAME = ctypes.create_string_buffer(b"memory", 6)
_WALKED_EXPORTS = 32


def _export_nth(
    context: object, instance: ffi.wasmtime_instance_t, index: int, item: ffi.wasmtime_extern_t
) -> bool:
    name = ctypes.POINTER(ctypes.c_char)()
    name_len = ctypes.c_size_t()
    found: bool = ffi.wasmtime_instance_export_nth(
        context, byref(instance), index, byref(name), byref(name_len), byref(item)
    )
    return found


def _read_memory(context: object, item: ffi.wasmtime_extern_t, sizes: list[int]) -> None:
    kind = int(item.kind)  # a c_uint8 field reads as int; the stubs say c_ubyte
    if kind == ffi.WASMTIME_EXTERN_MEMORY.value:
        sizes.append(ffi.wasmtime_memory_data_size(context, byref(item.of.memory)))
    elif kind == ffi.WASMTIME_EXTERN_SHAREDMEMORY.value:
        ffi.wasmtime_extern_delete(byref(item))  # owned by us; never the cap: threads are off


def size_in_words(size: int) -> str:
    """``64 MiB``, ``1536 B``: a byte count as the manifest would say it, spaced for reading."""
    return re.sub(r"(\d)([KMGT]?i?B)$", r"\1 \2", format_size(size))


def instantiation_failure(reason: str, memory_bytes: int) -> str:
    """wasmtime's reason, or, for a memory cap below what the guest starts with, the manifest's."""
    match = _MINIMUM_TOO_LARGE.search(reason)
    if match is None:
        return reason
    needed = int(match[1]) * _PAGE
    return (
        f"the guest starts with {needed / (1 << 20):.1f} MiB of linear memory, more than its "
        f"memory limit of {size_in_words(memory_bytes)}"
    )
