"""``wactor call``: one request per payload, replies one per line."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from wactor._ids import ComponentId
from wactor.cli._common import SECONDS, config_option, nats_option, resolve_config, with_nats
from wactor.cli._main import cli, one_line
from wactor.errors import ConfigError, WactorError
from wactor.host import Host, ObserveConfig

__all__ = ["call"]


def _reply_json(target: str, payload: str, reply: bytes | None) -> dict[str, Any]:
    out: dict[str, Any] = {"target": target, "payload": payload, "ok": True}
    if reply is None:
        out["reply"] = None
    else:
        try:
            out["reply"] = reply.decode("utf-8")
        except UnicodeDecodeError:
            out["reply_base64"] = base64.b64encode(reply).decode()
    return out


def _error_json(target: str, payload: str, exc: WactorError) -> dict[str, Any]:
    return {
        "target": target,
        "payload": payload,
        "ok": False,
        "error": {"type": type(exc).__name__, "message": str(exc), "exit_code": exc.exit_code},
    }


async def _call(
    config_path: Path | None,
    *,
    target: str,
    payloads: tuple[str, ...],
    timeout: float,
    as_json: bool,
    nats_url: str | None = None,
) -> int:
    try:
        cid = ComponentId.parse(target)
    except ValueError as exc:
        raise ConfigError(str(exc), key="TARGET") from exc
    # The host of one call serves no observe endpoint: [observe] listen is the running host's.
    config = dataclasses.replace(
        with_nats(resolve_config(config_path), nats_url), observe=ObserveConfig()
    )
    # Load failures are reported below, once each, as one line; the host's own log of them
    # would repeat them with timestamps.
    logging.getLogger("wactor.host").setLevel(logging.CRITICAL)
    code = 0
    async with Host.open(config) as host:
        _raise_why_missing(host, cid)
        for failure in host.load_failures:
            click.echo(f"warning: {one_line(str(failure.error))}", err=True)
        for payload in payloads:
            try:
                reply = await host.request(cid, payload.encode("utf-8"), timeout=timeout)
            except WactorError as exc:
                code = code or exc.exit_code
                if as_json:
                    click.echo(json.dumps(_error_json(target, payload, exc)))
                else:
                    click.echo(f"error: {one_line(str(exc))}", err=True)
                continue
            if as_json:
                click.echo(json.dumps(_reply_json(target, payload, reply)))
            elif reply is not None:
                sys.stdout.buffer.write(reply + b"\n")
                sys.stdout.flush()
            else:
                click.echo("")
    return code


def _raise_why_missing(host: Host, cid: ComponentId) -> None:
    """Raise the load failure of the config's component that TARGET names, if it failed.

    A manifest whose id cannot be read (``id = 42``) may be the one TARGET means: when TARGET
    is not running here and no lattice could have it, that failure is the answer too.
    """
    if any(status.id == cid for status in host.components()):
        return  # running (another manifest that claimed the same id is only warned about)
    for failure in host.load_failures:
        if failure.component == cid:
            raise failure.error
    if host.lattice is None:
        for failure in host.load_failures:
            if failure.component is None:
                raise failure.error


@cli.command()
@click.argument("target")
@click.argument("payloads", nargs=-1, required=True)
@config_option
@click.option("--timeout", type=SECONDS, default=10.0, show_default=True, help="Seconds per reply.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per reply, errors included.")
@nats_option
def call(
    *,
    target: str,
    payloads: tuple[str, ...],
    config_path: Path | None,
    timeout: float,
    as_json: bool,
    nats_url: str | None,
) -> None:
    """Send one request per PAYLOAD to TARGET and print the replies, one per line.

    With a NATS broker (config or --nats) and no components of its own, this is a lattice
    client: the request goes to wherever TARGET runs."""
    code = asyncio.run(
        _call(
            config_path,
            target=target,
            payloads=payloads,
            timeout=timeout,
            as_json=as_json,
            nats_url=nats_url,
        )
    )
    sys.exit(code)
