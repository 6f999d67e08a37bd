"""The Host: one process running components as actors, with the embedded broker and storage."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import platformdirs

from wactor._ids import ComponentId
from wactor._toml import read_toml
from wactor.actors import (
    ActorCell,
    ActorStats,
    Backoff,
    ChildSpec,
    Registry,
    RestartType,
    Supervisor,
    SupervisorEvent,
    SupervisorSpec,
)
from wactor.errors import (
    ActorStoppedError,
    CapabilityDeniedError,
    ComponentError,
    ConfigError,
    HostConfigError,
    InvalidMessageError,
    ManifestError,
    RequestTimeoutError,
    TargetNotFoundError,
    WactorError,
)
from wactor.host._config import HostConfig, load_host_config
from wactor.host._heap import trim_heap
from wactor.host._lattice import LatticeRegistry
from wactor.host._runtime import (
    HEALTH_CHECK,
    ComponentActor,
    ComponentRuntime,
    HealthCheck,
    error_callback,
)
from wactor.messaging import (
    Broker,
    Correlator,
    DeadLetterLog,
    Envelope,
    MemoryBroker,
    NatsBroker,
    PendingRequest,
    Subscription,
    check_subject,
)
from wactor.security import (
    ApprovalStore,
    AuditLog,
    Gatekeeper,
    Manifest,
    apply_host_limits,
    load_manifest,
    manifest_digest,
    verify_digest,
)
from wactor.storage import MemoryStorage, NatsKvStorage, SqliteStorage, StorageBackend
from wactor.wasm import LoadedComponent, WasmBytes, WasmEngine, build_linker

__all__ = [
    "DEAD_LETTERS_FILE",
    "HOST_SENDER",
    "ComponentHandle",
    "ComponentStatus",
    "Host",
    "LoadFailure",
]

HOST_SENDER = ComponentId("wactor", "host", "0")
"""The sender of messages that come from the Python API or the CLI."""

_log = logging.getLogger("wactor.host")
_AUDITED_EVENTS = {
    "started": "start",
    "restarted": "restart",
    "removed": "stop",
    "gave_up": "restart",
}
DEAD_LETTERS_FILE = "dead-letters.sqlite3"


@dataclass(frozen=True, slots=True)
class ComponentHandle:
    """A started component."""

    id: ComponentId
    manifest: Manifest
    digest: str


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """A component as the host sees it now."""

    id: ComponentId
    version: str
    health: str
    actor: ActorStats


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """A component of the config that could not be started, and why."""

    manifest: Path
    error: WactorError
    component: ComponentId | None = None


def default_cache_dir() -> Path:
    """Where compiled components are cached: ``$WACTOR_CACHE_DIR`` or the user's cache dir."""
    env = os.environ.get("WACTOR_CACHE_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_cache_dir("wactor")) / "compiled"


class Host:
    """Runs components; use ``async with Host.open(config) as host``."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        _make_state_dir(config)
        self.engine = WasmEngine(config.cache_dir or default_cache_dir())
        self.linker = build_linker(self.engine)
        self.host_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        # NATS KV storage connects when the host opens (see _open); the others are local files.
        self.storage: StorageBackend = (
            MemoryStorage()
            if config.storage in ("memory", "nats")
            else SqliteStorage(config.state_dir / "state.sqlite3")
        )
        self.lattice: LatticeRegistry | None = None
        broker = config.broker
        if broker.type == "nats":
            url = broker.url or "nats://127.0.0.1:4222"
            nats_broker = NatsBroker(
                url, broker.lattice, host_id=self.host_id, accept_callback=self._callback_over_nats
            )
            self.broker: Broker = nats_broker
            self.lattice = LatticeRegistry(
                url, broker.lattice, self.host_id, self._describe, on_view=nats_broker.lattice_view
            )
        else:
            self.broker = MemoryBroker()
        self.correlator = Correlator(self._request_timed_out)
        self.dead_letters = DeadLetterLog(config.state_dir / DEAD_LETTERS_FILE)
        self.audit = AuditLog.for_state_dir(
            config.state_dir, component_rate=config.limits.audit_per_second
        )
        self.approvals = ApprovalStore.for_state_dir(config.state_dir, audit=self.audit)
        cache = self.engine.cache
        self.gate = Gatekeeper(
            config.trust,
            self.approvals,
            self.audit,
            dev=config.dev,
            config_path=config.path,
            protected=[("state directory", config.state_dir)]
            + ([] if config.path is None else [("config file", config.path)])
            + ([] if cache is None else [("compile cache", cache.directory)])
            + ([] if cache is None else [("compile cache key", cache.key_path)]),
        )
        self.load_failures: list[LoadFailure] = []
        sup = config.supervision
        self.supervisor = Supervisor(
            "host",
            SupervisorSpec(sup.strategy, sup.max_restarts, sup.within_seconds),
            on_event=self._on_event,
            on_give_up=self._gave_up,
        )
        self.failure: str | None = None
        self.failed = asyncio.Event()
        self._runtimes: dict[ComponentId, ComponentRuntime] = {}
        self.registry = Registry()
        self._groups: dict[str, Supervisor] = {}
        self._health_tasks: dict[ComponentId, asyncio.Task[None]] = {}
        self._executor = ThreadPoolExecutor(
            max_workers=max(32, 8 * (os.cpu_count() or 2)), thread_name_prefix="wactor-wasm"
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self.events: collections.deque[SupervisorEvent] = collections.deque(maxlen=1000)
        self._listeners: list[Callable[[SupervisorEvent], None]] = []
        self._closed = False

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, config: HostConfig | str | os.PathLike[str], *, start_components: bool = True
    ) -> AsyncIterator[Host]:
        """Open a host from a config (or a path to ``wactor.toml``) and start its components.

        Components that fail to load are reported in ``host.load_failures`` and logged; the
        others run.
        """
        cfg = config if isinstance(config, HostConfig) else load_host_config(Path(config))
        host = cls(cfg)
        try:
            await host._open()
            if start_components:
                await host.start_configured()
            yield host
        finally:
            await host.close()

    async def _open(self) -> None:
        """Connect what lives outside the process: the broker, lattice storage, the registry."""
        await self.broker.open()
        cfg = self.config
        if cfg.storage == "nats":
            url = cfg.broker.url or "nats://127.0.0.1:4222"
            memory, self.storage = (
                self.storage,
                await asyncio.to_thread(
                    NatsKvStorage, url, cfg.broker.lattice, replicas=cfg.storage_replicas
                ),
            )
            memory.close()
        if self.lattice is not None:
            await self.lattice.open()

    def _describe(self) -> dict[str, Any]:
        """What this host announces to the lattice."""
        return {
            "pid": os.getpid(),
            "components": [str(cid) for cid in self._component_ids()],
            "snapshot": self.snapshot(),
        }

    async def __aenter__(self) -> Host:
        await self._open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- starting and stopping ------------------------------------------------------------------

    async def start_configured(self) -> list[ComponentHandle]:
        """Start every component of the config in order; record those that fail."""
        handles = []
        for path in self.config.components:
            try:
                handles.append(await self.start(path))
            except WactorError as exc:
                self._load_failed(path, exc)
            except Exception as exc:  # noqa: BLE001 - one component's surprise must not stop the rest
                _log.debug("starting %s failed", path, exc_info=True)
                self._load_failed(path, ComponentError(f"{path}: cannot start: {exc}"))
        return handles

    def _load_failed(self, path: Path, error: WactorError) -> None:
        self.load_failures.append(LoadFailure(path, error, _declared_id(path)))
        _log.error("%s", error)

    async def add_group(
        self,
        name: str,
        spec: SupervisorSpec | None = None,
        *,
        restart: RestartType = "permanent",
    ) -> None:
        """Add a nested supervisor under the host's; start components into it with ``group=``.

        When the group exceeds its restart intensity it stops its components and escalates to
        the host supervisor, which restarts the whole group (per ``restart``) or gives up.
        """
        if name in self._groups:
            raise ConfigError(f"group {name!r} already exists", key="group")
        group = Supervisor(name, spec, on_event=self._on_event)
        await self.supervisor.start_supervisor(group, restart=restart)
        self._groups[name] = group

    async def start(
        self, source: Manifest | str | os.PathLike[str], *, group: str | None = None
    ) -> ComponentHandle:
        """Load, check, compile (or fetch from cache), instantiate and initialize a component."""
        manifest = source if isinstance(source, Manifest) else load_manifest(Path(source))
        if manifest.file_sha256 is None:  # built in code: held to its file before limits apply
            manifest = dataclasses.replace(manifest, file_sha256=manifest_digest(manifest))
        try:
            manifest = apply_host_limits(manifest, self.config.limits, self.config.path)
        except ManifestError as exc:
            self.audit.record(
                "denial", str(manifest.id), allowed=False, action="admit", reason=exc.message
            )
            raise
        if manifest.id in self._runtimes:
            raise ConfigError(
                f"component {manifest.id} is already running",
                file=str(manifest.path),
                key="component.id",
            )
        if manifest.capabilities.net_connect and not self.config.dev:
            raise CapabilityDeniedError(
                f"{manifest.path}: capabilities.network.connect cannot be limited to "
                "host:port by this wasmtime binding (sockets are all or nothing); refused "
                "outside dev mode",
                capability="network.connect",
                component=str(manifest.id),
            )
        loop = asyncio.get_running_loop()
        loaded, manifest = await loop.run_in_executor(self._executor, self._load, manifest)
        runtime = ComponentRuntime(self, manifest, loaded, self.storage)
        sup = manifest.supervision
        spec = ChildSpec(
            str(manifest.id),
            lambda: ComponentActor(runtime, self._executor),
            restart=sup.restart,
            capacity=manifest.limits.mailbox,
            backpressure=manifest.limits.backpressure,
            shutdown_timeout=sup.shutdown_timeout_ms / 1000,
            backoff=Backoff(sup.backoff_initial_ms / 1000, sup.backoff_max_ms / 1000),
            max_restarts=sup.max_restarts,
            within_seconds=sup.within_seconds,
            significant=manifest.id in self.config.supervision.significant,
            on_kill=runtime.kill,
        )
        parent = self.supervisor if group is None else self._groups.get(group)
        if parent is None:
            raise ConfigError(f"no group {group!r}", key="group")
        await self._drop_failed(manifest.id)  # started anew: its failed record goes
        self._runtimes[manifest.id] = runtime
        try:
            cell = await parent.start_child(spec)
        except BaseException:
            del self._runtimes[manifest.id]
            raise
        self.registry.register(cell)
        await self.broker.register(manifest.id, _CellEndpoint(cell))
        if sup.health_interval_ms is not None:
            self._health_tasks[manifest.id] = asyncio.create_task(
                self._watch_health(manifest.id, sup.health_interval_ms / 1000)
            )
        _log.info("started %s (%s)", manifest.id, loaded.digest[:12])
        return ComponentHandle(manifest.id, manifest, loaded.digest)

    def _load(self, manifest: Manifest) -> tuple[LoadedComponent, Manifest]:
        """Check digest and trust, then compile; return the manifest with what was granted.

        The wasm file is read once: trust is decided on those bytes and they are what gets
        compiled (or looked up in the compile cache by their digest).
        """
        try:
            source = WasmBytes.read(manifest.wasm)
        except OSError as exc:
            raise ManifestError(
                f"cannot read wasm file {manifest.wasm}: {exc.strerror}",
                file=str(manifest.path),
                key="component.wasm",
            ) from exc
        verify_digest(manifest, source.digest)
        admission = self.gate.admit(manifest, source.digest)
        granted = dataclasses.replace(
            manifest, capabilities=admission.capabilities, limits=admission.limits
        )
        return self.engine.load_bytes(source), granted

    async def stop(self, target: ComponentId | str, timeout: float | None = None) -> None:
        """Stop a component: let its current message finish, call ``shutdown``, remove it.

        A component that failed (out of its restarts) is removed from the tree.
        """
        cid = _as_id(target)
        if await self._drop_failed(cid):
            return
        self._cell(cid)  # raises TargetNotFoundError
        task = self._health_tasks.pop(cid, None)
        if task is not None:
            task.cancel()
        owner = next(
            (g for g in (self.supervisor, *self._groups.values()) if g.has_child(str(cid))),
            self.supervisor,
        )
        await owner.terminate_child(str(cid), timeout)
        self._forget(cid)
        await asyncio.get_running_loop().run_in_executor(self._executor, trim_heap)

    async def close(self) -> None:
        """Stop every component (reverse start order) and release everything; idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in self._health_tasks.values():
            task.cancel()
        await self.supervisor.stop()
        for cid in list(self._runtimes):
            self._forget(cid)
        trim_heap()
        for task in list(self._tasks):
            task.cancel()
        if self.lattice is not None:
            await self.lattice.close()
        await self.broker.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.engine.close()
        await asyncio.to_thread(self.storage.close)
        self.dead_letters.close()
        self.approvals.close()
        self.audit.close()

    # -- messaging API --------------------------------------------------------------------------

    async def request(
        self,
        target: ComponentId | str,
        payload: bytes,
        *,
        timeout: float = 5.0,
        content_type: str | None = None,
    ) -> bytes | None:
        """Send a request and wait for the reply payload (``None`` if the guest replied nothing)."""
        cid = _as_id(target)
        self._check_payload(payload)
        env = Envelope(
            HOST_SENDER,
            cid,
            payload,
            kind="request",
            correlation_id=self.correlator.new_id(),
            reply_to=HOST_SENDER,
            content_type=content_type,
        )
        try:
            return await self.broker.request(env, timeout)
        except TargetNotFoundError as exc:
            raise self._why_missing(cid) or exc from None

    async def send(
        self, target: ComponentId | str, payload: bytes, *, content_type: str | None = None
    ) -> None:
        """Fire-and-forget; raises ``QueueFullError`` if the mailbox is full (reject policy)."""
        cid = _as_id(target)
        self._check_payload(payload)
        env = Envelope(HOST_SENDER, cid, payload, kind="send", content_type=content_type)
        try:
            await self.broker.send(env)
        except TargetNotFoundError as exc:
            raise self._why_missing(cid) or exc from None

    def _why_missing(self, cid: ComponentId) -> WactorError | None:
        """Why a known component is not running: its load failure, or it failed for good."""
        owner = self._failed_owner(cid)
        if owner is not None:
            return ActorStoppedError(str(cid), owner.child(str(cid)).last_failure or "failed")
        return next((f.error for f in self.load_failures if f.component == cid), None)

    def _failed_owner(self, cid: ComponentId) -> Supervisor | None:
        """The supervisor that gave ``cid`` up and keeps it listed as failed, if any."""
        sups = (self.supervisor, *self._groups.values())
        return next((sup for sup in sups if sup.is_failed(str(cid))), None)

    async def _drop_failed(self, cid: ComponentId) -> bool:
        """Remove a failed component's record from the tree; tell whether there was one."""
        owner = self._failed_owner(cid)
        if owner is not None:
            await owner.terminate_child(str(cid))
        return owner is not None

    async def publish(
        self, subject: str, payload: bytes, *, content_type: str | None = None
    ) -> int:
        """Publish on a topic; every subscription whose pattern matches gets a copy.

        Returns the number of subscriptions that matched here.
        """
        env = Envelope(HOST_SENDER, HOST_SENDER, payload, kind="publish", content_type=content_type)
        return await self._publish(subject, env)

    async def _publish(self, subject: str, env: Envelope) -> int:
        try:
            check_subject(subject)
        except ValueError as exc:
            raise InvalidMessageError(str(exc)) from exc
        return await self.broker.publish(subject, env)

    async def subscribe(
        self, pattern: str, target: ComponentId | str | Callable[[str, Envelope], None]
    ) -> Subscription:
        """Deliver messages published on subjects matching ``pattern`` to a component (as
        fire-and-forget messages) or to a Python callback ``(subject, envelope)``."""
        if callable(target):
            handler = target
        else:
            cid = _as_id(target)

            def handler(subject: str, env: Envelope) -> None:
                self._deliver_publication(cid, subject, env)

        try:
            return await self.broker.subscribe(pattern, handler)
        except ValueError as exc:
            raise InvalidMessageError(str(exc)) from exc

    def _check_payload(self, payload: bytes) -> None:
        limit = self.config.max_payload_bytes
        if len(payload) > limit:
            raise InvalidMessageError(
                f"payload of {len(payload)} bytes exceeds the host's {limit}-byte limit"
            )

    def _deliver_publication(self, cid: ComponentId, subject: str, env: Envelope) -> None:
        copy = Envelope(
            env.sender,
            cid,
            env.payload,
            kind="publish",
            content_type=env.content_type,
            timestamp_ns=env.timestamp_ns,
            subject=subject,
        )
        try:
            self._cell(cid).ref.tell_nowait(copy)
        except WactorError as exc:
            self.dead_letters.record(
                str(cid),
                f"publication on {subject}: {exc}",
                sender=str(env.sender),
                kind="publish",
                size=len(env.payload),
            )

    def components(self) -> list[ComponentStatus]:
        """The running components, in start order."""
        out = []
        for cell in self.registry:
            cid = ComponentId.parse(cell.id)
            runtime = self._runtimes[cid]
            version = runtime.metadata.version if runtime.metadata else runtime.manifest.version
            out.append(ComponentStatus(cid, version, runtime.health, cell.statistics()))
        return out

    def snapshot(self) -> dict[str, Any]:
        """The supervision tree now, as plain data (what ``wactor ps`` shows)."""

        def node(sup: Supervisor) -> dict[str, Any]:
            children: list[dict[str, Any]] = []
            for child in sup.children():
                if isinstance(child, Supervisor):
                    children.append(node(child))
                    continue
                stats = child.statistics()
                runtime = self._runtimes.get(ComponentId.parse(child.id))
                children.append(
                    {
                        "kind": "component",
                        "id": child.id,
                        "state": stats.state,
                        "health": runtime.health if runtime else "unknown",
                        "depth": stats.depth,
                        "capacity": stats.capacity,
                        "processed": stats.processed,
                        "failed": stats.failed,
                        "restarts": stats.restarts,
                        "refused": stats.refused,
                        "last_failure": stats.last_failure,
                    }
                )
            return {
                "kind": "supervisor",
                "id": sup.id,
                "strategy": sup.spec.strategy,
                "state": sup.state,
                "restarts": sup.restarts,
                "last_failure": sup.last_failure,
                "children": children,
            }

        return {
            "pid": os.getpid(),
            "time": time.time(),
            "failure": self.failure,
            "dead_letters": self.dead_letters.total,
            "tree": node(self.supervisor),
        }

    # -- internals used by runtimes -------------------------------------------------------------

    def _cell(self, cid: ComponentId) -> ActorCell[Envelope | HealthCheck]:
        cell: ActorCell[Envelope | HealthCheck] | None = self.registry.lookup(str(cid))
        if cell is None:
            raise TargetNotFoundError(str(cid))
        return cell

    def _knows(self, cid: ComponentId) -> bool:
        return str(cid) in self.registry

    def _runtime(self, cid: ComponentId) -> ComponentRuntime | None:
        return self._runtimes.get(cid)

    def _component_ids(self) -> list[ComponentId]:
        return [ComponentId.parse(c.id) for c in self.registry]

    def _lattice_ids(self) -> list[ComponentId]:
        """Every component this host can reach: its own, and the lattice's when it has one."""
        local = self._component_ids()
        if self.lattice is None:
            return local
        return list(dict.fromkeys([*local, *self.lattice.components()]))

    def _forget(self, cid: ComponentId) -> None:
        health = self._health_tasks.pop(cid, None)
        if health is not None:
            health.cancel()
        runtime = self._runtimes.pop(cid, None)
        if runtime is not None:
            for subscription in runtime.subscriptions.values():
                subscription.cancel()
        self.registry.unregister(str(cid))
        self.correlator.drop_requester(cid)
        task = asyncio.ensure_future(self.broker.unregister(cid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_event(self, event: SupervisorEvent) -> None:
        self.events.append(event)
        audited = _AUDITED_EVENTS.get(event.kind)
        if audited is not None:
            with contextlib.suppress(WactorError):
                self.audit.record(
                    audited,
                    event.child,
                    allowed=event.kind != "gave_up",
                    action=event.kind,
                    reason=event.reason or "",
                )
        routine = event.reason in ("shutdown", "terminated")
        # "started" is logged by Host.start (with the digest); a routine removal follows its stop
        if event.kind != "started" and not (event.kind == "removed" and routine):
            quiet = event.kind in ("stopped", "restarted") or routine
            suffix = f": {event.reason}" if event.reason else ""
            _log.log(
                logging.INFO if quiet else logging.WARNING,
                "%s %s%s",
                event.kind,
                event.child,
                suffix,
            )
        if event.kind in ("removed", "gave_up") and event.child in self.registry:
            with contextlib.suppress(ValueError):
                self._forget(ComponentId.parse(event.child))
        for listener in list(self._listeners):
            listener(event)

    async def wait_event(
        self, kind: str, child: ComponentId | str, *, count: int = 1, timeout: float = 30.0
    ) -> SupervisorEvent:
        """Wait until ``count`` events of ``kind`` for ``child`` happened (counting past ones)."""
        name = str(child)

        def matching() -> list[SupervisorEvent]:
            return [e for e in self.events if e.kind == kind and e.child == name]

        if len(matching()) >= count:
            return matching()[count - 1]
        arrived = asyncio.Event()

        def listener(event: SupervisorEvent) -> None:
            if event.kind == kind and event.child == name and len(matching()) >= count:
                arrived.set()

        unsubscribe = self.watch(listener)
        try:
            await asyncio.wait_for(arrived.wait(), timeout)
        finally:
            unsubscribe()
        return matching()[count - 1]

    def watch(self, listener: Callable[[SupervisorEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with every lifecycle event; return a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def _gave_up(self, supervisor: Supervisor, reason: str) -> None:
        self.failure = reason
        self.failed.set()
        _log.error("host supervisor gave up: %s", reason)

    async def _watch_health(self, cid: ComponentId, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self._cell(cid).ref.ask(HEALTH_CHECK, timeout=max(interval, 5.0))
            except TargetNotFoundError:
                return
            except WactorError:
                continue  # the actor reports and acts on failures itself

    async def _deliver(self, env: Envelope) -> None:
        await self.broker.send(env)

    async def _start_guest_request(self, env: Envelope, pending: PendingRequest) -> None:
        fut = await self.broker.submit(env)  # a refusal reaches the guest as its err at once
        self.correlator.open(pending)
        task = asyncio.get_running_loop().create_task(self._finish_guest_request(fut, pending))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish_guest_request(
        self, fut: asyncio.Future[Any], pending: PendingRequest
    ) -> None:
        try:
            reply = await fut
        except Exception as exc:  # noqa: BLE001 - the failure is the requester's error callback
            if self.correlator.complete(pending.correlation_id) is not None:
                self._deliver_callback(error_callback(pending, str(exc)), pending)
            return
        if self.correlator.complete(pending.correlation_id) is None:
            return  # late (timed out) or cancelled: dropped and counted by the correlator
        callback = Envelope(
            pending.target,
            pending.requester,
            reply if reply is not None else b"",
            kind="callback",
            correlation_id=pending.correlation_id,
            reply_to=pending.requester,
        )
        self._deliver_callback(callback, pending)

    def _callback_over_nats(self, env: Envelope) -> bool:
        """Accept a callback from the lattice only as the answer of a request this host opened
        for ``env.target`` to ``env.sender`` (closing it: its own reply then drops as late)."""
        cid = env.correlation_id
        return cid is not None and self.correlator.claim(cid, env.target, env.sender) is not None

    def _request_timed_out(self, pending: PendingRequest) -> None:
        text = RequestTimeoutError(
            str(pending.target), pending.timeout_ms / 1000, pending.correlation_id
        ).message
        self._deliver_callback(error_callback(pending, text), pending)

    def _deliver_callback(self, env: Envelope, pending: PendingRequest) -> None:
        try:
            self._cell(pending.requester).ref.tell_nowait(env)
        except WactorError as exc:
            self.dead_letters.record(
                str(pending.requester),
                f"callback undeliverable: {exc}",
                sender=str(pending.target),
                kind="callback",
                size=len(env.payload),
                correlation_id=pending.correlation_id,
            )


class _CellEndpoint:
    """A component actor as the broker's endpoint."""

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell[Envelope | HealthCheck]) -> None:
        self._cell = cell

    def _check(self, env: Envelope) -> None:
        # A closed mailbox means stopped for good (a restart keeps it open): gone, not stopped.
        if self._cell.mailbox.closed:
            raise TargetNotFoundError(str(env.target))

    async def deliver(self, env: Envelope) -> None:
        self._check(env)
        await self._cell.ref.tell(env)

    async def submit(self, env: Envelope) -> asyncio.Future[bytes | None]:
        self._check(env)
        return await self._cell.ref.submit(env)


def _make_state_dir(config: HostConfig) -> None:
    """Create the state directory, or say in the config's words why it cannot be."""
    try:
        config.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HostConfigError(
            f"cannot create directory {config.state_dir}: {exc.strerror or exc}",
            file=str(config.path) if config.path else None,
            key="state-dir",
            expected="a directory the host can create and write",
        ) from exc


def _declared_id(path: Path) -> ComponentId | None:
    """Best effort: the id a (possibly invalid) manifest declares, to attribute its failure."""
    try:
        declared = read_toml(path, ManifestError)["component"]["id"]
        return ComponentId.parse(declared) if isinstance(declared, str) else None
    except (ConfigError, ValueError, KeyError, TypeError):
        return None


def _as_id(target: ComponentId | str) -> ComponentId:
    if isinstance(target, ComponentId):
        return target
    try:
        return ComponentId.parse(target)
    except ValueError as exc:
        raise ConfigError(str(exc), key="target") from exc
