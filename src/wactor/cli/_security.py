"""Security verbs of an operator: ``approvals list|approve|deny`` and ``audit``."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from wactor._ids import ComponentId
from wactor._text import escape_controls
from wactor._units import format_size
from wactor.cli._common import config_option, resolve_config
from wactor.cli._main import one_line
from wactor.cli._remote import RunningHost
from wactor.errors import ConfigError
from wactor.host import HostConfig
from wactor.host._control_wire import decode_error
from wactor.security import Approval, ApprovalStore, AuditEntry, AuditLog

if TYPE_CHECKING:
    from wactor.security import ApprovalStatus

__all__ = ["approvals", "audit", "parse_since"]

_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, *, now: float | None = None) -> float:
    """Turn ``10m``/``2h``/``90`` (ago) or an ISO 8601 time into Unix seconds."""
    now = time.time() if now is None else now
    match = _AGO.match(text)
    if match:
        return now - float(match[1]) * _UNIT_SECONDS[match[2]]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"bad time {text!r}",
            key="--since",
            expected="a duration ago such as 30s, 10m, 2h, 1d, or an ISO time 2024-05-01T12:00",
        ) from None
    return moment.timestamp()  # a naive time is local time


def _local(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    # cells may hold what a guest chose (a target, a subject): never raw control characters
    rows = [[escape_controls(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines


# --- approvals -------------------------------------------------------------------------------


def _summary(caps: dict[str, Any] | None) -> str:
    """Render the dict form of capabilities on one line."""
    if caps is None:
        return "-"
    parts: list[str] = []
    messaging = caps.get("messaging") or {}
    for action in ("send", "request", "broadcast", "publish", "subscribe"):
        if messaging.get(action):
            parts.append(f"{action}={','.join(messaging[action])}")
    storage = caps.get("storage")
    if storage is not None:
        parts.append(f"storage={format_size(int(storage['quota']))}")
    filesystem = caps.get("filesystem") or {}
    for mode in ("read", "write"):
        if filesystem.get(mode):
            parts.append(f"fs.{mode}={','.join(filesystem[mode])}")
    connect = (caps.get("network") or {}).get("connect")
    if connect:
        parts.append(f"connect={','.join(connect)}")
    env = (caps.get("environment") or {}).get("allow")
    if env:
        parts.append(f"env={','.join(env)}")
    return " ".join([*parts, *_limits_summary(caps.get("limits"))]) or "(none)"


def _limits_summary(limits: dict[str, Any] | None) -> list[str]:
    """Render the resource limits of an approval (host defaults filled in) as ``key=value``."""
    if not limits:
        return []
    shown = []
    for key, unit in _LIMIT_UNITS:
        value = limits.get(key)
        if value is None:
            continue
        text = format_size(int(value)) if unit == "size" else f"{value}{unit}"
        shown.append(f"{key}={text}")
    return shown


_LIMIT_UNITS = (
    ("memory", "size"),
    ("timeout-ms", ""),
    ("fuel", ""),
    ("mailbox", ""),
    ("message-rate", "/s"),
    ("message-burst", ""),
)


def _approval_json(approval: Approval) -> dict[str, Any]:
    return {
        "id": approval.id,
        "component": approval.component,
        "status": approval.status,
        "wasm_sha256": approval.wasm_digest,
        "manifest_sha256": approval.manifest_digest,
        "requested": approval.requested,
        "granted": approval.granted,
        "created": approval.created,
        "decided": approval.decided,
        "reason": approval.reason,
    }


@click.group()
def approvals() -> None:
    """List, approve or deny components waiting for an operator's decision."""


@approvals.command("list")
@config_option
@click.option(
    "--status",
    type=click.Choice(["pending", "approved", "denied"]),
    default=None,
    help="Only requests with this status.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per request.")
def list_approvals(config_path: Path | None, status: str | None, as_json: bool) -> None:
    """Show approval requests: id, component, status and requested capabilities."""
    config = resolve_config(config_path)
    path = config.state_dir / ApprovalStore.filename
    items: list[Approval] = []
    running = RunningHost.find(config)
    if running is not None:
        with running:
            items = [Approval(**item) for item in running.request("approvals", {"status": status})]
    elif path.exists():  # a read-only verb does not create the host's state
        with ApprovalStore(path) as store:
            items = store.list(cast("ApprovalStatus | None", status))
    if as_json:
        for approval in items:
            click.echo(json.dumps(_approval_json(approval)))
        return
    if not items:
        click.echo("no approval requests")
        return
    rows = [
        [
            a.id,
            a.component,
            a.status,
            _local(a.created),
            _summary(a.requested),
            "" if a.status != "approved" or a.granted == a.requested else _summary(a.granted),
        ]
        for a in items
    ]
    headers = ("ID", "COMPONENT", "STATUS", "CREATED", "REQUESTED", "GRANTED (IF NARROWED)")
    for line in _table(headers, rows):
        click.echo(line)


