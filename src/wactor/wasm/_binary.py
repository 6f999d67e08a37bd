"""Reading and writing the component binary format, as much as the fast-path wrapper needs.

:func:`walk` goes through the sections of a component (or of a component nested in one) and
keeps what :mod:`wactor.wasm._fastpath` asks of a guest: its imports and exports, the size of
every index space, and what each function, instance and nested component of the guest is, far
enough to follow an exported instance to the ``canon lift`` of its functions. The encodings
are those of ``design/mvp/Binary.md`` of the component model (version 0x0d, as wasmtime 50
reads it); the ``_encode`` helpers at the bottom write the few definitions the wrapper adds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "PREAMBLE",
    "Imported",
    "Inline",
    "Instantiate",
    "Layout",
    "Lift",
    "Ref",
    "Section",
    "sections",
    "walk",
]

PREAMBLE = b"\x00asm\x0d\x00\x01\x00"
CORE_PREAMBLE = b"\x00asm\x01\x00\x00\x00"

# Section ids.
CUSTOM, CORE_MODULE, CORE_INSTANCE, CORE_TYPE, COMPONENT = 0, 1, 2, 3, 4
INSTANCE, ALIAS, TYPE, CANON, START, IMPORT, EXPORT = 5, 6, 7, 8, 9, 10, 11

# Sorts, as encoded in `sort` (a core sort is 0x00 followed by the core sort byte).
CORE_FUNC = b"\x00\x00"
CORE_MEMORY = b"\x00\x02"
CORE_GLOBAL = b"\x00\x03"
CORE_TYPE_SORT = b"\x00\x10"
CORE_MODULE_SORT = b"\x00\x11"
CORE_INSTANCE_SORT = b"\x00\x12"
FUNC = b"\x01"
VALUE = b"\x02"
TYPE_SORT = b"\x03"
COMPONENT_SORT = b"\x04"
INSTANCE_SORT = b"\x05"
# `externdesc` tags -> the sort of the item they describe (the tags match the `sort` bytes; early
# drafts of Binary.md had instance and component swapped).
_EXTERNDESC_SORT = {
    0x00: CORE_MODULE_SORT,
    0x01: FUNC,
    0x02: VALUE,
    0x03: TYPE_SORT,
    0x04: COMPONENT_SORT,
    0x05: INSTANCE_SORT,
}
# canonopt: string encodings, then options with an index.
UTF8, MEMORY_OPT, REALLOC_OPT, POST_RETURN_OPT = 0x00, 0x03, 0x04, 0x05
_ENCODINGS = frozenset({0x00, 0x01, 0x02})
_PLAIN_OPTS = frozenset({MEMORY_OPT, REALLOC_OPT, POST_RETURN_OPT})
_INDEXED_OPTS = _PLAIN_OPTS | {0x07, 0x08}  # and callback, core type


class Reader:
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

    def items(self) -> dict[str, tuple[bytes, int]]:
        """``vec(<instantiatearg>)`` (``with_inline`` false) as name -> (sort, index)."""
        found: dict[str, tuple[bytes, int]] = {}
        for _ in range(self.u32()):
            name = self.name()
            found[name] = (self.sort(), self.u32())
        return found


@dataclass(frozen=True, slots=True)
class Section:
    """One section: ``data[start:end]`` is the whole section, ``body`` where its contents start."""

    id: int
    start: int
    body: int
    end: int


def sections(data: bytes, start: int = 0, end: int | None = None) -> list[Section]:
    """The sections of the component ``data``, or of the one at ``data[start:end]`` (the contents
    of a component section: components nested in a component have a preamble too)."""
    if data[start : start + 8] != PREAMBLE:
        if data[start : start + 8] == CORE_PREAMBLE:
            raise ValueError("not a component: this is a core wasm module")
        raise ValueError("not a component binary (bad preamble; only version 0x0d is supported)")
    start += 8
    found: list[Section] = []
    reader = Reader(data, start, end)
    while not reader.at_end():
        at = reader.pos
        section_id = reader.byte()
        size = reader.u32()
        body = reader.pos
        if body + size > reader.end:
            raise ValueError(f"section {section_id} at offset {at:#x} runs past the end")
        found.append(Section(section_id, at, body, body + size))
        reader.pos = body + size
    return found


# ----------------------------------------------------------------------------------------------
# What the items of an index space are
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lift:
    """A function defined by ``canon lift``: its core function and options (None: absent)."""

    core_func: int
    memory: int | None
    realloc: int | None
    post_return: int | None
    utf8: bool  # string-encoding=utf8, stated or by default
    plain: bool  # no option beyond encoding, memory, realloc and post-return (no async...)


@dataclass(frozen=True, slots=True)
class Ref:
    """An item an export adds to its sort's index space: the item it exports, ``index``."""

    index: int


@dataclass(frozen=True, slots=True)
class Imported:
    """An item the component imports under ``name``."""

    name: str


