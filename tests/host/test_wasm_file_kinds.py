"""The wasm file a manifest names is read bounded and without blocking, even when it changes
into something else after the manifest was loaded (a FIFO, a device, a huge sparse file)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest

from conftest import wat_binary, write_manifest
from wactor.errors import ManifestError
from wactor.host import Host
from wactor.security import load_manifest
from wactor.wasm._engine import MAX_WASM_BYTES


def _manifest_then_replace(tmp_path: Path) -> tuple[Path, Path]:
    wasm = tmp_path / "app.wasm"
    wasm.write_bytes(wat_binary("echo").read_bytes())
    return write_manifest(tmp_path / "components", "test/app/0", wasm), wasm


async def test_a_wasm_file_larger_than_the_cap_is_refused_unread(
    host: Host, tmp_path: Path
) -> None:
    manifest, wasm = _manifest_then_replace(tmp_path)
    with wasm.open("r+b") as f:  # sparse: costs no disk
        f.truncate(MAX_WASM_BYTES + 1)
    with pytest.raises(ManifestError, match="larger than 256MiB") as caught:
        await host.start(manifest)
    assert caught.value.key == "component.wasm"


async def test_a_wasm_file_turned_into_a_fifo_after_loading_is_refused_at_once(
    host: Host, tmp_path: Path
) -> None:
    path, wasm = _manifest_then_replace(tmp_path)
    manifest = load_manifest(path)
    wasm.unlink()
    os.mkfifo(wasm)
    try:
        with pytest.raises(ManifestError, match="not a regular file"):
            await asyncio.wait_for(host.start(manifest), 60)
    finally:
        _release_readers(wasm)


async def test_a_wasm_path_turned_into_a_device_after_loading_is_refused(
    host: Host, tmp_path: Path
) -> None:
    path, wasm = _manifest_then_replace(tmp_path)
    manifest = load_manifest(path)
    wasm.unlink()
    wasm.symlink_to("/dev/zero")
    with pytest.raises(ManifestError, match="not a regular file"):
        await host.start(manifest)


def _release_readers(fifo: Path) -> None:
    """Open and close the FIFO for writing: a reader blocked on it gets its end of file."""
    with contextlib.suppress(OSError):  # ENXIO: nobody has it open for reading
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
