"""The envelope every message travels in, and its pure bytes codec."""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from typing import Literal

from wactor._ids import ComponentId
from wactor.errors import InvalidMessageError

__all__ = ["ERROR_CONTENT_TYPE", "Envelope", "MessageKind", "decode_envelope", "encode_envelope"]

MessageKind = Literal["send", "request", "callback", "broadcast", "publish"]
ERROR_CONTENT_TYPE = "application/x-wactor-error"
"""Content type of a callback that carries an error (its payload is the error text)."""

_KINDS: tuple[MessageKind, ...] = ("send", "request", "callback", "broadcast", "publish")
_HEADER = struct.Struct(">4sI")
_MAGIC = b"WAC1"


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message on its way to one component; the host fills sender and timestamps."""

    sender: ComponentId
    target: ComponentId
    payload: bytes
    kind: MessageKind = "send"
    correlation_id: str | None = None
    reply_to: ComponentId | None = None
    content_type: str | None = None
    timestamp_ns: int = field(default_factory=time.time_ns)
    subject: str | None = None  # the topic, for kind "publish"


def encode_envelope(env: Envelope) -> bytes:
    """Encode an envelope to bytes (a JSON header then the raw payload)."""
    header = json.dumps(
        {
            "s": str(env.sender),
            "t": str(env.target),
            "k": env.kind,
            "c": env.correlation_id,
            "r": str(env.reply_to) if env.reply_to is not None else None,
            "ct": env.content_type,
            "ts": env.timestamp_ns,
            "sj": env.subject,
        },
        separators=(",", ":"),
    ).encode()
    return _HEADER.pack(_MAGIC, len(header)) + header + env.payload


def decode_envelope(data: bytes) -> Envelope:
    """Decode bytes made by :func:`encode_envelope`; raise ``InvalidMessageError`` on garbage."""
    try:
        magic, size = _HEADER.unpack_from(data)
        head = json.loads(data[_HEADER.size : _HEADER.size + size])
        kind = head["k"]
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise InvalidMessageError(f"undecodable envelope: {exc}") from exc
    if magic != _MAGIC:
        raise InvalidMessageError("undecodable envelope: bad magic")
    if kind not in _KINDS:
        raise InvalidMessageError(f"undecodable envelope: unknown kind {kind!r}")
    try:
        return Envelope(
            sender=ComponentId.parse(head["s"]),
            target=ComponentId.parse(head["t"]),
            payload=bytes(data[_HEADER.size + size :]),
            kind=kind,
            correlation_id=head["c"],
            reply_to=ComponentId.parse(head["r"]) if head["r"] is not None else None,
            content_type=head["ct"],
            timestamp_ns=int(head["ts"]),
            subject=head.get("sj"),
        )
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise InvalidMessageError(f"undecodable envelope: {exc}") from exc
