"""A guest that rearranges the directories it may write cannot widen what its next instance
sees: a preopen is opened at every (re)start exactly where it was checked, never through a
symbolic link that appeared since."""

from __future__ import annotations

from pathlib import Path

from conftest import TRUSTED, guest_binary, write_manifest
from wactor.host import Host, HostConfig


async def test_a_symlink_planted_before_a_restart_does_not_open_the_state_dir(
    tmp_path: Path,
) -> None:
    # the state dir is tmp_path/state; the guest may write `data` and read `data/x/state`,
    # an ordinary directory when the host checks it
    data = tmp_path / "data"
    (data / "x" / "state").mkdir(parents=True)
    extra = f'[capabilities.filesystem]\nwrite = ["{data}"]\nread = ["{data}/x/state"]\n'
    manifest = write_manifest(
        tmp_path / "components",
        "t/linker/0",
        guest_binary("linker"),
        extra=extra,
        timeout_ms=10000,
    )
    trusted = (tmp_path / "components", *TRUSTED)  # not tmp_path: the guest writes there
    async with Host.open(HostConfig.default(tmp_path / "state", trusted_paths=trusted)) as host:
        await _plant_and_restart(host, manifest, data, tmp_path / "state")


async def _plant_and_restart(host: Host, manifest: Path, data: Path, state: Path) -> None:
    await host.start(manifest)

    async def ask(text: str) -> str:
        reply = await host.request("t/linker/0", text.encode())
        assert reply is not None
        return reply.decode()

    assert await ask(f"ls {data}/x/state") == "entries "
    # data/x/state now means ../state beside data: the host's own state directory
    assert await ask(f"rename {data}/x {data}/old") == "ok"
    assert await ask(f"symlink .. {data}/x") == "ok"
    assert (state / "audit.sqlite3").exists()
    await host.send("t/linker/0", b"crash")
    # every restart refuses to open the directory through the link, until the budget is spent
    gave_up = await host.wait_event("gave_up", "t/linker/0")
    assert f"{data}/x/state" in (gave_up.reason or "")
    assert "symbolic link" in (gave_up.reason or "")
