"""Ids and topic subjects are plain tokens end to end: no line break slips past the grammar
(a regex ``$`` also matches before a final newline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import guest_binary, wat_binary, write_manifest
from wactor._ids import ComponentId, TargetPattern
from wactor.errors import ManifestError
from wactor.host import Host
from wactor.messaging import check_subject

GRANTS = '[capabilities.messaging]\nsend = ["test/**"]\n'


@pytest.mark.parametrize("text", ["test/echo/0\n", "test/echo\n/0", "test\n/echo/0"])
def test_a_component_id_with_a_line_break_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="segment"):
        ComponentId.parse(text)


def test_a_target_pattern_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="bad segment"):
        TargetPattern.parse("test/echo\n/*")


@pytest.mark.parametrize("subject", ["orders.created\n", "orders\n.created"])
def test_a_topic_subject_with_a_line_break_is_refused(subject: str) -> None:
    with pytest.raises(ValueError, match="dot-separated tokens"):
        check_subject(subject)


async def test_a_manifest_id_with_a_trailing_line_break_is_refused(
    host: Host, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path, "test/echo/0", wat_binary("echo"))
    manifest.write_text(manifest.read_text().replace('id = "test/echo/0"', 'id = "test/echo/0\\n"'))
    with pytest.raises(ManifestError) as caught:
        await host.start(manifest)
    assert caught.value.key == "component.id"
    assert not host.components()


async def test_a_guest_cannot_address_an_id_with_a_line_break(host: Host, tmp_path: Path) -> None:
    await host.start(write_manifest(tmp_path, "test/echo/0", wat_binary("echo")))
    await host.start(write_manifest(tmp_path, "test/probe/0", guest_binary("probe"), extra=GRANTS))
    reply = await host.request("test/probe/0", b"send test/echo\n/0 hi")
    assert reply is not None
    assert reply.decode().startswith("err invalid-message"), reply
    assert not any("\n" in entry.target for entry in host.audit.query())
