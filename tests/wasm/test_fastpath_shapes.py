"""Which shape a wrapped guest takes (see ``_fastpath.py``), and what guards the flat one.

Flat W is the guest's own sections followed by the adapter, whose core code calls the guest's
lifted core functions directly; it is chosen whenever the guest's binary says which core
functions those are. Any other guest is nested. wasmtime checks the guest's lifecycle functions
against the types the adapter takes them to have ($Check), so a guest whose functions merely have
the same core signature cannot be flat by mistake.
"""

from __future__ import annotations

import pytest
import wasmtime
from wasmtime.component import Component

from conftest import WAT_DIR, guest_binary, wat_binary
from fastpath_stock import instantiate
from wactor.wasm import _binary as b
from wactor.wasm._fastpath import FAST_INTERFACE, WRAPPED_INTERFACE, wrap_component


@pytest.fixture(scope="module")
def engine() -> wasmtime.Engine:
    return wasmtime.Engine()


def _composed(data: bytes) -> bytes:
    """A component that nests ``data``, passes it its imports and re-exports its exports: its
    lifecycle instance is an export of a nested instance, not one of its own."""
    layout = b.walk(data)
    outer = b.Layout.sized(layout.leading_counts)
    out = [b.PREAMBLE, *(data[s.start : s.end] for s in layout.leading)]
    nested = outer.add(b.COMPONENT_SORT)
    out.append(b.section(b.COMPONENT, data))
    args = [(imp.name, imp.sort, imp.index) for imp in layout.imports]
    instance = outer.add(b.INSTANCE_SORT)
    out.append(b.section(b.INSTANCE, b.vec([b.instantiate(nested, args)])))
    aliases, exports = [], []
    for exp in layout.exports:
        aliases.append(b.alias_export(exp.sort, instance, exp.name))
        exports.append(b.export(exp.name, exp.sort, outer.add(exp.sort)))
    out += [b.section(b.ALIAS, b.vec(aliases)), b.section(b.EXPORT, b.vec(exports))]
    return b"".join(out)


@pytest.mark.parametrize("name", ["echo", "kv", "trap", "recorder"])
def test_wat_guests_are_flat(name: str) -> None:
    data = wat_binary(name).read_bytes()
    assert wrap_component(data).startswith(data)


def test_a_componentize_py_guest_is_flat() -> None:
    # wit-component exports the lifecycle instance of a nested shim component that re-exports the
    # lifted functions it imports; the wrapper follows them to the `canon lift`s.
    data = guest_binary("probe").read_bytes()
    assert wrap_component(data).startswith(data)


def test_a_composed_guest_is_nested_and_works(engine: wasmtime.Engine) -> None:
    composed = _composed(wat_binary("echo").read_bytes())
    plain = instantiate(engine, Component(engine, composed))
    assert plain.slow(b"\x00\xff") == b"\x00\xff"  # the composition itself is sound
    wrapped = wrap_component(composed)
    assert not wrapped.startswith(composed)
    assert wrapped == wrap_component(composed, flat=False)
    component = Component(engine, wrapped)
    assert list(component.type.exports(engine)) == [WRAPPED_INTERFACE, FAST_INTERFACE]
    guest = instantiate(engine, component)
    payload = bytes(range(256)) * 300
    assert guest.fast(payload) == payload


def test_functions_of_other_types_fail_the_type_check(engine: wasmtime.Engine) -> None:
    # handle-message returning option<string> instead of option<list<u8>>: the same core
    # signature, but not the function the adapter calls.
    wat = (WAT_DIR / "echo.wat").read_text()
    result = "(result (result (option $message-payload) (error $wasm-error)))"
    assert wat.count(result) == 2  # the lifted function and the export's type
    lying = wat.replace(result, "(result (result (option string) (error $wasm-error)))")
    data = bytes(wasmtime.wat2wasm(lying))
    Component(engine, data)  # a valid component
    wrapped = wrap_component(data)
    assert wrapped.startswith(data)
    with pytest.raises(wasmtime.WasmtimeError, match="type mismatch for import `lifecycle`"):
        Component(engine, wrapped)
