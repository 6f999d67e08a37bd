"""An operator's typo in a flag's number is a usage error (exit 2, one line), never a timeout
or an unexpected error."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.test_call import wactor
from conftest import wat_binary, write_host_config, write_manifest
from wactor.host._host import DEAD_LETTERS_FILE
from wactor.messaging import DeadLetterLog


@pytest.mark.parametrize("timeout", ["nan", "inf", "-1", "0"])
def test_call_refuses_a_timeout_that_is_not_a_positive_number(tmp_path: Path, timeout: str) -> None:
    config = write_host_config(
        tmp_path, [write_manifest(tmp_path / "components", "test/echo/0", wat_binary("echo"))]
    )
    shown = wactor("call", "test/echo/0", "hi", "--timeout", timeout, "--config", str(config))
    assert shown.returncode == 2, shown.stderr
    assert "--timeout" in shown.stderr
    assert "unexpected" not in shown.stderr


@pytest.mark.parametrize("limit", ["100000000000000000000", "0", "-5"])
def test_dead_letters_refuses_a_limit_out_of_range(tmp_path: Path, limit: str) -> None:
    config = write_host_config(tmp_path, [])
    DeadLetterLog(tmp_path / "state" / DEAD_LETTERS_FILE).close()
    shown = wactor("dead-letters", "--limit", limit, "--config", str(config))
    assert shown.returncode == 2, shown.stderr
    assert "--limit" in shown.stderr
    assert "unexpected" not in shown.stderr
