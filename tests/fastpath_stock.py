"""Calling a wrapped guest through stock wasmtime-py: the fast export's contract, written out.

The tests of the wrapper call it with ``Func.__call__`` (no wactor calling layer in between): these
helpers build the fast export's params from a message's fields as ``fastpath.wat`` specifies them
and read its answer back, independently of :mod:`wactor.wasm._fastcall`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wasmtime
from wasmtime.component import Component, Linker, Record, Variant

from wactor.wasm._fastcall import NONE, WASM_ERROR_CASES
from wactor.wasm._fastpath import FAST_HANDLE_MESSAGE, FAST_INTERFACE, WRAPPED_INTERFACE

__all__ = [
    "NONE",
    "WASM_ERROR_CASES",
    "Guest",
    "fast_args",
    "instantiate",
    "make_id",
    "make_message",
    "make_record",
    "read_answer",
]


def make_record(**fields: Any) -> Record:
    """A stock ``Record``; ``snake_case`` argument names become ``kebab-case`` fields."""
    record = Record()
    for name, value in fields.items():
        setattr(record, name.replace("_", "-"), value)
    return record


def make_id(namespace: str, name: str, instance: str) -> Record:
    """A ``component-id`` record."""
    return make_record(namespace=namespace, name=name, instance=instance)


def make_message(
    payload: bytes | str,
    *,
    sender: tuple[str, str, str] = ("a", "b", "0"),
    correlation: str | None = "c-1",
    reply_to: tuple[str, str, str] | None = ("x", "y", "z"),
    content_type: str | None = "application/octet-stream",
) -> Record:
    """The ``component-message`` the guest's own handle-message takes (timestamp 1 s + 2 ns)."""
    return make_record(
        sender=make_id(*sender),
        payload=payload,
        metadata=make_record(
            correlation_id=correlation,
            reply_to=None if reply_to is None else make_id(*reply_to),
            timestamp=make_record(seconds=1, nanoseconds=2),
            content_type=content_type,
        ),
    )


def fast_args(
    text: str,
    *,
    sender: tuple[str, str, str] = ("a", "b", "0"),
    correlation: str | None = "c-1",
    reply_to: tuple[str, str, str] | None = ("x", "y", "z"),
    content_type: str | None = "application/octet-stream",
    timestamp: int = 1_000_000_002,
    encoding: int = 0,
) -> list[Any]:
    """The fast export's params for a message (written from the contract in fastpath.wat)."""
    options = [correlation, content_type]
    strings = [*sender, *(reply_to or ()), *(o for o in options if o is not None)]
    lengths = [len(x.encode()) for x in sender]
    lengths += [len(x.encode()) for x in reply_to] if reply_to is not None else [NONE, 0, 0]
    lengths += [NONE if o is None else len(o.encode()) for o in options]
    return [text, "".join(strings), timestamp, *lengths, encoding]


def read_answer(answer: str) -> Any:
    """A fast export's answer as the stock binding gives a guest's own result: the reply's
    bytes (ok(some)), ``None`` (ok(none) or ok) or the error ``Variant``."""
    tag, text = answer[0], answer[1:]
    if tag == "a":  # every byte < 0x80: the text is the bytes
        return text.encode("ascii")
    if tag == "s":
        assert not text.isascii()
        return text.encode("latin-1")
    if tag == "x":  # hex digits, two per byte
        return bytes.fromhex(text)
    if tag == "n":
        assert text == ""
        return None
    case = WASM_ERROR_CASES[int(tag)]
    return Variant(case, None if case == "timeout" else text)


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
        """Call the fast handle-message; see :func:`read_answer` for what comes back."""
        return read_answer(self.fast_text(payload.decode("latin-1"), **kwargs))

    def fast_text(self, text: str, name: str = FAST_HANDLE_MESSAGE, **kwargs: Any) -> str:
        """Call a fast export with the payload string ``text``; return its answer string."""
        func = self.func(FAST_INTERFACE, name)
        answer = func(self.store, *fast_args(text, **kwargs))
        assert isinstance(answer, str)
        return answer

    def slow(self, payload: bytes, **kwargs: Any) -> Any:
        """Call the guest's own handle-message (list<u8>) through W's re-export."""
        func = self.func(WRAPPED_INTERFACE, "handle-message")
        return func(self.store, make_message(payload, **kwargs))


def instantiate(
    engine: wasmtime.Engine,
    component: Component,
    *,
    wasi: bool = False,
    define: Callable[[wasmtime.component.LinkerInstance], None] | None = None,
    fuel: int | None = None,
) -> Guest:
    """Instantiate ``component`` in a fresh Store through a stock ``Linker``."""
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
