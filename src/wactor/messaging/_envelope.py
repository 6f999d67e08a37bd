"""The envelope every message travels in.

Its NATS wire form (payload as the body, fields in ``Wactor-*`` headers) is made and read by
:mod:`wactor.messaging._nats_wire`; in-process it travels as the object itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from wactor._ids import ComponentId

__all__ = ["ERROR_CONTENT_TYPE", "Envelope", "MessageKind"]

MessageKind = Literal["send", "request", "callback", "broadcast", "publish"]
ERROR_CONTENT_TYPE = "application/x-wactor-error"
"""Content type of a callback that carries an error (its payload is the error text)."""


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
