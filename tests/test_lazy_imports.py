"""Importing the actor core, the root package or a layer below wasm, or reading a host config,
loads neither wasmtime nor a NATS client; they load when a host (or a NATS backend) is used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("wasmtime", "nats")


def _loaded_after(code: str, watched: tuple[str, ...] = HEAVY) -> list[str]:
    """The modules of ``watched`` (and their submodules) loaded after running ``code``."""
    probe = (
        f"import sys\n{code}\n"
        "import json\n"
        f"watched = {watched!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules"
        " if any(m == w or m.startswith(w + '.') for w in watched))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded


@pytest.mark.parametrize(
    "module",
    ["wactor", "wactor.actors", "wactor.errors", "wactor.lattice", "wactor.messaging",
     "wactor.storage", "wactor.security"],
)
def test_importing_does_not_load_the_engine_or_nats(module: str) -> None:
    assert _loaded_after(f"import {module}") == []


def test_host_is_loaded_on_first_use_from_the_root() -> None:
    loaded = _loaded_after("import wactor\nwactor.Host")
    assert "wasmtime" in loaded


def test_the_nats_backends_load_when_asked_for() -> None:
    assert "nats" in _loaded_after("from wactor.messaging import NatsBroker")
    assert "nats" in _loaded_after("from wactor.storage import NatsKvStorage")


def test_a_host_without_a_lattice_loads_no_nats_client() -> None:
    assert "nats" not in _loaded_after("from wactor.host import Host")


def test_reading_a_host_config_loads_neither_the_host_nor_the_engine(tmp_path: Path) -> None:
    config = tmp_path / "wactor.toml"
    config.write_text('state-dir = "state"\n\n[limits]\nmax-memory = "256MiB"\n')
    code = f"from wactor.host import load_host_config\nload_host_config({str(config)!r})"
    assert _loaded_after(code, (*HEAVY, "wactor.host._host", "cryptography")) == []
