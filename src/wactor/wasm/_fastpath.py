"""Fast payload path: wrap a guest so its messages cross the host boundary as a few strings.

Why: wasmtime-py passes component values through the C API as ``wasmtime_component_val_t`` (32
bytes each), one per *element* of a ``list<u8>``, and wasmtime converts each one to a Rust ``Val``
and lowers it element by element. A 64 KiB ``list<u8>`` echo costs ~14 ms inside wasmtime, while a
``string`` crosses as one buffer (a memcpy). A ``component-message`` record is a dozen C values
more, each built in Python. Guests cannot change, so the host wraps them.

What: :func:`wrap_component` turns a guest component G into a component W that contains G *nested*
byte for byte (the very bytes trust was decided on; only the wrapper around them is new) and has:

* exactly G's imports, with identical types (G's leading type/import/alias sections are copied
  verbatim, so resources, WASI interfaces and type-only imports all keep working);
* every export of G (re-exported from the nested G instance), so the normal
  ``airssys:core/component-lifecycle@1.0.0`` interface works as before;
* one more export, :data:`FAST_INTERFACE`, with ``handle-message`` and ``handle-callback`` that
  take the message as a payload ``string``, a metadata ``string`` (the record's other strings,
  one after the other), a ``u64`` timestamp and eight ``u32`` lengths, and answer with one tagged
  ``string`` (the reply or the guest's error). Both are lifted with ``string-encoding=utf8``; the
  adapter builds G's ``component-message`` from them in its own memory. The contract is at the
  top of ``fastpath.wat``; :mod:`wactor.wasm._fastcall` is the host's side of it.

The payload string is the payload's bytes read as latin-1 text, one char (U+0000..U+00FF) per byte:
the host passes ``payload.decode("latin-1")`` and reads ``reply.encode("latin-1")``. wasmtime moves
a UTF-8 string between the host and a component's memory with one validated copy, so the adapter
($Adapter in ``fastpath.wat``) receives the UTF-8 form of that text -- each byte < 0x80 as is, each
byte >= 0x80 as 0xC2/0xC3 and a continuation byte -- turns it back into the bytes in place (SIMD,
16 bytes at a time) and hands the record it built on to G's ``handle-message``, where the payload
is a ``list<u8>`` again (a string and a ``list<u8>`` have the same layout in the canonical ABI:
ptr: i32, len: i32). G's reply ``list<u8>`` is turned into UTF-8 text the same way (an ASCII reply
as it is) and lifted as the answer's text. A payload char above U+00FF (anything but the UTF-8 of
latin-1 text) traps in the adapter, and so do metadata lengths that do not add up to the
metadata's length. Every other string field is UTF-8 on both sides of the adapter and is copied
by wasmtime as it is; towards G the adapter also lowers with ``string-encoding=utf8``
(a utf8 -> utf8 copy allocates once in G, exactly like a direct host call, while wasmtime's
transcoding between other encodings shrinks its buffer with a true ``realloc(old_ptr != 0)``,
which componentize-py's ``cabi_realloc`` does not survive).

Layout of W (component binary format, ``design/mvp/Binary.md`` of the component model)::

    preamble
    G's leading sections (types 7, imports 10, aliases 6, core types 3), copied verbatim
    component section: G                      (whole binary, unchanged)
    component section: $Types                 (from fastpath.wat)
    component section: $Adapter               (from fastpath.wat)
    instance section:  g = instantiate G (with <name> <W's import of that name>)* ;
                       t = instantiate $Types
    alias section:     every export of g      (export g <name>)
    instance section:  a = instantiate $Adapter (with "types" t) (with "lifecycle" g.lifecycle)
    alias section:     fast = export a "wactor:fast/lifecycle@0.3.0"
    export section:    every export of G (the aliases) and FAST_INTERFACE (fast)

Costs of W: one more memory (the adapter's heap, recycled every call; for an echo of n bytes it
peaks at n if they are ASCII, up to 3n if not) and one more copy of the payload each way. wasmtime
copies the payload between the adapter and G with its fused adapter, which for a ``list<u8>`` is a
loop over the bytes (the largest part of what a big payload costs in W), but still far cheaper than
the per-element conversion of the C API it replaces. G's code is compiled exactly as before; W only
adds the adapter and its trampolines. The engine caches W's compiled code under G's digest,
:data:`FAST_INTERFACE` and the sha256 of ``fastpath.wat``, so a changed adapter is never served
from an old build; a G that cannot be wrapped is loaded as it is.
"""

from __future__ import annotations

import functools
import importlib.resources
from dataclasses import dataclass, field

import wasmtime

__all__ = [
    "FAST_HANDLE_CALLBACK",
    "FAST_HANDLE_MESSAGE",
    "FAST_INTERFACE",
    "WRAPPED_INTERFACE",
    "adapter_wat",
    "wrap_component",
]

