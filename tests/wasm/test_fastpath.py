"""The fast payload path: a wrapped guest takes and returns its payloads as latin-1 text.

The host passes ``payload.decode("latin-1")``; it crosses into the adapter as UTF-8, the adapter
turns it back into the bytes for the guest's ``list<u8>`` and the reply's bytes into UTF-8 text,
which the host reads as ``reply.encode("latin-1")``. The message's other fields cross as one
metadata string and a few scalars (the contract is at the top of ``fastpath.wat``): the adapter
builds the guest's ``component-message`` from them, and answers with one tagged string.

Most tests use stock wasmtime-py (``Linker``, ``Func.__call__``, through ``fastpath_stock``), so
they check the wrapper itself, not our calling layer; the adapter's core code is also run on its
own (no component model around it: any bytes can go in), and the whole path once more through
``ComponentInstance``. The other strings are in ``test_fastpath_strings.py``, the whole record
compared with the plain path in ``test_fastpath_metadata.py``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from wasmtime.component import Component, Record, Variant

from conftest import CACHE_ROOT, wat_binary
from fastpath_stock import NONE, Guest, instantiate, make_record, read_answer
from wactor._ids import ComponentId
from wactor.errors import ComponentError, TrapError
from wactor.messaging import Envelope
from wactor.wasm import ComponentInstance, InstanceLimits, WasmEngine, build_linker
from wactor.wasm._fastpath import (
    FAST_HANDLE_CALLBACK,
    FAST_HANDLE_MESSAGE,
    FAST_INTERFACE,
    WRAPPED_INTERFACE,
    wrap_component,
)

SIZES = [0, 1, 1024, 64 * 1024, 1024 * 1024]
KINDS = ["ascii", "high", "mixed"]
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


def _pattern(size: int) -> bytes:
    return bytes((i * 131 + 7) % 256 for i in range(size))


def _payload(kind: str, size: int) -> bytes:
    """``size`` bytes: all ASCII, all >= 0x80, or both (runs of each and single bytes)."""
    if kind == "ascii":
        return bytes(i * 7 % 128 for i in range(size))
    if kind == "high":
        return bytes(0x80 + i * 13 % 128 for i in range(size))
    unit = bytes(range(256)) + _pattern(256)  # runs of 128, then scattered
    return (unit * (size // len(unit) + 1))[:size]


def _text(payload: bytes) -> bytes:
    """What crosses between the host and the adapter: the UTF-8 of the payload's latin-1 text."""
    return payload.decode("latin-1").encode("utf-8")


@pytest.fixture(scope="module")
def engine() -> wasmtime.Engine:
    return wasmtime.Engine()


def _wrapped(engine: wasmtime.Engine, name: str, shape: str = "flat") -> Component:
    return Component(engine, wrap_component(wat_binary(name).read_bytes(), flat=shape == "flat"))


@pytest.fixture(scope="module", params=["flat", "nested"])
def echo_component(request: pytest.FixtureRequest, engine: wasmtime.Engine) -> Component:
    """The echo guest wrapped both ways (see _fastpath.py): every echo test runs on both."""
    return _wrapped(engine, "echo", request.param)


@pytest.fixture
def echo(engine: wasmtime.Engine, echo_component: Component) -> Guest:
    return instantiate(engine, echo_component)


# ------------------------------------------------------------------------------------------------
# The binary wrapper
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["flat", "nested"])
def test_wrapped_component_keeps_the_guest_imports_and_adds_the_fast_export(
    engine: wasmtime.Engine, shape: str
) -> None:
    guest = Component(engine, wat_binary("kv").read_bytes())
    wrapped = _wrapped(engine, "kv", shape)
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


def test_imports_after_definitions_only_stop_a_nested_wrapper(engine: wasmtime.Engine) -> None:
    # An import section at the end: (import "x" (type (sub resource))).  Flat W is the guest's
    # sections as they are; nested W can only copy the guest's leading sections.
    late = wat_binary("echo").read_bytes() + bytes([10, 6, 1, 0, 1]) + b"x" + bytes([3, 1])
    wrapped = Component(engine, wrap_component(late))
    assert "x" in wrapped.type.imports(engine)
    with pytest.raises(ValueError, match=r"import section .* after its first definition"):
        wrap_component(late, flat=False)


def test_wrap_rejects_an_already_wrapped_component() -> None:
    wrapped = wrap_component(wat_binary("echo").read_bytes())
    with pytest.raises(ValueError, match="already"):
        wrap_component(wrapped)


# ------------------------------------------------------------------------------------------------
# echo.wat
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_fast_echo_returns_the_payload(echo: Guest, kind: str, size: int) -> None:
    payload = _payload(kind, size)
    assert echo.fast(payload) == payload
    assert echo.fast(_pattern(size)) == _pattern(size)


