"""The component manifest (``component.toml``): what a component is, may use and how it restarts.

The loader validates everything once, here at the edge, and turns each problem into one
``ManifestError`` line naming the file, the dotted key and what was expected. Everything past this
module can trust a ``Manifest``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from wactor._ids import ComponentId, TargetPattern
from wactor._toml import ConfigTable, quote_key, read_config_bytes, read_config_file
from wactor._units import KIB, MIB
from wactor.actors import Backpressure, RestartType
from wactor.errors import DigestMismatchError, ManifestError
from wactor.security._capabilities import (
    MESSAGING_ACTIONS,
    Capabilities,
    GrantError,
    parse_connect,
    parse_env_name,
    parse_target,
    parse_topic,
)

__all__ = [
    "ComponentConfig",
    "Execution",
    "Limits",
    "Manifest",
    "RestartType",
    "SupervisionSpec",
    "load_manifest",
    "manifest_digest",
    "verify_digest",
]

T = TypeVar("T")
Execution = Literal["auto", "worker"]
_RESTART_TYPES: tuple[RestartType, ...] = ("permanent", "transient", "temporary")
_BACKPRESSURE: tuple[Backpressure, ...] = ("reject", "wait")
_EXECUTION: tuple[Execution, ...] = ("auto", "worker")
_RESOURCE_KEYS = (
    "memory",
    "timeout-ms",
    "fuel",
    "mailbox",
    "backpressure",
    "message-rate",
    "message-burst",
)
# [resources] keys that are not limits the host fills in for a silent manifest
_OTHER_RESOURCE_KEYS = ("execution",)

# A storage section without a quota still means "this component uses storage"; 10 MiB is the
# example the design uses and is generous for state, small for a runaway loop.
DEFAULT_STORAGE_QUOTA = 10 * MIB

# Ids in this namespace belong to the host itself (its sender id is wactor/host/0).
RESERVED_NAMESPACE = "wactor"


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits of one instance; timeouts and fuel apply to each export call."""

    memory_bytes: int = 64 * MIB
    timeout_ms: int = 1000
    fuel: int | None = None
    mailbox: int = 1024
    backpressure: Backpressure = "reject"  # full mailbox: refuse at once, or make senders wait
    message_rate: int | None = None  # messages/s the component may emit (token bucket)
    message_burst: int | None = None  # bucket size; default: one second's worth
    # where export calls run: "auto" (short calls on the host loop's thread, decided from
    # measured call times) or "worker" (always on a worker thread; never inline)
    execution: Execution = "auto"
    # The [resources] keys the manifest wrote (None: built in Python, every value is meant).
    # Silent ones are filled from the host's [limits] when the component starts.
    declared: frozenset[str] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SupervisionSpec:
    """How the component's supervisor restarts it (Erlang/OTP child spec)."""

    restart: RestartType = "permanent"
    max_restarts: int = 3
    within_seconds: float = 5.0
    backoff_initial_ms: int = 10
    backoff_max_ms: int = 2000
    shutdown_timeout_ms: int = 5000
    health_interval_ms: int | None = None  # None: no periodic health checks
    health_threshold: int = 3  # consecutive unhealthy answers before a restart


