"""Where a lattice lives and what it is called: one rule for server URLs, one for lattice names.

Pure (no NATS client): the host config checks what an operator wrote with the same rules the
connection applies, and the names derived from a lattice (its buckets) are made here once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_NATS_URL",
    "LATTICE_EXPECTED",
    "MALFORMED_HEADER",
    "URL_EXPECTED",
    "check_lattice",
    "kv_bucket",
    "parse_servers",
    "registry_bucket",
]

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"

URL_EXPECTED = "nats://host:port (or tls://, ws://, wss://), several separated by ','"
LATTICE_EXPECTED = "1-63 letters, digits, '_' or '-' (it is one NATS subject token)"

MALFORMED_HEADER = "Wactor-Malformed-Headers"
"""The one header of a message whose header block nats-py could not parse."""

_SCHEMES = ("nats", "tls", "ws", "wss")
# The lattice name becomes one token of NATS subjects (wactor.<lattice>.<ns>.<name>.<instance>)
# and part of bucket names: no dots, wildcards or whitespace.
_LATTICE = re.compile(r"^[A-Za-z0-9_-]{1,63}\Z")


def parse_servers(url: str | Sequence[str]) -> tuple[str, ...]:
    """The server URLs of ``url`` (one, comma-separated, or a list); ``ValueError`` naming the
    first bad one."""
    items = url.split(",") if isinstance(url, str) else list(url)
    servers = tuple(item.strip() for item in items)
    if not servers or not all(servers):
        raise ValueError(f"NATS url {url!r} names no server")
    for server in servers:
        try:
            parts = urlsplit(server)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad URL {server!r}: {exc}") from None
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise ValueError(f"bad URL {server!r}")
        if port == 0:
            raise ValueError(f"bad port in {server!r}")
    return servers


def check_lattice(name: str) -> str:
    """Return ``name`` if it can name a lattice; ``ValueError`` otherwise."""
    if not _LATTICE.match(name):
        raise ValueError(f"bad lattice name {name!r}")
    return name


def kv_bucket(lattice: str) -> str:
    """The JetStream KV bucket of the components' storage in ``lattice``."""
    return f"wactor-{lattice}-kv"


def registry_bucket(lattice: str) -> str:
    """The JetStream KV bucket of the lattice registry of ``lattice``."""
    return f"wactor-{lattice}-registry"
