"""The Host: one process running components as actors, with the embedded broker and storage."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from wactor._bridge import run_on_thread
from wactor._ids import ComponentId
from wactor._tasks import TaskOwner
from wactor.actors import (
    ActorCell,
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
    ComponentError,
    ConfigError,
    TargetNotFoundError,
    WactorError,
)
from wactor.host._actor import HEALTH_CHECK, ComponentActor
from wactor.host._admission import Admission, reload_source
from wactor.host._backends import Backends
from wactor.host._config import HostConfig, load_host_config
from wactor.host._directories import default_cache_dir, make_state_dir
from wactor.host._events import LifecycleEvents
from wactor.host._heap import trim_heap
from wactor.host._http import HttpClient
from wactor.host._introspect import ComponentStatus, component_statuses, tree_snapshot
from wactor.host._load_failure import LoadFailure
from wactor.host._observe import Observer, start_observer
from wactor.host._router import Router
from wactor.host._runtime import ComponentRuntime
from wactor.host._table import ComponentTable
from wactor.messaging import (
    DeadLetterLog,
    Envelope,
    Subscription,
    TopicHandler,
)
from wactor.security import (
    ApprovalStore,
    AuditLog,
    Gatekeeper,
    Manifest,
    load_manifest,
    manifest_digest,
)
from wactor.wasm import LoadedComponent, WasmEngine, build_linker

if TYPE_CHECKING:  # the lattice loads a NATS client: only a host on a lattice imports it
    pass

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
DEAD_LETTERS_FILE: Final = DeadLetterLog.filename


@dataclass(frozen=True, slots=True)
class ComponentHandle:
    """A started component."""

    id: ComponentId
    manifest: Manifest
    digest: str


class Host:
    """Runs components; use ``async with Host.open(config) as host``."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        make_state_dir(config)
        self.engine = WasmEngine(config.cache_dir or default_cache_dir())
        self.linker = build_linker(self.engine)
        self.http = HttpClient(config.http)  # wactor:http: guests' outbound exchanges
        self.host_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.registry = Registry()
        self.dead_letters = DeadLetterLog(config.state_dir / DEAD_LETTERS_FILE)
        self._backends = Backends(
            config,
            self.host_id,
            accept_callback=lambda env: self.router.accept_callback(env),  # noqa: PLW0108 - router comes later
            describe=self._describe,
        )
        self.broker, self.storage, self.lattice = (
            self._backends.broker,
            self._backends.storage,
            self._backends.lattice,
        )
        self.router = Router(
            self.broker, self.registry, self.dead_letters, config.max_payload_bytes
        )
        self.correlator = self.router.correlator
        self.table = ComponentTable(self.registry, self.lattice)
        self.audit = AuditLog.for_state_dir(
            config.state_dir, component_rate=config.limits.audit_per_second
        )
        self.approvals = ApprovalStore.for_state_dir(config.state_dir, audit=self.audit)
        self.lifecycle = LifecycleEvents(self.audit)
        self.events = self.lifecycle.events
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
        self._executor = ThreadPoolExecutor(
            max_workers=max(32, 8 * (os.cpu_count() or 2)), thread_name_prefix="wactor-wasm"
        )
        self.admission = Admission(
            self.engine,
            self.gate,
            audit=self.audit,
            limits=config.limits,
            config_path=config.path,
            executor=self._executor,
        )
        sup = config.supervision
        self.supervisor = Supervisor(
            "host",
            SupervisorSpec(sup.strategy, sup.max_restarts, sup.within_seconds),
            on_event=self._on_event,
            on_give_up=self._gave_up,
        )
        self.failure: str | None = None
        self.failed = asyncio.Event()
        self._groups: dict[str, Supervisor] = {}
        # each component as started (manifest and group): what a reload or restart goes back to
        self._sources: dict[ComponentId, tuple[Manifest, str | None]] = {}
        self._swapping: dict[ComponentId, asyncio.Lock] = {}
        self._health: dict[ComponentId, asyncio.Task[Any]] = {}
        self._health_tasks = TaskOwner("health checks")
        self._closed = False
        self.observer: Observer | None = None  # [observe]: metrics, status, dashboard

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

    def _describe(self) -> dict[str, Any]:
        """What this host announces to the lattice."""
        return {
            "pid": os.getpid(),
            "components": [str(cid) for cid in self.table.local_ids()],
            "snapshot": self.snapshot(),
        }

    async def _open(self) -> None:
        await self._backends.open()
        self.storage = self._backends.storage  # NATS KV storage exists once connected
        self.observer = await start_observer(self, self.config.observe, self.config.path)

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
        self.load_failures.append(LoadFailure.of(path, error))
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
        """Load, check, compile (or fetch from cache), instantiate and initialize a component.

        A manifest of the config that failed to load before (``load_failures``) leaves that
        list when it starts, and its entry says why it failed again if it does.
        """
        if isinstance(source, Manifest):
            return await self._start(source, group)
        path = Path(source)
        try:
            handle = await self._start(path, group)
        except WactorError as exc:
            self.load_failures[:] = [
                dataclasses.replace(f, error=exc) if f.manifest == path else f
                for f in self.load_failures
            ]
            raise
        self.load_failures[:] = [f for f in self.load_failures if f.manifest != path]
        return handle

    async def _start(self, source: Manifest | Path, group: str | None) -> ComponentHandle:
        manifest = source if isinstance(source, Manifest) else load_manifest(Path(source))
        if manifest.file_sha256 is None:  # built in code: held to its file before limits apply
            manifest = dataclasses.replace(manifest, file_sha256=manifest_digest(manifest))
        manifest = self.admission.within_limits(manifest)
        if manifest.id in self.table:
            raise ConfigError(
                f"component {manifest.id} is already running",
                file=str(manifest.path),
                key="component.id",
            )
        source = manifest
        loaded, manifest = await self.admission.load(manifest)
        runtime = self._new_runtime(manifest, loaded)
        sup = manifest.supervision
        spec = ChildSpec(
            str(manifest.id),
            self._actor_factory(runtime),
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
        self.table.add(runtime)
        self._sources[manifest.id] = (source, group)
        try:
            cell = await parent.start_child(spec)
        except BaseException:
            self.table.pop(manifest.id)
            raise
        await self.router.register(cell, manifest.id)
        if sup.health_interval_ms is not None:
            self._health[manifest.id] = self._health_tasks.spawn(
                self._watch_health(manifest.id, sup.health_interval_ms / 1000),
                name=f"health:{manifest.id}",
            )
        _log.info("started %s (%s)", manifest.id, loaded.digest[:12])
        return ComponentHandle(manifest.id, manifest, loaded.digest)

    def _new_runtime(self, manifest: Manifest, loaded: LoadedComponent) -> ComponentRuntime:
        return ComponentRuntime(
            manifest,
            loaded,
            router=self.router,
            peers=self.table,
            audit=self.audit,
            limits=self.config.limits,
            engine=self.engine,
            linker=self.linker,
            storage=self.storage,
            http=self.http,
        )

    def _actor_factory(self, runtime: ComponentRuntime) -> Callable[[], ComponentActor]:
        return lambda: ComponentActor(runtime, self._executor)

    async def restart(self, target: ComponentId | str) -> None:
        """Restart a component now: the message in progress finishes, then a fresh instance
        (its memory starts anew; its storage stays) takes over the queued messages.

        A component that failed for good (out of its restarts) is started anew from its
        manifest.
        """
        cid = _as_id(target)
        if self._failed_owner(cid) is not None and cid in self._sources:
            source, group = self._sources[cid]
            await self.start(source, group=group)
            return
        await self._owner(cid).restart_child(str(cid))

    async def reload(
        self, target: ComponentId | str, *, wasm: str | os.PathLike[str] | None = None
    ) -> ComponentHandle:
        """Swap a running component's code, keeping its mailbox (a hot code swap).

        The manifest is read again from its file (a manifest built in code is kept), ``wasm``
        replacing its binary if given. The new code passes the checks of a start (pinned
        digest, signature, approval) and is compiled and initialized before anything changes;
        the call in progress finishes on the old code, messages already queued are handled by
        the new. If any of that fails, the old code keeps running and the error is raised.
        Audited either way.
        """
        cid = _as_id(target)
        if self.table.runtime(cid) is None:
            raise self._why_missing(cid) or TargetNotFoundError(str(cid))
        try:
            async with self._swapping.setdefault(cid, asyncio.Lock()):  # one swap at a time
                handle = await self._swap_code(cid, wasm)
        except WactorError as exc:
            self.audit.record(
                "reload", str(cid), allowed=False, action="reload", reason=exc.message
            )
            raise
        self.audit.record("reload", str(cid), allowed=True, action="reload", target=handle.digest)
        return handle

    async def _swap_code(
        self, cid: ComponentId, wasm: str | os.PathLike[str] | None
    ) -> ComponentHandle:
        old = self.table.runtime(cid)
        if old is None:  # stopped while an earlier swap went on
            raise TargetNotFoundError(str(cid))
        source, group = self._sources.get(cid, (old.manifest, None))
        source = await run_on_thread(self._executor, lambda: reload_source(source, wasm))
        loaded, manifest = await self.admission.load(self.admission.within_limits(source))
        runtime = self._new_runtime(manifest, loaded)
        # Topic subscriptions belong to the component, as across a restart: the new code's
        # initialize finds its patterns subscribed already (nothing is delivered twice).
        runtime.subscriptions = old.subscriptions
        before = set(old.subscriptions)
        try:
            await self._owner(cid).replace_child(
                str(cid),
                self._actor_factory(runtime),
                on_kill=runtime.kill,
                reason=f"code {loaded.digest[:12]} replaced {old.loaded.digest[:12]}",
            )
        except BaseException:
            for pattern in set(old.subscriptions) - before:  # made by the code that failed
                old.subscriptions.pop(pattern).cancel()
            raise
        self.table.add(runtime)
        self._sources[cid] = (source, group)
        _log.info("reloaded %s (%s)", cid, loaded.digest[:12])
        return ComponentHandle(cid, manifest, loaded.digest)

    def _owner(self, cid: ComponentId) -> Supervisor:
        """The supervisor of a running component."""
        self._cell(cid)  # raises TargetNotFoundError
        return next((s for s in self._supervisors() if s.has_child(str(cid))), self.supervisor)

    def _supervisors(self) -> tuple[Supervisor, ...]:
        return (self.supervisor, *self._groups.values())

    async def stop(self, target: ComponentId | str, timeout: float | None = None) -> None:
        """Stop a component: let its current message finish, call ``shutdown``, remove it.

        A component that failed (out of its restarts) is removed from the tree.
        """
        cid = _as_id(target)
        if await self._drop_failed(cid):
            self._sources.pop(cid, None)
            return
        owner = self._owner(cid)
        health = self._health.pop(cid, None)
        if health is not None:
            health.cancel()
        await owner.terminate_child(str(cid), timeout)
        self._sources.pop(cid, None)
        self._swapping.pop(cid, None)
        self._forget(cid)
        await run_on_thread(self._executor, trim_heap)

    async def close(self) -> None:
        """Stop every component (reverse start order), join every task, release everything.

        Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        if self.observer is not None:
            await self.observer.close()
        self._health_tasks.cancel()
        await self.supervisor.stop()
        for cid in list(self.table):
            self._forget(cid)
        await self._health_tasks.close()
        trim_heap()
        await self.router.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.engine.close()
        self.http.close()
        await self._backends.close()
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
        if not (math.isfinite(timeout) and timeout > 0):
            raise ConfigError(
                f"timeout must be a positive number of seconds, not {timeout!r}", key="timeout"
            )
        self.router.check_payload(payload)
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
        self.router.check_payload(payload)
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
        return next((s for s in self._supervisors() if s.is_failed(str(cid))), None)

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
        return await self.router.publish(subject, env)

    async def subscribe(
        self, pattern: str, target: ComponentId | str | TopicHandler
    ) -> Subscription:
        """Deliver messages published on subjects matching ``pattern`` to a component (as
        fire-and-forget messages) or to a Python callback ``(subject, envelope)``."""
        return await self.router.subscribe(pattern, target if callable(target) else _as_id(target))

    # -- introspection ---------------------------------------------------------------------------

    def components(self) -> list[ComponentStatus]:
        """The running components, in start order."""
        return component_statuses(self.registry, self.table)

    def snapshot(self) -> dict[str, Any]:
        """The supervision tree now, as plain data (what ``wactor ps`` shows), with the URL of
        the observe endpoint if it serves one."""
        snap = tree_snapshot(
            self.supervisor, self.table, failure=self.failure, dead_letters=self.dead_letters.total
        )
        snap["observe"] = None if self.observer is None else self.observer.url
        return snap

    def _cell(self, cid: ComponentId) -> ActorCell[Any]:
        return self.router.cell(cid)

    # -- lifecycle events ------------------------------------------------------------------------

    def _forget(self, cid: ComponentId) -> None:
        health = self._health.pop(cid, None)
        if health is not None:
            health.cancel()
        runtime = self.table.pop(cid)
        if runtime is not None:
            for subscription in runtime.subscriptions.values():
                subscription.cancel()
        self.router.forget(cid)

    def _on_event(self, event: SupervisorEvent) -> None:
        self.lifecycle.record(event)
        if event.kind in ("removed", "gave_up") and event.child in self.registry:
            with contextlib.suppress(ValueError):
                self._forget(ComponentId.parse(event.child))
        self.lifecycle.notify(event)

    async def wait_event(
        self, kind: str, child: ComponentId | str, *, count: int = 1, timeout: float = 30.0
    ) -> SupervisorEvent:
        """Wait until ``count`` events of ``kind`` for ``child`` happened (counting past ones)."""
        return await self.lifecycle.wait(kind, child, count=count, timeout=timeout)

    def watch(self, listener: Callable[[SupervisorEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with every lifecycle event; return a function that unsubscribes."""
        return self.lifecycle.watch(listener)

    async def _gave_up(self, supervisor: Supervisor, reason: str) -> None:
        self.failure = reason
        self.failed.set()
        _log.error("host supervisor gave up: %s", reason)

    async def _watch_health(self, cid: ComponentId, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.router.cell(cid).ref.ask(HEALTH_CHECK, timeout=max(interval, 5.0))
            except TargetNotFoundError:
                return
            except WactorError:
                continue  # the actor reports and acts on failures itself


def _as_id(target: ComponentId | str) -> ComponentId:
    if isinstance(target, ComponentId):
        return target
    try:
        return ComponentId.parse(target)
    except ValueError as exc:
        raise ConfigError(str(exc), key="target") from exc