@dataclass(frozen=True, slots=True)
class Inline:
    """An instance made of exports: name -> (sort, index)."""

    items: dict[str, tuple[bytes, int]]


@dataclass(frozen=True, slots=True)
class Instantiate:
    """An instance of the nested component ``component``, with its arguments."""

    component: int
    args: dict[str, tuple[bytes, int]]


Def = Lift | Ref | Imported | Inline | Instantiate | tuple[int, int] | None
"""What an item is: funcs, instances and components get a kind (a nested component its body
``(start, end)``), anything else None."""


@dataclass(slots=True)
class Import:
    name: str
    sort: bytes
    index: int  # in the sort's index space


@dataclass(slots=True)
class Export:
    name: str
    sort: bytes
    item: int  # the item exported
    index: int  # the index the export adds


@dataclass(slots=True)
class Layout:
    """A component's index spaces and its imports and exports, as :func:`walk` found them.

    ``leading`` is the run of sections before the first definition (types, imports, aliases;
    custom sections skipped) and ``leading_counts`` the index spaces after them. ``opaque`` says
    why the index spaces past some point are unknown (a definition this module cannot read);
    imports and exports are read all the same.
    """

    spaces: dict[bytes, list[Def]] = field(default_factory=dict)
    imports: list[Import] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)
    leading: list[Section] = field(default_factory=list)
    leading_counts: dict[bytes, int] = field(default_factory=dict)
    late_import: Section | None = None  # the first import section after a definition
    opaque: str | None = None

    @classmethod
    def sized(cls, counts: dict[bytes, int]) -> Layout:
        """Index spaces of the given sizes, of unknown items (for a component being written)."""
        return cls(spaces={sort: [None] * n for sort, n in counts.items()})

    def add(self, sort: bytes, kind: Def = None, n: int = 1) -> int:
        """Append ``n`` items of ``kind`` to the ``sort`` index space; return the first index."""
        space = self.spaces.setdefault(sort, [])
        space.extend([kind] * n)
        return len(space) - n

    def count(self, sort: bytes) -> int:
        return len(self.spaces.get(sort, ()))

    def kind(self, sort: bytes, index: int) -> Def:
        """What item ``index`` of ``sort`` is, following exports to what they export."""
        space = self.spaces.get(sort, [])
        while 0 <= index < len(space):
            item = space[index]
            if not isinstance(item, Ref) or item.index >= index:
                return item
            index = item.index
        return None


_LEADING = frozenset({CUSTOM, CORE_TYPE, ALIAS, TYPE, IMPORT})


def walk(data: bytes, start: int = 0, end: int | None = None) -> Layout:
    """Read the component ``data`` (or the one at ``data[start:end]``, see :func:`sections`)."""
    layout = Layout()
    leading = True
    for section in sections(data, start, end):
        if leading and section.id not in _LEADING:
            leading = False
            layout.leading_counts = {s: len(items) for s, items in layout.spaces.items()}
        if section.id == CUSTOM:
            continue
        if leading:
            layout.leading.append(section)
        elif section.id == IMPORT and layout.late_import is None:
            layout.late_import = section
        reader = Reader(data, section.body, section.end)
        try:
            _read_section(section, reader, layout)
        except _Opaque as exc:
            layout.opaque = layout.opaque or str(exc)
        except ValueError as exc:
            if leading or section.id == EXPORT:
                raise  # what every wrapper needs to know
            layout.opaque = layout.opaque or str(exc)
    if leading:
        layout.leading_counts = {s: len(items) for s, items in layout.spaces.items()}
    return layout


class _Opaque(Exception):
    """A definition whose items this module cannot tell: the index spaces are unknown after it."""


def _read_section(section: Section, reader: Reader, layout: Layout) -> None:
    sid = section.id
    if sid == CORE_MODULE:
        layout.add(CORE_MODULE_SORT)
    elif sid == COMPONENT:
        layout.add(COMPONENT_SORT, (section.body, section.end))
    elif sid in (CORE_INSTANCE, CORE_TYPE, TYPE):
        sort = {CORE_INSTANCE: CORE_INSTANCE_SORT, CORE_TYPE: CORE_TYPE_SORT, TYPE: TYPE_SORT}[sid]
        layout.add(sort, None, reader.u32())
    elif sid == INSTANCE:
        for _ in range(reader.u32()):
            layout.add(INSTANCE_SORT, _instance(reader))
    elif sid == ALIAS:
        for _ in range(reader.u32()):
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
    elif sid == CANON:
        for _ in range(reader.u32()):
            _canon(reader, layout)
    elif sid == IMPORT:
        for _ in range(reader.u32()):
            name = reader.extern_name()
            sort = reader.externdesc()
            layout.imports.append(Import(name, sort, layout.add(sort, Imported(name))))
    elif sid == EXPORT:
        for _ in range(reader.u32()):
            name = reader.extern_name()
            sort = reader.sort()
            item = reader.u32()
            ascribed = reader.byte()
            if ascribed == 0x01:
                reader.externdesc()
            elif ascribed != 0x00:
                raise ValueError(f"invalid export type ascription flag {ascribed:#04x}")
            layout.exports.append(Export(name, sort, item, layout.add(sort, Ref(item))))
    else:
        raise _Opaque(f"section {sid} at offset {section.start:#x}")


