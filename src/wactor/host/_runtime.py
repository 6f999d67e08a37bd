"""The guest context of a started component: what its host functions reach.

The :class:`ComponentRuntime` outlives instances: when an instance faults it is discarded and the
next incarnation of the component actor makes a fresh one against the same runtime, so
identity, capabilities, storage and pending requests stay put. Host functions run on the
thread of the call: the loop's own for a call run inline (what touches the loop then runs at
once), or a worker's, from which whatever must touch the event loop (mailboxes, timers) crosses
over through :mod:`wactor._bridge` to the router, so the guest still gets a precise,
synchronous answer, and waits for it no longer than its call may run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from wasmtime.component import Linker

from wactor._bridge import LoopGoneError, LoopWaitTimeout, run_on_loop, thread_deadline
from wactor._ids import ComponentId
from wactor.errors import (
    ComponentError,
    InstantiationError,
    InvalidMessageError,
    TargetNotFoundError,
    WactorError,
)
from wactor.host._guestlog import LogGate, clean_log_fields, clean_log_text
from wactor.host._http import HttpClient
from wactor.host._metrics import CallMetrics
from wactor.host._placement import CallPlacement
from wactor.host._router import Router
from wactor.messaging import Envelope, MemoryBroker, PendingRequest, Subscription
from wactor.security import AuditLog, CapabilityPolicy, HostLimits, Manifest, RateLimit
from wactor.storage import MemoryStorage, SqliteStorage, StorageBackend
from wactor.wasm import (
    ComponentInstance,
    DeadlineExceeded,
    GuestMetadata,
    InstanceLimits,
    LoadedComponent,
    WasiSpec,
    WasmEngine,
)

__all__ = ["ComponentRuntime", "GuestInfo", "Peers"]

T = TypeVar("T")

_guest_log = logging.getLogger("wactor.guest")
_LEVELS = {
    "trace": logging.DEBUG - 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


@dataclass(frozen=True, slots=True)
class GuestInfo:
    """What ``get-component-metadata`` reports."""

    id: ComponentId
    name: str
    version: str
    health: str


class Peers(Protocol):
    """The other components, as a guest may learn about them."""

    def reachable_ids(self) -> list[ComponentId]:
        """Every component this host can reach: its own, and the lattice's."""
        ...

    def runtime(self, cid: ComponentId) -> ComponentRuntime | None:
        """The runtime of a component running here, if any."""
        ...


