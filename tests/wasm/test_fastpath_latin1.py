"""The host's converter of big payloads (``_latin1``), and the host path that uses it.

A payload with bytes >= 0x80 from 8 KiB on is turned into the adapter's text by ``$Latin1`` run
on the host (hex digits when 1/64 of its bytes or more are >= 0x80, else the UTF-8 of its latin-1
text), and a big reply back the same way; smaller ones go through CPython's codecs.
"""

from __future__ import annotations

import ctypes
import random
import threading
from collections.abc import Iterator

import pytest

import wactor.wasm._fastcall as fastcall
from conftest import wat_binary
from wactor._ids import ComponentId
from wactor.messaging import Envelope
from wactor.wasm import ComponentInstance, InstanceLimits, WasmEngine, build_linker
from wactor.wasm._latin1 import HEX, TEXT, Converter, converter

KINDS = ["ascii", "high", "mixed", "rare", "runs"]


def _payload(kind: str, size: int, seed: int = 0) -> bytes:
    rng = random.Random(f"{kind}{size}{seed}")
    if kind == "runs":  # what the benchmark sends: runs of ASCII and of bytes >= 0x80
        return bytes(i % 251 for i in range(size))
    share = {"ascii": 0.0, "high": 1.0, "mixed": 0.5, "rare": 0.005}[kind]
    return bytes(
        rng.randrange(128, 256) if rng.random() < share else rng.randrange(128) for _ in range(size)
    )


def test_converter_round_trips_every_kind_and_size() -> None:
    latin1 = converter()
    assert latin1 is not None
    for kind in KINDS:
        for size in [*range(70), 1000, 8191, 70_000, 1 << 20]:
            payload = _payload(kind, size)
            at, length, encoding = latin1.encode(payload)
            text = ctypes.string_at(at, length)
            high = sum(b >= 0x80 for b in payload)
            if high and high >= size >> 6:
                assert (encoding, text) == (HEX, payload.hex().encode()), (kind, size)
            else:
                assert (encoding, text) == (TEXT, payload.decode("latin-1").encode()), (kind, size)
            assert latin1.decode(at, length, encoding) == payload
            assert latin1.decode(text, length, encoding) == payload  # from anywhere in memory


@pytest.mark.parametrize(
    ("text", "encoding"),
    [(b"\xff", TEXT), (b"\xc3", TEXT), (b"\xe2\x82\xac", TEXT), (b"xyz", HEX), (b"0G", HEX)],
)
def test_converter_refuses_what_it_did_not_make(text: bytes, encoding: int) -> None:
    latin1 = converter()
    assert latin1 is not None
    what = "lowercase hex digits" if encoding == HEX else "the UTF-8 of latin-1 text"
    with pytest.raises(ValueError, match=f"not {what}"):
        latin1.decode(text * 50, len(text) * 50, encoding)
    assert latin1.decode(b"ok", 2, TEXT) == b"ok"  # and carries on


def test_each_thread_has_its_own_converter() -> None:
    found: list[Converter | None] = []
    results: list[bool] = []

    def work(seed: int) -> None:
        mine = converter()
        found.append(mine)
        assert mine is not None
        ok = True
        for i in range(200):
            payload = _payload("mixed", 5000 + i, seed)
            at, length, encoding = mine.encode(payload)
            ok = ok and mine.decode(at, length, encoding) == payload
        results.append(ok)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 4
    assert len({id(c) for c in found}) == 4
    assert converter() not in found


def test_a_converter_that_grew_for_a_big_payload_is_replaced() -> None:
    first = converter()
    assert first is not None
    payload = _payload("high", 3 << 20)
    at, length, encoding = first.encode(payload)
    assert first.decode(at, length, encoding) == payload  # still valid: the same converter
    assert first.size > 6 << 20
    second = converter()
    assert second is not None
    assert second is not first
    assert second.size < 1 << 20
    assert converter() is second


# ------------------------------------------------------------------------------------------------
# Through ComponentInstance: payloads and replies on every side of the size limits
# ------------------------------------------------------------------------------------------------


class _Ctx:
    component_id = ComponentId("t", "echo", "0")
    storage = None
    storage_quota = 0


@pytest.fixture(scope="module")
def echo() -> Iterator[ComponentInstance]:
    engine = WasmEngine(None)
    loaded = engine.load(wat_binary("echo").read_bytes(), "echo.wasm")
    assert loaded.fast
    yield ComponentInstance(
        engine,
        build_linker(engine),
        loaded,
        context=_Ctx(),  # type: ignore[arg-type]
        limits=InstanceLimits(256 << 20, 10_000),
    )
    engine.close()


def _env(payload: bytes) -> Envelope:
    return Envelope(ComponentId("a", "b", "0"), _Ctx.component_id, payload)


@pytest.mark.parametrize("kind", KINDS)
def test_echo_on_every_side_of_the_converter_threshold(echo: ComponentInstance, kind: str) -> None:
    edge = fastcall._CONVERT_FROM
    for size in (edge - 2, edge - 1, edge, edge + 1, edge + 2, 3 * edge + 5, 200_000):
        payload = _payload(kind, size)
        assert echo.handle_message(_env(payload)) == payload, size


def test_echo_beyond_the_largest_converted_payload(
    echo: ComponentInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastcall, "LARGEST", 20_000)
    for kind in KINDS:
        payload = _payload(kind, 30_000)
        assert echo.handle_message(_env(payload)) == payload


def test_echo_without_a_converter(echo: ComponentInstance, monkeypatch: pytest.MonkeyPatch) -> None:
    # A thread where the converter cannot be made falls back to CPython's codecs, both ways.
    monkeypatch.setattr(fastcall, "converter", lambda: None)
    for kind in KINDS:
        payload = _payload(kind, 50_000)
        assert echo.handle_message(_env(payload)) == payload


def test_echo_from_many_threads(echo: ComponentInstance) -> None:
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(30):
                payload = _payload(KINDS[i % len(KINDS)], 10_000 + 97 * i, seed)
                assert echo.handle_message(_env(payload)) == payload
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
