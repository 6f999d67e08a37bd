"""The operator's host config (``wactor.toml``): state, components, broker, supervision, trust.

Paths are resolved against the config file's directory. Component manifests listed here are not
opened at load time: the host reports a bad or missing one for that component alone when it starts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from wactor._ids import ComponentId
from wactor._nats_names import (
    DEFAULT_NATS_URL,
    LATTICE_EXPECTED,
    URL_EXPECTED,
    check_lattice,
    parse_servers,
)
from wactor._toml import ConfigTable, read_config_file
from wactor._units import KIB, MIB
from wactor.errors import HostConfigError
from wactor.host._listen import LISTEN_EXPECTED, ObserveConfig, observe_config
from wactor.security import HostLimits

__all__ = [
    "DEFAULT_NATS_URL",
    "BrokerConfig",
    "BrokerType",
    "HostConfig",
    "HostLimits",
    "HostSupervision",
    "HttpConfig",
    "LogLevel",
    "ObserveConfig",
    "StorageType",
    "SupervisionStrategy",
    "TrustConfig",
    "load_host_config",
]

BrokerType = Literal["memory", "nats"]
SupervisionStrategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
StorageType = Literal["sqlite", "memory", "nats"]
LogLevel = Literal["trace", "debug", "info", "warn", "error"]

_BROKER_TYPES: tuple[BrokerType, ...] = ("memory", "nats")
_STRATEGIES: tuple[SupervisionStrategy, ...] = ("one_for_one", "one_for_all", "rest_for_one")
_STORAGE_TYPES: tuple[StorageType, ...] = ("sqlite", "memory", "nats")
_LOG_LEVELS: tuple[LogLevel, ...] = ("trace", "debug", "info", "warn", "error")


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Which broker carries messages: in-process, or NATS for a lattice of hosts."""

    type: BrokerType = "memory"
    url: str | None = None  # NATS server URL(s), comma-separated; set whenever type is "nats"
    lattice: str = "default"


@dataclass(frozen=True, slots=True)
class HostSupervision:
    """The host's top supervisor: strategy, restart intensity and its significant components.

    A significant component's restarts count toward this intensity and its final failure (out
    of its own restarts) stops the host; any other component fails alone. An id listed here
    that the config does not start is allowed: it may be started later through the API.
    """

    strategy: SupervisionStrategy = "one_for_one"
    max_restarts: int = 3
    within_seconds: float = 5.0
    significant: frozenset[ComponentId] = frozenset()


@dataclass(frozen=True, slots=True)
class TrustConfig:
    """Sources whose components run without an operator's approval."""

    keys: tuple[Path, ...] = ()  # ed25519 public key files
    digests: tuple[str, ...] = ()  # lowercase sha256 hex, no "sha256:" prefix
    paths: tuple[Path, ...] = ()  # directories whose components are trusted


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """``[http]``: what the host's ``wactor:http`` client allows a guest's exchange.

    A response body costs the host about 0.1 s and 64 MiB of transient memory per MiB on its way
    into the guest (a ``list<u8>`` crosses one C value per byte), hence the modest default cap.
    """

    timeout_ms: int = 10_000  # a request that names no timeout-ms gets this
    max_timeout_ms: int = 60_000  # no exchange lasts longer (nor past its call's deadline)
    max_response_bytes: int = 1 * MIB  # a longer body is too-large(limit)
    max_request_bytes: int = 1 * MIB  # a longer request body is invalid-request
    concurrency: int = 4  # exchanges at once per component (its instances together)
    host_concurrency: int = 16  # exchanges at once for the whole host
    ca_file: Path | None = None  # PEM certificates trusted besides the bundled roots


@dataclass(frozen=True, slots=True)
class HostConfig:
    """A validated host config; every path is absolute."""

    path: Path | None
    state_dir: Path
    dev: bool = False
    components: tuple[Path, ...] = ()  # manifests, started in this order
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    supervision: HostSupervision = field(default_factory=HostSupervision)
    trust: TrustConfig = field(default_factory=TrustConfig)
    cache_dir: Path | None = None  # None: the user's cache directory (shared by all hosts)
    storage: StorageType = "sqlite"
    storage_replicas: int = 1  # JetStream replicas of the KV bucket, for storage = "nats"
    max_payload_bytes: int = 16 * MIB
    log_level: LogLevel = "info"
    limits: HostLimits = field(default_factory=HostLimits)  # [limits]: defaults and ceilings
    http: HttpConfig = field(default_factory=HttpConfig)  # [http]: the guests' HTTP client
    observe: ObserveConfig = field(default_factory=ObserveConfig)  # [observe]: metrics, dashboard

    @classmethod
    def default(
        cls,
        state_dir: str | os.PathLike[str],
        *,
        trusted_paths: Sequence[str | os.PathLike[str]] = (),
        dev: bool = False,
    ) -> HostConfig:
        """The config of an embedded host without a file: memory broker, SQLite state.

        Components under ``trusted_paths`` (manifest and wasm both) run at once; any other
        waits for an operator's approval unless ``dev`` is on.
        """
        trust = TrustConfig(paths=tuple(Path(p).expanduser().resolve() for p in trusted_paths))
        return cls(
            path=None, state_dir=Path(state_dir).expanduser().resolve(), dev=dev, trust=trust
        )


