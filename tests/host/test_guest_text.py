"""A guest's own error text in the host's errors and log: kept, with its control characters
escaped (it reaches log files and terminals)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest

from conftest import wat_binary, write_manifest
from wactor.errors import ComponentError, GuestError
from wactor.host import Host, HostConfig

HOSTILE = "one\nFAKE LINE \x1b]0;pwned\x07 \u202eevil"


def _has_controls(text: str) -> bool:
    return any(not ch.isprintable() for ch in text)


async def test_a_guests_error_reply_is_worded_without_control_characters(
    host: Host, tmp_path: Path
) -> None:
    await host.start(write_manifest(tmp_path, "test/liar/0", wat_binary("liar")))
    with pytest.raises(GuestError) as caught:
        await host.request("test/liar/0", HOSTILE.encode())
    assert "one\\nFAKE LINE" in str(caught.value)
    assert not _has_controls(str(caught.value))
    assert caught.value.detail == HOSTILE  # the field keeps what the guest said


async def test_a_guests_initialize_failure_is_worded_and_logged_without_control_characters(
    host_config: HostConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = write_manifest(
        tmp_path, "test/liar/0", wat_binary("liar"), extra=f"[config]\ndata = {json.dumps(HOSTILE)}"
    )
    config = dataclasses.replace(host_config, components=(manifest,))
    with caplog.at_level(logging.ERROR, logger="wactor"):
        async with Host.open(config) as host:
            (failure,) = host.load_failures
    assert isinstance(failure.error, ComponentError)
    assert "one\\nFAKE LINE" in str(failure.error)
    assert not _has_controls(str(failure.error))
    logged = [r.getMessage() for r in caplog.records if "test/liar/0" in r.getMessage()]
    assert logged
    assert not any(_has_controls(text) for text in logged)
