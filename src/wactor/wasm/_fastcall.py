"""Call a wrapped guest's fast ``handle-message``/``handle-callback`` with prebuilt C values.

The fast interface (:data:`~wactor.wasm._fastpath.FAST_INTERFACE`, contract at the top of
``fastpath.wat``) takes strings and scalars only::

    handle-message(payload: string, metadata: string, timestamp: u64,
                   sender-namespace: u32, sender-name: u32, sender-instance: u32,
                   reply-to-namespace: u32, reply-to-name: u32, reply-to-instance: u32,
                   correlation-id: u32, content-type: u32, payload-encoding: u32) -> string

so one call is 12 ``wasmtime_component_val_t`` (32 bytes each), packed here by one
``struct.pack`` into one buffer instead of being built field by field through ctypes. The C API
borrows its arguments (it copies every string into a Rust value before the call), so a string's
C value points straight into the Python ``bytes`` that hold its UTF-8 (or into this thread's
:class:`~wactor.wasm._latin1.Converter`): nothing is allocated in C to pass it and nothing has to
be freed after. The metadata's ids are encoded once per distinct sender / reply-to (a component
mostly hears from the same few) and reused.

The payload crosses as it is when it is ASCII; else as the UTF-8 of its latin-1 text (CPython's
codecs below :data:`_CONVERT_FROM` bytes), or from there on as the converter makes it: that
text, or hex digits when many bytes are >= 0x80 (``payload-encoding`` 1).

The answer is one string, a tag char and text (``n``: ok(none); ``a``, ``s``, ``x``:
ok(some(reply)) as its bytes, its latin-1 text or its hex digits; ``0``-``6``: the guest's ``err``
of that ``wasm-error`` case), read straight from the result's C value and freed at once; a big
reply is converted where wasmtime left it.
"""

from __future__ import annotations

import binascii
import ctypes
import struct
from ctypes import c_size_t, c_uint8, c_void_p

import wasmtime
import wasmtime._ffi as ffi
from wasmtime import WasmtimeError

from wactor._ids import ComponentId
from wactor.errors import ComponentError, GuestError, InvalidMessageError
from wactor.messaging._envelope import Envelope
from wactor.wasm._calling import HostFuncError, last_host_exception
from wactor.wasm._latin1 import HEX, LARGEST, TEXT, converter

__all__ = ["FAST_PARAMS", "NONE", "WASM_ERROR_CASES", "FastExport", "FastMessages"]

NONE = 0xFFFF_FFFF
"""The length that stands for an absent option (reply-to, correlation-id, content-type)."""
FAST_PARAMS = 12
"""How many params a fast export takes."""
WASM_ERROR_CASES = (
    "component-not-found",
    "instantiation-failed",
    "export-not-found",
    "timeout",
    "resource-limit-exceeded",
    "invalid-component",
    "runtime-error",
)
"""The cases of ``wasm-error``, in WIT order: an ``err`` answer's tag is its index."""
_TIMEOUT = WASM_ERROR_CASES.index("timeout")

_STRING = ffi.WASMTIME_COMPONENT_STRING.value
_U64 = ffi.WASMTIME_COMPONENT_U64.value
_U32 = ffi.WASMTIME_COMPONENT_U32.value
_VAL = ffi.wasmtime_component_val_t
# One wasmtime_component_val_t: kind (u8) at 0, the value at 8 (a string: size_t size, then
# char* data), 32 bytes in all. The fast params: 2 strings, a u64, 8 u32.
_OF: int = _VAL.of.offset
_STRING_VAL = f"B{_OF - 1}xQQ{ctypes.sizeof(_VAL) - _OF - 16}x"
_U64_VAL = f"B{_OF - 1}xQ{ctypes.sizeof(_VAL) - _OF - 8}x"
_U32_VAL = f"B{_OF - 1}xI{ctypes.sizeof(_VAL) - _OF - 4}x"
_ARGS = struct.Struct("<" + _STRING_VAL * 2 + _U64_VAL + _U32_VAL * 9)
assert _ARGS.size == FAST_PARAMS * ctypes.sizeof(_VAL)
assert ffi.wasm_byte_vec_t.data.offset == 8  # type: ignore[attr-defined]

_probe = b"wactor"
_BYTES_DATA = (ctypes.cast(_probe, c_void_p).value or 0) - id(_probe)  # type: ignore[arg-type]
"""Where a ``bytes`` object keeps its data, from the object's address (CPython's layout, found
by asking ctypes once): ``id(b) + _BYTES_DATA`` is what ``ctypes.cast(b, c_void_p)`` gives, at
a tenth of its cost."""