def _instance(reader: Reader) -> Def:
    tag = reader.byte()
    if tag == 0x00:
        component = reader.u32()
        return Instantiate(component, reader.items())
    if tag == 0x01:
        items: dict[str, tuple[bytes, int]] = {}
        for _ in range(reader.u32()):
            name = reader.extern_name()
            items[name] = (reader.sort(), reader.u32())
        return Inline(items)
    raise ValueError(f"invalid instance expression {tag:#04x} at offset {reader.pos - 1:#x}")


def _canon(reader: Reader, layout: Layout) -> None:
    at = reader.pos
    op = reader.byte()
    if op in (0x00, 0x01):
        if reader.byte() != 0x00:
            raise _Opaque(f"canonical function at offset {at:#x}")
        index = reader.u32()
        opts = _opts(reader)
        if op == 0x00:
            reader.u32()  # the type
            layout.add(FUNC, _lift(index, opts))
        else:
            layout.add(CORE_FUNC)
    elif op in (0x02, 0x03, 0x04):  # resource.new / .drop / .rep of a type
        reader.u32()
        layout.add(CORE_FUNC)
    else:
        raise _Opaque(f"canonical function {op:#04x} at offset {at:#x}")


def _opts(reader: Reader) -> list[tuple[int, int]]:
    opts = []
    for _ in range(reader.u32()):
        opt = reader.byte()
        if opt in _INDEXED_OPTS:
            opts.append((opt, reader.u32()))
        elif opt in _ENCODINGS or opt in (0x06, 0x09):
            opts.append((opt, -1))
        else:
            raise _Opaque(f"canonical option {opt:#04x} at offset {reader.pos - 1:#x}")
    return opts


def _lift(core_func: int, opts: list[tuple[int, int]]) -> Lift:
    found = dict(opts)
    encodings = [opt for opt, _ in opts if opt in _ENCODINGS]
    return Lift(
        core_func,
        found.get(MEMORY_OPT),
        found.get(REALLOC_OPT),
        found.get(POST_RETURN_OPT),
        utf8=encodings in ([], [UTF8]),
        plain=all(opt in _ENCODINGS or opt in _PLAIN_OPTS for opt, _ in opts),
    )


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def u32(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def name(text: str) -> bytes:
    raw = text.encode("utf-8")
    return u32(len(raw)) + raw


def vec(items: list[bytes]) -> bytes:
    return u32(len(items)) + b"".join(items)


def section(section_id: int, body: bytes) -> bytes:
    return bytes((section_id,)) + u32(len(body)) + body


def instantiate(component: int, args: list[tuple[str, bytes, int]]) -> bytes:
    """``instanceexpr`` 0x00: instantiate a component with ``(with name (sort idx))*``."""
    return b"\x00" + u32(component) + vec([name(n) + s + u32(i) for n, s, i in args])


def inline_instance(items: list[tuple[str, bytes, int]]) -> bytes:
    """``instanceexpr`` 0x01: an instance of the given exports."""
    return b"\x01" + vec([b"\x00" + name(n) + s + u32(i) for n, s, i in items])


def core_instantiate(module: int, args: list[tuple[str, int]]) -> bytes:
    """``core:instanceexpr`` 0x00: instantiate a core module with ``(with name (instance i))*``."""
    return b"\x00" + u32(module) + vec([name(n) + b"\x12" + u32(i) for n, i in args])


def core_inline_instance(items: list[tuple[str, bytes, int]]) -> bytes:
    """``core:instanceexpr`` 0x01: a core instance of the given exports (core sorts)."""
    return b"\x01" + vec([name(n) + s[1:] + u32(i) for n, s, i in items])


def alias_export(sort: bytes, instance: int, export: str) -> bytes:
    """``alias`` with target 0x00: ``(alias export instance name (sort))``."""
    return sort + b"\x00" + u32(instance) + name(export)


def alias_core_export(sort: bytes, instance: int, export: str) -> bytes:
    """``alias`` with target 0x01: ``(alias core export instance name (core sort))``."""
    return sort + b"\x01" + u32(instance) + name(export)


def lift(core_func: int, memory: int, realloc: int, func_type: int) -> bytes:
    """``canon lift`` with string-encoding=utf8, a memory and a realloc."""
    opts = vec(
        [bytes((UTF8,)), bytes((MEMORY_OPT,)) + u32(memory), bytes((REALLOC_OPT,)) + u32(realloc)]
    )
    return b"\x00\x00" + u32(core_func) + opts + u32(func_type)


def export(export_name: str, sort: bytes, index: int) -> bytes:
    """``export``: name (0x00 tag), sortidx, no type ascription."""
    return b"\x00" + name(export_name) + sort + u32(index) + b"\x00"
