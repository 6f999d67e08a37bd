"""The adapter's core code on its own: $Heap, $Latin1 and $Main of ``fastpath.wat``.

No component model around them, so any bytes can go in: $Main is instantiated with $Heap,
$Latin1 and a Python stand-in for the guest G, whose memory is either $Heap's (as in nested W)
or one of its own with a bump allocator (as in flat W, where $Main copies between the two).
The stand-in records what G would see and answers what a test tells it to.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import pytest
import wasmtime

from wactor.wasm._fastpath import adapter_parts, adapter_wat

_I32 = wasmtime.ValType.i32()
NONE = 0xFFFF_FFFF
KINDS = ["ascii", "high", "mixed", "rare"]
TEXT, HEX = 0, 1


def _payload(kind: str, size: int, seed: int = 0) -> bytes:
    rng = random.Random(f"{kind}{size}{seed}")
    share = {"ascii": 0.0, "high": 1.0, "mixed": 0.5, "rare": 0.01}[kind]
    return bytes(
        rng.randrange(128, 256) if rng.random() < share else rng.randrange(128) for _ in range(size)
    )


def _text(payload: bytes) -> bytes:
    return payload.decode("latin-1").encode("utf-8")


def _answer_for(reply: bytes) -> bytes:
    """The answer $Main gives for a reply: "a" bytes, "x" hex digits or "s" latin-1 text."""
    high = sum(b >= 0x80 for b in reply)
    if high == 0:
        return b"a" + reply
    if high >= len(reply) >> 6:
        return b"x" + reply.hex().encode()
    return b"s" + _text(reply)


@pytest.fixture(scope="module")
def engine() -> wasmtime.Engine:
    return wasmtime.Engine()


@pytest.fixture(scope="module")
def modules(engine: wasmtime.Engine) -> dict[str, wasmtime.Module]:
    parts = adapter_parts()
    return {
        name: wasmtime.Module(engine, getattr(parts, name)) for name in ("heap", "latin1", "main")
    }


def _exports(store: wasmtime.Store, instance: wasmtime.Instance) -> dict[str, Any]:
    return dict(instance.exports(store).items())


class Core:
    """$Main with $Heap, $Latin1 and a stand-in guest (see the module docstring).

    ``call(text)`` lowers the payload string ``text`` (any bytes) the way wasmtime does, calls
    handle-message with it and empty metadata, and returns the answer's bytes; the guest's view
    is in ``received`` and ``allocations``.  The guest echoes the payload, or answers what
    ``respond`` writes at the result's address.
    """

    def __init__(
        self,
        engine: wasmtime.Engine,
        modules: dict[str, wasmtime.Module],
        *,
        separate: bool = False,
        respond: Callable[[Core, int, bytes], None] | None = None,
    ) -> None:
        store = self.store = wasmtime.Store(engine)
        heap = _exports(store, wasmtime.Instance(store, modules["heap"], []))
        self.memory, self.realloc = heap["memory"], heap["realloc"]
        if separate:
            self.guest_memory = wasmtime.Memory(
                store, wasmtime.MemoryType(wasmtime.Limits(1, None))
            )
            guest_realloc = wasmtime.Func(store, wasmtime.FuncType([_I32] * 4, [_I32]), self._alloc)
            shared = heap["shared"]
        else:
            self.guest_memory, guest_realloc = self.memory, self.realloc
            shared = wasmtime.Global(store, wasmtime.GlobalType(_I32, False), wasmtime.Val.i32(1))
        self._bump = 0x100
        self.allocations: list[tuple[int, int]] = []
        self.posted: list[int] = []
        self.received: bytes | None = None
        self.message: int = 0
        self.respond = respond
        latin1 = wasmtime.Instance(store, modules["latin1"], [self.memory, self.guest_memory])
        handle = wasmtime.FuncType([_I32], [_I32])
        post = wasmtime.FuncType([_I32], [])
        externs: dict[tuple[str, str], Any] = {
            ("heap", name): heap[name] for name in ("memory", "realloc", "recycle")
        }
        externs |= {("latin1", name): ext for name, ext in _exports(store, latin1).items()}
        externs |= {
            ("guest", "memory"): self.guest_memory,
            ("guest", "realloc"): guest_realloc,
            ("guest", "handle-message"): wasmtime.Func(store, handle, self._guest),
            ("guest", "handle-callback"): wasmtime.Func(store, handle, self._guest),
            ("guest", "post-message"): wasmtime.Func(store, post, self.posted.append),
            ("guest", "post-callback"): wasmtime.Func(store, post, self.posted.append),
            ("guest", "shared"): shared,
        }
        module = modules["main"]
        main = _exports(
            store,
            wasmtime.Instance(store, module, [externs[(i.module, i.name)] for i in module.imports]),
        )
        self.handle = main["handle-message"]
        self.handle_callback = main["handle-callback"]

    # -- the stand-in guest, in its own memory or $Heap's -------------------------------------

    def _alloc(self, old: int, old_size: int, align: int, size: int) -> int:
        assert (old, old_size) == (0, 0)
        self.allocations.append((align, size))
        ptr = (self._bump + align - 1) & -align
        self._bump = ptr + size
        pages = (self._bump >> 16) + 1 - self.guest_memory.size(self.store)
        if pages > 0:
            self.guest_memory.grow(self.store, pages)
        return ptr

    def read(self, at: int, size: int) -> bytes:
        return bytes(self.guest_memory.read(self.store, at, at + size))

    def u32(self, at: int) -> int:
        return int.from_bytes(self.read(at, 4), "little")

    def give(self, data: bytes) -> int:
        """``data`` in a fresh block of the guest's memory."""
        ptr = (
            self.realloc(self.store, 0, 0, 1, len(data))
            if self.guest_memory is self.memory
            else (self._alloc(0, 0, 1, len(data)))
        )
        self.guest_memory.write(self.store, data, ptr)
        return int(ptr)

    def _guest(self, msg: int) -> int:
        self.message = msg
        ptr, size = self.u32(msg + 24), self.u32(msg + 28)
        self.received = self.read(ptr, size)
        ret = self.give(bytes(20)) + 3 & -4  # a result area, aligned to 4
        if self.respond is not None:
            self.respond(self, ret, self.received)
        else:
            reply = self.give(self.received)
            result = bytes([0, 0, 0, 0, 1, 0, 0, 0]) + reply.to_bytes(4, "little")
            self.guest_memory.write(self.store, result + size.to_bytes(4, "little"), ret)
        return ret

    # -- the host's side -----------------------------------------------------------------------

    def call(self, text: bytes, encoding: int = TEXT, *, callback: bool = False) -> bytes:
        self.received = None
        self._bump = 0x100  # what the guest allocated in its last call is dead
        ptr = self.realloc(self.store, 0, 0, 1, len(text) + 16)
        meta = self.realloc(self.store, 0, 0, 1, 0)
        assert isinstance(ptr, int)
        assert isinstance(meta, int)
        # After the text: stale continuation bytes, which must not complete a char at its end.
        self.memory.write(self.store, text + b"\xa9" * 16, ptr)
        lengths = [0, 0, 0, NONE, 0, 0, NONE, NONE]  # no metadata: empty ids, no options
        func = self.handle_callback if callback else self.handle
        at = func(self.store, ptr, len(text), meta, 0, 0, *lengths, encoding)
        assert isinstance(at, int)
        ptr, size = self._heap_u32(at), self._heap_u32(at + 4)
        return bytes(self.memory.read(self.store, ptr, ptr + size))

    def _heap_u32(self, at: int) -> int:
        return int.from_bytes(self.memory.read(self.store, at, at + 4), "little")


