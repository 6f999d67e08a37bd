"""The parts of ``wactor ps`` that run an event loop: the lattice's hosts (through a NATS client)
and ``--watch``; ``ps`` of one host loads neither."""

from __future__ import annotations

import asyncio
import sys
import time

from wactor.cli._main import one_line
from wactor.cli._status import STATUS_FILE, host_status, lattice_lines, status_lines
from wactor.errors import HostConfigError, WactorError
from wactor.host import HostConfig
from wactor.lattice import HostEntry, read_lattice

__all__ = ["read_hosts", "watch"]


def read_hosts(url: str, lattice: str) -> list[HostEntry]:
    """The hosts of ``lattice`` at ``url``, from their heartbeats."""
    return asyncio.run(read_lattice(url, lattice))


async def _frame(config: HostConfig) -> list[str]:
    """What one refresh of ``ps --watch`` shows; a host that is not there is a line, not an
    error (it may start later)."""
    if config.broker.type == "nats":
        url = config.broker.url or "nats://127.0.0.1:4222"
        try:
            entries = await read_lattice(url, config.broker.lattice)
        except WactorError as exc:
            return [one_line(f"lattice {config.broker.lattice!r} at {url}: {exc}")]
        return lattice_lines(url, config.broker.lattice, entries)
    try:
        snap, live = await asyncio.to_thread(host_status, config)
    except HostConfigError:
        return [
            f"no host running with this config (waiting for `wactor run`; {STATUS_FILE} "
            f"in {config.state_dir})"
        ]
    return status_lines(snap, live)


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


def watch(config: HostConfig, interval: float) -> None:
    """Show the tree every ``interval`` seconds until interrupted."""
    asyncio.run(_watch(config, interval))
