"""Shared fixtures: real components (WAT fixtures and componentize-py guests) and real hosts."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import wasmtime

from wactor.host import Host, HostConfig

ROOT = Path(__file__).resolve().parents[1]
WAT_DIR = Path(__file__).resolve().parent / "fixtures" / "wat"
CACHE_ROOT = ROOT / ".fixture-cache"
COMPILED_CACHE = CACHE_ROOT / "compiled"

# Every host in the suite (and every `wactor` subprocess) shares one compile cache, so a Python
# guest is compiled once per source change, not once per test.
os.environ.setdefault("WACTOR_CACHE_DIR", str(COMPILED_CACHE))


def wat_binary(name: str, directory: Path = WAT_DIR, prefix: str = "") -> Path:
    """Assemble ``<directory>/<name>.wat`` (``tests/fixtures/wat`` by default) into a binary,
    cached by content under ``prefix``."""
    text = (directory / f"{name}.wat").read_text()
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    out = CACHE_ROOT / "wat" / f"{prefix}{name}-{digest}.wasm"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(bytes(wasmtime.wat2wasm(text)))
        tmp.replace(out)
    return out


def guest_binary(name: str) -> Path:
    """Build (or fetch from cache) a componentize-py guest: ``probe`` or ``examples/<name>``."""
    from guests._build import built_guest

    return built_guest(name)


def write_manifest(
    directory: Path,
    component_id: str,
    wasm: Path,
    *,
    memory: str = "32MiB",
    timeout_ms: int = 2000,
    extra: str = "",
    name: str | None = None,
) -> Path:
    """Write a component.toml for ``wasm`` and return its path."""
    slug = name or component_id.replace("/", "_")
    folder = directory / slug
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "component.toml"
    path.write_text(
        f'[component]\nid = "{component_id}"\nwasm = "{wasm}"\nversion = "1.0.0"\n\n'
        f'[resources]\nmemory = "{memory}"\ntimeout-ms = {timeout_ms}\n\n{extra}\n'
    )
    return path


ManifestFactory = Callable[..., Path]


@pytest.fixture
def manifest(tmp_path: Path) -> ManifestFactory:
    """Write manifests into the test's temporary directory."""

    def make(component_id: str, wasm: Path, **kwargs: object) -> Path:
        return write_manifest(tmp_path / "components", component_id, wasm, **kwargs)  # type: ignore[arg-type]

    return make


TRUSTED = (ROOT / "tests", ROOT / "examples", CACHE_ROOT)


@pytest.fixture
def host_config(tmp_path: Path) -> HostConfig:
    """An embedded host config with its state in the test's temporary directory; components
    written by the tests (in tmp_path) and the fixtures are trusted."""
    return HostConfig.default(tmp_path / "state", trusted_paths=(tmp_path, *TRUSTED))


@pytest.fixture
async def host(host_config: HostConfig) -> AsyncIterator[Host]:
    """A running host with no components."""
    async with Host.open(host_config) as h:
        yield h


def write_host_config(directory: Path, manifests: list[Path], extra: str = "") -> Path:
    """Write a wactor.toml listing ``manifests`` and return its path."""
    path = directory / "wactor.toml"
    listed = ", ".join(f'"{m}"' for m in manifests)
    trusted = ", ".join(f'"{p}"' for p in (directory, *TRUSTED))
    path.write_text(
        f'state-dir = "{directory / "state"}"\ncomponents = [{listed}]\n{extra}\n\n'
        f"[trust]\npaths = [{trusted}]\n"
    )
    return path