FAST_INTERFACE = "wactor:fast/lifecycle@0.3.0"
"""Name of the instance export W adds: the string-payload variant of the lifecycle interface.

Its version names the adapter's contract with the host (0.3.0: the message as a payload string,
a metadata string and scalars, answered with one tagged string; 0.2.0 took the whole record with
a UTF-8 payload string, converted in the adapter; 0.1.0 was latin-1 strings transcoded by
wasmtime). The compile cache keys a wrapped guest
by the guest's digest, this name and the sha256 of ``fastpath.wat``, so any change to the adapter
compiles the wrapper again; change this version when what the host passes or reads changes."""
FAST_HANDLE_MESSAGE = "handle-message"
"""``func(payload: string, metadata: string, timestamp: u64, <8 lengths: u32>) -> string``."""
FAST_HANDLE_CALLBACK = "handle-callback"
"""The same signature as :data:`FAST_HANDLE_MESSAGE`; its answer never carries a reply."""
WRAPPED_INTERFACE = "airssys:core/component-lifecycle@1.0.0"
"""The guest export whose handle-message/handle-callback the fast interface forwards to."""

_PREAMBLE = b"\x00asm\x0d\x00\x01\x00"
_CORE_PREAMBLE = b"\x00asm\x01\x00\x00\x00"

# Section ids.
_CUSTOM, _CORE_MODULE, _CORE_INSTANCE, _CORE_TYPE, _COMPONENT = 0, 1, 2, 3, 4
_INSTANCE, _ALIAS, _TYPE, _CANON, _START, _IMPORT, _EXPORT = 5, 6, 7, 8, 9, 10, 11
# Sections that may precede G's definitions and are copied into W (custom sections are skipped).
_LEADING = frozenset({_CUSTOM, _CORE_TYPE, _ALIAS, _TYPE, _IMPORT})

# Sorts, as encoded in `sort` (a core sort is 0x00 followed by the core sort byte).
_FUNC = b"\x01"
_VALUE = b"\x02"
_TYPE_SORT = b"\x03"
_COMPONENT_SORT = b"\x04"
_INSTANCE_SORT = b"\x05"
_CORE_TYPE_SORT = b"\x00\x10"
_CORE_MODULE_SORT = b"\x00\x11"
_SORT_NAMES = {  # sorts W can re-export from G
    _FUNC: "func",
    _TYPE_SORT: "type",
    _COMPONENT_SORT: "component",
    _INSTANCE_SORT: "instance",
    _CORE_MODULE_SORT: "core module",
}
# `externdesc` tags -> the sort of the item they describe (the tags match the `sort` bytes; early
# drafts of Binary.md had instance and component swapped).
_EXTERNDESC_SORT = {
    0x00: _CORE_MODULE_SORT,
    0x01: _FUNC,
    0x02: _VALUE,
    0x03: _TYPE_SORT,
    0x04: _COMPONENT_SORT,
    0x05: _INSTANCE_SORT,
}


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


