"""The calling layer converts exactly like the stock binding, through a real component."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest
import wasmtime
import wasmtime._ffi as ffi
from wasmtime.component import Component, Linker, Record, Variant

from conftest import wat_binary
from wactor._ids import ComponentId
from wactor.messaging import Envelope
from wactor.wasm._calling import ExportFunc, compile_type
from wactor.wasm._records import message_record

SIZES = [0, 1, 16, 255, 1024, 4096]


@pytest.fixture(scope="module")
def echo() -> tuple[wasmtime.Store, Any]:
    engine = wasmtime.Engine()
    component = Component(engine, wat_binary("echo").read_bytes())
    store = wasmtime.Store(engine)
    instance = Linker(engine).instantiate(store, component)
    iface = instance.get_export_index(store, "airssys:core/component-lifecycle@1.0.0")
    func = instance.get_func(store, instance.get_export_index(store, "handle-message", iface))
    return store, func


def _message(payload: bytes, correlation: str | None = "c-1") -> Record:
    env = Envelope(
        ComponentId("a", "b", "0"),
        ComponentId("c", "d", "1"),
        payload,
        kind="request",
        correlation_id=correlation,
        reply_to=ComponentId("a", "b", "0"),
        content_type="application/octet-stream",
    )
    return message_record(env)


@pytest.mark.parametrize("size", SIZES)
def test_export_call_matches_stock_call(echo: tuple[wasmtime.Store, Any], size: int) -> None:
    store, func = echo
    payload = bytes((i * 7) % 256 for i in range(size))
    stock = func(store, _message(payload))
    ours = ExportFunc(func, "handle-message")(store, _message(payload))
    assert ours == Variant("ok", stock)
    assert stock == payload


def _param_type(echo: tuple[wasmtime.Store, Any]) -> Any:
    store, func = echo
    return func.type(store).params[0][1]


@pytest.mark.parametrize("correlation", [None, "corr-ü"])
@pytest.mark.parametrize("size", SIZES)
def test_lowering_matches_stock_lifting(
    echo: tuple[wasmtime.Store, Any], size: int, correlation: str | None
) -> None:
    ty = _param_type(echo)
    value = _message(bytes(range(256)) * (size // 256) + b"\xff" * (size % 256), correlation)
    raw = ffi.wasmtime_component_val_t()
    compile_type(ty).lower(value, raw)
    assert ty.convert_from_c(raw) == value  # the stock lift also frees what it reads


@pytest.mark.parametrize("size", SIZES)
def test_lifting_matches_stock_lowering(echo: tuple[wasmtime.Store, Any], size: int) -> None:
    store, _ = echo
    ty = _param_type(echo)
    value = _message(bytes(reversed(range(256))) * (size // 256 + 1))
    raw = ffi.wasmtime_component_val_t()
    ty.convert_to_c(store, value, ctypes.pointer(raw))
    try:
        assert compile_type(ty).lift(raw) == value
    finally:
        ffi.wasmtime_component_val_delete(ctypes.byref(raw))


def test_large_payload_round_trips_through_real_echo(echo: tuple[wasmtime.Store, Any]) -> None:
    store, func = echo
    payload = bytes(range(256)) * 4096  # 1 MiB
    result = ExportFunc(func, "handle-message")(store, _message(payload))
    assert result == Variant("ok", payload)