@pytest.fixture(params=["separate", "shared"])
def core(
    request: pytest.FixtureRequest, engine: wasmtime.Engine, modules: dict[str, wasmtime.Module]
) -> Core:
    return Core(engine, modules, separate=request.param == "separate")


def test_pack_table_is_what_it_says() -> None:
    # PACK (a data segment in fastpath.wat): entry k lists the set bits of k, then 0x80s.
    match = re.search(r'\(data \(i32\.const 0x40\)\s*((?:"[^"]*"\s*)+)\)', adapter_wat())
    assert match is not None
    raw = "".join(re.findall(r'"([^"]*)"', match.group(1)))
    table = bytes(int(h, 16) for h in re.findall(r"\\([0-9a-f]{2})", raw))
    expected = b"".join(
        bytes([j for j in range(8) if k >> j & 1] + [0x80] * (8 - bin(k).count("1")))
        for k in range(256)
    )
    assert len(raw) == 3 * len(table)  # nothing but \xx escapes
    assert table == expected


def test_both_copies_of_the_fast_function_type_are_the_same() -> None:
    # Flat W takes the top-level $fast-func, nested W $Adapter's own.
    found = re.findall(r"\(type \$fast-func \(func(.*?)\(result string\)\)\)", adapter_wat(), re.S)
    assert len(found) == 2
    assert " ".join(found[0].split()) == " ".join(found[1].split())