@dataclass(frozen=True, slots=True)
class ComponentConfig:
    """What ``initialize`` receives: ``env-vars`` and ``config-data``."""

    env: tuple[tuple[str, str], ...] = ()
    data: str | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    """A validated ``component.toml``; paths are absolute."""

    path: Path
    id: ComponentId
    wasm: Path
    version: str = "0.0.0"
    sha256: str | None = None  # lowercase hex, no "sha256:" prefix
    description: str | None = None
    limits: Limits = field(default_factory=Limits)
    capabilities: Capabilities = field(default_factory=Capabilities)
    supervision: SupervisionSpec = field(default_factory=SupervisionSpec)
    config: ComponentConfig = field(default_factory=ComponentConfig)
    # sha256 hex of the exact bytes this was parsed from (what signatures, pins and approvals
    # cover); None for a manifest built in code
    file_sha256: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Also for a manifest built or changed in code (``dataclasses.replace`` keeps the file's
        # digest): its id must be one a file could declare, outside the host's namespace.
        problem = _id_problem(self.id)
        if problem is not None:
            raise ManifestError(
                problem[0], file=str(self.path), key="component.id", expected=problem[1]
            )


# --- loading ---------------------------------------------------------------------------------


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate the manifest at ``path``; raise ``ManifestError`` on any problem."""
    given = Path(path)
    raw = read_config_bytes(given, ManifestError)  # read once: parsed, hashed and trusted
    root = read_config_file(
        given,
        ManifestError,
        allowed=("component", "resources", "capabilities", "supervision", "config"),
        content=raw,
    )
    base = given.resolve().parent

    component = root.table("component", ("id", "wasm", "version", "sha256", "description"))
    if component is None:
        root.fail("component", "missing table", expected="[component] with id and wasm")
    component_id = _component_id(component)
    wasm = _wasm_path(component, base)
    version = component.opt_str("version")
    if version is None:
        version = "0.0.0"
    elif not version.strip() or not version.isprintable() or len(version) > 64:
        component.fail(
            "version",
            f"bad version {version!r}"[:100],
            expected="a version such as '1.2.0' (printable, at most 64 characters)",
        )
    sha256 = _digest(component, "sha256")
    description = component.opt_str("description")

    return Manifest(
        path=given.resolve(),
        id=component_id,
        wasm=wasm,
        version=version,
        sha256=sha256,
        description=description,
        limits=_limits(root.table("resources", (*_RESOURCE_KEYS, *_OTHER_RESOURCE_KEYS))),
        capabilities=_capabilities(
            root.table(
                "capabilities", ("messaging", "storage", "filesystem", "network", "environment")
            ),
            base,
        ),
        supervision=_supervision(
            root.table(
                "supervision",
                (
                    "restart",
                    "max-restarts",
                    "within-seconds",
                    "backoff",
                    "shutdown-timeout-ms",
                    "health-interval-ms",
                    "health-threshold",
                ),
            )
        ),
        config=_config(root.table("config", ("env", "data"))),
        file_sha256=hashlib.sha256(raw).hexdigest(),
    )


def manifest_digest(manifest: Manifest) -> str:
    """Return the sha256 hex of the bytes ``manifest`` was parsed from.

    A manifest built in code has none: its file is parsed again and must say exactly the same,
    so that what a signature, pin or approval covers is what runs.
    """
    if manifest.file_sha256 is not None:
        return manifest.file_sha256
    reread = load_manifest(manifest.path)
    if reread != manifest:
        raise ManifestError(
            "the Manifest given differs from this file; pass the file's path or load_manifest()",
            file=str(manifest.path),
            component=str(manifest.id),
        )
    return str(reread.file_sha256)


def verify_digest(manifest: Manifest, wasm_bytes: bytes | str) -> str:
    """Return the sha256 hex digest of the wasm (given as bytes, or as its known hex digest);
    raise ``DigestMismatchError`` if the manifest pins another one."""
    actual = wasm_bytes if isinstance(wasm_bytes, str) else hashlib.sha256(wasm_bytes).hexdigest()
    if manifest.sha256 is not None and manifest.sha256 != actual:
        raise DigestMismatchError(
            f"{manifest.wasm.name} has sha256 {actual[:12]}..., "
            f"the manifest pins {manifest.sha256[:12]}...",
            file=str(manifest.path),
            key="component.sha256",
            component=str(manifest.id),
        )
    return actual


def _component_id(table: ConfigTable) -> ComponentId:
    text = table.req_str("id")
    try:
        component_id = ComponentId.parse(text)
    except ValueError as exc:
        table.fail("id", str(exc), expected="namespace/name/instance")
    problem = _id_problem(component_id)
    if problem is not None:
        table.fail("id", problem[0], expected=problem[1])
    return component_id


def _id_problem(component_id: object) -> tuple[str, str] | None:
    """What is wrong with a manifest's id, and what is expected; ``None`` when it is fine."""
    expected = "namespace/name/instance"
    if not isinstance(component_id, ComponentId):
        return f"{component_id!r} is not a ComponentId", expected
    try:
        well_formed = ComponentId.parse(str(component_id)) == component_id
    except ValueError as exc:
        return str(exc), expected
    if not well_formed:
        return f"component id {str(component_id)!r} is not well formed", expected
    if component_id.namespace.lower() == RESERVED_NAMESPACE:
        # The host speaks as wactor/host/0: a component under that name could pose as it.
        return (
            f"namespace {component_id.namespace!r} is reserved for the host",
            "an id in a namespace of your own",
        )
    return None


def _wasm_path(table: ConfigTable, base: Path) -> Path:
    return table.req_file("wasm", base, expected="a wasm file, relative to the manifest")


def _digest(table: ConfigTable, name: str) -> str | None:
    text = table.opt_str(name)
    return None if text is None else table.digest(name, text)


def _limits(table: ConfigTable | None) -> Limits:
    if table is None:
        return Limits(declared=frozenset())
    default = Limits()
    return Limits(
        memory_bytes=table.size("memory", default.memory_bytes, minimum=64 * KIB),
        timeout_ms=table.integer("timeout-ms", default.timeout_ms, minimum=1),
        fuel=table.opt_integer("fuel", minimum=1),
        mailbox=table.integer("mailbox", default.mailbox, minimum=1),
        backpressure=table.choice("backpressure", _BACKPRESSURE, default.backpressure),
        message_rate=table.opt_integer("message-rate", minimum=1),
        message_burst=table.opt_integer("message-burst", minimum=1),
        execution=table.choice("execution", _EXECUTION, default.execution),
        declared=frozenset(key for key in _RESOURCE_KEYS if table.has(key)),
    )


def _capabilities(table: ConfigTable | None, base: Path) -> Capabilities:
    if table is None:
        return Capabilities()
    send: tuple[TargetPattern, ...] = ()
    request: tuple[TargetPattern, ...] = ()
    broadcast: tuple[TargetPattern, ...] = ()
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    messaging = table.table("messaging", (*MESSAGING_ACTIONS, "publish", "subscribe"))
    if messaging is not None:
        send = _patterns(messaging, "send")
        request = _patterns(messaging, "request")
        broadcast = _patterns(messaging, "broadcast")
        publish = _topic_patterns(messaging, "publish")
        subscribe = _topic_patterns(messaging, "subscribe")

    quota: int | None = None
    storage = table.table("storage", ("quota",))
    if storage is not None:
        quota = storage.size("quota", DEFAULT_STORAGE_QUOTA, minimum=1)

    fs_read: tuple[Path, ...] = ()
    fs_write: tuple[Path, ...] = ()
    filesystem = table.table("filesystem", ("read", "write"))
    if filesystem is not None:
        fs_read = filesystem.dir_list("read", base)
        fs_write = filesystem.dir_list("write", base)

    connect: tuple[str, ...] = ()
    network = table.table("network", ("connect",))
    if network is not None:
        connect = _grants(network, "connect", parse_connect)

    env: tuple[str, ...] = ()
    environment = table.table("environment", ("allow",))
    if environment is not None:
        env = _grants(environment, "allow", parse_env_name)

    return Capabilities(
        send=send,
        request=request,
        broadcast=broadcast,
        storage_quota=quota,
        fs_read=fs_read,
        fs_write=fs_write,
        net_connect=connect,
        env=env,
        publish=publish,
        subscribe=subscribe,
    )


def _topic_patterns(table: ConfigTable, name: str) -> tuple[str, ...]:
    return _grants(table, name, parse_topic)


def _patterns(table: ConfigTable, name: str) -> tuple[TargetPattern, ...]:
    return _grants(table, name, parse_target)


def _grants(table: ConfigTable, name: str, parse: Callable[[str], T]) -> tuple[T, ...]:
    """Read a list of grants, each checked by its grammar (one line per bad item)."""
    out = []
    for index, text in enumerate(table.str_list(name)):
        try:
            out.append(parse(text))
        except GrantError as exc:
            table.fail(f"{name}[{index}]", exc.problem, expected=exc.expected)
    return tuple(out)


def _supervision(table: ConfigTable | None) -> SupervisionSpec:
    default = SupervisionSpec()
    if table is None:
        return default
    initial_ms = default.backoff_initial_ms
    max_ms = default.backoff_max_ms
    backoff = table.table("backoff", ("initial-ms", "max-ms"))
    if backoff is not None:
        initial_ms = backoff.integer("initial-ms", initial_ms, minimum=0)
        max_ms = backoff.integer("max-ms", max(max_ms, initial_ms), minimum=0)
        if max_ms < initial_ms:
            backoff.fail(
                "max-ms", f"{max_ms} is below initial-ms {initial_ms}", expected=f">= {initial_ms}"
            )
    return SupervisionSpec(
        restart=table.choice("restart", _RESTART_TYPES, default.restart),
        max_restarts=table.integer("max-restarts", default.max_restarts, minimum=0),
        within_seconds=table.number("within-seconds", default.within_seconds),
        backoff_initial_ms=initial_ms,
        backoff_max_ms=max_ms,
        shutdown_timeout_ms=table.integer(
            "shutdown-timeout-ms", default.shutdown_timeout_ms, minimum=1
        ),
        health_interval_ms=table.opt_integer("health-interval-ms", minimum=1),
        health_threshold=table.integer("health-threshold", default.health_threshold, minimum=1),
    )


def _config(table: ConfigTable | None) -> ComponentConfig:
    if table is None:
        return ComponentConfig()
    env = table.str_map("env")
    for name, value in env.items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            table.fail(
                f"env.{quote_key(name)}",
                "bad environment entry",
                expected="a non-empty name without '=' or NUL and a value without NUL",
            )
    return ComponentConfig(env=tuple(env.items()), data=table.opt_str("data"))
