"""The calling layer: component values between Python and wasmtime, fast.

wasmtime-py's stock conversion re-reads every type through the FFI on every call and turns a
``list<u8>`` into one C value per byte through Python code. Here each type is compiled once into a
pair of closures (lower: Python → C value, lift: C value → Python), byte lists move through strided
buffer copies done in C, export calls reuse their compiled signature, and host functions are
registered through our own trampoline that reuses compiled converters too.

Python representations match the stock binding (so both can be compared), with one exception:
``result`` is always a tagged ``Variant("ok" | "err", payload)``, never the stock untagged guess.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from ctypes import byref
from dataclasses import dataclass
from typing import Any

import wasmtime
import wasmtime._ffi as ffi
from wasmtime import WasmtimeError
from wasmtime.component import Record, Variant
from wasmtime.component import _types as ctypes_mod

__all__ = [
    "ExportFunc",
    "HostFuncError",
    "add_host_func",
    "compile_type",
    "last_host_exception",
]

_VAL = ffi.wasmtime_component_val_t
_VAL_SIZE = ctypes.sizeof(_VAL)
_PAYLOAD_OFFSET = _VAL.of.offset
_U8_KIND = ffi.WASMTIME_COMPONENT_U8.value
# Our own prototype of wasm_byte_vec_new taking a plain char* (item access makes a fresh
# function object, so the binding's own prototype is left untouched).
_byte_vec_new = ffi.dll["wasm_byte_vec_new"]
_byte_vec_new.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
_byte_vec_new.restype = None
_val_new = ffi.wasmtime_component_val_new

Lower = Callable[[Any, Any], None]  # (python value, C val_t to fill in place)
Lift = Callable[[Any], Any]  # (C val_t) -> python value


@dataclass(frozen=True, slots=True)
class Converter:
    """A compiled pair of conversions for one component value type."""

    lower: Lower
    lift: Lift


def _name_vec(name: str) -> Callable[[], Any]:
    encoded = name.encode("utf-8")

    def make() -> Any:
        vec = ffi.wasm_byte_vec_t()
        _byte_vec_new(byref(vec), len(encoded), encoded)
        return vec

    return make


def _read_vec(vec: Any) -> bytes:
    return ctypes.string_at(vec.data, vec.size) if vec.size else b""


def _scalar(kind: Any, field: str, check: type) -> Converter:
    kind_value = kind.value

    def lower(val: Any, dst: Any) -> None:
        if not isinstance(val, check):
            raise TypeError(f"expected {check.__name__}, got {type(val).__name__}")
        dst.kind = kind_value
        setattr(dst.of, field, val)

    def lift(src: Any) -> Any:
        return check(getattr(src.of, field))

    return Converter(lower, lift)


def _text(kind_enum: Any, field: str, what: str) -> Converter:
    """A converter for a value carried as UTF-8 bytes: ``string`` or an ``enum`` case name."""
    kind = kind_enum.value

    def lower(val: Any, dst: Any) -> None:
        if not isinstance(val, str):
            raise TypeError(f"expected {what}, got {type(val).__name__}")
        data = val.encode("utf-8")
        dst.kind = kind
        _byte_vec_new(byref(getattr(dst.of, field)), len(data), data)

    def lift(src: Any) -> Any:
        return _read_vec(getattr(src.of, field)).decode("utf-8")

    return Converter(lower, lift)


def _vals_memory(lst: Any, n: int) -> memoryview:
    """The bytes of a C vector of ``n`` component values, in place (no copy)."""
    raw = (ctypes.c_char * (n * _VAL_SIZE)).from_address(ctypes.addressof(lst.data.contents))
    return memoryview(raw).cast("B")


def lower_bytes(val: bytes | bytearray | memoryview, dst: Any) -> None:
    """Fill ``dst`` with a ``list<u8>`` of ``val``: two strided writes straight into the C
    vector (one C value per byte is what the C API wants), not a Python loop."""
    if not isinstance(val, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes, got {type(val).__name__}")
    if isinstance(val, memoryview) and (val.format != "B" or val.ndim != 1):
        val = val.tobytes()  # a strided write takes a flat view of bytes only
    n = len(val)
    dst.kind = ffi.WASMTIME_COMPONENT_LIST.value
    lst = dst.of.list
    ffi.wasmtime_component_vallist_new_uninit(byref(lst), n)
    if n == 0:
        return
    vals = _vals_memory(lst, n)
    vals[0::_VAL_SIZE] = bytes((_U8_KIND,)) * n
    vals[_PAYLOAD_OFFSET::_VAL_SIZE] = val


def lift_bytes(src: Any) -> bytes:
    """Read a ``list<u8>`` C value into ``bytes`` with one strided slice of the C vector."""
    lst = src.of.list
    n = lst.size
    if n == 0:
        return b""
    return _vals_memory(lst, n)[_PAYLOAD_OFFSET::_VAL_SIZE].tobytes()


def _move_into(new_uninit: Callable[..., None], vec: Any, items: Any, n: int) -> None:
    """Move ``n`` built C values into a fresh C vector (a bitwise move: ``items`` gives up
    ownership and must not be deleted afterwards)."""
    new_uninit(byref(vec), n)
    if n:
        ctypes.memmove(vec.data, items, ctypes.sizeof(items))


def _list(element: Converter) -> Converter:
    kind = ffi.WASMTIME_COMPONENT_LIST.value

    def lower(val: Any, dst: Any) -> None:
        if not isinstance(val, list | tuple):
            raise TypeError(f"expected list, got {type(val).__name__}")
        n = len(val)
        tmp = (_VAL * n)()
        done = 0
        try:
            for i, item in enumerate(val):
                element.lower(item, tmp[i])
                done += 1
        except BaseException:
            for i in range(done):
                ffi.wasmtime_component_val_delete(byref(tmp[i]))
            raise
        dst.kind = kind
        _move_into(ffi.wasmtime_component_vallist_new_uninit, dst.of.list, tmp, n)

    def lift(src: Any) -> Any:
        lst = src.of.list
        data = lst.data
        return [element.lift(data[i]) for i in range(lst.size)]

    return Converter(lower, lift)


def _tuple(elements: list[Converter]) -> Converter:
    kind = ffi.WASMTIME_COMPONENT_TUPLE.value
    count = len(elements)

    def lower(val: Any, dst: Any) -> None:
        if not isinstance(val, tuple) or len(val) != count:
            raise TypeError(f"expected tuple of {count}")
        tmp = (_VAL * count)()
        for i, (conv, item) in enumerate(zip(elements, val, strict=True)):
            conv.lower(item, tmp[i])
        dst.kind = kind
        _move_into(ffi.wasmtime_component_valtuple_new_uninit, dst.of.tuple, tmp, count)

    def lift(src: Any) -> Any:
        data = src.of.tuple.data
        return tuple(conv.lift(data[i]) for i, conv in enumerate(elements))

    return Converter(lower, lift)


def _record(fields: list[tuple[str, Converter]]) -> Converter:
    kind = ffi.WASMTIME_COMPONENT_RECORD.value
    count = len(fields)
    name_makers = [_name_vec(name) for name, _ in fields]
    entry = ffi.wasmtime_component_valrecord_entry_t

    def lower(val: Any, dst: Any) -> None:
        tmp = (entry * count)()
        for i, (name, conv) in enumerate(fields):
            conv.lower(getattr(val, name), tmp[i].val)
            tmp[i].name = name_makers[i]()
        dst.kind = kind
        _move_into(ffi.wasmtime_component_valrecord_new_uninit, dst.of.record, tmp, count)

    def lift(src: Any) -> Any:
        data = src.of.record.data
        out = Record()
        values = out.__dict__
        for i, (name, conv) in enumerate(fields):
            values[name] = conv.lift(data[i].val)
        return out

    return Converter(lower, lift)


def _boxed(conv: Converter, val: Any) -> Any:
    tmp = _VAL()
    conv.lower(val, tmp)
    return _val_new(byref(tmp))


def _variant(cases: list[tuple[str, Converter | None]]) -> Converter:
    kind = ffi.WASMTIME_COMPONENT_VARIANT.value
    by_name = dict(cases)

    def lower(val: Any, dst: Any) -> None:
        if not isinstance(val, Variant) or val.tag not in by_name:
            raise TypeError(f"expected Variant with a tag among {sorted(by_name)}, got {val!r}")
        conv = by_name[val.tag]
        boxed = _boxed(conv, val.payload) if conv is not None else None
        data = val.tag.encode("utf-8")
        dst.kind = kind
        _byte_vec_new(byref(dst.of.variant.discriminant), len(data), data)
        dst.of.variant.val = boxed

    def lift(src: Any) -> Any:
        tag = _read_vec(src.of.variant.discriminant).decode("utf-8")
        conv = by_name[tag]
        if conv is None:
            return Variant(tag)
        return Variant(tag, conv.lift(src.of.variant.val.contents))

    return Converter(lower, lift)


def _option(payload: Converter) -> Converter:
    kind = ffi.WASMTIME_COMPONENT_OPTION.value

    def lower(val: Any, dst: Any) -> None:
        dst.kind = kind
        dst.of.option = None if val is None else _boxed(payload, val)

    def lift(src: Any) -> Any:
        ptr = src.of.option
        return payload.lift(ptr.contents) if ptr else None

    return Converter(lower, lift)


def _result(ok: Converter | None, err: Converter | None) -> Converter:
    kind = ffi.WASMTIME_COMPONENT_RESULT.value

    def lower(val: Any, dst: Any) -> None:
        if not isinstance(val, Variant) or val.tag not in ("ok", "err"):
            raise TypeError(f"expected Variant('ok'|'err', …), got {val!r}")
        conv = ok if val.tag == "ok" else err
        dst.kind = kind
        dst.of.result.is_ok = val.tag == "ok"
        dst.of.result.val = _boxed(conv, val.payload) if conv is not None else None

    def lift(src: Any) -> Any:
        res = src.of.result
        if res.is_ok:
            return Variant("ok", ok.lift(res.val.contents) if ok is not None else None)
        return Variant("err", err.lift(res.val.contents) if err is not None else None)

    return Converter(lower, lift)


def _stock(ty: Any) -> Converter:
    """Fall back to the binding's own conversion for types our world never uses."""

    def lower(val: Any, dst: Any) -> None:
        ty.convert_to_c(None, val, ctypes.pointer(dst))

    def lift(src: Any) -> Any:
        return ty.convert_from_c(src)

    return Converter(lower, lift)


