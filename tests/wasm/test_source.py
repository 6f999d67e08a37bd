"""A wasm file's digest is remembered under its stat stamp: an unchanged file is not read again,
any change (in place with its mtime restored, or another file at the same path) is hashed again,
a planted record is ignored, and a remembered digest never stands for other bytes."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from conftest import wat_binary
from wactor.errors import DigestMismatchError, InvalidComponentError
from wactor.host import Host, HostConfig
from wactor.wasm import WasmEngine, _cache, _source
from wactor.wasm._cache import CompileCache


@pytest.fixture(autouse=True)
def stamp_fresh_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Record stamps of files written just now (the tests write them); the two-second rule
    has its own test, which sets it back."""
    monkeypatch.setattr(_cache, "_RACY_NS", -(10**18))


def _wasm(tmp_path: Path, name: str = "echo") -> Path:
    path = tmp_path / "app.wasm"
    path.write_bytes(wat_binary(name).read_bytes())
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.src"))


def _next_ctime_tick(path: Path) -> None:
    """Wait until a write now gets another ctime than ``path`` has (timestamps are coarse)."""
    probe = path.with_name(".tick")
    stamped = path.stat().st_ctime_ns
    deadline = time.monotonic() + 30
    while True:
        probe.write_bytes(b"")
        if probe.stat().st_ctime_ns != stamped:
            break
        assert time.monotonic() < deadline, "the file system clock did not move in 30 s"
        time.sleep(0.001)
    probe.unlink()


def _rewrite_in_place(path: Path, data: bytes) -> None:
    """Write ``data`` into the same inode and set the atime and mtime back as they were."""
    before = path.stat()
    _next_ctime_tick(path)
    with path.open("r+b") as f:
        f.write(data)
        f.truncate()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def _flipped(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the last byte: same size, other content
    return bytes(data)


def test_an_unchanged_file_is_hashed_once_then_remembered(tmp_path: Path) -> None:
    wasm = _wasm(tmp_path)
    engine = WasmEngine(tmp_path / "cache")
    try:
        first = engine.read_wasm(wasm)
        second = engine.read_wasm(wasm)
    finally:
        engine.close()
    assert first.data is not None
    assert second.data is None  # not read: the digest came from the stamp
    assert first.digest == second.digest == _sha256(wasm)
    assert len(_entries(tmp_path / "cache")) == 1


def test_a_file_rewritten_in_place_with_its_mtime_restored_is_hashed_again(
    tmp_path: Path,
) -> None:
    wasm = _wasm(tmp_path)
    engine = WasmEngine(tmp_path / "cache")
    try:
        engine.read_wasm(wasm)
        _rewrite_in_place(wasm, _flipped(wasm))
        again = engine.read_wasm(wasm)
    finally:
        engine.close()
    assert again.data is not None
    assert again.digest == _sha256(wasm)


def test_another_file_moved_to_the_same_path_is_hashed_again(tmp_path: Path) -> None:
    wasm = _wasm(tmp_path)
    engine = WasmEngine(tmp_path / "cache")
    try:
        engine.read_wasm(wasm)
        before = wasm.stat()
        other = tmp_path / "other.wasm"
        other.write_bytes(_flipped(wasm))  # same size
        os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
        other.replace(wasm)
        again = engine.read_wasm(wasm)
    finally:
        engine.close()
    assert again.data is not None
    assert again.digest == _sha256(wasm) != _sha256(wat_binary("echo"))


def test_a_planted_record_without_a_valid_mac_is_ignored_and_replaced(tmp_path: Path) -> None:
    wasm = _wasm(tmp_path)
    cache = tmp_path / "cache"
    engine = WasmEngine(cache)
    try:
        engine.read_wasm(wasm)
        (record,) = _entries(cache)
        # What someone without the host's key can write: another component's digest, with a
        # MAC made under a key of their own.
        claimed = _sha256(wat_binary("trap"))
        forged = hmac.new(b"k" * 32, claimed.encode(), hashlib.sha256).hexdigest()
        record.write_text(json.dumps({"digest": claimed, "mac": forged}))
        planted = engine.read_wasm(wasm)
        again = engine.read_wasm(wasm)
    finally:
        engine.close()
    assert planted.data is not None
    assert planted.digest == _sha256(wasm)
    assert again.data is None  # the record was written anew, for the real digest
    assert again.digest == _sha256(wasm)


def test_a_record_is_not_taken_from_a_copied_cache(tmp_path: Path) -> None:
    wasm = _wasm(tmp_path)
    engine = WasmEngine(tmp_path / "a")
    try:
        engine.read_wasm(wasm)
    finally:
        engine.close()
    (tmp_path / "b").mkdir(mode=0o700)
    (record,) = _entries(tmp_path / "a")
    (tmp_path / "b" / record.name).write_bytes(record.read_bytes())
    other = WasmEngine(tmp_path / "b")  # its own key: the copied MAC does not verify
    try:
        assert other.read_wasm(wasm).data is not None
    finally:
        other.close()


def test_a_file_changed_in_the_last_two_seconds_is_not_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cache, "_RACY_NS", 3600 * 10**9)  # "recently": within the hour
    wasm = _wasm(tmp_path)
    engine = WasmEngine(tmp_path / "cache")
    try:
        engine.read_wasm(wasm)
        assert engine.read_wasm(wasm).data is not None
    finally:
        engine.close()
    assert _entries(tmp_path / "cache") == []


