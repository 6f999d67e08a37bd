"""Bad components and manifests get specific errors; the host and its other components go on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import wasmtime

from conftest import ManifestFactory, wat_binary, write_host_config
from wactor.errors import (
    ConfigError,
    DigestMismatchError,
    InstantiationError,
    InvalidComponentError,
    ManifestError,
    WactorError,
)
from wactor.host import Host, HostConfig, load_host_config
from wactor.security import load_manifest

CORE_MODULE = bytes(wasmtime.wat2wasm('(module (func (export "f")))'))


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


async def _assert_error_and_echo_survives(
    host: Host, path: Path, error: type[WactorError], fragment: str
) -> None:
    with pytest.raises(error) as info:
        await host.start(path)
    text = str(info.value)
    assert "\n" not in text
    assert fragment in text
    assert info.value.exit_code == 2
    assert await host.request("test/echo/0", b"alive") == b"alive"


@pytest.fixture
async def host_with_echo(host: Host, manifest: ManifestFactory) -> Host:
    await host.start(manifest("test/echo/0", wat_binary("echo")))
    return host


async def test_garbage_bytes_are_not_a_component(
    host_with_echo: Host, manifest: ManifestFactory, tmp_path: Path
) -> None:
    wasm = _file(tmp_path, "garbage.wasm", b"this is not wasm at all")
    await _assert_error_and_echo_survives(
        host_with_echo, manifest("bad/garbage/0", wasm), InvalidComponentError, "magic"
    )


async def test_core_module_is_refused_as_not_a_component(
    host_with_echo: Host, manifest: ManifestFactory, tmp_path: Path
) -> None:
    wasm = _file(tmp_path, "core.wasm", CORE_MODULE)
    await _assert_error_and_echo_survives(
        host_with_echo, manifest("bad/core/0", wasm), InvalidComponentError, "core wasm module"
    )


async def test_truncated_component_is_refused(
    host_with_echo: Host, manifest: ManifestFactory, tmp_path: Path
) -> None:
    data = wat_binary("echo").read_bytes()
    wasm = _file(tmp_path, "cut.wasm", data[: len(data) // 2])
    await _assert_error_and_echo_survives(
        host_with_echo, manifest("bad/cut/0", wasm), InvalidComponentError, "not a valid component"
    )


async def test_component_without_handle_message_does_not_fit_the_world(
    host_with_echo: Host, manifest: ManifestFactory
) -> None:
    path = manifest("bad/missing/0", wat_binary("missing_export"))
    await _assert_error_and_echo_survives(
        host_with_echo, path, InvalidComponentError, "lacks handle-message"
    )


async def test_missing_wasm_file_names_manifest_and_key(
    host_with_echo: Host, manifest: ManifestFactory, tmp_path: Path
) -> None:
    path = manifest("bad/nofile/0", tmp_path / "nowhere.wasm")
    await _assert_error_and_echo_survives(host_with_echo, path, ManifestError, "component.wasm")


async def test_digest_mismatch_is_refused(host_with_echo: Host, manifest: ManifestFactory) -> None:
    wasm = wat_binary("trap")
    wrong = hashlib.sha256(b"something else").hexdigest()
    path = manifest("bad/digest/0", wasm)
    path.write_text(
        path.read_text().replace('version = "1.0.0"', f'version = "1.0.0"\nsha256 = "{wrong}"')
    )
    await _assert_error_and_echo_survives(host_with_echo, path, DigestMismatchError, "sha256")


async def test_matching_digest_is_accepted(host: Host, manifest: ManifestFactory) -> None:
    wasm = wat_binary("trap")
    digest = hashlib.sha256(wasm.read_bytes()).hexdigest()
    path = manifest("good/digest/0", wasm)
    path.write_text(
        path.read_text().replace(
            'version = "1.0.0"', f'version = "1.0.0"\nsha256 = "sha256:{digest}"'
        )
    )
    handle = await host.start(path)
    assert handle.digest == digest


async def test_bad_manifest_key_is_named(host_with_echo: Host, manifest: ManifestFactory) -> None:
    path = manifest("bad/manifest/0", wat_binary("echo"))
    path.write_text(path.read_text().replace("timeout-ms = 2000", "timeout-ms = -5"))
    await _assert_error_and_echo_survives(
        host_with_echo, path, ManifestError, "resources.timeout-ms"
    )


async def test_host_config_starts_the_good_and_reports_the_bad(
    tmp_path: Path, manifest: ManifestFactory
) -> None:
    good = manifest("test/echo/0", wat_binary("echo"))
    garbage = manifest("bad/garbage/0", _file(tmp_path, "g.wasm", b"\x00asm garbage"))
    missing = manifest("bad/missing/0", wat_binary("missing_export"))
    config = load_host_config(write_host_config(tmp_path, [garbage, good, missing]))
    assert isinstance(config, HostConfig)
    async with Host.open(config) as host:
        assert [str(s.id) for s in host.components()] == ["test/echo/0"]
        assert [str(f.component) for f in host.load_failures] == ["bad/garbage/0", "bad/missing/0"]
        assert all(isinstance(f.error, InvalidComponentError) for f in host.load_failures)
        assert await host.request("test/echo/0", b"fine") == b"fine"


async def test_preopen_directory_removed_after_the_manifest_was_read(
    host_with_echo: Host, manifest: ManifestFactory, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    path = manifest(
        "bad/preopen/0",
        wat_binary("echo"),
        extra=f'[capabilities.filesystem]\nread = ["{shared}"]\n',
    )
    checked = load_manifest(path)
    shared.rmdir()
    with pytest.raises(InstantiationError) as info:
        await host_with_echo.start(checked)
    assert str(shared) in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2
    assert await host_with_echo.request("test/echo/0", b"alive") == b"alive"
    # and it can be started once the directory is back
    shared.mkdir()
    await host_with_echo.start(checked)
    assert await host_with_echo.request("bad/preopen/0", b"back") == b"back"


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0.0, -1.0])
async def test_a_request_timeout_must_be_a_positive_finite_number(
    host: Host, manifest: ManifestFactory, timeout: float
) -> None:
    await host.start(manifest("t/echo/0", wat_binary("echo")))
    with pytest.raises(ConfigError, match="timeout must be a positive number of seconds"):
        await host.request("t/echo/0", b"hi", timeout=timeout)
    assert await host.request("t/echo/0", b"hi", timeout=5) == b"hi"