_BYTES = Converter(lower_bytes, lift_bytes)


def compile_type(ty: Any) -> Converter:
    """Compile a wasmtime component value type into a converter (done once per signature)."""
    t = ctypes_mod
    scalars: dict[type, tuple[Any, str, type]] = {
        t.Bool: (ffi.WASMTIME_COMPONENT_BOOL, "boolean", bool),
        t.S8: (ffi.WASMTIME_COMPONENT_S8, "s8", int),
        t.U8: (ffi.WASMTIME_COMPONENT_U8, "u8", int),
        t.S16: (ffi.WASMTIME_COMPONENT_S16, "s16", int),
        t.U16: (ffi.WASMTIME_COMPONENT_U16, "u16", int),
        t.S32: (ffi.WASMTIME_COMPONENT_S32, "s32", int),
        t.U32: (ffi.WASMTIME_COMPONENT_U32, "u32", int),
        t.S64: (ffi.WASMTIME_COMPONENT_S64, "s64", int),
        t.U64: (ffi.WASMTIME_COMPONENT_U64, "u64", int),
        t.F32: (ffi.WASMTIME_COMPONENT_F32, "f32", float),
        t.F64: (ffi.WASMTIME_COMPONENT_F64, "f64", float),
    }
    for cls, (kind, field, check) in scalars.items():
        if isinstance(ty, cls):
            return _scalar(kind, field, check)
    if isinstance(ty, t.String):
        return _text(ffi.WASMTIME_COMPONENT_STRING, "string", "str")
    if isinstance(ty, t.EnumType):
        return _text(ffi.WASMTIME_COMPONENT_ENUM, "enumeration", "enum case name")
    if isinstance(ty, t.ListType):
        element = ty.element
        if isinstance(element, t.U8):
            return _BYTES
        return _list(compile_type(element))
    if isinstance(ty, t.TupleType):
        return _tuple([compile_type(e) for e in ty.elements])
    if isinstance(ty, t.RecordType):
        return _record([(name, compile_type(fty)) for name, fty in ty.fields])
    if isinstance(ty, t.VariantType):
        return _variant(
            [(name, compile_type(c) if c is not None else None) for name, c in ty.cases]
        )
    if isinstance(ty, t.OptionType):
        return _option(compile_type(ty.payload))
    if isinstance(ty, t.ResultType):
        ok, err = ty.ok, ty.err
        return _result(
            compile_type(ok) if ok is not None else None,
            compile_type(err) if err is not None else None,
        )
    return _stock(ty)