# Our own prototypes (item access gives fresh function objects: the binding's stay untouched):
# plain addresses in, no Python wrapper around the call.
_func_call = ffi.dll["wasmtime_component_func_call"]
_func_call.argtypes = [c_void_p, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t]
_func_call.restype = c_void_p
_val_delete = ffi.dll["wasmtime_component_val_delete"]
_val_delete.argtypes = [c_void_p]
_val_delete.restype = None

_CONVERT_FROM = 8 << 10
"""Payloads and replies with bytes >= 0x80 from this size on are converted by a
:class:`~wactor.wasm._latin1.Converter` (below it, CPython's codecs are faster)."""
_TAG_SOME = ord("s")
_TAG_ASCII = ord("a")
_TAG_HEX = ord("x")
_REPLY_ENCODINGS = {_TAG_SOME: TEXT, _TAG_HEX: HEX}
_TAG_NONE = ord("n")
_TAG_ERR = ord("0")


def _id_text(cid: ComponentId) -> tuple[bytes, int, int, int]:
    """The UTF-8 of a component id's three strings, one after the other, and their lengths."""
    namespace = cid.namespace.encode()
    name = cid.name.encode()
    instance = cid.instance.encode()
    return namespace + name + instance, len(namespace), len(name), len(instance)


class FastMessages:
    """What the two fast exports of one instance share: the Store's context, the encoded ids.

    ``ids(sender, reply_to)`` gives the metadata's leading text (the sender's strings, then
    reply-to's) and the six length params; they are encoded once per distinct id and reused as
    they are while the same id objects come in a row: a component mostly hears from the same few
    senders, and a request's reply-to is its sender.
    """

    __slots__ = ("_by_id", "_ids", "_reply_to", "_sender", "context", "label")

    _MAX_IDS = 256  # distinct ids kept encoded; the table starts over past this

    def __init__(self, store: wasmtime.Store, label: str) -> None:
        self.context: int = ctypes.cast(store._context(), c_void_p).value or 0
        self.label = label
        self._by_id: dict[ComponentId, tuple[bytes, int, int, int]] = {}
        self._sender: ComponentId | None = None
        self._reply_to: ComponentId | None = None
        self._ids: tuple[bytes, int, int, int, int, int, int] = (b"", 0, 0, 0, NONE, 0, 0)

    def ids(
        self, sender: ComponentId, reply_to: ComponentId | None
    ) -> tuple[bytes, int, int, int, int, int, int]:
        """The encoded sender and reply-to: text, then the six lengths."""
        if sender is self._sender and reply_to is self._reply_to:
            return self._ids
        s_text, s1, s2, s3 = self._encoded(sender)
        if reply_to is None:
            ids = (s_text, s1, s2, s3, NONE, 0, 0)
        else:
            r_text, r1, r2, r3 = self._encoded(reply_to)
            ids = (s_text + r_text, s1, s2, s3, r1, r2, r3)
        self._sender, self._reply_to, self._ids = sender, reply_to, ids
        return ids

    def _encoded(self, cid: ComponentId) -> tuple[bytes, int, int, int]:
        encoded = self._by_id.get(cid)
        if encoded is None:
            if len(self._by_id) >= self._MAX_IDS:
                self._by_id.clear()
            encoded = self._by_id[cid] = _id_text(cid)
        return encoded