def test_a_file_written_while_it_is_read_is_not_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wasm = _wasm(tmp_path)
    read = _source.read_bounded

    def read_then_write(f: BinaryIO, path: Path, limit: int) -> bytes:
        data = read(f, path, limit)
        _rewrite_in_place(wasm, _flipped(wasm))  # lands between the hash and the stat after it
        return data

    monkeypatch.setattr(_source, "read_bounded", read_then_write)
    engine = WasmEngine(tmp_path / "cache")
    try:
        engine.read_wasm(wasm)
    finally:
        engine.close()
    assert _entries(tmp_path / "cache") == []


def test_without_a_cache_every_read_hashes_the_file(tmp_path: Path) -> None:
    wasm = _wasm(tmp_path)
    engine = WasmEngine(None)
    try:
        engine.read_wasm(wasm)
        assert engine.read_wasm(wasm).data is not None
    finally:
        engine.close()


def test_a_remembered_digest_without_a_compiled_entry_is_checked_on_the_bytes_read(
    tmp_path: Path,
) -> None:
    wasm = _wasm(tmp_path)
    cache_dir = tmp_path / "cache"
    engine = WasmEngine(cache_dir)
    try:
        engine.read_wasm(wasm)
        remembered = engine.read_wasm(wasm)
        assert remembered.data is None
        loaded = engine.load_bytes(remembered)  # no compiled entry yet: read, checked, compiled
    finally:
        engine.close()
    assert loaded.digest == _sha256(wasm)


def test_a_remembered_digest_never_stands_for_other_bytes(tmp_path: Path) -> None:
    """Even a valid record that names a digest the file does not have (a change its stamp did
    not show) cannot make other bytes run under that digest: bytes compiled are hashed again."""
    wasm = _wasm(tmp_path)
    cache_dir = tmp_path / "cache"
    engine = WasmEngine(cache_dir)
    try:
        engine.read_wasm(wasm)
        (record,) = _entries(cache_dir)
        cache = CompileCache(cache_dir, "unused")
        claimed = _sha256(wat_binary("trap"))  # compiled by no one under this cache
        cache.remember_digest(os.stat(wasm), claimed)
        assert _entries(cache_dir) == [record]
        source = engine.read_wasm(wasm)
        assert (source.data, source.digest) == (None, claimed)
        with pytest.raises(InvalidComponentError, match="changed while it was being started"):
            engine.load_bytes(source)
    finally:
        engine.close()


def _pinned_manifest(tmp_path: Path, wasm: Path) -> Path:
    folder = tmp_path / "components" / "app"
    folder.mkdir(parents=True)
    path = folder / "component.toml"
    path.write_text(
        f'[component]\nid = "test/app/0"\nwasm = "{wasm}"\nversion = "1.0.0"\n'
        f'sha256 = "{_sha256(wasm)}"\n\n[resources]\nmemory = "32MiB"\ntimeout-ms = 2000\n'
    )
    return path


async def test_a_pinned_wasm_rewritten_in_place_with_its_mtime_restored_is_refused(
    host_config: HostConfig, tmp_path: Path
) -> None:
    wasm = _wasm(tmp_path)
    manifest = _pinned_manifest(tmp_path, wasm)
    config = dataclasses.replace(host_config, cache_dir=tmp_path / "cache")
    async with Host.open(config) as host:
        await host.start(manifest)
        assert await host.request("test/app/0", b"pinned") == b"pinned"
    assert len(_entries(tmp_path / "cache")) == 1  # its digest is remembered
    _rewrite_in_place(wasm, _flipped(wasm))
    async with Host.open(config) as host:
        with pytest.raises(DigestMismatchError, match="the manifest pins"):
            await host.start(manifest)


async def test_a_host_starts_a_remembered_file_from_its_compiled_entry(
    host_config: HostConfig, tmp_path: Path
) -> None:
    wasm = _wasm(tmp_path)
    manifest = _pinned_manifest(tmp_path, wasm)
    config = dataclasses.replace(host_config, cache_dir=tmp_path / "cache")
    for _ in range(2):
        async with Host.open(config) as host:
            handle = await host.start(manifest)
            assert await host.request(handle.id, b"again") == b"again"
            stats = host.engine.cache_statistics()
    assert handle.digest == _sha256(wasm)
    assert stats is not None
    assert (stats.hits, stats.misses, stats.rebuilt) == (1, 0, 0)