@pytest.mark.parametrize("kind", KINDS)
def test_converts_every_length(core: Core, kind: str) -> None:
    for size in [*range(100), 1000, 4097, 70_000]:
        payload = _payload(kind, size)
        assert core.call(_text(payload)) == _answer_for(payload), size
        assert core.received == payload
        assert core.call(payload.hex().encode(), HEX) == _answer_for(payload), size
        assert core.received == payload


def test_converts_random_payloads(core: Core) -> None:
    rng = random.Random(99)
    for _ in range(1500):
        size = rng.randrange(100) if rng.random() < 0.8 else rng.randrange(5000)
        kind = rng.choice(KINDS)
        payload = _payload(kind, size, rng.randrange(1000))
        encoding = rng.choice([TEXT, HEX])
        text = payload.hex().encode() if encoding == HEX else _text(payload)
        assert core.call(text, encoding) == _answer_for(payload)
        assert core.received == payload


def test_runs_of_two_byte_chars_and_blocks_that_straddle_them(core: Core) -> None:
    # Blocks of 16 text bytes that hold 8 whole 2-byte chars take a shortcut; any shift of such
    # a run by an odd number of ASCII bytes does not.
    for prefix in range(20):
        for run in (8, 15, 16, 17, 40):
            payload = b"a" * prefix + bytes(range(0x80, 0x80 + run)) + b"z" * (prefix % 3)
            assert core.call(_text(payload)) == _answer_for(payload)
            assert core.received == payload


MALFORMED_TEXT = [
    b"\x80",  # a continuation byte without a lead byte
    b"\xbf",
    b"\xc3",  # a lead byte without its continuation byte (at the end, or before ASCII)
    b"\xc3A",
    b"\xc3\xc3\xa9",
    b"\xc0\x80",  # overlong
    b"\xc1\xbf",
    b"\xc4\x80",  # U+0100, well-formed but no byte
    b"\xdf\xbf",
    b"\xe2\x82\xac",
    b"\xed\xa0\x80",  # a surrogate
    b"\xf0\x9f\x98\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xfe",
    b"\xff",
    b"\xc3\xa9\xa9",  # one continuation byte too many
]