class FastExport:
    """One fast export of one instance: ``export(store, envelope)`` delivers the message.

    Returns the reply's bytes, or ``None`` (``ok(none)``, or the ``ok`` of a callback); raises
    :class:`~wactor.errors.GuestError` when the guest answers ``err``, and what a call of
    :class:`~wactor.wasm._calling.ExportFunc` raises when the call fails (a trap, a host
    function's exception). Calls must not overlap (the instance serializes them).
    """

    __slots__ = ("_data", "_func", "_func_ref", "_kind", "_messages", "_result", "_size", "name")

    def __init__(self, func: wasmtime.component.Func, name: str, messages: FastMessages) -> None:
        self._func_ref = func  # keeps the function (and its C struct) alive
        self._func = ctypes.addressof(func._func)
        self._messages = messages
        self.name = name
        # One result value, reused: freed after every call and reset to a kind that owns nothing
        # (the C API assigns into it, which drops whatever the slot held).
        self._result = _VAL()
        at = ctypes.addressof(self._result)
        self._kind = c_uint8.from_address(at)
        self._size = c_size_t.from_address(at + _OF)
        self._data = c_void_p.from_address(at + _OF + 8)

    def __call__(self, store: wasmtime.Store, env: Envelope) -> bytes | None:
        """Deliver ``env`` (``store`` is the instance's own, whose context is cached)."""
        messages = self._messages
        payload = env.payload
        if type(payload) is not bytes:
            payload = bytes(payload)
        # The payload as latin-1 text in UTF-8: ASCII bytes are their own text; a big payload's
        # text is made by this thread's converter, in its memory (valid until its next use).
        size = len(payload)
        encoding = TEXT
        if payload.isascii():
            text = payload
        elif _CONVERT_FROM <= size <= LARGEST and (latin1 := converter()) is not None:
            text = None
            at, size, encoding = latin1.encode(payload)
        else:
            text = payload.decode("latin-1").encode()
            size = len(text)
        if text is not None:
            at = id(text) + _BYTES_DATA
        ids, s1, s2, s3, r1, r2, r3 = messages.ids(env.sender, env.reply_to)
        correlation_id = env.correlation_id
        content_type = env.content_type
        if correlation_id is None:
            c_len = NONE
        else:
            correlation = correlation_id.encode()
            c_len = len(correlation)
            ids += correlation
        if content_type is None:
            t_len = NONE
        else:
            content = content_type.encode()
            t_len = len(content)
            ids += content
        try:
            args = _ARGS.pack(
                _STRING, size, at,
                _STRING, len(ids), id(ids) + _BYTES_DATA,
                _U64, env.timestamp_ns,
                _U32, s1, _U32, s2, _U32, s3, _U32, r1, _U32, r2, _U32, r3,
                _U32, c_len, _U32, t_len, _U32, encoding,
            )  # fmt: skip
        except struct.error as exc:
            raise self._bad_message(env) from exc
        # ``text`` and ``ids`` are alive until the call returns (the C values point into them),
        # which copies them before anything else can run on this thread.
        err = _func_call(
            self._func, messages.context, args, FAST_PARAMS, ctypes.addressof(self._result), 1
        )
        if err:
            failure = WasmtimeError._from_ptr(
                ctypes.cast(err, ctypes.POINTER(ffi.wasmtime_error_t))
            )
            host_exc = last_host_exception()
            if host_exc is not None:
                raise HostFuncError(str(failure), host_exc) from host_exc
            raise failure
        return self._answer()

    def _answer(self) -> bytes | None:
        """Read (and free) the call's answer: the reply, or None; raise the guest's ``err``."""
        if self._kind.value != _STRING:
            self._free()
            label = self._messages.label
            raise ComponentError(f"{label}: {self.name} answered no string", component=label)
        data, size = self._data.value or 0, self._size.value
        try:
            if size > _CONVERT_FROM:  # a big reply: read its bytes (or text) where they are
                tag = c_uint8.from_address(data).value
                encoding = _REPLY_ENCODINGS.get(tag)
                if tag == _TAG_ASCII:
                    return ctypes.string_at(data + 1, size - 1)
                if encoding is not None and (latin1 := converter()) is not None:
                    return latin1.decode(data + 1, size - 1, encoding)
            answer = ctypes.string_at(data, size)
        finally:
            self._free()
        return self._read(answer)

    def _free(self) -> None:
        _val_delete(ctypes.addressof(self._result))
        self._kind.value = 0  # a bool: owns nothing, so the next call may overwrite it

    def _read(self, answer: bytes) -> bytes | None:
        """The reply in ``answer`` (see the module docstring); raise the guest's ``err``."""
        tag = answer[0] if answer else -1
        if tag == _TAG_ASCII:
            return answer[1:]
        if tag == _TAG_SOME:
            return answer[1:].decode().encode("latin-1")
        if tag == _TAG_HEX:
            return binascii.a2b_hex(memoryview(answer)[1:])
        if tag == _TAG_NONE:
            return None
        case = tag - _TAG_ERR
        label = self._messages.label
        if not 0 <= case < len(WASM_ERROR_CASES):
            raise ComponentError(
                f"{label}: {self.name} answered {answer[:16]!r}, which is no answer",
                component=label,
            )
        detail = None if case == _TIMEOUT else answer[1:].decode()
        raise GuestError(WASM_ERROR_CASES[case], detail, component=label)

    def _bad_message(self, env: Envelope) -> InvalidMessageError:
        stamp = env.timestamp_ns
        label = self._messages.label
        if not 0 <= stamp < 1 << 64:
            return InvalidMessageError(
                f"{label}: message timestamp {stamp} is not a u64 count of nanoseconds"
            )
        return InvalidMessageError(f"{label}: a string of the message is 4 GiB or longer")
