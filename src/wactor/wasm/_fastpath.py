"""Fast payload path: wrap a guest so its messages cross the host boundary as a few strings.

Why: wasmtime-py passes component values through the C API as ``wasmtime_component_val_t`` (32
bytes each), one per *element* of a ``list<u8>``, and wasmtime converts each one to a Rust ``Val``
and lowers it element by element. A 64 KiB ``list<u8>`` echo costs ~14 ms inside wasmtime, while a
``string`` crosses as one buffer (a memcpy). A ``component-message`` record is a dozen C values
more, each built in Python. Guests cannot change, so the host wraps them.

What: :func:`wrap_component` turns a guest component G into a component W that has:

* exactly G's imports, with identical types;
* every export of G, so the normal ``airssys:core/component-lifecycle@1.0.0`` interface works as
  before;
* one more export, :data:`FAST_INTERFACE`, with ``handle-message`` and ``handle-callback`` that
  take the message as a payload ``string``, a metadata ``string`` (the record's other strings,
  one after the other), a ``u64`` timestamp and eight ``u32`` lengths, and answer with one tagged
  ``string`` (the reply or the guest's error). Both are lifted with ``string-encoding=utf8``;
  ``$Main`` of ``fastpath.wat`` builds G's ``component-message`` from them. The contract is at
  the top of ``fastpath.wat``; :mod:`wactor.wasm._fastcall` is the host's side of it.

The payload string is the payload's bytes read as latin-1 text, one char (U+0000..U+00FF) per byte
(the host passes the UTF-8 of ``payload.decode("latin-1")``: the bytes as they are when they are
ASCII), or their hex digits (for a big payload with many bytes >= 0x80, see
:mod:`wactor.wasm._latin1`); the reply comes back as its bytes, its text or its hex digits, tagged.
``$Latin1`` turns text and hex digits into bytes in place and bytes into either (SIMD, 16 bytes at
a time). A payload char above U+00FF traps, and so do metadata lengths that do not add up to the
metadata's length. Every other string is UTF-8 on both sides and copied as it is.

W takes one of two shapes (``fastpath.wat`` describes both):

* **flat** (whenever G's binary allows it): W is G's own sections, unchanged and in order, then
  the adapter's core modules and the fast export. W's index spaces start with G's, so the
  adapter's core code reaches G's memory, realloc and the core functions G lifts as
  ``handle-message``/``handle-callback``: it allocates the message in G's memory with G's
  realloc, copies into it with ``memory.copy``, calls G's function and post-return directly. No
  component boundary lies between the adapter and G, so wasmtime's fused adapter, which copies
  a ``list<u8>`` one byte per loop iteration (most of what a big payload used to cost), is gone.
  ``$Check`` (instantiated with G's lifecycle instance) makes wasmtime check that G's functions
  have the types the adapter takes them to have. G qualifies when its lifecycle export is an
  instance of its own (inline, or of a nested component that re-exports imported functions, as
  wit-component and componentize-py make it), whose two functions are ``canon lift``s with a
  memory, a realloc and string-encoding=utf8, and when every definition of G is one this module
  can count (core modules and instances, types, aliases, components, instances, ``canon lift``,
  ``lower`` and the resource built-ins, imports, exports).
* **nested** (any other G): G nested byte for byte in W, and ``$Adapter`` importing G's lifecycle
  instance; wasmtime's fused adapter copies the message into G and the results out.

Layout of flat W (component binary format, ``design/mvp/Binary.md`` of the component model)::

    preamble
    G's sections                              (all of them, verbatim)
    core module sections: $Heap, $Latin1, $Main
    core instance:        heap = instantiate $Heap
    alias section:        heap's memory, realloc, nop and shared
    core instances:       guest = {G's memory, realloc, lifted core functions, post-returns,
                                   shared};
                          latin1 = instantiate $Latin1 (text: heap, bytes: guest);
                          main = instantiate $Main (heap, guest, latin1)
    alias section:        main's handle-message and handle-callback
    component sections:   $Types, $Check
    instance section:     t = instantiate $Types; instantiate $Check (types: t, lifecycle: G's)
    type section:         $fast-func
    canon section:        lift main's two functions (utf8, heap's memory and realloc)
    instance section:     fast = {handle-message, handle-callback}
    export section:       FAST_INTERFACE (fast)

Layout of nested W::

    preamble
    G's leading sections (types 7, imports 10, aliases 6, core types 3), copied verbatim
    component section: G                      (whole binary, unchanged)
    component section: $Types, $Adapter       (from fastpath.wat)
    instance section:  g = instantiate G (with <name> <W's import of that name>)* ;
                       t = instantiate $Types
    alias section:     every export of g      (export g <name>)
    instance section:  a = instantiate $Adapter (with "types" t) (with "lifecycle" g.lifecycle)
    alias section:     fast = export a FAST_INTERFACE
    export section:    every export of G (the aliases) and FAST_INTERFACE (fast)

Costs of W: one more memory (the adapter's heap, recycled every call; for an echo of n bytes it
peaks at n if they are ASCII, up to 3n if not) and one more copy of the payload each way
(``memory.copy`` between the adapter's memory and G's when flat). G's code is compiled exactly as
before; W only adds the adapter. The engine caches W's compiled code under G's digest,
:data:`FAST_INTERFACE` and the sha256 of ``fastpath.wat``, so a changed adapter is never served
from an old build; a G that cannot be wrapped is loaded as it is.
"""