def load_host_config(path: str | os.PathLike[str]) -> HostConfig:
    """Read and validate the host config at ``path``; raise ``HostConfigError`` on any problem."""
    given = Path(path)
    root = read_config_file(
        given,
        HostConfigError,
        allowed=(
            "state-dir",
            "dev",
            "components",
            "cache-dir",
            "storage",
            "storage-replicas",
            "max-payload",
            "log-level",
            "broker",
            "supervision",
            "trust",
            "limits",
            "http",
            "observe",
        ),
    )
    base = given.resolve().parent
    default = HostConfig(path=None, state_dir=base / ".wactor")
    return HostConfig(
        path=given.resolve(),
        state_dir=_dir_to_be(root, "state-dir", base) or default.state_dir,
        dev=root.boolean("dev", default.dev),
        components=_components(root, base),
        broker=_broker(root.table("broker", ("type", "url", "lattice"))),
        supervision=_supervision(
            root.table("supervision", ("strategy", "max-restarts", "within-seconds", "significant"))
        ),
        trust=_trust(root.table("trust", ("keys", "digests", "paths")), base),
        cache_dir=_dir_to_be(root, "cache-dir", base),
        storage=root.choice("storage", _STORAGE_TYPES, default.storage),
        storage_replicas=root.integer("storage-replicas", 1, minimum=1, maximum=5),
        max_payload_bytes=root.size("max-payload", default.max_payload_bytes, minimum=1),
        log_level=root.choice("log-level", _LOG_LEVELS, default.log_level),
        limits=_limits(root.table("limits", _LIMIT_KEYS)),
        http=_http(root.table("http", _HTTP_KEYS), base),
        observe=_observe(root.table("observe", ("listen", "allow-remote"))),
    )


def _observe(table: ConfigTable | None) -> ObserveConfig:
    if table is None:
        return ObserveConfig()
    try:
        return observe_config(
            table.opt_str("listen"), allow_remote=table.boolean("allow-remote", False)
        )
    except ValueError as exc:
        table.fail("listen", str(exc), expected=LISTEN_EXPECTED)


def _dir_to_be(root: ConfigTable, name: str, base: Path) -> Path | None:
    """The directory ``name``: the host creates it when absent, so the first part of it that
    exists must be a directory."""
    path = root.opt_path(name, base)
    if path is None:
        return None
    existing = next(p for p in (path, *path.parents) if os.path.exists(p))
    if not os.path.isdir(existing):
        root.fail(
            name, f"not a directory: {existing}", expected="a directory (created when absent)"
        )
    return path


def _components(root: ConfigTable, base: Path) -> tuple[Path, ...]:
    paths = root.path_list("components", base)
    first_seen: dict[Path, int] = {}
    for index, manifest in enumerate(paths):
        if manifest in first_seen:
            root.fail(
                f"components[{index}]",
                f"{manifest} is listed twice (also components[{first_seen[manifest]}])",
                expected="each manifest once",
            )
        first_seen[manifest] = index
    return paths


def _broker(table: ConfigTable | None) -> BrokerConfig:
    default = BrokerConfig()
    if table is None:
        return default
    broker_type = table.choice("type", _BROKER_TYPES, default.type)
    url = table.opt_str("url")
    if url is not None:
        _check_nats_url(table, url)
    elif broker_type == "nats":
        url = DEFAULT_NATS_URL
    lattice = table.opt_str("lattice")
    if lattice is None:
        lattice = default.lattice
    try:
        check_lattice(lattice)
    except ValueError as exc:
        table.fail("lattice", str(exc), expected=LATTICE_EXPECTED)
    return BrokerConfig(type=broker_type, url=url, lattice=lattice)


def _check_nats_url(table: ConfigTable, url: str) -> None:
    try:
        parse_servers(url)
    except ValueError as exc:
        table.fail("url", str(exc), expected=URL_EXPECTED)


def _supervision(table: ConfigTable | None) -> HostSupervision:
    default = HostSupervision()
    if table is None:
        return default
    return HostSupervision(
        strategy=table.choice("strategy", _STRATEGIES, default.strategy),
        max_restarts=table.integer("max-restarts", default.max_restarts, minimum=0),
        within_seconds=table.number("within-seconds", default.within_seconds),
        significant=_significant(table),
    )


