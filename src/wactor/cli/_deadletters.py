"""``wactor dead-letters``: messages a host dropped, and why."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import click

from wactor._text import escape_controls
from wactor.cli._common import config_option, resolve_config
from wactor.cli._remote import RunningHost
from wactor.errors import HostConfigError
from wactor.messaging import DeadLetter, DeadLetterLog, read_dead_letters

__all__ = ["dead_letters"]


@click.command("dead-letters")
@config_option
@click.option("--component", help="Only this component's dead letters.")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def dead_letters(
    config_path: Path | None, component: str | None, limit: int, as_json: bool
) -> None:
    """Show the newest dead letters of the host(s) using CONFIG's state directory."""
    config = resolve_config(config_path)
    path = config.state_dir / DeadLetterLog.filename
    running = RunningHost.find(config)
    if running is not None:
        with running:
            found = running.request("dead-letters", {"component": component, "limit": limit})
        entries = [DeadLetter(**entry) for entry in found]
    elif not path.exists():
        raise HostConfigError("no dead-letter log yet (no host has run here)", file=str(path))
    else:
        entries = read_dead_letters(path, component, limit)
    if as_json:
        for entry in entries:
            click.echo(json.dumps(dataclasses.asdict(entry)))
        return
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time_ns / 1e9))
        corr = f" corr={e.correlation_id}" if e.correlation_id else ""
        line = f"{when} {e.component} {e.kind} from {e.sender} ({e.size} B){corr}: {e.reason}"
        click.echo(escape_controls(line))  # reasons and senders carry guests' and peers' text
