"""``wactor run``: run a host until interrupted; graceful shutdown on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from wactor.cli._common import nats_option, resolve_config, with_nats
from wactor.cli._main import one_line
from wactor.cli._status import STATUS_FILE
from wactor.errors import ConfigError
from wactor.host import HostConfig
from wactor.host._listen import LISTEN_EXPECTED, observe_config

if TYPE_CHECKING:
    from wactor.host import Host

__all__ = ["run"]


def with_listen(config: HostConfig, listen: str | None, allow_remote: bool) -> HostConfig:
    """The config with the observe endpoint on ``listen`` (unchanged when ``listen`` is None)."""
    if listen is None:
        return config
    try:
        observe = observe_config(listen, allow_remote=allow_remote or config.observe.allow_remote)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--listen", expected=LISTEN_EXPECTED) from None
    return dataclasses.replace(config, observe=observe)


async def _run(
    config_path: Path, once: bool, nats_url: str | None, listen: str | None, allow_remote: bool
) -> int:
    # the host loads when it runs, not when `wactor --help` lists this verb
    from wactor.host import Host  # noqa: PLC0415
    from wactor.host._control import ControlServer  # noqa: PLC0415

    config = with_listen(with_nats(resolve_config(config_path), nats_url), listen, allow_remote)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with ControlServer.open(config) as control, Host.open(config) as host:
        control.serve(host)
        click.echo(f"control socket: {control.path}", err=True)
        # Each load failure has been logged as it happened, one line naming file and key.
        for component in host.components():
            click.echo(
                one_line(f"running {component.id} v{component.version} ({component.health})"),
                err=True,
            )
        click.echo(
            f"host ready: {len(host.components())} running, {len(host.load_failures)} failed; "
            "Ctrl-C to stop",
            err=True,
        )
        if host.observer is not None:
            click.echo(
                f"dashboard at {host.observer.url} (metrics at {host.observer.url}metrics)",
                err=True,
            )
        status_file = config.state_dir / STATUS_FILE
        async with asyncio.TaskGroup() as tasks:  # joins what it started before the host closes
            writer = tasks.create_task(_write_status(host, status_file))
            if not once:
                failed = tasks.create_task(host.failed.wait())
                stopped = tasks.create_task(stop.wait())
                await asyncio.wait({failed, stopped}, return_when=asyncio.FIRST_COMPLETED)
                failed.cancel()
                stopped.cancel()
            writer.cancel()
        _write_snapshot(host, status_file)
        await control.stop_serving()  # before the host stops: requests in progress are told why
        click.echo("stopping…", err=True)
    click.echo("stopped", err=True)
    if host.failure is not None:
        click.echo(one_line(f"error: host supervisor gave up: {host.failure}"), err=True)
        return 4
    if host.load_failures and (once or not host.components()):
        return host.load_failures[0].error.exit_code  # 3 when security refused it, 2 for config
    return 0


def _write_snapshot(host: Host, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(host.snapshot()))
    tmp.replace(path)


async def _write_status(host: Host, path: Path) -> None:
    """Keep the status file that `wactor ps` reads fresh."""
    while True:
        with contextlib.suppress(OSError):
            _write_snapshot(host, path)
        await asyncio.sleep(1.0)


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--once",
    is_flag=True,
    help="Start everything, report, and stop (a smoke check: fails if any component failed).",
)
@nats_option
@click.option(
    "--listen",
    metavar="HOST:PORT",
    default=None,
    help="Serve /metrics, /api/status and the dashboard here (overrides [observe] listen; "
    "loopback only unless --allow-remote; port 0: any free port).",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Let --listen take an address that is not loopback (anyone who reaches it reads the "
    "host's components, failures and audit entries).",
)
def run(
    config: Path, once: bool, nats_url: str | None, listen: str | None, allow_remote: bool
) -> None:
    """Run a host with the components of CONFIG until interrupted."""
    logging.getLogger("wactor").setLevel(logging.INFO)
    sys.exit(asyncio.run(_run(config, once, nats_url, listen, allow_remote)))
