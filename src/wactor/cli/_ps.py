"""``wactor ps``: the supervision tree of a running host, from its status file."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import click

from wactor._text import escape_controls
from wactor.cli._common import config_option, nats_option, resolve_config, with_nats
from wactor.cli._main import cli
from wactor.cli._remote import remote_snapshot
from wactor.errors import HostConfigError
from wactor.lattice import read_lattice

__all__ = ["STATUS_FILE", "ps", "render_tree"]

STATUS_FILE = "status.json"
STALE_AFTER = 5.0  # seconds without an update: the host is gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_MAX_DEPTH = 16  # a peer's heartbeat may nest supervisors without end


def _show(node: dict[str, Any], key: str) -> str:
    """A field of a snapshot node as one printable word (a peer wrote it: anything may be there)."""
    return escape_controls(str(node.get(key, "?")))


def render_tree(node: dict[str, Any], indent: str = "") -> list[str]:
    """Render a snapshot tree as indented lines, every field escaped; malformed nodes as ``?``."""
    if not isinstance(node, dict):
        return [f"{indent}?"]
    failure = node.get("last_failure")
    shown_failure = f" last-failure={escape_controls(repr(failure))}" if failure else ""
    if node.get("kind") == "supervisor":
        head = (
            f"{indent}{_show(node, 'id')} [supervisor {_show(node, 'strategy')}]"
            f" {_show(node, 'state')} restarts={_show(node, 'restarts')}{shown_failure}"
        )
        lines = [head]
        children = node.get("children")
        if len(indent) >= 2 * _MAX_DEPTH:
            return [*lines, f"{indent}  …"] if children else lines
        for child in children if isinstance(children, list) else []:
            lines.extend(render_tree(child, indent + "  "))
        return lines
    line = (
        f"{indent}{_show(node, 'id')} {_show(node, 'state')} health={_show(node, 'health')}"
        f" mailbox={_show(node, 'depth')}/{_show(node, 'capacity')}"
        f" processed={_show(node, 'processed')} failed={_show(node, 'failed')}"
        f" restarts={_show(node, 'restarts')}"
        f" calls={'inline' if node.get('inline') is True else 'worker'}{shown_failure}"
    )
    return [line]


def _lattice_ps(url: str, lattice: str, as_json: bool) -> None:
    entries = asyncio.run(read_lattice(url, lattice))
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(e) for e in entries], indent=2))
        return
    click.echo(f"lattice {lattice!r} at {url}: {len(entries)} host(s)")
    for entry in entries:
        age = time.time() - entry.time
        click.echo(f"host {entry.host_id} pid {entry.pid} (heartbeat {age:.1f}s ago)")
        tree = entry.snapshot.get("tree")
        if tree:
            for line in render_tree(tree, "  "):
                click.echo(line)


@cli.command()
@config_option
@nats_option
@click.option("--json", "as_json", is_flag=True, help="The raw snapshot.")
def ps(config_path: Path | None, nats_url: str | None, as_json: bool) -> None:
    """Show the supervision tree of the host running with CONFIG (state, mailbox, restarts);
    with a NATS broker, of every host of the lattice."""
    config = with_nats(resolve_config(config_path), nats_url)
    if config.broker.type == "nats":
        _lattice_ps(config.broker.url or "nats://127.0.0.1:4222", config.broker.lattice, as_json)
        return
    live = remote_snapshot(config)
    path = config.state_dir / STATUS_FILE
    try:
        snap = live or json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HostConfigError(
            "no running host has written its status here (start one with `wactor run`)",
            file=str(path),
        ) from exc
    age = time.time() - float(snap.get("time", 0))
    running = live is not None or (age < STALE_AFTER and _alive(int(snap.get("pid", 0))))
    if as_json:
        click.echo(json.dumps({**snap, "running": running}, indent=2))
        return
    state = "running" if running else f"not running (last status {age:.0f}s ago)"
    click.echo(f"host pid {snap.get('pid')} {state}; dead letters: {snap.get('dead_letters', 0)}")
    if snap.get("failure"):
        click.echo(escape_controls(f"host supervisor gave up: {snap['failure']}"))
    for line in render_tree(snap["tree"]):
        click.echo(line)
