"""``wactor call``: one request per payload, replies one per line."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from wactor._ids import ComponentId
from wactor.cli._common import SECONDS, config_option, nats_option, resolve_config, with_nats
from wactor.cli._main import one_line
from wactor.cli._remote import RunningHost
from wactor.errors import ConfigError, WactorError
from wactor.host import HostConfig, ObserveConfig
from wactor.host._control_wire import decode_bytes, encode_bytes

if TYPE_CHECKING:
    from wactor.host import Host

__all__ = ["call"]

_ANSWER_SLACK = 30.0  # seconds past a call's own timeout before the host counts as hung


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


def _target(target: str) -> ComponentId:
    try:
        return ComponentId.parse(target)
    except ValueError as exc:
        raise ConfigError(str(exc), key="TARGET") from exc


def _print_reply(target: str, payload: str, reply: bytes | None, *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(_reply_json(target, payload, reply)))
    elif reply is not None:
        sys.stdout.buffer.write(reply + b"\n")
        sys.stdout.flush()
    else:
        click.echo("")


def _print_error(target: str, payload: str, exc: WactorError, *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(_error_json(target, payload, exc)))
    else:
        click.echo(f"error: {one_line(str(exc))}", err=True)


def _call_running(
    host: RunningHost, *, target: str, payloads: tuple[str, ...], timeout: float, as_json: bool
) -> int:
    """Each payload to TARGET on the running host: its instances, its state."""
    code = 0
    for payload in payloads:
        args = {"target": target, "payload": encode_bytes(payload.encode()), "timeout": timeout}
        try:
            # the host answers within ``timeout`` (its own deadline); the rest is its slack
            answer = host.request("call", args, timeout=timeout + _ANSWER_SLACK)
        except WactorError as exc:
            if host.lost:
                raise  # no payload after this one can reach it
            code = code or exc.exit_code
            _print_error(target, payload, exc, as_json=as_json)
            continue
        reply = answer.get("reply") if isinstance(answer, dict) else None
        data = None if reply is None else decode_bytes(reply, "reply")
        _print_reply(target, payload, data, as_json=as_json)
    return code


async def _call(
    config: HostConfig,
    cid: ComponentId,
    *,
    target: str,
    payloads: tuple[str, ...],
    timeout: float,
    as_json: bool,
) -> int:
    from wactor.host import Host  # noqa: PLC0415 - a call to a running host loads no host

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
                _print_error(target, payload, exc, as_json=as_json)
                continue
            _print_reply(target, payload, reply, as_json=as_json)
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


@click.command()
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
    cid = _target(target)
    config = with_nats(resolve_config(config_path), nats_url)
    running = None if nats_url is not None else RunningHost.find(config)
    if running is not None:
        with running:
            code = _call_running(
                running, target=str(cid), payloads=payloads, timeout=timeout, as_json=as_json
            )
    else:
        import asyncio  # noqa: PLC0415 - only an embedded host runs a loop

        # The host of one call serves no observe endpoint: [observe] listen is the running host's.
        embedded = dataclasses.replace(config, observe=ObserveConfig())
        code = asyncio.run(
            _call(embedded, cid, target=target, payloads=payloads, timeout=timeout, as_json=as_json)
        )
    sys.exit(code)
