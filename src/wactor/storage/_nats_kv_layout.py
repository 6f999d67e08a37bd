"""The records of the NATS KV storage bucket, as pure encode/decode functions.

Subject tokens (RFC 4648 base32 of the UTF-8 bytes, ``=`` padding stripped, ``_`` for the empty
string), the last record of a key, a component's usage record (JSON) and the ``NATS/1.0``
header block of a stored message. :mod:`wactor.storage._nats_kv` describes the layout and moves
the bytes.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Record",
    "Usage",
    "component_token",
    "key_token",
    "parse_stored_headers",
    "token_key",
]


def key_token(data: bytes) -> str:
    """The subject token of ``data`` (a key's bytes)."""
    return base64.b32encode(data).decode("ascii").rstrip("=") or "_"


def token_key(token: str) -> bytes:
    """The bytes whose subject token is ``token``."""
    if token == "_":
        return b""
    return base64.b32decode(token + "=" * (-len(token) % 8))


def component_token(component: str) -> str:
    """The subject token of a component id."""
    return key_token(component.encode("utf-8", "surrogatepass"))


@dataclass(slots=True)
class Record:
    """A key's last message: sequence (0: never written), value (None: unset), write id."""

    seq: int
    value: bytes | None
    write_id: str | None


@dataclass(slots=True)
class Usage:
    """A component's usage record as read at ``seq``."""

    seq: int
    used: int = 0
    keys: int = 0
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)

    def settle(self, token: str, landed: bool) -> None:
        """Resolve the reservation of ``token``: count what is left, or give back its growth."""
        entry = self.pending.pop(token)
        d, n = int(entry["d"]), int(entry["n"])
        if landed:
            self.used += min(d, 0)
            self.keys += min(n, 0)
        else:
            self.used -= max(d, 0)
            self.keys -= max(n, 0)

    def encode(self) -> bytes:
        return json.dumps(
            {"used": self.used, "keys": self.keys, "pending": self.pending},
            separators=(",", ":"),
        ).encode()


def parse_stored_headers(raw: bytes) -> dict[str, str]:
    """Parse a stored message's ``NATS/1.0`` header block."""
    headers: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value.strip()
    return headers
