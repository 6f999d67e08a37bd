"""A state file that is not a database (corrupt, truncated, replaced): one line naming the file,
exit 2, from the host and from every verb that reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.test_call import wactor
from conftest import wat_binary, write_host_config, write_manifest
from wactor.errors import CorruptStateError
from wactor.host import Host, load_host_config

STATE_FILES = ["state.sqlite3", "audit.sqlite3", "approvals.sqlite3", "dead-letters.sqlite3"]


def _config(tmp_path: Path) -> Path:
    manifest = write_manifest(tmp_path / "components", "test/echo/0", wat_binary("echo"))
    return write_host_config(tmp_path, [manifest])


def _spoil(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "state" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a database, it only sits where one should be\n" * 100)
    return path


@pytest.mark.parametrize("name", STATE_FILES)
async def test_host_open_names_a_state_file_that_is_not_a_database(
    tmp_path: Path, name: str
) -> None:
    config = load_host_config(_config(tmp_path))
    spoiled = _spoil(tmp_path, name)
    with pytest.raises(CorruptStateError) as caught:
        async with Host.open(config):
            pass
    assert str(spoiled) in str(caught.value)
    assert "not a database" in str(caught.value)


@pytest.mark.parametrize("name", STATE_FILES)
def test_call_exits_2_naming_a_state_file_that_is_not_a_database(tmp_path: Path, name: str) -> None:
    config = _config(tmp_path)
    spoiled = _spoil(tmp_path, name)
    shown = wactor("call", "test/echo/0", "hi", "--config", str(config))
    assert shown.returncode == 2, shown.stderr
    (line,) = shown.stderr.splitlines()
    assert line.startswith(f"error: {spoiled}: ")
    assert "not a database" in line


@pytest.mark.parametrize(
    ("verb", "name"),
    [
        (("audit",), "audit.sqlite3"),
        (("approvals", "list"), "approvals.sqlite3"),
        (("dead-letters",), "dead-letters.sqlite3"),
    ],
)
def test_verbs_exit_2_naming_a_state_file_that_is_not_a_database(
    tmp_path: Path, verb: tuple[str, ...], name: str
) -> None:
    config = _config(tmp_path)
    spoiled = _spoil(tmp_path, name)
    shown = wactor(*verb, "--config", str(config))
    assert shown.returncode == 2, shown.stderr
    (line,) = shown.stderr.splitlines()
    assert line.startswith(f"error: {spoiled}: ")
    assert "not a database" in line