# --- export calls ----------------------------------------------------------------------------


class ExportFunc:
    """An exported component function with its signature compiled once, on its first call.

    Compiling reads every type through the FFI (a record field at a time): for the lifecycle
    exports of a guest that is about a millisecond, so an export never called (the plain
    ``handle-message`` of a guest reached through the fast path) never pays it.
    """

    __slots__ = ("_func", "_params", "_result", "_signatures", "name")

    def __init__(
        self,
        func: wasmtime.component.Func,
        name: str,
        signatures: dict[str, Any] | None = None,
    ) -> None:
        """Wrap ``func``; ``signatures`` shares compiled signatures between instances of one
        component (reading a type through the FFI costs more than a whole small call). The
        signature is read through the store of the first call."""
        self._func = func
        self._signatures = signatures
        self._params: list[Converter] | None = None
        self._result: Converter | None = None
        self.name = name
        cached = signatures.get(name) if signatures is not None else None
        if cached is not None:
            self._params, self._result = cached

    def _compile(self, store: wasmtime.Store) -> list[Converter]:
        fty = self._func.type(store)
        result = fty.result
        params = [compile_type(ty) for _, ty in fty.params]
        self._params = params
        self._result = compile_type(result) if result is not None else None
        if self._signatures is not None:
            self._signatures[self.name] = (params, self._result)
        return params

    def __call__(self, store: wasmtime.Store, *args: Any) -> Any:
        params = self._params if self._params is not None else self._compile(store)
        if len(args) != len(params):
            raise TypeError(f"{self.name}: expected {len(params)} arguments, got {len(args)}")
        n = len(params)
        raw = (_VAL * n)()
        lowered = 0
        try:
            for i, (conv, arg) in enumerate(zip(params, args, strict=True)):
                conv.lower(arg, raw[i])
                lowered += 1
            result = _VAL() if self._result is not None else None
            err = ffi.wasmtime_component_func_call(
                byref(self._func._func),
                store._context(),
                raw,
                n,
                byref(result) if result is not None else None,
                1 if result is not None else 0,
            )
            if err:
                exc = WasmtimeError._from_ptr(err)
                host_exc = last_host_exception()
                if host_exc is not None:
                    raise HostFuncError(str(exc), host_exc) from host_exc
                raise exc
            if result is None or self._result is None:
                return None
            try:
                return self._result.lift(result)
            finally:
                ffi.wasmtime_component_val_delete(byref(result))
        finally:
            for i in range(lowered):
                ffi.wasmtime_component_val_delete(byref(raw[i]))


