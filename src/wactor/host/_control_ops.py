"""What each control request does on a running host (the socket side is ``_control``).

Requests name their arguments; each is checked here, at the edge, and a wrong one is an
``InvalidMessageError`` naming the request and the argument. What a request does is what the
same verb does in a host of its own: the same ``Host`` methods, the same stores.

Approving a request for a component that waits for it (a component of the config, or one given
to ``start``, refused with ``ApprovalPendingError``) starts that component here and now; approving
the new code of a ``reload`` that waits for it does that reload.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from wactor._bridge import run_on_thread
from wactor._ids import ComponentId
from wactor.errors import (
    ApprovalDeniedError,
    ApprovalPendingError,
    ConfigError,
    InvalidMessageError,
    TargetNotFoundError,
    WactorError,
)
from wactor.host._control_wire import decode_bytes, encode_bytes, encode_error
from wactor.host._host import DEAD_LETTERS_FILE, ComponentHandle, Host
from wactor.messaging import read_dead_letters
from wactor.security import Approval, ApprovalStatus

__all__ = ["ControlOps"]

_Handler = Callable[["_Args"], Awaitable[Any]]

_log = logging.getLogger("wactor.host.control")
_MAX_SECONDS = 86_400.0


class _Args:
    """The arguments of one request, each taken with its type checked."""

    def __init__(self, op: str, args: object) -> None:
        if not isinstance(args, dict):
            raise InvalidMessageError(f"control request {op}: args must be a JSON object")
        self.op = op
        self._args = args

    def _bad(self, key: str, expected: str) -> InvalidMessageError:
        return InvalidMessageError(f"control request {self.op}: {key} must be {expected}")

    def text(self, key: str) -> str:
        value = self._args.get(key)
        if not isinstance(value, str):
            raise self._bad(key, "text")
        return value

    def data(self, key: str) -> bytes:
        return decode_bytes(self._args.get(key), f"{self.op}: {key}")

    def optional_text(self, key: str) -> str | None:
        return None if self._args.get(key) is None else self.text(key)

    def component(self, key: str) -> ComponentId:
        try:
            return ComponentId.parse(self.text(key))
        except ValueError as exc:
            raise ConfigError(str(exc), key=key.upper()) from None

    def path(self, key: str) -> Path:
        path = Path(self.text(key))
        if not path.is_absolute():
            raise self._bad(key, "an absolute path")
        return path

    def seconds(self, key: str) -> float:
        value = self._args.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(key, "a number of seconds")
        if not (math.isfinite(value) and 0 < value <= _MAX_SECONDS):
            raise self._bad(key, f"more than 0 and at most {_MAX_SECONDS:g} seconds")
        return float(value)

    def optional_number(self, key: str) -> float | None:
        value = self._args.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise self._bad(key, "a number")
        return float(value)

    def count(self, key: str, default: int) -> int:
        value = self._args.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._bad(key, "a whole number, 0 or more")
        return value

    def flag(self, key: str) -> bool:
        value = self._args.get(key, False)
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def optional_object(self, key: str) -> dict[str, Any] | None:
        value = self._args.get(key)
        if value is not None and not isinstance(value, dict):
            raise self._bad(key, "a JSON object")
        return value


class ControlOps:
    """Answers control requests with ``host``."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._waiting: dict[str, Path] = {}  # approval request id -> a manifest given to start
        # approval request id -> a reload that waits for it: (component, new binary)
        self._reloads: dict[str, tuple[ComponentId, Path | None]] = {}
        self._ops: dict[str, _Handler] = {
            "ping": self._ping,
            "call": self._call,
            "ps": self._ps,
            "dead-letters": self._dead_letters,
            "audit": self._audit,
            "approvals": self._approvals,
            "approve": self._approve,
            "deny": self._deny,
            "start": self._start,
            "stop": self._stop,
            "restart": self._restart,
            "reload": self._reload,
        }

    async def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The answer to one request: its result, or its error as it crosses the socket."""
        op = request.get("op")
        handler = self._ops.get(op) if isinstance(op, str) else None
        try:
            result = await self._run(handler, op, request.get("args", {}))
        except WactorError as exc:
            return {"ok": False, "error": encode_error(exc)}
        except Exception as exc:  # noqa: BLE001 - a bug answers its client; the host goes on
            _log.exception("control request %s failed", op)
            error = {"type": type(exc).__name__, "message": str(exc), "exit_code": 1}
            return {"ok": False, "error": error}
        return {"ok": True, "result": result}

    @staticmethod
    async def _run(
        handler: Callable[[_Args], Awaitable[Any]] | None, op: object, args: object
    ) -> Any:
        if handler is None:
            raise InvalidMessageError(f"unknown control request {op!r}")
        return await handler(_Args(cast("str", op), args))

    # -- messages and views ---------------------------------------------------------------------

    async def _ping(self, args: _Args) -> dict[str, Any]:
        host = self.host
        path = host.config.path
        return {"host_id": host.host_id, "config": None if path is None else str(path)}

    async def _call(self, args: _Args) -> dict[str, Any]:
        target = args.component("target")
        payload = args.data("payload")
        try:
            reply = await self.host.request(
                target,
                payload,
                timeout=args.seconds("timeout"),
                content_type=args.optional_text("content_type"),
            )
        except TargetNotFoundError:
            # as an embedded host answers: a manifest whose id cannot be read may be the one
            # TARGET means, when no lattice could have it
            unread = [f.error for f in self.host.load_failures if f.component is None]
            if unread and self.host.lattice is None:
                raise unread[0] from None
            raise
        return {"reply": None if reply is None else encode_bytes(reply)}

    async def _ps(self, args: _Args) -> dict[str, Any]:
        return self.host.snapshot()

    async def _dead_letters(self, args: _Args) -> list[dict[str, Any]]:
        path = self.host.config.state_dir / DEAD_LETTERS_FILE
        component, limit = args.optional_text("component"), args.count("limit", 100)
        entries = await run_on_thread(None, lambda: read_dead_letters(path, component, limit))
        return [dataclasses.asdict(entry) for entry in entries]

    async def _audit(self, args: _Args) -> list[dict[str, Any]]:
        component = args.optional_text("component")
        if component is not None:
            component = str(args.component("component"))
        denied_only, since = args.flag("denied_only"), args.optional_number("since")
        limit = args.count("limit", 1000)
        audit = self.host.audit
        entries = await run_on_thread(
            None, lambda: audit.query(component, denied_only, since, limit)
        )
        return [dataclasses.asdict(entry) for entry in entries]

    # -- approvals ------------------------------------------------------------------------------

    async def _approvals(self, args: _Args) -> list[dict[str, Any]]:
        status = cast("ApprovalStatus | None", args.optional_text("status"))
        store = self.host.approvals
        items = await run_on_thread(None, lambda: store.list(status))
        return [dataclasses.asdict(item) for item in items]

    async def _approve(self, args: _Args) -> dict[str, Any]:
        ref, narrow = args.text("ref"), args.optional_object("narrow")
        store = self.host.approvals
        approval = await run_on_thread(None, lambda: store.approve(ref, narrow=narrow))
        started, failed = await self._start_waiting(approval)
        reloaded, refused = await self._reload_waiting(approval)
        return {
            "approval": dataclasses.asdict(approval),
            "started": started,
            "reloaded": reloaded,
            "failed": [encode_error(error) for error in failed + refused],
        }

    async def _deny(self, args: _Args) -> dict[str, Any]:
        ref, reason = args.text("ref"), args.optional_text("reason") or ""
        store = self.host.approvals
        approval = await run_on_thread(None, lambda: store.deny(ref, reason))
        return dataclasses.asdict(approval)

    async def _start_waiting(self, approval: Approval) -> tuple[list[str], list[WactorError]]:
        """Start the components that waited for ``approval``; what started, what failed."""
        waiting = [
            failure.manifest
            for failure in self.host.load_failures
            if _waits_on(failure.error, approval.id)
        ]
        waiting += [path for request, path in self._waiting.items() if request == approval.id]
        started: list[str] = []
        failed: list[WactorError] = []
        for path in dict.fromkeys(waiting):
            try:
                handle = await self._start_manifest(path)
            except WactorError as exc:
                failed.append(exc)
            else:
                started.append(str(handle.id))
        return started, failed

    async def _reload_waiting(self, approval: Approval) -> tuple[list[str], list[WactorError]]:
        """Do the reload that waited for ``approval``, if one did; whether it did, or why not."""
        waiting = self._reloads.pop(approval.id, None)
        if waiting is None:
            return [], []
        cid, wasm = waiting
        try:
            await self._reload_component(cid, wasm)
        except WactorError as exc:
            return [], [exc]
        return [str(cid)], []

    # -- lifecycle ------------------------------------------------------------------------------

    async def _start(self, args: _Args) -> dict[str, Any]:
        handle = await self._start_manifest(args.path("manifest"))
        return {"id": str(handle.id), "version": handle.manifest.version, "digest": handle.digest}

    async def _start_manifest(self, path: Path) -> ComponentHandle:
        """Start the component of ``path``; remember why it did not start, if it waits."""
        try:
            handle = await self.host.start(path)
        except WactorError as exc:
            self._forget(path)
            if isinstance(exc, ApprovalPendingError):
                self._waiting[exc.request_id] = path  # approving it starts it
            raise
        self._forget(path)
        return handle

    async def _reload_component(self, cid: ComponentId, wasm: Path | None) -> ComponentHandle:
        """Reload ``cid``; a reload that waits for approval is done when it is approved."""
        try:
            return await self.host.reload(cid, wasm=wasm)
        except ApprovalPendingError as exc:
            self._reloads[exc.request_id] = (cid, wasm)
            raise

    def _forget(self, path: Path) -> None:
        for request in [r for r, waiting in self._waiting.items() if waiting == path]:
            del self._waiting[request]

    async def _stop(self, args: _Args) -> None:
        await self.host.stop(args.component("id"))

    async def _restart(self, args: _Args) -> None:
        await self.host.restart(args.component("id"))

    async def _reload(self, args: _Args) -> dict[str, Any]:
        cid = args.component("id")
        wasm = None if args.optional_text("wasm") is None else args.path("wasm")
        handle = await self._reload_component(cid, wasm)
        return {"id": str(handle.id), "version": handle.manifest.version, "digest": handle.digest}


def _waits_on(error: WactorError, request_id: str) -> bool:
    return (
        isinstance(error, ApprovalPendingError | ApprovalDeniedError)
        and error.request_id == request_id
    )
