"""``wactor ps``: the supervision tree of a running host (or of every host of a lattice)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import click

from wactor.cli._common import SECONDS, config_option, nats_option, resolve_config, with_nats
from wactor.cli._status import host_running, host_status, lattice_lines, status_lines

__all__ = ["ps"]


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
        from wactor.cli import _watch  # noqa: PLC0415 - a loop (and NATS) only where it is needed

        with contextlib.suppress(KeyboardInterrupt):
            _watch.watch(config, interval)
        return
    if config.broker.type == "nats":
        from wactor.cli import _watch  # noqa: PLC0415 - a loop (and NATS) only where it is needed

        url = config.broker.url or "nats://127.0.0.1:4222"
        entries = _watch.read_hosts(url, config.broker.lattice)
        if as_json:
            click.echo(json.dumps([dataclasses.asdict(e) for e in entries], indent=2))
            return
        for line in lattice_lines(url, config.broker.lattice, entries):
            click.echo(line)
        return
    snap, live = host_status(config)
    if as_json:
        click.echo(json.dumps({**snap, "running": host_running(snap, live)[0]}, indent=2))
        return
    for line in status_lines(snap, live):
        click.echo(line)
