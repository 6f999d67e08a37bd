"""The compile cache: hits across engines, corrupt or stale entries rebuilt, never trusted."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import wat_binary
from wactor._ids import ComponentId
from wactor.messaging import Envelope
from wactor.wasm import ComponentInstance, InstanceLimits, WasmEngine, _cache, build_linker
from wactor.wasm._cache import CacheStats


class _Ctx:
    """A guest context for a component that imports nothing."""

    component_id = ComponentId("t", "echo", "0")
    storage = None
    storage_quota = 0


def _load_and_echo(cache: Path, payload: bytes = b"cached") -> tuple[bytes | None, CacheStats]:
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
        env = Envelope(ComponentId("a", "b", "0"), _Ctx.component_id, payload)
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


def test_planted_entry_with_a_matching_sidecar_is_never_deserialized(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _load_and_echo(cache)
    blob = _entry(cache)
    # What anyone who can write the cache directory can make without the host's secret: another
    # real component (it traps on "boom") compiled under the same engine settings, with every
    # checksum recomputed.
    other = WasmEngine(tmp_path / "other")
    try:
        planted = other.load(wat_binary("trap").read_bytes(), "trap.wasm").component.serialize()
    finally:
        other.close()
    blob.write_bytes(planted)
    meta_path = blob.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta.update(size=len(planted), sha256=hashlib.sha256(planted).hexdigest())
    meta.pop("verified_stat", None)
    meta_path.write_text(json.dumps(meta))
    assert _load_and_echo(cache, b"boom") == (b"boom", CacheStats(hits=0, misses=0, rebuilt=1))
    assert _load_and_echo(cache, b"boom") == (b"boom", CacheStats(hits=1, misses=0, rebuilt=0))


def test_a_cache_directory_copied_from_elsewhere_is_recompiled(tmp_path: Path) -> None:
    _load_and_echo(tmp_path / "a" / "cache")
    shutil.copytree(tmp_path / "a" / "cache", tmp_path / "b" / "cache")
    assert _load_and_echo(tmp_path / "b" / "cache")[1] == CacheStats(hits=0, misses=0, rebuilt=1)


def test_a_cache_directory_others_can_write_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    _load_and_echo(cache)
    cache.chmod(0o777)
    assert _load_and_echo(cache) == (b"cached", CacheStats(hits=0, misses=1, rebuilt=0))
    assert "writable by group or others" in caplog.text
    assert "compile cache not used" in caplog.text


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_an_entry_owned_by_another_user_is_not_deserialized(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _load_and_echo(cache)
    os.chown(_entry(cache), 65534, 65534)
    assert _load_and_echo(cache) == (b"cached", CacheStats(hits=0, misses=0, rebuilt=1))
    assert _entry(cache).stat().st_uid == os.geteuid()


def test_a_verified_stamp_does_not_cover_a_replaced_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cache, "_RACY_NS", -(10**18))  # stamp even a file written just now
    cache = tmp_path / "cache"
    _load_and_echo(cache)
    assert _load_and_echo(cache, b"boom") == (b"boom", CacheStats(hits=1, misses=0, rebuilt=0))
    blob = _entry(cache)
    meta_path = blob.with_suffix(".json")
    assert "verified_mac" in json.loads(meta_path.read_text())
    stamped = meta_path.read_text()
    # Another component put in its place (same size or not), keeping the stamped sidecar.
    other = WasmEngine(tmp_path / "other")
    try:
        planted = other.load(wat_binary("trap").read_bytes(), "trap.wasm").component.serialize()
    finally:
        other.close()
    planted_file = cache / "planted"
    planted_file.write_bytes(planted)
    before = blob.stat()
    os.utime(planted_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    planted_file.replace(blob)
    meta_path.write_text(stamped)
    assert _load_and_echo(cache, b"boom") == (b"boom", CacheStats(hits=0, misses=0, rebuilt=1))