class ComponentRuntime:
    """The host's side of one component: the guest context its host functions see."""

    def __init__(
        self,
        manifest: Manifest,
        loaded: LoadedComponent,
        *,
        router: Router,
        peers: Peers,
        audit: AuditLog,
        limits: HostLimits,
        engine: WasmEngine,
        linker: Linker,
        storage: StorageBackend | None,
        http: HttpClient,
    ) -> None:
        self.router = router
        self._peers = peers
        self._audit = audit
        self._limits = limits
        self._engine = engine
        self._linker = linker
        self.manifest = manifest
        self.loaded = loaded
        self._id = manifest.id
        self._storage = storage
        self._http = http
        self._quota = manifest.capabilities.storage_quota or 0
        rate = manifest.limits.message_rate
        self.policy = CapabilityPolicy(
            manifest.capabilities,
            manifest.id,
            audit,
            rate=None if rate is None else RateLimit(rate, manifest.limits.message_burst),
        )
        self._log_gate = LogGate(limits.log_lines_per_second)
        self.subscriptions: dict[str, Subscription] = {}
        self.metadata: GuestMetadata | None = None
        self.health = "unknown"
        self.unhealthy_streak = 0
        self.instance: ComponentInstance | None = None  # the live one, if any
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.placement = CallPlacement(limits.inline_slice_us, allowed=self._may_inline())
        self.metrics = CallMetrics()  # messages, failures, latency, fuel: across restarts
        self._finishing: set[asyncio.Task[Any]] = set()

    def _may_inline(self) -> bool:
        """Whether this component's calls may ever run on the loop's thread.

        Not when its manifest says ``execution = "worker"``, nor when a host function it imports
        may have to wait for I/O from the loop's thread: messaging and topics over a lattice
        broker, storage in a remote store, the HTTP client (``wactor:http``; its ``fetch``
        blocks the calling thread for the whole exchange). Its other host functions answer at
        once on the loop (the in-process broker delivers there; SQLite is a local file). A
        guest that sleeps is sent off the loop for good by ``sleep-millis`` itself; a WASI sleep
        is a long call like any other, bounded by the overstay rule of CallPlacement.
        """
        if self.manifest.limits.execution == "worker":
            return False
        imports = self.loaded.imports
        if not isinstance(self.router.broker, MemoryBroker) and any(
            name.startswith(_MESSAGING_IMPORTS) for name in imports
        ):
            return False
        if self.manifest.capabilities.storage_quota is not None and not isinstance(
            self._storage, SqliteStorage | MemoryStorage
        ):
            return False
        return not any(name.startswith(_HTTP_IMPORT) for name in imports)

    def kill(self) -> None:
        """Interrupt whatever the live instance is running (it traps at its next epoch check)."""
        instance = self.instance
        if instance is not None:
            instance.cancel()

    # -- GuestContext ----------------------------------------------------------------------------

    @property
    def component_id(self) -> ComponentId:
        return self._id

    @property
    def storage(self) -> StorageBackend | None:
        return self._storage if self.policy.allows_storage() else None

    @property
    def storage_quota(self) -> int:
        return self._quota

    def report(self, event: str, *, action: str = "", target: str = "", reason: str = "") -> None:
        self._audit.record(
            event, str(self._id), allowed=False, action=action, target=target, reason=reason
        )

    def _check_payload(self, payload: bytes) -> None:
        self.router.check_payload(payload, self._id)

    def _on_loop(self, what: str, make: Callable[[], Coroutine[Any, Any, T]], size: int = 0) -> T:
        """Run ``make()`` on the host loop; wait for it on this thread until the call's deadline.

        On the loop's own thread (an inline call) it runs at once: with the in-process broker
        it completes without waiting, except for a send into a full mailbox whose policy makes
        senders wait. Then the guest is answered as if the message were queued, the rest of
        the delivery waits for room in a task of its own, and the component goes back to
        worker threads (where a sender waits for room as the policy says).
        """
        if threading.get_ident() == self._loop_thread:
            coro = make()
            try:
                waiting = coro.send(None)
            except StopIteration as done:
                result: T = done.value
                return result
            self.placement.demote()
            task = self.loop.create_task(_resume(coro, waiting), name=what)
            self._finishing.add(task)
            task.add_done_callback(lambda done: self._finished(done, what, size))
            return None  # type: ignore[return-value] # only deliveries (-> None) can wait here
        try:
            return run_on_loop(self.loop, make)
        except LoopWaitTimeout as exc:
            # Past the call's deadline: end the call here, as its timeout (the guest would
            # be interrupted at its next epoch check anyway); what it waited for is withdrawn.
            raise DeadlineExceeded(f"{self._id}: {what} outlasted the call") from exc
        except LoopGoneError:
            raise ComponentError(
                f"{self._id}: {what}: the host is shutting down", component=str(self._id)
            ) from None

    def _finished(self, task: asyncio.Task[Any], what: str, size: int) -> None:
        self._finishing.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None:  # the guest was told "queued": the failure is a dead letter
            self.router.dead_letters.record(
                str(self._id), f"{what}: {exc}", sender=str(self._id), kind=what, size=size
            )

    def will_sleep(self) -> None:
        """The guest is about to sleep: its calls are not short, keep them off the loop."""
        self.placement.forbid()

    def send(self, target: ComponentId, payload: bytes) -> None:
        self.policy.check_message("send", target)
        self._check_payload(payload)
        env = Envelope(self._id, target, payload, kind="send")
        self._on_loop("send", lambda: self.router.deliver(env), len(payload))

    def request(self, target: ComponentId, payload: bytes, timeout_ms: int) -> str:
        self.policy.check_message("request", target)
        self._check_payload(payload)
        ceiling = self._limits.max_timeout_ms
        if timeout_ms > ceiling:  # bounds how long (and so how many) requests stay pending
            raise InvalidMessageError(
                f"{self._id}: a request timeout of {timeout_ms} ms is more than the host "
                f"allows (max-timeout-ms of its [limits] is {ceiling})"
            )
        correlation_id = self.router.correlator.new_id()
        env = Envelope(
            self._id,
            target,
            payload,
            kind="request",
            correlation_id=correlation_id,
            reply_to=self._id,
        )
        pending = PendingRequest(correlation_id, self._id, target, max(1, timeout_ms))
        self._on_loop(
            "request", lambda: self.router.start_guest_request(env, pending), len(payload)
        )
        return correlation_id

    def cancel_request(self, request_id: str) -> None:
        async def cancel() -> bool:
            return self.router.correlator.cancel(request_id, self._id)

        if not self._on_loop("cancel-request", cancel):
            raise InvalidMessageError(f"{self._id}: no pending request {request_id!r}")

    def broadcast(self, targets: Sequence[ComponentId], payload: bytes) -> None:
        targets = list(dict.fromkeys(targets))  # each target gets one copy, in the given order
        self.policy.check_fan_out(len(targets), self._limits.broadcast_targets)
        for target in targets:
            self.policy.check_message("broadcast", target)
        self._check_payload(payload)
        missing = [str(t) for t in targets if not self.router.knows(t)]
        envs = [
            Envelope(self._id, t, payload, kind="broadcast")
            for t in targets
            if self.router.knows(t)
        ]

        async def deliver_all() -> None:
            for env in envs:
                try:
                    await self.router.deliver(env)
                except WactorError as exc:
                    self.router.dead_letters.record(
                        str(env.target),
                        str(exc),
                        sender=str(self._id),
                        kind="broadcast",
                        size=len(payload),
                    )

        self._on_loop("broadcast", deliver_all, len(payload))
        if missing:
            # The others were delivered; the guest still learns which ones were not.
            raise TargetNotFoundError(missing[0])

    def publish(self, subject: str, payload: bytes, content_type: str | None) -> int:
        self.policy.check_publish(subject)
        self._check_payload(payload)
        env = Envelope(self._id, self._id, payload, kind="publish", content_type=content_type)
        return self._on_loop("publish", lambda: self.router.publish(subject, env))

    def subscribe(self, pattern: str) -> None:
        self.policy.check_subscribe(pattern)

        async def add() -> None:
            if pattern not in self.subscriptions:
                self.subscriptions[pattern] = await self.router.subscribe(pattern, self._id)

        self._on_loop("subscribe", add)

    def unsubscribe(self, pattern: str) -> None:
        async def remove() -> None:
            subscription = self.subscriptions.pop(pattern, None)
            if subscription is not None:
                subscription.cancel()

        self._on_loop("unsubscribe", remove)

    def log(self, level: str, message: str, context: Sequence[tuple[str, str]]) -> None:
        note = self._log_gate.take()
        if note is None:
            return
        cap = self._limits.log_line_bytes
        fields = clean_log_fields(context, cap)
        _guest_log.log(
            _LEVELS.get(level, logging.INFO),
            "%s: %s%s",
            self._id,
            clean_log_text(message, cap),
            note,
            extra={"component": str(self._id), "guest_context": fields},
        )

    def fetch(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        timeout_ms: int | None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        self.will_sleep()  # an exchange waits on the network: never on the loop's thread
        response = self._http.fetch(
            self.policy,
            f"{self._id.namespace}/{self._id.name}",  # its instances share their slots
            method=method,
            url=url,
            headers=headers,
            body=body,
            timeout_ms=timeout_ms,
            call_deadline=thread_deadline(),
        )
        return response.status, response.headers, response.body

    def list_components(self) -> list[ComponentId]:
        return self._peers.reachable_ids()

    def component_info(self, target: ComponentId) -> GuestInfo:
        runtime = self._peers.runtime(target)
        if runtime is None:
            raise TargetNotFoundError(str(target))
        meta = runtime.metadata
        return GuestInfo(
            target,
            meta.name if meta else target.name,
            meta.version if meta else runtime.manifest.version,
            runtime.health,
        )

    # -- instances -------------------------------------------------------------------------------

    def new_instance(self) -> ComponentInstance:
        """Instantiate and initialize a fresh instance (blocking; run on a worker thread)."""
        m = self.manifest
        host_caps = self._limits
        limits = InstanceLimits(
            m.limits.memory_bytes,
            m.limits.timeout_ms,
            m.limits.fuel,
            table_elements=host_caps.table_elements,
            instances=host_caps.instances,
            tables=host_caps.tables,
            memories=host_caps.memories,
        )
        caps = m.capabilities
        granted_env = tuple((n, os.environ[n]) for n in caps.env if n in os.environ)
        wasi = WasiSpec(
            env=m.config.env + granted_env,
            read_dirs=tuple((str(p), str(p)) for p in m.capabilities.fs_read),
            write_dirs=tuple((str(p), str(p)) for p in m.capabilities.fs_write),
        )
        try:
            instance = ComponentInstance(
                self._engine,
                self._linker,
                self.loaded,
                context=self,
                limits=limits,
                wasi=wasi,
                output=self._guest_output,
                fuel_meter=self.metrics.fuel,
            )
        except InstantiationError as exc:
            hint = _store_cap_hint(str(exc), host_caps)
            if hint is None:
                raise
            raise InstantiationError(f"{exc} ({hint})", component=str(self._id)) from exc
        data = m.config.data.encode() if m.config.data is not None else None
        try:
            instance.initialize(m.config.env, data)
            if self.metadata is None:
                self.metadata = instance.metadata()
        except BaseException:
            instance.close()  # the error (kept by whoever reports it) must not keep the Store
            raise
        self.health = "healthy"
        return instance

    def _guest_output(self, data: bytes) -> None:
        """Log what the guest wrote to stdout/stderr, one record per line, within its budget."""
        cap = self._limits.log_line_bytes
        lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
        for index, line in enumerate(lines):
            note = self._log_gate.take()
            if note is None:
                self._log_gate.drop(len(lines) - index - 1)
                return
            text = clean_log_text(line.rstrip(), cap)
            _guest_log.info("%s: %s%s", self._id, text, note, extra={"component": str(self._id)})


_MESSAGING_IMPORTS = ("airssys:core/host-messaging@", "wactor:topics/")
_HTTP_IMPORT = "wactor:http/"


async def _resume(coro: Coroutine[Any, Any, Any], waiting: Any) -> Any:
    """Carry on a coroutine that was started by hand and stopped to wait for ``waiting``
    (what a task does: wait for the future it yielded, then send the coroutine on)."""
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)  # a bare yield: run again on the next loop turn
            else:
                # it was yielded once already; a task takes that mark off before it waits
                waiting._asyncio_future_blocking = False
                await waiting
        except BaseException as exc:  # noqa: BLE001 - handed to the coroutine, as a task would
            try:
                waiting = coro.throw(exc)
            except StopIteration as done:
                return done.value
            continue
        try:
            waiting = coro.send(None)
        except StopIteration as done:
            return done.value


def _store_cap_hint(text: str, caps: HostLimits) -> str | None:
    """Name the ``[limits]`` key behind wasmtime's refusal to instantiate, if one is."""
    for phrase, key, value in (
        ("memory count", "memories", caps.memories),
        ("table count", "tables", caps.tables),
        ("instance count", "instances", caps.instances),
        ("table limits", "table-elements", caps.table_elements),
    ):
        if phrase in text:
            return f"the host's [limits] {key} is {value}"
    return None
