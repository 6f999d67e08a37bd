"""Attacks on the sandbox from a real guest: files and environment. All refused.

Sockets: a componentize-py guest has no ``socket`` module, so it cannot show socket denial
(it would fail for the wrong reason); ``test_sandbox_sockets.py`` does it with a hand-written
wasi:sockets guest. What is shown here is that a network grant is an ordinary grant (it opens
the ``wactor:http`` client and nothing else), admitted outside dev mode.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import ManifestFactory, guest_binary
from wactor.host import Host


async def _ask(host: Host, target: str, command: str) -> str:
    reply = await host.request(target, command.encode(), timeout=60)
    assert reply is not None
    return reply.decode()


@pytest.fixture
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Not under a trusted path: no guest may write where trusted code lives.
    tmp_path = tmp_path_factory.mktemp("tree")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "hello.txt").write_text("hello from assets")
    (tmp_path / "out").mkdir()
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "assets" / "escape").symlink_to(tmp_path / "secret.txt")
    (tmp_path / "assets" / "passwd").symlink_to("/etc/passwd")
    return tmp_path


@pytest.fixture
async def boxed(host: Host, manifest: ManifestFactory, tree: Path) -> Host:
    os.environ["WACTOR_TEST_GRANTED"] = "visible"
    os.environ["WACTOR_TEST_SECRET"] = "hidden"
    extra = (
        "[capabilities.filesystem]\n"
        f'read = ["{tree / "assets"}"]\n'
        f'write = ["{tree / "out"}"]\n\n'
        '[capabilities.environment]\nallow = ["WACTOR_TEST_GRANTED"]\n'
    )
    await host.start(manifest("t/box/0", guest_binary("probe"), extra=extra))
    await host.start(manifest("t/bare/0", guest_binary("probe")))
    return host


async def test_files_outside_the_preopens_cannot_be_read(boxed: Host, tree: Path) -> None:
    for path in ("/etc/passwd", str(tree / "secret.txt"), "/proc/self/environ"):
        assert (await _ask(boxed, "t/box/0", f"read {path}")).startswith("denied"), path


async def test_granted_directory_is_readable_but_dot_dot_and_symlinks_do_not_escape(
    boxed: Host, tree: Path
) -> None:
    assets = tree / "assets"
    assert await _ask(boxed, "t/box/0", f"read {assets}/hello.txt") == "data hello from assets"
    assert (await _ask(boxed, "t/box/0", f"read {assets}/../secret.txt")).startswith("denied")
    assert (await _ask(boxed, "t/box/0", f"read {assets}/escape")).startswith("denied")
    assert (await _ask(boxed, "t/box/0", f"read {assets}/passwd")).startswith("denied")


async def test_read_only_grant_refuses_writes_and_write_grant_allows_them(
    boxed: Host, tree: Path
) -> None:
    assets, out = tree / "assets", tree / "out"
    assert (await _ask(boxed, "t/box/0", f"write {assets}/new.txt x")).startswith("denied")
    assert not (assets / "new.txt").exists()
    assert await _ask(boxed, "t/box/0", f"write {out}/result.txt done") == "written"
    assert (out / "result.txt").read_text() == "done"


async def test_a_component_without_filesystem_grant_sees_no_files(boxed: Host, tree: Path) -> None:
    assert (await _ask(boxed, "t/bare/0", f"read {tree}/assets/hello.txt")).startswith("denied")
    assert (await _ask(boxed, "t/bare/0", "ls /")).startswith("denied")


async def test_only_granted_environment_variables_are_visible(boxed: Host) -> None:
    assert await _ask(boxed, "t/box/0", "env WACTOR_TEST_GRANTED") == "value visible"
    assert await _ask(boxed, "t/box/0", "env WACTOR_TEST_SECRET") == "value <unset>"
    assert await _ask(boxed, "t/box/0", "env PATH") == "value <unset>"
    assert await _ask(boxed, "t/bare/0", "env WACTOR_TEST_GRANTED") == "value <unset>"


async def test_a_network_grant_is_admitted_outside_dev_mode(
    host: Host, manifest: ManifestFactory
) -> None:
    extra = '[capabilities.network]\nconnect = ["127.0.0.1:80"]\n'
    await host.start(manifest("t/net/0", guest_binary("probe"), extra=extra))

    assert await _ask(host, "t/net/0", "echo up") == "up"