def _decide_with(config: HostConfig) -> tuple[ApprovalStore, AuditLog]:
    audit_log = AuditLog.for_state_dir(config.state_dir)
    return ApprovalStore.for_state_dir(config.state_dir, audit=audit_log), audit_log


@approvals.command()
@click.argument("ref", metavar="ID")
@config_option
@click.option(
    "--narrow",
    default=None,
    metavar="JSON",
    help='Grant less than requested, e.g. \'{"messaging": {"send": []}, "storage": null}\'.',
)
def approve(ref: str, config_path: Path | None, narrow: str | None) -> None:
    """Approve request ID (or a component id: its latest pending request)."""
    narrowing: dict[str, Any] | None = None
    if narrow is not None:
        try:
            narrowing = json.loads(narrow)
        except ValueError as exc:
            raise ConfigError(f"not JSON: {exc}", key="--narrow") from exc
        if not isinstance(narrowing, dict):
            raise ConfigError("must be a JSON object", key="--narrow")
    config = resolve_config(config_path)
    running = RunningHost.find(config)
    if running is None:
        store, audit_log = _decide_with(config)
        with audit_log, store:
            approval = store.approve(ref, narrow=narrowing)
        click.echo(f"approved {approval.id} {approval.component}: {_summary(approval.granted)}")
        return
    with running:  # the running host decides, and starts what waited for this decision
        outcome = running.request("approve", {"ref": ref, "narrow": narrowing})
    approval = Approval(**outcome["approval"])
    click.echo(f"approved {approval.id} {approval.component}: {_summary(approval.granted)}")
    for started in outcome["started"]:
        click.echo(escape_controls(f"started {started}"))
    for reloaded in outcome.get("reloaded", []):
        click.echo(escape_controls(f"reloaded {reloaded}"))
    failures = [decode_error(error) for error in outcome["failed"]]
    for failure in failures:
        click.echo(f"error: {one_line(str(failure))}", err=True)
    if failures:
        sys.exit(failures[0].exit_code)


@approvals.command()
@click.argument("ref", metavar="ID")
@config_option
@click.option("--reason", default="", help="Why; shown to whoever starts the component.")
def deny(ref: str, config_path: Path | None, reason: str) -> None:
    """Deny request ID (or a component id: its latest pending request)."""
    config = resolve_config(config_path)
    running = RunningHost.find(config)
    if running is not None:
        with running:
            approval = Approval(**running.request("deny", {"ref": ref, "reason": reason}))
    else:
        store, audit_log = _decide_with(config)
        with audit_log, store:
            approval = store.deny(ref, reason)
    click.echo(f"denied {approval.id} {approval.component}")


# --- audit -----------------------------------------------------------------------------------


def _entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "time": entry.time,
        "iso_time": datetime.fromtimestamp(entry.time).astimezone().isoformat(),
        "event": entry.event,
        "component": entry.component,
        "allowed": entry.allowed,
        "action": entry.action,
        "target": entry.target,
        "reason": entry.reason,
    }


@click.command()
@config_option
@click.option("--component", default=None, metavar="ID", help="Only entries of this component.")
@click.option("--denied", "denied_only", is_flag=True, help="Only denials.")
@click.option("--since", default=None, metavar="WHEN", help="10m, 2h, 1d ago, or an ISO time.")
@click.option("--limit", default=1000, show_default=True, help="The latest N entries.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry.")
def audit(
    *,
    config_path: Path | None,
    component: str | None,
    denied_only: bool,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Show the audit log: grants, denials, approvals, signatures, lifecycle (oldest first)."""
    config = resolve_config(config_path)
    since_time = None if since is None else parse_since(since)
    if component is not None:
        try:
            component = str(ComponentId.parse(component))
        except ValueError as exc:
            raise ConfigError(str(exc), key="--component") from exc
    path = config.state_dir / AuditLog.filename
    entries: list[AuditEntry] = []
    running = RunningHost.find(config)
    if running is not None:
        query = {
            "component": component,
            "denied_only": denied_only,
            "since": since_time,
            "limit": limit,
        }
        with running:
            entries = [AuditEntry(**entry) for entry in running.request("audit", query)]
    elif path.exists():  # a read-only verb does not create the host's state
        with AuditLog(path) as log:
            entries = log.query(component, denied_only, since_time, limit)
    if as_json:
        for entry in entries:
            click.echo(json.dumps(_entry_json(entry)))
        return
    if not entries:
        click.echo("no audit entries")
        return
    rows = [
        [
            _local(e.time),
            e.event,
            e.component or "-",
            "allow" if e.allowed else "DENY",
            e.action,
            e.target,
            e.reason,
        ]
        for e in entries
    ]
    headers = ("TIME", "EVENT", "COMPONENT", "RESULT", "ACTION", "TARGET", "REASON")
    for line in _table(headers, rows):
        click.echo(line)