def test_fast_echo_every_length_and_position(echo: Guest) -> None:
    # The adapter converts 16 bytes at a time, the rest one by one; a char of the text can
    # straddle two blocks.  Every short length, with a byte >= 0x80 at every position.
    for size in range(70):
        for kind in KINDS:
            payload = _payload(kind, size)
            assert echo.fast(payload) == payload, (kind, size)
        for at in range(size):
            payload = b"a" * at + b"\xe9" + b"z" * (size - at - 1)
            assert echo.fast(payload) == payload, (size, at)


def test_fast_echo_random_payloads(echo: Guest) -> None:
    rng = random.Random(1234)
    for _ in range(300):
        size = rng.choice([rng.randrange(64), rng.randrange(1024), rng.randrange(70_000)])
        share = rng.choice([0.0, 0.01, 0.3, 0.5, 0.9, 1.0])  # of bytes >= 0x80
        payload = bytes(
            rng.randrange(128, 256) if rng.random() < share else rng.randrange(128)
            for _ in range(size)
        )
        assert echo.fast(payload) == payload


def test_fast_echo_passes_every_byte_value(echo: Guest) -> None:
    everything = bytes(range(256))
    assert echo.fast(everything) == everything
    assert echo.fast(everything[::-1] * 64) == everything[::-1] * 64
    for value in range(256):
        assert echo.fast(bytes([value])) == bytes([value])


def test_fast_echo_takes_any_text_in_the_other_strings(echo: Guest) -> None:
    # The other string fields are UTF-8 all the way (see the inspecting guest below for the
    # exact bytes the guest gets).
    text = "corr-\u20ac-\U0001f600"
    assert echo.fast(b"\xffpayload", correlation=text, sender=("s\u00fc", "", "0")) == (
        b"\xffpayload"
    )
    assert echo.fast(b"x", correlation=None) == b"x"


@pytest.mark.parametrize(
    "text",
    [
        "\u20ac",
        "\u0100",  # the first char beyond latin-1: lead byte 0xC4
        "\U0001f600",
        "a" * 40 + "\u07ff" + "b" * 40,  # inside a block of 16
        "\xe9" * 15 + "\u0101",  # a lead byte in the last lane of a block
        "\xff" * 100 + "\u0800",  # in the last bytes, converted one by one
    ],
)
def test_non_latin1_payload_traps(
    engine: wasmtime.Engine, echo_component: Component, text: str
) -> None:
    # A payload char > U+00FF is not a byte: the adapter traps instead of guessing.  (The host
    # cannot send malformed UTF-8 at all: Python refuses to encode a lone surrogate, and the C API
    # would abort the process on invalid UTF-8, so the adapter's own checks of malformed text are
    # tested on its core code below.)
    guest = instantiate(engine, echo_component)
    with pytest.raises(wasmtime.WasmtimeError, match="unreachable"):
        guest.fast_text(text)
    with pytest.raises(wasmtime.WasmtimeError):
        guest.fast(b"x")  # a trap poisons the instance
    fresh = instantiate(engine, echo_component)  # ... and nothing else
    assert fresh.fast(_payload("mixed", 5000)) == _payload("mixed", 5000)


def test_a_surrogate_in_the_payload_never_reaches_the_guest(echo: Guest) -> None:
    with pytest.raises(UnicodeEncodeError):
        echo.fast_text("ab\ud800")
    assert echo.fast(b"still fine \xff") == b"still fine \xff"


def test_fast_callback(echo: Guest) -> None:
    assert echo.fast_text("\x00\xff" * 1000, FAST_HANDLE_CALLBACK) == "n"


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_fast_echo_of_a_payload_in_hex(echo: Guest, kind: str, size: int) -> None:
    # payload-encoding 1: two lowercase hex digits per byte (what the host sends for big payloads
    # with many bytes >= 0x80).  The answer is chosen by the reply alone.
    payload = _payload(kind, size)
    answer = echo.fast_text(payload.hex(), encoding=1)
    assert answer[0] == ("a" if payload.isascii() else "x")
    assert read_answer(answer) == payload


@pytest.mark.parametrize("text", ["a", "abc", "0g", "0A", "ab" * 40 + "G0"])
def test_a_payload_that_is_not_hex_traps(
    engine: wasmtime.Engine, echo_component: Component, text: str
) -> None:
    guest = instantiate(engine, echo_component)
    with pytest.raises(wasmtime.WasmtimeError, match="unreachable"):
        guest.fast_text(text, encoding=1)
    fresh = instantiate(engine, echo_component)
    assert fresh.fast(b"\xff" * 100) == b"\xff" * 100


