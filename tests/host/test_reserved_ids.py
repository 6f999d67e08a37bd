"""Ids in the ``wactor`` namespace belong to the host, however the manifest was made."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conftest import wat_binary, write_manifest
from wactor._ids import ComponentId
from wactor.errors import ManifestError
from wactor.host import Host
from wactor.security import Manifest, load_manifest


@pytest.mark.parametrize("namespace", ["wactor", "Wactor", "WACTOR"])
async def test_a_manifest_built_in_code_cannot_claim_the_hosts_namespace(
    host: Host, tmp_path: Path, namespace: str
) -> None:
    with pytest.raises(ManifestError, match="reserved for the host") as caught:
        await host.start(
            Manifest(
                tmp_path / "component.toml", ComponentId(namespace, "host", "0"), wat_binary("echo")
            )
        )
    assert caught.value.key == "component.id"
    assert not host.components()


async def test_a_loaded_manifest_cannot_be_renamed_into_the_hosts_namespace(
    host: Host, tmp_path: Path
) -> None:
    loaded = load_manifest(write_manifest(tmp_path, "test/echo/0", wat_binary("echo")))
    with pytest.raises(ManifestError, match="reserved for the host"):
        await host.start(dataclasses.replace(loaded, id=ComponentId("wactor", "host", "0")))
    assert not host.components()


@pytest.mark.parametrize(
    "segments", [("a/b", "c", "0"), ("", "x", "0"), ("ns", "x\n", "0"), ("ns", "*", "0")]
)
async def test_a_manifest_built_in_code_needs_a_well_formed_id(
    host: Host, tmp_path: Path, segments: tuple[str, str, str]
) -> None:
    with pytest.raises(ManifestError) as caught:
        await host.start(
            Manifest(tmp_path / "component.toml", ComponentId(*segments), wat_binary("echo"))
        )
    assert caught.value.key == "component.id"
    assert not host.components()
