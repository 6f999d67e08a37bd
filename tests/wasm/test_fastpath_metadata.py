"""The message's metadata on the fast path: a guest sees exactly the record it sees without it.

On the fast path the envelope crosses into the adapter as one metadata string and a few scalars
(see ``fastpath.wat``), and the adapter builds the guest's ``component-message``. Every test here
delivers the same envelopes to one instance of the guest wrapped (the fast path) and one not (the
record lowered field by field) and compares what each guest saw: ``recorder.wat`` answers with
every byte of the record it received; the componentize-py probe guest with its ``whoami`` text
and the callbacks it kept.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from conftest import COMPILED_CACHE, guest_binary, wat_binary
from wactor._ids import ComponentId
from wactor.errors import GuestError, InvalidMessageError
from wactor.messaging import Envelope
from wactor.wasm import ComponentInstance, InstanceLimits, WasmEngine, build_linker
from wactor.wasm._engine import EngineSettings


class _Ctx:
    """A guest context for calls that use no host function."""

    component_id = ComponentId("t", "guest", "0")
    storage = None
    storage_quota = 0


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[WasmEngine, WasmEngine]]:
    """An engine that wraps guests (the fast path) and one that does not."""
    fast = WasmEngine(COMPILED_CACHE)
    plain = WasmEngine(COMPILED_CACHE, EngineSettings(fast_path=False))
    yield fast, plain
    fast.close()
    plain.close()


@dataclass
class Pair:
    """One instance of a guest on the fast path and one on the plain path."""

    fast: ComponentInstance
    plain: ComponentInstance

    def message(self, env: Envelope) -> bytes | None:
        """Deliver ``env`` to both; both must answer the same, which is returned."""
        fast, plain = self.fast.handle_message(env), self.plain.handle_message(env)
        assert fast == plain
        return fast

    def error(self, env: Envelope, *, callback: bool = False) -> GuestError:
        """Deliver ``env`` to both; both must fail with the same guest error, which is returned."""
        errors = []
        for instance in (self.fast, self.plain):
            deliver = instance.handle_callback if callback else instance.handle_message
            with pytest.raises(GuestError) as caught:
                deliver(env)
            errors.append(caught.value)
        fast, plain = errors
        assert (fast.case, fast.detail, str(fast)) == (plain.case, plain.detail, str(plain))
        return fast


def _pair(engines: tuple[WasmEngine, WasmEngine], data: bytes, memory: int = 64 << 20) -> Pair:
    instances = []
    for engine in engines:
        loaded = engine.load(data, "guest.wasm")
        instance = ComponentInstance(
            engine,
            build_linker(engine),
            loaded,
            context=_Ctx(),  # type: ignore[arg-type]
            limits=InstanceLimits(memory, 10_000),
        )
        instances.append(instance)
    fast, plain = instances
    assert fast.fast
    assert not plain.fast
    return Pair(fast, plain)


@pytest.fixture
def recorder(engines: tuple[WasmEngine, WasmEngine]) -> Pair:
    return _pair(engines, wat_binary("recorder").read_bytes())


# ------------------------------------------------------------------------------------------------
# What recorder.wat answers: the record it received
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """A component-message as the guest received it (strings as their raw bytes)."""

    sender: tuple[bytes, bytes, bytes]
    correlation_id: bytes | None
    reply_to: tuple[bytes, bytes, bytes] | None
    seconds: int
    nanoseconds: int
    content_type: bytes | None
    payload: bytes


def _parse(record: bytes) -> Seen:
    at = 0

    def take(fmt: str) -> Any:
        nonlocal at
        (value,) = struct.unpack_from(fmt, record, at)
        at += struct.calcsize(fmt)
        return value

    def string() -> bytes:
        nonlocal at
        size = take("<I")
        at += size
        return record[at - size : at]

    def option(read: Any) -> Any:
        return read() if take("<B") else None

    sender = (string(), string(), string())
    correlation_id = option(string)
    reply_to = option(lambda: (string(), string(), string()))
    seconds, nanoseconds = take("<Q"), take("<I")
    content_type = option(string)
    payload = string()
    assert at == len(record)
    return Seen(sender, correlation_id, reply_to, seconds, nanoseconds, content_type, payload)


def _expected(env: Envelope) -> Seen:
    def cid(value: ComponentId) -> tuple[bytes, bytes, bytes]:
        return (value.namespace.encode(), value.name.encode(), value.instance.encode())

    def text(value: str | None) -> bytes | None:
        return None if value is None else value.encode()

    return Seen(
        sender=cid(env.sender),
        correlation_id=text(env.correlation_id),
        reply_to=None if env.reply_to is None else cid(env.reply_to),
        seconds=env.timestamp_ns // 10**9,
        nanoseconds=env.timestamp_ns % 10**9,
        content_type=text(env.content_type),
        payload=env.payload,
    )


SENDER = ComponentId("shop", "client", "0")
TARGET = _Ctx.component_id
BASE = Envelope(SENDER, TARGET, b"hello", timestamp_ns=1_764_000_000_123_456_789)

ENVELOPES = {
    "all options absent": BASE,
    "all options present": replace(
        BASE, correlation_id="c-1", reply_to=SENDER, content_type="text/plain"
    ),
    "reply-to another id": replace(BASE, reply_to=ComponentId("ops", "audit", "7")),
    "only a correlation id": replace(BASE, correlation_id="a3f9"),
    "only a content type": replace(BASE, content_type="application/json"),
    "empty strings everywhere": Envelope(
        ComponentId("", "", ""),
        TARGET,
        b"",
        correlation_id="",
        reply_to=ComponentId("", "", ""),
        content_type="",
        timestamp_ns=0,
    ),
    "non-ASCII text in every string": Envelope(
        ComponentId("s\u00fc", "\u20ac\u20ac", "\U0001f600"),
        TARGET,
        "\u00e9t\u00e9 \u2603".encode(),
        correlation_id="corr-\u00e9\u20ac\U0001f600\x00",
        reply_to=ComponentId("\u00ff", "\u0100", "\U0010ffff"),
        content_type="text/plain; charset=\u00fc",
        timestamp_ns=5,
    ),
    "payload of every byte value": replace(BASE, payload=bytes(range(256)) * 3),
    "largest timestamp": replace(BASE, timestamp_ns=(1 << 64) - 1),
    "long strings": replace(
        BASE, correlation_id="c" * 5000, content_type="t" * 70_000, payload=b"\x80" * 70_000
    ),
}


@pytest.mark.parametrize("name", ENVELOPES)
def test_guest_sees_the_envelope_exactly_as_without_the_fast_path(
    recorder: Pair, name: str
) -> None:
    env = ENVELOPES[name]
    seen = recorder.message(env)
    assert seen is not None
    assert _parse(seen) == _expected(env)


@pytest.mark.parametrize("name", ENVELOPES)
def test_callback_sees_the_envelope_exactly_as_without_the_fast_path(
    recorder: Pair, name: str
) -> None:
    env = replace(ENVELOPES[name], kind="callback")
    recorder.fast.handle_callback(env)
    recorder.plain.handle_callback(env)
    kept = recorder.message(replace(BASE, payload=b"?"))
    assert kept is not None
    assert _parse(kept) == _expected(env)


def test_ids_that_change_between_calls_reach_the_guest(recorder: Pair) -> None:
    # The host keeps the ids it has encoded; each call must still carry its own.
    a, b = ComponentId("a", "one", "0"), ComponentId("b", "two", "1")
    same_as_a = ComponentId("a", "one", "0")  # equal, not the same object
    plan = [
        (a, None),
        (a, a),
        (a, b),
        (b, a),
        (same_as_a, None),
        (b, None),
        (a, same_as_a),
        (a, None),
    ]
    many = [(ComponentId("n", f"id-{i}", str(i)), None) for i in range(600)]  # more than it keeps
    for sender, reply_to in [*plan, *many, *plan]:
        env = replace(BASE, sender=sender, reply_to=reply_to, correlation_id=str(sender))
        seen = recorder.message(env)
        assert seen is not None
        assert _parse(seen) == _expected(env)


def test_reply_none_and_empty_reply(recorder: Pair) -> None:
    assert recorder.message(replace(BASE, payload=b"-")) is None
    assert recorder.message(replace(BASE, payload=b"~")) == b""


CASES = [
    (b"0", "component-not-found"),
    (b"1", "instantiation-failed"),
    (b"2", "export-not-found"),
    (b"4", "resource-limit-exceeded"),
    (b"5", "invalid-component"),
    (b"6", "runtime-error"),
]


@pytest.mark.parametrize(("digit", "case"), CASES)
@pytest.mark.parametrize("text", ["", "no such thing", "\u00e9\u20ac\U0001f600 \x00 end"])
def test_guest_errors_read_the_same_on_both_paths(
    recorder: Pair, digit: bytes, case: str, text: str
) -> None:
    env = replace(BASE, payload=b"!" + digit + text.encode())
    for callback in (False, True):
        error = recorder.error(env, callback=callback)
        assert (error.case, error.detail) == (case, text)


def test_guest_timeout_error_has_no_detail(recorder: Pair) -> None:
    for callback in (False, True):
        error = recorder.error(replace(BASE, payload=b"!3"), callback=callback)
        assert (error.case, error.detail) == ("timeout", None)


def test_a_timestamp_beyond_u64_is_an_invalid_message(recorder: Pair) -> None:
    for stamp in (-1, 1 << 64):
        with pytest.raises(InvalidMessageError, match=f"timestamp {stamp} "):
            recorder.fast.handle_message(replace(BASE, timestamp_ns=stamp))
    assert not recorder.fast.poisoned  # nothing reached the guest
    assert recorder.message(BASE) is not None


def test_payload_that_is_not_bytes_crosses_as_its_bytes(recorder: Pair) -> None:
    for payload in (bytearray(b"\x00\xffab"), memoryview(b"\x80xyz")):
        env = replace(BASE, payload=payload)  # type: ignore[arg-type]
        seen = recorder.message(env)
        assert seen is not None
        assert _parse(seen).payload == bytes(payload)


# ------------------------------------------------------------------------------------------------
# A componentize-py guest
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def probe(engines: tuple[WasmEngine, WasmEngine]) -> Pair:
    return _pair(engines, guest_binary("probe").read_bytes(), memory=256 << 20)


PROBE_ENVELOPES = [
    "all options absent",
    "all options present",
    "reply-to another id",
    "only a correlation id",
    "only a content type",
    "non-ASCII text in every string",
    "largest timestamp",
]


@pytest.mark.parametrize("name", PROBE_ENVELOPES)
def test_python_guest_sees_the_same_message(probe: Pair, name: str) -> None:
    env = replace(ENVELOPES[name], payload=b"whoami")
    seen = probe.message(env)
    assert seen is not None
    expected = _expected(env)
    reply_to = "none" if env.reply_to is None else str(env.reply_to)
    assert seen.decode() == (
        f"sender={env.sender} reply-to={reply_to} ct={env.content_type or 'none'} "
        f"corr={env.correlation_id or 'none'} ts={expected.seconds}.{expected.nanoseconds:09d}"
    )


def test_python_guest_callbacks_see_the_same_message(probe: Pair) -> None:
    for name in PROBE_ENVELOPES:
        env = replace(ENVELOPES[name], kind="callback", payload=f"reply \u00e9 {name}".encode())
        probe.fast.handle_callback(env)
        probe.plain.handle_callback(env)
    kept = probe.message(replace(BASE, payload=b"callbacks"))
    assert kept is not None
    lines = kept.decode().splitlines()
    assert lines[-len(PROBE_ENVELOPES) :] == [
        f"{ENVELOPES[name].correlation_id} ok reply \u00e9 {name}" for name in PROBE_ENVELOPES
    ]
