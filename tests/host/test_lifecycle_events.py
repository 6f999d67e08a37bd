"""Lifecycle events are audited; when the audit log cannot take one, the host says so."""

from __future__ import annotations

import logging

import pytest

from conftest import ManifestFactory, wat_binary
from wactor.host import Host


async def test_an_event_the_audit_log_cannot_take_is_logged_not_dropped(
    host: Host, manifest: ManifestFactory, caplog: pytest.LogCaptureFixture
) -> None:
    handle = await host.start(manifest("t/echo/0", wat_binary("echo")))
    host.audit.close()

    with caplog.at_level(logging.ERROR, logger="wactor.host"):
        await host.stop(handle.id)

    lost = [r.getMessage() for r in caplog.records if "not audited" in r.getMessage()]
    assert len(lost) == 1
    assert lost[0].startswith("removed t/echo/0 not audited: ")
    assert "audit log is closed" in lost[0]