from __future__ import annotations

import functools
import importlib.resources
from dataclasses import dataclass

import wasmtime

from wactor.wasm import _binary as b
from wactor.wasm._binary import Imported, Inline, Instantiate, Layout, Lift

__all__ = [
    "FAST_HANDLE_CALLBACK",
    "FAST_HANDLE_MESSAGE",
    "FAST_INTERFACE",
    "WRAPPED_INTERFACE",
    "AdapterParts",
    "adapter_parts",
    "adapter_wat",
    "wrap_component",
]

FAST_INTERFACE = "wactor:fast/lifecycle@0.4.0"
"""Name of the instance export W adds: the string-payload variant of the lifecycle interface.

Its version names the adapter's contract with the host (0.4.0: an ASCII reply is tagged "a" and
crosses as it is, W flat where it can be; 0.3.0: the message as a payload string, a metadata
string and scalars, answered with one tagged string; 0.2.0 took the whole record with a UTF-8
payload string, converted in the adapter; 0.1.0 was latin-1 strings transcoded by wasmtime). The
compile cache keys a wrapped guest by the guest's digest, this name and the sha256 of
``fastpath.wat``, so any change to the adapter compiles the wrapper again; change this version
when what the host passes or reads changes, or how this module builds W."""
FAST_HANDLE_MESSAGE = "handle-message"
"""``func(payload: string, metadata: string, timestamp: u64, <8 lengths: u32>) -> string``."""
FAST_HANDLE_CALLBACK = "handle-callback"
"""The same signature as :data:`FAST_HANDLE_MESSAGE`; its answer never carries a reply."""
WRAPPED_INTERFACE = "airssys:core/component-lifecycle@1.0.0"
"""The guest export whose handle-message/handle-callback the fast interface forwards to."""


_SORT_NAMES = {  # sorts W can re-export from a nested G
    b.FUNC: "func",
    b.TYPE_SORT: "type",
    b.COMPONENT_SORT: "component",
    b.INSTANCE_SORT: "instance",
    b.CORE_MODULE_SORT: "core module",
}


# ----------------------------------------------------------------------------------------------
# The adapter
# ----------------------------------------------------------------------------------------------


def adapter_wat() -> str:
    """The text of ``fastpath.wat`` (package data next to this module)."""
    return (importlib.resources.files("wactor.wasm") / "fastpath.wat").read_text("utf-8")


@dataclass(frozen=True, slots=True)
class AdapterParts:
    """The pieces of ``fastpath.wat``: binaries of its type section, components, core modules."""

    fast_type: bytes  # a whole type section holding $fast-func
    types: bytes  # component bodies
    check: bytes
    adapter: bytes
    heap: bytes  # core modules (of $Adapter)
    latin1: bytes
    main: bytes


@functools.cache
def adapter_parts() -> AdapterParts:
    """The parts of ``fastpath.wat``, compiled once."""
    binary = bytes(wasmtime.wat2wasm(adapter_wat()))
    top = b.sections(binary)
    fast_type = [binary[s.start : s.end] for s in top if s.id == b.TYPE]
    nested = [binary[s.body : s.end] for s in top if s.id == b.COMPONENT]
    if len(fast_type) != 1 or len(nested) != 3:
        raise RuntimeError("fastpath.wat must hold one type and 3 components")
    adapter = nested[2]
    modules = [adapter[s.body : s.end] for s in b.sections(adapter) if s.id == b.CORE_MODULE]
    if len(modules) != 4:
        raise RuntimeError(f"$Adapter must define 4 core modules, found {len(modules)}")
    return AdapterParts(fast_type[0], *nested, *modules[:3])


# ----------------------------------------------------------------------------------------------
# Wrapping
# ----------------------------------------------------------------------------------------------


