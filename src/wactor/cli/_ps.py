"""``wactor ps``: the supervision tree of a running host, from its status file."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from wactor._text import escape_controls
from wactor.cli._common import SECONDS, config_option, nats_option, resolve_config, with_nats
from wactor.cli._main import one_line
from wactor.cli._remote import remote_snapshot
from wactor.errors import HostConfigError, WactorError
from wactor.host import HostConfig
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
_MAX_FAILURE = 300  # characters of a last failure shown (its text may be a guest's)


def _show(node: dict[str, Any], key: str) -> str:
    """A field of a snapshot node as one printable word (a peer wrote it: anything may be there)."""
    return escape_controls(str(node.get(key, "?")))


def render_tree(node: dict[str, Any], indent: str = "") -> list[str]:
    """Render a snapshot tree as indented lines, every field escaped; malformed nodes as ``?``."""
    if not isinstance(node, dict):
        return [f"{indent}?"]
    failure = node.get("last_failure")
    if isinstance(failure, str) and len(failure) > _MAX_FAILURE:  # a guest may have written it
        failure = failure[: _MAX_FAILURE - 1] + "…"
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


def _lattice_lines(url: str, lattice: str, entries: list[Any]) -> list[str]:
    lines = [f"lattice {lattice!r} at {url}: {len(entries)} host(s)"]
    for entry in entries:
        age = time.time() - entry.time
        lines.append(f"host {entry.host_id} pid {entry.pid} (heartbeat {age:.1f}s ago)")
        tree = entry.snapshot.get("tree")
        if tree:
            lines.extend(render_tree(tree, "  "))
    return lines


def _read_status(path: Path) -> dict[str, Any]:
    try:
        snap = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HostConfigError(
            "no running host has written its status here (start one with `wactor run`)",
            file=str(path),
        ) from exc
    if not isinstance(snap, dict):
        raise HostConfigError("the status file holds no host status", file=str(path))
    return snap


def _host_status(config: HostConfig) -> tuple[dict[str, Any], bool]:
    """The tree of the host running with ``config`` (from its control socket), else its last
    status file; and whether it came live from a running host."""
    live = remote_snapshot(config)
    if live is not None:
        return live, True
    return _read_status(config.state_dir / STATUS_FILE), False


def _running(snap: dict[str, Any], live: bool) -> tuple[bool, float]:
    age = time.time() - float(snap.get("time", 0))
    return live or (age < STALE_AFTER and _alive(int(snap.get("pid", 0)))), age


def _status_lines(snap: dict[str, Any], live: bool) -> list[str]:
    running, age = _running(snap, live)
    state = "running" if running else f"not running (last status {age:.0f}s ago)"
    head = f"host pid {snap.get('pid')} {state}; dead letters: {snap.get('dead_letters', 0)}"
    if running and isinstance(snap.get("observe"), str):
        head += f"; dashboard at {escape_controls(snap['observe'])}"
    lines = [head]
    if snap.get("failure"):
        lines.append(escape_controls(f"host supervisor gave up: {snap['failure']}"))
    return lines + render_tree(snap.get("tree", {}))


@click.command()
@config_option
@nats_option
@click.option("--json", "as_json", is_flag=True, help="The raw snapshot.")
@click.option(
    "--watch", "-w", is_flag=True, help="Keep showing the tree as it changes (Ctrl-C stops)."
)
@click.option(
    "--interval",
    "-n",
    type=SECONDS,
    default=1.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
def ps(
    config_path: Path | None, nats_url: str | None, as_json: bool, watch: bool, interval: float
) -> None:
    """Show the supervision tree of the host running with CONFIG (state, mailbox, restarts);
    with a NATS broker, of every host of the lattice. --watch keeps it live."""
    config = with_nats(resolve_config(config_path), nats_url)
    if watch:
        if as_json:
            raise click.UsageError("--json and --watch do not go together")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_watch(config, interval))
        return
    if config.broker.type == "nats":
        url = config.broker.url or "nats://127.0.0.1:4222"
        entries = asyncio.run(read_lattice(url, config.broker.lattice))
        if as_json:
            click.echo(json.dumps([dataclasses.asdict(e) for e in entries], indent=2))
            return
        for line in _lattice_lines(url, config.broker.lattice, entries):
            click.echo(line)
        return
    snap, live = _host_status(config)
    if as_json:
        click.echo(json.dumps({**snap, "running": _running(snap, live)[0]}, indent=2))
        return
    for line in _status_lines(snap, live):
        click.echo(line)


async def _frame(config: HostConfig) -> list[str]:
    """What one refresh of ``ps --watch`` shows; a host that is not there is a line, not an
    error (it may start later)."""
    if config.broker.type == "nats":
        url = config.broker.url or "nats://127.0.0.1:4222"
        try:
            entries = await read_lattice(url, config.broker.lattice)
        except WactorError as exc:
            return [one_line(f"lattice {config.broker.lattice!r} at {url}: {exc}")]
        return _lattice_lines(url, config.broker.lattice, entries)
    try:
        snap, live = await asyncio.to_thread(_host_status, config)
    except HostConfigError:
        return [
            f"no host running with this config (waiting for `wactor run`; {STATUS_FILE} "
            f"in {config.state_dir})"
        ]
    return _status_lines(snap, live)


async def _watch(config: HostConfig, interval: float) -> None:
    """Redraw the tree every ``interval`` seconds until interrupted: in place on a terminal,
    frame after frame otherwise."""
    terminal = sys.stdout.isatty()
    while True:
        lines = await _frame(config)
        stamp = time.strftime("%H:%M:%S")
        head = f"wactor ps --watch · every {interval:g} s · {stamp} · Ctrl-C to stop"
        if terminal:
            # home, then each line cleared to its end, then the rest of the screen: no flicker
            body = "".join(f"{line}\x1b[K\n" for line in [head, "", *lines])
            sys.stdout.write("\x1b[H" + body + "\x1b[J")
        else:
            sys.stdout.write("\n".join([head, *lines, "", ""]))
        sys.stdout.flush()
        await asyncio.sleep(interval)
