"""What ``wactor ps`` shows: a host's supervision tree (from its control socket, else its status
file) and a lattice's hosts, as lines of text in which every field a peer or guest wrote is
escaped."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from wactor._text import escape_controls
from wactor.cli._remote import remote_snapshot
from wactor.errors import HostConfigError
from wactor.host import HostConfig

__all__ = [
    "STATUS_FILE",
    "host_running",
    "host_status",
    "lattice_lines",
    "render_tree",
    "status_lines",
]

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


def lattice_lines(url: str, lattice: str, entries: list[Any]) -> list[str]:
    """The hosts of a lattice, each with its tree, from their heartbeats."""
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


def host_status(config: HostConfig) -> tuple[dict[str, Any], bool]:
    """The tree of the host running with ``config`` (from its control socket), else its last
    status file; and whether it came live from a running host."""
    live = remote_snapshot(config)
    if live is not None:
        return live, True
    return _read_status(config.state_dir / STATUS_FILE), False


def host_running(snap: dict[str, Any], live: bool) -> tuple[bool, float]:
    """Whether the host of ``snap`` runs, and the age of ``snap`` in seconds."""
    age = time.time() - float(snap.get("time", 0))
    return live or (age < STALE_AFTER and _alive(int(snap.get("pid", 0)))), age


def status_lines(snap: dict[str, Any], live: bool) -> list[str]:
    """A host's state line, its supervisor's failure if any, then its tree."""
    running, age = host_running(snap, live)
    state = "running" if running else f"not running (last status {age:.0f}s ago)"
    head = f"host pid {snap.get('pid')} {state}; dead letters: {snap.get('dead_letters', 0)}"
    if running and isinstance(snap.get("observe"), str):
        head += f"; dashboard at {escape_controls(snap['observe'])}"
    lines = [head]
    if snap.get("failure"):
        lines.append(escape_controls(f"host supervisor gave up: {snap['failure']}"))
    return lines + render_tree(snap.get("tree", {}))