# --- host functions --------------------------------------------------------------------------


class HostFuncError(Exception):
    """A host function raised a Python exception; the guest was stopped with a trap."""

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(f"{message}: host function raised {type(cause).__name__}: {cause}")
        self.cause = cause


_local = threading.local()


def last_host_exception() -> BaseException | None:
    """Take the exception a host function raised on this thread during the last call, if any."""
    exc: BaseException | None = getattr(_local, "exc", None)
    _local.exc = None
    return exc


@dataclass(slots=True)
class _HostFunc:
    func: Callable[..., Any]
    # (parameter converters, result converter): read from the type on the first call and set
    # in one assignment, so a call on another thread sees all of it or none (then reads it too)
    signature: tuple[list[Converter], Converter | None] | None = None


_HOST_FUNCS: dict[int, _HostFunc] = {}
_HOST_FUNCS_LOCK = threading.Lock()
_next_host_func = 1


def _host_signature(ty_raw: Any) -> tuple[list[Converter], Converter | None]:
    fty = ctypes_mod.FuncType._from_ptr(ty_raw, owner=True)
    result = fty.result
    return [compile_type(ty) for _, ty in fty.params], (
        compile_type(result) if result is not None else None
    )


@ffi.wasmtime_component_func_callback_t  # type: ignore[untyped-decorator]
def _trampoline(  # noqa: PLR0917 - the C callback signature, fixed by wasmtime
    env: Any, context: Any, ty_raw: Any, args: Any, nargs: int, results: Any, nresults: int
) -> Any:
    entry = _HOST_FUNCS[env or 0]
    try:
        signature = entry.signature
        if signature is None:
            signature = entry.signature = _host_signature(ty_raw)
        params, result = signature
        pyargs = [params[i].lift(args[i]) for i in range(nargs)]
        value = entry.func(*pyargs)
        if result is not None:
            result.lower(value, results[0])
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the caller, not C
        _local.exc = exc
        error = WasmtimeError(f"host function failed: {type(exc).__name__}")
        return ctypes.cast(error._consume(), ctypes.c_void_p).value
    return 0


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)  # type: ignore[untyped-decorator]
def _finalize(env: Any) -> None:
    with _HOST_FUNCS_LOCK:
        _HOST_FUNCS.pop(env or 0, None)


def add_host_func(
    instance: wasmtime.component.LinkerInstance, name: str, func: Callable[..., Any]
) -> None:
    """Define ``name`` in a linker instance; ``func`` gets the lifted arguments (no store)."""
    global _next_host_func  # noqa: PLW0603 - one process-wide id space for C callbacks
    with _HOST_FUNCS_LOCK:
        key = _next_host_func
        _next_host_func += 1
        _HOST_FUNCS[key] = _HostFunc(func)
    encoded = name.encode("utf-8")
    instance._assert_not_locked()
    err = ffi.wasmtime_component_linker_instance_add_func(
        instance.ptr(),
        ctypes.create_string_buffer(encoded),
        len(encoded),
        _trampoline,
        key,
        _finalize,
    )
    if err:
        raise WasmtimeError._from_ptr(err)
