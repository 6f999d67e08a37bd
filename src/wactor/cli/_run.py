"""``wactor run``: run a host until interrupted; graceful shutdown on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import click

from wactor.cli._common import resolve_config
from wactor.cli._main import cli
from wactor.host import Host

__all__ = ["run"]


async def _run(config_path: Path, once: bool) -> int:
    config = resolve_config(config_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Host.open(config) as host:
        for failure in host.load_failures:
            click.echo(f"failed: {failure.manifest}: {failure.error}", err=True)
        for status in host.components():
            click.echo(f"running {status.id} v{status.version} ({status.health})", err=True)
        click.echo(
            f"host ready: {len(host.components())} running, {len(host.load_failures)} failed; "
            "Ctrl-C to stop",
            err=True,
        )
        if not once:
            await stop.wait()
        click.echo("stopping…", err=True)
    click.echo("stopped", err=True)
    return 2 if host.load_failures and not host.components() else 0


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--once", is_flag=True, help="Start everything, report, and stop (a smoke check).")
def run(config: Path, once: bool) -> None:
    """Run a host with the components of CONFIG until interrupted."""
    logging.getLogger("wactor").setLevel(logging.INFO)
    sys.exit(asyncio.run(_run(config, once)))