def _significant(table: ConfigTable) -> frozenset[ComponentId]:
    ids = []
    for index, text in enumerate(table.str_list("significant")):
        try:
            ids.append(ComponentId.parse(text))
        except ValueError as exc:
            table.fail(f"significant[{index}]", str(exc))
    return frozenset(ids)


def _trust(table: ConfigTable | None, base: Path) -> TrustConfig:
    if table is None:
        return TrustConfig()
    digests = tuple(
        table.digest(f"digests[{index}]", text)
        for index, text in enumerate(table.str_list("digests"))
    )
    return TrustConfig(
        keys=table.file_list("keys", base),
        digests=digests,
        paths=table.path_list("paths", base),
    )


_LIMIT_KEYS = (
    "message-rate",
    "max-message-rate",
    "memory",
    "max-memory",
    "timeout-ms",
    "max-timeout-ms",
    "mailbox",
    "max-mailbox",
    "fuel",
    "max-fuel",
    "table-elements",
    "tables",
    "memories",
    "instances",
    "log-line",
    "log-lines-per-second",
    "audit-per-second",
    "broadcast-targets",
    "inline-slice-us",
)


def _limits(table: ConfigTable | None) -> HostLimits:
    d = HostLimits()
    if table is None:
        return d
    limits = HostLimits(
        message_rate=table.integer("message-rate", d.message_rate, minimum=1),
        max_message_rate=table.integer("max-message-rate", d.max_message_rate, minimum=1),
        memory_bytes=table.size("memory", d.memory_bytes, minimum=64 * KIB),
        max_memory_bytes=table.size("max-memory", d.max_memory_bytes, minimum=64 * KIB),
        timeout_ms=table.integer("timeout-ms", d.timeout_ms, minimum=1),
        max_timeout_ms=table.integer("max-timeout-ms", d.max_timeout_ms, minimum=1),
        mailbox=table.integer("mailbox", d.mailbox, minimum=1),
        max_mailbox=table.integer("max-mailbox", d.max_mailbox, minimum=1),
        fuel=table.opt_integer("fuel", minimum=1),
        max_fuel=table.opt_integer("max-fuel", minimum=1),
        table_elements=table.integer("table-elements", d.table_elements, minimum=1),
        tables=table.integer("tables", d.tables, minimum=1),
        memories=table.integer("memories", d.memories, minimum=1),
        instances=table.integer("instances", d.instances, minimum=1),
        log_line_bytes=table.size("log-line", d.log_line_bytes, minimum=80),
        log_lines_per_second=table.integer(
            "log-lines-per-second", d.log_lines_per_second, minimum=1
        ),
        audit_per_second=table.integer("audit-per-second", d.audit_per_second, minimum=1),
        broadcast_targets=table.integer("broadcast-targets", d.broadcast_targets, minimum=1),
        inline_slice_us=table.integer(
            "inline-slice-us", d.inline_slice_us, minimum=0, maximum=100_000
        ),
    )
    for key, problem in limits.check():
        table.fail(key, problem, expected="a default at most its ceiling")
    return limits


_HTTP_KEYS = (
    "timeout-ms",
    "max-timeout-ms",
    "max-response",
    "max-request",
    "concurrency",
    "host-concurrency",
    "ca-file",
)


def _http(table: ConfigTable | None, base: Path) -> HttpConfig:
    d = HttpConfig()
    if table is None:
        return d
    ca_file = None
    if table.has("ca-file"):
        expected = "a file of PEM certificates"
        ca_file = table.req_file("ca-file", base, expected=expected)
        import ssl  # noqa: PLC0415 - only a config that names a CA file loads TLS

        try:
            ssl.create_default_context().load_verify_locations(cafile=str(ca_file))
        except (ssl.SSLError, OSError, ValueError) as exc:
            table.fail("ca-file", f"{ca_file}: no certificates read ({exc})", expected=expected)
    config = HttpConfig(
        timeout_ms=table.integer("timeout-ms", d.timeout_ms, minimum=1),
        max_timeout_ms=table.integer("max-timeout-ms", d.max_timeout_ms, minimum=1),
        max_response_bytes=table.size("max-response", d.max_response_bytes, minimum=1),
        max_request_bytes=table.size("max-request", d.max_request_bytes, minimum=0),
        concurrency=table.integer("concurrency", d.concurrency, minimum=1, maximum=1024),
        host_concurrency=table.integer(
            "host-concurrency", d.host_concurrency, minimum=1, maximum=1024
        ),
        ca_file=ca_file,
    )
    if config.timeout_ms > config.max_timeout_ms:
        table.fail(
            "timeout-ms",
            f"{config.timeout_ms} is more than max-timeout-ms ({config.max_timeout_ms})",
            expected="a default at most its ceiling",
        )
    return config