@pytest.mark.parametrize("bad", MALFORMED_TEXT)
def test_traps_on_text_that_is_not_latin1_utf8(
    engine: wasmtime.Engine, modules: dict[str, wasmtime.Module], bad: bytes
) -> None:
    # Before the bad bytes: ASCII or 2-byte chars, so they land on every lane of a block of 16
    # and in the last bytes (converted one by one); after them, valid text.
    for before in range(40):
        for prefix in (b"a" * before, b"a" * (before % 2) + b"\xc3\xa9" * (before // 2)):
            for after in (b"", b"z" * 3, b"\xc3\xa9" * 20):
                core = Core(engine, modules)
                with pytest.raises(wasmtime.Trap, match="unreachable"):
                    core.call(prefix + bad + after)
                assert core.received is None  # the guest never ran


@pytest.mark.parametrize("bad", [b"A", b"F", b"g", b"G", b"/", b":", b"`", b" ", b"\x00", b"\xff"])
def test_traps_on_hex_that_is_not_lowercase_digits(
    engine: wasmtime.Engine, modules: dict[str, wasmtime.Module], bad: bytes
) -> None:
    # At every position of a block of 32 digits and of the last digits (two at a time).
    for size in (2, 34, 64, 70):
        for at in range(size):
            digits = bytearray(b"0123456789abcdef" * 5)[:size]
            digits[at : at + 1] = bad
            core = Core(engine, modules)
            with pytest.raises(wasmtime.Trap, match="unreachable"):
                core.call(bytes(digits), HEX)
            assert core.received is None


@pytest.mark.parametrize("size", [1, 3, 33, 65])
def test_traps_on_an_odd_number_of_hex_digits(
    engine: wasmtime.Engine, modules: dict[str, wasmtime.Module], size: int
) -> None:
    with pytest.raises(wasmtime.Trap, match="unreachable"):
        Core(engine, modules).call(b"a" * size, HEX)


def test_traps_on_an_unknown_payload_encoding(
    engine: wasmtime.Engine, modules: dict[str, wasmtime.Module]
) -> None:
    with pytest.raises(wasmtime.Trap, match="unreachable"):
        Core(engine, modules).call(b"abc", 2)


def test_the_message_is_allocated_in_the_guest_as_wasmtime_would(
    engine: wasmtime.Engine, modules: dict[str, wasmtime.Module]
) -> None:
    # The record (align 8, 104 bytes), then a fresh block per string and the payload, in the
    # order of the record's fields: wasmtime's fused adapter asks a guest's realloc the same.
    core = Core(engine, modules, separate=True)
    core.call(_text(b"\xff\x00\xfe"))
    assert core.allocations[:5] == [(8, 104), (1, 0), (1, 0), (1, 0), (1, 3)]
    assert core.message % 8 == 0


def test_post_return_runs_once_with_the_result(core: Core) -> None:
    core.call(b"abc")
    ret = core.posted[-1]
    assert len(core.posted) == 1
    assert ret % 4 == 0
    core.call(b"", callback=True)
    assert len(core.posted) == 2


def _writes(data: bytes) -> Callable[[Core, int, bytes], None]:
    def respond(core: Core, ret: int, payload: bytes) -> None:
        core.guest_memory.write(core.store, data, ret)

    return respond


@pytest.mark.parametrize(
    ("result", "answer"),
    [
        (bytes([0, 0, 0, 0, 0]), b"n"),  # ok(none)
        (bytes([1, 0, 0, 0, 3]), b"3"),  # err(timeout)
    ],
)
def test_answers_without_a_string(
    engine: wasmtime.Engine, modules: dict[str, wasmtime.Module], result: bytes, answer: bytes
) -> None:
    core = Core(engine, modules, separate=True, respond=_writes(result + bytes(11)))
    assert core.call(b"x") == answer


@pytest.mark.parametrize(
    "result",
    [
        bytes([2, 0, 0, 0, 0]),  # result discriminant out of range
        bytes([0, 0, 0, 0, 2]),  # option discriminant out of range
        bytes([1, 0, 0, 0, 7]),  # wasm-error case out of range
    ],
)
def test_a_result_that_does_not_lift_traps(
    engine: wasmtime.Engine, modules: dict[str, wasmtime.Module], result: bytes
) -> None:
    core = Core(engine, modules, separate=True, respond=_writes(result + bytes(11)))
    with pytest.raises(wasmtime.Trap, match="unreachable"):
        core.call(b"x")
    assert core.posted == []


def test_error_string_is_copied_out(
    engine: wasmtime.Engine, modules: dict[str, wasmtime.Module]
) -> None:
    def respond(core: Core, ret: int, payload: bytes) -> None:
        text = b"runtime \xe2\x82\xac"
        at = core.give(text)
        core.guest_memory.write(
            core.store, bytes([1, 0, 0, 0, 6, 0, 0, 0]) + at.to_bytes(4, "little"), ret
        )
        core.guest_memory.write(core.store, len(text).to_bytes(4, "little"), ret + 12)

    for separate in (True, False):
        core = Core(engine, modules, separate=separate, respond=respond)
        assert core.call(b"x") == b"6runtime \xe2\x82\xac"