def wrap_component(data: bytes, *, flat: bool = True) -> bytes:
    """Return W: the guest component ``data`` wrapped with the extra export :data:`FAST_INTERFACE`.

    W imports exactly what G imports (same names, same types) and exports everything G exports,
    plus :data:`FAST_INTERFACE`; it is flat when G allows it (and ``flat``), else nested (see the
    module docstring). Raises :class:`ValueError` when ``data`` is not a component this function
    can wrap: not a component, no ``airssys:core/component-lifecycle@1.0.0`` instance export,
    already wrapped, or (to be nested) imports after its first definition, value imports or
    exports. Whether G's lifecycle functions have the types the adapter expects is checked by
    wasmtime when W is compiled.
    """
    data = bytes(data)
    layout = b.walk(data)
    names = {e.name: e for e in layout.exports}
    if FAST_INTERFACE in names or any(n.startswith("wactor:fast/") for n in names):
        raise ValueError(f"component already exports {FAST_INTERFACE!r} (already wrapped?)")
    lifecycle = names.get(WRAPPED_INTERFACE)
    if lifecycle is None or lifecycle.sort != b.INSTANCE_SORT:
        raise ValueError(f"component does not export the instance {WRAPPED_INTERFACE!r}")
    lifts = _lifts(data, layout, lifecycle.index) if flat else None
    if lifts is not None:
        return _flat(data, layout, lifecycle.index, *lifts)
    return _nested(data, layout)


def _lifts(data: bytes, layout: Layout, lifecycle: int) -> tuple[Lift, Lift] | None:
    """G's lifted handle-message and handle-callback when W can be flat, else None."""
    if layout.opaque is not None:
        return None
    found = []
    for name in (FAST_HANDLE_MESSAGE, FAST_HANDLE_CALLBACK):
        func = _instance_func(data, layout, lifecycle, name)
        lift = layout.kind(b.FUNC, func) if func is not None else None
        if not (isinstance(lift, Lift) and lift.utf8 and lift.plain):
            return None
        if lift.memory is None or lift.realloc is None:
            return None
        found.append(lift)
    message, callback = found
    if (message.memory, message.realloc) != (callback.memory, callback.realloc):
        return None
    return message, callback


def _instance_func(data: bytes, layout: Layout, instance: int, name: str) -> int | None:
    """The function ``name`` of G's instance ``instance``, as an index of G's functions."""
    kind = layout.kind(b.INSTANCE_SORT, instance)
    if isinstance(kind, Inline):
        sort, index = kind.items.get(name, (b"", 0))
        return index if sort == b.FUNC else None
    if not isinstance(kind, Instantiate):
        return None
    body = layout.kind(b.COMPONENT_SORT, kind.component)
    if not isinstance(body, tuple):
        return None
    # A component that re-exports functions it imports (wit-component's shims).
    inner = b.walk(data, *body)
    exports = {e.name: e for e in inner.exports if e.sort == b.FUNC}
    export = exports.get(name)
    imported = inner.kind(b.FUNC, export.item) if export is not None else None
    if not isinstance(imported, Imported):
        return None
    sort, index = kind.args.get(imported.name, (b"", 0))
    return index if sort == b.FUNC else None


