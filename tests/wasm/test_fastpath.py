"""The fast payload path: a wrapped guest takes and returns its payloads as latin-1 strings.

Everything here uses stock wasmtime-py (``Linker``, ``Func.__call__``), so these tests check the
wrapper itself, not our calling layer.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from wasmtime.component import Component, Linker, Record, Variant

from conftest import CACHE_ROOT, ROOT, wat_binary
from wactor.wasm._fastpath import (
    FAST_HANDLE_CALLBACK,
    FAST_HANDLE_MESSAGE,
    FAST_INTERFACE,
    WRAPPED_INTERFACE,
    wrap_component,
)

SIZES = [0, 1, 1024, 64 * 1024, 1024 * 1024]
HOST_INTERFACES = {
    "airssys:core/host-messaging@1.0.0": [
        "send",
        "request",
        "cancel-request",
        "broadcast",
        "self-id",
    ],
    "airssys:core/host-services@1.0.0": [
        "log",
        "current-time",
        "current-time-millis",
        "sleep-millis",
        "list-components",
        "get-component-metadata",
    ],
    "airssys:core/storage@1.0.0": ["get", "set", "delete", "exists", "list-keys", "usage"],
}


def _record(**fields: Any) -> Record:
    record = Record()
    for name, value in fields.items():
        setattr(record, name.replace("_", "-"), value)
    return record


def _id(namespace: str, name: str, instance: str) -> Record:
    return _record(namespace=namespace, name=name, instance=instance)


def _message(
    payload: bytes | str,
    *,
    sender: tuple[str, str, str] = ("a", "b", "0"),
    correlation: str | None = "c-1",
    reply_to: tuple[str, str, str] | None = ("x", "y", "z"),
    content_type: str | None = "application/octet-stream",
) -> Record:
    return _record(
        sender=_id(*sender),
        payload=payload,
        metadata=_record(
            correlation_id=correlation,
            reply_to=None if reply_to is None else _id(*reply_to),
            timestamp=_record(seconds=1, nanoseconds=2),
            content_type=content_type,
        ),
    )


def _pattern(size: int) -> bytes:
    return bytes((i * 131 + 7) % 256 for i in range(size))


@dataclass
class Guest:
    """One instance of a component, with shortcuts to its fast and normal exports."""

    store: wasmtime.Store
    instance: Any

    def func(self, interface: str, name: str) -> Any:
        iface = self.instance.get_export_index(self.store, interface)
        assert iface is not None, interface
        index = self.instance.get_export_index(self.store, name, iface)
        assert index is not None, name
        return self.instance.get_func(self.store, index)

    def fast(self, payload: bytes, **kwargs: Any) -> Any:
        """Call the fast handle-message; a reply string comes back as bytes."""
        func = self.func(FAST_INTERFACE, FAST_HANDLE_MESSAGE)
        reply = func(self.store, _message(payload.decode("latin-1"), **kwargs))
        return reply.encode("latin-1") if isinstance(reply, str) else reply

    def slow(self, payload: bytes, **kwargs: Any) -> Any:
        """Call the guest's own handle-message (list<u8>) through W's re-export."""
        func = self.func(WRAPPED_INTERFACE, "handle-message")
        return func(self.store, _message(payload, **kwargs))


def _instantiate(
    engine: wasmtime.Engine,
    component: Component,
    *,
    wasi: bool = False,
    define: Callable[[wasmtime.component.LinkerInstance], None] | None = None,
    fuel: int | None = None,
) -> Guest:
    linker = Linker(engine)
    if wasi:
        linker.add_wasip2()
    if define is not None:
        with linker.root() as root:
            define(root)
    store = wasmtime.Store(engine)
    if wasi:
        store.set_wasi(wasmtime.WasiConfig())
    if fuel is not None:
        store.set_fuel(fuel)
    return Guest(store, linker.instantiate(store, component))


@pytest.fixture(scope="module")
def engine() -> wasmtime.Engine:
    return wasmtime.Engine()


def _wrapped(engine: wasmtime.Engine, name: str) -> Component:
    return Component(engine, wrap_component(wat_binary(name).read_bytes()))


@pytest.fixture(scope="module")
def echo_component(engine: wasmtime.Engine) -> Component:
    return _wrapped(engine, "echo")


@pytest.fixture
def echo(engine: wasmtime.Engine, echo_component: Component) -> Guest:
    return _instantiate(engine, echo_component)


# ------------------------------------------------------------------------------------------------
# The binary wrapper
# ------------------------------------------------------------------------------------------------


def test_wrapped_component_keeps_the_guest_imports_and_adds_the_fast_export(
    engine: wasmtime.Engine,
) -> None:
    guest = Component(engine, wat_binary("kv").read_bytes())
    wrapped = _wrapped(engine, "kv")
    assert list(wrapped.type.imports(engine)) == list(guest.type.imports(engine))
    assert list(wrapped.type.exports(engine)) == [WRAPPED_INTERFACE, FAST_INTERFACE]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00asm\x01\x00\x00\x00", "core wasm module"),
        (b"not wasm at all", "not a component"),
        (b"\x00asm\x0d\x00\x01\x00\x0b\x05", "runs past the end"),
    ],
)
def test_wrap_rejects_what_is_not_a_component(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wrap_component(data)


def test_wrap_rejects_a_component_without_the_lifecycle_export() -> None:
    with pytest.raises(ValueError, match="does not export"):
        wrap_component(bytes(wasmtime.wat2wasm("(component)")))


def test_wrap_rejects_imports_after_definitions() -> None:
    late_import = '(component (core module) (import "x" (func)))'
    with pytest.raises(ValueError, match=r"import section .* after its first definition"):
        wrap_component(bytes(wasmtime.wat2wasm(late_import)))


def test_wrap_rejects_an_already_wrapped_component() -> None:
    wrapped = wrap_component(wat_binary("echo").read_bytes())
    with pytest.raises(ValueError, match="already"):
        wrap_component(wrapped)


# ------------------------------------------------------------------------------------------------
# echo.wat
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_fast_echo_returns_the_payload(echo: Guest, size: int) -> None:
    payload = _pattern(size)
    assert echo.fast(payload) == payload


def test_fast_echo_passes_every_byte_value(echo: Guest) -> None:
    everything = bytes(range(256))
    assert echo.fast(everything) == everything
    assert echo.fast(everything[::-1] * 64) == everything[::-1] * 64
    for value in range(256):
        assert echo.fast(bytes([value])) == bytes([value])


def test_fast_echo_takes_any_text_in_the_other_strings(echo: Guest) -> None:
    # Non-latin1 text in the other string fields arrives as UTF-16; the adapter converts it to
    # UTF-8 for the guest (see the inspecting guest below for the exact bytes).
    text = "corr-\u20ac-\U0001f600"
    assert echo.fast(b"\xffpayload", correlation=text, sender=("s\u00fc", "", "0")) == (
        b"\xffpayload"
    )
    assert echo.fast(b"x", correlation=None) == b"x"


def test_non_latin1_payload_traps(echo: Guest) -> None:
    # A payload char > U+00FF makes wasmtime lower the string as UTF-16, whose length carries the
    # tag bit 31: as a list<u8> that is out of bounds, so the call traps instead of corrupting.
    func = echo.func(FAST_INTERFACE, FAST_HANDLE_MESSAGE)
    with pytest.raises(wasmtime.WasmtimeError):
        func(echo.store, _message("\u20ac"))


def test_fast_callback(echo: Guest) -> None:
    func = echo.func(FAST_INTERFACE, FAST_HANDLE_CALLBACK)
    assert func(echo.store, _message("\x00\xff" * 1000)) is None


def test_normal_lifecycle_export_still_works(echo: Guest) -> None:
    metadata = echo.func(WRAPPED_INTERFACE, "metadata")(echo.store)
    assert metadata.name == "wat-echo"
    assert getattr(metadata, "supported-operations") == []
    assert echo.slow(b"\x00\x01\xfe\xff") == b"\x00\x01\xfe\xff"
    assert echo.fast(b"\x00\x01\xfe\xff") == b"\x00\x01\xfe\xff"
    assert echo.func(WRAPPED_INTERFACE, "health")(echo.store) == "healthy"


def test_adapter_heap_is_recycled_between_calls(
    engine: wasmtime.Engine, echo_component: Component
) -> None:
    # Store limits apply to each linear memory: 8 MiB is room for one 1 MiB call in the adapter
    # (the host reserves the payload's UTF-8 size, shrinks it, then the reply is copied in), not
    # for twenty.
    guest = _instantiate(engine, echo_component)
    guest.store.set_limits(memory_size=8 << 20)
    payload = _pattern(1 << 20)
    for _ in range(20):
        assert guest.fast(payload) == payload


def test_trap_in_the_guest_surfaces_as_a_trap(engine: wasmtime.Engine) -> None:
    component = _wrapped(engine, "trap")
    guest = _instantiate(engine, component)
    assert guest.fast(b"fine") == b"fine"
    with pytest.raises(wasmtime.WasmtimeError, match="unreachable"):
        guest.fast(b"boom")
    guest = _instantiate(engine, component)
    with pytest.raises(wasmtime.WasmtimeError, match="unreachable"):
        guest.slow(b"boom")


# ------------------------------------------------------------------------------------------------
# kv.wat: host imports pass through W to the nested guest
# ------------------------------------------------------------------------------------------------


def _storage(data: dict[str, bytes]) -> Callable[[wasmtime.component.LinkerInstance], None]:
    def define(root: wasmtime.component.LinkerInstance) -> None:
        def get(store: Any, key: str) -> bytes | None:
            return data.get(key)

        def set_(store: Any, key: str, value: bytes) -> None:
            data[key] = bytes(value)

        with root.add_instance("airssys:core/storage@1.0.0") as storage:
            storage.add_func("get", get)
            storage.add_func("set", set_)

    return define


def test_fast_path_with_host_imports(engine: wasmtime.Engine) -> None:
    component = _wrapped(engine, "kv")
    data: dict[str, bytes] = {}
    guest = _instantiate(engine, component, define=_storage(data))
    payload = _pattern(70_000)
    assert guest.fast(payload) == payload
    assert data == {"k": payload}
    assert guest.slow(b"\x80\x81") == b"\x80\x81"


def test_guest_error_comes_back_as_err(engine: wasmtime.Engine) -> None:
    component = _wrapped(engine, "kv")

    def forgetful(root: wasmtime.component.LinkerInstance) -> None:
        with root.add_instance("airssys:core/storage@1.0.0") as storage:
            storage.add_func("get", lambda store, key: None)
            storage.add_func("set", lambda store, key, value: None)

    guest = _instantiate(engine, component, define=forgetful)
    assert guest.fast(b"lost") == Variant("runtime-error", "kv")


# ------------------------------------------------------------------------------------------------
# Strings other than the payload: UTF-8 for the guest, latin1 / UTF-16 for the host
# ------------------------------------------------------------------------------------------------

# A guest that reports what it received.  Payload byte 0 selects the answer:
#   0..7  ok(some(<the UTF-8 bytes of string field #n>)), ok(none) when its option is none;
#         fields: sender namespace/name/instance, correlation-id, reply-to namespace/name/instance,
#         content-type
#   8     err(runtime-error(<payload bytes 1..> as the string)), also from handle-callback
#   9     err(timeout)
#   else  ok(some(payload))
# Its realloc traps on a true reallocation (old-ptr != 0), like componentize-py's panics.
INSPECT_WAT = """
(component
  (type $component-id (record
    (field "namespace" string) (field "name" string) (field "instance" string)))
  (type $timestamp (record (field "seconds" u64) (field "nanoseconds" u32)))
  (type $message-metadata (record
    (field "correlation-id" (option string))
    (field "reply-to" (option $component-id))
    (field "timestamp" $timestamp)
    (field "content-type" (option string))))
  (type $component-message (record
    (field "sender" $component-id)
    (field "payload" (list u8))
    (field "metadata" $message-metadata)))
  (type $wasm-error (variant
    (case "component-not-found" string)
    (case "instantiation-failed" string)
    (case "export-not-found" string)
    (case "timeout")
    (case "resource-limit-exceeded" string)
    (case "invalid-component" string)
    (case "runtime-error" string)))

  (core module $M
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 0x1000))
    (func (export "realloc") (param $old i32) (param i32) (param $align i32) (param $size i32)
      (result i32)
      (local $p i32)
      (if (local.get $old) (then unreachable))
      (local.set $p (i32.and
        (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
      (global.set $bump (i32.add (local.get $p) (local.get $size)))
      (if (i32.gt_u (global.get $bump) (i32.shl (memory.size) (i32.const 16)))
        (then (drop (memory.grow (i32.sub
          (i32.shr_u (i32.add (global.get $bump) (i32.const 0xffff)) (i32.const 16))
          (memory.size))))))
      (local.get $p))
    ;; string field offsets, then the offset of their option discriminant (0: none)
    (data (i32.const 0x100) "\\00\\00\\00\\00\\08\\00\\00\\00\\10\\00\\00\\00\\24\\00\\00\\00"
                            "\\30\\00\\00\\00\\38\\00\\00\\00\\40\\00\\00\\00\\5c\\00\\00\\00")
    (data (i32.const 0x140) "\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\20\\00\\00\\00"
                            "\\2c\\00\\00\\00\\2c\\00\\00\\00\\2c\\00\\00\\00\\58\\00\\00\\00")
    (func $set (param $ret i32) (param $tag i32) (param $case i32) (param $p i32) (param $n i32)
      (i32.store8 (local.get $ret) (local.get $tag))
      (i32.store8 offset=4 (local.get $ret) (local.get $case))
      (i32.store offset=8 (local.get $ret) (local.get $p))
      (i32.store offset=12 (local.get $ret) (local.get $n)))
    (func (export "handle-message") (param $msg i32) (result i32)
      (local $p i32) (local $n i32) (local $mode i32) (local $disc i32) (local $at i32)
      (local.set $p (i32.load offset=24 (local.get $msg)))
      (local.set $n (i32.load offset=28 (local.get $msg)))
      (if (i32.eqz (local.get $n))
        (then (call $set (i32.const 0x10) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
              (return (i32.const 0x10))))
      (local.set $mode (i32.load8_u (local.get $p)))
      (if (i32.lt_u (local.get $mode) (i32.const 8))
        (then
          (local.set $disc (i32.load offset=0x140 (i32.shl (local.get $mode) (i32.const 2))))
          (if (i32.and (i32.ne (local.get $disc) (i32.const 0))
                       (i32.eqz (i32.load8_u (i32.add (local.get $msg) (local.get $disc)))))
            (then
              (call $set (i32.const 0x10) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
              (return (i32.const 0x10))))
          (local.set $at (i32.add (local.get $msg)
            (i32.load offset=0x100 (i32.shl (local.get $mode) (i32.const 2)))))
          (call $set (i32.const 0x10) (i32.const 0) (i32.const 1)
            (i32.load (local.get $at)) (i32.load offset=4 (local.get $at)))
          (return (i32.const 0x10))))
      (if (i32.eq (local.get $mode) (i32.const 8))
        (then (call $set (i32.const 0x10) (i32.const 1) (i32.const 6)
                (i32.add (local.get $p) (i32.const 1)) (i32.sub (local.get $n) (i32.const 1)))
              (return (i32.const 0x10))))
      (if (i32.eq (local.get $mode) (i32.const 9))
        (then (call $set (i32.const 0x10) (i32.const 1) (i32.const 3) (i32.const 0) (i32.const 0))
              (return (i32.const 0x10))))
      (call $set (i32.const 0x10) (i32.const 0) (i32.const 1) (local.get $p) (local.get $n))
      (i32.const 0x10))
    (func (export "handle-callback") (param $msg i32) (result i32)
      (local $p i32) (local $n i32)
      (local.set $p (i32.load offset=24 (local.get $msg)))
      (local.set $n (i32.load offset=28 (local.get $msg)))
      (call $set (i32.const 0x20) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
      (if (i32.and (i32.ne (local.get $n) (i32.const 0))
                   (i32.eq (i32.load8_u (local.get $p)) (i32.const 8)))
        (then (call $set (i32.const 0x20) (i32.const 1) (i32.const 6)
                (i32.add (local.get $p) (i32.const 1)) (i32.sub (local.get $n) (i32.const 1)))))
      (i32.const 0x20))
  )
  (core instance $m (instantiate $M))
  (func $handle-message (param "msg" $component-message)
    (result (result (option (list u8)) (error $wasm-error)))
    (canon lift (core func $m "handle-message") (memory (core memory $m "memory"))
      (realloc (core func $m "realloc"))))
  (func $handle-callback (param "msg" $component-message) (result (result (error $wasm-error)))
    (canon lift (core func $m "handle-callback") (memory (core memory $m "memory"))
      (realloc (core func $m "realloc"))))
  (instance $lifecycle
    (export "component-id" (type $component-id))
    (export "timestamp" (type $timestamp))
    (export "message-metadata" (type $message-metadata))
    (export "component-message" (type $component-message))
    (export "wasm-error" (type $wasm-error))
    (export "handle-message" (func $handle-message))
    (export "handle-callback" (func $handle-callback)))
  (export "airssys:core/component-lifecycle@1.0.0" (instance $lifecycle))
)
"""

TEXTS = [
    "",
    "plain ascii",
    "latin1 \u00e9\u00ff\u0080",
    "bmp \u20ac\u0100\uffff\u07ff\u0800",
    "astral \U0001f600\U00010000\U0010ffff",
    "mixed \u00e9\u20ac\U0001f600\x00",
]


def _fields(index: int, text: str) -> dict[str, Any]:
    """Message keyword arguments that put ``text`` into string field #index."""
    sender = ["a", "b", "0"]
    reply_to = ["x", "y", "z"]
    fields: dict[str, Any] = {}
    if index < 3:
        sender[index] = text
    elif index == 3:
        fields["correlation"] = text
    elif index < 7:
        reply_to[index - 4] = text
    else:
        fields["content_type"] = text
    return {"sender": tuple(sender), "reply_to": tuple(reply_to), **fields}


@pytest.fixture(scope="module")
def inspect_component(engine: wasmtime.Engine) -> Component:
    return Component(engine, wrap_component(bytes(wasmtime.wat2wasm(INSPECT_WAT))))


@pytest.fixture
def inspect(engine: wasmtime.Engine, inspect_component: Component) -> Guest:
    return _instantiate(engine, inspect_component)


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("index", range(8))
def test_strings_reach_the_guest_as_utf8(inspect: Guest, index: int, text: str) -> None:
    fields = _fields(index, text)
    assert inspect.fast(bytes([index]), **fields) == text.encode("utf-8")
    assert inspect.slow(bytes([index]), **fields) == text.encode("utf-8")


def test_absent_options_stay_absent(inspect: Guest) -> None:
    for index, field in [(3, "correlation"), (4, "reply_to"), (7, "content_type")]:
        assert inspect.fast(bytes([index]), **{field: None}) is None
    assert inspect.fast(b"") is None


@pytest.mark.parametrize("text", TEXTS)
def test_error_strings_reach_the_host_as_text(inspect: Guest, text: str) -> None:
    payload = b"\x08" + text.encode("utf-8")
    assert inspect.fast(payload) == Variant("runtime-error", text)
    assert inspect.slow(payload) == Variant("runtime-error", text)
    callback = inspect.func(FAST_INTERFACE, FAST_HANDLE_CALLBACK)
    assert callback(inspect.store, _message(payload.decode("latin-1"))) == Variant(
        "runtime-error", text
    )


def test_error_without_a_string(inspect: Guest) -> None:
    assert inspect.fast(b"\x09") == inspect.slow(b"\x09")


@pytest.mark.parametrize(
    "garbage", [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80"]
)
def test_invalid_utf8_error_string_traps(
    engine: wasmtime.Engine, inspect_component: Component, garbage: bytes
) -> None:
    guest = _instantiate(engine, inspect_component)
    with pytest.raises(wasmtime.WasmtimeError):
        guest.fast(b"\x08" + garbage)


# ------------------------------------------------------------------------------------------------
# A real componentize-py guest (examples/echo), when its build is cached
# ------------------------------------------------------------------------------------------------


def _cached_echo_guest() -> Path | None:
    from wactor.tooling._build import cache_key

    path = CACHE_ROOT / "guests" / f"{cache_key(ROOT / 'examples' / 'echo' / 'app.py')}.wasm"
    return path if path.is_file() else None


def _compile_cached(engine: wasmtime.Engine, data: bytes) -> Component:
    """Compile ``data`` once per content (a componentize-py guest takes ~10 s to compile)."""
    key = hashlib.sha256(data).hexdigest()[:24]  # deserialize() rejects another engine config
    path = CACHE_ROOT / "fastpath" / f"{key}-{importlib.metadata.version('wasmtime')}.cwasm"
    if path.is_file():
        try:
            return Component.deserialize(engine, path.read_bytes())
        except wasmtime.WasmtimeError:
            path.unlink(missing_ok=True)
    component = Component(engine, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(bytes(component.serialize()))
    tmp.replace(path)
    return component


def _host_stubs(log: Callable[..., None]) -> Callable[[wasmtime.component.LinkerInstance], None]:
    def define(root: wasmtime.component.LinkerInstance) -> None:
        for interface, names in HOST_INTERFACES.items():
            with root.add_instance(interface) as inst:
                for name in names:
                    inst.add_func(name, log if name == "log" else _unavailable(name))

    return define


def _unavailable(name: str) -> Callable[..., None]:
    def func(store: Any, *args: Any) -> None:
        raise RuntimeError(f"{name} is not available in this test")

    return func


@pytest.fixture(scope="module")
def fuel_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.consume_fuel = True
    return wasmtime.Engine(config)


@pytest.fixture(scope="module")
def python_echo(fuel_engine: wasmtime.Engine) -> Component:
    path = _cached_echo_guest()
    if path is None:
        pytest.skip("examples/echo has no cached componentize-py build in .fixture-cache/guests")
    return _compile_cached(fuel_engine, wrap_component(path.read_bytes()))


def _python_guest(
    engine: wasmtime.Engine, component: Component, log: Callable[..., None], fuel: int = 1 << 40
) -> Guest:
    return _instantiate(engine, component, wasi=True, define=_host_stubs(log), fuel=fuel)


def test_componentize_py_guest(fuel_engine: wasmtime.Engine, python_echo: Component) -> None:
    logged: list[str] = []
    guest = _python_guest(
        fuel_engine, python_echo, lambda store, level, message, context: logged.append(message)
    )
    assert guest.func(WRAPPED_INTERFACE, "initialize")(guest.store, _config()) is None
    assert logged == ["echo ready"]  # a host import called by the nested guest
    assert guest.func(WRAPPED_INTERFACE, "metadata")(guest.store).name == "echo"
    for size in SIZES:
        payload = _pattern(size)
        assert guest.fast(payload) == payload
    assert guest.fast(bytes(range(256))) == bytes(range(256))
    assert guest.slow(bytes(range(256))) == bytes(range(256))
    assert guest.func(FAST_INTERFACE, FAST_HANDLE_CALLBACK)(guest.store, _message("\xff")) is None


def test_componentize_py_guest_trap(fuel_engine: wasmtime.Engine, python_echo: Component) -> None:
    # The adapter forwards a call in a few hundred instructions; the Python interpreter in the
    # guest needs far more than this budget, so the trap happens inside the nested guest.
    guest = _python_guest(fuel_engine, python_echo, lambda *args: None)
    guest.store.set_fuel(20_000)
    with pytest.raises(wasmtime.WasmtimeError, match="fuel") as trap:
        guest.fast(b"payload")
    assert "componentize_py_runtime" in str(trap.value)


def _config() -> Record:
    return _record(
        env_vars=[],
        config_data=None,
        resource_limits=_record(
            max_memory_bytes=1 << 24, max_execution_time_ms=1000, max_fuel=None
        ),
    )