def test_answers_are_tagged_by_what_the_reply_holds(echo: Guest) -> None:
    # "a": ASCII as it is; "s": latin-1 text when a byte >= 0x80 is rare; "x": hex from 1/64 on.
    assert echo.fast_text("plain") == "aplain"
    rare = "a" * 127 + "\xe9"
    assert echo.fast_text(rare) == "s" + rare
    assert echo.fast_text("a" * 62 + "\xe9") == "x" + ("a" * 62 + "\xe9").encode("latin-1").hex()
    assert echo.fast_text("") == "a"


@pytest.mark.parametrize(
    "lengths",
    [
        [1, 1, 0, NONE, 0, 0, NONE, NONE],  # one byte short of the metadata
        [1, 1, 1, NONE, 0, 0, 1, NONE],  # one byte past it
        [1, 1, 1, NONE, 0, 0, NONE, 0xFFFF_FFFE],  # far past it
        [0xFFFF_FFFF - 1, 3, 1, NONE, 0, 0, NONE, NONE],  # wrapping around in 32 bits
        [1, 1, 1, 0, 0, 1, NONE, NONE],  # reply-to present, one byte past
    ],
)
def test_metadata_lengths_that_do_not_add_up_trap(
    engine: wasmtime.Engine, echo_component: Component, lengths: list[int]
) -> None:
    guest = instantiate(engine, echo_component)
    func = guest.func(FAST_INTERFACE, FAST_HANDLE_MESSAGE)
    with pytest.raises(wasmtime.WasmtimeError, match="unreachable"):
        func(guest.store, "payload", "abc", 0, *lengths, 0)
    fresh = instantiate(engine, echo_component)
    assert fresh.fast(b"x", sender=("a", "b", "c"), reply_to=None, correlation=None) == b"x"


def test_answer_tags_never_clobber_what_the_guest_returned(echo: Guest) -> None:
    # The tag char of an answer goes into the adapter's free byte before the reply's text: an
    # echo of every length right after one of another length reads back whole.
    for size in range(40):
        for kind in KINDS:
            assert echo.fast(_payload(kind, size)) == _payload(kind, size)
            assert echo.fast(_payload(kind, size + 17)) == _payload(kind, size + 17)


def test_normal_lifecycle_export_still_works(echo: Guest) -> None:
    metadata = echo.func(WRAPPED_INTERFACE, "metadata")(echo.store)
    assert metadata.name == "wat-echo"
    assert getattr(metadata, "supported-operations") == []
    assert echo.slow(b"\x00\x01\xfe\xff") == b"\x00\x01\xfe\xff"
    assert echo.fast(b"\x00\x01\xfe\xff") == b"\x00\x01\xfe\xff"
    assert echo.func(WRAPPED_INTERFACE, "health")(echo.store) == "healthy"


@pytest.mark.parametrize(("kind", "limit"), [("ascii", 2 << 20), ("high", 4 << 20)])
def test_adapter_heap_is_recycled_between_calls(
    engine: wasmtime.Engine, echo_component: Component, kind: str, limit: int
) -> None:
    # Store limits apply to each linear memory.  For 1 MiB of ASCII the adapter needs 1 MiB (the
    # text is the payload; the reply reuses the message's memory and is its own text); for 1 MiB
    # of bytes >= 0x80, 3 MiB (the reply and its 2 MiB text).  So twenty calls must fit.
    guest = instantiate(engine, echo_component)
    guest.store.set_limits(memory_size=limit)
    payload = _payload(kind, 1 << 20)
    for _ in range(20):
        assert guest.fast(payload) == payload


def test_trap_in_the_guest_surfaces_as_a_trap(engine: wasmtime.Engine) -> None:
    component = _wrapped(engine, "trap")
    guest = instantiate(engine, component)
    assert guest.fast(b"fine") == b"fine"
    with pytest.raises(wasmtime.WasmtimeError, match="unreachable"):
        guest.fast(b"boom")
    guest = instantiate(engine, component)
    with pytest.raises(wasmtime.WasmtimeError, match="unreachable"):
        guest.slow(b"boom")


# ------------------------------------------------------------------------------------------------
# The whole host path: ComponentInstance (the compiled calling layer, the engine's fuel and epochs)
# ------------------------------------------------------------------------------------------------


class _Ctx:
    """A guest context for a component that imports nothing."""

    component_id = ComponentId("t", "echo", "0")
    storage = None
    storage_quota = 0


@pytest.fixture(scope="module")
def wasm_engine() -> Iterator[WasmEngine]:
    engine = WasmEngine(None)
    yield engine
    engine.close()


