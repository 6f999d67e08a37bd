"""The component manifest (``component.toml``): what a component is, may use and how it restarts.

The loader validates everything once, here at the edge, and turns each problem into one
``ManifestError`` line naming the file, the dotted key and what was expected. Everything past this
module can trust a ``Manifest``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from wactor._ids import ComponentId, TargetPattern
from wactor._toml import ConfigTable, quote_key, read_config_bytes, read_config_file
from wactor._units import KIB, MIB
from wactor.actors import Backpressure, RestartType
from wactor.errors import DigestMismatchError, ManifestError
from wactor.messaging._subjects import SubjectPattern

__all__ = [
    "Capabilities",
    "ComponentConfig",
    "Limits",
    "Manifest",
    "MessagingAction",
    "RestartType",
    "SupervisionSpec",
    "load_manifest",
    "manifest_digest",
    "verify_digest",
]

MessagingAction = Literal["send", "request", "broadcast"]

_RESTART_TYPES: tuple[RestartType, ...] = ("permanent", "transient", "temporary")
_BACKPRESSURE: tuple[Backpressure, ...] = ("reject", "wait")
_RESOURCE_KEYS = (
    "memory",
    "timeout-ms",
    "fuel",
    "mailbox",
    "backpressure",
    "message-rate",
    "message-burst",
)
_MESSAGING_ACTIONS: tuple[MessagingAction, ...] = ("send", "request", "broadcast")

# A storage section without a quota still means "this component uses storage"; 10 MiB is the
# example the design uses and is generous for state, small for a runaway loop.
DEFAULT_STORAGE_QUOTA = 10 * MIB

# Ids in this namespace belong to the host itself (its sender id is wactor/host/0).
RESERVED_NAMESPACE = "wactor"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")


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
    # The [resources] keys the manifest wrote (None: built in Python, every value is meant).
    # Silent ones are filled from the host's [limits] when the component starts.
    declared: frozenset[str] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a component may do beyond computing: nothing unless listed here."""

    send: tuple[TargetPattern, ...] = ()
    request: tuple[TargetPattern, ...] = ()
    broadcast: tuple[TargetPattern, ...] = ()
    storage_quota: int | None = None  # None: no storage at all
    fs_read: tuple[Path, ...] = ()
    fs_write: tuple[Path, ...] = ()
    net_connect: tuple[str, ...] = ()  # "host:port" patterns, see _check_connect_pattern
    env: tuple[str, ...] = ()  # names of host environment variables the component may see
    publish: tuple[str, ...] = ()  # topic subject patterns it may publish on
    subscribe: tuple[str, ...] = ()  # topic patterns it may subscribe to (or narrower ones)

    def allows_publish(self, subject: str) -> bool:
        """Tell whether publishing on ``subject`` is granted."""
        return any(SubjectPattern.parse(p).matches(subject) for p in self.publish)

    def allows_subscribe(self, pattern: str) -> bool:
        """Tell whether subscribing to ``pattern`` is granted: every subject it can match must
        be matched by a granted pattern (token by token: ``#`` covers the rest, ``*`` covers
        ``*`` or a literal, a literal only itself)."""
        return any(_covers(granted, pattern) for granted in self.subscribe)

    def allows(self, action: MessagingAction, target: ComponentId) -> bool:
        """Tell whether messaging ``action`` towards ``target`` is granted."""
        if action == "send":
            patterns = self.send
        elif action == "request":
            patterns = self.request
        elif action == "broadcast":
            patterns = self.broadcast
        else:
            raise ValueError(f"unknown messaging action {action!r}")
        return any(pattern.matches(target) for pattern in patterns)

    def allows_connect(self, host: str, port: int) -> bool:
        """Tell whether opening a socket to ``host:port`` is granted."""
        return any(_connect_matches(p, host, port) for p in self.net_connect)

    @property
    def has_storage(self) -> bool:
        """Tell whether the component may use key-value storage at all."""
        return self.storage_quota is not None


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
        limits=_limits(root.table("resources", _RESOURCE_KEYS)),
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
    messaging = table.table("messaging", (*_MESSAGING_ACTIONS, "publish", "subscribe"))
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
        items = network.str_list("connect")
        for index, item in enumerate(items):
            problem = _check_connect_pattern(item)
            if problem:
                network.fail(
                    f"connect[{index}]",
                    f"bad pattern {item!r}: {problem}",
                    expected="'host:port' with host a name, '*.domain', an IP, '[v6]' or '*', "
                    "and port a number, 'lo-hi' or '*'",
                )
        connect = tuple(item.lower() for item in items)

    env: tuple[str, ...] = ()
    environment = table.table("environment", ("allow",))
    if environment is not None:
        env = environment.str_list("allow")
        for index, name in enumerate(env):
            if not _ENV_NAME.match(name):
                environment.fail(
                    f"allow[{index}]",
                    f"bad variable name {name!r}",
                    expected="letters, digits and '_', not starting with a digit",
                )

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
    out = []
    for index, text in enumerate(table.str_list(name)):
        try:
            SubjectPattern.parse(text)
        except ValueError as exc:
            table.fail(
                f"{name}[{index}]",
                str(exc),
                expected="dot-separated tokens with '*' for one and a final '#' for the rest",
            )
        out.append(text)
    return tuple(out)


