"""``wactor start|stop|restart|reload``: change what a running host runs, through its socket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from wactor._ids import ComponentId
from wactor._text import escape_controls
from wactor.cli._common import config_option, resolve_config
from wactor.cli._remote import absolute, require_running_host
from wactor.errors import ConfigError

__all__ = ["reload", "restart", "start", "stop"]


def _id(text: str) -> str:
    try:
        return str(ComponentId.parse(text))
    except ValueError as exc:
        raise ConfigError(str(exc), key="ID") from exc


def _on_host(config_path: Path | None, op: str, args: dict[str, Any]) -> Any:
    """Send one request to the host running with the config; its result."""
    with require_running_host(resolve_config(config_path)) as host:
        return host.request(op, args)


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@config_option
def start(manifest: Path, config_path: Path | None) -> None:
    """Start the component of MANIFEST on the running host."""
    started = _on_host(config_path, "start", {"manifest": absolute(manifest)})
    shown = f"started {started['id']} v{started['version']} (sha256 {started['digest'][:12]})"
    click.echo(escape_controls(shown))


@click.command()
@click.argument("component", metavar="ID")
@config_option
def stop(component: str, config_path: Path | None) -> None:
    """Stop component ID on the running host (its current message finishes first)."""
    cid = _id(component)
    _on_host(config_path, "stop", {"id": cid})
    click.echo(f"stopped {cid}")


@click.command()
@click.argument("component", metavar="ID")
@config_option
def restart(component: str, config_path: Path | None) -> None:
    """Restart component ID on the running host: its message in progress finishes, then a new
    instance of the same code (its memory starts anew, its storage stays) takes its queue.

    A component that failed for good is started anew from its manifest."""
    cid = _id(component)
    _on_host(config_path, "restart", {"id": cid})
    click.echo(f"restarted {cid}")


@click.command()
@click.argument("component", metavar="ID")
@click.option(
    "--wasm",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The new binary (default: the file its manifest names, read again).",
)
@config_option
def reload(component: str, wasm: Path | None, config_path: Path | None) -> None:
    """Swap the code of component ID on the running host; its queued messages are kept.

    The new binary passes the same trust checks and is compiled before anything changes; if it
    fails to start, the old code keeps running."""
    cid = _id(component)
    args: dict[str, Any] = {"id": cid, "wasm": None if wasm is None else absolute(wasm)}
    reloaded = _on_host(config_path, "reload", args)
    shown = f"reloaded {cid} v{reloaded['version']} (sha256 {reloaded['digest'][:12]})"
    click.echo(escape_controls(shown))