def _component_instance(engine: WasmEngine, name: str = "echo") -> ComponentInstance:
    loaded = engine.load(wat_binary(name).read_bytes(), f"{name}.wasm")
    assert loaded.fast
    return ComponentInstance(
        engine,
        build_linker(engine),
        loaded,
        context=_Ctx(),  # type: ignore[arg-type]
        limits=InstanceLimits(256 << 20, 10_000),
    )


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_component_instance_fast_path(wasm_engine: WasmEngine, kind: str, size: int) -> None:
    instance = _component_instance(wasm_engine)
    assert instance.fast
    payload = _payload(kind, size)
    env = Envelope(ComponentId("a", "b", "0"), _Ctx.component_id, payload, correlation_id="\u20ac")
    assert instance.handle_message(env) == payload
    instance.handle_callback(env)  # no reply; raises on a guest error
    assert instance.handle_message(env) == payload


def test_component_instance_every_byte_value(wasm_engine: WasmEngine) -> None:
    instance = _component_instance(wasm_engine)
    singles = [bytes([value]) for value in range(256)]
    for payload in [bytes(range(256)), bytes(range(255, -1, -1)) * 300, *singles]:
        env = Envelope(ComponentId("a", "b", "0"), _Ctx.component_id, payload)
        assert instance.handle_message(env) == payload


def test_component_instance_trap_poisons_only_that_instance(wasm_engine: WasmEngine) -> None:
    instance = _component_instance(wasm_engine, "trap")
    assert instance.fast

    def env(payload: bytes) -> Envelope:
        return Envelope(ComponentId("a", "b", "0"), _Ctx.component_id, payload)

    assert instance.handle_message(env(b"fine \xff")) == b"fine \xff"
    with pytest.raises(TrapError, match="handle-message trapped"):
        instance.handle_message(env(b"boom"))
    assert instance.poisoned
    with pytest.raises(ComponentError, match="discarded after a fault"):
        instance.handle_message(env(b"fine"))
    fresh = _component_instance(wasm_engine, "trap")
    assert fresh.handle_message(env(_payload("mixed", 3000))) == _payload("mixed", 3000)


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
    guest = instantiate(engine, component, define=_storage(data))
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

    guest = instantiate(engine, component, define=forgetful)
    assert guest.fast(b"lost") == Variant("runtime-error", "kv")


# ------------------------------------------------------------------------------------------------
# A real componentize-py guest (examples/echo), when its build is cached
# ------------------------------------------------------------------------------------------------


def _cached_echo_guest() -> Path:
    """The componentize-py echo guest of the examples, built (once) if it is not cached yet."""
    from conftest import guest_binary

    return guest_binary("examples/echo")


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


@pytest.fixture(scope="module", params=["flat", "nested"])
def python_echo(request: pytest.FixtureRequest, fuel_engine: wasmtime.Engine) -> Component:
    data = _cached_echo_guest().read_bytes()
    wrapped = wrap_component(data, flat=request.param == "flat")
    assert wrapped.startswith(data) == (request.param == "flat")  # a componentize-py guest is flat
    return _compile_cached(fuel_engine, wrapped)


def _python_guest(
    engine: wasmtime.Engine, component: Component, log: Callable[..., None], fuel: int = 1 << 40
) -> Guest:
    return instantiate(engine, component, wasi=True, define=_host_stubs(log), fuel=fuel)


def test_componentize_py_guest(fuel_engine: wasmtime.Engine, python_echo: Component) -> None:
    logged: list[str] = []
    guest = _python_guest(
        fuel_engine, python_echo, lambda store, level, message, context: logged.append(message)
    )
    assert guest.func(WRAPPED_INTERFACE, "initialize")(guest.store, _config()) is None
    assert logged == ["echo ready"]  # a host import called by the nested guest
    assert guest.func(WRAPPED_INTERFACE, "metadata")(guest.store).name == "echo"
    for size in SIZES:
        for kind in KINDS:
            payload = _payload(kind, size)
            assert guest.fast(payload) == payload, (kind, size)
        assert guest.fast(_pattern(size)) == _pattern(size)
    assert guest.fast(bytes(range(256))) == bytes(range(256))
    for value in range(256):
        assert guest.fast(bytes([value])) == bytes([value])
    assert guest.slow(bytes(range(256))) == bytes(range(256))
    assert guest.fast_text("\xff", FAST_HANDLE_CALLBACK) == "n"


def test_componentize_py_guest_trap(fuel_engine: wasmtime.Engine, python_echo: Component) -> None:
    # The adapter forwards a call in a few hundred instructions; the Python interpreter in the
    # guest needs far more than this budget, so the trap happens inside the nested guest.
    guest = _python_guest(fuel_engine, python_echo, lambda *args: None)
    guest.store.set_fuel(20_000)
    with pytest.raises(wasmtime.WasmtimeError, match="fuel") as trap:
        guest.fast(b"payload")
    assert "componentize_py_runtime" in str(trap.value)


def _config() -> Record:
    return make_record(
        env_vars=[],
        config_data=None,
        resource_limits=make_record(
            max_memory_bytes=1 << 24, max_execution_time_ms=1000, max_fuel=None
        ),
    )
