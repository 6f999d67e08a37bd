"""The compile cache: hits across engines, corrupt or stale entries rebuilt, never trusted."""

from __future__ import annotations

from pathlib import Path

from conftest import wat_binary
from wactor._ids import ComponentId
from wactor.messaging import Envelope
from wactor.wasm import ComponentInstance, InstanceLimits, WasmEngine, build_linker
from wactor.wasm._cache import CacheStats


class _Ctx:
    """A guest context for a component that imports nothing."""

    component_id = ComponentId("t", "echo", "0")
    storage = None
    storage_quota = 0


def _load_and_echo(cache: Path) -> tuple[bytes | None, CacheStats]:
    engine = WasmEngine(cache)
    try:
        loaded = engine.load(wat_binary("echo").read_bytes(), "echo.wasm")
        instance = ComponentInstance(
            engine,
            build_linker(engine),
            loaded,
            context=_Ctx(),  # type: ignore[arg-type]
            limits=InstanceLimits(1 << 24, 1000),
        )
        env = Envelope(ComponentId("a", "b", "0"), _Ctx.component_id, b"cached")
        reply = instance.handle_message(env)
        stats = engine.cache_statistics()
        assert stats is not None
        return reply, stats
    finally:
        engine.close()


def _entry(cache: Path) -> Path:
    (blob,) = cache.glob("*.cwasm")
    return blob


def test_second_engine_loads_from_cache(tmp_path: Path) -> None:
    assert _load_and_echo(tmp_path) == (b"cached", CacheStats(hits=0, misses=1, rebuilt=0))
    assert _load_and_echo(tmp_path) == (b"cached", CacheStats(hits=1, misses=0, rebuilt=0))


def test_corrupt_entry_is_detected_and_rebuilt(tmp_path: Path) -> None:
    _load_and_echo(tmp_path)
    blob = _entry(tmp_path)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the code
    blob.write_bytes(bytes(data))
    assert _load_and_echo(tmp_path) == (b"cached", CacheStats(hits=0, misses=0, rebuilt=1))
    assert _load_and_echo(tmp_path) == (b"cached", CacheStats(hits=1, misses=0, rebuilt=0))


def test_truncated_entry_and_garbage_sidecar_are_rebuilt(tmp_path: Path) -> None:
    _load_and_echo(tmp_path)
    blob = _entry(tmp_path)
    blob.write_bytes(blob.read_bytes()[:100])
    assert _load_and_echo(tmp_path)[1].rebuilt == 1
    blob.with_suffix(".json").write_text("{not json")
    assert _load_and_echo(tmp_path)[1].rebuilt == 1
    assert _load_and_echo(tmp_path)[1].hits == 1


def test_entry_from_other_engine_settings_is_not_used(tmp_path: Path) -> None:
    _load_and_echo(tmp_path)
    blob = _entry(tmp_path)
    meta = blob.with_suffix(".json")
    meta.write_text(meta.read_text().replace('"digest": "', '"digest": "stale'))
    assert _load_and_echo(tmp_path)[1].rebuilt == 1