def _covers(granted: str, wanted: str) -> bool:
    """Tell whether every subject ``wanted`` can match is matched by ``granted``."""
    g, w = granted.split("."), wanted.split(".")
    for i, tok in enumerate(g):
        if tok in ("#", ">"):
            return len(w) > i
        if i >= len(w) or w[i] in ("#", ">"):
            return False
        if tok != "*" and tok != w[i]:
            return False
    return len(w) == len(g)


def _patterns(table: ConfigTable, name: str) -> tuple[TargetPattern, ...]:
    patterns = []
    for index, text in enumerate(table.str_list(name)):
        try:
            patterns.append(TargetPattern.parse(text))
        except ValueError as exc:
            table.fail(
                f"{name}[{index}]",
                str(exc),
                expected="ns/name/instance with '*' for one segment and a final '**' for the rest",
            )
    return tuple(patterns)


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


# --- network patterns ------------------------------------------------------------------------


def _split_host_port(text: str) -> tuple[str, str] | None:
    if text.startswith("["):
        end = text.find("]:")
        if end < 0:
            return None
        return text[1:end], text[end + 2 :]
    host, sep, port = text.rpartition(":")
    if not sep:
        return None
    return host, port


def _check_connect_pattern(text: str) -> str | None:
    """Return why ``text`` is not a ``host:port`` pattern, or ``None`` if it is one."""
    parts = _split_host_port(text)
    if parts is None:
        return "missing ':port'"
    host, port = parts
    if text.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not an IPv6 address"
    elif host != "*":
        labels = host.removeprefix("*.").split(".")
        if not all(_HOST_LABEL.match(label) for label in labels) or len(host) > 253:
            return f"{host!r} is not a host name, '*.domain', an IP address or '*'"
    if port == "*":
        return None
    low, _, high = port.partition("-")
    if not (low.isdigit() and (not high or high.isdigit())):
        return f"port {port!r} is not a number, a range 'lo-hi' or '*'"
    lo, hi = int(low), int(high or low)
    if not 1 <= lo <= hi <= 65535:
        return f"port {port!r} is outside 1-65535 or an empty range"
    return None


def _connect_matches(pattern: str, host: str, port: int) -> bool:
    parts = _split_host_port(pattern)
    if parts is None:  # pragma: no cover - patterns are validated when loaded
        return False
    want_host, want_port = parts
    if want_port != "*":
        low, _, high = want_port.partition("-")
        if not int(low) <= port <= int(high or low):
            return False
    host = host.lower().removeprefix("[").removesuffix("]").rstrip(".")
    if want_host == "*":
        return True
    if want_host.startswith("*."):
        return host.endswith(want_host[1:]) and len(host) > len(want_host) - 1
    try:
        return ipaddress.ip_address(want_host) == ipaddress.ip_address(host)
    except ValueError:
        return want_host == host
