"""What host functions know about their caller: the guest context of the running call.

A component's export call runs on one thread (a worker, or the loop's own for a short call); the
instance sets the caller's context in a thread-local before entering wasm, so host functions
(which wasmtime calls on that same thread) find who is calling without any lookup table. The
call's deadline is the thread's deadline of :mod:`wactor._bridge`, so a host function waiting
for the event loop waits no longer than the call may run.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from wactor._bridge import set_thread_deadline, thread_deadline
from wactor._ids import ComponentId
from wactor.storage import StorageBackend

__all__ = [
    "ComponentInfo",
    "DeadlineExceeded",
    "GuestContext",
    "call_deadline",
    "current_context",
    "current_subject",
    "in_guest_call",
    "using_context",
]


class ComponentInfo(Protocol):
    """What ``get-component-metadata`` reports about a component."""

    @property
    def id(self) -> ComponentId: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def health(self) -> str: ...


class GuestContext(Protocol):
    """The host's side of one component: identity, messaging, services, storage, HTTP."""

    @property
    def component_id(self) -> ComponentId: ...
    @property
    def storage(self) -> StorageBackend | None: ...
    @property
    def storage_quota(self) -> int: ...

    def send(self, target: ComponentId, payload: bytes) -> None: ...
    def request(self, target: ComponentId, payload: bytes, timeout_ms: int) -> str: ...
    def cancel_request(self, request_id: str) -> None: ...
    def broadcast(self, targets: Sequence[ComponentId], payload: bytes) -> None: ...
    def log(self, level: str, message: str, context: Sequence[tuple[str, str]]) -> None: ...
    def list_components(self) -> list[ComponentId]: ...
    def publish(self, subject: str, payload: bytes, content_type: str | None) -> int: ...
    def subscribe(self, pattern: str) -> None: ...
    def unsubscribe(self, pattern: str) -> None: ...
    def report(
        self, event: str, *, action: str = "", target: str = "", reason: str = ""
    ) -> None: ...
    def component_info(self, target: ComponentId) -> ComponentInfo: ...
    def will_sleep(self) -> None: ...
    def fetch(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        timeout_ms: int | None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Perform one HTTP exchange (``wactor:http``); raise the error a guest receives."""
        ...


class DeadlineExceeded(BaseException):
    """A host function found the call past its wall-clock deadline and stopped it.

    A ``BaseException``, as ``CancelledError`` is: it ends the guest's call (as the call's
    timeout) and no host function's ``except Exception`` turns it into an error value.
    """


_local = threading.local()


def current_context() -> GuestContext:
    """The context of the component whose call is running on this thread."""
    ctx: GuestContext | None = getattr(_local, "ctx", None)
    if ctx is None:
        raise RuntimeError("host function called outside a component call")
    return ctx


def in_guest_call() -> bool:
    """Whether a component's call is running on this thread (a host function is running)."""
    return getattr(_local, "ctx", None) is not None


def current_subject() -> str | None:
    """The topic subject of the message being handled on this thread, if it was published."""
    subject: str | None = getattr(_local, "subject", None)
    return subject


def call_deadline() -> float:
    """The ``time.monotonic()`` by which the running call must end (``inf`` if unbounded)."""
    return thread_deadline()


class using_context:
    """Set the thread's guest context (and the call's deadline) for the duration of a call."""

    __slots__ = ("_ctx", "_deadline", "_prev", "_subject")

    def __init__(
        self, ctx: GuestContext, deadline: float = float("inf"), subject: str | None = None
    ) -> None:
        self._ctx = ctx
        self._deadline = deadline
        self._subject = subject
        self._prev: tuple[GuestContext | None, float, str | None] = (None, float("inf"), None)

    def __enter__(self) -> None:
        self._prev = (getattr(_local, "ctx", None), call_deadline(), current_subject())
        _local.ctx = self._ctx
        set_thread_deadline(self._deadline)
        _local.subject = self._subject

    def __exit__(self, *exc: object) -> None:
        _local.ctx, deadline, _local.subject = self._prev
        set_thread_deadline(deadline)