class _Reader:
    """A cursor over ``data[pos:end]`` reading the primitive encodings of the binary format."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def at_end(self) -> bool:
        return self.pos >= self.end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise ValueError(f"truncated component binary at offset {self.pos:#x}")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u32(self) -> int:
        """An unsigned LEB128 of at most 5 bytes."""
        result = shift = 0
        for _ in range(5):
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                if result > 0xFFFF_FFFF:
                    break
                return result
            shift += 7
        raise ValueError(f"invalid u32 LEB128 at offset {self.pos:#x}")

    def name(self) -> str:
        size = self.u32()
        if self.pos + size > self.end:
            raise ValueError(f"truncated name at offset {self.pos:#x}")
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"name at offset {self.pos - size:#x} is not UTF-8") from exc

    def extern_name(self) -> str:
        """``importname'`` / ``exportname'``: a 0x00 (or legacy 0x01) tag and a name."""
        at = self.pos
        tag = self.byte()
        if tag not in (0x00, 0x01):
            raise ValueError(f"unsupported import/export name encoding {tag:#04x} at {at:#x}")
        return self.name()

    def sort(self) -> bytes:
        at = self.pos
        tag = self.byte()
        if tag == 0x00:
            return bytes((0x00, self.byte()))
        if 0x01 <= tag <= 0x05:
            return bytes((tag,))
        raise ValueError(f"invalid sort {tag:#04x} at offset {at:#x}")

    def externdesc(self) -> bytes:
        """Skip an ``externdesc``; return the sort of the item it describes."""
        at = self.pos
        tag = self.byte()
        if tag not in _EXTERNDESC_SORT:
            raise ValueError(f"invalid externdesc {tag:#04x} at offset {at:#x}")
        if tag == 0x00:
            if self.byte() != 0x11:
                raise ValueError(f"invalid core module externdesc at offset {at:#x}")
            self.u32()
        elif tag == 0x02:
            raise ValueError(f"value imports/exports are not supported (offset {at:#x})")
        elif tag == 0x03:
            bound = self.byte()
            if bound == 0x00:
                self.u32()
            elif bound != 0x01:
                raise ValueError(f"invalid type bound {bound:#04x} at offset {at:#x}")
        else:
            self.u32()
        return _EXTERNDESC_SORT[tag]


@dataclass(frozen=True, slots=True)
class _Section:
    """One top-level section: ``data[start:end]`` is the whole section, ``body`` its contents."""

    id: int
    start: int
    body: int
    end: int


def _sections(data: bytes) -> list[_Section]:
    if data[:8] != _PREAMBLE:
        if data[:8] == _CORE_PREAMBLE:
            raise ValueError("not a component: this is a core wasm module")
        raise ValueError("not a component binary (bad preamble; only version 0x0d is supported)")
    sections: list[_Section] = []
    reader = _Reader(data, 8)
    while not reader.at_end():
        start = reader.pos
        section_id = reader.byte()
        size = reader.u32()
        body = reader.pos
        if body + size > len(data):
            raise ValueError(f"section {section_id} at offset {start:#x} runs past the end")
        sections.append(_Section(section_id, start, body, body + size))
        reader.pos = body + size
    return sections


@dataclass(frozen=True, slots=True)
class _Import:
    name: str
    sort: bytes
    index: int  # in the sort's index space (identical in G and W)


@dataclass(slots=True)
class _Layout:
    """What W needs to know about G."""

    leading: list[_Section] = field(default_factory=list)  # copied into W verbatim, in order
    imports: list[_Import] = field(default_factory=list)
    counts: dict[bytes, int] = field(default_factory=dict)  # index space sizes after `leading`
    exports: list[tuple[str, bytes]] = field(default_factory=list)  # G's exports: name, sort

    def add(self, sort: bytes, n: int = 1) -> int:
        """Append ``n`` items to the ``sort`` index space; return the index of the first."""
        index = self.counts.get(sort, 0)
        self.counts[sort] = index + n
        return index


def _read_leading(reader: _Reader, section_id: int, layout: _Layout) -> None:
    """Account for one leading section of G: its imports and the indices it creates."""
    count = reader.u32()
    if section_id == _TYPE:
        layout.add(_TYPE_SORT, count)
    elif section_id == _CORE_TYPE:
        layout.add(_CORE_TYPE_SORT, count)
    elif section_id == _IMPORT:
        for _ in range(count):
            name = reader.extern_name()
            sort = reader.externdesc()
            layout.imports.append(_Import(name, sort, layout.add(sort)))
    else:  # alias
        for _ in range(count):
            sort = reader.sort()
            target = reader.byte()
            if target in (0x00, 0x01):  # export / core export: instance index, name
                reader.u32()
                reader.name()
            elif target == 0x02:  # outer: count, index
                reader.u32()
                reader.u32()
            else:
                raise ValueError(f"invalid alias target {target:#04x}")
            layout.add(sort)


def _read_exports(reader: _Reader, layout: _Layout) -> None:
    for _ in range(reader.u32()):
        name = reader.extern_name()
        sort = reader.sort()
        reader.u32()
        ascribed = reader.byte()
        if ascribed == 0x01:
            reader.externdesc()
        elif ascribed != 0x00:
            raise ValueError(f"invalid export type ascription flag {ascribed:#04x}")
        if sort not in _SORT_NAMES:
            raise ValueError(f"cannot re-export {name!r}: unsupported sort {sort.hex()}")
        layout.exports.append((name, sort))


def _parse(data: bytes) -> _Layout:
    sections = _sections(data)
    layout = _Layout()
    rest = 0  # index of G's first definition section
    while rest < len(sections) and sections[rest].id in _LEADING:
        section = sections[rest]
        rest += 1
        if section.id != _CUSTOM:
            layout.leading.append(section)
            _read_leading(_Reader(data, section.body, section.end), section.id, layout)
    for section in sections[rest:]:
        if section.id == _IMPORT:
            raise ValueError(
                f"cannot wrap this component: it has an import section at offset "
                f"{section.start:#x} after its first definition (only leading type/import/alias "
                f"sections can be copied into the wrapper)"
            )
        if section.id == _EXPORT:
            _read_exports(_Reader(data, section.body, section.end), layout)
    return layout


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def _u32(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _name(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _u32(len(raw)) + raw


def _vec(items: list[bytes]) -> bytes:
    return _u32(len(items)) + b"".join(items)


def _section(section_id: int, body: bytes) -> bytes:
    return bytes((section_id,)) + _u32(len(body)) + body


def _instantiate(component: int, args: list[tuple[str, bytes, int]]) -> bytes:
    """``instanceexpr`` 0x00: instantiate a component with ``(with name (sort idx))*``."""
    encoded = [_name(name) + sort + _u32(index) for name, sort, index in args]
    return b"\x00" + _u32(component) + _vec(encoded)


def _alias_export(sort: bytes, instance: int, name: str) -> bytes:
    """``alias`` with target 0x00: ``(alias export instance name (sort))``."""
    return sort + b"\x00" + _u32(instance) + _name(name)


def _export(name: str, sort: bytes, index: int) -> bytes:
    """``export``: name (0x00 tag), sortidx, no type ascription."""
    return b"\x00" + _name(name) + sort + _u32(index) + b"\x00"


# ----------------------------------------------------------------------------------------------
# The adapter
# ----------------------------------------------------------------------------------------------


def adapter_wat() -> str:
    """The text of ``fastpath.wat`` (package data next to this module)."""
    return (importlib.resources.files("wactor.wasm") / "fastpath.wat").read_text("utf-8")


@functools.cache
def _adapter_components() -> tuple[bytes, bytes]:
    """The binaries of $Types and $Adapter: the two component sections of ``fastpath.wat``."""
    binary = bytes(wasmtime.wat2wasm(adapter_wat()))
    nested = [binary[s.body : s.end] for s in _sections(binary) if s.id == _COMPONENT]
    if len(nested) != 2:
        raise RuntimeError(f"fastpath.wat must define exactly 2 components, found {len(nested)}")
    return nested[0], nested[1]


# ----------------------------------------------------------------------------------------------
# Wrapping
# ----------------------------------------------------------------------------------------------


def wrap_component(data: bytes) -> bytes:
    """Return W: the guest component ``data`` nested in a wrapper that adds :data:`FAST_INTERFACE`.

    W imports exactly what G imports (same names, same types) and exports everything G exports,
    plus :data:`FAST_INTERFACE`. Raises :class:`ValueError` when ``data`` is not a component this
    function can wrap: not a component, imports after its first definition, value imports or
    exports, no ``airssys:core/component-lifecycle@1.0.0`` instance export, or already wrapped.
    Whether G's lifecycle instance really has compatible ``handle-message``/``handle-callback``
    functions is checked by wasmtime when W is compiled.
    """
    data = bytes(data)
    layout = _parse(data)
    export_sorts = dict(layout.exports)
    if FAST_INTERFACE in export_sorts:
        raise ValueError(f"component already exports {FAST_INTERFACE!r} (already wrapped?)")
    if export_sorts.get(WRAPPED_INTERFACE) != _INSTANCE_SORT:
        raise ValueError(f"component does not export the instance {WRAPPED_INTERFACE!r}")
    types_component, adapter_component = _adapter_components()

    new = layout.add  # W's index spaces continue where G's leading sections left them
    out = [_PREAMBLE]
    out.extend(data[s.start : s.end] for s in layout.leading)

    guest = new(_COMPONENT_SORT)
    types = new(_COMPONENT_SORT)
    adapter = new(_COMPONENT_SORT)
    out.append(_section(_COMPONENT, data))
    out.append(_section(_COMPONENT, types_component))
    out.append(_section(_COMPONENT, adapter_component))

    args = [(imp.name, imp.sort, imp.index) for imp in layout.imports]
    guest_instance = new(_INSTANCE_SORT)
    types_instance = new(_INSTANCE_SORT)
    out.append(_section(_INSTANCE, _vec([_instantiate(guest, args), _instantiate(types, [])])))

    aliases: list[bytes] = []
    reexports: list[bytes] = []
    lifecycle = -1
    for name, sort in layout.exports:
        aliases.append(_alias_export(sort, guest_instance, name))
        index = new(sort)
        reexports.append(_export(name, sort, index))
        if name == WRAPPED_INTERFACE:
            lifecycle = index
    out.append(_section(_ALIAS, _vec(aliases)))

    adapter_args = [
        ("types", _INSTANCE_SORT, types_instance),
        ("lifecycle", _INSTANCE_SORT, lifecycle),
    ]
    adapter_instance = new(_INSTANCE_SORT)
    out.append(_section(_INSTANCE, _vec([_instantiate(adapter, adapter_args)])))
    fast = new(_INSTANCE_SORT)
    out.append(
        _section(_ALIAS, _vec([_alias_export(_INSTANCE_SORT, adapter_instance, FAST_INTERFACE)]))
    )

    out.append(_section(_EXPORT, _vec([*reexports, _export(FAST_INTERFACE, _INSTANCE_SORT, fast)])))
    return b"".join(out)