def _flat(data: bytes, layout: Layout, lifecycle: int, message: Lift, callback: Lift) -> bytes:
    """W as G's sections followed by the adapter (see the module docstring)."""
    parts = adapter_parts()
    new = layout.add  # W's index spaces continue G's
    out = [data]
    heap_m, latin1_m, main_m = (new(b.CORE_MODULE_SORT) for _ in range(3))
    out += [b.section(b.CORE_MODULE, m) for m in (parts.heap, parts.latin1, parts.main)]
    heap = new(b.CORE_INSTANCE_SORT)
    out.append(b.section(b.CORE_INSTANCE, b.vec([b.core_instantiate(heap_m, [])])))
    memory, realloc, nop = new(b.CORE_MEMORY), new(b.CORE_FUNC), new(b.CORE_FUNC)
    shared = new(b.CORE_GLOBAL)
    out.append(
        b.section(
            b.ALIAS,
            b.vec(
                [
                    b.alias_core_export(b.CORE_MEMORY, heap, "memory"),
                    b.alias_core_export(b.CORE_FUNC, heap, "realloc"),
                    b.alias_core_export(b.CORE_FUNC, heap, "nop"),
                    b.alias_core_export(b.CORE_GLOBAL, heap, "shared"),
                ]
            ),
        )
    )
    assert message.memory is not None
    assert message.realloc is not None
    guest, latin1, main = (new(b.CORE_INSTANCE_SORT) for _ in range(3))
    guest_items = [
        ("memory", b.CORE_MEMORY, message.memory),
        ("realloc", b.CORE_FUNC, message.realloc),
        ("handle-message", b.CORE_FUNC, message.core_func),
        ("handle-callback", b.CORE_FUNC, callback.core_func),
        ("post-message", b.CORE_FUNC, nop if message.post_return is None else message.post_return),
        (
            "post-callback",
            b.CORE_FUNC,
            nop if callback.post_return is None else callback.post_return,
        ),
        ("shared", b.CORE_GLOBAL, shared),
    ]
    out.append(
        b.section(
            b.CORE_INSTANCE,
            b.vec(
                [
                    b.core_inline_instance(guest_items),
                    b.core_instantiate(latin1_m, [("text", heap), ("bytes", guest)]),
                    b.core_instantiate(
                        main_m, [("heap", heap), ("guest", guest), ("latin1", latin1)]
                    ),
                ]
            ),
        )
    )
    handle_message, handle_callback = new(b.CORE_FUNC), new(b.CORE_FUNC)
    out.append(
        b.section(
            b.ALIAS,
            b.vec(
                [
                    b.alias_core_export(b.CORE_FUNC, main, "handle-message"),
                    b.alias_core_export(b.CORE_FUNC, main, "handle-callback"),
                ]
            ),
        )
    )
    types_c, check_c = new(b.COMPONENT_SORT), new(b.COMPONENT_SORT)
    out += [b.section(b.COMPONENT, parts.types), b.section(b.COMPONENT, parts.check)]
    types = new(b.INSTANCE_SORT)
    new(b.INSTANCE_SORT)
    check_args = [("types", b.INSTANCE_SORT, types), ("lifecycle", b.INSTANCE_SORT, lifecycle)]
    out.append(
        b.section(
            b.INSTANCE,
            b.vec([b.instantiate(types_c, []), b.instantiate(check_c, check_args)]),
        )
    )
    fast_type = new(b.TYPE_SORT)
    out.append(parts.fast_type)
    funcs = (new(b.FUNC), new(b.FUNC))
    lifted = [
        b.lift(core, memory, realloc, fast_type) for core in (handle_message, handle_callback)
    ]
    out.append(b.section(b.CANON, b.vec(lifted)))
    fast = new(b.INSTANCE_SORT)
    items = [(FAST_HANDLE_MESSAGE, b.FUNC, funcs[0]), (FAST_HANDLE_CALLBACK, b.FUNC, funcs[1])]
    out.append(b.section(b.INSTANCE, b.vec([b.inline_instance(items)])))
    out.append(b.section(b.EXPORT, b.vec([b.export(FAST_INTERFACE, b.INSTANCE_SORT, fast)])))
    return b"".join(out)


def _nested(data: bytes, layout: Layout) -> bytes:
    """W with G nested in it (see the module docstring)."""
    if layout.late_import is not None:
        raise ValueError(
            f"cannot wrap this component: it has an import section at offset "
            f"{layout.late_import.start:#x} after its first definition (only leading "
            f"type/import/alias sections can be copied into the wrapper)"
        )
    for exp in layout.exports:
        if exp.sort not in _SORT_NAMES:
            raise ValueError(f"cannot re-export {exp.name!r}: unsupported sort {exp.sort.hex()}")
    parts = adapter_parts()
    w = Layout.sized(layout.leading_counts)  # W's index spaces continue after G's leading ones
    new = w.add
    out = [b.PREAMBLE]
    out.extend(data[s.start : s.end] for s in layout.leading)

    guest = new(b.COMPONENT_SORT)
    types = new(b.COMPONENT_SORT)
    adapter = new(b.COMPONENT_SORT)
    out.append(b.section(b.COMPONENT, data))
    out.append(b.section(b.COMPONENT, parts.types))
    out.append(b.section(b.COMPONENT, parts.adapter))

    args = [(imp.name, imp.sort, imp.index) for imp in layout.imports]
    guest_instance = new(b.INSTANCE_SORT)
    types_instance = new(b.INSTANCE_SORT)
    out.append(b.section(b.INSTANCE, b.vec([b.instantiate(guest, args), b.instantiate(types, [])])))

    aliases: list[bytes] = []
    reexports: list[bytes] = []
    lifecycle = -1
    for exp in layout.exports:
        aliases.append(b.alias_export(exp.sort, guest_instance, exp.name))
        index = new(exp.sort)
        reexports.append(b.export(exp.name, exp.sort, index))
        if exp.name == WRAPPED_INTERFACE:
            lifecycle = index
    out.append(b.section(b.ALIAS, b.vec(aliases)))

    adapter_args = [
        ("types", b.INSTANCE_SORT, types_instance),
        ("lifecycle", b.INSTANCE_SORT, lifecycle),
    ]
    adapter_instance = new(b.INSTANCE_SORT)
    out.append(b.section(b.INSTANCE, b.vec([b.instantiate(adapter, adapter_args)])))
    fast = new(b.INSTANCE_SORT)
    out.append(
        b.section(
            b.ALIAS, b.vec([b.alias_export(b.INSTANCE_SORT, adapter_instance, FAST_INTERFACE)])
        )
    )
    out.append(
        b.section(b.EXPORT, b.vec([*reexports, b.export(FAST_INTERFACE, b.INSTANCE_SORT, fast)]))
    )
    return b"".join(out)
